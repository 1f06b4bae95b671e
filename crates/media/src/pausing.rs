//! Publisher layer pausing (Twilio's "adaptive simulcast", LiveKit's
//! dynacast): which simulcast layers of a published video track the
//! publisher should send, so that a layer no subscriber wants costs the
//! publisher neither encoding nor uplink.
//!
//! # The contract
//!
//! One [`LayerPausing`] exists per published simulcast track. It is
//! sans-IO: no sockets, no clock, no `str0m` types. Each call to
//! [`LayerPausing::update`] takes the time and, per layer in the
//! forwarder's order, what was measured of it ([`Observed`]: its size and
//! bitrate while it is heard), which layers the subscribers want (a bit
//! per layer: every lane's target and current layer) and whether anyone
//! subscribes at all. It returns the layers' new `active` flags when they
//! changed — to be told to the publisher (`layers`, MSP `publisher_hints`)
//! — and `None` otherwise, so a publisher is told only on changes. Every
//! layer starts active, as browsers send them.
//!
//! A subscriber can only want a layer the allocation is offered, and a
//! paused layer is silent, so it drops out of the measured layers after
//! [`crate::forward::LAYER_SILENCE`]. So the pausing remembers each layer
//! as it was last measured while sent, and [`LayerPausing::stand_in`]
//! gives that memory to offer in its place while the layer is paused or
//! coming back: the allocation then picks it exactly when the
//! subscriber's budget, render dimensions and profile would pick it if it
//! were sent, which resumes it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use salon_media::allocation::Layer;
//! use salon_media::pausing::*;
//!
//! let layer = |width, bitrate| Layer { spatial: 0, width, height: width * 9 / 16, frame_rate: 30.0, bitrate };
//! let heard = [Some(layer(320, 150_000)), Some(layer(640, 500_000)), Some(layer(1280, 1_500_000))];
//! let mut pausing = LayerPausing::new(3);
//! let t0 = Instant::now();
//! // The only subscriber wants the middle layer: the top one is paused
//! // once it has not been wanted for PAUSE_AFTER.
//! assert_eq!(pausing.update(t0, &heard, 0b010, true), None);
//! let later = t0 + PAUSE_AFTER;
//! assert_eq!(pausing.update(later, &heard, 0b010, true), Some(vec![true, true, false]));
//! // Paused, it is offered as it was last heard, and resumes at once when wanted.
//! assert_eq!(pausing.stand_in(2, later).map(|l| l.width), Some(1280));
//! assert_eq!(pausing.update(later, &heard, 0b100, true), Some(vec![true, true, true]));
//! ```
//!
//! # The rules
//!
//! * **Needed**: the largest layer any subscriber wants, and every layer
//!   not larger than it (cheap, and what a subscriber falls back to when
//!   its link shrinks). The lowest layer is never paused. With no
//!   subscriber at all, only the lowest layer is needed.
//! * **Hysteresis**: a layer is paused only after it has been unneeded for
//!   [`PAUSE_AFTER`] without a break (LiveKit's dynacast waits the same
//!   5 s), so a subscriber moving down and up again does not make the
//!   publisher's encoder restart the layer; a needed layer resumes at once.
//! * **Only what is sent is paused**: a layer not heard (the publisher's
//!   own bandwidth or CPU adaptation stopped it, or it never started) is
//!   left active — pausing it saves nothing — and a layer never heard has
//!   no memory to stand in for it. A layer that is resumed and does not
//!   come back within [`SETTLE`] is then no longer offered, no longer
//!   wanted, and left alone: the pausing cannot oscillate against a
//!   publisher that cannot send the layer.
//! * **Memory**: a layer's size and bitrate are remembered while it is
//!   active, heard and has been sending for [`SETTLE`] since it resumed (a
//!   measurement straddling the pause or the resume would be low).
//!
//! A resumed layer's first frame is a keyframe (browsers start a
//! re-enabled encoding with one); the forwarder switches a lane that
//! targets it at that keyframe and asks for it meanwhile, so nothing else
//! is needed to come back.
//!
//! # Cost
//!
//! Control path only: a call is O(layers²) with at most
//! [`crate::forward::MAX_LAYERS`] layers, at housekeeping (4 times a
//! second), never per packet.

use std::time::{Duration, Instant};

use crate::allocation::Layer;

/// How long a layer must have been unneeded before it is paused.
pub const PAUSE_AFTER: Duration = Duration::from_secs(5);
/// How long a resumed layer is offered from memory while it comes back,
/// and how long after its resume its measurements are not remembered.
pub const SETTLE: Duration = Duration::from_secs(2);

/// What was measured of one layer: `Some` while it is heard, with its size
/// (as offered to the allocation) and bitrate.
pub type Observed = Option<Layer>;

/// The pausing state of one published simulcast track.
#[derive(Debug, Clone)]
pub struct LayerPausing {
    layers: Vec<LayerState>,
}

#[derive(Debug, Clone)]
struct LayerState {
    /// As the publisher was last told (or sends by default).
    active: bool,
    /// Unneeded without a break since then.
    unneeded_since: Option<Instant>,
    /// When it was last resumed.
    resumed_at: Option<Instant>,
    /// As last measured while sent.
    known: Option<Layer>,
}

impl LayerPausing {
    /// A track of `layers` layers, all active.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![
                LayerState {
                    active: true,
                    unneeded_since: None,
                    resumed_at: None,
                    known: None,
                };
                layers
            ],
        }
    }

    /// The layers' `active` flags, in the forwarder's order.
    pub fn active(&self) -> Vec<bool> {
        self.layers.iter().map(|l| l.active).collect()
    }

    /// Whether layer `index` is paused.
    pub fn is_paused(&self, index: usize) -> bool {
        self.layers.get(index).is_some_and(|l| !l.active)
    }

    /// What to offer the allocation for layer `index` in place of its
    /// measurement: the layer as last heard, while it is paused or was
    /// resumed less than [`SETTLE`] ago.
    pub fn stand_in(&self, index: usize, now: Instant) -> Option<Layer> {
        let l = self.layers.get(index)?;
        let coming_back = l
            .resumed_at
            .is_some_and(|at| now.saturating_duration_since(at) < SETTLE);
        if l.active && !coming_back {
            return None;
        }
        l.known
    }

    /// Decide which layers the publisher sends. `observed` has one entry
    /// per layer (missing entries count as not heard); `wanted` has bit
    /// `i` set when some subscriber wants layer `i`; `subscribed` is false
    /// when nobody receives the track. Returns the new `active` flags when
    /// one changed.
    pub fn update(
        &mut self,
        now: Instant,
        observed: &[Observed],
        wanted: u8,
        subscribed: bool,
    ) -> Option<Vec<bool>> {
        // Remember what is sent, once it has settled.
        for (l, seen) in self.layers.iter_mut().zip(observed) {
            let settled = l
                .resumed_at
                .is_none_or(|at| now.saturating_duration_since(at) >= SETTLE);
            if let Some(seen) = seen
                && l.active
                && settled
                && seen.width > 0
                && seen.height > 0
            {
                l.known = Some(*seen);
            }
        }
        let area = |i: usize| -> Option<u64> {
            let layer = observed
                .get(i)
                .copied()
                .flatten()
                .or(self.layers[i].known)?;
            Some(u64::from(layer.width) * u64::from(layer.height)).filter(|a| *a > 0)
        };
        let areas: Vec<Option<u64>> = (0..self.layers.len()).map(area).collect();
        // The lowest: the smallest known, else the first (offers list
        // layers lowest first).
        let lowest = areas
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|a| (a, i)))
            .min()
            .map_or(0, |(_, i)| i);
        // The largest wanted; a wanted layer of unknown size keeps all.
        let mut top = None;
        if subscribed {
            for (i, a) in areas.iter().enumerate() {
                if i < 8 && wanted & (1 << i) != 0 {
                    top = top.max(Some(a.unwrap_or(u64::MAX)));
                }
            }
        }
        let mut changed = false;
        for (i, l) in self.layers.iter_mut().enumerate() {
            let needed = i == lowest || areas[i].is_none_or(|a| top.is_some_and(|top| a <= top));
            if needed {
                l.unneeded_since = None;
                if !l.active {
                    l.active = true;
                    l.resumed_at = Some(now);
                    changed = true;
                }
                continue;
            }
            let since = *l.unneeded_since.get_or_insert(now);
            let heard = observed.get(i).is_some_and(Option::is_some);
            if l.active && heard && now.saturating_duration_since(since) >= PAUSE_AFTER {
                l.active = false;
                changed = true;
            }
        }
        changed.then(|| self.active())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(width: u32, bitrate: u64) -> Layer {
        Layer {
            spatial: 0,
            width,
            height: width * 9 / 16,
            frame_rate: 30.0,
            bitrate,
        }
    }

    fn all() -> [Observed; 3] {
        [
            Some(layer(320, 150_000)),
            Some(layer(640, 500_000)),
            Some(layer(1280, 1_500_000)),
        ]
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_layer_nobody_wants_is_paused_after_five_seconds_not_before() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(3);
        for s in 0..5 {
            assert_eq!(p.update(t0 + secs(s), &all(), 0b001, true), None, "{s}s");
        }
        assert_eq!(
            p.update(t0 + secs(5), &all(), 0b001, true),
            Some(vec![true, false, false])
        );
        // Told once.
        assert_eq!(p.update(t0 + secs(6), &all(), 0b001, true), None);
    }

    #[test]
    fn a_break_in_being_unneeded_starts_the_wait_again() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(3);
        assert_eq!(p.update(t0, &all(), 0b010, true), None);
        assert_eq!(p.update(t0 + secs(4), &all(), 0b100, true), None);
        assert_eq!(p.update(t0 + secs(5), &all(), 0b010, true), None);
        assert_eq!(p.update(t0 + secs(9), &all(), 0b010, true), None);
        assert_eq!(
            p.update(t0 + secs(10), &all(), 0b010, true),
            Some(vec![true, true, false])
        );
    }

    #[test]
    fn a_wanted_layer_resumes_at_once_with_every_layer_below_it() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(3);
        p.update(t0, &all(), 0, false);
        assert_eq!(
            p.update(t0 + secs(5), &all(), 0, false),
            Some(vec![true, false, false])
        );
        // Paused and silent: offered from memory.
        let silent = [Some(layer(320, 150_000)), None, None];
        let t = t0 + secs(8);
        assert_eq!(p.update(t, &silent, 0, false), None);
        assert_eq!(p.stand_in(2, t), Some(layer(1280, 1_500_000)));
        assert_eq!(p.stand_in(1, t), Some(layer(640, 500_000)));
        assert_eq!(p.stand_in(0, t), None);
        // A subscriber wants the top layer: both come back.
        assert_eq!(p.update(t, &silent, 0b100, true), Some(vec![true; 3]));
        // Still offered from memory while it comes back…
        assert_eq!(p.stand_in(2, t + secs(1)), Some(layer(1280, 1_500_000)));
        // …and measured again once settled.
        assert_eq!(p.stand_in(2, t + SETTLE), None);
    }

    #[test]
    fn the_lowest_layer_is_never_paused_whatever_the_order() {
        let t0 = Instant::now();
        // Offered highest first.
        let reversed = [
            Some(layer(1280, 1_500_000)),
            Some(layer(640, 500_000)),
            Some(layer(320, 150_000)),
        ];
        let mut p = LayerPausing::new(3);
        p.update(t0, &reversed, 0, false);
        assert_eq!(
            p.update(t0 + secs(60), &reversed, 0, false),
            Some(vec![false, false, true])
        );
    }

    #[test]
    fn a_layer_that_is_not_heard_is_left_active_and_has_nothing_to_stand_in() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(3);
        // The publisher never sent its top layer.
        let two = [Some(layer(320, 150_000)), Some(layer(640, 500_000)), None];
        p.update(t0, &two, 0b001, true);
        assert_eq!(
            p.update(t0 + secs(5), &two, 0b001, true),
            Some(vec![true, false, true])
        );
        assert_eq!(p.stand_in(2, t0 + secs(5)), None);
    }

    #[test]
    fn a_resumed_layer_that_does_not_come_back_is_not_paused_again() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(3);
        p.update(t0, &all(), 0b011, true);
        assert_eq!(
            p.update(t0 + secs(5), &all(), 0b011, true),
            Some(vec![true, true, false])
        );
        let two = [Some(layer(320, 150_000)), Some(layer(640, 500_000)), None];
        let t = t0 + secs(10);
        assert_eq!(p.update(t, &two, 0b111, true), Some(vec![true; 3]));
        // It never comes back: once settled it is no longer offered, so
        // the subscriber stops wanting it, and it is left alone.
        assert_eq!(p.stand_in(2, t + SETTLE), None);
        for s in 2..30 {
            assert_eq!(p.update(t + secs(s), &two, 0b011, true), None, "{s}s");
        }
    }

    #[test]
    fn memory_is_what_was_measured_while_sent_not_the_tail_of_a_pause() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(2);
        let two = |top| [Some(layer(320, 150_000)), Some(layer(1280, top))];
        p.update(t0, &two(1_400_000), 0b01, true);
        assert_eq!(
            p.update(t0 + secs(5), &two(1_500_000), 0b01, true),
            Some(vec![true, false])
        );
        // Heard for a while after the pause, at a falling rate.
        p.update(t0 + secs(6), &two(300_000), 0b01, true);
        assert_eq!(
            p.stand_in(1, t0 + secs(6)).map(|l| l.bitrate),
            Some(1_500_000)
        );
        // Resumed: the first measurements are low, and not kept.
        let t = t0 + secs(20);
        p.update(t, &[Some(layer(320, 150_000)), None], 0b10, true);
        p.update(t + secs(1), &two(200_000), 0b10, true);
        assert_eq!(
            p.stand_in(1, t + secs(1)).map(|l| l.bitrate),
            Some(1_500_000)
        );
        p.update(t + SETTLE, &two(1_450_000), 0b10, true);
        assert_eq!(p.stand_in(1, t + SETTLE), None);
        assert_eq!(p.layers[1].known.map(|l| l.bitrate), Some(1_450_000));
    }

    #[test]
    fn a_wanted_layer_of_unknown_size_keeps_every_layer() {
        let t0 = Instant::now();
        let mut p = LayerPausing::new(3);
        let unsized_top = [Some(layer(320, 150_000)), Some(layer(640, 500_000)), None];
        p.update(t0, &unsized_top, 0b100, true);
        assert_eq!(p.update(t0 + secs(30), &unsized_top, 0b100, true), None);
    }
}

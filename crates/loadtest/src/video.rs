//! Watching the video each subscriber receives during the window: which
//! simulcast layer arrives (the size its keyframes announce), how often it
//! changes, and whether it stops.
//!
//! The runner calls [`VideoWatch::observe`] every [`WATCH_INTERVAL`] during
//! the window with every participant's counters (and once more with the
//! window's closing snapshot). Per video subscription it keeps:
//!
//! - **layer switches**: changes of the received keyframe size between two
//!   observations. A layer that comes and goes within one interval is not
//!   seen; a switch to the same size (another publisher's layer of that
//!   size cannot happen on one subscription) is not one.
//! - **the longest gap**: the longest time, at an observation, since the
//!   subscription's last packet — or since the window started, the
//!   subscription appeared, or the server last said it was switched off,
//!   whichever is later. A switched-off track is silent on purpose: the
//!   server said so (`track_switched_off`), so that silence is no gap.
//! - **stalled**: the longest gap passed [`STALL`]. Observations every
//!   250 ms see every silence of 2.25 s or more, and some between 2 and
//!   2.25 s.
//!
//! It owns no I/O and no clock: times come with the observations.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::target::{Counters, MediaKind};

/// How often the runner observes during the window.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Video silent this long (not switched off by the server) is a stall.
pub const STALL: Duration = Duration::from_secs(2);

/// What was seen of one video subscription in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackWatch {
    /// The size of the last keyframe seen, `(0, 0)` before one.
    pub size: (u16, u16),
    pub switches: u64,
    pub longest_gap: Duration,
    pub stalled: bool,
    /// The server switched it off at some point in the window.
    pub switched_off: bool,
    /// Gaps are measured from no earlier than this.
    quiet_since: Instant,
}

/// Every video subscription's [`TrackWatch`], by participant (plan index)
/// and track.
#[derive(Debug, Default)]
pub struct VideoWatch {
    tracks: HashMap<(usize, String), TrackWatch>,
    observations: u64,
}

impl VideoWatch {
    /// Start watching at the window's start: what each subscription
    /// receives now is its starting layer.
    pub fn start(&mut self, at: Instant, counters: &[Option<Counters>], off: &[&HashSet<String>]) {
        self.tracks.clear();
        self.observations = 0;
        self.observe(at, counters, off);
    }

    /// One look at every participant's counters (`counters[i]` and
    /// `off[i]`, the tracks the server says are switched off for it now,
    /// belong to participant `i`).
    pub fn observe(
        &mut self,
        at: Instant,
        counters: &[Option<Counters>],
        off: &[&HashSet<String>],
    ) {
        self.observations += 1;
        for (index, c) in counters.iter().enumerate() {
            let Some(c) = c else { continue };
            let switched_off = off.get(index);
            for r in c.received.iter().filter(|r| r.kind == MediaKind::Video) {
                let now_off = switched_off.is_some_and(|o| o.contains(&r.track));
                let size = (r.width, r.height);
                let w = self
                    .tracks
                    .entry((index, r.track.clone()))
                    .or_insert(TrackWatch {
                        size,
                        switches: 0,
                        longest_gap: Duration::ZERO,
                        stalled: false,
                        switched_off: false,
                        quiet_since: at,
                    });
                if size != w.size && size != (0, 0) {
                    if w.size != (0, 0) {
                        w.switches += 1;
                    }
                    w.size = size;
                }
                if now_off {
                    w.switched_off = true;
                    w.quiet_since = at;
                    continue;
                }
                let since = r
                    .last_packet_at
                    .map_or(w.quiet_since, |last| last.max(w.quiet_since));
                let gap = at.saturating_duration_since(since);
                w.longest_gap = w.longest_gap.max(gap);
                w.stalled |= gap > STALL;
            }
        }
    }

    /// Participant `index`'s subscription to `track`, if it was watched.
    pub fn track(&self, index: usize, track: &str) -> Option<&TrackWatch> {
        self.tracks.get(&(index, track.to_owned()))
    }

    /// Every watched subscription.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackWatch> {
        self.tracks.values()
    }

    /// How many times the runner looked.
    pub fn observations(&self) -> u64 {
        self.observations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Latencies;
    use crate::target::ReceivedTrack;

    fn video(track: &str, width: u16, last: Option<Instant>) -> Option<Counters> {
        Some(Counters {
            sent: Vec::new(),
            received: vec![ReceivedTrack {
                track: track.into(),
                kind: MediaKind::Video,
                packets: 1,
                bytes: 1,
                expected: 1,
                lost: 0,
                foreign: 0,
                latency: Latencies::default(),
                first_packet_after: None,
                width,
                height: width * 9 / 16,
                last_packet_at: last,
            }],
        })
    }

    #[test]
    fn size_changes_are_layer_switches() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let none = HashSet::new();
        let off = [&none];
        let mut w = VideoWatch::default();
        w.start(t0, &[video("v", 0, None)], &off);
        // The first keyframe is no switch; then 320 → 640 → 320.
        for (i, width) in [320, 320, 640, 640, 320].into_iter().enumerate() {
            let at = t0 + ms(250 * (i as u64 + 1));
            w.observe(at, &[video("v", width, Some(at))], &off);
        }
        let t = w.track(0, "v").unwrap();
        assert_eq!((t.switches, t.size, t.stalled), (2, (320, 180), false));
        assert_eq!(w.observations(), 6);
    }

    #[test]
    fn silence_is_a_stall_unless_the_server_switched_the_track_off() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let none = HashSet::new();
        let off: HashSet<String> = ["v".to_owned()].into();
        let mut w = VideoWatch::default();
        w.start(t0, &[video("v", 320, Some(t0))], &[&none]);
        // Switched off for 5 s: no gap.
        w.observe(t0 + s(3), &[video("v", 320, Some(t0))], &[&off]);
        w.observe(t0 + s(5), &[video("v", 320, Some(t0))], &[&off]);
        // On again; 1 s later nothing yet: a gap of 1 s, not a stall.
        w.observe(t0 + s(6), &[video("v", 320, Some(t0))], &[&none]);
        let t = w.track(0, "v").unwrap();
        assert!(t.switched_off && !t.stalled, "{t:?}");
        assert_eq!(t.longest_gap, s(1));
        // Still nothing 3 s after: stalled.
        w.observe(t0 + s(8), &[video("v", 320, Some(t0))], &[&none]);
        let t = w.track(0, "v").unwrap();
        assert!(t.stalled && t.longest_gap == s(3), "{t:?}");
    }

    #[test]
    fn a_subscription_that_never_receives_stalls_from_the_window_start() {
        let t0 = Instant::now();
        let none = HashSet::new();
        let mut w = VideoWatch::default();
        w.start(t0, &[video("v", 0, None)], &[&none]);
        w.observe(
            t0 + Duration::from_millis(2100),
            &[video("v", 0, None)],
            &[&none],
        );
        assert!(w.track(0, "v").unwrap().stalled);
    }
}

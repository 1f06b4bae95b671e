//! Adaptive video and audio on the worker: the rooms' dominant speakers
//! ([`crate::speaker`]), decided at housekeeping from the audio levels the
//! forwarders observed on the packet path; each peer's network quality
//! ([`crate::quality`]); and each subscriber's allocation
//! ([`crate::allocation`]): which video tracks it receives are forwarded.
//!
//! The allocation runs at housekeeping and when a subscriber switches a
//! track, changes its profile or its render dimensions. It chooses among
//! the layers each publisher sends (measured by the forwarder: size from
//! keyframes, frame rate, and a bitrate robust to the keyframe bursts that
//! layer switches cause, [`crate::forward::LayerRate`]; a simulcast layer
//! not heard from for [`crate::forward::LAYER_SILENCE`] is not offered, and
//! a track with a layer measured for less than
//! [`crate::forward::LAYER_SETTLE`] is not stepped up),
//! and the forwarder
//! moves each lane to the chosen layer at its next keyframe. The budget is
//! the profile's `maxSubscriptionBitrate` and, for a subscriber receiving
//! at least one simulcast track, the estimate of its downlink: str0m's
//! send-side one ([`crate::Estimation::SendSide`], the default) or its own
//! REMB ([`crate::Estimation::Receiver`]); a subscriber of
//! single-layer tracks only is not limited by the estimate (see
//! `docs/performance.md`).

use super::*;
use crate::allocation::{Input, Layer, SwitchOffReason, Target, VideoSubscription};
use crate::pausing::{LayerPausing, Observed};

/// The budget when nothing limits it.
const UNLIMITED: u64 = crate::allocation::NO_ESTIMATE;

impl Worker {
    /// Close each room's speaker frame and report a change of dominant
    /// speaker to the control plane.
    pub(super) fn tick_speakers(&mut self, now: Instant) {
        for (room, state) in &mut self.rooms {
            if let Some(change) = state.speaker.tick(now) {
                let _ = self.setup.events.send(MediaEvent::DominantSpeaker {
                    room: *room,
                    participant: change.dominant,
                });
            }
        }
    }

    /// Close each peer's network quality interval when due and report it
    /// when its levels moved (or to refresh the stats behind them).
    pub(super) fn tick_quality(&mut self, now: Instant) {
        for peer in self.slots.iter_mut().filter_map(|s| s.peer.as_mut()) {
            if peer.gone.is_some() || now < peer.quality.poll_timeout() {
                continue;
            }
            peer.quality.tick(now, peer.last_heard);
            if let Some(stats) = peer.quality.report(now) {
                let _ = self.setup.events.send(MediaEvent::NetworkQuality {
                    room: peer.room,
                    participant: peer.participant,
                    stats: Box::new(stats),
                });
            }
        }
    }

    /// Allocate subscriber `r`'s video: pick each track's layer, switch
    /// tracks off or on, and tell the control plane what changed.
    pub(super) fn allocate(&mut self, r: PeerRef, now: Instant) {
        let Some(room_sid) = slot_peer(&mut self.slots, r).map(|p| p.room) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return;
        };
        let dominant = room.speaker.dominant().copied();
        let mut tracks = Vec::new();
        let mut audio = 0;
        for f in &mut room.forwarders {
            f.measure(now);
            let Some(lane) = f.lanes.iter().find(|l| l.subscriber == r) else {
                continue;
            };
            if !f.video {
                audio += f.bitrate;
                continue;
            }
            let (layers, indices) = offered_layers(f, now, room.pausing.get(&f.track));
            let publisher = self
                .slots
                .get(f.publisher.index as usize)
                .filter(|s| s.generation == f.publisher.generation)
                .and_then(|s| s.peer.as_ref())
                .map(|p| p.participant);
            tracks.push(Offered {
                track: f.track,
                layers,
                indices,
                off: lane.is_off(),
                speaking: publisher.is_some() && publisher == dominant,
                priority: f.priority,
                simulcast: f.is_simulcast(),
                settling: f.is_settling(now),
            });
        }
        if tracks.is_empty() {
            return;
        }
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return;
        };
        let own = |track: &TrackSid| {
            peer.priorities
                .iter()
                .find(|(t, _)| t == track)
                .map(|(_, p)| *p)
        };
        let render = |track: &TrackSid| {
            peer.render
                .iter()
                .find(|(t, _)| t == track)
                .map(|(_, d)| *d)
        };
        let subscriptions: Vec<VideoSubscription<'_, TrackSid>> = tracks
            .iter()
            .map(|t| VideoSubscription {
                switched_off_by_subscriber: t.off,
                dominant_speaker: t.speaking,
                publish_priority: t.priority,
                subscribe_priority: own(&t.track),
                render: render(&t.track),
                settling: t.settling,
                ..VideoSubscription::new(t.track, &t.layers)
            })
            .collect();
        // The estimate is the budget only where there is a choice of
        // layers: with single-layer tracks alone, an estimate that has not
        // ramped up yet (or a REMB, at most half as much again as what is
        // received) would switch tracks off that the link carries (see
        // docs/performance.md).
        // With receiver estimates, what the loss reports say the link
        // carries bounds the REMB (which is delay-based only).
        let loss_bound = peer.loss.bound(now);
        let estimate = match (peer.estimate, loss_bound) {
            _ if !tracks.iter().any(|t| t.simulcast) => UNLIMITED,
            (Some((estimate, _)), bound) => bound.map_or(estimate, |b| b.min(estimate)),
            (None, Some(bound)) => bound,
            (None, None) => UNLIMITED,
        };
        let can_probe = peer.estimate.is_some_and(|(_, p)| p);
        let lossy = estimate != UNLIMITED && loss_bound == Some(estimate);
        let input = Input {
            estimate,
            can_probe,
            lossy,
            audio,
            tracks: &subscriptions,
        };
        let allocation = peer.allocator.allocate(now, &input).clone();
        let participant = peer.participant;
        if let Some(probe) = allocation.probe
            && estimate != UNLIMITED
        {
            // Ask str0m to probe for what the next layer up needs.
            let desired = Bitrate::bps(probe);
            let _ = guarded(peer, &self.setup.stats, |p| {
                p.rtc.bwe().set_bitrate(Bitrate::ZERO, desired);
                Ok(())
            });
        }
        // (track, starve change, layer index to forward)
        let mut apply: Vec<(TrackSid, Option<bool>, Option<u8>)> = Vec::new();
        for (d, t) in allocation.decisions.iter().zip(&tracks) {
            let (starve, layer) = match d.target {
                Target::Layer(rank) => (
                    d.changed.then_some(false),
                    t.indices.get(usize::from(rank)).copied(),
                ),
                Target::Off(SwitchOffReason::DisabledBySubscriber) | Target::Idle => (None, None),
                Target::Off(_) => (d.changed.then_some(true), None),
            };
            if starve.is_some() || layer.is_some() {
                apply.push((d.track, starve, layer));
            }
        }
        if allocation.decisions.iter().any(|d| d.changed) {
            tracing::debug!(
                %participant,
                estimate,
                lossy,
                decisions = ?allocation.decisions.iter().map(|d| (d.track, d.target)).collect::<Vec<_>>(),
                layers = ?tracks.iter().map(|t| t.layers.iter().map(|l| (l.width, l.bitrate)).collect::<Vec<_>>()).collect::<Vec<_>>(),
                settling = ?tracks.iter().map(|t| t.settling).collect::<Vec<_>>(),
                "allocation changed"
            );
        }
        for switched in &allocation.switched {
            let _ = self.setup.events.send(MediaEvent::Switched {
                room: room_sid,
                participant,
                track: switched.track,
                off: switched.off.map(SwitchOffReason::as_str),
            });
        }
        if let Some(room) = self.rooms.get_mut(&room_sid) {
            for (track, starve, layer) in apply {
                for f in room.forwarders.iter_mut().filter(|f| f.track == track) {
                    if let Some(layer) = layer {
                        f.set_target(r, layer);
                    }
                    if let Some(starved) = starve {
                        f.starve(r, starved);
                    }
                }
            }
        }
        self.request_keyframes(room_sid, now);
    }

    /// Allocate every subscriber's video (at housekeeping).
    pub(super) fn allocate_all(&mut self, now: Instant) {
        let peers: Vec<PeerRef> = self.by_participant.values().copied().collect();
        for r in peers {
            self.allocate(r, now);
        }
    }

    /// Decide which layers of each simulcast track its publisher sends
    /// (after [`Worker::allocate_all`], whose targets say what subscribers
    /// want), and tell each publisher what changed.
    pub(super) fn tick_pausing(&mut self, now: Instant) {
        for (room_sid, room) in &mut self.rooms {
            let forwarders = &room.forwarders;
            room.pausing.retain(|track, _| {
                forwarders
                    .iter()
                    .any(|f| f.track == *track && f.is_simulcast())
            });
            for f in room
                .forwarders
                .iter()
                .filter(|f| f.video && f.is_simulcast())
            {
                let pausing = room
                    .pausing
                    .entry(f.track)
                    .or_insert_with(|| LayerPausing::new(f.layers.len()));
                let observed = observed_layers(f, now);
                // What subscribers want: each lane's target, and the layer
                // it still forwards until it switches; a recording keeps
                // the largest.
                let mut wanted = 0u8;
                let mut subscribed = false;
                for lane in f.lanes.iter().filter(|l| !l.is_off() && !l.is_starved()) {
                    subscribed = true;
                    wanted |= 1 << lane.target_layer();
                    if let Some(current) = lane.current_layer() {
                        wanted |= 1 << current;
                    }
                }
                if self.recorders.records(f.track) {
                    subscribed = true;
                    wanted |= 1 << f.top_layer();
                }
                let Some(active) = pausing.update(now, &observed, wanted, subscribed) else {
                    continue;
                };
                let Some(participant) = self
                    .slots
                    .get(f.publisher.index as usize)
                    .filter(|s| s.generation == f.publisher.generation)
                    .and_then(|s| s.peer.as_ref())
                    .map(|p| p.participant)
                else {
                    continue;
                };
                tracing::debug!(%participant, track = %f.track, ?active, "publisher layers");
                let layers = f
                    .layers
                    .iter()
                    .zip(active)
                    .map(|(l, active)| (l.rid.map(|r| r.to_string()), active))
                    .collect();
                let _ = self.setup.events.send(MediaEvent::Layers {
                    room: *room_sid,
                    participant,
                    track: f.track,
                    layers,
                });
            }
        }
    }
}

/// What is measured of each of `f`'s layers, in its order: `Some` while the
/// layer is heard and its size is known (or guessed, as
/// [`offered_layers`] does), for [`LayerPausing::update`].
fn observed_layers(f: &Forwarder, now: Instant) -> Vec<Observed> {
    let (layers, indices) = offered_layers(f, now, None);
    let mut observed = vec![None; f.layers.len()];
    for (layer, index) in layers.into_iter().zip(indices) {
        if let Some(slot) = observed.get_mut(usize::from(index)) {
            *slot = Some(layer);
        }
    }
    observed
}

/// A subscribed video track as the allocation sees it.
struct Offered {
    track: TrackSid,
    /// Its layers, smallest first, `spatial` numbering them so.
    layers: Vec<Layer>,
    /// Each layer's index in the forwarder's layers.
    indices: Vec<u8>,
    off: bool,
    speaking: bool,
    priority: crate::allocation::Priority,
    simulcast: bool,
    /// Its layers' bitrates are still settling
    /// ([`Forwarder::is_settling`]).
    settling: bool,
}

/// The layers of `f` the allocation may choose from, smallest first, and
/// each one's index in the forwarder: for simulcast, the layers being sent
/// whose size is known (from a keyframe; or guessed from the offer's order
/// when no keyframe tells any size), and the layers its publisher was told
/// to pause (or just to resume) as they were last heard (`pausing`'s stand
/// ins, so a subscriber can want a paused layer back); without simulcast,
/// the one layer (its size guessed until a keyframe tells).
fn offered_layers(
    f: &Forwarder,
    now: Instant,
    pausing: Option<&LayerPausing>,
) -> (Vec<Layer>, Vec<u8>) {
    let as_layer = |l: &crate::forward::SimulcastLayer, width: u32, height: u32| Layer {
        spatial: 0,
        width,
        height,
        frame_rate: if l.frame_rate > 0.0 {
            l.frame_rate
        } else {
            30.0
        },
        bitrate: l.bitrate,
    };
    if !f.is_simulcast() {
        let Some(l) = f.layers.first() else {
            return (Vec::new(), Vec::new());
        };
        let (width, height) = match (l.width, l.height) {
            (0, _) | (_, 0) => (640, 360),
            (w, h) => (u32::from(w), u32::from(h)),
        };
        return (vec![as_layer(l, width, height)], vec![0]);
    }
    // Sizes come from VP8 keyframes. A codec whose keyframes do not tell
    // (H.264, VP9 here) leaves every layer unsized: then the layers are
    // taken to be in the offer's order, lowest first (as browsers' and
    // Salon's SDK's `sendEncodings` are), halving from 1280×720 down.
    let sized = f.layers.iter().any(|l| l.width > 0 && l.height > 0);
    let count = f.layers.len() as u32;
    let mut known: Vec<(u8, Layer)> = f
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            if let Some(stand_in) = pausing.and_then(|p| p.stand_in(i, now)) {
                return Some((i as u8, stand_in));
            }
            if !l.is_active(now) {
                return None;
            }
            let (width, height) = if sized {
                (u32::from(l.width), u32::from(l.height))
            } else {
                let shift = count.saturating_sub(i as u32 + 1).min(4);
                (1280 >> shift, 720 >> shift)
            };
            (width > 0 && height > 0).then(|| (i as u8, as_layer(l, width, height)))
        })
        .collect();
    known.sort_by_key(|(i, l)| (u64::from(l.width) * u64::from(l.height), *i));
    known
        .into_iter()
        .enumerate()
        .map(|(rank, (i, mut l))| {
            l.spatial = rank as u8;
            (l, i)
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::PublisherCodecs;

    fn forwarder(rids: &[&str]) -> Forwarder {
        let rids: Vec<Rid> = rids.iter().map(|r| Rid::from(*r)).collect();
        Forwarder::new(
            TrackSid::from_bytes([7; 16]),
            PeerRef {
                index: 0,
                generation: 0,
            },
            "0".into(),
            true,
            PublisherCodecs::new(vec![(96, Some(VideoCodec::Vp8))]),
        )
        .with_rids(&rids)
    }

    #[test]
    fn layers_are_offered_smallest_first_whatever_the_rid_order_and_only_while_sent() {
        let now = Instant::now();
        let mut f = forwarder(&["f", "q", "h", "x"]);
        for (layer, width) in f.layers.iter_mut().zip([640u16, 160, 320, 1280]) {
            layer.width = width;
            layer.height = width * 9 / 16;
            layer.last_packet = Some(now);
        }
        // "x" stopped a while ago: not offered.
        f.layers[3].last_packet = Some(now - crate::forward::LAYER_SILENCE * 2);
        let (layers, indices) = offered_layers(&f, now, None);
        let widths: Vec<(u8, u32)> = layers.iter().map(|l| (l.spatial, l.width)).collect();
        assert_eq!(widths, [(0, 160), (1, 320), (2, 640)]);
        assert_eq!(indices, [1, 2, 0]);

        // A layer whose size no keyframe told yet is not offered.
        f.layers[2].width = 0;
        let (layers, indices) = offered_layers(&f, now, None);
        assert_eq!(layers.len(), 2);
        assert_eq!(indices, [1, 0]);
    }

    #[test]
    fn a_paused_layer_is_offered_as_it_was_last_heard_so_it_can_be_wanted_back() {
        let t0 = Instant::now();
        let mut f = forwarder(&["q", "h", "f"]);
        for (layer, width) in f.layers.iter_mut().zip([320u16, 640, 1280]) {
            layer.width = width;
            layer.height = width * 9 / 16;
            layer.bitrate = u64::from(width) * 1000;
            layer.last_packet = Some(t0);
        }
        let mut pausing = LayerPausing::new(3);
        // Nobody subscribes: the two upper layers are paused.
        pausing.update(t0, &observed_layers(&f, t0), 0, false);
        let t = t0 + crate::pausing::PAUSE_AFTER;
        for layer in &mut f.layers {
            layer.last_packet = Some(t);
        }
        assert_eq!(
            pausing.update(t, &observed_layers(&f, t), 0, false),
            Some(vec![true, false, false])
        );
        // Silent since: measured, only the lowest is sent…
        let later = t + crate::forward::LAYER_SILENCE * 2;
        f.layers[0].last_packet = Some(later);
        let (layers, _) = offered_layers(&f, later, None);
        assert_eq!(layers.len(), 1);
        // …but the paused ones are offered as they were.
        let (layers, indices) = offered_layers(&f, later, Some(&pausing));
        let offered: Vec<(u32, u64)> = layers.iter().map(|l| (l.width, l.bitrate)).collect();
        assert_eq!(offered, [(320, 320_000), (640, 640_000), (1280, 1_280_000)]);
        assert_eq!(indices, [0, 1, 2]);
    }

    #[test]
    fn layers_whose_keyframes_tell_no_size_are_taken_in_the_offers_order() {
        let now = Instant::now();
        let mut f = forwarder(&["l", "m", "h"]);
        for layer in &mut f.layers {
            layer.last_packet = Some(now);
        }
        let (layers, indices) = offered_layers(&f, now, None);
        let widths: Vec<u32> = layers.iter().map(|l| l.width).collect();
        assert_eq!(widths, [320, 640, 1280]);
        assert_eq!(indices, [0, 1, 2]);
    }

    #[test]
    fn a_track_without_simulcast_is_one_layer_of_its_size_or_a_guess() {
        let now = Instant::now();
        let mut f = forwarder(&[]);
        assert!(!f.is_simulcast());
        let (layers, indices) = offered_layers(&f, now, None);
        assert_eq!(
            (layers[0].width, layers[0].height, indices),
            (640, 360, vec![0])
        );
        f.layers[0].width = 320;
        f.layers[0].height = 240;
        let (layers, _) = offered_layers(&f, now, None);
        assert_eq!((layers[0].width, layers[0].height), (320, 240));
    }
}

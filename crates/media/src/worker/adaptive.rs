//! Adaptive video and audio on the worker: the rooms' dominant speakers
//! ([`crate::speaker`]), decided at housekeeping from the audio levels the
//! forwarders observed on the packet path; each peer's network quality
//! ([`crate::quality`]); and each subscriber's allocation
//! ([`crate::allocation`]): which video tracks it receives are forwarded.
//!
//! The allocation runs at housekeeping and when a subscriber switches a
//! track or changes its profile. Its budget today is the profile's
//! `maxSubscriptionBitrate` alone: str0m's send-side estimate is not yet
//! trusted as the subscriber's downlink (see `docs/performance.md`), and
//! tracks are single-layer (no simulcast yet), so a track is either
//! forwarded or switched off.

use super::*;
use crate::allocation::{Input, Layer, SwitchOffReason, Target, VideoSubscription};

/// The budget when nothing limits it.
const UNLIMITED: u64 = 1 << 40;

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

    /// Allocate subscriber `r`'s video: switch tracks off or on, and tell
    /// the control plane what changed.
    pub(super) fn allocate(&mut self, r: PeerRef, now: Instant) {
        let Some(room_sid) = slot_peer(&mut self.slots, r).map(|p| p.room) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return;
        };
        let dominant = room.speaker.dominant().copied();
        // (track, its layer, switched off by the subscriber, the dominant
        // speaker's), and the audio it receives.
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
            let layer = [Layer {
                spatial: 0,
                width: 640,
                height: 360,
                frame_rate: 30.0,
                bitrate: f.bitrate,
            }];
            let publisher = self
                .slots
                .get(f.publisher.index as usize)
                .filter(|s| s.generation == f.publisher.generation)
                .and_then(|s| s.peer.as_ref())
                .map(|p| p.participant);
            let speaking = publisher.is_some() && publisher == dominant;
            tracks.push((f.track, layer, lane.is_off(), speaking, f.priority));
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
        let subscriptions: Vec<VideoSubscription<'_, TrackSid>> = tracks
            .iter()
            .map(
                |(track, layer, off, speaking, priority)| VideoSubscription {
                    switched_off_by_subscriber: *off,
                    dominant_speaker: *speaking,
                    publish_priority: *priority,
                    subscribe_priority: own(track),
                    ..VideoSubscription::new(*track, layer)
                },
            )
            .collect();
        let input = Input {
            estimate: UNLIMITED,
            can_probe: false,
            audio,
            tracks: &subscriptions,
        };
        let allocation = peer.allocator.allocate(now, &input);
        let participant = peer.participant;
        let starve: Vec<(TrackSid, bool)> = allocation
            .decisions
            .iter()
            .filter(|d| d.changed)
            .filter_map(|d| match d.target {
                Target::Layer(_) => Some((d.track, false)),
                Target::Off(SwitchOffReason::DisabledBySubscriber) | Target::Idle => None,
                Target::Off(_) => Some((d.track, true)),
            })
            .collect();
        for switched in &allocation.switched {
            let _ = self.setup.events.send(MediaEvent::Switched {
                room: room_sid,
                participant,
                track: switched.track,
                off: switched.off.map(SwitchOffReason::as_str),
            });
        }
        if let Some(room) = self.rooms.get_mut(&room_sid) {
            for (track, starved) in starve {
                for f in room.forwarders.iter_mut().filter(|f| f.track == track) {
                    f.starve(r, starved);
                }
            }
        }
    }

    /// Allocate every subscriber's video (at housekeeping).
    pub(super) fn allocate_all(&mut self, now: Instant) {
        let peers: Vec<PeerRef> = self.by_participant.values().copied().collect();
        for r in peers {
            self.allocate(r, now);
        }
    }
}

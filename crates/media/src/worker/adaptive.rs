//! Adaptive video and audio on the worker: the rooms' dominant speakers
//! ([`crate::speaker`]), decided at housekeeping from the audio levels the
//! forwarders observed on the packet path.

use super::*;

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

    /// Close each peer's network quality interval when due and report a
    /// changed level.
    pub(super) fn tick_quality(&mut self, now: Instant) {
        for peer in self.slots.iter_mut().filter_map(|s| s.peer.as_mut()) {
            if peer.gone.is_some() || now < peer.quality.poll_timeout() {
                continue;
            }
            if let Some(level) = peer.quality.tick(now, peer.last_heard) {
                let _ = self.setup.events.send(MediaEvent::NetworkQuality {
                    room: peer.room,
                    participant: peer.participant,
                    level: level.get(),
                });
            }
        }
    }
}

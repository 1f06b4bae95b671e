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
}

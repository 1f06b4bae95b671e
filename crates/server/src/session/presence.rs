//! Whether a participant's signaling is reconnecting: the room core keeps
//! a participant whose socket dropped until its session gives up, and the
//! others may be told that it is away meanwhile (Twilio's
//! `participantReconnecting` / `participantReconnected`).
//!
//! A broadcast to every session, each keeping what concerns its room. Such
//! notices are rare (a dropped socket, a resume); a session that falls
//! behind skips the ones it missed rather than holding anyone up.

use salon_sid::{ParticipantSid, RoomSid};
use tokio::sync::broadcast;

/// Notices kept for sessions that have not read them yet.
const BACKLOG: usize = 256;

/// A participant's signaling went away (`reconnecting`) or came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub room: RoomSid,
    pub participant: ParticipantSid,
    pub reconnecting: bool,
}

pub struct Presence {
    notices: broadcast::Sender<Notice>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            notices: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Presence {
    pub fn announce(&self, notice: Notice) {
        // No session listening is fine.
        let _ = self.notices.send(notice);
    }

    pub fn watch(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }
}

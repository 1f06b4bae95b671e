//! Who is reconnecting: the room core keeps a participant whose signaling
//! socket dropped, or whose media went silent, until the session timeout
//! runs out, and the others are told that it is away meanwhile (Twilio's
//! `participantReconnecting` / `participantReconnected`).
//!
//! Two things can take a participant away, each announced on its own: its
//! signaling session ([`Cause::Signaling`]: the socket dropped, then a
//! resume) and its media ([`Cause::Media`]: the media server stopped
//! hearing it, then heard it again, perhaps after an ICE restart from a new
//! address). A participant is reconnecting while either is away; each
//! session keeps that view with an [`Away`].
//!
//! A broadcast to every session, each keeping what concerns its room. Such
//! notices are rare (a dropped socket, a network change); a session that
//! falls behind skips the ones it missed rather than holding anyone up.

use std::collections::HashSet;

use salon_sid::{ParticipantSid, RoomSid};
use tokio::sync::broadcast;

/// Notices kept for sessions that have not read them yet.
const BACKLOG: usize = 256;

/// What went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The signaling socket dropped; a resume brings it back.
    Signaling,
    /// The media server stopped hearing the participant's media.
    Media,
}

/// A participant's signaling or media went away (`reconnecting`) or came
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub room: RoomSid,
    pub participant: ParticipantSid,
    pub cause: Cause,
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

/// One session's view of who else in its room is reconnecting.
#[derive(Debug, Default)]
pub struct Away {
    away: HashSet<(ParticipantSid, Cause)>,
}

impl Away {
    /// Take `notice` (already known to be about another participant of
    /// this room). `Some(reconnecting)` when the participant's state
    /// changed: it became reconnecting, or is connected again.
    pub fn apply(&mut self, notice: Notice) -> Option<bool> {
        let before = self.is_away(notice.participant);
        if notice.reconnecting {
            self.away.insert((notice.participant, notice.cause));
        } else {
            self.away.remove(&(notice.participant, notice.cause));
        }
        let after = self.is_away(notice.participant);
        (before != after).then_some(after)
    }

    pub fn is_away(&self, participant: ParticipantSid) -> bool {
        self.away.iter().any(|(p, _)| *p == participant)
    }

    /// The participant left: forget it.
    pub fn forget(&mut self, participant: ParticipantSid) {
        self.away.retain(|(p, _)| *p != participant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_participant_is_away_while_its_signaling_or_its_media_is() {
        let (room, p) = (RoomSid::random(), ParticipantSid::random());
        let notice = |cause, reconnecting| Notice {
            room,
            participant: p,
            cause,
            reconnecting,
        };
        let mut away = Away::default();
        assert_eq!(away.apply(notice(Cause::Media, true)), Some(true));
        assert_eq!(away.apply(notice(Cause::Signaling, true)), None);
        assert_eq!(away.apply(notice(Cause::Signaling, false)), None);
        assert!(away.is_away(p));
        assert_eq!(away.apply(notice(Cause::Media, false)), Some(false));
        assert_eq!(away.apply(notice(Cause::Media, false)), None);
        away.apply(notice(Cause::Signaling, true));
        away.forget(p);
        assert!(!away.is_away(p));
    }
}

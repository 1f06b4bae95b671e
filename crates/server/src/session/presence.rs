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
//! falls behind skips the ones it missed rather than holding anyone up, and
//! catches up from who is away now ([`Watched::Lagged`],
//! [`Away::changes`]). Who is away now is kept here, so that a session that
//! starts later (a late joiner) knows too ([`Presence::away_in`]); the
//! room-to-media bridge forgets participants that left
//! ([`Presence::forget`]).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use salon_sid::{ParticipantSid, RoomSid};
use tokio::sync::broadcast;
use tokio::time::Instant;

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

/// What a watching session takes from the broadcast ([`Presence::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Notice(Notice),
    /// The session fell behind and missed notices.
    Lagged,
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
    /// Who is away now, and why: (room, participant, cause).
    away: Mutex<HashSet<(RoomSid, ParticipantSid, Cause)>>,
}

impl Default for Presence {
    fn default() -> Self {
        Self {
            notices: broadcast::channel(BACKLOG).0,
            away: Mutex::default(),
        }
    }
}

impl Presence {
    pub fn announce(&self, notice: Notice) {
        {
            let mut away = self.lock();
            let key = (notice.room, notice.participant, notice.cause);
            if notice.reconnecting {
                away.insert(key);
            } else {
                away.remove(&key);
            }
        }
        // No session listening is fine.
        let _ = self.notices.send(notice);
    }

    /// Notices from now on. Watch before reading [`Presence::away_in`]:
    /// a notice in between is then seen twice, which [`Away`] tolerates,
    /// rather than missed.
    pub fn watch(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// What a session watching (see [`Presence::watch`]) takes next: a
    /// notice, or word that it fell behind and missed some (it then goes
    /// on from the oldest still kept); once the server is going away (the
    /// sender dropped) nothing comes. Cancel-safe, for a session's
    /// `select!`.
    pub async fn next(notices: &mut broadcast::Receiver<Notice>) -> Watched {
        match notices.recv().await {
            Ok(notice) => Watched::Notice(notice),
            Err(broadcast::error::RecvError::Lagged(_)) => Watched::Lagged,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    /// Who in `room` is away now, as a session's starting view.
    pub fn away_in(&self, room: RoomSid) -> Away {
        let away = self
            .lock()
            .iter()
            .filter(|(r, _, _)| *r == room)
            .map(|(_, p, c)| (*p, *c))
            .collect();
        Away {
            away,
            ..Away::default()
        }
    }

    /// `participant` left `room` (or, with `None`, the room ended): nothing
    /// of it is away any more.
    pub fn forget(&self, room: RoomSid, participant: Option<ParticipantSid>) {
        self.lock()
            .retain(|(r, p, _)| *r != room || participant.is_some_and(|gone| *p != gone));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(RoomSid, ParticipantSid, Cause)>> {
        self.away.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pause in what a client sends at least this long is a silence (a
/// client's words in a burst, or in a busy exchange, come closer).
const SILENCE: Duration = Duration::from_secs(1);

/// When a session last heard its client, and where the client's latest
/// silence began.
///
/// What a client sends into a network that is down is not lost: TCP sends
/// it again once the network is back, so a session may hear a client's
/// pings from the middle of an outage only after it. The outage began at
/// the last word *before* that silence, not at the late ones
/// ([`Heard::quiet_from`]).
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    last: Instant,
    /// The latest silence: from the word before it to the word after.
    silence: (Instant, Instant),
}

impl Heard {
    pub fn new(now: Instant) -> Self {
        Self {
            last: now,
            silence: (now, now),
        }
    }

    /// The client said something at `now`.
    pub fn hear(&mut self, now: Instant) {
        if now >= self.last + SILENCE {
            self.silence = (self.last, now);
        }
        self.last = now;
    }

    /// The client's last word.
    pub fn last(&self) -> Instant {
        self.last
    }

    /// Since when the client may have been cut off: the last word before
    /// its latest silence when nothing but a burst came after that silence
    /// (words held up by an outage, arriving together), its last word
    /// otherwise.
    pub fn quiet_from(&self) -> Instant {
        let (from, until) = self.silence;
        if self.last < until + SILENCE {
            from
        } else {
            self.last
        }
    }
}

/// One session's view of who else in its room is reconnecting, and when
/// the others last saw its own media go away.
#[derive(Debug, Default)]
pub struct Away {
    away: HashSet<(ParticipantSid, Cause)>,
    own_media_away_at: Option<Instant>,
    /// This session's socket is gone and the others were told so: they
    /// must be told of the resume.
    own_detach_shown: bool,
}

/// What the others are shown when this session's client resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Nothing: they were shown this outage already, and its end.
    Nothing,
    /// The end of the outage they were shown (`reconnected`).
    Back,
    /// A whole outage they were not shown (`reconnecting`, `reconnected`):
    /// the client took a silent socket for dead before the server noticed.
    Blip,
}

impl Away {
    /// What `watched` changes for the session of participant `me` in
    /// `room`: the other participants that became reconnecting (`true`) or
    /// are connected again (`false`). A notice is taken ([`Away::take`]);
    /// after missed notices the session catches up with who is away now in
    /// `presence`, as if it had seen each.
    pub fn changes(
        &mut self,
        presence: &Presence,
        room: RoomSid,
        me: ParticipantSid,
        watched: Watched,
    ) -> Vec<(ParticipantSid, bool)> {
        match watched {
            Watched::Notice(notice) => self.take(room, me, notice).into_iter().collect(),
            Watched::Lagged => {
                let mut now = presence.away_in(room).away;
                // Its own media going away may be among what was missed:
                // the others were shown that outage.
                if now.contains(&(me, Cause::Media)) && self.own_media_away_at.is_none() {
                    self.note_own(Notice {
                        room,
                        participant: me,
                        cause: Cause::Media,
                        reconnecting: true,
                    });
                }
                now.retain(|(p, _)| *p != me);
                let mut everyone: Vec<ParticipantSid> =
                    self.away.iter().chain(&now).map(|(p, _)| *p).collect();
                everyone.sort();
                everyone.dedup();
                let before = std::mem::replace(&mut self.away, now);
                everyone
                    .into_iter()
                    .filter_map(|p| {
                        let was = before.iter().any(|(q, _)| *q == p);
                        let is = self.is_away(p);
                        (was != is).then_some((p, is))
                    })
                    .collect()
            }
        }
    }

    /// Take a notice from the presence broadcast for the session of
    /// participant `me` in `room`: another room's is dropped, one about
    /// `me` noted ([`Away::note_own`]). `Some((participant, reconnecting))`
    /// when another participant's state changed: it became reconnecting,
    /// or is connected again.
    pub fn take(
        &mut self,
        room: RoomSid,
        me: ParticipantSid,
        notice: Notice,
    ) -> Option<(ParticipantSid, bool)> {
        if notice.room != room {
            return None;
        }
        if notice.participant == me {
            self.note_own(notice);
            return None;
        }
        self.apply(notice)
            .map(|reconnecting| (notice.participant, reconnecting))
    }

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

    /// Take a notice about this session's own participant.
    pub fn note_own(&mut self, notice: Notice) {
        if notice.cause == Cause::Media && notice.reconnecting {
            self.own_media_away_at = Some(Instant::now());
        }
    }

    /// Whether the others were already shown an outage of this session's
    /// participant that began after `quiet_from` (when its old socket went
    /// quiet, [`Heard::quiet_from`]): its media went silent in the same
    /// outage. A resume then shows them no second reconnect.
    pub fn own_outage_shown_since(&self, quiet_from: Instant) -> bool {
        self.own_media_away_at.is_some_and(|at| at >= quiet_from)
    }

    /// This session's socket is gone (`quiet_from`: since when it was
    /// quiet). Whether to show the others a reconnect: not when its media
    /// going silent already showed them this outage. The socket's end is
    /// often noticed only once the network is back (the client's new
    /// socket, or a reset), after the media came back and they were shown
    /// its end.
    pub fn own_detached(&mut self, quiet_from: Instant) -> bool {
        self.own_detach_shown = !self.own_outage_shown_since(quiet_from);
        self.own_detach_shown
    }

    /// This session's client resumed; `detached` when the session had
    /// noticed its old socket was gone ([`Away::own_detached`]).
    pub fn own_resumed(&mut self, detached: bool, quiet_from: Instant) -> Resumed {
        if detached {
            if std::mem::take(&mut self.own_detach_shown) {
                Resumed::Back
            } else {
                Resumed::Nothing
            }
        } else if self.own_outage_shown_since(quiet_from) {
            Resumed::Nothing
        } else {
            Resumed::Blip
        }
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

    #[tokio::test]
    async fn a_session_that_falls_behind_catches_up_with_who_is_away_now() {
        let presence = Presence::default();
        let room = RoomSid::random();
        let me = ParticipantSid::random();
        let (back, gone, stays) = (
            ParticipantSid::random(),
            ParticipantSid::random(),
            ParticipantSid::random(),
        );
        let notice = |participant, reconnecting| Notice {
            room,
            participant,
            cause: Cause::Signaling,
            reconnecting,
        };
        let mut watching = presence.watch();
        presence.announce(notice(back, true));
        presence.announce(notice(stays, true));
        let mut away = presence.away_in(room);
        // The session reads its notices (seen twice: they came before it
        // read away_in), then falls a whole backlog behind.
        for _ in 0..2 {
            let watched = Presence::next(&mut watching).await;
            assert!(away.changes(&presence, room, me, watched).is_empty());
        }
        presence.announce(notice(back, false));
        presence.announce(notice(gone, true));
        presence.announce(notice(me, true));
        let lag_began = Instant::now();
        presence.announce(Notice {
            cause: Cause::Media,
            ..notice(me, true)
        });
        for _ in 0..BACKLOG {
            presence.announce(notice(stays, true));
        }
        let watched = Presence::next(&mut watching).await;
        assert_eq!(watched, Watched::Lagged);
        let mut changes = away.changes(&presence, room, me, watched);
        changes.sort();
        let mut expected = vec![(back, false), (gone, true)];
        expected.sort();
        assert_eq!(changes, expected, "its own outage is not among them");
        assert!(!away.is_away(me));
        assert!(
            away.own_outage_shown_since(lag_began),
            "its own media outage, which the others were shown, is noted"
        );
        assert!(away.is_away(stays) && away.is_away(gone) && !away.is_away(back));
    }

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

    #[test]
    fn an_outage_its_media_showed_is_one_the_session_need_not_show_again() {
        let (room, me) = (RoomSid::random(), ParticipantSid::random());
        let mut away = Away::default();
        let before = Instant::now();
        assert!(!away.own_outage_shown_since(before));
        let notice = |reconnecting| Notice {
            room,
            participant: me,
            cause: Cause::Media,
            reconnecting,
        };
        away.note_own(notice(false));
        assert!(!away.own_outage_shown_since(before));
        away.note_own(notice(true));
        assert!(away.own_outage_shown_since(before));
        // An outage before the socket's last word was another one.
        assert!(!away.own_outage_shown_since(Instant::now() + std::time::Duration::from_millis(1)));
    }

    #[test]
    fn one_outage_is_shown_once_whichever_of_socket_and_media_is_noticed_first() {
        let (room, me) = (RoomSid::random(), ParticipantSid::random());
        let media = |reconnecting| Notice {
            room,
            participant: me,
            cause: Cause::Media,
            reconnecting,
        };
        // The socket noticed gone first: shown, and its resume too.
        let mut away = Away::default();
        let heard = Instant::now();
        assert!(away.own_detached(heard));
        away.note_own(media(true));
        assert_eq!(away.own_resumed(true, heard), Resumed::Back);
        // The media went silent and came back, and only then was the old
        // socket noticed gone (the CI race): no second reconnect.
        let mut away = Away::default();
        let heard = Instant::now();
        away.note_own(media(true));
        away.note_own(media(false));
        assert!(!away.own_detached(heard));
        assert_eq!(away.own_resumed(true, heard), Resumed::Nothing);
        // A resume before the server noticed anything, media never silent:
        // the whole blip; with the media silent meanwhile: nothing more.
        let mut away = Away::default();
        assert_eq!(away.own_resumed(false, Instant::now()), Resumed::Blip);
        let heard = Instant::now();
        away.note_own(media(true));
        assert_eq!(away.own_resumed(false, heard), Resumed::Nothing);
        // A media outage before the socket's last word was another one.
        let mut away = Away::default();
        away.note_own(media(true));
        away.note_own(media(false));
        let heard = Instant::now() + std::time::Duration::from_millis(1);
        assert!(away.own_detached(heard));
        assert_eq!(away.own_resumed(true, heard), Resumed::Back);
    }

    #[test]
    fn words_held_up_by_an_outage_do_not_move_where_it_began() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut heard = Heard::new(t0);
        // Pings every 5 s: each is the end of a silence that began at the
        // one before.
        heard.hear(t0 + ms(5_000));
        assert_eq!(heard.quiet_from(), t0);
        // The network goes down at 6 s; the pings sent meanwhile arrive
        // together at 11 s, when it is back.
        for late in [11_000, 11_002, 11_004] {
            heard.hear(t0 + ms(late));
        }
        assert_eq!(heard.last(), t0 + ms(11_004));
        assert_eq!(heard.quiet_from(), t0 + ms(5_000));
        // Talk that goes on after the burst: quiet only from the last word.
        heard.hear(t0 + ms(11_600));
        heard.hear(t0 + ms(12_200));
        assert_eq!(heard.quiet_from(), t0 + ms(12_200));

        // The CI race: the media, missed in the outage, showed it; the
        // late pings, then the resume, come after. No second reconnect.
        let now = Instant::now();
        let mut heard = Heard::new(now - ms(10_000));
        heard.hear(now - ms(5_000));
        let mut away = Away::default();
        let room = RoomSid::random();
        let media = |reconnecting| Notice {
            room,
            participant: ParticipantSid::random(),
            cause: Cause::Media,
            reconnecting,
        };
        away.note_own(media(true));
        away.note_own(media(false));
        heard.hear(Instant::now() + ms(1));
        heard.hear(Instant::now() + ms(2));
        assert!(!away.own_outage_shown_since(heard.last()));
        assert_eq!(
            away.own_resumed(false, heard.quiet_from()),
            Resumed::Nothing
        );
    }

    #[test]
    fn a_late_session_starts_knowing_who_is_away_until_they_leave() {
        let presence = Presence::default();
        let (room, other_room) = (RoomSid::random(), RoomSid::random());
        let (p, q) = (ParticipantSid::random(), ParticipantSid::random());
        for (room, participant) in [(room, p), (room, q), (other_room, q)] {
            presence.announce(Notice {
                room,
                participant,
                cause: Cause::Media,
                reconnecting: true,
            });
        }
        presence.announce(Notice {
            room,
            participant: q,
            cause: Cause::Media,
            reconnecting: false,
        });
        let away = presence.away_in(room);
        assert!(away.is_away(p) && !away.is_away(q));
        presence.forget(room, Some(p));
        assert!(!presence.away_in(room).is_away(p));
        assert!(presence.away_in(other_room).is_away(q));
        presence.forget(other_room, None);
        assert!(!presence.away_in(other_room).is_away(q));
    }
}

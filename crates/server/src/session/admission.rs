//! Admission: a token and a room name become a [`Member`] of the room, or a
//! refusal with Twilio's code.

use salon_room::{Join, RoomError, RoomRef, Rooms};
use salon_sid::{ParticipantSid, RoomSid};
use salon_signal::codes;
use tokio::sync::mpsc;

use super::{Member, Participant, Snapshot, Track};
use crate::AppState;
use crate::cluster::{NodeInfo, Route};
use crate::recorder::Recorded;
use crate::service::{SESSION_QUEUE, ServiceError};

/// Why a join was refused: Twilio's code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u32,
    pub message: String,
    /// Not refused but served elsewhere: the room is on this node (or is
    /// placed there). Each front-end tells its client in its own way.
    pub redirect: Option<NodeInfo>,
}

impl Refusal {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            redirect: None,
        }
    }

    /// Go to `node` instead.
    pub fn redirect(node: NodeInfo) -> Self {
        Self {
            code: salon_signal::codes::SIGNALING_ERROR,
            message: format!("The room is served by node {}", node.id),
            redirect: Some(node),
        }
    }
}

impl From<salon_token::Rejection> for Refusal {
    fn from(rejection: salon_token::Rejection) -> Self {
        Self::new(rejection.code(), rejection.to_string())
    }
}

/// Why the room core refused, inside its call.
enum Refused {
    Token(salon_token::Rejection),
    Room(RoomError),
    /// The join would create a room while the database is away.
    Unavailable,
}

/// Verify `token`, then join the room named `room` (a name or an `RM…`
/// SID), or the token's room grant, or else a new room whose unique name is
/// its SID, as Twilio does for `connect(token)` without a name. On success
/// the participant is in the room and its events flow to the [`Member`].
///
/// In a cluster, a room on another node (or a new room placed on another
/// node) is a [`Refusal::redirect`]; `placed_here` says the client was sent
/// here to create the room.
pub async fn admit(
    state: &AppState,
    token: &str,
    room: Option<String>,
    auto_subscribe: bool,
    placed_here: bool,
) -> Result<(Member, Snapshot), Refusal> {
    let verified = state.credentials.verify(token)?;
    admit_verified(state, verified, room, auto_subscribe, placed_here).await
}

/// [`admit`] with a token already verified (a session adopted from a lost
/// node proves itself with its original token, whatever its age).
pub async fn admit_verified(
    state: &AppState,
    verified: salon_token::VerifiedToken,
    room: Option<String>,
    auto_subscribe: bool,
    placed_here: bool,
) -> Result<(Member, Snapshot), Refusal> {
    let wanted = room.clone().or_else(|| verified.room.clone());
    if let Route::Elsewhere(node) =
        crate::cluster::route_join(state, wanted.as_deref(), placed_here).await?
    {
        return Err(Refusal::redirect(node));
    }
    let me = ParticipantSid::random();
    let new_room = RoomSid::random();
    let (room, room_ref) = match room.or_else(|| verified.room.clone()) {
        Some(text) => {
            let room_ref = RoomRef::parse(&text);
            (text, room_ref)
        }
        None => (new_room.to_string(), RoomRef::Name(new_room.to_string())),
    };
    let (events_tx, events) = mpsc::channel(SESSION_QUEUE);
    // Rooms in progress take joins while the database is away (their
    // events are kept for it); new rooms wait until it returns.
    let new_rooms = state.rooms.health().accepts_new_rooms();
    let admitted = state
        .rooms
        .call_recorded(move |rooms, listeners, now| {
            let target = match &room_ref {
                RoomRef::Sid(sid) => rooms.room(*sid).map(|r| (r.name().to_owned(), r.sid())),
                RoomRef::Name(name) => Some(
                    rooms
                        .room_by_name(name)
                        .map_or((name.clone(), new_room), |r| (r.name().to_owned(), r.sid())),
                ),
            };
            if let Some((name, sid)) = &target {
                verified
                    .allows_room(name, sid.as_str())
                    .map_err(Refused::Token)?;
                if *sid == new_room && !new_rooms {
                    return Err(Refused::Unavailable);
                }
            }
            let admission = rooms
                .join(
                    now,
                    Join {
                        room: room_ref,
                        participant: me,
                        identity: verified.identity.clone(),
                        auto_subscribe,
                        new_room,
                    },
                )
                .map_err(Refused::Room)?;
            listeners.attach(admission.room, me, events_tx);
            Ok(snapshot(rooms, admission.room, me))
        })
        .await;
    match admitted {
        // The database went away as this join created its room, before
        // the node noticed (new rooms are refused once it has): the room's
        // creation is only kept, and a room must be in the database before
        // anyone is told it exists (on a shared database its unique index
        // is what keeps names unique). End it (it and its end are written
        // when the database returns) and refuse, as for any new room now.
        Ok((Ok(snapshot), Recorded::Deferred)) if snapshot.room == new_room => {
            drop(events);
            let _ = state.rooms.complete(new_room).await;
            Err(database_unavailable())
        }
        Ok((Ok(snapshot), _)) => {
            let member = Member::new(state.clone(), &snapshot, events);
            Ok((member, snapshot))
        }
        Ok((Err(Refused::Token(rejection)), _)) => Err(rejection.into()),
        Ok((Err(Refused::Room(RoomError::RoomNotFound(_))), _)) if RoomSid::has_prefix(&room) => {
            // Joining a room by SID: say "completed" if it was.
            let completed = match room.parse() {
                Ok(sid) => state.store.room(sid).await.ok().flatten().is_some(),
                Err(_) => false,
            };
            Err(if completed {
                Refusal::new(53118, "Room completed")
            } else {
                Refusal::new(53106, format!("Room not found: {room}"))
            })
        }
        Ok((Err(Refused::Room(e)), _)) => Err(Refusal::new(e.code(), e.to_string())),
        Ok((Err(Refused::Unavailable), _)) | Err(ServiceError::Unavailable) => {
            Err(database_unavailable())
        }
        // Nodes sharing a database: another node created a room of this
        // name at the same moment, and the database's unique index refused
        // ours. End ours (nothing of it was recorded) and send the client
        // to the room that won.
        Err(ServiceError::Store(e)) if e.is_unique_violation() => {
            let _ = state.rooms.complete(new_room).await;
            match crate::cluster::route_join(state, wanted.as_deref(), false).await? {
                Route::Elsewhere(node) => Err(Refusal::redirect(node)),
                Route::Here => Err(Refusal::new(
                    53113,
                    format!("Room exists: {}", wanted.unwrap_or_default()),
                )),
            }
        }
        Err(ServiceError::Closed) => Err(Refusal::new(
            codes::SERVER_BUSY,
            "the server is shutting down",
        )),
        Err(e) => Err(Refusal::new(codes::SIGNALING_ERROR, e.to_string())),
    }
}

/// New rooms wait for the database.
fn database_unavailable() -> Refusal {
    Refusal::new(
        codes::SERVER_BUSY,
        "Cannot create a room now: the database is unavailable",
    )
}

/// The room as `me` finds it on joining.
fn snapshot(rooms: &Rooms, room: RoomSid, me: ParticipantSid) -> Snapshot {
    let mut others = Vec::new();
    let mut mine = None;
    let mut room_name = String::new();
    let mut recording = false;
    let mut dominant_speaker = None;
    let mut network_quality = Vec::new();
    if let Some(r) = rooms.room(room) {
        room_name = r.name().to_owned();
        recording = r.recording();
        dominant_speaker = r.dominant_speaker();
        for p in r.participants() {
            network_quality.extend(
                p.network_quality()
                    .map(|(level, detail)| (p.sid(), level, detail)),
            );
            let participant = Participant {
                sid: p.sid(),
                identity: p.identity().to_owned(),
                tracks: p
                    .tracks()
                    .iter()
                    .map(|t| Track {
                        sid: t.sid(),
                        name: t.name().to_owned(),
                        kind: t.kind(),
                        enabled: t.enabled(),
                        priority: t.priority(),
                    })
                    .collect(),
            };
            if p.sid() == me {
                mine = Some(participant);
            } else {
                others.push(participant);
            }
        }
    }
    let me = mine.unwrap_or(Participant {
        sid: me,
        identity: String::new(),
        tracks: Vec::new(),
    });
    Snapshot {
        room,
        room_name,
        recording,
        dominant_speaker,
        network_quality,
        me,
        others,
    }
}

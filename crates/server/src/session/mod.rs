//! One participant's session in a room, whatever wire protocol carries it.
//!
//! Both signaling front-ends (Salon's `/v1/signaling`, and Twilio's
//! `/signaling`) do the same things underneath: admit a participant with
//! a token ([`admit`]), keep a view of the room from its events
//! ([`Member::apply`]), publish, unpublish, switch and subscribe through the
//! room service, negotiate media with the media server, find a detached
//! session again for a resume ([`Resumables`]), and leave the room when the
//! session ends. That is this module; a front-end is only its protocol: it
//! parses messages, calls a [`Member`], and writes what the returned
//! [`Change`]s and results mean on its wire.
//!
//! ```text
//!  front-end (wire) ──▶ Member ──▶ RoomService (admission, publish, …)
//!        ▲                 │  └──▶ Media (negotiate, data channels)
//!        └── Change ◀──────┘◀── room events
//! ```
//!
//! Nothing here knows a message format: participants and tracks are
//! [`Participant`] and [`Track`], reasons are the room core's, and failures
//! carry Twilio's numeric codes, which both wires use.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use salon_media::{MediaError, PublishBinding, SubscribeBinding};
use salon_room::{DisconnectReason, Event, NetworkQualityDetail, TrackKind};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use salon_signal::codes;
use tokio::sync::mpsc;

use crate::AppState;
use crate::service::ServiceError;

pub mod adaptive;
mod admission;
mod offer;
mod presence;
mod resume;

pub use admission::{Refusal, admit, admit_verified};
pub use offer::{Declared, check_offer};
pub use presence::{Away, Cause, Heard, Notice, Presence, Resumed, Watched};
pub use resume::{Expiry, Resumables, resume};

/// A participant as a session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub sid: ParticipantSid,
    pub identity: String,
    pub tracks: Vec<Track>,
}

/// A published track as a session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub sid: TrackSid,
    pub name: String,
    pub kind: TrackKind,
    pub enabled: bool,
    /// The publisher's priority (`low`, `standard`, `high`).
    pub priority: &'static str,
}

/// The room as the joiner found it.
pub struct Snapshot {
    pub room: RoomSid,
    pub room_name: String,
    /// Whether some track of the room is being recorded.
    pub recording: bool,
    /// The room's dominant speaker, if there is one.
    pub dominant_speaker: Option<ParticipantSid>,
    /// Network quality levels measured so far, with their detail, by
    /// participant.
    pub network_quality: Vec<(ParticipantSid, u8, NetworkQualityDetail)>,
    pub me: Participant,
    /// Everyone else, in the room's order.
    pub others: Vec<Participant>,
}

/// What a room event changed for this participant, for the front-end to
/// tell its client. Events about this participant's own doings, and about
/// participants the client never heard of, change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ParticipantConnected {
        participant: ParticipantSid,
        identity: String,
    },
    ParticipantDisconnected {
        participant: ParticipantSid,
    },
    TrackPublished {
        participant: ParticipantSid,
        track: Track,
    },
    TrackUnpublished {
        participant: ParticipantSid,
        track: TrackSid,
    },
    TrackSwitched {
        participant: ParticipantSid,
        track: TrackSid,
        enabled: bool,
    },
    Subscribed {
        publisher: ParticipantSid,
        track: Track,
    },
    Unsubscribed {
        track: TrackSid,
    },
    /// The room started being recorded, or stopped.
    Recording {
        recording: bool,
    },
    /// The room's dominant speaker (this participant or one the client
    /// heard of); `None` when the last one left.
    DominantSpeaker {
        participant: Option<ParticipantSid>,
    },
    /// A participant's network quality level (this one's, or one the
    /// client heard of).
    NetworkQuality {
        participant: ParticipantSid,
        level: u8,
        /// What is behind the level, for verbosities 2 and 3.
        detail: Box<NetworkQualityDetail>,
    },
    /// A video track this participant receives was switched off (`off`:
    /// Twilio's `switchOffReason`) or on again.
    Switched {
        track: TrackSid,
        off: Option<&'static str>,
    },
    /// Which simulcast layers of this participant's video track someone
    /// receives (in the order of its offer: RID if any, and whether to
    /// send it).
    Layers {
        track: TrackSid,
        layers: Vec<(Option<String>, bool)>,
    },
    /// Another participant set a track's priority.
    TrackPriority {
        participant: ParticipantSid,
        track: TrackSid,
        priority: &'static str,
    },
    /// The room removed this participant: the session is over, and the
    /// client is to be told why.
    Removed(DisconnectReason),
}

/// One participant's standing in a room: the room service and the media
/// server on its behalf, and its view of the room.
pub struct Member {
    pub state: AppState,
    pub room: RoomSid,
    pub room_name: String,
    /// Whether some track of the room is being recorded, as last heard.
    pub recording: bool,
    pub me: ParticipantSid,
    pub identity: String,
    /// The room's events for this participant.
    pub events: mpsc::Receiver<Arc<Event>>,
    /// Everyone else in the room: identity by participant.
    others: HashMap<ParticipantSid, String>,
    /// Every track in the room (others' and mine): publisher and details.
    tracks: HashMap<TrackSid, (ParticipantSid, Track)>,
    /// Tracks this participant receives.
    subscribed: HashSet<TrackSid>,
    /// Whether an offer has been answered: the media session exists.
    negotiated: bool,
}

impl Member {
    /// Tell the room's other sessions that this participant's signaling
    /// is (or is no longer) reconnecting.
    pub fn announce_signaling(&self, reconnecting: bool) {
        self.state.signaling.presence().announce(Notice {
            room: self.room,
            participant: self.me,
            cause: Cause::Signaling,
            reconnecting,
        });
    }

    fn new(state: AppState, snapshot: &Snapshot, events: mpsc::Receiver<Arc<Event>>) -> Self {
        let mut tracks = HashMap::new();
        for participant in &snapshot.others {
            for track in &participant.tracks {
                tracks.insert(track.sid, (participant.sid, track.clone()));
            }
        }
        Self {
            state,
            room: snapshot.room,
            room_name: snapshot.room_name.clone(),
            recording: snapshot.recording,
            me: snapshot.me.sid,
            identity: snapshot.me.identity.clone(),
            events,
            others: snapshot
                .others
                .iter()
                .map(|p| (p.sid, p.identity.clone()))
                .collect(),
            tracks,
            subscribed: HashSet::new(),
            negotiated: false,
        }
    }

    /// The room as this session knows it now: this participant and
    /// everyone else, with their tracks.
    pub fn roster(&self) -> (Participant, Vec<Participant>) {
        let tracks_of = |sid: ParticipantSid| -> Vec<Track> {
            self.tracks
                .values()
                .filter(|(p, _)| *p == sid)
                .map(|(_, t)| t.clone())
                .collect()
        };
        let others = self
            .others
            .iter()
            .map(|(sid, identity)| Participant {
                sid: *sid,
                identity: identity.clone(),
                tracks: tracks_of(*sid),
            })
            .collect();
        let me = Participant {
            sid: self.me,
            identity: self.identity.clone(),
            tracks: tracks_of(self.me),
        };
        (me, others)
    }

    /// A track's kind, if this session knows the track.
    pub fn kind_of(&self, track: &TrackSid) -> Option<TrackKind> {
        self.tracks.get(track).map(|(_, t)| t.kind)
    }

    /// Whether this participant receives `track`.
    pub fn is_subscribed(&self, track: &TrackSid) -> bool {
        self.subscribed.contains(track)
    }

    /// Whether an offer has been answered: the media session exists.
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// Update the view of the room with one of its events; what changed
    /// for this client, if anything.
    pub fn apply(&mut self, event: &Event) -> Option<Change> {
        let me = self.me;
        let change = match event {
            Event::ParticipantConnected {
                participant,
                identity,
                ..
            } if *participant != me => {
                self.others.insert(*participant, identity.clone());
                Change::ParticipantConnected {
                    participant: *participant,
                    identity: identity.clone(),
                }
            }
            Event::ParticipantDisconnected {
                participant,
                reason,
                ..
            } => {
                if *participant == me {
                    return Some(Change::Removed(*reason));
                }
                // Only someone this client heard of: the participant a
                // duplicate identity replaced left before this session
                // joined.
                self.others.remove(participant)?;
                self.tracks
                    .retain(|_, (publisher, _)| publisher != participant);
                Change::ParticipantDisconnected {
                    participant: *participant,
                }
            }
            Event::TrackPublished {
                participant,
                track,
                name,
                kind,
                enabled,
                ..
            } if *participant != me => {
                let info = Track {
                    sid: *track,
                    name: name.clone(),
                    kind: *kind,
                    enabled: *enabled,
                    priority: "standard",
                };
                self.tracks.insert(*track, (*participant, info.clone()));
                Change::TrackPublished {
                    participant: *participant,
                    track: info,
                }
            }
            Event::TrackUnpublished {
                participant, track, ..
            } if *participant != me => {
                self.tracks.remove(track);
                self.subscribed.remove(track);
                Change::TrackUnpublished {
                    participant: *participant,
                    track: *track,
                }
            }
            Event::TrackSwitched {
                participant,
                track,
                enabled,
                ..
            } if *participant != me => {
                if let Some((_, info)) = self.tracks.get_mut(track) {
                    info.enabled = *enabled;
                }
                Change::TrackSwitched {
                    participant: *participant,
                    track: *track,
                    enabled: *enabled,
                }
            }
            Event::RecordingChanged { recording, .. } => {
                self.recording = *recording;
                Change::Recording {
                    recording: *recording,
                }
            }
            Event::Subscribed {
                subscriber,
                publisher,
                track,
                ..
            } if *subscriber == me => {
                let (_, info) = self.tracks.get(track).cloned()?;
                self.subscribed.insert(*track);
                if info.kind == TrackKind::Data {
                    self.state.media.subscribe_data(self.room, me, *track);
                }
                Change::Subscribed {
                    publisher: *publisher,
                    track: info,
                }
            }
            Event::Unsubscribed {
                subscriber, track, ..
            } if *subscriber == me => {
                self.subscribed.remove(track);
                Change::Unsubscribed { track: *track }
            }
            Event::NetworkQualityChanged {
                participant,
                level,
                detail,
                ..
            } if *participant == me || self.others.contains_key(participant) => {
                Change::NetworkQuality {
                    participant: *participant,
                    level: *level,
                    detail: detail.clone(),
                }
            }
            Event::SubscriptionSwitched {
                subscriber,
                track,
                off,
                ..
            } if *subscriber == me && self.subscribed.contains(track) => Change::Switched {
                track: *track,
                off: *off,
            },
            Event::PublisherLayers {
                participant,
                track,
                layers,
                ..
            } if *participant == me => Change::Layers {
                track: *track,
                layers: layers.clone(),
            },
            Event::TrackPriorityChanged {
                participant,
                track,
                priority,
                ..
            } if *participant != me && self.tracks.contains_key(track) => {
                if let Some((_, info)) = self.tracks.get_mut(track) {
                    info.priority = priority;
                }
                Change::TrackPriority {
                    participant: *participant,
                    track: *track,
                    priority,
                }
            }
            Event::DominantSpeakerChanged { participant, .. }
                if participant.is_none_or(|p| p == me || self.others.contains_key(&p)) =>
            {
                Change::DominantSpeaker {
                    participant: *participant,
                }
            }
            _ => return None,
        };
        Some(change)
    }

    /// Publish an audio or video track (its media comes with the next
    /// negotiation).
    pub async fn publish(
        &mut self,
        name: String,
        kind: TrackKind,
        enabled: bool,
    ) -> Result<Track, ServiceError> {
        let sid = TrackSid::random();
        self.state
            .rooms
            .publish(self.me, sid, name.clone(), kind, enabled)
            .await?;
        let track = Track {
            sid,
            name,
            kind,
            enabled,
            priority: "standard",
        };
        self.tracks.insert(sid, (self.me, track.clone()));
        Ok(track)
    }

    /// Publish a data track whose messages arrive on the data channel
    /// `label`.
    pub async fn publish_data(
        &mut self,
        name: String,
        label: String,
    ) -> Result<Track, ServiceError> {
        let track = self.publish(name, TrackKind::Data, true).await?;
        self.state
            .media
            .publish_data(self.room, self.me, label, track.sid);
        Ok(track)
    }

    pub async fn unpublish(&mut self, track: TrackSid) -> Result<(), ServiceError> {
        self.state.rooms.unpublish(self.me, track).await?;
        self.tracks.remove(&track);
        Ok(())
    }

    pub async fn set_track_enabled(
        &mut self,
        track: TrackSid,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        self.state
            .rooms
            .set_track_enabled(self.me, track, enabled)
            .await?;
        if let Some((_, info)) = self.tracks.get_mut(&track) {
            info.enabled = enabled;
        }
        Ok(())
    }

    pub async fn subscribe(&self, track: TrackSid) -> Result<(), ServiceError> {
        self.state.rooms.subscribe(self.me, track).await
    }

    pub async fn unsubscribe(&self, track: TrackSid) -> Result<(), ServiceError> {
        self.state.rooms.unsubscribe(self.me, track).await
    }

    /// Apply a client's offer in the media server and answer it. When it
    /// fails, the tracks published for it (`published`) are taken back.
    pub async fn negotiate(
        &mut self,
        sdp: String,
        bindings: Vec<PublishBinding>,
        subscriptions: Vec<SubscribeBinding>,
        published: &[TrackSid],
    ) -> Result<String, MediaError> {
        let answer = self
            .state
            .media
            .negotiate(self.room, self.me, sdp, bindings, subscriptions)
            .await;
        match answer {
            Ok(answer) => {
                self.negotiated = true;
                Ok(answer)
            }
            Err(e) => {
                for track in published {
                    let _ = self.state.rooms.unpublish(self.me, *track).await;
                    self.tracks.remove(track);
                }
                Err(e)
            }
        }
    }

    /// Leave the room (if still in it) for `reason`.
    pub async fn leave(&self, reason: DisconnectReason) {
        match self.state.rooms.disconnect(self.me, reason).await {
            Ok(()) | Err(ServiceError::Room(_)) | Err(ServiceError::Closed) => {}
            Err(e) => tracing::warn!(participant = %self.me, error = %e, "leaving the room failed"),
        }
    }
}

/// A failure of the room service, as a Twilio code and message.
pub fn service_failure(e: ServiceError) -> (u32, String) {
    match e {
        ServiceError::Room(e) => (e.code(), e.to_string()),
        other => (codes::SIGNALING_ERROR, other.to_string()),
    }
}

/// How a session ends, as its client is told: the room core's reason,
/// Twilio's code for it (none for leaving or a kick) and Twilio's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goodbye {
    pub reason: DisconnectReason,
    pub code: Option<u32>,
    pub message: String,
}

impl Goodbye {
    pub fn of(reason: DisconnectReason) -> Self {
        let (code, message) = match reason {
            DisconnectReason::Left => (None, "Left the room"),
            DisconnectReason::Kicked => (None, "Participant removed from the room"),
            DisconnectReason::DuplicateIdentity => (
                Some(53205),
                "Participant disconnected because of duplicate identity",
            ),
            DisconnectReason::RoomCompleted => (Some(53118), "Room completed"),
            DisconnectReason::Shutdown => {
                (Some(53118), "Room completed: the server is shutting down")
            }
            DisconnectReason::MaxDurationExceeded => {
                (Some(53216), "Participant session length exceeded")
            }
            DisconnectReason::MediaTimeout => (
                Some(codes::MEDIA_FAILED),
                "Media connection failed or Media activity ceased",
            ),
            DisconnectReason::Failed => (
                Some(codes::SIGNALING_DISCONNECTED),
                "Signaling connection disconnected",
            ),
        };
        Self {
            reason,
            code,
            message: message.into(),
        }
    }

    /// A keepalive timeout is a failure with its own code, 53002, in the
    /// goodbye itself: one message says what happened.
    pub fn idle(after: Duration) -> Self {
        Self {
            reason: DisconnectReason::Failed,
            code: Some(codes::SIGNALING_TIMEOUT),
            message: format!(
                "Signaling connection timed out: nothing received for {} s",
                after.as_secs()
            ),
        }
    }
}

/// Separates the parts of a session id (`~` is in no node id or SID).
const SESSION_NODE_SEPARATOR: char = '~';

/// A new session id for a session in `room`; in a cluster it starts with
/// this node's id and the room's SID (`node~RM…~random`), so a resume that
/// reaches another node finds its way here, or, once this node is lost,
/// the room the session was in.
pub fn session_id(state: &AppState, room: RoomSid) -> String {
    match &state.cluster {
        Some(cluster) => format!(
            "{}{SESSION_NODE_SEPARATOR}{room}{SESSION_NODE_SEPARATOR}{}",
            cluster.node(),
            random_id()
        ),
        None => random_id(),
    }
}

/// The room a cluster's session id names.
pub fn session_room(id: &str) -> Option<RoomSid> {
    let mut parts = id.split(SESSION_NODE_SEPARATOR);
    let (_node, room, _random) = (parts.next()?, parts.next()?, parts.next()?);
    room.parse().ok()
}

/// The live node, other than this one, whose session `id` is.
pub async fn session_node(state: &AppState, id: &str) -> Option<crate::cluster::NodeInfo> {
    let cluster = state.cluster.as_ref()?;
    let (node, _) = id.split_once(SESSION_NODE_SEPARATOR)?;
    if node == cluster.node() {
        return None;
    }
    cluster.find(node).await.ok().flatten()
}

/// Whether session `id` is of this node, and this node is draining.
pub fn draining_node_of(state: &AppState, id: &str) -> bool {
    state.cluster.as_ref().is_some_and(|cluster| {
        cluster.draining()
            && id
                .split_once(SESSION_NODE_SEPARATOR)
                .is_some_and(|(node, _)| node == cluster.node())
    })
}

/// The node named by session `id` when it is another node of the cluster
/// and no longer live (it stopped renewing its lease): the session, and
/// its room, are gone with it. `None` when that cannot be said (a single
/// node, this node's own session, a live node, Redis not answering).
pub async fn lost_node(state: &AppState, id: &str) -> Option<String> {
    let cluster = state.cluster.as_ref()?;
    let (node, _) = id.split_once(SESSION_NODE_SEPARATOR)?;
    if node == cluster.node() {
        return None;
    }
    match cluster.find(node).await {
        Ok(None) => Some(node.to_string()),
        Ok(Some(_)) | Err(_) => None,
    }
}

/// A random id: 128 bits, hex.
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

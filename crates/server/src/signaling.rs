//! Salon's signaling front-end: the `/v1/signaling` WebSocket.
//!
//! One task per session translates between the protocol (`salon-signal`)
//! and the rest of the server: admission and room changes go to the room
//! service, SDP goes to the media server, and the room's events come back as
//! protocol messages. The protocol itself is documented in
//! `docs/protocol.md`; this module holds no room rules (the core does) and
//! no media logic (the media server does).
//!
//! ```text
//!  WebSocket ─▶ reader task ─▶ incoming ─┐
//!                                         ▼
//!                 room events ─────▶ Session ──▶ RoomService (admission, publish, …)
//!                                         │  └──▶ Media (negotiate, data channels)
//!  WebSocket ◀─ writer task ◀─ outgoing ─┘
//! ```
//!
//! Every queue is bounded. The socket's two tasks and their limits (send
//! timeout, rate limit, frame size) are in [`connection`]. A client that
//! does not read its socket is cut off; a client that sends nothing for
//! [`SignalingConfig::idle_timeout`] is disconnected (53002). When a socket drops without a
//! close frame, the session waits [`SignalingConfig::resume_grace`] for a `resume` on a new
//! socket before giving the participant up; media keeps flowing meanwhile.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::Response;
use salon_media::{MediaKind, PublishBinding, SubscribeBinding};
use salon_room::{
    DisconnectReason as CoreReason, Event, Join, RoomError, RoomRef, Rooms, TrackKind as CoreKind,
};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use salon_signal::{
    ClientMessage, DisconnectReason, ParticipantInfo, Published, RoomInfo, ServerMessage,
    TrackInfo, TrackKind, codes,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::AppState;
use crate::http::SocketControl;
use crate::service::{SESSION_QUEUE, ServiceError};

mod connection;
pub use connection::{BURST_SECONDS, RATE_LIMITED};
use connection::{Connection, Incoming};

/// Signaling's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalingConfig {
    /// Time allowed for the first message (`join` or `resume`).
    pub join_timeout: Duration,
    /// A session whose client sends nothing (not even `ping`) for this long ends.
    pub idle_timeout: Duration,
    /// How long a session whose socket dropped waits for `resume`.
    pub resume_grace: Duration,
    /// A client whose socket takes no data for this long is not reading:
    /// its connection is reset (the session may still be resumed).
    pub send_timeout: Duration,
    /// Messages a session may send per second on average, in bursts of
    /// ten seconds' worth; more are refused with 20429. 0: no limit.
    pub messages_per_second: u32,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            join_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            resume_grace: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            messages_per_second: 50,
        }
    }
}
/// Messages kept for a detached session, to replay on `resume`.
const BACKLOG: usize = 512;
/// Longest `mid` accepted (str0m stores 16 bytes).
const MAX_MID: usize = 16;

/// Signaling's shared state: its timeouts, and the sessions that can be
/// resumed, by session id.
#[derive(Default)]
pub struct Signaling {
    config: SignalingConfig,
    sessions: Mutex<HashMap<String, Resumable>>,
}

struct Resumable {
    identity: String,
    attach: mpsc::Sender<Connection>,
}

impl Signaling {
    pub fn new(config: SignalingConfig) -> Self {
        Self {
            config,
            sessions: Mutex::default(),
        }
    }

    fn register(&self, id: &str, resumable: Resumable) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), resumable);
    }

    fn forget(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn find(&self, id: &str) -> Option<(String, mpsc::Sender<Connection>)> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(id)
            .map(|r| (r.identity.clone(), r.attach.clone()))
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `GET /v1/signaling`: upgrade to a WebSocket and run a session on it.
pub async fn upgrade(
    State(state): State<AppState>,
    control: Option<Extension<SocketControl>>,
    ws: WebSocketUpgrade,
) -> Response {
    let control = control.map(|Extension(control)| control);
    connection::configure(ws).on_upgrade(move |socket| serve(state, socket, control))
}

async fn serve(state: AppState, socket: WebSocket, control: Option<SocketControl>) {
    let mut connection = Connection::spawn(socket, &state.signaling.config, control);
    let join_timeout = state.signaling.config.join_timeout;
    let first = tokio::time::timeout(join_timeout, connection.incoming.recv()).await;
    match first {
        Ok(Some(Incoming::Message(ClientMessage::Join {
            token,
            room,
            auto_subscribe,
            client,
            ..
        }))) => {
            join(state, connection, token, room, auto_subscribe, client).await;
        }
        Ok(Some(Incoming::Message(ClientMessage::Resume { token, session, .. }))) => {
            resume(state, connection, token, session).await;
        }
        Ok(Some(Incoming::Message(other))) => {
            let message = format!(
                "the first message must be join or resume, not {}",
                other.kind()
            );
            connection.refuse(codes::INVALID_MESSAGE, message).await;
        }
        Ok(Some(Incoming::Invalid(e))) => connection.refuse(e.code(), e.to_string()).await,
        Ok(Some(Incoming::Closed { .. }) | None) => {}
        Err(_) => {
            let message = format!("no join within {} s", join_timeout.as_secs_f32());
            connection.refuse(codes::SIGNALING_TIMEOUT, message).await;
        }
    }
}

// ---- admission --------------------------------------------------------------

/// Why a join was refused.
enum Refusal {
    Token(salon_token::Rejection),
    Room(RoomError),
}

/// What the joiner learns about the room.
struct Snapshot {
    room: RoomInfo,
    me: ParticipantInfo,
    others: Vec<ParticipantInfo>,
}

async fn join(
    state: AppState,
    connection: Connection,
    token: String,
    room: String,
    auto_subscribe: bool,
    client: Option<String>,
) {
    let verified = match state.credentials.verify(&token) {
        Ok(verified) => verified,
        Err(rejection) => {
            return connection
                .refuse(rejection.code(), rejection.to_string())
                .await;
        }
    };
    let me = ParticipantSid::random();
    let new_room = RoomSid::random();
    let room_ref = RoomRef::parse(&room);
    let identity = verified.identity.clone();
    let (events_tx, events) = mpsc::channel(SESSION_QUEUE);
    let admitted = state
        .rooms
        .call_with_listeners(move |rooms, listeners, now| {
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
                    .map_err(Refusal::Token)?;
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
                .map_err(Refusal::Room)?;
            listeners.attach(admission.room, me, events_tx);
            Ok(snapshot(rooms, admission.room, me))
        })
        .await;
    let snapshot = match admitted {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(Refusal::Token(rejection))) => {
            return connection
                .refuse(rejection.code(), rejection.to_string())
                .await;
        }
        Ok(Err(Refusal::Room(RoomError::RoomNotFound(_)))) if RoomSid::has_prefix(&room) => {
            // Joining a room by SID: say "completed" if it was.
            let completed = match room.parse() {
                Ok(sid) => state.store.room(sid).await.ok().flatten().is_some(),
                Err(_) => false,
            };
            return if completed {
                connection.refuse(53118, "Room completed".into()).await
            } else {
                connection
                    .refuse(53106, format!("Room not found: {room}"))
                    .await
            };
        }
        Ok(Err(Refusal::Room(e))) => return connection.refuse(e.code(), e.to_string()).await,
        Err(ServiceError::Closed) => {
            return connection
                .refuse(codes::SERVER_BUSY, "the server is shutting down".into())
                .await;
        }
        Err(e) => {
            return connection
                .refuse(codes::SIGNALING_ERROR, e.to_string())
                .await;
        }
    };
    tracing::info!(
        room = %snapshot.room.sid,
        participant = %me,
        identity,
        client = client.as_deref().unwrap_or("-"),
        "signaling session joined"
    );
    let session_id = random_hex();
    let (attach_tx, attach) = mpsc::channel(1);
    state.signaling.register(
        &session_id,
        Resumable {
            identity: identity.clone(),
            attach: attach_tx,
        },
    );
    let mut tracks = HashMap::new();
    let others = snapshot
        .others
        .iter()
        .map(|p| (p.sid, p.identity.clone()))
        .collect();
    for participant in &snapshot.others {
        for track in &participant.tracks {
            tracks.insert(track.sid, (participant.sid, track.clone()));
        }
    }
    let mut session = Session {
        state: state.clone(),
        id: session_id.clone(),
        room: snapshot.room.clone(),
        me,
        identity,
        events,
        attach,
        connection: Some(connection),
        backlog: VecDeque::new(),
        others,
        tracks,
        subscribed: HashSet::new(),
        last_heard: Instant::now(),
        detached_at: None,
        last_revision: 0,
    };
    session.send(ServerMessage::Joined {
        version: salon_signal::VERSION,
        session: session_id.clone(),
        resumed: false,
        room: snapshot.room,
        participant: snapshot.me,
        participants: snapshot.others,
        ice_servers: Vec::new(),
        last_revision: 0,
    });
    session.run().await;
    state.signaling.forget(&session_id);
}

async fn resume(state: AppState, connection: Connection, token: String, session: String) {
    let verified = match state.credentials.verify(&token) {
        Ok(verified) => verified,
        Err(rejection) => {
            return connection
                .refuse(rejection.code(), rejection.to_string())
                .await;
        }
    };
    match state.signaling.find(&session) {
        Some((identity, attach)) if identity == verified.identity => {
            if attach.send(connection).await.is_err() {
                tracing::debug!("resume raced with the session ending");
            }
        }
        Some(_) => {
            connection
                .refuse(20106, "the token's identity is not the session's".into())
                .await
        }
        None => {
            connection
                .refuse(
                    codes::SIGNALING_DISCONNECTED,
                    "no such session to resume: join again".into(),
                )
                .await
        }
    }
}

fn snapshot(rooms: &Rooms, room: RoomSid, me: ParticipantSid) -> Snapshot {
    let mut others = Vec::new();
    let mut mine = None;
    let mut info = RoomInfo {
        sid: room,
        name: String::new(),
    };
    if let Some(r) = rooms.room(room) {
        info.name = r.name().to_owned();
        for p in r.participants() {
            let participant = ParticipantInfo {
                sid: p.sid(),
                identity: p.identity().to_owned(),
                tracks: p
                    .tracks()
                    .iter()
                    .map(|t| TrackInfo {
                        sid: t.sid(),
                        name: t.name().to_owned(),
                        kind: wire_kind(t.kind()),
                        enabled: t.enabled(),
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
    let me = mine.unwrap_or(ParticipantInfo {
        sid: me,
        identity: String::new(),
        tracks: Vec::new(),
    });
    Snapshot {
        room: info,
        me,
        others,
    }
}

// ---- the session ------------------------------------------------------------

struct Session {
    state: AppState,
    id: String,
    room: RoomInfo,
    me: ParticipantSid,
    identity: String,
    events: mpsc::Receiver<Arc<Event>>,
    attach: mpsc::Receiver<Connection>,
    connection: Option<Connection>,
    /// What the client missed while detached, replayed on resume.
    backlog: VecDeque<String>,
    /// Everyone else in the room: identity by participant.
    others: HashMap<ParticipantSid, String>,
    /// Every track in the room (others' and mine): publisher and details.
    tracks: HashMap<TrackSid, (ParticipantSid, TrackInfo)>,
    /// Tracks this participant receives.
    subscribed: HashSet<TrackSid>,
    last_heard: Instant,
    detached_at: Option<Instant>,
    /// The revision of the last offer handled.
    last_revision: u32,
}

/// What the session loop should do next.
enum Next {
    Continue,
    /// Leave the room for this reason and say goodbye.
    End(CoreReason),
    /// The room already removed us and the client was told.
    Ended,
}

impl Session {
    async fn run(&mut self) {
        let reason = loop {
            let config = self.state.signaling.config;
            let deadline = match self.detached_at {
                Some(at) => at + config.resume_grace,
                None => self.last_heard + config.idle_timeout,
            };
            let next = tokio::select! {
                incoming = recv(&mut self.connection) => self.on_incoming(incoming).await,
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(&event),
                    // The room service cut us off: our queue overflowed.
                    None => Next::End(CoreReason::Failed),
                },
                Some(connection) = self.attach.recv() => {
                    self.reattach(connection);
                    Next::Continue
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if self.detached_at.is_some() {
                        tracing::info!(participant = %self.me, "session not resumed in time");
                        Next::End(CoreReason::Failed)
                    } else {
                        self.send(ServerMessage::Error { code: codes::SIGNALING_TIMEOUT, message: "Signaling connection timed out".into(), revision: None });
                        Next::End(CoreReason::Failed)
                    }
                }
            };
            match next {
                Next::Continue => {}
                Next::End(reason) => break Some(reason),
                Next::Ended => break None,
            }
        };
        if let Some(reason) = reason {
            self.finish(reason).await;
        }
    }

    /// Leave the room (if still in it), tell the client why, close.
    async fn finish(&mut self, reason: CoreReason) {
        match self.state.rooms.disconnect(self.me, reason).await {
            Ok(()) | Err(ServiceError::Room(_)) | Err(ServiceError::Closed) => {}
            Err(e) => tracing::warn!(participant = %self.me, error = %e, "leaving the room failed"),
        }
        self.say_goodbye(reason);
    }

    fn say_goodbye(&mut self, reason: CoreReason) {
        let reason = wire_reason(reason);
        self.send(ServerMessage::Disconnected {
            reason,
            code: reason.code(),
            message: goodbye(reason).into(),
        });
        // Dropping the connection closes the socket once the writer has
        // sent what is queued.
        self.connection = None;
    }

    /// Queue a message for the client, or keep it for a resume while
    /// detached.
    fn send(&mut self, message: ServerMessage) {
        match &self.connection {
            Some(connection) => {
                if !connection.send(&message) {
                    tracing::warn!(participant = %self.me, "client is not reading its socket; detaching");
                    self.connection = None;
                    self.detached_at = Some(Instant::now());
                    self.keep(message);
                }
            }
            None => self.keep(message),
        }
    }

    fn keep(&mut self, message: ServerMessage) {
        if self.backlog.len() == BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back(message.to_json());
    }

    fn reattach(&mut self, connection: Connection) {
        tracing::info!(participant = %self.me, "session resumed");
        self.connection = Some(connection);
        self.detached_at = None;
        self.last_heard = Instant::now();
        let others: Vec<ParticipantInfo> = self
            .others
            .iter()
            .map(|(sid, identity)| ParticipantInfo {
                sid: *sid,
                identity: identity.clone(),
                tracks: self
                    .tracks
                    .values()
                    .filter(|(p, _)| p == sid)
                    .map(|(_, t)| t.clone())
                    .collect(),
            })
            .collect();
        let mine: Vec<TrackInfo> = self
            .tracks
            .values()
            .filter(|(p, _)| *p == self.me)
            .map(|(_, t)| t.clone())
            .collect();
        let joined = ServerMessage::Joined {
            version: salon_signal::VERSION,
            session: self.id.clone(),
            resumed: true,
            room: self.room.clone(),
            participant: ParticipantInfo {
                sid: self.me,
                identity: self.identity.clone(),
                tracks: mine,
            },
            participants: others,
            ice_servers: Vec::new(),
            last_revision: self.last_revision,
        };
        self.send(joined);
        let backlog: Vec<String> = self.backlog.drain(..).collect();
        if let Some(connection) = &self.connection {
            for text in backlog {
                if connection.outgoing.try_send(text).is_err() {
                    break;
                }
            }
        }
    }

    async fn on_incoming(&mut self, incoming: Option<Incoming>) -> Next {
        match incoming {
            Some(Incoming::Message(message)) => {
                self.last_heard = Instant::now();
                self.on_message(message).await
            }
            Some(Incoming::Invalid(e)) => {
                self.last_heard = Instant::now();
                self.send(ServerMessage::Error {
                    code: e.code(),
                    message: e.to_string(),
                    revision: None,
                });
                Next::Continue
            }
            Some(Incoming::Closed { clean: true }) => Next::End(CoreReason::Left),
            Some(Incoming::Closed { clean: false }) | None => {
                tracing::info!(participant = %self.me, "socket dropped; waiting for resume");
                self.connection = None;
                self.detached_at = Some(Instant::now());
                Next::Continue
            }
        }
    }

    fn error(&mut self, code: u32, message: impl Into<String>) {
        self.send(ServerMessage::Error {
            code,
            message: message.into(),
            revision: None,
        });
    }

    /// An error about the offer with `revision`.
    fn offer_error(&mut self, revision: u32, code: u32, message: impl Into<String>) {
        self.send(ServerMessage::Error {
            code,
            message: message.into(),
            revision: Some(revision),
        });
    }

    fn service_error(&mut self, e: ServiceError) {
        match e {
            ServiceError::Room(e) => self.error(e.code(), e.to_string()),
            other => self.error(codes::SIGNALING_ERROR, other.to_string()),
        }
    }

    async fn on_message(&mut self, message: ClientMessage) -> Next {
        match message {
            ClientMessage::Join { .. } | ClientMessage::Resume { .. } => {
                self.error(
                    codes::INVALID_MESSAGE,
                    "already joined: join and resume only open a session",
                );
            }
            ClientMessage::Ping { id } => self.send(ServerMessage::Pong { id }),
            ClientMessage::Leave {} => return Next::End(CoreReason::Left),
            ClientMessage::Offer {
                revision,
                sdp,
                publish,
                subscribe,
            } => {
                self.offer(revision, sdp, publish, subscribe).await;
            }
            ClientMessage::PublishData { name, label } => self.publish_data(name, label).await,
            ClientMessage::Unpublish { track } => {
                if let Err(e) = self.state.rooms.unpublish(self.me, track).await {
                    self.service_error(e);
                } else {
                    self.tracks.remove(&track);
                }
            }
            ClientMessage::SetTrackEnabled { track, enabled } => {
                match self
                    .state
                    .rooms
                    .set_track_enabled(self.me, track, enabled)
                    .await
                {
                    Ok(()) => {
                        if let Some((_, info)) = self.tracks.get_mut(&track) {
                            info.enabled = enabled;
                        }
                    }
                    Err(e) => self.service_error(e),
                }
            }
            ClientMessage::Subscribe { track } => {
                if let Err(e) = self.state.rooms.subscribe(self.me, track).await {
                    self.service_error(e);
                }
            }
            ClientMessage::Unsubscribe { track } => {
                if let Err(e) = self.state.rooms.unsubscribe(self.me, track).await {
                    self.service_error(e);
                }
            }
        }
        Next::Continue
    }

    async fn offer(
        &mut self,
        revision: u32,
        sdp: String,
        publish: Vec<salon_signal::PublishMedia>,
        subscribe: Vec<salon_signal::SubscribeMedia>,
    ) {
        let bad_mid = publish
            .iter()
            .map(|p| &p.mid)
            .chain(subscribe.iter().map(|s| &s.mid))
            .find(|m| !valid_mid(m));
        if let Some(mid) = bad_mid {
            let mid = crate::rest::params::excerpt(mid);
            self.last_revision = revision;
            return self.offer_error(
                revision,
                codes::INVALID_MESSAGE,
                format!("invalid mid '{mid}': 1 to {MAX_MID} letters, digits, '-' or '_'"),
            );
        }
        let mut published = Vec::new();
        let mut bindings = Vec::new();
        for p in publish {
            let (core, media) = match p.kind {
                TrackKind::Audio => (CoreKind::Audio, MediaKind::Audio),
                TrackKind::Video => (CoreKind::Video, MediaKind::Video),
                TrackKind::Data => {
                    self.offer_error(
                        revision,
                        53300,
                        "Track is invalid: data tracks are published with publish_data, not in an offer",
                    );
                    continue;
                }
            };
            let sid = TrackSid::random();
            match self
                .state
                .rooms
                .publish(self.me, sid, p.name.clone(), core, p.enabled)
                .await
            {
                Ok(()) => {
                    let track = TrackInfo {
                        sid,
                        name: p.name,
                        kind: p.kind,
                        enabled: p.enabled,
                    };
                    self.tracks.insert(sid, (self.me, track.clone()));
                    published.push(Published {
                        mid: p.mid.clone(),
                        track,
                    });
                    bindings.push(PublishBinding {
                        mid: p.mid,
                        track: sid,
                        kind: media,
                    });
                }
                Err(ServiceError::Room(e)) => self.offer_error(revision, e.code(), e.to_string()),
                Err(e) => self.offer_error(revision, codes::SIGNALING_ERROR, e.to_string()),
            }
        }
        let mut subscriptions = Vec::new();
        for s in subscribe {
            if self.subscribed.contains(&s.track) {
                subscriptions.push(SubscribeBinding {
                    mid: s.mid,
                    track: s.track,
                });
            } else {
                self.offer_error(
                    revision,
                    53300,
                    format!("Track is invalid: you are not subscribed to {}", s.track),
                );
            }
        }
        let room = self.room.sid;
        self.last_revision = revision;
        match self
            .state
            .media
            .negotiate(room, self.me, sdp, bindings, subscriptions)
            .await
        {
            Ok(answer) => self.send(ServerMessage::Answer {
                revision,
                sdp: answer,
                published,
            }),
            Err(e) => {
                for p in &published {
                    let _ = self.state.rooms.unpublish(self.me, p.track.sid).await;
                    self.tracks.remove(&p.track.sid);
                }
                self.offer_error(revision, e.code(), e.to_string());
            }
        }
    }

    async fn publish_data(&mut self, name: String, label: String) {
        let sid = TrackSid::random();
        match self
            .state
            .rooms
            .publish(self.me, sid, name.clone(), CoreKind::Data, true)
            .await
        {
            Ok(()) => {
                let track = TrackInfo {
                    sid,
                    name,
                    kind: TrackKind::Data,
                    enabled: true,
                };
                self.tracks.insert(sid, (self.me, track.clone()));
                self.state
                    .media
                    .publish_data(self.room.sid, self.me, label.clone(), sid);
                self.send(ServerMessage::Published {
                    published: Published { mid: label, track },
                });
            }
            Err(e) => self.service_error(e),
        }
    }

    /// Translate one room event for this participant.
    fn on_event(&mut self, event: &Event) -> Next {
        let me = self.me;
        match event {
            Event::ParticipantConnected {
                participant,
                identity,
                ..
            } if *participant != me => {
                self.others.insert(*participant, identity.clone());
                self.send(ServerMessage::ParticipantConnected {
                    participant: ParticipantInfo {
                        sid: *participant,
                        identity: identity.clone(),
                        tracks: Vec::new(),
                    },
                });
            }
            Event::ParticipantDisconnected {
                participant,
                reason,
                ..
            } => {
                if *participant == me {
                    self.say_goodbye(*reason);
                    return Next::Ended;
                }
                self.others.remove(participant);
                self.tracks
                    .retain(|_, (publisher, _)| publisher != participant);
                self.send(ServerMessage::ParticipantDisconnected {
                    participant: *participant,
                });
            }
            Event::TrackPublished {
                participant,
                track,
                name,
                kind,
                enabled,
                ..
            } if *participant != me => {
                let info = TrackInfo {
                    sid: *track,
                    name: name.clone(),
                    kind: wire_kind(*kind),
                    enabled: *enabled,
                };
                self.tracks.insert(*track, (*participant, info.clone()));
                self.send(ServerMessage::TrackPublished {
                    participant: *participant,
                    track: info,
                });
            }
            Event::TrackUnpublished {
                participant, track, ..
            } if *participant != me => {
                self.tracks.remove(track);
                self.subscribed.remove(track);
                self.send(ServerMessage::TrackUnpublished {
                    participant: *participant,
                    track: *track,
                });
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
                self.send(ServerMessage::TrackSwitched {
                    participant: *participant,
                    track: *track,
                    enabled: *enabled,
                });
            }
            Event::Subscribed {
                subscriber,
                publisher,
                track,
                ..
            } if *subscriber == me => {
                let Some((_, info)) = self.tracks.get(track).cloned() else {
                    return Next::Continue;
                };
                self.subscribed.insert(*track);
                if info.kind == TrackKind::Data {
                    self.state.media.subscribe_data(self.room.sid, me, *track);
                }
                self.send(ServerMessage::Subscribed {
                    participant: *publisher,
                    track: info,
                });
            }
            Event::Unsubscribed {
                subscriber, track, ..
            } if *subscriber == me => {
                self.subscribed.remove(track);
                self.send(ServerMessage::Unsubscribed { track: *track });
            }
            _ => {}
        }
        Next::Continue
    }
}

async fn recv(connection: &mut Option<Connection>) -> Option<Incoming> {
    match connection {
        Some(c) => c.incoming.recv().await,
        None => std::future::pending().await,
    }
}

fn valid_mid(mid: &str) -> bool {
    !mid.is_empty()
        && mid.len() <= MAX_MID
        && mid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn random_hex() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wire_kind(kind: CoreKind) -> TrackKind {
    match kind {
        CoreKind::Audio => TrackKind::Audio,
        CoreKind::Video => TrackKind::Video,
        CoreKind::Data => TrackKind::Data,
    }
}

fn wire_reason(reason: CoreReason) -> DisconnectReason {
    match reason {
        CoreReason::Left => DisconnectReason::Left,
        CoreReason::DuplicateIdentity => DisconnectReason::DuplicateIdentity,
        CoreReason::RoomCompleted => DisconnectReason::RoomCompleted,
        CoreReason::Kicked => DisconnectReason::Kicked,
        CoreReason::MaxDurationExceeded => DisconnectReason::MaxDurationExceeded,
        CoreReason::MediaTimeout => DisconnectReason::MediaTimeout,
        CoreReason::Failed => DisconnectReason::Failed,
        CoreReason::Shutdown => DisconnectReason::Shutdown,
    }
}

/// Twilio's message for each way a session ends.
fn goodbye(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::Left => "Left the room",
        DisconnectReason::DuplicateIdentity => {
            "Participant disconnected because of duplicate identity"
        }
        DisconnectReason::RoomCompleted => "Room completed",
        DisconnectReason::Kicked => "Participant removed from the room",
        DisconnectReason::MaxDurationExceeded => "Participant session length exceeded",
        DisconnectReason::MediaTimeout => "Media connection failed or Media activity ceased",
        DisconnectReason::Failed => "Signaling connection disconnected",
        DisconnectReason::Shutdown => "Room completed: the server is shutting down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mids_are_short_and_plain() {
        for ok in ["0", "1", "audio", "v-1_a", "0123456789abcdef"] {
            assert!(valid_mid(ok), "{ok}");
        }
        for bad in ["", "0123456789abcdefg", "a b", "é", "a\n"] {
            assert!(!valid_mid(bad), "{bad:?}");
        }
    }

    #[test]
    fn every_goodbye_carries_the_documented_code() {
        assert_eq!(DisconnectReason::DuplicateIdentity.code(), Some(53205));
        assert_eq!(DisconnectReason::RoomCompleted.code(), Some(53118));
        assert_eq!(wire_reason(CoreReason::Shutdown).code(), Some(53118));
        assert_eq!(goodbye(DisconnectReason::RoomCompleted), "Room completed");
    }
}

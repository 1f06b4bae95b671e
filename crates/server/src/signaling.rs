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
use salon_media::sdp::MediaSection;
use salon_media::{MediaKind, PublishBinding, SubscribeBinding};
use salon_room::{
    DisconnectReason as CoreReason, Event, Join, RoomError, RoomRef, Rooms, TrackKind as CoreKind,
};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use salon_signal::{
    ClientMessage, DisconnectReason, MAX_MID_BYTES, ParticipantInfo, PublishMedia, Published,
    RoomInfo, ServerMessage, SubscribeMedia, TrackInfo, TrackKind, codes, valid_mid,
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
    room: Option<String>,
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
    // No room named: the token's room grant, or else a new room whose unique
    // name is its SID, as Twilio does for `connect(token)` without a name.
    let (room, room_ref) = match room.or_else(|| verified.room.clone()) {
        Some(text) => {
            let room_ref = RoomRef::parse(&text);
            (text, room_ref)
        }
        None => (new_room.to_string(), RoomRef::Name(new_room.to_string())),
    };
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
        negotiated: false,
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
        recording: false,
    };
    if let Some(r) = rooms.room(room) {
        info.name = r.name().to_owned();
        info.recording = r.recording();
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
    /// Whether an offer has been answered: the media session exists.
    negotiated: bool,
}

/// What the session loop should do next.
enum Next {
    Continue,
    /// Leave the room for this reason and say goodbye.
    End(CoreReason),
    /// The client sent nothing for the idle timeout: leave the room (as
    /// failed) and say so.
    TimedOut,
    /// The room already removed us and the client was told.
    Ended,
}

/// The last message of a session: why it ended, as the client is told.
struct Goodbye {
    reason: DisconnectReason,
    code: Option<u32>,
    message: String,
}

impl Goodbye {
    fn of(reason: CoreReason) -> Self {
        let reason = wire_reason(reason);
        Self {
            reason,
            code: reason.code(),
            message: goodbye(reason).into(),
        }
    }

    /// A keepalive timeout is a failure with its own code, 53002, in the
    /// `disconnected` itself: one message says what happened.
    fn idle(after: Duration) -> Self {
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
                        Next::TimedOut
                    }
                }
            };
            match next {
                Next::Continue => {}
                Next::End(reason) => break Some((reason, Goodbye::of(reason))),
                Next::TimedOut => {
                    let goodbye = Goodbye::idle(config.idle_timeout);
                    break Some((CoreReason::Failed, goodbye));
                }
                Next::Ended => break None,
            }
        };
        if let Some((reason, goodbye)) = reason {
            self.finish(reason, goodbye).await;
        }
    }

    /// Leave the room (if still in it), tell the client why, close.
    async fn finish(&mut self, reason: CoreReason, goodbye: Goodbye) {
        match self.state.rooms.disconnect(self.me, reason).await {
            Ok(()) | Err(ServiceError::Room(_)) | Err(ServiceError::Closed) => {}
            Err(e) => tracing::warn!(participant = %self.me, error = %e, "leaving the room failed"),
        }
        self.say_goodbye(goodbye);
    }

    fn say_goodbye(&mut self, goodbye: Goodbye) {
        self.send(ServerMessage::Disconnected {
            reason: goodbye.reason,
            code: goodbye.code,
            message: goodbye.message,
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

    /// Handle an offer: check what it declares against its SDP and the
    /// protocol's rules, publish what it publishes, negotiate, answer. A
    /// refusal (534xx, with the revision) comes before anything changed.
    async fn offer(
        &mut self,
        revision: u32,
        sdp: String,
        publish: Vec<PublishMedia>,
        subscribe: Vec<SubscribeMedia>,
    ) {
        if revision <= self.last_revision {
            // A replay (after a resume, say) must not be applied twice.
            return self.offer_error(
                revision,
                codes::REMOTE_DESCRIPTION_FAILED,
                format!(
                    "offer revision {revision} is not after {}: each offer's revision is greater than the last",
                    self.last_revision
                ),
            );
        }
        self.last_revision = revision;
        let sections = salon_media::sdp::media_sections(&sdp);
        let kind_of = |track: &TrackSid| self.tracks.get(track).map(|(_, t)| t.kind);
        if let Err(problem) = check_offer(&sections, &publish, &subscribe, kind_of, self.negotiated)
        {
            return self.offer_error(
                revision,
                codes::REMOTE_DESCRIPTION_FAILED,
                format!("Server is unable to apply the offer: {problem}"),
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
        match self
            .state
            .media
            .negotiate(room, self.me, sdp, bindings, subscriptions)
            .await
        {
            Ok(answer) => {
                self.negotiated = true;
                self.send(ServerMessage::Answer {
                    revision,
                    sdp: answer,
                    published,
                });
            }
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
                    self.say_goodbye(Goodbye::of(*reason));
                    return Next::Ended;
                }
                // Only someone this client heard of: the participant a
                // duplicate identity replaced left before this session
                // joined.
                if self.others.remove(participant).is_none() {
                    return Next::Continue;
                }
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
            Event::RecordingChanged { recording, .. } => {
                self.room.recording = *recording;
                self.send(ServerMessage::Recording {
                    recording: *recording,
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

/// What an offer declares must be true of its SDP (`docs/protocol.md`,
/// *Offers*): each declared `mid` is well formed, declared once, and names
/// a live m-line of the right media and direction — sending for `publish`,
/// receiving for `subscribe`; and the first offer answered has a data
/// channel. `kind_of` gives a subscribed track's kind when it is known.
fn check_offer(
    sections: &[MediaSection<'_>],
    publish: &[PublishMedia],
    subscribe: &[SubscribeMedia],
    kind_of: impl Fn(&TrackSid) -> Option<TrackKind>,
    negotiated: bool,
) -> Result<(), String> {
    let mut declared: Vec<&str> = Vec::new();
    let declarations = publish
        .iter()
        .map(|p| (p.mid.as_str(), Some(p.kind), true))
        .chain(
            subscribe
                .iter()
                .map(|s| (s.mid.as_str(), kind_of(&s.track), false)),
        );
    for (mid, kind, sending) in declarations {
        if !valid_mid(mid) {
            let mid = crate::rest::params::excerpt(mid);
            return Err(format!(
                "invalid mid '{mid}': 1 to {MAX_MID_BYTES} letters, digits, '-' or '_'"
            ));
        }
        if declared.contains(&mid) {
            return Err(format!("mid {mid} is declared twice"));
        }
        declared.push(mid);
        if kind == Some(TrackKind::Data) {
            // Data is not carried by an m-line: refused entry by entry.
            continue;
        }
        let Some(section) = sections.iter().find(|s| s.mid == Some(mid)) else {
            return Err(format!("mid {mid} is not an m-line of the offer's SDP"));
        };
        let what = if sending { "publishes" } else { "subscribes" };
        if section.rejected {
            return Err(format!(
                "m-line {mid} has port 0 (stopped) but the offer {what} on it"
            ));
        }
        let media_ok = match kind {
            Some(TrackKind::Audio) => section.media == "audio",
            Some(TrackKind::Video) => section.media == "video",
            Some(TrackKind::Data) | None => matches!(section.media, "audio" | "video"),
        };
        if !media_ok {
            let kind = kind.map_or("audio or video", |k| match k {
                TrackKind::Audio => "audio",
                TrackKind::Video => "video",
                TrackKind::Data => "data",
            });
            return Err(format!(
                "m-line {mid} is {}, but the offer {what} {kind} on it",
                section.media
            ));
        }
        let direction_ok = if sending {
            section.direction.sends()
        } else {
            section.direction.receives()
        };
        if !direction_ok {
            let needed = if sending { "sendonly" } else { "recvonly" };
            return Err(format!(
                "m-line {mid} is {}, but the offer {what} on it: make it {needed}",
                section.direction.as_str()
            ));
        }
    }
    if !negotiated
        && !sections
            .iter()
            .any(|s| s.media == "application" && !s.rejected)
    {
        return Err(
            "the first offer must have a data channel (an m=application section), so the server can open data channels to this client later".into(),
        );
    }
    Ok(())
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

    /// An offer's m-lines: audio sending (0), video sending (1), video
    /// receiving (2), a stopped video (3), data (4).
    const OFFER: &str = "v=0\r\na=group:BUNDLE 0 1 2 4\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=inactive\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";

    fn publish(mid: &str, kind: TrackKind) -> PublishMedia {
        PublishMedia {
            mid: mid.into(),
            name: format!("track {mid}"),
            kind,
            enabled: true,
        }
    }

    fn subscribe(mid: &str, track: TrackSid) -> SubscribeMedia {
        SubscribeMedia {
            mid: mid.into(),
            track,
        }
    }

    /// `check_offer` on `sdp` with these declarations, a video track known.
    fn check(
        sdp: &str,
        publish: &[PublishMedia],
        subscribe: &[SubscribeMedia],
        negotiated: bool,
    ) -> Result<(), String> {
        let video = TrackSid::from_bytes([7; 16]);
        let sections = salon_media::sdp::media_sections(sdp);
        let kind_of = |t: &TrackSid| (*t == video).then_some(TrackKind::Video);
        check_offer(&sections, publish, subscribe, kind_of, negotiated)
    }

    #[test]
    fn an_offer_declares_only_what_its_sdp_has() {
        let video = TrackSid::from_bytes([7; 16]);
        let unknown = TrackSid::from_bytes([8; 16]);
        let good = [
            publish("0", TrackKind::Audio),
            publish("1", TrackKind::Video),
        ];
        assert_eq!(check(OFFER, &good, &[subscribe("2", video)], false), Ok(()));
        // A track the session does not know: any receiving audio or video
        // m-line will do (the subscription itself is checked later).
        assert_eq!(check(OFFER, &[], &[subscribe("2", unknown)], true), Ok(()));
        // Data tracks are not m-lines: refused entry by entry, not here.
        assert_eq!(
            check(OFFER, &[publish("chat", TrackKind::Data)], &[], true),
            Ok(())
        );

        let refused = [
            (
                vec![publish("9", TrackKind::Audio)],
                vec![],
                "not an m-line",
            ),
            (
                vec![publish("0", TrackKind::Video)],
                vec![],
                "is audio, but the offer publishes video",
            ),
            (vec![publish("2", TrackKind::Video)], vec![], "is recvonly"),
            (vec![publish("3", TrackKind::Video)], vec![], "port 0"),
            (
                vec![publish("4", TrackKind::Audio)],
                vec![],
                "is application",
            ),
            (
                vec![],
                vec![subscribe("0", unknown)],
                "is sendonly, but the offer subscribes",
            ),
            (
                vec![],
                vec![subscribe("0", video)],
                "is audio, but the offer subscribes video",
            ),
            (vec![], vec![subscribe("3", unknown)], "port 0"),
            (vec![], vec![subscribe("4", unknown)], "is application"),
            (
                vec![publish("1", TrackKind::Video)],
                vec![subscribe("1", video)],
                "declared twice",
            ),
            (
                vec![publish("a b", TrackKind::Audio)],
                vec![],
                "invalid mid",
            ),
            (
                vec![publish(&"x".repeat(17), TrackKind::Audio)],
                vec![],
                "invalid mid",
            ),
        ];
        for (publish, subscribe, why) in refused {
            let problem = check(OFFER, &publish, &subscribe, true).unwrap_err();
            assert!(problem.contains(why), "{why}: {problem}");
        }
    }

    #[test]
    fn the_first_offer_must_carry_a_data_channel() {
        let no_data = OFFER.split("m=application").next().unwrap();
        let problem = check(no_data, &[], &[], false).unwrap_err();
        assert!(problem.contains("data channel"), "{problem}");
        // Later offers need not (the channel exists), and a stopped one
        // does not count for the first.
        assert_eq!(check(no_data, &[], &[], true), Ok(()));
        let stopped = OFFER.replace("m=application 9", "m=application 0");
        assert!(check(&stopped, &[], &[], false).is_err());
        // Not even SDP: nothing declared is found.
        let problem = check("hello", &[publish("0", TrackKind::Audio)], &[], false).unwrap_err();
        assert!(problem.contains("not an m-line"), "{problem}");
    }

    #[test]
    fn every_goodbye_carries_the_documented_code() {
        assert_eq!(DisconnectReason::DuplicateIdentity.code(), Some(53205));
        assert_eq!(DisconnectReason::RoomCompleted.code(), Some(53118));
        assert_eq!(wire_reason(CoreReason::Shutdown).code(), Some(53118));
        assert_eq!(goodbye(DisconnectReason::RoomCompleted), "Room completed");
        let idle = Goodbye::idle(Duration::from_secs(30));
        assert_eq!(
            (idle.reason, idle.code),
            (DisconnectReason::Failed, Some(53002))
        );
        assert!(idle.message.contains("30 s"), "{}", idle.message);
    }
}

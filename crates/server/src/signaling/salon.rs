//! Salon's own signaling protocol (`salon-signal`, `docs/protocol.md`) on
//! `/v1/signaling`: one task per session translates between its messages
//! and a [`Member`] of the room.
//!
//! This module is the wire: the first message (`join` or `resume`), each
//! client message as a call on the member, each [`Change`] as a server
//! message, the backlog replayed on `resume`, the idle and resume
//! deadlines. Rooms and media are the member's business.

use std::collections::{HashMap, VecDeque};

use axum::Extension;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use salon_media::{MediaKind, PublishBinding, SubscribeBinding};
use salon_room::{
    DisconnectReason as CoreReason, NetworkQualityDetail, PathQuality, TrackKind as CoreKind,
};
use salon_sid::{ParticipantSid, TrackSid};
use salon_signal::{
    ClientMessage, DisconnectReason, LayerHint, NetworkQualityLevel, NetworkQualityMedia,
    NetworkQualityPath, ParticipantInfo, PublishMedia, Published, RoomInfo, ServerMessage,
    SubscribeMedia, TrackInfo, TrackKind, codes,
};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::connection::{self, Incoming as Frame, SalonWire};
use crate::AppState;
use crate::http::SocketControl;
use crate::service::ServiceError;
use crate::session::{
    self, Away, Change, Declared, Expiry, Goodbye, Heard, Member, Notice, Participant, Refusal,
    Resumed, Track, check_offer,
};

mod adaptive;

type Connection = connection::Connection<SalonWire>;
type Incoming = Frame<SalonWire>;

/// Messages kept for a detached session, to replay on `resume`.
const BACKLOG: usize = 512;

/// `GET /v1/signaling`: upgrade to a WebSocket and run a session on it.
pub async fn upgrade(
    State(state): State<AppState>,
    control: Option<Extension<SocketControl>>,
    Query(query): Query<NodeHint>,
    ws: WebSocketUpgrade,
) -> Response {
    let control = control.map(|Extension(control)| control);
    let placed_here = query.placed_here(&state);
    connection::configure::<SalonWire>(ws)
        .on_upgrade(move |socket| serve(state, socket, control, placed_here))
}

/// `?node=<id>` on a signaling URL: the client was redirected here by
/// placement, to create its room on this node.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NodeHint {
    #[serde(default)]
    node: Option<String>,
}

impl NodeHint {
    pub fn placed_here(&self, state: &AppState) -> bool {
        match (&self.node, &state.cluster) {
            (Some(node), Some(cluster)) => node == cluster.node(),
            _ => false,
        }
    }
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    control: Option<SocketControl>,
    placed_here: bool,
) {
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
            join(
                state,
                connection,
                token,
                room,
                auto_subscribe,
                client,
                placed_here,
            )
            .await;
        }
        Ok(Some(Incoming::Message(ClientMessage::Resume { token, session, .. }))) => {
            let sessions = &state.signaling.salon;
            if let Err((connection, refusal)) = session::resume(
                &state,
                sessions,
                &token,
                &session,
                Expiry::Enforced,
                connection,
            )
            .await
            {
                // Another node's session (behind one address, the new
                // socket may reach any node): send the client there.
                if refusal.code == codes::PARTICIPANT_NOT_FOUND
                    && let Some(node) = session::session_node(&state, &session).await
                {
                    let url = crate::cluster::signaling_url(&node, "/v1/signaling");
                    tracing::info!(
                        node = node.id,
                        url,
                        "resume redirected to the session's node"
                    );
                    let redirect = ServerMessage::Redirect { url, node: node.id };
                    return connection.last_word(redirect.to_json()).await;
                }
                // A session of a node that is gone: its rooms are failed,
                // and the client may join the room again by name. Said
                // apart from a session that ended (kicked, completed,
                // timed out), after which a client must not come back.
                if refusal.code == codes::PARTICIPANT_NOT_FOUND
                    && let Some(node) = session::lost_node(&state, &session).await
                {
                    tracing::info!(node, "resume of a session on a lost node");
                    let lost = ServerMessage::Disconnected {
                        reason: DisconnectReason::NodeLost,
                        code: DisconnectReason::NodeLost.code(),
                        message: format!(
                            "the session's node {node} is gone and its rooms with it: join the room again"
                        ),
                    };
                    return connection.last_word(lost.to_json()).await;
                }
                connection.refuse(refusal.code, refusal.message).await;
            }
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

async fn join(
    state: AppState,
    connection: Connection,
    token: String,
    room: Option<String>,
    auto_subscribe: bool,
    client: Option<String>,
    placed_here: bool,
) {
    let admitted = session::admit(&state, &token, room, auto_subscribe, placed_here).await;
    let (member, snapshot) = match admitted {
        Ok(admitted) => admitted,
        Err(Refusal {
            redirect: Some(node),
            ..
        }) => {
            let url = crate::cluster::signaling_url(&node, "/v1/signaling");
            tracing::info!(node = node.id, url, "join redirected to the room's node");
            let redirect = ServerMessage::Redirect { url, node: node.id };
            return connection.last_word(redirect.to_json()).await;
        }
        Err(Refusal { code, message, .. }) => return connection.refuse(code, message).await,
    };
    tracing::info!(
        room = %member.room,
        participant = %member.me,
        identity = member.identity,
        client = client.as_deref().unwrap_or("-"),
        "signaling session joined"
    );
    let id = session::session_id(&state, member.room);
    let attach = state.signaling.salon.register(&id, &member.identity);
    let room = room_info(&member);
    let dominant_speaker = snapshot.dominant_speaker;
    // Who is reconnecting now, and every change from here on (watched
    // first: a notice in between comes twice, which Away takes).
    let presence = state.signaling.presence().watch();
    let away = state.signaling.presence().away_in(member.room);
    let reconnecting: Vec<_> = snapshot
        .others
        .iter()
        .map(|p| p.sid)
        .filter(|p| away.is_away(*p))
        .collect();
    let mut session = Session {
        member,
        id: id.clone(),
        attach,
        connection: Some(connection),
        backlog: VecDeque::new(),
        heard: Heard::new(Instant::now()),
        detached_at: None,
        last_revision: 0,
        network_quality: (0, 0),
        presence,
        away,
        quality_sent: HashMap::new(),
    };
    session.send(ServerMessage::Joined {
        version: salon_signal::VERSION,
        session: id.clone(),
        resumed: false,
        room,
        participant: participant_info(snapshot.me),
        participants: snapshot.others.into_iter().map(participant_info).collect(),
        ice_servers: session
            .member
            .state
            .ice
            .for_identity(&session.member.identity),
        last_revision: 0,
        session_timeout: Some(session_timeout(&session.member)),
        node: cluster_node(&session.member),
        simulcast: true,
    });
    // Changes come as they happen; the speaker already chosen, now.
    if let Some(speaker) = dominant_speaker {
        session.send(ServerMessage::DominantSpeakerChanged {
            participant: Some(speaker),
        });
    }
    for participant in reconnecting {
        session.send(ServerMessage::ParticipantReconnecting { participant });
    }
    session.run().await;
    state.signaling.salon.forget(&id);
}

// ---- the session ------------------------------------------------------------

struct Session {
    member: Member,
    id: String,
    attach: mpsc::Receiver<Connection>,
    connection: Option<Connection>,
    /// What the client missed while detached, replayed on resume.
    backlog: VecDeque<String>,
    /// When the client last said anything (and since when it is quiet).
    heard: Heard,
    detached_at: Option<Instant>,
    /// The revision of the last offer handled.
    last_revision: u32,
    /// Network quality verbosity asked for (`set_network_quality`): for
    /// this participant, for the others; 0 sends nothing.
    network_quality: (u8, u8),
    /// Who is reconnecting, as sessions and the media bridge announce it.
    presence: broadcast::Receiver<Notice>,
    /// Others in the room whose signaling or media is away.
    away: Away,
    /// The last `network_quality` entry sent for each participant (this
    /// one and those in the room), so an unchanged one is not sent again.
    quality_sent: HashMap<ParticipantSid, NetworkQualityLevel>,
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

impl Session {
    async fn run(&mut self) {
        let reason = loop {
            let config = self.member.state.signaling.config;
            let deadline = match self.detached_at {
                Some(at) => at + config.resume_grace,
                None => self.heard.last() + config.idle_timeout,
            };
            let next = tokio::select! {
                incoming = recv(&mut self.connection) => self.on_incoming(incoming).await,
                event = self.member.events.recv() => match event {
                    Some(event) => match self.member.apply(&event) {
                        Some(change) => self.on_change(change),
                        None => Next::Continue,
                    },
                    // The room service cut us off: our queue overflowed.
                    None => Next::End(CoreReason::Failed),
                },
                Some(connection) = self.attach.recv() => {
                    self.reattach(connection);
                    Next::Continue
                }
                watched = session::Presence::next(&mut self.presence) => {
                    self.on_presence(watched);
                    Next::Continue
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if self.detached_at.is_some() {
                        tracing::info!(participant = %self.member.me, "session not resumed in time");
                        Next::End(CoreReason::Failed)
                    } else {
                        Next::TimedOut
                    }
                }
            };
            match next {
                Next::Continue => {}
                Next::End(reason) => break Some(Goodbye::of(reason)),
                Next::TimedOut => break Some(Goodbye::idle(config.idle_timeout)),
                Next::Ended => break None,
            }
        };
        if let Some(goodbye) = reason {
            self.member.leave(goodbye.reason).await;
            self.say_goodbye(goodbye);
        }
    }

    fn say_goodbye(&mut self, goodbye: Goodbye) {
        self.send(ServerMessage::Disconnected {
            reason: wire_reason(goodbye.reason),
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
                if !connection.send(message.to_json()) {
                    tracing::warn!(participant = %self.member.me, "client is not reading its socket; detaching");
                    self.detach();
                    self.keep(message);
                }
            }
            None => self.keep(message),
        }
    }

    /// The socket is gone: wait for a resume, and tell the others this
    /// participant is reconnecting.
    fn detach(&mut self) {
        self.connection = None;
        if self.detached_at.is_none() {
            self.detached_at = Some(Instant::now());
            if self.away.own_detached(self.heard.quiet_from()) {
                self.member.announce_signaling(true);
            }
        }
    }

    /// Another participant's signaling or media went away or came back.
    fn on_presence(&mut self, watched: session::Watched) {
        let presence = self.member.state.signaling.presence();
        for (participant, reconnecting) in
            self.away
                .changes(presence, self.member.room, self.member.me, watched)
        {
            self.send(if reconnecting {
                ServerMessage::ParticipantReconnecting { participant }
            } else {
                ServerMessage::ParticipantReconnected { participant }
            });
        }
    }

    fn keep(&mut self, message: ServerMessage) {
        if self.backlog.len() == BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back(message.to_json());
    }

    fn reattach(&mut self, connection: Connection) {
        tracing::info!(participant = %self.member.me, "session resumed");
        self.connection = Some(connection);
        // A resume shows the others a reconnect even when it came before
        // this session noticed its old socket was gone (the client took a
        // silent socket for dead): the client was away either way. Unless
        // its media going silent already showed them this outage.
        let detached = self.detached_at.take().is_some();
        match self.away.own_resumed(detached, self.heard.quiet_from()) {
            Resumed::Nothing => {}
            Resumed::Back => self.member.announce_signaling(false),
            Resumed::Blip => {
                self.member.announce_signaling(true);
                self.member.announce_signaling(false);
            }
        }
        self.heard.hear(Instant::now());
        let (me, others) = self.member.roster();
        let joined = ServerMessage::Joined {
            version: salon_signal::VERSION,
            session: self.id.clone(),
            resumed: true,
            room: room_info(&self.member),
            participant: participant_info(me),
            participants: others.into_iter().map(participant_info).collect(),
            ice_servers: self.member.state.ice.for_identity(&self.member.identity),
            last_revision: self.last_revision,
            session_timeout: Some(session_timeout(&self.member)),
            node: cluster_node(&self.member),
            simulcast: true,
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
                self.heard.hear(Instant::now());
                self.on_message(message).await
            }
            Some(Incoming::Invalid(e)) => {
                self.heard.hear(Instant::now());
                self.error(e.code(), e.to_string());
                Next::Continue
            }
            Some(Incoming::Closed { clean: true }) => Next::End(CoreReason::Left),
            Some(Incoming::Closed { clean: false }) | None => {
                tracing::info!(participant = %self.member.me, "socket dropped; waiting for resume");
                self.detach();
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

    /// Report a failed call on the room service, if it failed.
    fn check(&mut self, result: Result<(), ServiceError>) {
        if let Err(e) = result {
            let (code, message) = session::service_failure(e);
            self.error(code, message);
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
            ClientMessage::PublishData { name, label } => {
                match self.member.publish_data(name, label.clone()).await {
                    Ok(track) => self.send(ServerMessage::Published {
                        published: Published {
                            mid: label,
                            track: track_info(track),
                        },
                    }),
                    Err(e) => self.check(Err(e)),
                }
            }
            ClientMessage::Unpublish { track } => {
                let result = self.member.unpublish(track).await;
                self.check(result);
            }
            ClientMessage::SetTrackEnabled { track, enabled } => {
                let result = self.member.set_track_enabled(track, enabled).await;
                self.check(result);
            }
            ClientMessage::Subscribe { track } => {
                let result = self.member.subscribe(track).await;
                self.check(result);
            }
            ClientMessage::Unsubscribe { track } => {
                let result = self.member.unsubscribe(track).await;
                self.check(result);
            }
            adaptive @ (ClientMessage::SetBandwidthProfile { .. }
            | ClientMessage::SetPublishPriority { .. }
            | ClientMessage::SetSubscribePriority { .. }
            | ClientMessage::SwitchOff { .. }
            | ClientMessage::SwitchOn { .. }
            | ClientMessage::SetRenderDimensions { .. }
            | ClientMessage::SetNetworkQuality { .. }) => self.on_adaptive(adaptive),
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
        let member = &self.member;
        let declared = declarations(&publish, &subscribe, |t| member.kind_of(t));
        if let Err(problem) = check_offer(&sections, declared, member.negotiated()) {
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
            match self.member.publish(p.name, core, p.enabled).await {
                Ok(track) => {
                    bindings.push(PublishBinding {
                        mid: p.mid.clone(),
                        track: track.sid,
                        kind: media,
                    });
                    published.push(Published {
                        mid: p.mid,
                        track: track_info(track),
                    });
                }
                Err(e) => {
                    let (code, message) = session::service_failure(e);
                    self.offer_error(revision, code, message);
                }
            }
        }
        let mut subscriptions = Vec::new();
        for s in subscribe {
            if self.member.is_subscribed(&s.track) {
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
        let sids: Vec<TrackSid> = published.iter().map(|p| p.track.sid).collect();
        match self
            .member
            .negotiate(sdp, bindings, subscriptions, &sids)
            .await
        {
            Ok(answer) => self.send(ServerMessage::Answer {
                revision,
                sdp: answer,
                published,
            }),
            Err(e) => self.offer_error(revision, e.code(), e.to_string()),
        }
    }

    /// Tell the client what a room event changed.
    fn on_change(&mut self, change: Change) -> Next {
        let message = match change {
            Change::ParticipantConnected {
                participant,
                identity,
            } => ServerMessage::ParticipantConnected {
                participant: ParticipantInfo {
                    sid: participant,
                    identity,
                    tracks: Vec::new(),
                },
            },
            Change::ParticipantDisconnected { participant } => {
                self.away.forget(participant);
                self.quality_sent.remove(&participant);
                ServerMessage::ParticipantDisconnected { participant }
            }
            Change::TrackPublished { participant, track } => ServerMessage::TrackPublished {
                participant,
                track: track_info(track),
            },
            Change::TrackUnpublished { participant, track } => {
                ServerMessage::TrackUnpublished { participant, track }
            }
            Change::TrackSwitched {
                participant,
                track,
                enabled,
            } => ServerMessage::TrackSwitched {
                participant,
                track,
                enabled,
            },
            Change::Recording { recording } => ServerMessage::Recording { recording },
            Change::Subscribed { publisher, track } => ServerMessage::Subscribed {
                participant: publisher,
                track: track_info(track),
            },
            Change::Unsubscribed { track } => ServerMessage::Unsubscribed { track },
            Change::Switched { track, off: None } => ServerMessage::TrackSwitchedOn { track },
            Change::Switched {
                track,
                off: Some(reason),
            } => ServerMessage::TrackSwitchedOff {
                track,
                reason: reason.into(),
            },
            Change::Layers { track, layers } => ServerMessage::Layers {
                track,
                layers: layers
                    .into_iter()
                    .enumerate()
                    .map(|(i, (rid, active))| LayerHint {
                        layer: i as u8,
                        rid,
                        active,
                    })
                    .collect(),
            },
            Change::TrackPriority {
                participant,
                track,
                priority,
            } => ServerMessage::TrackPriorityChanged {
                participant,
                track,
                priority: wire_priority(priority),
            },
            Change::DominantSpeaker { participant } => {
                ServerMessage::DominantSpeakerChanged { participant }
            }
            Change::NetworkQuality {
                participant,
                level,
                detail,
            } => {
                let (local, remote) = self.network_quality;
                let verbosity = if participant == self.member.me {
                    local
                } else {
                    remote
                };
                let Some(entry) = quality_entry(participant, level, &detail, verbosity) else {
                    return Next::Continue;
                };
                // The media server also reports unchanged levels, to refresh
                // the measurements; a client that does not see them is told
                // only what changed.
                if verbosity < 3 && self.quality_sent.get(&participant) == Some(&entry) {
                    return Next::Continue;
                }
                self.quality_sent.insert(participant, entry.clone());
                ServerMessage::NetworkQuality {
                    participants: vec![entry],
                }
            }
            Change::Removed(reason) => {
                self.say_goodbye(Goodbye::of(reason));
                return Next::Ended;
            }
        };
        self.send(message);
        Next::Continue
    }
}

/// One participant's `network_quality` entry at `verbosity`: the level
/// (1), the audio and video send and receive levels (2), the measurements
/// behind them (3); nothing at 0.
fn quality_entry(
    participant: ParticipantSid,
    level: u8,
    detail: &NetworkQualityDetail,
    verbosity: u8,
) -> Option<NetworkQualityLevel> {
    let path = |p: &PathQuality| NetworkQualityPath {
        bandwidth_actual: p.bandwidth_actual,
        bandwidth_available: p.bandwidth_available,
        bandwidth_level: p.bandwidth_level,
        fraction_lost: p.fraction_lost_ppm.map(|ppm| f64::from(ppm) / 1e6),
        fraction_lost_level: p.fraction_lost_level,
        jitter: p.jitter.map(|d| d.as_secs_f64()),
        rtt: p.rtt.map(|d| d.as_secs_f64()),
        latency_level: p.latency_level,
    };
    let media = |m: &salon_room::MediaQuality| NetworkQualityMedia {
        send: m.send,
        recv: m.recv,
        send_stats: (verbosity >= 3)
            .then(|| m.send_stats.as_ref().map(path))
            .flatten(),
        recv_stats: (verbosity >= 3)
            .then(|| m.recv_stats.as_ref().map(path))
            .flatten(),
    };
    (verbosity > 0).then(|| NetworkQualityLevel {
        participant,
        level,
        audio: (verbosity >= 2)
            .then(|| detail.audio.as_ref().map(media))
            .flatten(),
        video: (verbosity >= 2)
            .then(|| detail.video.as_ref().map(media))
            .flatten(),
    })
}

async fn recv(connection: &mut Option<Connection>) -> Option<Incoming> {
    match connection {
        Some(c) => c.incoming.recv().await,
        None => std::future::pending().await,
    }
}

/// The m-lines an offer's `publish` and `subscribe` lists declare.
fn declarations<'a>(
    publish: &'a [PublishMedia],
    subscribe: &'a [SubscribeMedia],
    kind_of: impl Fn(&TrackSid) -> Option<CoreKind> + 'a,
) -> impl Iterator<Item = Declared<'a>> + 'a {
    let published = publish.iter().map(|p| Declared {
        mid: &p.mid,
        kind: Some(core_kind(p.kind)),
        sending: true,
    });
    let subscribed = subscribe.iter().map(move |s| Declared {
        mid: &s.mid,
        kind: kind_of(&s.track),
        sending: false,
    });
    published.chain(subscribed)
}

fn room_info(member: &Member) -> RoomInfo {
    RoomInfo {
        sid: member.room,
        name: member.room_name.clone(),
        recording: member.recording,
    }
}

fn participant_info(participant: Participant) -> ParticipantInfo {
    ParticipantInfo {
        sid: participant.sid,
        identity: participant.identity,
        tracks: participant.tracks.into_iter().map(track_info).collect(),
    }
}

fn track_info(track: Track) -> TrackInfo {
    TrackInfo {
        sid: track.sid,
        name: track.name,
        kind: wire_kind(track.kind),
        enabled: track.enabled,
        priority: wire_priority(track.priority),
    }
}

/// The room core's priority word on the wire (`standard` for any other).
fn wire_priority(priority: &str) -> salon_signal::Priority {
    match priority {
        "low" => salon_signal::Priority::Low,
        "high" => salon_signal::Priority::High,
        _ => salon_signal::Priority::Standard,
    }
}

fn wire_kind(kind: CoreKind) -> TrackKind {
    match kind {
        CoreKind::Audio => TrackKind::Audio,
        CoreKind::Video => TrackKind::Video,
        CoreKind::Data => TrackKind::Data,
    }
}

fn core_kind(kind: TrackKind) -> CoreKind {
    match kind {
        TrackKind::Audio => CoreKind::Audio,
        TrackKind::Video => CoreKind::Video,
        TrackKind::Data => CoreKind::Data,
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

/// The node holding the room, as `joined` tells it: in a cluster only.
fn cluster_node(member: &Member) -> Option<String> {
    let cluster = member.state.cluster.as_ref()?;
    Some(cluster.node().to_string())
}

/// The session timeout, as `joined` tells it.
fn session_timeout(member: &Member) -> u32 {
    let seconds = member.state.signaling.config().resume_grace.as_secs();
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let kind_of = |t: &TrackSid| (*t == video).then_some(CoreKind::Video);
        check_offer(
            &sections,
            declarations(publish, subscribe, kind_of),
            negotiated,
        )
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
        let reasons = [
            CoreReason::Left,
            CoreReason::DuplicateIdentity,
            CoreReason::RoomCompleted,
            CoreReason::Kicked,
            CoreReason::MaxDurationExceeded,
            CoreReason::MediaTimeout,
            CoreReason::Failed,
            CoreReason::Shutdown,
        ];
        // The session's goodbye and Salon's wire agree on every code.
        for reason in reasons {
            assert_eq!(
                Goodbye::of(reason).code,
                wire_reason(reason).code(),
                "{reason:?}"
            );
        }
        assert_eq!(
            Goodbye::of(CoreReason::RoomCompleted).message,
            "Room completed"
        );
        let idle = Goodbye::idle(Duration::from_secs(30));
        assert_eq!((idle.reason, idle.code), (CoreReason::Failed, Some(53002)));
        assert!(idle.message.contains("30 s"), "{}", idle.message);
    }
}

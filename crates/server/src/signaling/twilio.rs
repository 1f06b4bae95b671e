//! Twilio's signaling protocol, as the official `twilio-video` SDK speaks
//! it (`salon-twilio-signal`; the contract is `twilio-signaling.md` in the
//! planning documents), on `/signaling`; and `/insights`, the SDK's
//! telemetry socket, accepted and discarded.
//!
//! One task per session translates between TCMP frames carrying RSP bodies
//! and a [`Member`] of the room, like Salon's own front-end: the handshake
//! (`hello` → `welcome`, then `ice`/`iced` or straight to `connect`),
//! `connected` with the room as it is, client `update`s (the participant's
//! full track list, offers) as calls on the member, each [`Change`] as a
//! participant state with its own revision, heartbeats both ways, `sync`
//! on a new socket after a drop, and the ending as `disconnected` or
//! `error` with Twilio's code.
//!
//! Subscriptions reach the client through the server's own offers:
//! `sendonly` m-lines whose `a=msid` appdata is the track's SID, which
//! `subscribed` names; a data-channel section in the first server offer, so
//! the media server can open a channel per subscribed data track, labelled
//! with its SID. Both sides share one description revision; the server is
//! the impolite peer: one offer of its own at a time, a client offer that
//! crosses it is dropped (the client offers again after answering).
//!
//! While a session waits for its `sync`, the room's other Twilio sessions
//! show it `reconnecting` ([`crate::session::Presence`]).
//!
//! Media signaling (MSP: dominant speaker, network quality, track
//! priorities, switch-off, render hints) is [`msp`]; the bandwidth profile
//! of `connect` and `update` goes to the media server's allocator.
//!
//! In a cluster, a `sync` that reaches a node other than the session's is
//! proxied to the session's node, or, when that node is lost, the session
//! is adopted into a room of the same name ([`resume_elsewhere`]).
//!
//! An ended subscription's m-line turns inactive, and the next
//! subscription of its kind reuses it (keeping its `a=msid` id, which
//! `subscribed` then names for the new track), so the SDP does not grow
//! with every track a long room has seen.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use salon_media::{MediaKind, OfferedTrack, PublishBinding};
use salon_room::{DisconnectReason as CoreReason, TrackKind as CoreKind};
use salon_sid::{ParticipantSid, TrackSid};
use salon_twilio_signal::rsp::{
    self, ClientBody, Description, DescriptionType, LocalParticipantInfo, LocalParticipantState,
    ParticipantState, PeerConnection, Priority, PublishedTrack, RemoteParticipant, RemoteTrack,
    RoomState, ServerBody, ServerUpdate, SessionOptions,
};
use salon_twilio_signal::tcmp::{self, ClientFrame, ServerFrame};
use salon_twilio_signal::{ProtocolError, codes};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::connection::{self, Incoming as Frame, RATE_LIMITED, Wire};

mod msp;

use crate::AppState;
use crate::http::SocketControl;
use crate::session::{
    self, Away, Change, Expiry, Goodbye, Heard, Member, Notice, Participant, Refusal, Resumed,
    Track,
};

/// Twilio's protocol on a signaling socket: TCMP frames.
pub(super) struct TwilioWire;

impl Wire for TwilioWire {
    type Message = ClientFrame;
    type Error = ProtocolError;
    const MAX_FRAME: usize = 2 * salon_twilio_signal::MAX_MESSAGE_BYTES;

    fn parse(text: &str) -> Result<ClientFrame, ProtocolError> {
        ClientFrame::parse(text)
    }

    fn binary() -> ProtocolError {
        ProtocolError::Invalid("binary frames are not part of TCMP".into())
    }

    fn refusal(code: u32, message: String) -> String {
        ServerFrame::msg(ServerBody::error(code, message)).to_json()
    }

    fn rate_limited(_: Option<&ClientFrame>, explanation: String) -> String {
        // Errors end a session in the SDK: a flood ends it too.
        Self::refusal(RATE_LIMITED, explanation)
    }
}

type Connection = connection::Connection<TwilioWire>;
type Incoming = Frame<TwilioWire>;

/// A new socket for a session, with the client's `sync`.
pub(super) struct Attached {
    connection: Connection,
    sync: rsp::Sync,
}

/// `GET /signaling`: upgrade to a WebSocket and run a session on it.
pub async fn upgrade(
    State(state): State<AppState>,
    control: Option<Extension<SocketControl>>,
    ws: WebSocketUpgrade,
) -> Response {
    let control = control.map(|Extension(control)| control);
    connection::configure::<TwilioWire>(ws).on_upgrade(move |socket| serve(state, socket, control))
}

/// The client's first RSP bodies, until `connect` or `sync`.
async fn serve(state: AppState, socket: WebSocket, control: Option<SocketControl>) {
    let mut connection = Connection::spawn(socket, &state.signaling.config, control);
    let deadline = Instant::now() + state.signaling.config.join_timeout;
    let mut heartbeat = None;
    // The handshake as the client made it, to make it again on the room's
    // node when this connection is proxied there.
    let mut handshake = None;
    loop {
        let incoming = tokio::time::timeout_at(deadline, connection.incoming.recv()).await;
        let body = match incoming {
            Ok(Some(Frame::Message(ClientFrame::Hello(hello)))) => {
                handshake = Some(tcmp::Hello {
                    body: None,
                    ..hello.clone()
                });
                let negotiated = tcmp::negotiate_timeout(hello.timeout);
                heartbeat = Some(Duration::from_millis(negotiated));
                let welcome = ServerFrame::Welcome {
                    id: Some(hello.id),
                    negotiated_timeout: negotiated,
                };
                connection.send(welcome.to_json());
                match hello.body {
                    Some(body) => body,
                    // SDKs before 2.5 send `connect` in a `msg` next.
                    None => continue,
                }
            }
            Ok(Some(Frame::Message(ClientFrame::Msg { body }))) if heartbeat.is_some() => body,
            Ok(Some(Frame::Message(ClientFrame::Heartbeat))) => continue,
            Ok(Some(Frame::Message(other))) => {
                let bad = ServerFrame::Bad {
                    reason: format!("expected hello, not {}", other.kind()),
                };
                connection.send(bad.to_json());
                return;
            }
            // Unknown frame types are ignored, as the SDK does.
            Ok(Some(Frame::Invalid(ProtocolError::UnknownType(_)))) => continue,
            Ok(Some(Frame::Invalid(e))) => {
                if heartbeat.is_some() {
                    return connection.refuse(e.code(), e.to_string()).await;
                }
                connection.send(
                    ServerFrame::Bad {
                        reason: e.to_string(),
                    }
                    .to_json(),
                );
                return;
            }
            Ok(Some(Frame::Closed { .. }) | None) => return,
            Err(_) => {
                let message = "no connect within the join timeout".to_owned();
                return connection.refuse(codes::SIGNALING_TIMEOUT, message).await;
            }
        };
        let heartbeat = heartbeat.unwrap_or(Duration::from_millis(tcmp::MAX_TIMEOUT_MS));
        let raw = body.clone();
        match ClientBody::from_json(body) {
            Ok(ClientBody::Ice(ice)) => {
                // The token is checked already here (the SDK rejects
                // `connect()` with the code).
                let verified = match state.credentials.verify(&ice.token) {
                    Ok(verified) => verified,
                    Err(rejection) => {
                        let refusal = Refusal::from(rejection);
                        return connection.refuse(refusal.code, refusal.message).await;
                    }
                };
                let ice_servers = state.ice.for_identity(&verified.identity);
                let iced = ServerBody::Iced(rsp::Iced {
                    version: rsp::VERSION,
                    ice_servers: ice_servers
                        .into_iter()
                        .map(|s| rsp::IceServer {
                            urls: s.urls,
                            username: s.username,
                            credential: s.credential,
                        })
                        .collect(),
                });
                connection.send(ServerFrame::msg(iced).to_json());
            }
            Ok(ClientBody::Connect(connect)) => {
                let handshake = handshake.map(|hello| tcmp::Hello {
                    body: Some(raw),
                    ..hello
                });
                return join(state, connection, *connect, heartbeat, handshake).await;
            }
            Ok(ClientBody::Sync(sync)) => {
                let sessions = &state.signaling.twilio;
                let token = sync.token.clone();
                let id = sync.session.clone();
                let attached = Attached {
                    connection,
                    sync: *sync,
                };
                if let Err((attached, refusal)) =
                    session::resume(&state, sessions, &token, &id, Expiry::Tolerated, attached)
                        .await
                {
                    let Attached { connection, sync } = attached;
                    match handshake {
                        Some(hello) if refusal.code == codes::PARTICIPANT_NOT_FOUND => {
                            let hello = tcmp::Hello {
                                body: Some(raw),
                                ..hello
                            };
                            resume_elsewhere(state, connection, sync, hello, heartbeat, refusal)
                                .await;
                        }
                        _ => connection.refuse(refusal.code, refusal.message).await,
                    }
                }
                return;
            }
            Ok(other) => {
                let message = format!("expected connect or sync, not {}", other.kind());
                return connection.refuse(codes::INVALID_MESSAGE, message).await;
            }
            Err(e) => return connection.refuse(e.code(), e.to_string()).await,
        }
    }
}

async fn join(
    state: AppState,
    connection: Connection,
    connect: rsp::Connect,
    heartbeat: Duration,
    handshake: Option<tcmp::Hello>,
) {
    let automatic = connect.subscribe.as_ref().is_none_or(|s| s.automatic());
    // RSP has no redirect: a new room is made where the client connected
    // (unless this node is draining), and the session of a room on another
    // node is proxied there.
    let admitted = session::admit(
        &state,
        &connect.token,
        connect.name.clone(),
        automatic,
        true,
    )
    .await;
    let (member, snapshot) = match admitted {
        Ok(admitted) => admitted,
        Err(Refusal {
            redirect: Some(node),
            ..
        }) => {
            let Some(hello) = handshake else {
                let message = format!("The room is served by node {}", node.id);
                return connection.refuse(codes::SIGNALING_ERROR, message).await;
            };
            return proxy(connection, node, hello).await;
        }
        Err(Refusal { code, message, .. }) => return connection.refuse(code, message).await,
    };
    tracing::info!(
        room = %member.room,
        participant = %member.me,
        identity = member.identity,
        client = connect.publisher.as_ref().and_then(|p| p.sdk_version.as_deref()).unwrap_or("-"),
        "twilio signaling session joined"
    );
    let id = session::session_id(&state, member.room);
    let asked = Asked {
        media_signaling: connect.media_signaling,
        bandwidth_profile: connect.bandwidth_profile,
        automatic,
    };
    let mut session = Session::new(member, &snapshot, id, connection, heartbeat, asked);
    session.keep_asked();
    if let Some(profile) = session.asked.bandwidth_profile.clone() {
        session.apply_bandwidth_profile(&profile);
    }
    let published = session.apply_participant(connect.participant).await;
    let answers = session.negotiate(&connect.peer_connections).await;
    let connected = session.room_state(published, answers);
    session.send(ServerBody::Connected(connected));
    session.serve().await;
}

/// How often a `sync` for a session this node does not hold looks again
/// while the answer is "not yet".
const ELSEWHERE_POLL: Duration = Duration::from_millis(500);

/// A `sync` for a session this node does not hold. Behind one address the
/// SDK's new socket may reach any node. In a cluster the session id names
/// the session's node and room:
/// - the room ended with its node (failed when the node was lost, or ended
///   by the node's drain): the session is adopted into a room of the same
///   name, here ([`adopt`]) or on the node that holds that room now
///   (proxied there, where the same happens, or the adopted session
///   resumes);
/// - the room completed: 53118;
/// - the session's node is live: the connection is proxied there;
/// - that node is lost (its lease ran out) and its room not failed yet,
///   or it is this node, draining: wait;
/// - otherwise the session is over (`unknown`, 53204).
///
/// While the answer is "wait" (a dying node still registered but not
/// answering, its room not failed yet, the database away), the socket is
/// held with heartbeats, for at most the resume grace, rather than closed:
/// the SDK's own retries back off to seconds apart.
async fn resume_elsewhere(
    state: AppState,
    mut connection: Connection,
    sync: rsp::Sync,
    hello: tcmp::Hello,
    heartbeat: Duration,
    unknown: Refusal,
) {
    use salon_store::RoomStatus;
    let id = sync.session.clone();
    let patience = Instant::now() + state.signaling.config.resume_grace;
    let mut last_sent = Instant::now();
    loop {
        let room = match (&state.cluster, session::session_room(&id)) {
            (Some(_), Some(sid)) => state.store.room(sid).await,
            _ => Ok(None),
        };
        let node = match room {
            Ok(Some(room)) if ended_with_its_node(&room) => {
                match adoption(&state, &sync, room).await {
                    Adoption::Ready(adopted) => {
                        tracing::info!(room = %adopted.member.room, participant = %adopted.member.me, "session of a lost node adopted");
                        return adopt(connection, sync, heartbeat, *adopted).await;
                    }
                    Adoption::Elsewhere(node) => Some(node),
                    Adoption::NotYet(why) => {
                        tracing::debug!(why, "session of a lost node: not yet");
                        None
                    }
                    Adoption::Refused(refusal) => {
                        return connection.refuse(refusal.code, refusal.message).await;
                    }
                }
            }
            Ok(Some(room)) if room.status == RoomStatus::Completed => {
                return connection.refuse(53118, "Room completed".into()).await;
            }
            // In progress, or not known (yet): the session's node has it.
            _ => {
                if let Some(node) = session::session_node(&state, &id).await {
                    Some(node)
                } else if let Some(lost) = session::lost_node(&state, &id).await {
                    tracing::debug!(lost, "session of a lost node: its room is not failed yet");
                    None
                } else if session::draining_node_of(&state, &id) {
                    // This node ended the session draining; the room's end
                    // is about to be recorded.
                    None
                } else {
                    return connection.refuse(unknown.code, unknown.message).await;
                }
            }
        };
        if let Some(node) = node
            && let Ok(upstream) = open_upstream(&node).await
        {
            return relay(connection, upstream, &node, hello).await;
        }
        let next = Instant::now() + ELSEWHERE_POLL;
        if next > patience {
            let message = "The session's node cannot be reached".to_owned();
            return connection.refuse(codes::SIGNALING_ERROR, message).await;
        }
        if last_sent.elapsed() >= heartbeat / 2 {
            connection.send(ServerFrame::Heartbeat.to_json());
            last_sent = Instant::now();
        }
        // The client's heartbeats are read and dropped meanwhile.
        loop {
            match tokio::time::timeout_at(next, connection.incoming.recv()).await {
                Err(_) => break,
                Ok(Some(Frame::Message(_) | Frame::Invalid(_))) => {}
                Ok(Some(Frame::Closed { .. }) | None) => return,
            }
        }
    }
}

/// Whether `room` ended because its node went: failed when the node was
/// lost, or ended by the node's drain (`SIGTERM`). Its sessions may be
/// adopted elsewhere.
fn ended_with_its_node(room: &salon_store::RoomRecord) -> bool {
    use salon_store::RoomStatus;
    match room.status {
        RoomStatus::Failed => true,
        RoomStatus::Completed => {
            room.end_reason.as_deref() == Some(salon_room::EndReason::Shutdown.as_str())
        }
        RoomStatus::InProgress => false,
    }
}

/// Whether a session of a lost node can be adopted here now.
enum Adoption {
    /// Admitted here, to a room of the lost room's name.
    Ready(Box<Adopted>),
    /// That room is on another node.
    Elsewhere(crate::cluster::NodeInfo),
    /// Not yet: the database or the cluster is away.
    NotYet(String),
    Refused(Refusal),
}

/// A session of a lost node, admitted here.
struct Adopted {
    member: Member,
    snapshot: session::Snapshot,
    /// What the client asked for on `connect`.
    asked: Asked,
    /// The SIDs the lost room gave the client's tracks, by track name: the
    /// client keeps them (the SDK sets a SID once).
    known: Vec<(String, TrackSid)>,
}

/// How long after its room ended a session of a lost node may still be
/// adopted: the SDK tries for its session timeout (the resume grace) after
/// its socket dropped, and the room fails some seconds after the drop.
fn adoption_window(state: &AppState) -> Duration {
    2 * state.signaling.config.resume_grace
}

/// Admit the client of `sync`, a session of `lost`, a room that ended with
/// its node, to a room of the same name: the client's original token
/// proves its identity (whatever its age, as for any `sync`), and that
/// identity must have been in that room.
async fn adoption(state: &AppState, sync: &rsp::Sync, lost: salon_store::RoomRecord) -> Adoption {
    use salon_store::{PageRequest, ParticipantFilter, Timestamp};
    let verified = match state.credentials.verify_for_resume(&sync.token) {
        Ok(verified) => verified,
        Err(rejection) => return Adoption::Refused(rejection.into()),
    };
    let gone = || {
        Adoption::Refused(Refusal::new(
            codes::PARTICIPANT_NOT_FOUND,
            "Participant not found: the session is over",
        ))
    };
    let window = adoption_window(state).as_millis() as i64;
    if lost
        .end_time
        .is_none_or(|end| Timestamp::now().millis() - end.millis() > window)
    {
        return gone();
    }
    let filter = ParticipantFilter {
        identity: Some(verified.identity.clone()),
        ..ParticipantFilter::default()
    };
    let request = PageRequest {
        size: 1,
        ..PageRequest::default()
    };
    match state.store.participants(lost.sid, &filter, &request).await {
        Ok(page) if !page.items.is_empty() => {}
        Ok(_) => return gone(),
        Err(e) => return Adoption::NotYet(format!("cannot read the participants: {e}")),
    }
    // What the client asked for on `connect`, as its node kept it (when
    // Redis lost it: no media signaling, automatic subscription).
    let asked = match &state.cluster {
        Some(cluster) => cluster.kept(&asked_key(&sync.session)).await,
        None => None,
    };
    let asked = asked
        .and_then(|kept| serde_json::from_str(&kept).ok())
        .unwrap_or(Asked {
            media_signaling: rsp::MediaSignalingRequest::default(),
            bandwidth_profile: None,
            automatic: true,
        });
    // The client keeps the SIDs the lost room gave its tracks.
    let known = match state
        .store
        .tracks_published_in(lost.sid, &verified.identity)
        .await
    {
        Ok(known) => known,
        Err(e) => return Adoption::NotYet(format!("cannot read the published tracks: {e}")),
    };
    let name = Some(lost.unique_name);
    match session::admit_verified(state, verified, name, asked.automatic, true).await {
        Ok((member, snapshot)) => Adoption::Ready(Box::new(Adopted {
            member,
            snapshot,
            asked,
            known,
        })),
        Err(Refusal {
            redirect: Some(node),
            ..
        }) => Adoption::Elsewhere(node),
        Err(refusal) if refusal.code == codes::SERVER_BUSY => Adoption::NotYet(refusal.message),
        Err(refusal) => Adoption::Refused(refusal),
    }
}

/// Carry on the session of a lost node in the room `member` was admitted
/// to. The client keeps the SIDs and the session id it was given first
/// (the SDK sets them once), so the session stays under that id; its
/// revisions start above any the lost node can have sent. `synced` shows
/// the new room (the old room's participants, absent from it, leave the
/// client's view), and names a new peer connection with a `create-offer`:
/// the SDK closes the one the lost node had and offers a new one with all
/// its tracks, which the session then answers as after `connect`; those
/// tracks keep, towards the client, the SIDs the lost room gave them.
async fn adopt(connection: Connection, sync: rsp::Sync, heartbeat: Duration, adopted: Adopted) {
    let Adopted {
        member,
        snapshot,
        asked,
        known,
    } = adopted;
    let mut session = Session::new(
        member,
        &snapshot,
        sync.session,
        connection,
        heartbeat,
        asked,
    );
    session.keep_asked();
    session.msp.announce_again = true;
    if let Some(profile) = session.asked.bandwidth_profile.clone() {
        session.apply_bandwidth_profile(&profile);
    }
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64);
    session.published_revision = base;
    session.recording_revision = base;
    session.subscribed_revision = base;
    session.description_revision = base;
    let published = session.apply_participant(sync.participant).await;
    session.client_sids = session
        .local
        .values()
        .filter_map(|local| {
            let (_, known) = known.iter().find(|(name, _)| *name == local.name)?;
            Some((local.sid?, *known))
        })
        .collect();
    let create_offer = PeerConnection {
        id: session::random_id(),
        description: Some(Description {
            kind: DescriptionType::CreateOffer,
            revision: base,
            sdp: None,
        }),
        ice: None,
    };
    let mut synced = session.room_state(published, vec![create_offer]);
    synced.subscribed = session.subscribed_snapshot(true);
    session.send(ServerBody::Synced(synced));
    session.serve().await;
}

// ---- the session ------------------------------------------------------------

struct Session {
    member: Member,
    id: String,
    attach: mpsc::Receiver<Attached>,
    connection: Option<Connection>,
    /// The negotiated heartbeat period.
    heartbeat: Duration,
    /// When the client last said anything (and since when it is quiet).
    heard: Heard,
    last_sent: Instant,
    detached_at: Option<Instant>,
    /// The client's participant revision last applied.
    participant_revision: u64,
    /// The client's tracks, by the client's id.
    local: HashMap<String, Local>,
    published_revision: u64,
    /// The revision of the room's recording state last sent (`connected`
    /// sends the first).
    recording_revision: u64,
    /// Everyone else the client knows: identity and the revision of the
    /// state last sent.
    remotes: HashMap<ParticipantSid, (String, u64)>,
    /// The peer connection's description revision, shared by both sides.
    description_revision: u64,
    /// The client's peer connection, named by its first offer.
    pc_id: Option<String>,
    /// The server's offer waiting for its answer: revision and SDP.
    server_offer: Option<(u64, String)>,
    /// Subscribed audio and video tracks with an m-line of their own.
    /// Its kind and the id its m-line's `a=msid` carries (the SID, or the
    /// id of the ended subscription whose m-line it reuses).
    lines: HashMap<TrackSid, (CoreKind, String)>,
    /// Inactive m-lines (their kind and id) a new subscription may reuse.
    free: Vec<(CoreKind, String)>,
    /// M-lines the outstanding server offer stops: free once answered.
    stopping: Vec<(CoreKind, String)>,
    /// Subscribed data tracks.
    data: HashSet<TrackSid>,
    /// Subscriptions waiting for the next server offer.
    to_add: Vec<(TrackSid, ParticipantSid, CoreKind)>,
    /// Ended subscriptions whose m-lines the next server offer stops.
    to_stop: Vec<(CoreKind, String)>,
    /// Whether a server offer carried the data-channel section.
    sctp_offered: bool,
    subscribed_revision: u64,
    /// The last `subscribed` snapshot sent.
    subscribed_sent: Vec<TrackSid>,
    /// Changes are being gathered for one offer: do not offer yet.
    batching: bool,
    /// Who is reconnecting, as every session announces it.
    presence: broadcast::Receiver<Notice>,
    /// Others in the room whose signaling or media is reconnecting.
    reconnecting: Away,
    /// Media signaling on data channels.
    msp: msp::Msp,
    /// What the client asked for on `connect` (and its latest bandwidth
    /// profile).
    asked: Asked,
    /// An adopted session's client knows its tracks by the SIDs the lost
    /// room gave them: this room's SID → that one (for MSP publisher
    /// hints, which name the client's own tracks).
    client_sids: HashMap<TrackSid, TrackSid>,
}

/// What a client asks for on `connect` that its `sync` does not repeat,
/// kept in the cluster for a node that adopts the session.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Asked {
    media_signaling: rsp::MediaSignalingRequest,
    bandwidth_profile: Option<rsp::BandwidthProfile>,
    /// Automatic subscription.
    automatic: bool,
}

/// How long [`Asked`] is kept at most: a session that long is past any
/// room's longest participant duration.
const ASKED_KEPT_FOR: Duration = Duration::from_secs(24 * 3600);

fn asked_key(session: &str) -> String {
    format!("twilio-session:{session}")
}

/// One of the client's tracks.
struct Local {
    kind: rsp::TrackKind,
    /// The track's name (unique among the participant's).
    name: String,
    /// The track, once published in the room.
    sid: Option<TrackSid>,
    enabled: bool,
    /// The publish priority.
    priority: Priority,
    /// Whether the media server carries its m-line.
    bound: bool,
}

/// What the session loop should do next.
enum Next {
    Continue,
    End(Goodbye),
    /// The room already removed us and the client was told.
    Ended,
}

impl Session {
    /// The session of a participant just admitted, under `id`.
    fn new(
        member: Member,
        snapshot: &session::Snapshot,
        id: String,
        connection: Connection,
        heartbeat: Duration,
        asked: Asked,
    ) -> Self {
        let state = member.state.clone();
        let attach = state.signaling.twilio.register(&id, &member.identity);
        let room = member.room;
        let mut msp = msp::Msp::new(&asked.media_signaling, snapshot.dominant_speaker);
        msp.levels.extend(
            snapshot
                .network_quality
                .iter()
                .map(|(sid, level, detail)| (*sid, (*level, *detail))),
        );
        Self {
            member,
            id,
            attach,
            connection: Some(connection),
            heartbeat,
            heard: Heard::new(Instant::now()),
            last_sent: Instant::now(),
            detached_at: None,
            participant_revision: 0,
            local: HashMap::new(),
            published_revision: 0,
            recording_revision: 1,
            remotes: snapshot
                .others
                .iter()
                .map(|p| (p.sid, (p.identity.clone(), 1)))
                .collect(),
            description_revision: 0,
            pc_id: None,
            server_offer: None,
            lines: HashMap::new(),
            free: Vec::new(),
            stopping: Vec::new(),
            data: HashSet::new(),
            to_add: Vec::new(),
            to_stop: Vec::new(),
            sctp_offered: false,
            subscribed_revision: 0,
            subscribed_sent: Vec::new(),
            batching: false,
            presence: state.signaling.presence.watch(),
            // After watching: a notice in between comes twice, which Away takes.
            reconnecting: state.signaling.presence.away_in(room),
            msp,
            asked,
            client_sids: HashMap::new(),
        }
    }

    /// The SID the client knows `track`, one of its own, by.
    fn client_sid(&self, track: TrackSid) -> TrackSid {
        self.client_sids.get(&track).copied().unwrap_or(track)
    }

    /// The track of this room the client means by `sid`.
    fn room_sid(&self, sid: TrackSid) -> TrackSid {
        self.client_sids
            .iter()
            .find_map(|(room, client)| (*client == sid).then_some(*room))
            .unwrap_or(sid)
    }

    /// In a cluster, keep what the client asked for on `connect` where a
    /// node that adopts this session can read it ([`adoption`]).
    fn keep_asked(&self) {
        let Some(cluster) = self.member.state.cluster.clone() else {
            return;
        };
        let key = asked_key(&self.id);
        let value = serde_json::to_string(&self.asked).ok();
        tokio::spawn(async move { cluster.keep(&key, value, ASKED_KEPT_FOR).await });
    }

    /// Once the client has the room: what the room did on admission
    /// (auto-subscriptions, mostly) goes in the first server offer
    /// together; then the session runs until it ends.
    async fn serve(mut self) {
        self.batching = true;
        while let Ok(event) = self.member.events.try_recv() {
            if let Some(change) = self.member.apply(&event) {
                self.on_change(change).await;
            }
        }
        self.batching = false;
        self.renegotiate().await;
        self.run().await;
        let state = &self.member.state;
        state.signaling.twilio.forget(&self.id);
        if let Some(cluster) = &state.cluster {
            cluster
                .keep(&asked_key(&self.id), None, ASKED_KEPT_FOR)
                .await;
        }
    }

    async fn run(&mut self) {
        let goodbye = loop {
            let config = self.member.state.signaling.config;
            let deadline = match self.detached_at {
                Some(at) => at + config.resume_grace,
                // The client sends at least a heartbeat per period: three
                // missed ones and the socket is taken as dropped.
                None => {
                    (self.heard.last() + 3 * self.heartbeat).min(self.last_sent + self.heartbeat)
                }
            };
            let next = tokio::select! {
                incoming = recv(&mut self.connection) => self.on_incoming(incoming).await,
                event = self.member.events.recv() => match event {
                    Some(event) => match self.member.apply(&event) {
                        Some(change) => self.on_change(change).await,
                        None => Next::Continue,
                    },
                    // The room service cut us off: our queue overflowed.
                    None => Next::End(Goodbye::of(CoreReason::Failed)),
                },
                Some(message) = self.msp.inbox.recv() => {
                    self.on_msp(message);
                    Next::Continue
                }
                Some(attached) = self.attach.recv() => {
                    self.reattach(attached).await;
                    Next::Continue
                }
                watched = session::Presence::next(&mut self.presence) => {
                    self.on_presence(watched);
                    Next::Continue
                }
                _ = tokio::time::sleep_until(deadline) => self.on_deadline(),
            };
            match next {
                Next::Continue => {}
                Next::End(goodbye) => break Some(goodbye),
                Next::Ended => break None,
            }
        };
        if let Some(goodbye) = goodbye {
            self.member.leave(goodbye.reason).await;
            self.say_goodbye(goodbye);
        }
    }

    fn on_deadline(&mut self) -> Next {
        let now = Instant::now();
        if self.detached_at.is_some() {
            tracing::info!(participant = %self.member.me, "session not resumed in time");
            return Next::End(Goodbye::of(CoreReason::Failed));
        }
        if now >= self.heard.last() + 3 * self.heartbeat {
            tracing::info!(participant = %self.member.me, "no heartbeat; waiting for sync");
            self.detach();
        } else if now >= self.last_sent + self.heartbeat {
            self.send_frame(ServerFrame::Heartbeat);
        }
        Next::Continue
    }

    fn detach(&mut self) {
        if self.detached_at.is_none() && self.reconnecting.own_detached(self.heard.quiet_from()) {
            self.member.announce_signaling(true);
        }
        self.connection = None;
        self.detached_at = Some(Instant::now());
    }

    /// Another participant's signaling or media went away or came back: its state,
    /// under its next revision.
    fn on_presence(&mut self, watched: session::Watched) {
        let presence = self.member.state.signaling.presence();
        for (participant, _) in
            self.reconnecting
                .changes(presence, self.member.room, self.member.me, watched)
        {
            self.send_participant(participant);
        }
    }

    /// Send a known participant's whole state under its next revision.
    fn send_participant(&mut self, participant: ParticipantSid) {
        let Some((_, revision)) = self.remotes.get_mut(&participant) else {
            return;
        };
        *revision += 1;
        let revision = *revision;
        let (_, others) = self.member.roster();
        let Some(snapshot) = others.into_iter().find(|p| p.sid == participant) else {
            return;
        };
        let state = self.state_of(participant);
        let mut update = ServerUpdate::new();
        update.participants.push(remote(snapshot, state, revision));
        self.send(ServerBody::Update(update));
    }

    fn state_of(&self, participant: ParticipantSid) -> ParticipantState {
        if self.reconnecting.is_away(participant) {
            ParticipantState::Reconnecting
        } else {
            ParticipantState::Connected
        }
    }

    /// The ending as the SDK reads it: `disconnected` (with `completed`
    /// for a room that ended) when there is no error to report, otherwise
    /// an `error` with the code.
    fn say_goodbye(&mut self, goodbye: Goodbye) {
        if goodbye.reason == CoreReason::Shutdown && self.member.state.cluster.is_some() {
            // A node of a cluster ending its rooms (a drain): the socket
            // goes away without a word, so the SDK resumes through another
            // node, which carries the session into a room of the same
            // name there ([`resume_elsewhere`]).
            if let Some(connection) = self.connection.take() {
                connection.close_with(tcmp::CLOSE_GOING_AWAY);
            }
            return;
        }
        let body = match (goodbye.reason, goodbye.code) {
            (CoreReason::RoomCompleted | CoreReason::Shutdown, _) => {
                ServerBody::Disconnected(rsp::Disconnected {
                    version: rsp::VERSION,
                    status: Some(rsp::DisconnectStatus::Completed),
                })
            }
            (_, Some(code)) => ServerBody::error(code, goodbye.message),
            (_, None) => ServerBody::Disconnected(rsp::Disconnected {
                version: rsp::VERSION,
                status: None,
            }),
        };
        self.send(body);
        // Dropping the connection closes the socket (code 1000: done) once
        // the writer has sent what is queued.
        self.connection = None;
    }

    fn send(&mut self, body: ServerBody) {
        self.send_frame(ServerFrame::msg(body));
    }

    /// Queue a frame for the client. While detached nothing is kept: a
    /// `sync` gets the whole state again.
    fn send_frame(&mut self, frame: ServerFrame) {
        if let Some(connection) = &self.connection {
            if connection.send(frame.to_json()) {
                self.last_sent = Instant::now();
            } else {
                tracing::warn!(participant = %self.member.me, "client is not reading its socket; detaching");
                self.detach();
            }
        }
    }

    fn error(&mut self, code: u32, message: impl Into<String>) -> Next {
        Next::End(Goodbye {
            reason: CoreReason::Failed,
            code: Some(code),
            message: message.into(),
        })
    }

    async fn on_incoming(&mut self, incoming: Option<Incoming>) -> Next {
        let frame = match incoming {
            Some(Frame::Message(frame)) => frame,
            Some(Frame::Invalid(ProtocolError::UnknownType(_))) => return Next::Continue,
            Some(Frame::Invalid(e)) => return self.error(e.code(), e.to_string()),
            Some(Frame::Closed { clean: true }) => {
                return Next::End(Goodbye::of(CoreReason::Left));
            }
            Some(Frame::Closed { clean: false }) | None => {
                tracing::info!(participant = %self.member.me, "socket dropped; waiting for sync");
                self.detach();
                return Next::Continue;
            }
        };
        self.heard.hear(Instant::now());
        let body = match frame {
            ClientFrame::Msg { body } => body,
            ClientFrame::Heartbeat | ClientFrame::Hello(_) => return Next::Continue,
            ClientFrame::Bye => return Next::End(Goodbye::of(CoreReason::Left)),
        };
        match ClientBody::from_json(body) {
            Ok(ClientBody::Update(update)) if update.session == self.id => {
                let mut reply = ServerUpdate::new();
                if let Some(participant) = update.participant {
                    reply.published = self.apply_participant(participant).await;
                }
                if let Some(pcs) = &update.peer_connections {
                    reply.peer_connections = self.negotiate(pcs).await;
                }
                if let Some(profile) = update.bandwidth_profile {
                    self.apply_bandwidth_profile(&profile);
                    self.asked.bandwidth_profile = Some(profile);
                    self.keep_asked();
                }
                if !reply.is_empty() {
                    self.send(ServerBody::Update(reply));
                }
                self.renegotiate().await;
                Next::Continue
            }
            Ok(ClientBody::Disconnect(d)) if d.session == self.id => {
                Next::End(Goodbye::of(CoreReason::Left))
            }
            Ok(ClientBody::Update(_) | ClientBody::Disconnect(_)) => {
                self.error(codes::INVALID_MESSAGE, "not this socket's session")
            }
            Ok(other) => self.error(
                codes::INVALID_MESSAGE,
                format!("{} only opens a session", other.kind()),
            ),
            Err(e) => self.error(e.code(), e.to_string()),
        }
    }

    /// Bring the room in line with the client's full track list: publish
    /// what is new, unpublish what is gone, switch what flipped. What the
    /// client learns about its publications.
    async fn apply_participant(&mut self, state: LocalParticipantState) -> Option<rsp::Published> {
        if state.revision <= self.participant_revision && self.participant_revision > 0 {
            return None;
        }
        self.participant_revision = state.revision;
        let mut results = Vec::new();
        let listed: Vec<&str> = state.tracks.iter().map(|t| t.id.as_str()).collect();
        let gone: Vec<String> = self
            .local
            .keys()
            .filter(|id| !listed.contains(&id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(Local { sid: Some(sid), .. }) = self.local.remove(&id) {
                if let Err(e) = self.member.unpublish(sid).await {
                    tracing::debug!(error = %e, "unpublishing a track the room no longer had");
                }
            }
        }
        for track in state.tracks {
            let priority = track.priority.unwrap_or(Priority::Standard);
            if let Some(local) = self.local.get_mut(&track.id) {
                if let Some(sid) = local.sid
                    && local.priority != priority
                {
                    local.priority = priority;
                    if let Err(e) = self
                        .member
                        .set_publish_priority(sid, msp::media_priority(priority))
                    {
                        tracing::debug!(error = e, "setting a publish priority");
                    }
                }
                if let Some(sid) = local.sid
                    && local.enabled != track.enabled
                {
                    local.enabled = track.enabled;
                    if let Err(e) = self.member.set_track_enabled(sid, track.enabled).await {
                        let (code, message) = session::service_failure(e);
                        tracing::debug!(code, message, "switching a track");
                    }
                }
                continue;
            }
            let name = track.name.clone();
            let published = match track.kind {
                rsp::TrackKind::Data => {
                    // Its messages arrive on a data channel labelled with
                    // the track's id.
                    self.member.publish_data(track.name, track.id.clone()).await
                }
                rsp::TrackKind::Audio => {
                    self.member
                        .publish(track.name, CoreKind::Audio, track.enabled)
                        .await
                }
                rsp::TrackKind::Video => {
                    self.member
                        .publish(track.name, CoreKind::Video, track.enabled)
                        .await
                }
            };
            let sid = match published {
                Ok(published) => {
                    if priority != Priority::Standard
                        && let Err(e) = self
                            .member
                            .set_publish_priority(published.sid, msp::media_priority(priority))
                    {
                        tracing::debug!(error = e, "setting a publish priority");
                    }
                    results.push(PublishedTrack::ready(track.id.clone(), published.sid));
                    Some(published.sid)
                }
                Err(e) => {
                    let (code, message) = session::service_failure(e);
                    results.push(PublishedTrack::failed(track.id.clone(), code, message));
                    None
                }
            };
            let local = Local {
                kind: track.kind,
                name,
                sid,
                enabled: track.enabled,
                priority,
                bound: track.kind == rsp::TrackKind::Data,
            };
            self.local.insert(track.id, local);
        }
        if results.is_empty() {
            return None;
        }
        self.published_revision += 1;
        Some(rsp::Published {
            revision: self.published_revision,
            tracks: results,
        })
    }

    /// Answer the client's offers that are newer than the last
    /// negotiation, binding the m-lines whose `a=msid` names a published
    /// track.
    async fn negotiate(&mut self, pcs: &[PeerConnection]) -> Vec<PeerConnection> {
        let mut answers = Vec::new();
        for pc in pcs {
            let Some(Description {
                kind,
                revision,
                sdp: Some(sdp),
            }) = &pc.description
            else {
                continue;
            };
            if *kind == DescriptionType::Answer {
                self.accept_answer(*revision, sdp).await;
                continue;
            }
            if *kind != DescriptionType::Offer || *revision <= self.description_revision {
                continue;
            }
            if self.server_offer.is_some() {
                // Glare: the server's offer wins; the client rolls back,
                // answers it and offers again.
                continue;
            }
            if self.pc_id.is_none() {
                self.pc_id = Some(pc.id.clone());
            }
            self.description_revision = *revision;
            let mut bindings = Vec::new();
            for (mid, id) in msid_tracks(sdp) {
                let Some(local) = self.local.get_mut(id) else {
                    continue;
                };
                let (Some(sid), false) = (local.sid, local.bound) else {
                    continue;
                };
                let kind = match local.kind {
                    rsp::TrackKind::Audio => MediaKind::Audio,
                    rsp::TrackKind::Video => MediaKind::Video,
                    rsp::TrackKind::Data => continue,
                };
                local.bound = true;
                bindings.push(PublishBinding {
                    mid: mid.to_owned(),
                    track: sid,
                    kind,
                });
            }
            match self
                .member
                .negotiate(sdp.clone(), bindings, Vec::new(), &[])
                .await
            {
                Ok(answer) => answers.push(PeerConnection {
                    id: pc.id.clone(),
                    description: Some(Description {
                        kind: DescriptionType::Answer,
                        revision: *revision,
                        sdp: Some(answer),
                    }),
                    ice: None,
                }),
                Err(e) => {
                    tracing::info!(participant = %self.member.me, error = %e, "offer refused");
                }
            }
        }
        answers
    }

    /// Apply the client's answer to the server's offer of `revision`;
    /// answers to anything else are ignored.
    async fn accept_answer(&mut self, revision: u64, sdp: &str) {
        if self.server_offer.as_ref().map(|(r, _)| *r) != Some(revision) {
            return;
        }
        self.server_offer = None;
        let media = &self.member.state.media;
        let accepted = media
            .accept_answer(self.member.room, self.member.me, sdp.to_owned())
            .await;
        match accepted {
            Ok(()) => self.free.append(&mut self.stopping),
            Err(e) => {
                self.stopping.clear();
                tracing::info!(participant = %self.member.me, error = %e, "answer refused");
            }
        }
    }

    /// Offer the client what changed in its subscriptions, unless an offer
    /// is already out or the media session does not exist yet; tell it
    /// which tracks it receives.
    async fn renegotiate(&mut self) {
        self.open_msp();
        if self.batching
            || self.server_offer.is_some()
            || !self.member.negotiated()
            || self.pc_id.is_none()
        {
            return;
        }
        // Each new subscription reuses an inactive m-line of its kind if
        // there is one (the media server declines one the client took
        // over to send on: then a new one, and that m-line is forgotten).
        let mut free = self.free.clone();
        let add: Vec<OfferedTrack> = self
            .to_add
            .iter()
            .map(|(track, publisher, kind)| {
                let reuse = free
                    .iter()
                    .position(|(k, _)| k == kind)
                    .map(|i| free.remove(i).1);
                OfferedTrack {
                    track: *track,
                    kind: if *kind == CoreKind::Audio {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    },
                    stream: publisher.to_string(),
                    id: self.fresh_id(*track),
                    reuse,
                }
            })
            .collect();
        let stop = std::mem::take(&mut self.to_stop);
        if !add.is_empty() || !stop.is_empty() || !self.sctp_offered {
            let (room, me) = (self.member.room, self.member.me);
            let ids = stop.iter().map(|(_, id)| id.clone()).collect();
            let offered = self.member.state.media.offer(room, me, add, ids).await;
            self.sctp_offered = true;
            match offered {
                Ok(Some(offer)) => {
                    for (track, _, kind) in self.to_add.drain(..) {
                        let id = offer
                            .ids
                            .iter()
                            .find(|(t, _)| *t == track)
                            .map_or_else(|| track.to_string(), |(_, id)| id.clone());
                        self.lines.insert(track, (kind, id));
                    }
                    self.free = free;
                    self.stopping = stop;
                    self.description_revision += 1;
                    let revision = self.description_revision;
                    self.server_offer = Some((revision, offer.sdp.clone()));
                    let mut update = ServerUpdate::new();
                    update.subscribed = self.subscribed_snapshot(true);
                    update.peer_connections = self.offer_description(revision, offer.sdp);
                    self.send(ServerBody::Update(update));
                    return;
                }
                // Nothing changed: the stopped m-lines were inactive already.
                Ok(None) => free.extend(stop),
                Err(e) => {
                    tracing::info!(participant = %self.member.me, error = %e, "no server offer");
                }
            }
        }
        self.free = free;
        if let Some(subscribed) = self.subscribed_snapshot(false) {
            let mut update = ServerUpdate::new();
            update.subscribed = Some(subscribed);
            self.send(ServerBody::Update(update));
        }
    }

    fn offer_description(&self, revision: u64, sdp: String) -> Vec<PeerConnection> {
        let Some(id) = self.pc_id.clone() else {
            return Vec::new();
        };
        vec![PeerConnection {
            id,
            description: Some(Description {
                kind: DescriptionType::Offer,
                revision,
                sdp: Some(sdp),
            }),
            ice: None,
        }]
    }

    /// What the client receives, each track by its SID (the `a=msid`
    /// appdata of its m-line, or its data channel's label); `None` when
    /// that is what the client was last told, unless `always`.
    fn subscribed_snapshot(&mut self, always: bool) -> Option<rsp::Subscribed> {
        let mut tracks: Vec<TrackSid> = self.lines.keys().chain(&self.data).copied().collect();
        tracks.sort_by_key(|t| t.to_string());
        if tracks == self.subscribed_sent && !always {
            return None;
        }
        self.subscribed_revision += 1;
        self.subscribed_sent = tracks.clone();
        Some(rsp::Subscribed {
            revision: self.subscribed_revision,
            tracks: tracks
                .into_iter()
                .map(|sid| rsp::SubscribedTrack {
                    sid,
                    id: Some(
                        self.lines
                            .get(&sid)
                            .map_or_else(|| sid.to_string(), |(_, id)| id.clone()),
                    ),
                    error: None,
                })
                .collect(),
        })
    }

    /// The id for a new m-line carrying `track`: its SID, unless an m-line
    /// of this session carries that id already (a reused one, whose id is
    /// the SID of the track it first carried, when that track comes back).
    fn fresh_id(&self, track: TrackSid) -> String {
        let taken = |id: &str| {
            self.lines
                .values()
                .map(|(_, i)| i.as_str())
                .any(|i| i == id)
                || [&self.free, &self.stopping, &self.to_stop]
                    .into_iter()
                    .flatten()
                    .any(|(_, i)| i == id)
        };
        let sid = track.to_string();
        (0..)
            .map(|n| {
                if n == 0 {
                    sid.clone()
                } else {
                    format!("{sid}-{n}")
                }
            })
            .find(|id| !taken(id))
            .unwrap_or(sid)
    }

    /// A subscription ended (or its track did): its m-line stops.
    fn drop_subscription(&mut self, track: TrackSid) {
        self.to_add.retain(|(t, _, _)| *t != track);
        self.data.remove(&track);
        self.msp.hinted.remove(&track);
        self.msp.switched_off.retain(|t| *t != track);
        if let Some(line) = self.lines.remove(&track) {
            self.to_stop.push(line);
        }
    }

    /// The client's bandwidth profile, for the allocator of what it
    /// receives. The deprecated per-priority render dimensions are not
    /// used.
    fn apply_bandwidth_profile(&self, profile: &rsp::BandwidthProfile) {
        use salon_media::allocation::{Mode, SwitchOffMode};
        let Some(video) = &profile.video else {
            return;
        };
        self.member
            .set_bandwidth_profile(salon_media::ProfileUpdate {
                mode: video.mode.map(|m| match m {
                    rsp::BandwidthMode::Grid => Mode::Grid,
                    rsp::BandwidthMode::Collaboration => Mode::Collaboration,
                    rsp::BandwidthMode::Presentation => Mode::Presentation,
                }),
                max_subscription_bitrate: video.max_subscription_bandwidth,
                dominant_speaker_priority: video.active_speaker_priority.map(msp::media_priority),
                track_switch_off_mode: video.track_switch_off.map(|m| match m {
                    rsp::TrackSwitchOffMode::Detected => SwitchOffMode::Detected,
                    rsp::TrackSwitchOffMode::Predicted => SwitchOffMode::Predicted,
                    rsp::TrackSwitchOffMode::Disabled => SwitchOffMode::Disabled,
                }),
                max_tracks: video.max_tracks.map(|n| n as usize),
            });
    }

    /// The room as the client is to see it on `connected` or `synced`.
    fn room_state(
        &self,
        published: Option<rsp::Published>,
        peer_connections: Vec<PeerConnection>,
    ) -> RoomState {
        let (me, others) = self.member.roster();
        let participants = others
            .into_iter()
            .map(|p| {
                let revision = self.remotes.get(&p.sid).map_or(1, |(_, r)| *r);
                let state = self.state_of(p.sid);
                remote(p, state, revision)
            })
            .collect();
        RoomState {
            version: rsp::VERSION,
            sid: self.member.room,
            name: self.member.room_name.clone(),
            session: self.id.clone(),
            participant: LocalParticipantInfo {
                sid: me.sid,
                identity: me.identity,
            },
            options: SessionOptions {
                session_timeout: self.member.state.signaling.config.resume_grace.as_secs(),
                media_region: None,
                signaling_region: None,
            },
            participants,
            published,
            subscribed: None,
            peer_connections,
            media_signaling: self.msp.announcements(),
            recording: Some(self.recording()),
        }
    }

    /// The room's recording state under its current revision: the SDK's
    /// `room.isRecording`, `recordingStarted` / `recordingStopped`.
    fn recording(&self) -> rsp::Recording {
        rsp::Recording {
            revision: self.recording_revision,
            is_recording: self.member.recording,
        }
    }

    /// A resumed session: the new socket gets the whole state, and an
    /// answer to an offer not answered yet.
    async fn reattach(&mut self, attached: Attached) {
        tracing::info!(participant = %self.member.me, "session synced");
        // The client lost its socket, whether or not the server noticed
        // before the sync came: the others see it reconnect either way
        // (once: not again when its media going silent showed them).
        match self
            .reconnecting
            .own_resumed(self.detached_at.is_some(), self.heard.quiet_from())
        {
            Resumed::Nothing => {}
            Resumed::Back => self.member.announce_signaling(false),
            Resumed::Blip => {
                self.member.announce_signaling(true);
                self.member.announce_signaling(false);
            }
        }
        self.connection = Some(attached.connection);
        self.detached_at = None;
        self.heard.hear(Instant::now());
        let mut published = self.apply_participant(attached.sync.participant).await;
        let answers = self.negotiate(&attached.sync.peer_connections).await;
        // All publications, not only new ones: the client may have missed
        // any of them.
        let mut all: Vec<PublishedTrack> = self
            .local
            .iter()
            .filter_map(|(id, l)| l.sid.map(|sid| PublishedTrack::ready(id.clone(), sid)))
            .collect();
        if let Some(p) = published.as_mut() {
            for track in p.tracks.drain(..) {
                if !all.iter().any(|t| t.id == track.id) {
                    all.push(track);
                }
            }
        }
        self.published_revision += 1;
        let published = rsp::Published {
            revision: self.published_revision,
            tracks: all,
        };
        let mut state = self.room_state(Some(published), answers);
        // The server's offer again, in case the client never got it (it
        // ignores one it has answered already).
        if let Some((revision, sdp)) = self.server_offer.clone() {
            state
                .peer_connections
                .extend(self.offer_description(revision, sdp));
        }
        self.subscribed_sent.clear();
        state.subscribed = self.subscribed_snapshot(true);
        self.send(ServerBody::Synced(state));
    }

    /// Tell the client what a room event changed: the participant's whole
    /// state again, under its next revision.
    async fn on_change(&mut self, change: Change) -> Next {
        let (participant, state) = match change {
            Change::Recording { .. } => {
                // `member.recording` already says how it stands now.
                self.recording_revision += 1;
                let mut update = ServerUpdate::new();
                update.recording = Some(self.recording());
                self.send(ServerBody::Update(update));
                return Next::Continue;
            }
            Change::ParticipantConnected {
                participant,
                identity,
            } => {
                self.remotes.insert(participant, (identity, 0));
                (participant, ParticipantState::Connected)
            }
            Change::ParticipantDisconnected { participant } => {
                self.msp.levels.remove(&participant);
                (participant, ParticipantState::Disconnected)
            }
            Change::TrackUnpublished { participant, track } => {
                self.drop_subscription(track);
                self.renegotiate().await;
                (participant, ParticipantState::Connected)
            }
            Change::TrackPublished { participant, .. }
            | Change::TrackSwitched { participant, .. }
            | Change::TrackPriority { participant, .. } => {
                (participant, ParticipantState::Connected)
            }
            Change::Subscribed { publisher, track } => {
                if track.kind == CoreKind::Data {
                    self.data.insert(track.sid);
                } else if !self.lines.contains_key(&track.sid) {
                    self.to_add.push((track.sid, publisher, track.kind));
                }
                self.renegotiate().await;
                return Next::Continue;
            }
            Change::Unsubscribed { track } => {
                self.drop_subscription(track);
                self.renegotiate().await;
                return Next::Continue;
            }
            Change::Removed(reason) => {
                self.say_goodbye(Goodbye::of(reason));
                return Next::Ended;
            }
            Change::DominantSpeaker { participant } => {
                self.msp.dominant = participant;
                self.send_dominant_speaker();
                return Next::Continue;
            }
            Change::NetworkQuality {
                participant,
                level,
                detail,
            } => {
                self.msp.levels.insert(participant, (level, *detail));
                self.answer_network_quality();
                return Next::Continue;
            }
            Change::Switched { track, off } => {
                self.track_switched(track, off.is_some());
                return Next::Continue;
            }
            Change::Layers { track, layers } => {
                self.publisher_layers(track, layers.into_iter().map(|(_, on)| on).collect());
                return Next::Continue;
            }
        };
        let state = match state {
            ParticipantState::Connected => self.state_of(participant),
            other => {
                self.reconnecting.forget(participant);
                other
            }
        };
        let Some((identity, revision)) = self.remotes.get_mut(&participant) else {
            return Next::Continue;
        };
        *revision += 1;
        let (identity, revision) = (identity.clone(), *revision);
        let snapshot = if state == ParticipantState::Disconnected {
            self.remotes.remove(&participant);
            Participant {
                sid: participant,
                identity,
                tracks: Vec::new(),
            }
        } else {
            let (_, others) = self.member.roster();
            match others.into_iter().find(|p| p.sid == participant) {
                Some(p) => p,
                None => return Next::Continue,
            }
        };
        let mut update = ServerUpdate::new();
        update.participants.push(remote(snapshot, state, revision));
        self.send(ServerBody::Update(update));
        Next::Continue
    }
}

async fn recv(connection: &mut Option<Connection>) -> Option<Incoming> {
    match connection {
        Some(c) => c.incoming.recv().await,
        None => std::future::pending().await,
    }
}

fn remote(participant: Participant, state: ParticipantState, revision: u64) -> RemoteParticipant {
    RemoteParticipant {
        sid: participant.sid,
        identity: participant.identity,
        state,
        revision,
        tracks: participant.tracks.into_iter().map(remote_track).collect(),
    }
}

fn remote_track(track: Track) -> RemoteTrack {
    RemoteTrack {
        sid: track.sid,
        kind: match track.kind {
            CoreKind::Audio => rsp::TrackKind::Audio,
            CoreKind::Video => rsp::TrackKind::Video,
            CoreKind::Data => rsp::TrackKind::Data,
        },
        name: track.name,
        enabled: track.enabled,
        priority: match track.priority {
            "low" => Priority::Low,
            "high" => Priority::High,
            _ => Priority::Standard,
        },
    }
}

/// Each m-line's `mid` and the track id of its `a=msid:<stream> <track>`
/// (the client writes its own track ids there).
fn msid_tracks(sdp: &str) -> Vec<(&str, &str)> {
    sdp.split("\nm=")
        .skip(1)
        .filter_map(|section| {
            let mut mid = None;
            let mut track = None;
            for line in section.lines().map(str::trim_end) {
                if let Some(value) = line.strip_prefix("a=mid:") {
                    mid = Some(value.trim());
                } else if let Some(value) = line.strip_prefix("a=msid:") {
                    track = value.split_whitespace().nth(1);
                }
            }
            Some((mid?, track?))
        })
        .collect()
}

// ---- insights ----------------------------------------------------------------

/// Largest insights frame read (stats reports are a few KB).
const INSIGHTS_FRAME: usize = 256 * 1024;
/// An insights socket that sends nothing for this long is closed.
const INSIGHTS_IDLE: Duration = Duration::from_secs(60);

/// How long the room's node may take to accept a proxied connection.
const PROXY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The room's node, as a proxy's other end.
type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open `/signaling` on `node`; why not, for the client.
async fn open_upstream(node: &crate::cluster::NodeInfo) -> Result<Upstream, String> {
    let url = crate::cluster::signaling_url(node, "/signaling");
    let opened = tokio::time::timeout(
        PROXY_CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async(&url),
    )
    .await;
    match opened {
        Ok(Ok((upstream, _))) => {
            tracing::info!(
                node = node.id,
                url,
                "twilio signaling proxied to the room's node"
            );
            Ok(upstream)
        }
        Ok(Err(e)) => {
            tracing::warn!(node = node.id, url, error = %e, "cannot proxy signaling to the room's node");
            Err(format!("The room's node {} cannot be reached", node.id))
        }
        Err(_) => Err(format!(
            "The room's node {} did not answer in time",
            node.id
        )),
    }
}

/// Serve this connection's session on the room's `node` ([`relay`]), or
/// refuse it when that node cannot be reached.
async fn proxy(connection: Connection, node: crate::cluster::NodeInfo, hello: tcmp::Hello) {
    match open_upstream(&node).await {
        Ok(upstream) => relay(connection, upstream, &node, hello).await,
        Err(message) => connection.refuse(codes::SIGNALING_ERROR, message).await,
    }
}

/// Make the client's handshake again on the room's node (with its
/// `connect` or `sync`), swallow that node's `welcome` (the client has had
/// ours), then copy frames both ways until either side ends. Frames are
/// re-encoded as read, through this connection's bounded queues and rate
/// limit; nothing of the session is kept here.
async fn relay(
    mut connection: Connection,
    mut upstream: Upstream,
    node: &crate::cluster::NodeInfo,
    hello: tcmp::Hello,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let first = match serde_json::to_string(&ClientFrame::Hello(hello)) {
        Ok(text) => text,
        Err(e) => return tracing::error!(error = %e, "cannot encode a hello"),
    };
    if upstream.send(Message::text(first)).await.is_err() {
        let message = format!("The room's node {} closed the connection", node.id);
        return connection.refuse(codes::SIGNALING_ERROR, message).await;
    }
    let mut welcomed = false;
    // Each side's end is passed on as it came: a clean close as a close,
    // a dropped socket as a dropped socket (the session's node then keeps
    // the session for a resume), the node's close code to the client (the
    // SDK resumes after 1001, not after 1000).
    let clean = loop {
        tokio::select! {
            from_node = upstream.next() => match from_node {
                Some(Ok(Message::Text(text))) => {
                    if !welcomed
                        && serde_json::from_str::<serde_json::Value>(&text)
                            .is_ok_and(|v| v["type"] == "welcome")
                    {
                        welcomed = true;
                        continue;
                    }
                    if !connection.send(text.to_string()) {
                        break true;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    if let Some(frame) = frame {
                        connection.close_with(u16::from(frame.code));
                    }
                    break true;
                }
                // The node went away: so does this socket, resumably.
                Some(Err(_)) | None => {
                    connection.close_with(tcmp::CLOSE_GOING_AWAY);
                    return;
                }
                Some(Ok(_)) => {}
            },
            from_client = connection.incoming.recv() => match from_client {
                Some(Frame::Message(frame)) => {
                    let Ok(text) = serde_json::to_string(&frame) else { continue };
                    if upstream.send(Message::text(text)).await.is_err() {
                        break true;
                    }
                }
                // The room's node would refuse it too.
                Some(Frame::Invalid(e)) => tracing::debug!(error = %e, "proxied frame dropped"),
                Some(Frame::Closed { clean }) => break clean,
                None => break false,
            },
        }
    };
    if clean {
        let _ = upstream.close(None).await;
    }
}

/// `GET /insights`: the SDK's telemetry socket. Its `connect` is answered
/// (the SDK queues its events until it is) and everything else is read
/// and dropped. Closed with 1000, which the SDK does not retry.
pub async fn insights(ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(INSIGHTS_FRAME)
        .max_frame_size(INSIGHTS_FRAME)
        .on_upgrade(sink)
}

async fn sink(socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let mut answered = false;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(INSIGHTS_IDLE, rx.next()).await {
        match frame {
            Message::Text(text) if !answered && text.contains("\"connect\"") => {
                answered = true;
                let connected = serde_json::json!({
                    "type": "connected",
                    "session": session::random_id(),
                });
                let reply = Message::Text(connected.to_string().into());
                if tx.send(reply).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = tx
        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
            code: tcmp::CLOSE_DONE,
            reason: "".into(),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msids_name_the_clients_track_ids_by_mid() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:s1 mic-id\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:- cam-id\r\na=mid:1\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\nm=application 9 x\r\na=mid:3\r\n";
        assert_eq!(msid_tracks(sdp), vec![("0", "mic-id"), ("1", "cam-id")]);
        assert!(msid_tracks("garbage").is_empty());
    }
}

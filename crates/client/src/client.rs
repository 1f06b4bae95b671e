//! The client: a signaling connection and a media session, driven by one
//! task, behind a small async handle.
//!
//! [`Client::connect`] opens the WebSocket, joins, and spawns the task that
//! owns the socket, the [`MediaSession`] and the conversation with the
//! server. The [`Client`] handle sends it commands and reads its events;
//! statistics are shared and can be read at any time.
//!
//! The task follows the protocol's rules: it always offers and keeps at most
//! one offer outstanding, batching `subscribed` / `unsubscribed` /
//! unpublished tracks into the next offer; it pings every five seconds; it
//! announces each data track with `publish_data` once its channel is open.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use salon_sid::{ParticipantSid, TrackSid};
use salon_signal::{
    ClientMessage, DisconnectReason, ParticipantInfo, ProtocolError, RoomInfo, ServerMessage,
    TrackInfo,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::Instrument;

use crate::error::{ClientError, codes};
use crate::media::{MediaEvent, MediaSession, StatsHandle, TrackSpec};
use crate::path::MediaTransport;
use crate::stats::ClientStats;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sent as `client` in `join`, for the server's logs.
const CLIENT_NAME: &str = concat!("salon-client ", env!("CARGO_PKG_VERSION"));
/// Events kept for a handle that does not read them; later ones are dropped.
const EVENT_BUFFER: usize = 4096;
/// How long the server may stay silent (it answers every ping) before the
/// client gives up on it.
const SERVER_SILENCE_LIMIT: Duration = Duration::from_secs(20);
/// How long an offer may wait for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `leave` waits for the server to close the socket.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// WebSocket read chunk (see [`Client::join`]).
const WS_READ_BUFFER: usize = 8 * 1024;
/// When the server closes the media connection, how long to wait for the
/// `disconnected` that says why before reporting a media failure.
const MEDIA_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The media connection lost: wait this long for ICE to find the server
/// again on the same path before restarting it.
const RESTART_AFTER: Duration = Duration::from_secs(1);
/// While the media connection stays lost, restart ICE again this often.
const RESTART_RETRY: Duration = Duration::from_secs(4);
/// The server's session timeout when `joined` does not say.
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed by one join (a cluster sends at most one or two).
const MAX_REDIRECTS: u32 = 3;
/// How long a rejoin ([`ClientConfig::rejoin`]) keeps trying: a dead
/// node's rooms are failed within 10 s, then a new room can be made.
const REJOIN_WINDOW: Duration = Duration::from_secs(30);
/// Between rejoin attempts.
const REJOIN_RETRY: Duration = Duration::from_millis(500);
/// Between attempts to resume a dropped signaling socket.
const RESUME_RETRY: Duration = Duration::from_millis(500);
/// One attempt to resume: connect, `resume`, `joined`.
const RESUME_ATTEMPT: Duration = Duration::from_secs(5);
/// The server's "too many messages" (20429): the message was not handled.
const RATE_LIMITED: u32 = 20429;
/// How long to wait before sending again an offer the server refused with
/// [`RATE_LIMITED`]: its limit refills by one message every 1/rate seconds.
const RATE_LIMITED_RETRY: Duration = Duration::from_secs(1);

/// How to connect, and what to publish.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The signaling endpoint, e.g. `ws://127.0.0.1:3000/v1/signaling`.
    pub url: String,
    /// An access token with a video grant.
    pub token: String,
    /// The room's unique name or `RM` SID.
    pub room: String,
    /// Receive every track in the room, now and later (default true).
    pub auto_subscribe: bool,
    /// Tracks to publish from the start.
    pub publish: Vec<TrackSpec>,
    /// The address to bind the media socket to (default 127.0.0.1). Must be
    /// a concrete address: it becomes the ICE host candidate.
    pub bind_ip: IpAddr,
    /// Label of the data channel every session opens (default `"salon"`).
    pub data_channel_label: String,
    /// How long `connect` may take, socket to `joined` (default 10 s).
    pub connect_timeout: Duration,
    /// Keepalive period (default 5 s; the server drops a socket silent for 30 s).
    pub ping_interval: Duration,
    /// Drop every Nth incoming RTP packet, as a lossy network would
    /// (default none): for testing retransmission and loss handling.
    pub receive_loss: Option<NonZeroU32>,
    /// Send REMB, this receiver's estimate of its downlink, as a browser
    /// does where transport-wide congestion control is not negotiated
    /// ([`crate::remb`]; default off).
    pub remb: bool,
    /// How media travels: UDP (default), ICE over TCP, or through the TURN
    /// server `joined` names.
    pub transport: MediaTransport,
    /// When the connection to the room's node is lost (its socket drops
    /// without a `disconnected`, or the node says it is shutting down),
    /// join the room again by name through `url`, with the same tracks:
    /// in a cluster, a dead node's room is failed and the first to come
    /// back makes a new room of that name on a live node.
    /// [`ClientEvent::Rejoining`] and [`ClientEvent::Rejoined`] tell.
    /// `None` (the default): on when the server said at `joined` that it
    /// is a node of a cluster, off on a single node (whose lost room is
    /// gone). A kick or a completed room never rejoins.
    pub rejoin: Option<bool>,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, token: impl Into<String>, room: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            room: room.into(),
            auto_subscribe: true,
            publish: Vec::new(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            data_channel_label: "salon".into(),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            receive_loss: None,
            remb: false,
            transport: MediaTransport::Udp,
            rejoin: None,
        }
    }

    /// Send media over `transport` (see [`MediaTransport`]).
    pub fn transport(mut self, transport: MediaTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Rejoin by name when the room's node is lost, or not, whatever the
    /// server (see [`ClientConfig::rejoin`]).
    pub fn rejoin(mut self, on: bool) -> Self {
        self.rejoin = Some(on);
        self
    }

    /// Add a track to publish.
    pub fn publish(mut self, track: TrackSpec) -> Self {
        self.publish.push(track);
        self
    }

    pub fn auto_subscribe(mut self, on: bool) -> Self {
        self.auto_subscribe = on;
        self
    }

    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = ip;
        self
    }

    /// Drop every `nth` incoming RTP packet (see
    /// [`MediaSession::set_receive_loss`]).
    pub fn receive_loss(mut self, nth: u32) -> Self {
        self.receive_loss = NonZeroU32::new(nth);
        self
    }

    /// Send REMB ([`ClientConfig::remb`]).
    pub fn remb(mut self, on: bool) -> Self {
        self.remb = on;
        self
    }
}

/// What happens in the room and on the connection, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The room started being recorded, or stopped.
    Recording {
        recording: bool,
    },
    /// An adaptive-video message from the server, as it came:
    /// `track_switched_off`, `track_switched_on`, `track_priority_changed`,
    /// `dominant_speaker_changed`, `network_quality`, `layers`.
    Adaptive(ServerMessage),
    ParticipantConnected {
        participant: ParticipantInfo,
    },
    ParticipantDisconnected {
        participant: ParticipantSid,
    },
    TrackPublished {
        participant: ParticipantSid,
        track: TrackInfo,
    },
    TrackUnpublished {
        participant: ParticipantSid,
        track: TrackSid,
    },
    /// A publisher enabled or disabled (muted) a track.
    TrackSwitched {
        participant: ParticipantSid,
        track: TrackSid,
        enabled: bool,
    },
    /// The server confirmed one of our publications and named it.
    Published {
        name: String,
        track: TrackInfo,
    },
    /// We now receive `track`.
    Subscribed {
        participant: ParticipantSid,
        track: TrackInfo,
    },
    /// We no longer receive `track`.
    Unsubscribed {
        track: TrackSid,
    },
    /// ICE and DTLS with the server are up.
    MediaConnected,
    /// ICE consent with the server failed; it may come back.
    MediaDisconnected,
    /// The media connection was lost (`code` 53405): the client restarts
    /// ICE until it is back ([`ClientEvent::Reconnected`]), or the
    /// server's session timeout passes (then [`ClientEvent::Disconnected`]
    /// with 53405). Comes after [`ClientEvent::MediaDisconnected`].
    Reconnecting {
        code: u32,
    },
    /// The media connection is back after [`ClientEvent::Reconnecting`].
    Reconnected,
    /// The signaling socket dropped (`code` 53001, or 53002 when the server
    /// fell silent); the client resumes the session on a new socket within
    /// the session timeout ([`ClientEvent::Resumed`]), media going on
    /// meanwhile, or gives up ([`ClientEvent::Disconnected`]: 53000 when
    /// no resume got through, 53204 when the server no longer has the
    /// session).
    Resuming {
        code: u32,
        message: String,
    },
    /// The session goes on, on a new signaling socket: what changed while
    /// the socket was gone came as the usual events.
    Resumed,
    /// Another participant's signaling or media went away; the server
    /// keeps it for the session timeout.
    ParticipantReconnecting {
        participant: ParticipantSid,
    },
    /// It is back.
    ParticipantReconnected {
        participant: ParticipantSid,
    },
    /// The first packet (or data message) of a subscribed track arrived.
    MediaStarted {
        track: TrackSid,
    },
    /// A message on a subscribed data track.
    DataMessage {
        track: TrackSid,
        data: Vec<u8>,
    },
    /// A request failed; the session goes on.
    Error {
        code: u32,
        message: String,
    },
    /// The connection to the room's node was lost; joining the room again
    /// by name ([`ClientConfig::rejoin`]). Remote participants and
    /// subscriptions are gone until [`ClientEvent::Rejoined`].
    Rejoining {
        code: u32,
        message: String,
    },
    /// In the room again, as a new participant (perhaps in a new room of
    /// the same name, on another node); the published tracks are offered
    /// again, and `participants` are the others now.
    Rejoined {
        room: RoomInfo,
        participant: ParticipantInfo,
        participants: Vec<ParticipantInfo>,
    },
    /// The session is over. `reason` is the server's, when it said one;
    /// `code` the Twilio code when it is an error from the client's view
    /// (53000 when the socket dropped and no resume got through within the
    /// session timeout, 53204 when the server no longer had the session,
    /// 53405 when media failed).
    Disconnected {
        reason: Option<DisconnectReason>,
        code: Option<u32>,
        message: String,
    },
}

/// A participant in a Salon room.
///
/// ```no_run
/// use std::time::Duration;
/// use salon_client::{Client, ClientConfig, ClientEvent, TrackSpec};
///
/// # async fn demo(token: String) -> Result<(), salon_client::ClientError> {
/// let config = ClientConfig::new("ws://127.0.0.1:3000/v1/signaling", token, "standup")
///     .publish(TrackSpec::audio("mic"))
///     .publish(TrackSpec::video("camera"));
/// let mut alice = Client::connect(config).await?;
/// alice
///     .wait_for(|e| matches!(e, ClientEvent::MediaStarted { .. }), Duration::from_secs(5))
///     .await?;
/// for (track, s) in alice.stats().subscribed {
///     println!("{track}: {} frames, {} lost, p99 {:?} µs", s.frames, s.lost(), s.latency.p99());
/// }
/// alice.leave().await;
/// # Ok(()) }
/// ```
///
/// Dropping a `Client` without [`Client::leave`] is [`Client::abort`].
pub struct Client {
    room: RoomInfo,
    participant: ParticipantInfo,
    session: String,
    participants: Arc<Mutex<Vec<ParticipantInfo>>>,
    stats: StatsHandle,
    events: mpsc::Receiver<ClientEvent>,
    commands: mpsc::Sender<Command>,
    task: Option<JoinHandle<()>>,
}

enum Command {
    Publish(TrackSpec, oneshot::Sender<Result<(), ClientError>>),
    Unpublish(String, oneshot::Sender<Result<(), ClientError>>),
    SetEnabled(String, bool, oneshot::Sender<Result<(), ClientError>>),
    SendData(String, Vec<u8>, oneshot::Sender<Result<(), ClientError>>),
    Subscribe(TrackSid),
    Unsubscribe(TrackSid),
    /// An adaptive-video request, sent as it is.
    Adaptive(ClientMessage),
    Leave(oneshot::Sender<()>),
    GoSilent,
    MoveTo(IpAddr, oneshot::Sender<Result<SocketAddr, ClientError>>),
    BlackOut(Duration),
    DropSignaling,
}

impl Client {
    /// Connect, join the room, and start publishing. Returns once the server
    /// said `joined`; media connects in the background
    /// ([`ClientEvent::MediaConnected`]). A refusal carries the server's
    /// Twilio code (20101–20107 for tokens, 53105 room full, …).
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let limit = config.connect_timeout;
        match tokio::time::timeout(limit, Self::join(config)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::new(
                codes::SIGNALING_TIMEOUT,
                format!("no `joined` within {limit:?}"),
            )),
        }
    }

    async fn join(config: ClientConfig) -> Result<Client, ClientError> {
        let Opened {
            ws,
            url,
            media,
            session,
            room,
            participant,
            participants,
            session_timeout,
            node,
        } = open(&config, &config.publish, None).await?;
        let rejoin = config.rejoin.unwrap_or(node.is_some());

        let participants = Arc::new(Mutex::new(participants));
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (commands, commands_rx) = mpsc::channel(64);
        let stats = media.stats_handle();
        let connection = Connection {
            ws,
            media,
            revision: 0,
            offer_sent: None,
            offer_message: None,
            offer_retry: None,
            events: events_tx,
            dropped_events: 0,
            commands: commands_rx,
            participants: participants.clone(),
            ping_interval: config.ping_interval,
            ping_id: 0,
            heard_at: Instant::now(),
            media_closed: None,
            media_lost: None,
            restart_at: None,
            session_timeout,
            session: session.clone(),
            session_url: url,
            published: config.publish.clone(),
            rejoin,
            config,
        };
        let span = tracing::debug_span!("client", identity = %participant.identity, participant = %participant.sid);
        let task = tokio::spawn(connection.run().instrument(span));
        Ok(Client {
            room,
            participant,
            session,
            participants,
            stats,
            events,
            commands,
            task: Some(task),
        })
    }

    /// The room joined; after a rejoin, the new room, once its
    /// [`ClientEvent::Rejoined`] was read ([`Client::next_event`],
    /// [`Client::wait_for`]).
    pub fn room(&self) -> &RoomInfo {
        &self.room
    }

    /// This participant, as the server described it in `joined` (after a
    /// rejoin, as [`Client::room`]: the new one).
    pub fn participant(&self) -> &ParticipantInfo {
        &self.participant
    }

    /// The session id (for `resume`).
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Everyone else in the room now, with their tracks, in join order.
    pub fn participants(&self) -> Vec<ParticipantInfo> {
        self.participants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The SID of our published track `name`, once the server confirmed it.
    pub fn published_track(&self, name: &str) -> Option<TrackSid> {
        self.stats.published_track(name)
    }

    /// A copy of the statistics now: per published track (by name) and per
    /// subscribed track (by SID).
    pub fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }

    /// The shared statistics, readable without the client (e.g. by a
    /// reporter task of a load test).
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The next event; `None` once the session ended and every event was read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        let event = self.events.recv().await;
        if let Some(event) = &event {
            self.follow(event);
        }
        event
    }

    /// After a [`ClientEvent::Rejoined`] read from the queue, [`Client::room`]
    /// and [`Client::participant`] name the new room and participant.
    fn follow(&mut self, event: &ClientEvent) {
        if let ClientEvent::Rejoined {
            room, participant, ..
        } = event
        {
            self.room = room.clone();
            self.participant = participant.clone();
        }
    }

    /// Read events until one satisfies `pred` and return it; the events read
    /// before it are dropped. Fails with the session's code when it ends
    /// first, and with [`codes::WAIT_TIMEOUT`] when `timeout` passes.
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&ClientEvent) -> bool,
        timeout: Duration,
    ) -> Result<ClientEvent, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => {
                    return Err(ClientError::new(
                        codes::WAIT_TIMEOUT,
                        format!("no matching event within {timeout:?}"),
                    ));
                }
                Ok(None) => {
                    return Err(ClientError::signaling_lost("the session has ended"));
                }
                Ok(Some(event)) if pred(&event) => {
                    self.follow(&event);
                    return Ok(event);
                }
                Ok(Some(ClientEvent::Disconnected { code, message, .. })) => {
                    return Err(ClientError::new(
                        code.unwrap_or(codes::SIGNALING_DISCONNECTED),
                        message,
                    ));
                }
                Ok(Some(event)) => self.follow(&event),
            }
        }
    }

    /// Publish another track (offered at the next renegotiation).
    pub async fn publish(&self, track: TrackSpec) -> Result<(), ClientError> {
        self.request(|reply| Command::Publish(track, reply)).await
    }

    /// Stop publishing track `name`.
    pub async fn unpublish(&self, name: &str) -> Result<(), ClientError> {
        let name = name.to_string();
        self.request(|reply| Command::Unpublish(name, reply)).await
    }

    /// Enable or disable (mute) track `name`. A disabled track sends nothing.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), ClientError> {
        let name = name.to_string();
        self.request(|reply| Command::SetEnabled(name, enabled, reply))
            .await
    }

    /// Send a message on data track `name` (once its channel is open).
    pub async fn send_data(&self, name: &str, data: impl Into<Vec<u8>>) -> Result<(), ClientError> {
        let name = name.to_string();
        let data = data.into();
        self.request(|reply| Command::SendData(name, data, reply))
            .await
    }

    /// Ask to receive `track` (without auto-subscribe, or after unsubscribing).
    pub async fn subscribe(&self, track: TrackSid) -> Result<(), ClientError> {
        self.command(Command::Subscribe(track)).await
    }

    /// Stop receiving `track`.
    pub async fn unsubscribe(&self, track: TrackSid) -> Result<(), ClientError> {
        self.command(Command::Unsubscribe(track)).await
    }

    /// Send an adaptive-video request (`switch_off`, `switch_on`,
    /// `set_bandwidth_profile`, …; see `docs/protocol.md`). Answers, if
    /// any, arrive as [`ClientEvent::Adaptive`] or [`ClientEvent::Error`].
    pub async fn adaptive(&self, message: ClientMessage) -> Result<(), ClientError> {
        self.command(Command::Adaptive(message)).await
    }

    /// Leave the room: send `leave`, wait (up to 5 s) for the server to close
    /// the socket, close the media session.
    pub async fn leave(mut self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Leave(reply)).await.is_ok() {
            let _ = done.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Drop everything at once without a word to the server, as a crashed
    /// process would: the kernel closes the TCP connection, media stops.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Stop sending anything (no pings, no media, no RTCP, no STUN) while
    /// keeping both sockets open, as a vanished network would look to the
    /// server. The server's timeouts then end the session; dropping the
    /// client closes the sockets.
    /// Move the media to a new UDP socket on `ip` (a new port: another
    /// network path, as after a change of Wi-Fi) and restart ICE from it.
    /// The old socket is closed. Returns the new media address.
    pub async fn move_to(&self, ip: IpAddr) -> Result<SocketAddr, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::MoveTo(ip, reply)).await?;
        answer
            .await
            .map_err(|_| ClientError::signaling_lost("the session ended"))?
    }

    /// Drop every media datagram in and out for `duration` (a simulated
    /// network outage; signaling stays up). The media connection is lost,
    /// the client restarts ICE, and comes back when the outage ends.
    pub async fn black_out_media(&self, duration: Duration) {
        let _ = self.command(Command::BlackOut(duration)).await;
    }

    /// Drop the signaling socket without a close frame, as a lost
    /// connection would, and resume the session on a new one
    /// ([`ClientEvent::Resuming`], [`ClientEvent::Resumed`]).
    pub async fn drop_signaling(&self) {
        let _ = self.command(Command::DropSignaling).await;
    }

    pub async fn go_silent(&self) {
        let _ = self.commands.send(Command::GoSilent).await;
    }

    async fn command(&self, command: Command) -> Result<(), ClientError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| ClientError::signaling_lost("the session has ended"))
    }

    async fn request(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), ClientError>>) -> Command,
    ) -> Result<(), ClientError> {
        let (reply, result) = oneshot::channel();
        self.command(command(reply)).await?;
        result
            .await
            .map_err(|_| ClientError::signaling_lost("the session has ended"))?
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("room", &self.room.sid)
            .field("participant", &self.participant.sid)
            .finish()
    }
}

/// How the task ended.
enum End {
    /// The handle is gone or the client left; nothing more to report.
    Quiet,
    /// The signaling socket is gone (or the server fell silent): resume.
    Lost(ClientError),
    /// No resume got through within the session timeout (53000): the
    /// session's node may be gone, so a client that rejoins does.
    Unresumed(ClientError),
    /// The session is over for this reason; report it.
    Report {
        reason: Option<DisconnectReason>,
        code: Option<u32>,
        message: String,
    },
}

impl End {
    fn from_error(e: ClientError) -> End {
        End::Report {
            reason: None,
            code: Some(e.code),
            message: e.message,
        }
    }
}

/// The task's state: the socket, the media session, and where the
/// conversation with the server stands.
struct Connection {
    ws: Socket,
    media: MediaSession,
    revision: u32,
    /// The revision and send time of the outstanding offer.
    offer_sent: Option<(u32, Instant)>,
    /// The outstanding offer, kept to send again if the server refuses it
    /// for its rate limit, and when to send it.
    offer_message: Option<ClientMessage>,
    offer_retry: Option<tokio::time::Instant>,
    events: mpsc::Sender<ClientEvent>,
    dropped_events: u64,
    commands: mpsc::Receiver<Command>,
    participants: Arc<Mutex<Vec<ParticipantInfo>>>,
    ping_interval: Duration,
    ping_id: u64,
    /// When the server last sent anything.
    heard_at: Instant,
    /// Set when the server closed the media connection: the session fails
    /// at this time unless a `disconnected` explains it first.
    media_closed: Option<tokio::time::Instant>,
    /// Since when the media connection is lost (ICE consent failed).
    media_lost: Option<tokio::time::Instant>,
    /// When to restart ICE next, while the media connection is lost.
    restart_at: Option<tokio::time::Instant>,
    /// How long the server keeps us without media (`joined`).
    session_timeout: Duration,
    /// The session (`joined`), to resume it, and the URL of the node that
    /// holds it.
    session: String,
    session_url: String,
    /// How this client connected, to rejoin the same way.
    config: ClientConfig,
    /// The tracks published now, to publish again on a rejoin.
    published: Vec<TrackSpec>,
    /// Whether to rejoin when the room's node is lost
    /// ([`ClientConfig::rejoin`], decided at the first `joined`).
    rejoin: bool,
}

impl Connection {
    async fn run(mut self) {
        let end = loop {
            let mut end = match self.serve().await {
                Ok(end) => end,
                Err(e) if lost_socket(&e) => End::Lost(e),
                Err(e) => {
                    // A local failure: tell the server we are going, if it listens.
                    let _ = send(&mut self.ws, &ClientMessage::Leave {}).await;
                    End::from_error(e)
                }
            };
            if let End::Lost(e) = end {
                end = match self.resume(e).await {
                    Ok(()) => continue,
                    Err(end) => end,
                };
            }
            let lost = match (&end, self.rejoin) {
                (
                    End::Report {
                        code,
                        message,
                        reason,
                    },
                    true,
                ) if node_lost(*code, *reason) => Some((
                    code.unwrap_or(codes::SIGNALING_DISCONNECTED),
                    message.clone(),
                )),
                (End::Unresumed(e), true) => Some((e.code, e.message.clone())),
                _ => None,
            };
            let Some((code, message)) = lost else {
                break end;
            };
            tracing::info!(code, message, "lost the room's node: rejoining");
            self.emit(ClientEvent::Rejoining { code, message });
            match self.rejoin().await {
                Ok(()) => continue,
                Err(e) => break End::from_error(e),
            }
        };
        let end = match end {
            End::Unresumed(e) => End::from_error(e),
            end => end,
        };
        self.media.close();
        let _ = self.ws.close(None).await;
        if let End::Report {
            reason,
            code,
            message,
        } = end
        {
            self.emit(ClientEvent::Disconnected {
                reason,
                code,
                message,
            });
        }
    }

    async fn serve(&mut self) -> Result<End, ClientError> {
        let start = tokio::time::Instant::now() + self.ping_interval;
        let mut ping = tokio::time::interval_at(start, self.ping_interval);
        loop {
            self.offer_if_due().await?;
            tokio::select! {
                stepped = self.media.step() => stepped?,
                message = self.ws.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => {
                            // A close frame without `disconnected` first is
                            // not the server ending the session: resume.
                            return Ok(End::Lost(ClientError::signaling_lost(match frame {
                                Some(f) => format!("the server closed the connection: {} {}", f.code, f.reason),
                                None => "the server closed the connection".into(),
                            })));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            return Ok(End::Lost(ClientError::signaling_lost(format!(
                                "signaling connection lost: {e}"
                            ))));
                        }
                        None => {
                            return Ok(End::Lost(ClientError::signaling_lost(
                                "signaling connection lost",
                            )));
                        }
                    };
                    self.heard_at = Instant::now();
                    if let Some(end) = self.on_server_message(&text).await? {
                        return Ok(end);
                    }
                }
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        // The handle was dropped: end without a word.
                        return Ok(End::Quiet);
                    };
                    if let Some(end) = self.on_command(command).await? {
                        return Ok(end);
                    }
                }
                _ = ping.tick() => self.keepalive().await?,
                () = tokio::time::sleep_until(self.offer_retry.unwrap_or(far_future())),
                    if self.offer_retry.is_some() =>
                {
                    self.offer_retry = None;
                    if let Some(message) = &self.offer_message {
                        if let Some((revision, _)) = self.offer_sent {
                            self.offer_sent = Some((revision, Instant::now()));
                        }
                        send(&mut self.ws, message).await?;
                        self.media.stats_handle().lock().offers_sent_again += 1;
                    }
                }
                () = tokio::time::sleep_until(self.media_closed.unwrap_or(far_future())),
                    if self.media_closed.is_some() =>
                {
                    return Err(ClientError::media("the server closed the media connection"));
                }
                () = tokio::time::sleep_until(self.restart_at.unwrap_or(far_future())),
                    if self.restart_at.is_some() =>
                {
                    tracing::info!("media connection still lost: restarting ICE");
                    self.media.restart_ice();
                    self.restart_at = Some(tokio::time::Instant::now() + RESTART_RETRY);
                }
                () = tokio::time::sleep_until(
                    self.media_lost.map_or(far_future(), |at| at + self.session_timeout)
                ), if self.media_lost.is_some() =>
                {
                    return Err(ClientError::media(format!(
                        "no media connection for the session timeout ({:?})",
                        self.session_timeout
                    )));
                }
            }
            while let Some(event) = self.media.poll_event() {
                self.on_media_event(event).await?;
            }
        }
    }

    /// The signaling socket is gone (`lost`): open a new one to the
    /// session's node and `resume` (following redirects), until it works or
    /// the session timeout has passed; media goes on meanwhile. On success
    /// the room as it is now is reconciled with what this client knew (the
    /// messages it missed follow as usual), and an offer the old socket
    /// lost is sent again. The server's refusal (the session ended: 53204,
    /// or its node is lost) ends it as the server says; nothing that works
    /// within the session timeout ends it with 53000.
    async fn resume(&mut self, lost: ClientError) -> Result<(), End> {
        tracing::info!(
            code = lost.code,
            message = lost.message,
            "signaling lost: resuming"
        );
        self.emit(ClientEvent::Resuming {
            code: lost.code,
            message: lost.message.clone(),
        });
        let deadline = tokio::time::Instant::now() + self.session_timeout;
        let mut unreachable = 0;
        loop {
            let attempt = tokio::time::timeout(RESUME_ATTEMPT, self.resume_once()).await;
            match attempt {
                Ok(Ok(Some((ws, last_revision, participants)))) => {
                    // The old socket goes without a close frame (it is dead,
                    // or the server has moved on from it).
                    self.ws = ws;
                    self.heard_at = Instant::now();
                    self.reconcile(participants);
                    if let Some((revision, _)) = self.offer_sent
                        && revision > last_revision
                        && let Some(message) = self.offer_message.clone()
                    {
                        self.offer_sent = Some((revision, Instant::now()));
                        if let Err(e) = send(&mut self.ws, &message).await {
                            return Err(End::from_error(e));
                        }
                    }
                    self.media.stats_handle().lock().resumes += 1;
                    tracing::info!("signaling resumed");
                    self.emit(ClientEvent::Resumed);
                    return Ok(());
                }
                Ok(Err(end)) => return Err(end),
                Ok(Ok(None)) | Err(_) => {
                    // The session's node does not answer: ask through the
                    // configured address, which knows whether that node
                    // lives (it redirects back) or died (`node-lost`).
                    unreachable += 1;
                    if unreachable >= 2 && self.session_url != self.config.url {
                        tracing::info!(url = self.config.url, "the session's node does not answer");
                        self.session_url = self.config.url.clone();
                        unreachable = 0;
                    }
                }
            }
            if tokio::time::Instant::now() + RESUME_RETRY >= deadline {
                // Twilio's "reconnection attempts were exhausted".
                return Err(End::Unresumed(ClientError::new(
                    codes::SIGNALING_ERROR,
                    format!(
                        "could not resume within the session timeout ({:?}): {}",
                        self.session_timeout, lost.message
                    ),
                )));
            }
            tokio::time::sleep(RESUME_RETRY).await;
        }
    }

    /// One attempt to resume: `Ok(Some(..))` with the new socket, the
    /// server's `last_revision` and everyone else in the room; `Ok(None)`
    /// to try again; `Err` when the server ended the session.
    async fn resume_once(&mut self) -> Result<Option<(Socket, u32, Vec<ParticipantInfo>)>, End> {
        let resume = ClientMessage::Resume {
            version: salon_signal::VERSION,
            token: self.config.token.clone(),
            session: self.session.clone(),
        };
        let mut redirects = 0;
        loop {
            let Ok(mut ws) = connect(&self.session_url).await else {
                return Ok(None);
            };
            if send(&mut ws, &resume).await.is_err() {
                return Ok(None);
            }
            loop {
                match read(&mut ws).await {
                    Err(_) => return Ok(None),
                    Ok(ServerMessage::Joined {
                        participants,
                        last_revision,
                        ..
                    }) => return Ok(Some((ws, last_revision, participants))),
                    Ok(ServerMessage::Redirect { url, node }) if redirects < MAX_REDIRECTS => {
                        redirects += 1;
                        tracing::debug!(node, url, "resume redirected");
                        let _ = ws.close(None).await;
                        self.session_url = url;
                        break;
                    }
                    Ok(ServerMessage::Error { code, message, .. }) => {
                        return Err(End::Report {
                            reason: None,
                            code: Some(code),
                            message,
                        });
                    }
                    Ok(ServerMessage::Disconnected {
                        reason,
                        code,
                        message,
                    }) => {
                        return Err(End::Report {
                            reason: Some(reason),
                            code,
                            message,
                        });
                    }
                    Ok(other) => tracing::debug!("before joined, ignored: {other:?}"),
                }
            }
        }
    }

    /// After a resume: the room as `joined` says it is now, against what
    /// this client knew. Who left meanwhile is `ParticipantDisconnected`,
    /// who came is `ParticipantConnected`; the messages the client missed
    /// follow, and are taken only where they change something.
    fn reconcile(&mut self, now: Vec<ParticipantInfo>) {
        let mut before = Vec::new();
        self.update_participants(|list| before = list.clone());
        for gone in before
            .iter()
            .filter(|p| !now.iter().any(|n| n.sid == p.sid))
        {
            for track in &gone.tracks {
                self.media.unsubscribe(track.sid);
            }
            self.emit(ClientEvent::ParticipantDisconnected {
                participant: gone.sid,
            });
        }
        for came in now
            .iter()
            .filter(|n| !before.iter().any(|p| p.sid == n.sid))
        {
            self.emit(ClientEvent::ParticipantConnected {
                participant: came.clone(),
            });
        }
        self.update_participants(|list| *list = now);
    }

    /// Join the room again by name through the configured URL, with a new
    /// media session publishing the same tracks, until it works or
    /// [`REJOIN_WINDOW`] passes. A token refusal ends it at once.
    async fn rejoin(&mut self) -> Result<(), ClientError> {
        self.media.close();
        let _ = self.ws.close(None).await;
        let deadline = tokio::time::Instant::now() + REJOIN_WINDOW;
        let stats = self.media.stats_handle();
        loop {
            let attempt = tokio::time::timeout(
                self.config.connect_timeout,
                open(&self.config, &self.published, Some(stats.clone())),
            )
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::new(
                    codes::SIGNALING_TIMEOUT,
                    "no `joined` in time",
                ))
            });
            match attempt {
                Ok(opened) => {
                    self.ws = opened.ws;
                    self.session = opened.session;
                    self.session_url = opened.url;
                    self.media = opened.media;
                    self.revision = 0;
                    self.offer_sent = None;
                    self.offer_message = None;
                    self.offer_retry = None;
                    self.heard_at = Instant::now();
                    self.media_closed = None;
                    self.update_participants(|list| *list = opened.participants.clone());
                    tracing::info!(room = %opened.room.sid, participant = %opened.participant.sid, "rejoined {}", opened.room.name);
                    self.emit(ClientEvent::Rejoined {
                        room: opened.room,
                        participant: opened.participant,
                        participants: opened.participants,
                    });
                    return Ok(());
                }
                Err(e) if (20101..=20107).contains(&e.code) => return Err(e),
                Err(e) if tokio::time::Instant::now() + REJOIN_RETRY >= deadline => {
                    return Err(ClientError::new(
                        e.code,
                        format!("could not rejoin within {REJOIN_WINDOW:?}: {}", e.message),
                    ));
                }
                Err(e) => {
                    tracing::debug!(
                        code = e.code,
                        message = e.message,
                        "rejoin attempt failed; trying again"
                    );
                    tokio::time::sleep(REJOIN_RETRY).await;
                }
            }
        }
    }

    /// Send the next offer when changes wait and none is outstanding.
    async fn offer_if_due(&mut self) -> Result<(), ClientError> {
        if self.offer_sent.is_some() || !self.media.wants_offer() {
            return Ok(());
        }
        let Some(offer) = self.media.create_offer() else {
            // Nothing needed negotiating (e.g. another data channel).
            return Ok(());
        };
        self.revision += 1;
        self.offer_sent = Some((self.revision, Instant::now()));
        tracing::trace!(revision = self.revision, sdp = offer.sdp, "offer");
        let message = ClientMessage::Offer {
            revision: self.revision,
            sdp: offer.sdp,
            publish: offer.publish,
            subscribe: offer.subscribe,
        };
        send(&mut self.ws, &message).await?;
        self.offer_message = Some(message);
        Ok(())
    }

    async fn keepalive(&mut self) -> Result<(), ClientError> {
        if self.heard_at.elapsed() > SERVER_SILENCE_LIMIT {
            return Err(ClientError::new(
                codes::SIGNALING_TIMEOUT,
                format!("the server sent nothing for {SERVER_SILENCE_LIMIT:?}"),
            ));
        }
        if let Some((revision, at)) = self.offer_sent {
            if at.elapsed() > ANSWER_TIMEOUT {
                return Err(ClientError::signaling(format!(
                    "no answer to offer {revision} within {ANSWER_TIMEOUT:?}"
                )));
            }
        }
        self.ping_id += 1;
        send(&mut self.ws, &ClientMessage::Ping { id: self.ping_id }).await
    }

    async fn on_server_message(&mut self, text: &str) -> Result<Option<End>, ClientError> {
        let message = match ServerMessage::parse(text) {
            Ok(message) => message,
            // A newer server may send types this client does not know: the
            // protocol says to skip them (docs/protocol.md).
            Err(e @ ProtocolError::UnknownType { .. }) => {
                tracing::debug!("server message skipped: {e}");
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!("unreadable server message ignored: {e}");
                return Ok(None);
            }
        };
        match message {
            ServerMessage::Answer {
                revision,
                sdp,
                published,
            } => {
                if self.offer_sent.map(|(r, _)| r) != Some(revision) {
                    tracing::warn!(revision, "answer to an offer not outstanding: ignored");
                    return Ok(None);
                }
                self.offer_sent = None;
                self.offer_message = None;
                tracing::trace!(revision, sdp, "answer");
                self.media.accept_answer(&sdp)?;
                for p in published {
                    self.confirm(&p.mid, p.track);
                }
            }
            ServerMessage::Published { published } => self.confirm(&published.mid, published.track),
            ServerMessage::ParticipantConnected { participant } => {
                // Idempotent: after a resume, `joined` may already have had it.
                let mut new = true;
                self.update_participants(|list| {
                    match list.iter_mut().find(|p| p.sid == participant.sid) {
                        Some(known) => {
                            new = false;
                            *known = participant.clone();
                        }
                        None => list.push(participant.clone()),
                    }
                });
                if new {
                    self.emit(ClientEvent::ParticipantConnected { participant });
                }
            }
            ServerMessage::ParticipantDisconnected { participant } => {
                // Leaving ends every subscription to the leaver's tracks
                // without separate `unsubscribed` messages: free their
                // m-lines for reuse.
                let mut gone = None;
                self.update_participants(|list| {
                    if let Some(p) = list.iter().find(|p| p.sid == participant) {
                        gone = Some(p.tracks.iter().map(|t| t.sid).collect::<Vec<_>>());
                    }
                    list.retain(|p| p.sid != participant);
                });
                // Idempotent: after a resume, it may be gone already.
                let Some(tracks) = gone else {
                    return Ok(None);
                };
                for track in tracks {
                    self.media.unsubscribe(track);
                }
                self.emit(ClientEvent::ParticipantDisconnected { participant });
            }
            ServerMessage::ParticipantReconnecting { participant } => {
                self.emit(ClientEvent::ParticipantReconnecting { participant });
            }
            ServerMessage::ParticipantReconnected { participant } => {
                self.emit(ClientEvent::ParticipantReconnected { participant });
            }
            ServerMessage::TrackPublished { participant, track } => {
                // Idempotent, as above.
                let mut new = true;
                self.update_participants(|list| {
                    if let Some(p) = list.iter_mut().find(|p| p.sid == participant) {
                        new = !p.tracks.iter().any(|t| t.sid == track.sid);
                        if new {
                            p.tracks.push(track.clone());
                        }
                    }
                });
                if new {
                    self.emit(ClientEvent::TrackPublished { participant, track });
                }
            }
            ServerMessage::TrackUnpublished { participant, track } => {
                let mut known = false;
                self.update_participants(|list| {
                    if let Some(p) = list.iter_mut().find(|p| p.sid == participant) {
                        known = p.tracks.iter().any(|t| t.sid == track);
                        p.tracks.retain(|t| t.sid != track);
                    }
                });
                if known {
                    self.emit(ClientEvent::TrackUnpublished { participant, track });
                }
            }
            ServerMessage::TrackSwitched {
                participant,
                track,
                enabled,
            } => {
                self.update_participants(|list| {
                    let tracks = list.iter_mut().flat_map(|p| p.tracks.iter_mut());
                    for t in tracks.filter(|t| t.sid == track) {
                        t.enabled = enabled;
                    }
                });
                self.emit(ClientEvent::TrackSwitched {
                    participant,
                    track,
                    enabled,
                });
            }
            ServerMessage::Recording { recording } => {
                self.emit(ClientEvent::Recording { recording });
            }
            ServerMessage::Subscribed { participant, track } => {
                self.media.subscribe(track.sid, track.kind);
                self.emit(ClientEvent::Subscribed { participant, track });
            }
            ServerMessage::Unsubscribed { track } => {
                self.media.unsubscribe(track);
                self.emit(ClientEvent::Unsubscribed { track });
            }
            ServerMessage::Error {
                code,
                message,
                revision,
            } => {
                // A refused offer leaves the media session waiting for an
                // answer that will never come: the session cannot go on.
                let refused = matches!((self.offer_sent, revision), (Some((sent, _)), Some(r)) if sent == r)
                    || (revision.is_none() && self.offer_sent.is_some());
                if refused && (53400..53500).contains(&code) {
                    return Err(ClientError::new(code, message));
                }
                // Over the rate limit the offer was not handled: the same
                // offer (same revision) goes again once the limit refills.
                if refused && code == RATE_LIMITED {
                    tracing::debug!("offer refused for the rate limit; sending it again");
                    self.offer_retry = Some(tokio::time::Instant::now() + RATE_LIMITED_RETRY);
                    return Ok(None);
                }
                self.emit(ClientEvent::Error { code, message });
            }
            ServerMessage::Disconnected {
                reason,
                code,
                message,
            } => {
                return Ok(Some(End::Report {
                    reason: Some(reason),
                    code,
                    message,
                }));
            }
            ServerMessage::Pong { .. } => {}
            ServerMessage::Joined { .. } => tracing::warn!("a second `joined` ignored"),
            ServerMessage::Redirect { .. } => tracing::warn!("a `redirect` after `joined` ignored"),
            ServerMessage::Layers { track, ref layers } => {
                self.media.set_layers(track, layers);
                self.emit(ClientEvent::Adaptive(message));
            }
            adaptive @ (ServerMessage::TrackPriorityChanged { .. }
            | ServerMessage::TrackSwitchedOff { .. }
            | ServerMessage::TrackSwitchedOn { .. }
            | ServerMessage::DominantSpeakerChanged { .. }
            | ServerMessage::NetworkQuality { .. }) => self.emit(ClientEvent::Adaptive(adaptive)),
        }
        Ok(None)
    }

    fn confirm(&mut self, mid_or_label: &str, track: TrackInfo) {
        match self.media.confirm_publication(mid_or_label, track.sid) {
            Some(name) => self.emit(ClientEvent::Published { name, track }),
            None => tracing::warn!(mid_or_label, "confirmation of an unknown publication"),
        }
    }

    async fn on_command(&mut self, command: Command) -> Result<Option<End>, ClientError> {
        match command {
            Command::Publish(spec, reply) => {
                let result = self.media.publish(spec.clone());
                if result.is_ok() {
                    self.published.push(spec);
                }
                let _ = reply.send(result);
            }
            Command::Unpublish(name, reply) => {
                let track = self.media.stats_handle().published_track(&name);
                let result = self.media.unpublish(&name);
                if result.is_ok() {
                    self.published.retain(|spec| spec.name != name);
                }
                if let (Ok(()), Some(track)) = (&result, track) {
                    send(&mut self.ws, &ClientMessage::Unpublish { track }).await?;
                }
                let _ = reply.send(result);
            }
            Command::SetEnabled(name, enabled, reply) => {
                let track = self.media.stats_handle().published_track(&name);
                let result = self.media.set_enabled(&name, enabled);
                if let (Ok(()), Some(track)) = (&result, track) {
                    send(
                        &mut self.ws,
                        &ClientMessage::SetTrackEnabled { track, enabled },
                    )
                    .await?;
                }
                let _ = reply.send(result);
            }
            Command::SendData(name, data, reply) => {
                let _ = reply.send(self.media.send_data(&name, &data));
            }
            Command::Subscribe(track) => {
                send(&mut self.ws, &ClientMessage::Subscribe { track }).await?
            }
            Command::Unsubscribe(track) => {
                send(&mut self.ws, &ClientMessage::Unsubscribe { track }).await?;
            }
            Command::Adaptive(message) => send(&mut self.ws, &message).await?,
            Command::Leave(reply) => {
                let end = self.leave().await;
                let _ = reply.send(());
                return Ok(Some(end));
            }
            Command::MoveTo(ip, reply) => {
                let moved = self.media.move_to(ip).await;
                let _ = reply.send(moved);
            }
            Command::BlackOut(duration) => self.media.black_out(duration),
            Command::DropSignaling => {
                return Ok(Some(End::Lost(ClientError::signaling_lost(
                    "the signaling socket was dropped",
                ))));
            }
            Command::GoSilent => {
                // Hold the sockets, say nothing, until the handle goes away.
                while self.commands.recv().await.is_some() {}
                return Ok(Some(End::Quiet));
            }
        }
        Ok(None)
    }

    /// Say `leave` and wait for the server's `disconnected` and close.
    async fn leave(&mut self) -> End {
        if send(&mut self.ws, &ClientMessage::Leave {}).await.is_err() {
            return End::Quiet;
        }
        let mut end = End::Quiet;
        let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match message {
                Message::Text(text) => {
                    if let Ok(ServerMessage::Disconnected {
                        reason,
                        code,
                        message,
                    }) = ServerMessage::parse(&text)
                    {
                        end = End::Report {
                            reason: Some(reason),
                            code,
                            message,
                        };
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        end
    }

    async fn on_media_event(&mut self, event: MediaEvent) -> Result<(), ClientError> {
        match event {
            MediaEvent::Connected => self.emit(ClientEvent::MediaConnected),
            MediaEvent::ConnectionLost => {
                self.emit(ClientEvent::MediaDisconnected);
                let now = tokio::time::Instant::now();
                self.media_lost.get_or_insert(now);
                self.restart_at.get_or_insert(now + RESTART_AFTER);
                self.emit(ClientEvent::Reconnecting {
                    code: codes::MEDIA_FAILED,
                });
            }
            MediaEvent::ConnectionRestored => {
                self.emit(ClientEvent::MediaConnected);
                if self.media_lost.take().is_some() {
                    self.restart_at = None;
                    self.media.stats_handle().lock().reconnections += 1;
                    self.emit(ClientEvent::Reconnected);
                }
            }
            MediaEvent::MediaStarted { track } => self.emit(ClientEvent::MediaStarted { track }),
            MediaEvent::DataMessage { track, data } => {
                self.emit(ClientEvent::DataMessage { track, data });
            }
            MediaEvent::DataChannelOpen { name, label } => {
                send(&mut self.ws, &ClientMessage::PublishData { name, label }).await?;
            }
            MediaEvent::Closed => {
                // The server usually says why on the socket first, or right
                // after: give it a moment.
                self.media_closed
                    .get_or_insert(tokio::time::Instant::now() + MEDIA_CLOSE_GRACE);
            }
        }
        Ok(())
    }

    fn update_participants(&self, change: impl FnOnce(&mut Vec<ParticipantInfo>)) {
        change(&mut self.participants.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn emit(&mut self, event: ClientEvent) {
        if self.events.try_send(event).is_err() {
            self.dropped_events += 1;
            if self.dropped_events.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_events,
                    "client events are not being read; dropping"
                );
            }
        }
    }
}

/// Whether `e` is the signaling socket failing (a send that did not go,
/// the server silent too long), which a resume answers.
fn lost_socket(e: &ClientError) -> bool {
    e.code == codes::SIGNALING_DISCONNECTED || e.code == codes::SIGNALING_TIMEOUT
}

/// Whether a session's end means its node is gone (or going), so a
/// rejoin may find the room elsewhere: the server said the node is lost
/// or shutting down, or the socket failed without a `disconnected`. A
/// plain refusal of a resume (53204: the session ended while its node
/// lives) is not; neither resuming in vain for the session timeout
/// ([`End::Unresumed`]) is, though it too rejoins.
fn node_lost(code: Option<u32>, reason: Option<DisconnectReason>) -> bool {
    match reason {
        Some(reason) => matches!(
            reason,
            DisconnectReason::Shutdown | DisconnectReason::NodeLost
        ),
        None => matches!(
            code,
            Some(codes::SIGNALING_DISCONNECTED | codes::SIGNALING_TIMEOUT)
        ),
    }
}

/// A signaling socket that said `joined`, and its media session.
struct Opened {
    ws: Socket,
    media: MediaSession,
    session: String,
    /// The URL that joined (after redirects): the session's node.
    url: String,
    room: RoomInfo,
    participant: ParticipantInfo,
    participants: Vec<ParticipantInfo>,
    /// How long the server keeps this participant without media or
    /// signaling (`joined`).
    session_timeout: Duration,
    /// The cluster node holding the room (`joined`), if the server is one.
    node: Option<String>,
}

/// Open the signaling socket at `config.url` and join, following the
/// cluster's redirects (at most [`MAX_REDIRECTS`]), with a new media session
/// publishing `publish` (counting into `stats` when given).
async fn open(
    config: &ClientConfig,
    publish: &[TrackSpec],
    stats: Option<StatsHandle>,
) -> Result<Opened, ClientError> {
    let mut media =
        MediaSession::bind_with(config.bind_ip, &config.data_channel_label, config.transport)
            .await?;
    if let Some(stats) = stats {
        media.share_stats(stats);
    }
    media.set_receive_loss(config.receive_loss);
    media.set_remb(config.remb);
    for spec in publish {
        media.publish(spec.clone())?;
    }
    let join = ClientMessage::Join {
        version: salon_signal::VERSION,
        token: config.token.clone(),
        room: Some(config.room.clone()),
        auto_subscribe: config.auto_subscribe,
        client: Some(CLIENT_NAME.into()),
    };
    let mut url = config.url.clone();
    let mut redirects = 0;
    'socket: loop {
        let mut ws = connect(&url).await?;
        send(&mut ws, &join).await?;
        loop {
            match read(&mut ws).await? {
                ServerMessage::Joined {
                    session,
                    room,
                    participant,
                    participants,
                    session_timeout,
                    ice_servers,
                    node,
                    ..
                } => {
                    tracing::debug!(%room.sid, %participant.sid, url, "joined {}", room.name);
                    if config.transport == MediaTransport::Relay {
                        let (server, username, credential) = turn_server(&ice_servers).await?;
                        media.relay_through(server, &username, &credential).await?;
                    }
                    return Ok(Opened {
                        ws,
                        url,
                        media,
                        session,
                        room,
                        participant,
                        participants,
                        session_timeout: session_timeout
                            .map_or(DEFAULT_SESSION_TIMEOUT, |s| Duration::from_secs(s.into())),
                        node,
                    });
                }
                // The room is on another node of the cluster: join there.
                ServerMessage::Redirect { url: to, node } => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(ClientError::signaling(format!(
                            "more than {MAX_REDIRECTS} redirects (last to node {node} at {to})"
                        )));
                    }
                    tracing::debug!(node, to, "redirected");
                    let _ = ws.close(None).await;
                    url = to;
                    continue 'socket;
                }
                // A refusal: the `error` (or `disconnected`) says why, then
                // the server closes.
                ServerMessage::Error { code, message, .. } => {
                    return Err(ClientError::new(code, message));
                }
                ServerMessage::Disconnected { code, message, .. } => {
                    return Err(ClientError::new(
                        code.unwrap_or(codes::SIGNALING_ERROR),
                        message,
                    ));
                }
                other => tracing::debug!("before joined, ignored: {other:?}"),
            }
        }
    }
}

/// Open a signaling socket to `url`. tungstenite zeroes `read_buffer_size`
/// bytes on every read attempt (128 KiB by default), and the session task
/// polls the socket each time any of its inputs wakes it, media included:
/// keep it small. Larger messages still arrive whole.
async fn connect(url: &str) -> Result<Socket, ClientError> {
    let ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), false)
        .await
        .map_err(|e| ClientError::signaling(format!("cannot open {url}: {e}")))?;
    Ok(ws)
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

async fn send(ws: &mut Socket, message: &ClientMessage) -> Result<(), ClientError> {
    ws.send(Message::text(message.to_json()))
        .await
        .map_err(|e| ClientError::signaling_lost(format!("cannot send {}: {e}", message.kind())))
}

/// Read the next server message, skipping pings and binary frames.
async fn read(ws: &mut Socket) -> Result<ServerMessage, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return ServerMessage::parse(&text).map_err(|e| {
                    ClientError::signaling(format!("unreadable server message: {e}"))
                });
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(ClientError::signaling_lost(match frame {
                    Some(f) => format!("the server closed the connection: {} {}", f.code, f.reason),
                    None => "the server closed the connection".into(),
                }));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                return Err(ClientError::signaling_lost(format!(
                    "signaling connection lost: {e}"
                )));
            }
            None => return Err(ClientError::signaling_lost("signaling connection lost")),
        }
    }
}

/// The first TURN server over UDP among `joined`'s ICE servers: its
/// address and credentials.
async fn turn_server(
    servers: &[salon_signal::IceServer],
) -> Result<(std::net::SocketAddr, String, String), ClientError> {
    for server in servers {
        let (Some(username), Some(credential)) = (&server.username, &server.credential) else {
            continue;
        };
        for url in &server.urls {
            let Some(rest) = url.strip_prefix("turn:") else {
                continue;
            };
            let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
            if !query.is_empty() && !query.contains("transport=udp") {
                continue;
            }
            if let Some(addr) = tokio::net::lookup_host(host)
                .await
                .ok()
                .and_then(|mut a| a.next())
            {
                return Ok((addr, username.clone(), credential.clone()));
            }
        }
    }
    Err(ClientError::media(
        "relayed media asked for, but `joined` named no TURN server over UDP",
    ))
}

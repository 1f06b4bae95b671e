//! Salon's media server: a WebRTC SFU on `str0m`, forwarding each published
//! audio and video track to every subscriber.
//!
//! # The data path
//!
//! ```text
//!        the media port (--media-port): one UDP address, one socket per worker
//!        sharing it with SO_REUSEPORT; the kernel spreads 4-tuples over them
//!                      │ recvmmsg (+ GRO, + each datagram's destination address)
//!                      ▼
//!   worker thread (one per core; a room lives on exactly one worker)
//!     route: first datagram of a 4-tuple: STUN USERNAME → ufrag → peer
//!            after that: 4-tuple → peer (a map this worker owns, no locks)
//!            a peer of another worker: handed over (bounded queue + waker)
//!     peer's str0m Rtc ── decrypt ─▶ RtpPacket ─▶ Forwarder (per track)
//!                                                  │ for each Lane (subscriber):
//!                                                  │   rewrite seq, map PT,
//!                                                  ▼   gate on keyframes
//!     subscriber's str0m Rtc ── encrypt ─▶ sendmsg from the address the peer uses
//! ```
//!
//! The payload of an incoming packet is shared (`Arc<[u8]>`) by every
//! subscriber's outgoing packet: forwarding to N subscribers copies no
//! payload. A datagram for a peer of the worker that read it is handled in
//! the receive buffer; only hand-offs copy (into recycled buffers). The
//! packet path takes no locks; the only lock guards the ufrag table, touched
//! when a peer is added or removed and on a 4-tuple's first datagram.
//!
//! # The contract
//!
//! [`Media`] is the handle the control plane uses. It routes each command to
//! the room's worker (a room is placed on the worker with the fewest peers
//! when it first appears, and stays there until [`Media::room_ended`]):
//! [`Media::negotiate`] applies a participant's SDP offer with the tracks it
//! publishes and the tracks it subscribes to, and answers;
//! [`Media::unpublish`], [`Media::unsubscribe`], [`Media::publish_data`],
//! [`Media::subscribe_data`] and [`Media::remove`] change bindings. The
//! workers report [`MediaEvent`]s: a peer connected, a peer is gone (its
//! network went silent, or its session failed). One misbehaving peer — a
//! panic inside its `Rtc`, garbage datagrams, an SDP that does not parse —
//! costs only that peer.
//!
//! The forwarding rules themselves live in [`forward`], sans-IO and unit
//! tested. Beside it, four more sans-IO cores decide what adaptive video
//! forwards and reports: [`allocation`] (which simulcast layer each
//! subscriber receives, Twilio's bandwidth profiles), [`pausing`] (which
//! layers a publisher need not send at all), [`speaker`] (the
//! dominant speaker, from RFC 6464 audio levels) and [`quality`] (Twilio's
//! network quality levels 0–5).

pub mod allocation;
mod codec_order;
mod demux;
pub mod dtls;
pub mod forward;
pub mod keyframe;
pub mod pausing;
pub mod quality;
pub mod record;
pub mod sdp;
pub mod speaker;
mod stun;
pub mod tcp;
pub mod vp8;
mod worker;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use tokio::sync::{mpsc, oneshot};

pub use demux::DemuxStats;
pub use record::{RecordSpec, RecordedCodec, RecordingEvent};
pub use tcp::TcpLimits;

/// What the fuzz targets in `fuzz/` drive that is otherwise private: the
/// STUN reading and the 4-tuple routing of the demux, and the reading of an
/// offer, exactly as the workers use them. Not part of the API; nothing
/// else may depend on it. (The whole negotiation needs no entry of its
/// own: a target drives a real [`Media`] through [`Media::negotiate`].)
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::demux::{Destination, Route, Router, Routes};
    pub use crate::stun::{BINDING_RESPONSE_MAX, binding_response, is_stun, recipient_ufrag};

    /// A client's offer read as the worker reads it (`sdp::read_offer`).
    pub fn read_offer(sdp: &str) -> Result<str0m::change::SdpOffer, crate::MediaError> {
        crate::sdp::read_offer(sdp).map(|(offer, _)| offer)
    }
}

/// How the media server runs.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// UDP address to bind; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Addresses to advertise besides the bound one (a public IP behind NAT,
    /// say). Each is offered with the bound port.
    pub public_ips: Vec<IpAddr>,
    /// Worker threads; rooms are spread over them.
    pub workers: usize,
    /// A connected peer silent for this long (no ICE consent checks, no
    /// packets) is interrupted ([`MediaEvent::Interrupted`]): its network
    /// went away, and it is kept, with its publications and subscriptions,
    /// for the client to come back (from another address, or with an ICE
    /// restart). Browsers send consent checks every 2.5 s at least.
    pub silence: Duration,
    /// A connected peer silent for this long is gone: the session timeout
    /// (Twilio's is 30 s).
    pub peer_timeout: Duration,
    /// A peer that has not connected this long after its first answer is
    /// gone. str0m's ICE-lite agent gives up a candidate pair that has seen
    /// no binding request for 15 s, so a peer whose offer listed candidates
    /// fails then anyway; the same 15 s for the others keeps one number.
    pub connect_timeout: Duration,
    /// Passive ICE-TCP candidates on the media port (see [`tcp`]): a TCP
    /// listener on the same address and port number as the UDP sockets.
    pub ice_tcp: bool,
    /// What TCP clients may cost.
    pub tcp_limits: TcpLimits,
    /// Where each subscriber's downlink estimate comes from.
    pub estimation: Estimation,
}

/// Where the bandwidth allocation gets each subscriber's downlink estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimation {
    /// str0m's send-side estimation from the client's transport-wide
    /// congestion control feedback (TWCC). It probes for more with padding
    /// before a layer goes up, and it paces what the server sends, which
    /// costs a pass over the whole session per forwarded packet: about a
    /// third more CPU per packet (docs/performance.md).
    #[default]
    SendSide,
    /// The client's own estimate of what it receives (REMB, which Chromium
    /// sends when the packets it receives carry no transport-wide sequence
    /// number). The server then neither estimates nor paces: the m-lines
    /// it sends on negotiate no transport-wide sequence numbers, and
    /// packets leave as they are forwarded. The allocation reads the
    /// estimate as a congestion signal and climbs by trying one layer at a
    /// time ([`crate::allocation`], "Receiver estimates"). Experimental: a
    /// trial step into a link that cannot carry it is a second or so of
    /// congestion for that subscriber (backed off up to 48 s), and a client
    /// that sends no REMB is limited by no estimate, only by its caps.
    Receiver,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 7882)),
            public_ips: Vec::new(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            silence: Duration::from_secs(3),
            peer_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            ice_tcp: true,
            tcp_limits: TcpLimits::default(),
            estimation: Estimation::default(),
        }
    }
}

/// The kind of a published media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// A sending m-line of an offer and the track it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishBinding {
    pub mid: String,
    pub track: TrackSid,
    pub kind: MediaKind,
}

/// A receiving m-line of an offer and the track it should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeBinding {
    pub mid: String,
    pub track: TrackSid,
}

/// A track the server offers to send on a `sendonly` m-line, whose
/// `a=msid:<stream> <id>` the client binds it by: a new m-line, or with
/// `reuse`, the inactive m-line of an ended subscription whose id that is
/// (it keeps its `a=msid`, so the track takes that id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTrack {
    pub track: TrackSid,
    pub kind: MediaKind,
    pub stream: String,
    pub id: String,
    pub reuse: Option<String>,
}

/// A server offer: its SDP, and the id each offered track's m-line
/// carries (its `id`, or the `reuse`d m-line's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sdp: String,
    pub ids: Vec<(TrackSid, String)>,
}

/// A text message a client sent on one of the signaling channels the
/// server opened to it ([`Media::open_signaling`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalingMessage {
    pub label: String,
    pub text: String,
}

/// Longest signaling-channel message passed on, in bytes; longer ones, and
/// binary ones, are dropped.
pub const MAX_SIGNALING_MESSAGE: usize = 64 * 1024;
/// Signaling channels one peer may have.
pub const MAX_SIGNALING_CHANNELS: usize = 16;

/// What the workers tell the control plane.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// ICE and DTLS are up: media can flow.
    Connected {
        room: RoomSid,
        participant: ParticipantSid,
    },
    /// The room's dominant speaker changed (from the RFC 6464 audio
    /// levels of its audio tracks); `None` when the holder left.
    DominantSpeaker {
        room: RoomSid,
        participant: Option<ParticipantSid>,
    },
    /// A participant's network quality, when its level or a path's level
    /// changed, or is known for the first time, and every
    /// [`quality::REPORT_EVERY`] besides (see [`quality::NetworkQuality::report`]).
    NetworkQuality {
        room: RoomSid,
        participant: ParticipantSid,
        /// Detailed: render less with [`quality::NetworkQualityStats::at`].
        stats: Box<quality::NetworkQualityStats>,
    },
    /// A video track `participant` receives was switched off (`off`:
    /// Twilio's `switchOffReason`) or on again (`None`).
    Switched {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        off: Option<&'static str>,
    },
    /// Which simulcast layers of `participant`'s video `track` it should
    /// send (see [`pausing`]): one entry per layer in the order of its
    /// offer (`a=rid` or `a=ssrc-group:SIM`, lowest first as browsers
    /// send), with the layer's RID if it has one. Sent only on changes.
    Layers {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        layers: Vec<(Option<String>, bool)>,
    },
    /// A connected peer went silent (its network went away, or its ICE
    /// consent lapsed): it is kept, bound as it was, until it is heard
    /// from again ([`MediaEvent::Restored`]) or `peer_timeout` runs out
    /// ([`MediaEvent::Gone`]).
    Interrupted {
        room: RoomSid,
        participant: ParticipantSid,
    },
    /// An interrupted peer was heard from again (the same path came back,
    /// or the client restarted ICE, perhaps from another address).
    Restored {
        room: RoomSid,
        participant: ParticipantSid,
    },
    /// The peer is gone and its media state is dropped.
    Gone {
        room: RoomSid,
        participant: ParticipantSid,
        reason: GoneReason,
    },
    /// A recording started, completed or failed.
    Recording(RecordingEvent),
}

/// A change to a participant's bandwidth profile: `None` keeps a field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub mode: Option<allocation::Mode>,
    /// Bits per second of video; 0 removes the cap.
    pub max_subscription_bitrate: Option<u64>,
    pub dominant_speaker_priority: Option<allocation::Priority>,
    pub track_switch_off_mode: Option<allocation::SwitchOffMode>,
    /// 0 removes the limit.
    pub max_tracks: Option<usize>,
}

impl ProfileUpdate {
    /// `profile` with this update applied.
    pub fn apply(&self, mut profile: allocation::BandwidthProfile) -> allocation::BandwidthProfile {
        if let Some(mode) = self.mode {
            profile.mode = mode;
        }
        if let Some(cap) = self.max_subscription_bitrate {
            profile.max_subscription_bitrate = (cap > 0).then_some(cap);
        }
        if let Some(priority) = self.dominant_speaker_priority {
            profile.dominant_speaker_priority = priority;
        }
        if let Some(mode) = self.track_switch_off_mode {
            profile.track_switch_off_mode = mode;
        }
        if let Some(max) = self.max_tracks {
            profile.max_tracks = (max > 0).then_some(max);
        }
        profile
    }
}

/// Why a peer is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoneReason {
    /// No ICE consent and no packets for the configured timeout, or ICE never
    /// connected.
    Timeout,
    /// The peer's session failed (a protocol error, or a panic in its `Rtc`).
    Failed(String),
}

/// Why an offer could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The SDP does not parse or cannot be applied (53403).
    #[error("the offer could not be applied: {0}")]
    BadOffer(String),
    /// An m-line the offer publishes or subscribes has no codec Salon forwards (53404).
    #[error("no supported codec: {0}")]
    NoCodec(String),
    /// The media server has stopped.
    #[error("the media server has stopped")]
    Closed,
}

impl MediaError {
    /// Twilio's code for the failure.
    pub fn code(&self) -> u32 {
        match self {
            MediaError::BadOffer(_) => 53403,
            MediaError::NoCodec(_) => 53404,
            MediaError::Closed => 53000,
        }
    }
}

/// Counters of the media plane, read by `/metrics`.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// Plain STUN Binding requests the media port answered (`stun`).
    pub stun_answers: AtomicU64,
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// RTP packets received from publishers.
    pub rtp_in: AtomicU64,
    /// RTP packets written to subscribers.
    pub rtp_forwarded: AtomicU64,
    /// Datagrams received and dropped: unknown sender, worker queue full,
    /// or stale peer.
    pub dropped: AtomicU64,
    /// Datagrams that could not be sent (the socket's buffer was full, or
    /// the destination unreachable).
    pub send_failures: AtomicU64,
    /// Peers whose `Rtc` panicked (each one dropped alone).
    pub peer_panics: AtomicU64,
    /// Connected peers that went silent ([`MediaEvent::Interrupted`]).
    pub interruptions: AtomicU64,
    /// Offers that restarted ICE (new ICE credentials).
    pub ice_restarts: AtomicU64,
    /// Receiver estimates (REMB) taken as a subscriber's downlink estimate
    /// ([`Estimation::Receiver`]).
    pub receiver_estimates: AtomicU64,
    /// Peers connected now.
    pub peers: AtomicU64,
    /// ICE-TCP connections open now (waiting for their first frame, or
    /// carrying a peer's media).
    pub tcp_connections: AtomicU64,
    /// ICE-TCP connections closed for breaking a rule: over the connection
    /// cap, silent past the first-frame deadline, a first frame that is not
    /// STUN for a known peer, an oversize, empty or non-media frame, a
    /// client that does not read what it is sent.
    pub tcp_rejected: AtomicU64,
}

/// Commands the handle sends to a worker.
pub(crate) enum Command {
    Negotiate {
        room: RoomSid,
        participant: ParticipantSid,
        sdp: String,
        publish: Vec<PublishBinding>,
        subscribe: Vec<SubscribeBinding>,
        reply: oneshot::Sender<Result<String, MediaError>>,
    },
    Offer {
        participant: ParticipantSid,
        add: Vec<OfferedTrack>,
        stop: Vec<String>,
        reply: oneshot::Sender<Result<Option<Offer>, MediaError>>,
    },
    AcceptAnswer {
        participant: ParticipantSid,
        sdp: String,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Unpublish {
        participant: ParticipantSid,
        track: TrackSid,
    },
    Unsubscribe {
        participant: ParticipantSid,
        track: TrackSid,
    },
    PublishData {
        room: RoomSid,
        participant: ParticipantSid,
        label: String,
        track: TrackSid,
    },
    SubscribeData {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
    },
    Remove {
        participant: ParticipantSid,
    },
    /// Open data channels labelled `labels` to `participant` (once its
    /// SCTP association is up) for a signaling protocol of its own; what
    /// the client sends on them goes to `inbox`.
    OpenSignaling {
        participant: ParticipantSid,
        labels: Vec<String>,
        inbox: mpsc::Sender<SignalingMessage>,
    },
    /// Send `text` on `participant`'s signaling channel `label`.
    Signal {
        participant: ParticipantSid,
        label: String,
        text: String,
    },
    /// Record a track (see [`record`]).
    Record(RecordSpec),
    /// Stop recording a track: its file is finished.
    StopRecording {
        track: TrackSid,
    },
    /// Leave out (or take again) a recorded track's media: it is muted.
    PauseRecording {
        track: TrackSid,
        paused: bool,
    },
    /// The room is over: drop whatever is left of it.
    RoomEnded {
        room: RoomSid,
    },
    /// Switch `track` off (stop forwarding it) or on again for
    /// `participant`, a subscriber.
    Switch {
        participant: ParticipantSid,
        track: TrackSid,
        on: bool,
    },
    /// Set a track's priority: the publisher's own (`subscriber: false`),
    /// or `participant`'s as a subscriber (`None`: back to the publisher's).
    Priority {
        participant: ParticipantSid,
        track: TrackSid,
        subscriber: bool,
        priority: Option<allocation::Priority>,
    },
    /// Set the render dimensions `participant` wants `track` at (`None`:
    /// no limit).
    Render {
        participant: ParticipantSid,
        track: TrackSid,
        dimensions: Option<allocation::Dimensions>,
    },
    /// Change `participant`'s bandwidth profile (fields left `None` keep
    /// their value).
    Profile {
        participant: ParticipantSid,
        update: ProfileUpdate,
    },
    /// A TCP connection whose first frame named a peer of this worker.
    AdoptTcp(Box<tcp::Adopted>),
    /// For tests: make this participant's `Rtc` panic on its next input.
    #[doc(hidden)]
    Sabotage {
        participant: ParticipantSid,
    },
}

struct Inner {
    commands: Vec<crossbeam_channel::Sender<Command>>,
    /// Each worker's waker: a command is followed by a wake.
    wakers: Arc<Vec<Arc<mio::Waker>>>,
    /// Which worker each room lives on.
    placement: std::sync::Mutex<std::collections::HashMap<RoomSid, usize>>,
    /// Peers on each worker, kept by the workers: the load placement
    /// balances.
    load: Arc<Vec<AtomicU64>>,
    local_addr: SocketAddr,
    candidates: Vec<SocketAddr>,
    /// The ICE-TCP listener's address, when on.
    tcp_addr: Option<SocketAddr>,
    /// Wakes the ICE-TCP acceptor (to stop).
    tcp_waker: Option<Arc<mio::Waker>>,
    stats: Arc<MediaStats>,
    demux_stats: Arc<DemuxStats>,
    stop: Arc<AtomicBool>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// The handle to the media server. Cheap to clone.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

impl Media {
    /// Bind the media port and start the worker threads. Events go to
    /// `events`.
    pub fn start(
        config: MediaConfig,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Self> {
        let workers = config.workers.max(1);
        let (sockets, listener) = bind_port(config.bind, workers, config.ice_tcp)?;
        let local_addr = sockets[0].local_addr()?;
        let tcp_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let candidates = advertised(local_addr, &config.public_ips);
        let stats = Arc::new(MediaStats::default());
        let demux_stats = Arc::new(DemuxStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(demux::Routes::default());
        let pool = demux::BufferPool::new();
        let load: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());

        // Each worker's poll, and a waker made from it, before any worker
        // starts: every worker can wake every other.
        let mut polls = Vec::with_capacity(workers);
        let mut wakers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let poll = mio::Poll::new()?;
            wakers.push(Arc::new(mio::Waker::new(poll.registry(), worker::WAKER)?));
            polls.push(poll);
        }
        let wakers = Arc::new(wakers);
        let (handoff_to, handoffs): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| crossbeam_channel::bounded(demux::HANDOFF_QUEUE))
            .unzip();

        let mut threads = Vec::new();
        let mut commands = Vec::new();
        for (index, ((socket, poll), handoffs)) in
            sockets.into_iter().zip(polls).zip(handoffs).enumerate()
        {
            let (command_tx, command_rx) = crossbeam_channel::unbounded();
            commands.push(command_tx);
            let setup = worker::Setup {
                index,
                outbound: worker::Outbound::new(&socket)?,
                candidates: candidates.clone(),
                ice_tcp: tcp_addr.is_some(),
                tcp_limits: config.tcp_limits,
                estimation: config.estimation,
                handoffs,
                handoff_to: handoff_to.clone(),
                wakers: wakers.clone(),
                commands: command_rx,
                events: events.clone(),
                routes: routes.clone(),
                pool: pool.clone(),
                stats: stats.clone(),
                demux_stats: demux_stats.clone(),
                load: load.clone(),
                peer_timeout: config.peer_timeout,
                silence: config.silence,
                connect_timeout: config.connect_timeout,
                stop: stop.clone(),
            };
            let worker = worker::Worker::new(setup, poll, demux::Inbound::new(socket)?)?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("salon-media-{index}"))
                    .spawn(move || worker.run())?,
            );
        }
        let mut tcp_waker = None;
        if let Some(listener) = listener {
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), tcp::ACCEPTOR_WAKER)?);
            let acceptor = tcp::Acceptor {
                listener: mio::net::TcpListener::from_std(listener),
                poll,
                limits: config.tcp_limits,
                routes: routes.clone(),
                commands: commands.clone(),
                wakers: wakers.clone(),
                stats: stats.clone(),
                stop: stop.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name("salon-media-tcp".into())
                    .spawn(move || acceptor.run())?,
            );
            tcp_waker = Some(waker);
        }
        tracing::info!(%local_addr, workers, candidates = ?candidates, ice_tcp = tcp_addr.is_some(), "media server started");
        Ok(Self {
            inner: Arc::new(Inner {
                commands,
                wakers,
                placement: Default::default(),
                load,
                local_addr,
                candidates,
                tcp_addr,
                tcp_waker,
                stats,
                demux_stats,
                stop,
                threads: std::sync::Mutex::new(threads),
            }),
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The addresses offered to clients as ICE candidates (UDP; with
    /// ICE-TCP on, each is offered as a passive TCP candidate too).
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.inner.candidates
    }

    /// The ICE-TCP listener's address, when ICE-TCP is on (the UDP port
    /// number, on TCP).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.inner.tcp_addr
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> &MediaStats {
        &self.inner.stats
    }

    /// Counters of the routing of datagrams to workers.
    pub fn demux_stats(&self) -> &DemuxStats {
        &self.inner.demux_stats
    }

    /// The worker a room lives on, placing it on the least-loaded worker
    /// the first time. (A lock, but on the control plane only: datagrams
    /// never come this way.)
    pub fn worker_of(&self, room: RoomSid) -> usize {
        let mut placement = self
            .inner
            .placement
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *placement.entry(room).or_insert_with(|| {
            let load = &self.inner.load;
            (0..load.len())
                .min_by_key(|w| load[*w].load(Ordering::Relaxed))
                .unwrap_or(0)
        })
    }

    /// The room has ended: forget its placement and drop its media state.
    pub fn room_ended(&self, room: RoomSid) {
        let worker = self
            .inner
            .placement
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&room);
        if let Some(worker) = worker {
            let _ = self.to_worker(worker, Command::RoomEnded { room });
        }
    }

    fn send(&self, room: RoomSid, command: Command) -> Result<(), MediaError> {
        self.to_worker(self.worker_of(room), command)
    }

    fn to_worker(&self, worker: usize, command: Command) -> Result<(), MediaError> {
        let (Some(commands), Some(waker)) = (
            self.inner.commands.get(worker),
            self.inner.wakers.get(worker),
        ) else {
            return Err(MediaError::Closed);
        };
        commands.send(command).map_err(|_| MediaError::Closed)?;
        waker.wake().map_err(|_| MediaError::Closed)
    }

    /// Apply `participant`'s offer (creating its peer on first use) with the
    /// m-lines it publishes and subscribes, and return the answer.
    pub async fn negotiate(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        sdp: String,
        publish: Vec<PublishBinding>,
        subscribe: Vec<SubscribeBinding>,
    ) -> Result<String, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(
            room,
            Command::Negotiate {
                room,
                participant,
                sdp,
                publish,
                subscribe,
                reply,
            },
        )?;
        answer.await.map_err(|_| MediaError::Closed)?
    }

    /// Stop forwarding `track`, published by `participant`, to anyone.
    pub fn unpublish(&self, room: RoomSid, participant: ParticipantSid, track: TrackSid) {
        let _ = self.send(room, Command::Unpublish { participant, track });
    }

    /// Stop sending `track` to `participant`.
    pub fn unsubscribe(&self, room: RoomSid, participant: ParticipantSid, track: TrackSid) {
        let _ = self.send(room, Command::Unsubscribe { participant, track });
    }

    /// Relay messages of `participant`'s data channel `label` as `track`.
    /// Offer `participant` m-lines sending `add` (new ones, or inactive
    /// ones reused), the m-lines whose ids are in `stop` made inactive,
    /// and a data-channel section if it has none (for protocols where the
    /// server offers). `None`: nothing to offer. One offer at a time:
    /// answer it with [`Media::accept_answer`] first.
    pub async fn offer(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        add: Vec<OfferedTrack>,
        stop: Vec<String>,
    ) -> Result<Option<Offer>, MediaError> {
        let (reply, offer) = oneshot::channel();
        self.send(
            room,
            Command::Offer {
                participant,
                add,
                stop,
                reply,
            },
        )?;
        offer.await.map_err(|_| MediaError::Closed)?
    }

    /// Apply the client's answer to the server's outstanding offer.
    pub async fn accept_answer(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        sdp: String,
    ) -> Result<(), MediaError> {
        let (reply, done) = oneshot::channel();
        self.send(
            room,
            Command::AcceptAnswer {
                participant,
                sdp,
                reply,
            },
        )?;
        done.await.map_err(|_| MediaError::Closed)?
    }

    pub fn publish_data(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        label: String,
        track: TrackSid,
    ) {
        let _ = self.send(
            room,
            Command::PublishData {
                room,
                participant,
                label,
                track,
            },
        );
    }

    /// Open a data channel labelled with `track`'s SID to `participant` and
    /// relay the track's messages on it.
    pub fn subscribe_data(&self, room: RoomSid, participant: ParticipantSid, track: TrackSid) {
        let _ = self.send(
            room,
            Command::SubscribeData {
                room,
                participant,
                track,
            },
        );
    }

    /// Open data channels labelled `labels` to `participant`, for media
    /// signaling over data channels (Twilio's MSP): created by the server
    /// once the client's SCTP association is up (after a negotiation that
    /// carried a data-channel section), and again on a later negotiation
    /// if the client closed one. Text the client sends on them goes to
    /// `inbox` (bounded: when the session does not keep up, messages are
    /// dropped); binary messages and messages over
    /// [`MAX_SIGNALING_MESSAGE`] are dropped. A channel the client opens
    /// itself with one of these labels is not one of them. Needs the
    /// participant's peer: call it after its first negotiation.
    pub fn open_signaling(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        labels: Vec<String>,
        inbox: mpsc::Sender<SignalingMessage>,
    ) {
        let _ = self.send(
            room,
            Command::OpenSignaling {
                participant,
                labels,
                inbox,
            },
        );
    }

    /// Send `text` on `participant`'s signaling channel `label`; kept
    /// until the channel opens (a few messages at most), dropped if the
    /// channel was never asked for.
    pub fn signal(&self, room: RoomSid, participant: ParticipantSid, label: String, text: String) {
        let _ = self.send(
            room,
            Command::Signal {
                participant,
                label,
                text,
            },
        );
    }

    /// Record `spec.track` into `spec.path` until [`Media::stop_recording`]
    /// or the room ends; progress comes as [`MediaEvent::Recording`].
    pub fn record(&self, spec: RecordSpec) {
        let room = spec.room;
        let _ = self.send(room, Command::Record(spec));
    }

    /// Stop recording `track` (nothing happens if it is not recorded, or
    /// its room is no longer placed: the room's end stopped it already).
    pub fn stop_recording(&self, room: RoomSid, track: TrackSid) {
        let worker = self
            .inner
            .placement
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&room)
            .copied();
        if let Some(worker) = worker {
            let _ = self.to_worker(worker, Command::StopRecording { track });
        }
    }

    /// Leave a recorded track's media out of its file while `paused` (its
    /// publisher muted it): the file shows the mute as a gap, and video
    /// starts again at a keyframe. Nothing happens if it is not recorded.
    pub fn pause_recording(&self, room: RoomSid, track: TrackSid, paused: bool) {
        let worker = self
            .inner
            .placement
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&room)
            .copied();
        if let Some(worker) = worker {
            let _ = self.to_worker(worker, Command::PauseRecording { track, paused });
        }
    }

    /// Drop `participant`'s peer: its tracks stop, its subscriptions end.
    pub fn remove(&self, room: RoomSid, participant: ParticipantSid) {
        let _ = self.send(room, Command::Remove { participant });
    }

    /// Stop forwarding `track` to `participant` (`on: false`), keeping the
    /// subscription, or forward it again from its next keyframe.
    pub fn switch(&self, room: RoomSid, participant: ParticipantSid, track: TrackSid, on: bool) {
        let _ = self.send(
            room,
            Command::Switch {
                participant,
                track,
                on,
            },
        );
    }

    /// Set `track`'s priority as its publisher `participant` gives it.
    pub fn set_publish_priority(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        priority: allocation::Priority,
    ) {
        let command = Command::Priority {
            participant,
            track,
            subscriber: false,
            priority: Some(priority),
        };
        let _ = self.send(room, command);
    }

    /// Set `track`'s priority for subscriber `participant` (`None`: the
    /// publisher's again).
    pub fn set_subscribe_priority(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        priority: Option<allocation::Priority>,
    ) {
        let command = Command::Priority {
            participant,
            track,
            subscriber: true,
            priority,
        };
        let _ = self.send(room, command);
    }

    /// Set the size subscriber `participant` renders `track` at (`None`:
    /// no limit): the allocation forwards the smallest layer that covers
    /// it.
    pub fn set_render_dimensions(
        &self,
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        dimensions: Option<allocation::Dimensions>,
    ) {
        let _ = self.send(
            room,
            Command::Render {
                participant,
                track,
                dimensions,
            },
        );
    }

    /// Change `participant`'s bandwidth profile; it applies to its next
    /// allocation (and waits for its peer if it has none yet).
    pub fn set_profile(&self, room: RoomSid, participant: ParticipantSid, update: ProfileUpdate) {
        let _ = self.send(
            room,
            Command::Profile {
                participant,
                update,
            },
        );
    }

    /// Make `participant`'s `Rtc` panic, to prove one peer's crash costs only
    /// that peer. Tests only.
    #[doc(hidden)]
    pub fn sabotage(&self, room: RoomSid, participant: ParticipantSid) {
        let _ = self.send(room, Command::Sabotage { participant });
    }

    /// Stop every thread and wait for them.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        for waker in self.inner.wakers.iter().chain(&self.inner.tcp_waker) {
            let _ = waker.wake();
        }
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Bind the media port: `workers` UDP sockets and, with `ice_tcp`, a TCP
/// listener on the same port number. With port 0 the UDP port is picked
/// first; if that number is taken on TCP, another is tried.
fn bind_port(
    addr: SocketAddr,
    workers: usize,
    ice_tcp: bool,
) -> std::io::Result<(Vec<UdpSocket>, Option<std::net::TcpListener>)> {
    let mut attempts = 0;
    loop {
        let sockets = demux::bind(addr, workers)?;
        if !ice_tcp {
            return Ok((sockets, None));
        }
        let port = sockets[0].local_addr()?.port();
        match tcp::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(listener) => return Ok((sockets, Some(listener))),
            Err(e) if addr.port() == 0 && attempts < 16 => {
                attempts += 1;
                tracing::debug!(port, error = %e, "media port taken on TCP, picking another");
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("ICE-TCP on TCP port {port}: {e}"),
                ));
            }
        }
    }
}

/// The candidates to advertise: the bound address (or, for a wildcard bind,
/// the loopback address so local use works) plus each public IP with the
/// bound port.
fn advertised(bound: SocketAddr, public_ips: &[IpAddr]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if bound.ip().is_unspecified() {
        let loopback = if bound.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        };
        out.push(SocketAddr::new(loopback, bound.port()));
        out.extend(
            local_interface_ips(bound.is_ipv4())
                .into_iter()
                .map(|ip| SocketAddr::new(ip, bound.port())),
        );
    } else {
        out.push(bound);
    }
    for ip in public_ips {
        let addr = SocketAddr::new(*ip, bound.port());
        if !out.contains(&addr) {
            out.insert(0, addr);
        }
    }
    out
}

/// Non-loopback addresses of this host's interfaces, found by asking the
/// kernel which source address it would use to reach a public address (no
/// packet is sent). Enough for a single-homed server; multi-homed operators
/// list their addresses with `--media-ip`.
fn local_interface_ips(v4: bool) -> Vec<IpAddr> {
    let probe: SocketAddr = if v4 {
        "192.0.2.1:9".parse()
    } else {
        "[2001:db8::1]:9".parse()
    }
    .unwrap_or_else(|_| SocketAddr::from(([192, 0, 2, 1], 9)));
    let bind: SocketAddr = if v4 {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        "[::]:0"
            .parse()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    };
    UdpSocket::bind(bind)
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_candidates_cover_loopback_and_public_addresses() {
        let bound: SocketAddr = "127.0.0.1:7882".parse().unwrap();
        assert_eq!(advertised(bound, &[]), [bound]);
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            advertised(bound, &[public]),
            ["203.0.113.7:7882".parse().unwrap(), bound]
        );
        let wildcard: SocketAddr = "0.0.0.0:7882".parse().unwrap();
        let all = advertised(wildcard, &[]);
        assert_eq!(all[0], "127.0.0.1:7882".parse::<SocketAddr>().unwrap());
        assert!(all.iter().all(|a| a.port() == 7882));
    }
}

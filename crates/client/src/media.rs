//! The media session: one str0m `Rtc` in RTP mode, its UDP socket, the
//! synthetic sources of the tracks it publishes and the statistics of the
//! tracks it receives.
//!
//! A [`MediaSession`] knows SDP and RTP but not the signaling protocol: it
//! makes offers ([`MediaSession::create_offer`]) and takes answers
//! ([`MediaSession::accept_answer`]); whoever drives it carries them to the
//! server and back. That is how [`Client`](crate::Client) uses it over the
//! WebSocket, and how the integration tests use it against a bare str0m
//! answerer with no server at all.
//!
//! # Driving it
//!
//! ```no_run
//! # async fn demo() -> Result<(), salon_client::ClientError> {
//! use salon_client::{MediaSession, TrackSpec};
//! let mut media = MediaSession::bind("127.0.0.1".parse().unwrap(), "salon").await?;
//! media.publish(TrackSpec::video("camera"))?;
//! let offer = media.create_offer().expect("something to offer");
//! // … send offer.sdp to the answerer, get its answer back …
//! # let answer_sdp = String::new();
//! media.accept_answer(&answer_sdp)?;
//! loop {
//!     media.step().await?; // one datagram or one timeout; cancel-safe
//!     while let Some(event) = media.poll_event() {
//!         println!("{event:?}");
//!     }
//! }
//! # }
//! ```
//!
//! `step` is cancel-safe, so it can sit in a `tokio::select!` beside other
//! work. Every mutation of the `Rtc` inside the session is followed by a
//! full drain of `poll_output`, as str0m requires.
//!
//! # Offers
//!
//! The session always offers. Changes asked for between offers
//! ([`publish`](MediaSession::publish), [`subscribe`](MediaSession::subscribe),
//! [`unsubscribe`](MediaSession::unsubscribe),
//! [`unpublish`](MediaSession::unpublish)) are batched into the next offer.
//! At most one offer is outstanding: `create_offer` returns `None` until the
//! answer to the previous one was accepted. The first offer always carries
//! the control data channel, so the SCTP association exists (unless
//! [`without_control_channel`](MediaSession::without_control_channel) said
//! otherwise).
//!
//! # Offers made by the remote side
//!
//! Some servers offer instead: Janus's VideoRoom offers each subscription,
//! one m-line per stream it forwards, and expects an answer. A session that
//! only receives takes such an offer with
//! [`accept_offer`](MediaSession::accept_offer), told which track each
//! m-line carries, and returns the answer. Every later offer restates the
//! whole layout: m-lines it no longer binds stop counting, m-lines bound to
//! another track start their statistics afresh. Received media is measured
//! exactly as for subscriptions the session offered itself.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use salon_sid::TrackSid;
use salon_signal::{PublishMedia, SubscribeMedia, TrackKind};
use salon_turn::stun;
use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{
    Direction, KeyframeRequest, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;

use crate::error::{ClientError, codes};
use crate::path::{MediaTransport, Path, RelayPath, TcpPath, answer_candidates};
use crate::remb::ReceiveEstimate;
use crate::stats::{ClientStats, PublishStats, ReceiveStats};
use crate::synthetic::{self, FrameClock};

/// Datagrams handled per wake-up of [`MediaSession::step`].
/// Nothing heard from the server for this long: the media connection is
/// lost ([`MediaEvent::ConnectionLost`]).
const MEDIA_SILENCE: Duration = Duration::from_secs(4);
const RECEIVE_BATCH: usize = 32;

/// A track to publish: its name, kind, and the shape of its synthetic media.
///
/// ```
/// use salon_client::TrackSpec;
/// let camera = TrackSpec::video("camera").bitrate(500_000).fps(15);
/// assert_eq!(camera.bitrate_bps, 500_000);
/// let mic = TrackSpec::audio("mic").disabled();
/// assert!(!mic.enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// Unique among the participant's tracks.
    pub name: String,
    pub kind: TrackKind,
    /// Target bitrate of the synthetic media (audio, video).
    pub bitrate_bps: u32,
    /// Frames per second (video) or packets per second (audio).
    pub fps: u32,
    /// Start enabled (sending) or disabled (muted: nothing is sent).
    pub enabled: bool,
    /// Audio: the RFC 6464 audio level every packet carries, 0 (loudest)
    /// to 127 (silence), flagged as voice when below 127; `None` for none.
    pub audio_level: Option<u8>,
    /// Video: send these RID simulcast layers (`a=simulcast:send`) instead
    /// of one stream, lowest first; empty for none.
    pub simulcast: Vec<LayerSpec>,
}

/// One synthetic simulcast layer: its RID, the size its keyframes announce
/// and its bitrate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    pub rid: String,
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u32,
}

impl TrackSpec {
    /// Opus-like audio: 50 packets per second, 40 kbit/s (100-byte packets).
    pub fn audio(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: TrackKind::Audio,
            bitrate_bps: 40_000,
            fps: 50,
            enabled: true,
            audio_level: None,
            simulcast: Vec::new(),
        }
    }

    /// VP8-like video: 30 frames per second, 1.5 Mbit/s.
    pub fn video(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: TrackKind::Video,
            bitrate_bps: 1_500_000,
            fps: 30,
            enabled: true,
            audio_level: None,
            simulcast: Vec::new(),
        }
    }

    /// A data track: messages sent with `send_data` on a data channel
    /// labelled with the track's name.
    pub fn data(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: TrackKind::Data,
            bitrate_bps: 0,
            fps: 0,
            enabled: true,
            audio_level: None,
            simulcast: Vec::new(),
        }
    }

    pub fn bitrate(mut self, bps: u32) -> Self {
        self.bitrate_bps = bps;
        self
    }

    pub fn fps(mut self, fps: u32) -> Self {
        self.fps = fps.max(1);
        self
    }

    /// Audio: send this RFC 6464 audio level (0 loudest … 127 silence)
    /// in every packet, as a speaker (voice activity set below 127).
    pub fn audio_level(mut self, level: u8) -> Self {
        self.audio_level = Some(level.min(127));
        self
    }

    /// Video: send RID simulcast layers, lowest first: (rid, width,
    /// height, bits per second) each. Frames follow the track's frame rate;
    /// a keyframe request for any layer makes every layer send one.
    pub fn simulcast(mut self, layers: &[(&str, u16, u16, u32)]) -> Self {
        self.simulcast = layers
            .iter()
            .map(|(rid, width, height, bitrate_bps)| LayerSpec {
                rid: (*rid).to_owned(),
                width: *width,
                height: *height,
                bitrate_bps: *bitrate_bps,
            })
            .collect();
        self
    }

    /// Start disabled (muted).
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// RTP payload bytes of one frame (or audio packet).
    pub fn frame_bytes(&self, keyframe: bool) -> usize {
        let per_frame = (self.bitrate_bps as usize / 8) / self.fps.max(1) as usize;
        if keyframe && self.kind == TrackKind::Video {
            per_frame * synthetic::KEYFRAME_SIZE_FACTOR
        } else {
            per_frame
        }
    }
}

/// What a [`MediaSession`] reports besides statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// ICE and DTLS are up; media flows.
    Connected,
    /// ICE lost the server (consent checks unanswered). May recover.
    ConnectionLost,
    /// ICE found the server again after [`MediaEvent::ConnectionLost`].
    ConnectionRestored,
    /// The first packet (or data message) of a subscribed track arrived.
    MediaStarted { track: TrackSid },
    /// The data channel of one of our data tracks opened: time to announce
    /// it with `publish_data`.
    DataChannelOpen { name: String, label: String },
    /// A message on a subscribed data track.
    DataMessage { track: TrackSid, data: Vec<u8> },
    /// The remote closed DTLS or SCTP.
    Closed,
}

/// An offer to send to the server, with the m-lines it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sdp: String,
    /// The sending m-lines this offer adds.
    pub publish: Vec<PublishMedia>,
    /// The receiving m-lines this offer adds, and the track for each.
    pub subscribe: Vec<SubscribeMedia>,
}

/// A receiving m-line of an offer the remote side made
/// ([`MediaSession::accept_offer`]), and the track it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrack {
    /// The m-line's mid in the remote offer.
    pub mid: String,
    /// The track its statistics are kept under.
    pub track: TrackSid,
    pub kind: TrackKind,
}

/// Shared, lockable statistics: the session writes, anyone reads a copy.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<ClientStats>>);

impl StatsHandle {
    /// A copy of the statistics as they are now.
    pub fn snapshot(&self) -> ClientStats {
        self.lock().clone()
    }

    /// The SID the server gave the track published as `name`, once it did.
    pub fn published_track(&self, name: &str) -> Option<TrackSid> {
        self.lock().published.get(name).and_then(|p| p.track)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ClientStats> {
        // Stats stay usable even if a holder panicked mid-update.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One Rtc, one UDP socket, synthetic sources and receive statistics.
pub struct MediaSession {
    rtc: Rtc,
    socket: UdpSocket,
    local_addr: SocketAddr,
    /// How datagrams reach the server (the UDP socket, ICE-TCP, TURN).
    path: Path,
    /// The server's candidates from the answers: (protocol, address).
    server_candidates: Vec<(Protocol, SocketAddr)>,
    buf: Vec<u8>,
    wallclock: WallClock,
    rtc_deadline: Instant,
    connected: bool,
    /// The media connection is lost: nothing heard from the server for
    /// [`MEDIA_SILENCE`], or ICE said disconnected.
    ice_lost: bool,
    /// str0m's ICE agent said disconnected (its own, slower verdict).
    ice_disconnected: bool,
    /// When the server was last heard from.
    last_heard: Instant,
    control_label: String,
    control_channel_offered: bool,
    publications: Vec<Publication>,
    subscriptions: Vec<Subscription>,
    /// Receiving m-lines whose subscription ended, to be made `inactive` in
    /// the next offer.
    to_deactivate: Vec<(Mid, TrackKind)>,
    /// Made `inactive` in the offer now outstanding.
    deactivating: Vec<(Mid, TrackKind)>,
    /// Inactive receiving m-lines, ready to carry a new subscription of the
    /// same kind. Reusing them keeps the SDP as small as the most
    /// subscriptions held at once (stopped m-lines would stay in it
    /// forever: str0m does not recycle slots when it offers).
    idle: Vec<(Mid, TrackKind)>,
    /// Incoming data channels the server opened, by the track they carry.
    data_channels: HashMap<ChannelId, TrackSid>,
    ssrc_to_mid: HashMap<Ssrc, Mid>,
    pending: Option<SdpPendingOffer>,
    events: VecDeque<MediaEvent>,
    stats: StatsHandle,
    /// Datagrams the socket refused (send buffer full).
    send_drops: u64,
    /// The next offer restarts ICE ([`MediaSession::restart_ice`]).
    restart_ice: bool,
    /// Until then every datagram in and out is dropped (a simulated
    /// network outage, [`MediaSession::black_out`]).
    blackout_until: Option<Instant>,
    /// Drop every Nth incoming RTP packet (simulated loss).
    receive_loss: Option<NonZeroU32>,
    /// Incoming RTP packets counted towards the next simulated loss.
    rtp_since_loss: u32,
    /// This receiver's estimate of its downlink, sent as REMB; `None`:
    /// REMB is off.
    remb: Option<ReceiveEstimate>,
    /// A receive stream to send the REMB on: the last one heard.
    remb_ssrc: Option<Ssrc>,
}

struct Publication {
    index: u32,
    spec: TrackSpec,
    /// Audio, video: the m-line, once offered.
    mid: Option<Mid>,
    /// The negotiated payload type, once answered.
    pt: Option<Pt>,
    /// Data: the channel, once created; open after `ChannelOpen`.
    channel: Option<ChannelId>,
    channel_open: bool,
    /// Unpublished: stop the m-line in the next offer.
    stop_pending: bool,
    stopped: bool,
    clock: FrameClock,
    next_seq: u64,
    rtp_offset: u32,
    rtp_epoch: Option<Instant>,
    frame: u32,
    picture_id: u16,
    /// Video with simulcast: each layer's own numbering.
    layers: Vec<LayerState>,
}

/// A simulcast layer's RTP numbering: each layer is a stream of its own.
struct LayerState {
    rid: Rid,
    spec: LayerSpec,
    next_seq: u64,
    rtp_offset: u32,
    picture_id: u16,
    /// Sent (the server's `layers` may pause it).
    active: bool,
    /// Resumed: its next frame is a keyframe, as a browser's re-enabled
    /// encoding starts with one.
    restart: bool,
}

impl Publication {
    fn sends_rtp(&self) -> bool {
        self.spec.kind != TrackKind::Data && !self.stopped && self.pt.is_some()
    }

    fn clock_rate(&self) -> u64 {
        if self.spec.kind == TrackKind::Audio {
            synthetic::AUDIO_CLOCK_RATE
        } else {
            synthetic::VIDEO_CLOCK_RATE
        }
    }
}

struct Subscription {
    track: TrackSid,
    kind: TrackKind,
    mid: Option<Mid>,
    /// The m-line is an idle one being reused: the next offer makes it
    /// `recvonly` again and declares it for this track.
    reactivate: bool,
    started: bool,
}

impl MediaSession {
    /// Bind a UDP socket on `ip` (port chosen by the system), make it the
    /// session's ICE host candidate, and prepare an `Rtc` in RTP mode with
    /// Opus and VP8. `control_label` labels the data channel of the first
    /// offer.
    pub async fn bind(ip: IpAddr, control_label: &str) -> Result<Self, ClientError> {
        Self::bind_with(ip, control_label, MediaTransport::Udp).await
    }

    /// [`MediaSession::bind`] for media over `transport` (see
    /// [`MediaTransport`]): with `Tcp` the UDP socket is no candidate and
    /// the session connects to the server's passive TCP candidate once an
    /// answer names it; with `Relay`, call [`MediaSession::relay_through`]
    /// before the first offer.
    pub async fn bind_with(
        ip: IpAddr,
        control_label: &str,
        transport: MediaTransport,
    ) -> Result<Self, ClientError> {
        if ip.is_unspecified() {
            return Err(ClientError::media(format!(
                "cannot bind media to {ip}: ICE needs a concrete address"
            )));
        }
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| ClientError::media(format!("cannot bind UDP on {ip}: {e}")))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| ClientError::media(format!("UDP socket has no address: {e}")))?;

        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        let path = match transport {
            MediaTransport::Udp => {
                let candidate = Candidate::host(local_addr, "udp").map_err(|e| {
                    ClientError::media(format!("bad host candidate {local_addr}: {e}"))
                })?;
                rtc.add_local_candidate(candidate);
                Path::Udp
            }
            MediaTransport::Tcp => Path::Tcp(Box::new(TcpPath::new())),
            // No candidate until `relay_through` allocated one.
            MediaTransport::Relay => Path::Udp,
        };

        let mut session = Self {
            rtc,
            socket,
            local_addr,
            path,
            server_candidates: Vec::new(),
            buf: vec![0; 2000],
            wallclock: WallClock::now(),
            rtc_deadline: now,
            connected: false,
            ice_lost: false,
            ice_disconnected: false,
            last_heard: now,
            control_label: control_label.to_string(),
            control_channel_offered: false,
            publications: Vec::new(),
            subscriptions: Vec::new(),
            to_deactivate: Vec::new(),
            deactivating: Vec::new(),
            idle: Vec::new(),
            data_channels: HashMap::new(),
            ssrc_to_mid: HashMap::new(),
            pending: None,
            events: VecDeque::new(),
            stats: StatsHandle::default(),
            send_drops: 0,
            restart_ice: false,
            blackout_until: None,
            receive_loss: None,
            rtp_since_loss: 0,
            remb: None,
            remb_ssrc: None,
        };
        session.drain()?;
        Ok(session)
    }

    /// Count into `stats` instead of a fresh handle: a session that
    /// replaces another (a rejoin on another node) goes on with the same
    /// figures. Call before anything is published.
    pub fn share_stats(&mut self, stats: StatsHandle) {
        self.stats = stats;
    }

    /// Send REMB, this receiver's estimate of its downlink ([`crate::remb`]),
    /// or stop.
    pub fn set_remb(&mut self, on: bool) {
        if on != self.remb.is_some() {
            self.remb = on.then(ReceiveEstimate::default);
        }
    }

    /// Drop every `nth` incoming RTP packet (not RTCP, STUN or DTLS) before
    /// str0m sees it, as a lossy network would: the receiver then asks for
    /// retransmissions (NACK) as it would for real loss. `None` stops it.
    /// Counted in [`ClientStats::simulated_losses`].
    pub fn set_receive_loss(&mut self, nth: Option<NonZeroU32>) {
        self.receive_loss = nth;
        self.rtp_since_loss = 0;
    }

    /// The address media flows from: the UDP socket's, the ICE-TCP
    /// connection's, or the TURN allocation's relayed address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Send and receive through the TURN server `server` (UDP) with these
    /// credentials: allocate, and make the relayed address the session's
    /// only candidate. For a session bound with [`MediaTransport::Relay`],
    /// before its first offer.
    pub async fn relay_through(
        &mut self,
        server: SocketAddr,
        username: &str,
        credential: &str,
    ) -> Result<(), ClientError> {
        let relay = RelayPath::allocate(server, username, credential).await?;
        let candidate = Candidate::relayed(relay.relayed, self.local_addr, "udp").map_err(|e| {
            ClientError::media(format!("bad relayed candidate {}: {e}", relay.relayed))
        })?;
        self.rtc.add_local_candidate(candidate);
        self.local_addr = relay.relayed;
        self.path = Path::Relay(Box::new(relay));
        self.drain()
    }

    /// Make what the path needs once the answer named the server's
    /// addresses: the ICE-TCP connection, the TURN channels.
    async fn prepare_path(&mut self) -> Result<(), ClientError> {
        match &mut self.path {
            Path::Udp => Ok(()),
            Path::Tcp(tcp) => {
                let Some(target) = tcp.target.filter(|_| tcp.stream.is_none() && !tcp.closed)
                else {
                    return Ok(());
                };
                let local = tcp
                    .connect(target)
                    .await
                    .inspect_err(|_| tcp.closed = true)?;
                let candidate = Candidate::builder()
                    .tcp()
                    .host(local)
                    .tcptype(str0m::net::TcpType::Active)
                    .build()
                    .map_err(|e| ClientError::media(format!("bad TCP candidate {local}: {e}")))?;
                self.rtc.add_local_candidate(candidate);
                self.local_addr = local;
                self.drain()
            }
            Path::Relay(relay) => {
                if relay.turn.is_none() {
                    return Ok(());
                }
                let peers: Vec<SocketAddr> = self
                    .server_candidates
                    .iter()
                    .filter(|(p, _)| *p == Protocol::Udp)
                    .map(|(_, a)| *a)
                    .collect();
                if peers.is_empty() {
                    return Ok(());
                }
                relay.bind(&peers).await?;
                self.drain()
            }
        }
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The statistics, shared: clone it to read them from elsewhere.
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// A copy of the statistics now.
    pub fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }

    /// Publish a track. Audio and video go into the next offer; a data
    /// track gets its data channel (in the next offer, or at once when the
    /// SCTP association already exists).
    pub fn publish(&mut self, spec: TrackSpec) -> Result<(), ClientError> {
        if self
            .publications
            .iter()
            .any(|p| p.spec.name == spec.name && !p.stopped)
        {
            return Err(ClientError::new(
                codes::TRACK_NAME_DUPLICATED,
                format!("a track named {:?} is already published", spec.name),
            ));
        }
        if spec.kind == TrackKind::Data && spec.name == self.control_label {
            return Err(ClientError::new(
                codes::TRACK_NAME_DUPLICATED,
                format!(
                    "a data track cannot be named {:?}: that is the control channel's label",
                    spec.name
                ),
            ));
        }
        self.stats
            .lock()
            .published
            .insert(spec.name.clone(), PublishStats::new(spec.kind));
        let layers = if spec.kind == TrackKind::Video {
            spec.simulcast
                .iter()
                .map(|l| LayerState {
                    rid: Rid::from(l.rid.as_str()),
                    spec: l.clone(),
                    next_seq: u64::from(rand::random::<u16>() & 0x7fff),
                    rtp_offset: rand::random(),
                    picture_id: rand::random::<u16>() & 0x7fff,
                    active: true,
                    restart: false,
                })
                .collect()
        } else {
            Vec::new()
        };
        self.publications.push(Publication {
            index: self.publications.len() as u32,
            clock: FrameClock::new(spec.fps),
            layers,
            spec,
            mid: None,
            pt: None,
            channel: None,
            channel_open: false,
            stop_pending: false,
            stopped: false,
            next_seq: u64::from(rand::random::<u16>() & 0x7fff),
            rtp_offset: rand::random(),
            rtp_epoch: None,
            frame: 0,
            picture_id: rand::random::<u16>() & 0x7fff,
        });
        Ok(())
    }

    /// Stop publishing `name`: its media stops now, its m-line is stopped in
    /// the next offer, its data channel is closed.
    pub fn unpublish(&mut self, name: &str) -> Result<(), ClientError> {
        let i = self.publication_index(name)?;
        let p = &mut self.publications[i];
        p.stopped = true;
        p.clock.stop();
        p.stop_pending = p.mid.is_some();
        if let Some(id) = p.channel.take() {
            self.rtc.direct_api().close_data_channel(id);
            self.drain()?;
        }
        Ok(())
    }

    /// Enable or disable (mute) a published track. A disabled track sends
    /// nothing; enabling it again starts with a keyframe.
    pub fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<(), ClientError> {
        let i = self.publication_index(name)?;
        let now = Instant::now();
        let connected = self.connected;
        let p = &mut self.publications[i];
        if p.spec.enabled == enabled {
            return Ok(());
        }
        p.spec.enabled = enabled;
        if !enabled {
            p.clock.stop();
        } else if connected && p.sends_rtp() {
            p.clock.start(now);
        }
        Ok(())
    }

    /// Receive `track`. Audio and video get a receiving m-line in the next
    /// offer; a data track arrives on a data channel the server opens,
    /// labelled with the track's SID.
    pub fn subscribe(&mut self, track: TrackSid, kind: TrackKind) {
        if self.subscriptions.iter().any(|s| s.track == track) {
            // Already receiving it (a repeated `subscribed`): keep the m-line
            // and the statistics.
            return;
        }
        // A new subscription starts its statistics afresh.
        self.stats
            .lock()
            .subscribed
            .insert(track, ReceiveStats::new(kind, Instant::now()));
        if kind == TrackKind::Data {
            return;
        }
        let reused = self
            .idle
            .iter()
            .position(|(_, k)| *k == kind)
            .map(|i| self.idle.remove(i).0);
        self.subscriptions.push(Subscription {
            track,
            kind,
            mid: reused,
            reactivate: reused.is_some(),
            started: false,
        });
    }

    /// Stop receiving `track`: its m-line is stopped in the next offer.
    pub fn unsubscribe(&mut self, track: TrackSid) {
        let Some(i) = self.subscriptions.iter().position(|s| s.track == track) else {
            return;
        };
        let ended = self.subscriptions.remove(i);
        if let Some(mid) = ended.mid {
            self.to_deactivate.push((mid, ended.kind));
        }
    }

    /// Record the SID the server gave the track published on `mid_or_label`
    /// (an m-line's mid, or a data channel's label). Returns the track's name.
    pub fn confirm_publication(&mut self, mid_or_label: &str, track: TrackSid) -> Option<String> {
        let p = self.publications.iter().find(|p| match p.spec.kind {
            TrackKind::Data => p.spec.name == mid_or_label && !p.stopped,
            _ => p.mid.is_some_and(|m| m.to_string() == mid_or_label),
        })?;
        let name = p.spec.name.clone();
        if let Some(stats) = self.stats.lock().published.get_mut(&name) {
            stats.track = Some(track);
        }
        Some(name)
    }

    /// The server's `layers` for published video `track`: send only the
    /// simulcast layers marked active, matched by RID, else by position. A
    /// resumed layer starts with a keyframe. The lowest layer is never
    /// paused here, whatever the message says.
    pub fn set_layers(&mut self, track: TrackSid, layers: &[salon_signal::LayerHint]) {
        let Some(name) = self
            .stats
            .lock()
            .published
            .iter()
            .find(|(_, s)| s.track == Some(track))
            .map(|(name, _)| name.clone())
        else {
            return;
        };
        let Some(p) = self
            .publications
            .iter_mut()
            .find(|p| p.spec.name == name && !p.stopped)
        else {
            return;
        };
        for hint in layers {
            let index = match &hint.rid {
                Some(rid) => p.layers.iter().position(|l| l.spec.rid == *rid),
                None => Some(usize::from(hint.layer)),
            };
            let Some(layer) = index.filter(|i| *i > 0).and_then(|i| p.layers.get_mut(i)) else {
                continue;
            };
            if hint.active && !layer.active {
                layer.restart = true;
            }
            layer.active = hint.active;
        }
        let paused = p
            .layers
            .iter()
            .filter(|l| !l.active)
            .map(|l| l.spec.rid.clone())
            .collect();
        if let Some(s) = self.stats.lock().published.get_mut(&name) {
            s.paused = paused;
        }
    }

    /// Restart ICE in the next offer: new ICE credentials, which the
    /// server answers with its own, so both sides check again from where
    /// they are now (RFC 8445 §9). Counted in
    /// [`ClientStats::ice_restarts`] when the offer is made.
    pub fn restart_ice(&mut self) {
        self.restart_ice = true;
    }

    /// Move to a new UDP socket on `ip` (a new port: a new network path,
    /// as when a laptop changes Wi-Fi), drop the old one, and restart ICE
    /// from there. Returns the new address.
    pub async fn move_to(&mut self, ip: IpAddr) -> Result<SocketAddr, ClientError> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| ClientError::media(format!("cannot bind UDP on {ip}: {e}")))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| ClientError::media(format!("UDP socket has no address: {e}")))?;
        let old = Candidate::host(self.local_addr, "udp")
            .map_err(|e| ClientError::media(format!("bad host candidate: {e}")))?;
        let new = Candidate::host(local_addr, "udp")
            .map_err(|e| ClientError::media(format!("bad host candidate {local_addr}: {e}")))?;
        self.rtc.direct_api().invalidate_candidate(&old);
        self.rtc.add_local_candidate(new);
        self.socket = socket;
        self.local_addr = local_addr;
        self.restart_ice();
        self.drain()?;
        Ok(local_addr)
    }

    /// Drop every datagram in and out for `duration`, as a network outage
    /// would (a tunnel, a link down): ICE consent lapses on both sides.
    pub fn black_out(&mut self, duration: Duration) {
        self.blackout_until = Some(Instant::now() + duration);
    }

    fn blacked_out(&mut self, now: Instant) -> bool {
        match self.blackout_until {
            Some(until) if now < until => true,
            Some(_) => {
                self.blackout_until = None;
                false
            }
            None => false,
        }
    }

    /// Whether there are changes waiting for an offer and none outstanding.
    pub fn wants_offer(&self) -> bool {
        if self.pending.is_some() {
            return false;
        }
        self.restart_ice
            || !self.control_channel_offered
            || self.publications.iter().any(|p| {
                (p.spec.kind != TrackKind::Data && p.mid.is_none() && !p.stopped)
                    || (p.spec.kind == TrackKind::Data && p.channel.is_none() && !p.stopped)
                    || p.stop_pending
            })
            || !self.to_deactivate.is_empty()
            || self
                .subscriptions
                .iter()
                .any(|s| s.mid.is_none() || s.reactivate)
    }

    /// Whether an offer awaits its answer.
    pub fn has_pending_offer(&self) -> bool {
        self.pending.is_some()
    }

    /// Make an offer with every change asked for since the last one, or
    /// `None` when an offer is outstanding or nothing needs negotiating.
    pub fn create_offer(&mut self) -> Option<Offer> {
        if self.pending.is_some() {
            return None;
        }
        let mut publish = Vec::new();
        let mut subscribe = Vec::new();
        let mut api = self.rtc.sdp_api();

        if !self.control_channel_offered {
            api.add_channel(self.control_label.clone());
        }
        let restarting = std::mem::take(&mut self.restart_ice);
        if restarting {
            api.ice_restart(true);
        }
        for p in &mut self.publications {
            if p.stopped {
                if p.stop_pending {
                    if let Some(mid) = p.mid {
                        api.stop_media(mid);
                    }
                }
                continue;
            }
            match p.spec.kind {
                TrackKind::Data if p.channel.is_none() => {
                    p.channel = Some(api.add_channel(p.spec.name.clone()));
                }
                TrackKind::Audio | TrackKind::Video if p.mid.is_none() => {
                    let kind = media_kind(p.spec.kind);
                    let simulcast = (!p.layers.is_empty()).then(|| Simulcast {
                        send: p
                            .layers
                            .iter()
                            .map(|l| SimulcastLayer::new(&l.spec.rid))
                            .collect(),
                        recv: Vec::new(),
                    });
                    // msid: the track name, so SDP dumps are readable.
                    let mid = api.add_media(
                        kind,
                        Direction::SendOnly,
                        None,
                        Some(p.spec.name.clone()),
                        simulcast,
                    );
                    p.mid = Some(mid);
                    publish.push(PublishMedia {
                        mid: mid.to_string(),
                        name: p.spec.name.clone(),
                        kind: p.spec.kind,
                        enabled: p.spec.enabled,
                    });
                }
                _ => {}
            }
        }
        for (mid, _) in &self.to_deactivate {
            api.set_direction(*mid, Direction::Inactive);
        }
        for s in &mut self.subscriptions {
            if s.reactivate {
                if let Some(mid) = s.mid {
                    api.set_direction(mid, Direction::RecvOnly);
                    subscribe.push(SubscribeMedia {
                        mid: mid.to_string(),
                        track: s.track,
                    });
                }
                continue;
            }
            if s.mid.is_none() {
                let mid = api.add_media(media_kind(s.kind), Direction::RecvOnly, None, None, None);
                s.mid = Some(mid);
                subscribe.push(SubscribeMedia {
                    mid: mid.to_string(),
                    track: s.track,
                });
            }
        }

        let applied = api.apply();
        self.control_channel_offered = true;
        for p in &mut self.publications {
            p.stop_pending = false;
        }
        for s in &mut self.subscriptions {
            s.reactivate = false;
        }
        self.deactivating.append(&mut self.to_deactivate);
        // `apply` is a mutation; a failed drain surfaces at the next step.
        let _ = self.drain();

        let (offer, pending) = applied?;
        self.pending = Some(pending);
        if restarting {
            self.stats.lock().ice_restarts += 1;
        }
        Some(Offer {
            sdp: offer.to_sdp_string(),
            publish,
            subscribe,
        })
    }

    /// Apply the answer to the outstanding offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), ClientError> {
        let pending = self.pending.take().ok_or_else(|| {
            ClientError::new(
                codes::REMOTE_DESCRIPTION_REJECTED,
                "an answer arrived but no offer is outstanding",
            )
        })?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| {
            ClientError::new(
                codes::REMOTE_DESCRIPTION_REJECTED,
                format!("unreadable answer: {e}"),
            )
        })?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| {
                ClientError::new(
                    codes::REMOTE_DESCRIPTION_REJECTED,
                    format!("answer refused: {e}"),
                )
            })?;
        self.drain()?;
        for candidate in answer_candidates(sdp) {
            if !self.server_candidates.contains(&candidate) {
                self.server_candidates.push(candidate);
            }
        }
        if let Path::Tcp(tcp) = &mut self.path
            && tcp.target.is_none()
        {
            tcp.target = self
                .server_candidates
                .iter()
                .find(|(p, _)| *p == Protocol::Tcp)
                .map(|(_, a)| *a);
        }
        // M-lines made inactive by this exchange can carry new subscriptions.
        self.idle.append(&mut self.deactivating);

        // The negotiated payload type of each new sending m-line.
        let now = Instant::now();
        for i in 0..self.publications.len() {
            let p = &self.publications[i];
            let (Some(mid), None, false) = (p.mid, p.pt, p.stopped) else {
                continue;
            };
            let want = if p.spec.kind == TrackKind::Audio {
                Codec::Opus
            } else {
                Codec::Vp8
            };
            let Some(pt) = negotiated_pt(&self.rtc, mid, want) else {
                return Err(ClientError::new(
                    codes::NO_SUPPORTED_CODEC,
                    format!(
                        "the answer accepted no {want:?} for track {:?}",
                        p.spec.name
                    ),
                ));
            };
            let connected = self.connected;
            let p = &mut self.publications[i];
            p.pt = Some(pt);
            if connected && p.spec.enabled {
                p.clock.start(now);
            }
        }
        Ok(())
    }

    /// Offer no control data channel: for servers that take only audio and
    /// video on this connection (Janus's VideoRoom publishers). Call before
    /// the first offer.
    pub fn without_control_channel(&mut self) {
        self.control_channel_offered = true;
    }

    /// Answer an offer the remote side made, receiving on the m-lines
    /// `receive` names, each under its track (see the module docs). Returns
    /// the answer's SDP. Refused while an offer of this session is
    /// outstanding: the two would cross.
    pub fn accept_offer(
        &mut self,
        sdp: &str,
        receive: &[RemoteTrack],
    ) -> Result<String, ClientError> {
        if self.pending.is_some() {
            return Err(ClientError::new(
                codes::REMOTE_DESCRIPTION_REJECTED,
                "an offer arrived while ours is outstanding",
            ));
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| {
            ClientError::new(
                codes::REMOTE_DESCRIPTION_REJECTED,
                format!("unreadable offer: {e}"),
            )
        })?;
        let accepted = self.rtc.sdp_api().accept_offer(offer);
        // `accept_offer` is a mutation even when it fails.
        self.drain()?;
        let answer = accepted.map_err(|e| {
            ClientError::new(
                codes::REMOTE_DESCRIPTION_REJECTED,
                format!("offer refused: {e}"),
            )
        })?;

        // The offer restates every binding: keep those unchanged, drop the
        // rest, start the new ones afresh.
        let bound = |mid: Mid, track: TrackSid| {
            receive
                .iter()
                .any(|r| Mid::from(r.mid.as_str()) == mid && r.track == track)
        };
        self.subscriptions
            .retain(|s| s.mid.is_none_or(|mid| bound(mid, s.track)));
        let now = Instant::now();
        for r in receive {
            let mid = Mid::from(r.mid.as_str());
            if self.subscriptions.iter().any(|s| s.mid == Some(mid)) {
                continue;
            }
            self.stats
                .lock()
                .subscribed
                .insert(r.track, ReceiveStats::new(r.kind, now));
            self.subscriptions.push(Subscription {
                track: r.track,
                kind: r.kind,
                mid: Some(mid),
                reactivate: false,
                started: false,
            });
        }
        Ok(answer.to_sdp_string())
    }

    /// Send a message on data track `name`.
    pub fn send_data(&mut self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        let i = self.publication_index(name)?;
        let p = &self.publications[i];
        let (TrackKind::Data, Some(id), true) = (p.spec.kind, p.channel, p.channel_open) else {
            return Err(ClientError::new(
                codes::TRACK_INVALID,
                format!("track {name:?} is not a data track with an open channel"),
            ));
        };
        let accepted = match self.rtc.channel(id) {
            Some(mut channel) => channel.write(true, data),
            None => Ok(false),
        };
        self.drain()?;
        match accepted {
            Ok(true) => {
                if let Some(s) = self.stats.lock().published.get_mut(name) {
                    s.packets += 1;
                    s.frames += 1;
                    s.bytes += data.len() as u64;
                }
                Ok(())
            }
            Ok(false) => Err(ClientError::new(
                codes::TRACK_INVALID,
                format!("data channel of {name:?} is closed or its buffer is full"),
            )),
            Err(e) => Err(ClientError::media(format!(
                "data channel write failed: {e}"
            ))),
        }
    }

    /// Wait for one datagram or the next deadline (str0m's timeout or a
    /// frame due), then handle it. Cancel-safe.
    pub async fn step(&mut self) -> Result<(), ClientError> {
        self.prepare_path().await?;
        let now = Instant::now();
        let deadline = self.deadline().min(now + Duration::from_secs(1));
        let received = match &mut self.path {
            Path::Udp => tokio::select! {
                r = self.socket.recv_from(&mut self.buf) => Some(r),
                () = tokio::time::sleep_until(deadline.into()) => None,
            },
            Path::Tcp(tcp) => {
                tcp.flush();
                if tcp.closed {
                    return Err(ClientError::media("the ICE-TCP connection closed"));
                }
                let Some(stream) = &tcp.stream else {
                    // Not connected yet: wait for the answer.
                    let soon = deadline.min(now + Duration::from_millis(20));
                    tokio::time::sleep_until(soon.into()).await;
                    return self.step_timers();
                };
                let filled = tcp.filled;
                let read = tokio::select! {
                    r = stream.readable() => Some(r),
                    () = tokio::time::sleep_until(deadline.into()) => None,
                };
                if let Some(Ok(())) = read {
                    match stream.try_read(&mut tcp.inbuf[filled..]) {
                        Ok(0) => tcp.closed = true,
                        Ok(n) => tcp.filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => tcp.closed = true,
                    }
                }
                return self.take_tcp_frames();
            }
            Path::Relay(relay) => {
                let Some(socket) = &relay.socket else {
                    let soon = deadline.min(now + Duration::from_millis(20));
                    tokio::time::sleep_until(soon.into()).await;
                    return self.step_timers();
                };
                let received = tokio::select! {
                    r = socket.recv_from(&mut self.buf) => Some(r),
                    () = tokio::time::sleep_until(deadline.into()) => None,
                };
                if let Some(Ok((n, from))) = received
                    && from == relay.server
                {
                    let frame = self.buf.get(..n).unwrap_or_default();
                    match stun::parse_channel_data(frame) {
                        Some((channel, data)) => {
                            if let Some(peer) = relay.peer_of(channel) {
                                let len = data.len();
                                self.buf.copy_within(4..4 + len, 0);
                                self.handle_datagram(Instant::now(), peer, len)?;
                            }
                        }
                        None => relay.on_turn_message(frame)?,
                    }
                }
                if let Path::Relay(relay) = &mut self.path {
                    relay.keep_alive(Instant::now());
                }
                return self.step_timers();
            }
        };
        let now = Instant::now();
        match received {
            Some(Ok((n, source))) => {
                self.handle_datagram(now, source, n)?;
                // Take what else has arrived without going back to the
                // runtime: a video frame comes as a burst of packets.
                for _ in 1..RECEIVE_BATCH {
                    match self.socket.try_recv_from(&mut self.buf) {
                        Ok((n, source)) => self.handle_datagram(Instant::now(), source, n)?,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if is_transient(&e) => {}
                        Err(e) => {
                            return Err(ClientError::media(format!("media socket failed: {e}")));
                        }
                    }
                }
            }
            // ICMP errors surface on some platforms; the datagram is gone either way.
            Some(Err(e)) if is_transient(&e) => {
                tracing::debug!("media socket: {e}");
            }
            Some(Err(e)) => return Err(ClientError::media(format!("media socket failed: {e}"))),
            None => {}
        }
        self.step_timers()
    }

    /// Run the timers that are due. Only then: str0m's `handle_timeout`
    /// walks the whole session, and a datagram does not make time-driven
    /// work due.
    fn step_timers(&mut self) -> Result<(), ClientError> {
        let now = Instant::now();
        if self.connected
            && !self.ice_lost
            && now.saturating_duration_since(self.last_heard) > MEDIA_SILENCE
        {
            // The server answers consent checks every few seconds and
            // sends RTCP: silence this long is a lost path, long before
            // ICE's own retransmissions give up.
            self.ice_lost = true;
            self.events.push_back(MediaEvent::ConnectionLost);
        }
        if self.deadline() <= now {
            self.handle_timeout(now)?;
        }
        Ok(())
    }

    /// Hand each complete ICE-TCP frame read so far to str0m, then run the
    /// timers that are due.
    fn take_tcp_frames(&mut self) -> Result<(), ClientError> {
        let Path::Tcp(tcp) = &mut self.path else {
            return Ok(());
        };
        let Some(source) = tcp.target else {
            return Ok(());
        };
        let mut at = 0;
        while let Path::Tcp(tcp) = &mut self.path {
            let Some(frame) = tcp.next_frame(at)? else {
                tcp.consume(at);
                break;
            };
            at = frame.end;
            let len = frame.len();
            self.buf[..len].copy_from_slice(&tcp.inbuf[frame]);
            self.handle_datagram(Instant::now(), source, len)?;
        }
        self.step_timers()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Start str0m's shutdown (RTCP BYE, SCTP shutdown, DTLS close_notify)
    /// and send what it produces.
    pub fn close(&mut self) {
        if self.rtc.close().is_ok() {
            let _ = self.drain();
        }
    }

    /// When the session next needs [`MediaSession::step`] to wake up.
    fn deadline(&self) -> Instant {
        self.publications
            .iter()
            .filter(|p| p.sends_rtp() && p.spec.enabled)
            .filter_map(|p| p.clock.next_due())
            .chain(self.remb.as_ref().and_then(ReceiveEstimate::next_due))
            .fold(self.rtc_deadline, Instant::min)
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        len: usize,
    ) -> Result<(), ClientError> {
        if self.blacked_out(now) {
            return Ok(());
        }
        self.last_heard = now;
        if self.ice_lost && !self.ice_disconnected {
            // Heard from again before ICE gave the path up.
            self.ice_lost = false;
            self.events.push_back(MediaEvent::ConnectionRestored);
        }
        let Some(bytes) = self.buf.get(..len) else {
            return Ok(());
        };
        if let Some(nth) = self.receive_loss
            && is_rtp(bytes)
        {
            self.rtp_since_loss += 1;
            if self.rtp_since_loss >= nth.get() {
                self.rtp_since_loss = 0;
                self.stats.lock().simulated_losses += 1;
                return Ok(());
            }
        }
        let Ok(contents) = bytes.try_into() else {
            // Not STUN, DTLS, RTP or RTCP: not for us.
            return Ok(());
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: self.path.protocol(),
                source,
                destination: self.local_addr,
                contents,
            },
        );
        self.rtc
            .handle_input(input)
            .map_err(|e| ClientError::media(format!("media input refused: {e}")))?;
        self.drain()
    }

    /// Write the frames that are due, then let str0m's timers run: one
    /// `Timeout` both releases the written packets (they sit in str0m's send
    /// queue until time moves) and does what str0m itself had due.
    fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        let wrote = self.send_due_frames(now)?;
        let reported = self.request_remb(now);
        if wrote || reported || self.rtc_deadline <= now {
            self.rtc
                .handle_input(Input::Timeout(now))
                .map_err(|e| ClientError::media(format!("media timeout handling failed: {e}")))?;
            self.drain()?;
        }
        Ok(())
    }

    /// Hand str0m this receiver's estimate to send as REMB when one is due
    /// ([`crate::remb`]). Returns whether one was.
    fn request_remb(&mut self, now: Instant) -> bool {
        let Some(bps) = self.remb.as_mut().and_then(|remb| remb.poll(now)) else {
            return false;
        };
        let Some(ssrc) = self.remb_ssrc else {
            return false;
        };
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_rx(&ssrc) else {
            return false;
        };
        stream.request_remb(Bitrate::bps(bps));
        let mut stats = self.stats.lock();
        stats.rembs += 1;
        stats.last_remb_bps = bps;
        true
    }

    /// Write the frames that are due. Returns whether anything was written.
    fn send_due_frames(&mut self, now: Instant) -> Result<bool, ClientError> {
        if !self.connected {
            return Ok(false);
        }
        let mut wrote = false;
        for i in 0..self.publications.len() {
            let sent_at_us = self.wallclock.unix_us(Instant::now());
            let p = &mut self.publications[i];
            if !p.sends_rtp() || !p.spec.enabled {
                continue;
            }
            let (Some(mid), Some(pt)) = (p.mid, p.pt) else {
                continue;
            };
            let Some(keyframe) = p.clock.tick(now) else {
                continue;
            };
            let epoch = *p.rtp_epoch.get_or_insert(now);
            let elapsed = now.saturating_duration_since(epoch);
            let ticks = elapsed.as_micros() as u64 * p.clock_rate() / 1_000_000;
            let rtp_time = p.rtp_offset.wrapping_add(ticks as u32);
            if !p.layers.is_empty() {
                self.send_layers(i, keyframe, ticks as u32, sent_at_us, now)?;
                wrote = true;
                continue;
            }
            let bytes = p.spec.frame_bytes(keyframe);
            let (packets, keyframe) = match p.spec.kind {
                TrackKind::Video => {
                    let frame = synthetic::video_frame(
                        p.index,
                        p.frame,
                        p.picture_id,
                        keyframe,
                        bytes,
                        sent_at_us,
                    );
                    p.picture_id = p.picture_id.wrapping_add(1) & 0x7fff;
                    (frame.packets, keyframe)
                }
                _ => (
                    vec![synthetic::audio_packet(p.index, p.frame, sent_at_us, bytes)],
                    false,
                ),
            };
            let first_frame = p.frame == 0;
            p.frame = p.frame.wrapping_add(1);
            let first_seq = p.next_seq;
            p.next_seq += packets.len() as u64;
            let name = p.spec.name.clone();
            let is_audio = p.spec.kind == TrackKind::Audio;
            let mut exts = ExtensionValues::default();
            if let (true, Some(level)) = (is_audio, p.spec.audio_level) {
                exts.audio_level = Some(-(level.min(127) as i8));
                exts.voice_activity = Some(level < 127);
            }

            let count = packets.len();
            let mut sent_bytes = 0;
            for (k, payload) in packets.into_iter().enumerate() {
                sent_bytes += payload.len() as u64;
                let last = k + 1 == count;
                // Audio: the marker starts a talkspurt, i.e. the first packet.
                let marker = if is_audio { first_frame } else { last };
                let write =
                    RtpWrite::new(pt, (first_seq + k as u64).into(), rtp_time, now, payload)
                        .marker(marker)
                        .ext_vals(exts.clone())
                        .nackable(true);
                match self.rtc.direct_api().stream_tx_by_mid(mid, None) {
                    Some(stream) => stream.write_rtp(write),
                    None => {
                        tracing::warn!(%mid, "no send stream for published track {name:?}");
                        break;
                    }
                }
                self.drain()?;
                wrote = true;
            }
            if let Some(s) = self.stats.lock().published.get_mut(&name) {
                s.packets += count as u64;
                s.bytes += sent_bytes;
                s.frames += 1;
                s.keyframes += u64::from(keyframe);
            }
        }
        Ok(wrote)
    }

    /// Write one frame of every simulcast layer of publication `i`, each on
    /// its RID's stream with its own numbering.
    fn send_layers(
        &mut self,
        i: usize,
        keyframe: bool,
        ticks: u32,
        sent_at_us: u64,
        now: Instant,
    ) -> Result<(), ClientError> {
        let p = &mut self.publications[i];
        let (Some(mid), Some(pt)) = (p.mid, p.pt) else {
            return Ok(());
        };
        let fps = p.spec.fps.max(1) as usize;
        let mut writes = Vec::with_capacity(p.layers.len());
        for layer in p.layers.iter_mut().filter(|l| l.active) {
            let keyframe = keyframe || std::mem::take(&mut layer.restart);
            let per_frame = layer.spec.bitrate_bps as usize / 8 / fps;
            let bytes = if keyframe {
                per_frame * synthetic::KEYFRAME_SIZE_FACTOR
            } else {
                per_frame
            };
            let frame = synthetic::sized_video_frame(
                p.index,
                p.frame,
                layer.picture_id,
                keyframe,
                bytes,
                sent_at_us,
                (layer.spec.width, layer.spec.height),
            );
            layer.picture_id = layer.picture_id.wrapping_add(1) & 0x7fff;
            let first_seq = layer.next_seq;
            layer.next_seq += frame.packets.len() as u64;
            let time = layer.rtp_offset.wrapping_add(ticks);
            writes.push((layer.rid, first_seq, time, frame.packets));
        }
        p.frame = p.frame.wrapping_add(1);
        let name = p.spec.name.clone();
        let (mut packets, mut bytes) = (0u64, 0u64);
        for (rid, first_seq, time, frame) in writes {
            let count = frame.len();
            for (k, payload) in frame.into_iter().enumerate() {
                bytes += payload.len() as u64;
                let write = RtpWrite::new(pt, (first_seq + k as u64).into(), time, now, payload)
                    .marker(k + 1 == count)
                    .nackable(true);
                match self.rtc.direct_api().stream_tx_by_mid(mid, Some(rid)) {
                    Some(stream) => stream.write_rtp(write),
                    None => {
                        tracing::warn!(%mid, %rid, "no send stream for simulcast layer of {name:?}");
                        break;
                    }
                }
                self.drain()?;
            }
            packets += count as u64;
        }
        if let Some(s) = self.stats.lock().published.get_mut(&name) {
            s.packets += packets;
            s.bytes += bytes;
            s.frames += 1;
            s.keyframes += u64::from(keyframe);
        }
        Ok(())
    }

    /// Poll the `Rtc` until it has nothing more to say: send its datagrams,
    /// handle its events, remember its next timeout.
    fn drain(&mut self) -> Result<(), ClientError> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_deadline = t;
                    return Ok(());
                }
                Ok(Output::Transmit(t)) => {
                    if self.blacked_out(Instant::now()) {
                        continue;
                    }
                    let sent = match &mut self.path {
                        Path::Udp => self.socket.try_send_to(&t.contents, t.destination).is_ok(),
                        Path::Tcp(tcp) => tcp.send(&t.contents),
                        Path::Relay(relay) => relay.send(t.destination, &t.contents),
                    };
                    if !sent {
                        self.send_drops += 1;
                        tracing::debug!(drops = self.send_drops, "media datagram dropped");
                    }
                }
                Ok(Output::Event(e)) => self.handle_event(e),
                Err(e) => return Err(ClientError::media(format!("media engine failed: {e}"))),
            }
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                let now = Instant::now();
                for p in &mut self.publications {
                    if p.sends_rtp() && p.spec.enabled {
                        p.clock.start(now);
                    }
                }
                self.events.push_back(MediaEvent::Connected);
            }
            Event::IceConnectionStateChange(state) => match state {
                IceConnectionState::Disconnected => {
                    self.ice_disconnected = true;
                    if !self.ice_lost {
                        self.ice_lost = true;
                        self.events.push_back(MediaEvent::ConnectionLost);
                    }
                }
                IceConnectionState::Connected | IceConnectionState::Completed => {
                    self.ice_disconnected = false;
                    if self.ice_lost {
                        self.ice_lost = false;
                        self.events.push_back(MediaEvent::ConnectionRestored);
                    }
                }
                _ => {}
            },
            Event::RtpPacket(packet) => self.on_rtp(packet),
            Event::KeyframeRequest(req) => self.on_keyframe_request(req),
            Event::ChannelOpen(id, label) => self.on_channel_open(id, label),
            Event::ChannelData(data) => {
                let Some(&track) = self.data_channels.get(&data.id) else {
                    tracing::debug!(channel = ?data.id, "data on a channel of no subscription: ignored");
                    return;
                };
                let now = Instant::now();
                let first = {
                    let mut stats = self.stats.lock();
                    let s = stats
                        .subscribed
                        .entry(track)
                        .or_insert_with(|| ReceiveStats::new(TrackKind::Data, now));
                    let first = s.first_packet_at.is_none();
                    s.record_message(now, data.data.len());
                    first
                };
                if first {
                    self.events.push_back(MediaEvent::MediaStarted { track });
                }
                self.events.push_back(MediaEvent::DataMessage {
                    track,
                    data: data.data,
                });
            }
            Event::ChannelClose(id) => {
                self.data_channels.remove(&id);
                for p in &mut self.publications {
                    if p.channel == Some(id) {
                        p.channel_open = false;
                    }
                }
            }
            Event::Closed => self.events.push_back(MediaEvent::Closed),
            _ => {}
        }
    }

    fn on_channel_open(&mut self, id: ChannelId, label: String) {
        if let Some(p) = self.publications.iter_mut().find(|p| p.channel == Some(id)) {
            p.channel_open = true;
            self.events.push_back(MediaEvent::DataChannelOpen {
                name: p.spec.name.clone(),
                label,
            });
        } else if let Ok(track) = label.parse::<TrackSid>() {
            // The server opens one channel per subscribed data track,
            // labelled with the track's SID.
            tracing::debug!(%track, "data track channel open");
            self.data_channels.insert(id, track);
        } else if label != self.control_label {
            tracing::debug!("data channel {label:?} opened by the server: ignored");
        }
    }

    fn on_keyframe_request(&mut self, req: KeyframeRequest) {
        let Some(p) = self
            .publications
            .iter_mut()
            .find(|p| p.mid == Some(req.mid))
        else {
            return;
        };
        p.clock.request_keyframe();
        if let Some(s) = self.stats.lock().published.get_mut(&p.spec.name) {
            s.keyframe_requests += 1;
        }
    }

    fn on_rtp(&mut self, packet: RtpPacket) {
        let ssrc = packet.header.ssrc;
        let mid = match self.ssrc_to_mid.get(&ssrc) {
            Some(mid) => *mid,
            None => {
                let Some(mid) = packet
                    .header
                    .ext_vals
                    .mid
                    .or_else(|| self.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()))
                else {
                    return;
                };
                self.ssrc_to_mid.insert(ssrc, mid);
                mid
            }
        };
        let Some(sub) = self.subscriptions.iter_mut().find(|s| s.mid == Some(mid)) else {
            return;
        };
        let track = sub.track;
        let first = !sub.started;
        sub.started = true;

        let payload: &[u8] = &packet.payload;
        if let Some(remb) = &mut self.remb {
            remb.on_received(packet.timestamp, payload.len());
            self.remb_ssrc = Some(ssrc);
        }
        let mut size = None;
        let (probe, keyframe, end_of_frame) = match sub.kind {
            TrackKind::Video => match synthetic::read_video_packet(payload) {
                Some(info) => {
                    size = info.size;
                    (info.probe, info.keyframe, packet.header.marker)
                }
                None => (None, false, packet.header.marker),
            },
            _ => (synthetic::read_audio_packet(payload), false, true),
        };
        let arrived_us = self.wallclock.unix_us(packet.timestamp);
        let latency = probe.map(|p| arrived_us.saturating_sub(p.sent_at_us));
        {
            let kind = sub.kind;
            let mut stats = self.stats.lock();
            let s = stats
                .subscribed
                .entry(track)
                .or_insert_with(|| ReceiveStats::new(kind, packet.timestamp));
            let new = s.record_packet(
                packet.timestamp,
                *packet.seq_no,
                payload.len(),
                end_of_frame,
                keyframe,
                latency,
            );
            if let (true, Some((width, height))) = (new, size) {
                (s.width, s.height) = (width, height);
            }
        }
        if first {
            self.events.push_back(MediaEvent::MediaStarted { track });
        }
    }

    fn publication_index(&self, name: &str) -> Result<usize, ClientError> {
        self.publications
            .iter()
            .position(|p| p.spec.name == name && !p.stopped)
            .ok_or_else(|| {
                ClientError::new(
                    codes::TRACK_INVALID,
                    format!("no published track named {name:?}"),
                )
            })
    }
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("local_addr", &self.local_addr)
            .field("connected", &self.connected)
            .field("publications", &self.publications.len())
            .field("subscriptions", &self.subscriptions.len())
            .finish()
    }
}

fn media_kind(kind: TrackKind) -> MediaKind {
    if kind == TrackKind::Audio {
        MediaKind::Audio
    } else {
        MediaKind::Video
    }
}

/// The payload type of `codec` among those the answer accepted for `mid`.
fn negotiated_pt(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let media = rtc.media(mid)?;
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| media.remote_pts().contains(&p.pt()))
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::WouldBlock
    )
}

/// Converts `Instant`s to microseconds since the UNIX epoch, anchored once,
/// so send and arrival times come from the same monotonic clock. The probe's
/// send time and a receiver's arrival time are both read through one.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    anchor: Instant,
    anchor_unix_us: u64,
}

impl WallClock {
    /// Anchor a clock at this instant.
    pub fn now() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            anchor: Instant::now(),
            anchor_unix_us: unix.as_micros() as u64,
        }
    }

    /// `at` in microseconds since the UNIX epoch.
    pub fn unix_us(&self, at: Instant) -> u64 {
        if at >= self.anchor {
            self.anchor_unix_us + (at - self.anchor).as_micros() as u64
        } else {
            self.anchor_unix_us
                .saturating_sub((self.anchor - at).as_micros() as u64)
        }
    }
}

/// RTP, not RTCP (RFC 7983: first byte 128–191; RFC 5761: RTCP packet
/// types 192–223 in the second byte).
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [128..=191, second, ..] if !(192..=223).contains(second))
}

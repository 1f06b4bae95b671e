//! A media worker: one thread owning the peers of the rooms placed on it.
//!
//! It waits (in `epoll`, through `mio`) on its socket of the media port,
//! its waker (commands, datagrams handed over by other workers) and its
//! peers' str0m timeouts; routes what its socket reads ([`crate::demux`]);
//! feeds each input to the right `Rtc`; drains that `Rtc` to its next
//! timeout (str0m's single-mutation rule); forwards incoming RTP through the
//! room's [`Forwarder`]s into subscribers' `Rtc`s; and sends what they
//! transmit on its socket.
//!
//! Every call into a peer's `Rtc` runs under `catch_unwind`: a panic marks
//! that one peer failed, and it is dropped without touching the others.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use quinn_udp::UdpSocketState;
use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use str0m::bwe::Bitrate;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind as StrMediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::mpsc;

use crate::allocation::Allocator;
use crate::codec_order;
use crate::demux::{BufferPool, DemuxStats, Destination, Handoff, Inbound, Route, Router, Routes};
use crate::forward::{Continuation, Forwarder, Lane, PeerRef, PublisherCodecs};
use crate::keyframe::VideoCodec;
use crate::quality::NetworkQuality;
use crate::record::RecordedCodec;
use crate::speaker::DominantSpeaker;
use crate::{
    Command, GoneReason, MediaError, MediaEvent, MediaKind, MediaStats, PublishBinding,
    SignalingMessage, SubscribeBinding,
};

mod adaptive;
mod commands;
mod data;
mod drain;
mod input;
mod negotiation;
mod offers;
mod peers;
mod routing;
mod tcp;

use drain::drain;

/// How often liveness and timeouts are checked even without traffic.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// Render dimensions kept per subscriber (one per track it receives).
const MAX_RENDER_ENTRIES: usize = 256;
/// Data-channel messages kept for a subscriber whose channel is not open yet.
const PENDING_DATA: usize = 64;
/// `recvmmsg` calls (of up to 16 datagrams) before checking commands and
/// timers again.
const RECEIVE_ROUNDS: usize = 4;
/// Handed-over datagrams and commands taken per turn of the loop.
const BATCH: usize = 64;
/// `mio` tokens.
pub const SOCKET: mio::Token = mio::Token(0);
pub const WAKER: mio::Token = mio::Token(1);
/// Immediate timeouts answered within one drain of a peer (see
/// [`drain::drain_inner`]).
const IMMEDIATE_TURNS: usize = 64;
/// Sent packets kept per forwarded stream for retransmission: at most this
/// many (a second of a 5 Mbit/s screen share), none older than
/// [`RTX_HISTORY`].
const RTX_PACKETS: usize = 600;
const RTX_HISTORY: Duration = Duration::from_secs(1);
/// At most this share of a stream's bytes may be retransmissions (str0m's
/// default).
const RTX_RATIO_CAP: f32 = 0.15;

pub struct Setup {
    pub index: usize,
    /// Sends on this worker's socket of the media port.
    pub outbound: Outbound,
    pub candidates: Vec<SocketAddr>,
    /// Whether each candidate is offered on TCP too (passive ICE-TCP).
    pub ice_tcp: bool,
    pub tcp_limits: crate::tcp::TcpLimits,
    pub estimation: crate::Estimation,
    /// Datagrams other workers read for this one's peers.
    pub handoffs: Receiver<Handoff>,
    /// Every worker's hand-off queue (this one's included, unused).
    pub handoff_to: Vec<Sender<Handoff>>,
    /// Every worker's waker (this one's included).
    pub wakers: Arc<Vec<Arc<mio::Waker>>>,
    pub commands: Receiver<Command>,
    pub events: mpsc::UnboundedSender<MediaEvent>,
    pub routes: Arc<Routes>,
    pub pool: BufferPool,
    pub stats: Arc<MediaStats>,
    pub demux_stats: Arc<DemuxStats>,
    /// Peers on each worker (this one at `index`), for room placement.
    pub load: Arc<Vec<std::sync::atomic::AtomicU64>>,
    pub peer_timeout: Duration,
    pub silence: Duration,
    pub connect_timeout: Duration,
    pub stop: Arc<AtomicBool>,
}

/// Something a drained `Rtc` produced that the worker acts on after the
/// drain (when it may borrow other peers).
enum Happening {
    Rtp {
        track: TrackSid,
        /// The simulcast layer's RID, if it has one.
        rid: Option<Rid>,
        /// Boxed: a packet is large beside the other variants.
        packet: Box<RtpPacket>,
    },
    /// The drained peer, as a subscriber, asked for a keyframe on its
    /// m-line `mid`.
    KeyframeRequest { mid: Mid },
    Data {
        label_of: ChannelId,
        binary: bool,
        data: Vec<u8>,
    },
    /// The drained peer's SCTP association is up: data channels to it can
    /// be opened now.
    SctpUp,
}

/// A participant's WebRTC session.
struct Peer {
    room: RoomSid,
    participant: ParticipantSid,
    ufrag: String,
    rtc: Rtc,
    /// What its accepted offers said each payload type is (they may not
    /// change it).
    payload_types: crate::sdp::PayloadTypes,
    /// When str0m next wants `handle_input(Timeout)`.
    deadline: Instant,
    created: Instant,
    last_heard: Instant,
    connected: bool,
    /// Silent for [`Setup::silence`] (or ICE said disconnected): the
    /// control plane was told [`MediaEvent::Interrupted`].
    interrupted: bool,
    /// Set when the peer must go; it is removed at the next housekeeping.
    gone: Option<GoneReason>,
    /// Incoming m-lines and the tracks they publish.
    published: Vec<(Mid, TrackSid)>,
    /// Outgoing m-lines and the tracks they carry.
    subscribed: Vec<(Mid, TrackSid)>,
    /// Where each outgoing m-line whose track ended left off, so a new
    /// track on the same m-line continues the stream.
    continuations: Vec<(Mid, Continuation)>,
    /// Open (or opening) data channels: id, label, open.
    channels: Vec<(ChannelId, String, bool)>,
    /// Whether the SCTP association is up (a data channel has opened).
    /// Channels the server opens wait for it: opened earlier, they race the
    /// client's own channels and their messages can be lost.
    sctp_up: bool,
    /// Signaling channels the server opens (label, and the channel once
    /// created), and where what the client sends on them goes.
    signaling: Vec<(String, Option<ChannelId>)>,
    inbox: Option<mpsc::Sender<SignalingMessage>>,
    /// Messages for channels not open yet: (channel, binary, data).
    pending_data: VecDeque<(ChannelId, bool, Vec<u8>)>,
    /// Media was written to it since its last timeout: str0m stamps and
    /// releases written packets when time next advances, so it gets one
    /// `Timeout(now)` at the end of the batch (see [`Worker::flush_written`]).
    written: bool,
    /// Tests only: panic on the next input.
    sabotaged: bool,
    /// The participant's network quality, from str0m's per-stream stats.
    quality: NetworkQuality,
    /// Each stream's packet and byte totals at its last stats event:
    /// (m-line, incoming, packets, bytes).
    totals: Vec<(Mid, bool, u64, u64)>,
    /// Which of the video tracks it receives are forwarded
    /// ([`crate::allocation`]).
    allocator: Allocator<TrackSid>,
    /// Its own priorities for tracks it receives
    /// (`RemoteVideoTrack.setPriority`).
    priorities: Vec<(TrackSid, crate::allocation::Priority)>,
    /// The render dimensions it asked for, per track it receives.
    render: Vec<(TrackSid, crate::allocation::Dimensions)>,
    /// The latest estimate of its downlink, bits per second (str0m's
    /// send-side one, or the client's REMB), and whether str0m can probe.
    estimate: Option<(u64, bool)>,
    /// With receiver estimates, what its loss reports say its downlink
    /// carries ([`crate::allocation::LossBound`]).
    loss: crate::allocation::LossBound,
    /// The m-lines the server added (for protocols where it offers), with
    /// the id in their `a=msid`.
    lines: Vec<(Mid, String)>,
    /// The server's offer waiting for its answer.
    offer: Option<offers::ServerOffer>,
    /// Whether a server offer has carried a data-channel section.
    sctp_offered: bool,
}

struct Slot {
    generation: u32,
    peer: Option<Peer>,
}

/// A room's state on this worker. Data tracks are kept by participant, not
/// by peer: a publication or subscription can arrive before the
/// participant's first offer has created its peer.
#[derive(Default)]
struct MediaRoom {
    peers: Vec<PeerRef>,
    forwarders: Vec<Forwarder>,
    /// Data track → (publisher, the publisher's channel label).
    data_tracks: HashMap<TrackSid, (ParticipantSid, String)>,
    /// Data track → who receives it.
    data_subscribers: HashMap<TrackSid, Vec<ParticipantSid>>,
    /// Subscriptions bound before their track's media existed: (track,
    /// subscriber, its m-line).
    waiting: Vec<(TrackSid, PeerRef, Mid)>,
    /// Dominant speaker detection over the room's audio tracks (each audio
    /// forwarder holds its voice).
    speaker: DominantSpeaker<ParticipantSid>,
    /// Publisher layer pausing of each simulcast video track (see
    /// [`crate::pausing`]); entries of gone tracks are dropped at
    /// housekeeping.
    pausing: HashMap<TrackSid, crate::pausing::LayerPausing>,
}

impl MediaRoom {
    fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.data_tracks.is_empty() && self.data_subscribers.is_empty()
    }
}

/// The sending side of a worker's socket (a second descriptor of it, so
/// sending never borrows the receive buffers).
pub struct Outbound {
    socket: UdpSocket,
    state: UdpSocketState,
    /// The address the socket is bound to, unless that is a wildcard: a
    /// datagram from it needs no source-address control message, and goes
    /// out with a plain `sendto` (cheaper than `sendmsg` with one).
    bound: Option<std::net::IpAddr>,
}

impl Outbound {
    pub fn new(socket: &UdpSocket) -> io::Result<Self> {
        let socket = socket.try_clone()?;
        let state = UdpSocketState::new((&socket).into())?;
        let bound = socket
            .local_addr()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        Ok(Self {
            socket,
            state,
            bound,
        })
    }

    /// Send one datagram from `source` (the local address the peer talks
    /// to: behind a wildcard bind, replies must leave from it). Never
    /// blocks: a full socket buffer drops the datagram, as the network would.
    fn send(&self, source: SocketAddr, destination: SocketAddr, contents: &[u8]) -> bool {
        let source = source.ip();
        if source.is_unspecified() || Some(source) == self.bound {
            return self.socket.send_to(contents, destination).is_ok();
        }
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: Some(source),
        };
        self.state
            .try_send((&self.socket).into(), &transmit)
            .is_ok()
    }
}

/// Worker and its socket, ready to run on a thread of their own.
pub struct Worker {
    setup: Setup,
    poll: mio::Poll,
    /// Taken while a batch is handled (the batch borrows its buffers).
    inbound: Option<Inbound>,
    router: Router,
    /// Workers to wake after this turn: datagrams were handed to them.
    wake: Vec<bool>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_participant: HashMap<ParticipantSid, PeerRef>,
    rooms: HashMap<RoomSid, MediaRoom>,
    happenings: Vec<Happening>,
    /// Peers with media written and not yet released.
    written: Vec<PeerRef>,
    /// The recordings of tracks of this worker's rooms.
    recorders: crate::record::Recorders,
    /// Bandwidth profiles set before their participant's peer existed.
    profiles: HashMap<ParticipantSid, crate::allocation::BandwidthProfile>,
    /// ICE-TCP connections of this worker's peers.
    tcp: tcp::Links,
    /// Plain STUN Binding requests answered lately (`crate::stun`).
    binding_answers: BindingAnswers,
}

/// Plain STUN Binding requests (no ICE peer's) a worker answers a second:
/// the answer goes to whatever address the request claims, so this bounds
/// what the media port reflects at spoofed addresses.
const BINDING_ANSWERS_PER_SECOND: u32 = 100;

/// Binding answers in the current one-second window, and when it began.
struct BindingAnswers {
    since: Instant,
    count: u32,
}

impl BindingAnswers {
    /// Whether one more may be sent at `now` (and count it).
    fn allow(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.since) >= Duration::from_secs(1) {
            (self.since, self.count) = (now, 0);
        }
        let allowed = self.count < BINDING_ANSWERS_PER_SECOND;
        self.count += u32::from(allowed);
        allowed
    }
}

impl Worker {
    /// A worker reading `inbound`; `poll` must be the one whose registry
    /// made this worker's waker in `setup.wakers`.
    pub fn new(setup: Setup, poll: mio::Poll, mut inbound: Inbound) -> io::Result<Self> {
        poll.registry()
            .register(&mut inbound.socket, SOCKET, mio::Interest::READABLE)?;
        let router = Router::new(setup.index, setup.routes.clone(), setup.demux_stats.clone());
        let wake = vec![false; setup.wakers.len()];
        let tcp = tcp::Links::new(&setup.tcp_limits);
        Ok(Self {
            setup,
            poll,
            inbound: Some(inbound),
            router,
            wake,
            slots: Vec::new(),
            free: Vec::new(),
            by_participant: HashMap::new(),
            rooms: HashMap::new(),
            happenings: Vec::new(),
            written: Vec::new(),
            recorders: crate::record::Recorders::default(),
            profiles: HashMap::new(),
            tcp,
            binding_answers: BindingAnswers {
                since: Instant::now(),
                count: 0,
            },
        })
    }

    pub fn run(mut self) {
        let mut events = mio::Events::with_capacity(64);
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        // The socket is edge-triggered: once readable, it is read until dry.
        let mut readable = true;
        let mut backlog = false;
        while !self.setup.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = if readable || backlog {
                Duration::ZERO
            } else {
                self.earliest_deadline()
                    .min(next_housekeeping)
                    .saturating_duration_since(now)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::warn!(worker = self.setup.index, error = %e, "media worker poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    SOCKET => readable = true,
                    WAKER => {}
                    mio::Token(link) => self.on_link_event(
                        link,
                        event.is_readable() || event.is_read_closed() || event.is_error(),
                        event.is_writable(),
                    ),
                }
            }
            if readable {
                readable = self.receive();
            }
            backlog = self.take_handoffs();
            backlog |= self.take_commands();
            backlog |= self.read_unread_links();
            self.flush_written(Instant::now());
            self.wake_others();
            let now = Instant::now();
            self.fire_timeouts(now);
            if now >= next_housekeeping {
                self.housekeeping(now);
                self.router.prune(now);
                next_housekeeping = now + HOUSEKEEPING;
            }
            self.close_broken_links();
        }
        // Stopping: drop every peer quietly.
        let refs: Vec<PeerRef> = self.by_participant.values().copied().collect();
        for peer in refs {
            self.remove_peer(peer, None);
        }
        tracing::debug!(worker = self.setup.index, "media worker stopped");
    }
}

/// The peer `r` names, if it still exists (same generation).
fn slot_peer(slots: &mut [Slot], r: PeerRef) -> Option<&mut Peer> {
    let slot = slots.get_mut(r.index as usize)?;
    if slot.generation != r.generation {
        return None;
    }
    slot.peer.as_mut()
}

/// Run `f` on a peer, turning a panic into a failure of that peer only
/// (and counting it).
fn guarded<T>(
    peer: &mut Peer,
    stats: &MediaStats,
    f: impl FnOnce(&mut Peer) -> Result<T, String>,
) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(|| f(peer))) {
        Ok(result) => result,
        Err(panic) => {
            stats.peer_panics.fetch_add(1, Ordering::Relaxed);
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(format!("the media session crashed: {what}"))
        }
    }
}

fn fail(peer: &mut Peer, reason: String) {
    if peer.gone.is_none() {
        tracing::warn!(room = %peer.room, participant = %peer.participant, reason, "media peer failed");
        peer.gone = Some(GoneReason::Failed(reason));
    }
}

/// The peer went silent: tell the control plane, once.
fn interrupted(peer: &mut Peer, setup: &Setup) {
    peer.interrupted = true;
    setup.stats.interruptions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(room = %peer.room, participant = %peer.participant, "media interrupted");
    let _ = setup.events.send(MediaEvent::Interrupted {
        room: peer.room,
        participant: peer.participant,
    });
}

/// An interrupted peer was heard from: tell the control plane, once.
fn restored(peer: &mut Peer, setup: &Setup) {
    peer.interrupted = false;
    tracing::info!(room = %peer.room, participant = %peer.participant, "media restored");
    let _ = setup.events.send(MediaEvent::Restored {
        room: peer.room,
        participant: peer.participant,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_answers_are_capped_per_second() {
        let t0 = Instant::now();
        let mut answers = BindingAnswers {
            since: t0,
            count: 0,
        };
        let allowed = (0..1_000).filter(|_| answers.allow(t0)).count();
        assert_eq!(allowed, BINDING_ANSWERS_PER_SECOND as usize);
        assert!(!answers.allow(t0 + Duration::from_millis(999)));
        assert!(answers.allow(t0 + Duration::from_secs(1)));
    }
}

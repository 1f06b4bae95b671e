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
use str0m::media::{KeyframeRequestKind, MediaKind as StrMediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::mpsc;

use crate::codec_order;
use crate::demux::{BufferPool, DemuxStats, Destination, Handoff, Inbound, Route, Router, Routes};
use crate::forward::{Continuation, Forwarder, Lane, PeerRef, PublisherCodecs};
use crate::keyframe::VideoCodec;
use crate::record::Recorders;
use crate::{
    Command, GoneReason, MediaError, MediaEvent, MediaKind, MediaStats, PublishBinding,
    SubscribeBinding,
};

/// How often liveness and timeouts are checked even without traffic.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
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
/// [`drain_inner`]).
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
    pub connect_timeout: Duration,
    pub stop: Arc<AtomicBool>,
}

/// Something a drained `Rtc` produced that the worker acts on after the
/// drain (when it may borrow other peers).
enum Happening {
    Rtp {
        track: TrackSid,
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
    /// When str0m next wants `handle_input(Timeout)`.
    deadline: Instant,
    created: Instant,
    last_heard: Instant,
    connected: bool,
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
    /// Messages for channels not open yet: (channel, binary, data).
    pending_data: VecDeque<(ChannelId, bool, Vec<u8>)>,
    /// Media was written to it since its last timeout: str0m stamps and
    /// releases written packets when time next advances, so it gets one
    /// `Timeout(now)` at the end of the batch (see [`Worker::flush_written`]).
    written: bool,
    /// Tests only: panic on the next input.
    sabotaged: bool,
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
}

impl Outbound {
    pub fn new(socket: &UdpSocket) -> io::Result<Self> {
        let socket = socket.try_clone()?;
        let state = UdpSocketState::new((&socket).into())?;
        Ok(Self { socket, state })
    }

    /// Send one datagram from `source` (the local address the peer talks
    /// to: behind a wildcard bind, replies must leave from it). Never
    /// blocks: a full socket buffer drops the datagram, as the network would.
    fn send(&self, source: SocketAddr, destination: SocketAddr, contents: &[u8]) -> bool {
        let transmit = quinn_udp::Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: (!source.ip().is_unspecified()).then(|| source.ip()),
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
    recorders: Recorders,
}

impl Worker {
    /// A worker reading `inbound`; `poll` must be the one whose registry
    /// made this worker's waker in `setup.wakers`.
    pub fn new(setup: Setup, poll: mio::Poll, mut inbound: Inbound) -> io::Result<Self> {
        poll.registry()
            .register(&mut inbound.socket, SOCKET, mio::Interest::READABLE)?;
        let router = Router::new(setup.index, setup.routes.clone(), setup.demux_stats.clone());
        let wake = vec![false; setup.wakers.len()];
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
            recorders: Recorders::default(),
        })
    }

    pub fn run(mut self) {
        let mut events = mio::Events::with_capacity(8);
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
            readable |= events.iter().any(|e| e.token() == SOCKET);
            if readable {
                readable = self.receive();
            }
            backlog = self.take_handoffs();
            backlog |= self.take_commands();
            self.flush_written(Instant::now());
            self.wake_others();
            let now = Instant::now();
            self.fire_timeouts(now);
            if now >= next_housekeeping {
                self.housekeeping(now);
                self.router.prune(now);
                next_housekeeping = now + HOUSEKEEPING;
            }
        }
        // Stopping: drop every peer quietly.
        let refs: Vec<PeerRef> = self.by_participant.values().copied().collect();
        for peer in refs {
            self.remove_peer(peer, None);
        }
        tracing::debug!(worker = self.setup.index, "media worker stopped");
    }

    // ---- peers ---------------------------------------------------------

    fn earliest_deadline(&self) -> Instant {
        let far = Instant::now() + HOUSEKEEPING;
        self.slots
            .iter()
            .filter_map(|s| s.peer.as_ref())
            .filter(|p| p.gone.is_none())
            .map(|p| p.deadline)
            .min()
            .map_or(far, |d| d.min(far))
    }

    fn create_peer(
        &mut self,
        room: RoomSid,
        participant: ParticipantSid,
        now: Instant,
    ) -> Result<PeerRef, MediaError> {
        let candidates = self.setup.candidates.clone();
        let mut rtc = catch_unwind(move || {
            let mut rtc = Rtc::builder()
                .set_ice_lite(true)
                .set_rtp_mode(true)
                .clear_codecs()
                .enable_opus(true, false)
                .enable_pcmu(true, false)
                .enable_pcma(true, false)
                .enable_vp8(true)
                .enable_h264(true)
                .enable_vp9(true)
                .enable_bwe(Some(Bitrate::kbps(1_500)))
                .build(now);
            for addr in candidates {
                if let Ok(candidate) = Candidate::host(addr, "udp") {
                    rtc.add_local_candidate(candidate);
                }
            }
            rtc
        })
        .map_err(|_| MediaError::BadOffer("the media session could not be created".into()))?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag.clone();
        let peer = Peer {
            room,
            participant,
            ufrag: ufrag.clone(),
            rtc,
            deadline: now,
            created: now,
            last_heard: now,
            connected: false,
            gone: None,
            published: Vec::new(),
            subscribed: Vec::new(),
            continuations: Vec::new(),
            channels: Vec::new(),
            sctp_up: false,
            pending_data: VecDeque::new(),
            written: false,
            sabotaged: false,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    peer: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.peer = Some(peer);
        let r = PeerRef {
            index,
            generation: slot.generation,
        };
        self.by_participant.insert(participant, r);
        self.rooms.entry(room).or_default().peers.push(r);
        self.setup.routes.insert(
            &ufrag,
            Route {
                worker: self.setup.index,
                peer: r,
            },
        );
        self.setup.stats.peers.fetch_add(1, Ordering::Relaxed);
        self.setup.load[self.setup.index].fetch_add(1, Ordering::Relaxed);
        Ok(r)
    }

    /// Drop a peer and everything bound to it. With a reason, the control
    /// plane is told.
    fn remove_peer(&mut self, r: PeerRef, reason: Option<GoneReason>) {
        let Some(slot) = self.slots.get_mut(r.index as usize) else {
            return;
        };
        if slot.generation != r.generation {
            return;
        }
        let Some(peer) = slot.peer.take() else { return };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(r.index);
        self.by_participant.remove(&peer.participant);
        self.setup.routes.remove(&peer.ufrag);
        self.setup.stats.peers.fetch_sub(1, Ordering::Relaxed);
        self.setup.load[self.setup.index].fetch_sub(1, Ordering::Relaxed);
        let mut retired = Vec::new();
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.peers.retain(|p| *p != r);
            // Its tracks stop: the lanes to their subscribers end.
            room.forwarders.retain_mut(|f| {
                if f.publisher != r {
                    return true;
                }
                retired.push((std::mem::take(&mut f.lanes), f.video));
                false
            });
            // Its subscriptions end.
            for f in &mut room.forwarders {
                f.take_subscriber(r);
            }
            room.waiting.retain(|(_, s, _)| *s != r);
            room.data_tracks
                .retain(|_, (publisher, _)| *publisher != peer.participant);
            for subscribers in room.data_subscribers.values_mut() {
                subscribers.retain(|s| *s != peer.participant);
            }
            room.data_subscribers.retain(|_, s| !s.is_empty());
            if room.is_empty() {
                self.rooms.remove(&peer.room);
            }
        }
        for (lanes, video) in retired {
            self.retire(lanes, video);
        }
        if let Some(reason) = reason {
            tracing::info!(room = %peer.room, participant = %peer.participant, ?reason, "media peer gone");
            let _ = self.setup.events.send(MediaEvent::Gone {
                room: peer.room,
                participant: peer.participant,
                reason,
            });
        }
        // Dropping an Rtc whose internals panicked must not take us down.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(peer)));
    }

    /// Lanes that ended: remember on each subscriber's m-line where the
    /// stream left off, so a track later bound to that m-line continues it.
    fn retire(&mut self, lanes: Vec<Lane>, video: bool) {
        for lane in lanes {
            let Some(from) = lane.continuation(video) else {
                continue;
            };
            if let Some(peer) = slot_peer(&mut self.slots, lane.subscriber) {
                peer.continuations.retain(|(m, _)| *m != lane.mid);
                peer.continuations.push((lane.mid, from));
            }
        }
    }

    // ---- input -----------------------------------------------------------

    /// Read the socket until it is dry or the round budget is spent, and
    /// handle or hand over each datagram. Whether it may hold more.
    fn receive(&mut self) -> bool {
        let Some(mut inbound) = self.inbound.take() else {
            return false;
        };
        let mut more = true;
        for _ in 0..RECEIVE_ROUNDS {
            let count = match inbound.receive() {
                Ok(Some(count)) => count,
                Ok(None) => {
                    more = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!(worker = self.setup.index, error = %e, "media socket receive failed");
                    more = false;
                    break;
                }
            };
            for (source, destination, contents) in inbound.datagrams(count) {
                let stats = &self.setup.stats;
                stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes_in
                    .fetch_add(contents.len() as u64, Ordering::Relaxed);
                match self.router.route(source, contents) {
                    Destination::Here(peer) => {
                        self.on_datagram(peer, source, destination, contents)
                    }
                    Destination::There(route) => {
                        self.hand_over(route, source, destination, contents)
                    }
                    Destination::Nowhere => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            self.flush_written(Instant::now());
        }
        self.inbound = Some(inbound);
        more
    }

    /// Give a datagram this worker read to the worker of its peer.
    fn hand_over(
        &mut self,
        route: Route,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let Some(queue) = self.setup.handoff_to.get(route.worker) else {
            return;
        };
        let handoff = Handoff {
            peer: route.peer,
            source,
            destination,
            buf: self.setup.pool.copy_of(contents),
        };
        match queue.try_send(handoff) {
            Ok(()) => {
                self.setup
                    .demux_stats
                    .handed_over
                    .fetch_add(1, Ordering::Relaxed);
                self.wake[route.worker] = true;
            }
            Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                self.setup.stats.dropped.fetch_add(1, Ordering::Relaxed);
                self.setup
                    .demux_stats
                    .overflow
                    .fetch_add(1, Ordering::Relaxed);
                self.setup.pool.put(h.buf);
            }
        }
    }

    /// Handle datagrams other workers read for this one's peers. Whether
    /// more are waiting.
    fn take_handoffs(&mut self) -> bool {
        for _ in 0..BATCH {
            let Ok(handoff) = self.setup.handoffs.try_recv() else {
                return false;
            };
            self.on_datagram(
                handoff.peer,
                handoff.source,
                handoff.destination,
                &handoff.buf,
            );
            self.setup.pool.put(handoff.buf);
        }
        self.flush_written(Instant::now());
        true
    }

    /// Carry out commands from the control plane. Whether more are waiting.
    fn take_commands(&mut self) -> bool {
        for _ in 0..BATCH {
            let Ok(command) = self.setup.commands.try_recv() else {
                return false;
            };
            self.on_command(command);
        }
        true
    }

    fn wake_others(&mut self) {
        for (worker, wake) in self.wake.iter_mut().enumerate() {
            if std::mem::take(wake)
                && let Some(waker) = self.setup.wakers.get(worker)
            {
                let _ = waker.wake();
            }
        }
    }

    fn on_datagram(
        &mut self,
        r: PeerRef,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let now = Instant::now();
        let mut happenings = std::mem::take(&mut self.happenings);
        let handled = match slot_peer(&mut self.slots, r) {
            Some(peer) if peer.gone.is_none() => {
                peer.last_heard = now;
                let outcome = guarded(peer, &self.setup.stats, |peer| {
                    if peer.sabotaged {
                        panic!("sabotaged for a test");
                    }
                    let Ok(contents) = contents.try_into() else {
                        return Ok(()); // not a datagram str0m recognises: ignore
                    };
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination,
                            contents,
                        },
                    );
                    if peer.rtc.accepts(&input) {
                        peer.rtc.handle_input(input).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                });
                match outcome {
                    Ok(()) => drain(peer, &self.setup, &mut happenings),
                    Err(reason) => fail(peer, reason),
                }
                true
            }
            _ => false,
        };
        if !handled {
            self.setup.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.act_on(r, &mut happenings, now);
        self.happenings = happenings;
    }

    fn fire_timeouts(&mut self, now: Instant) {
        let mut happenings = std::mem::take(&mut self.happenings);
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let r = PeerRef {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(peer) = slot.peer.as_mut() else {
                continue;
            };
            if peer.gone.is_some() || peer.deadline > now {
                continue;
            }
            match guarded(peer, &self.setup.stats, |peer| {
                peer.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => drain(peer, &self.setup, &mut happenings),
                Err(reason) => fail(peer, reason),
            }
            self.act_on(r, &mut happenings, now);
        }
        self.happenings = happenings;
    }

    /// Release what was written to subscribers during this batch: one
    /// `Timeout(now)` per subscriber, however many packets it got.
    fn flush_written(&mut self, now: Instant) {
        if self.written.is_empty() {
            return;
        }
        let written = std::mem::take(&mut self.written);
        let mut happenings = std::mem::take(&mut self.happenings);
        for r in &written {
            let Some(peer) = slot_peer(&mut self.slots, *r) else {
                continue;
            };
            peer.written = false;
            if peer.gone.is_some() {
                continue;
            }
            match guarded(peer, &self.setup.stats, |p| {
                p.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => drain(peer, &self.setup, &mut happenings),
                Err(reason) => fail(peer, reason),
            }
            self.act_on(*r, &mut happenings, now);
        }
        self.happenings = happenings;
        self.written = written;
        self.written.clear();
    }

    fn housekeeping(&mut self, now: Instant) {
        let mut leaving = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let r = PeerRef {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(peer) = slot.peer.as_mut() else {
                continue;
            };
            if let Some(reason) = peer.gone.take() {
                leaving.push((r, reason));
            } else if !peer.rtc.is_alive() {
                leaving.push((r, GoneReason::Failed("the media session closed".into())));
            } else if (peer.connected
                && now.saturating_duration_since(peer.last_heard) > self.setup.peer_timeout)
                || (!peer.connected
                    && now.saturating_duration_since(peer.created) > self.setup.connect_timeout)
            {
                // Silent since connected, or never connected at all.
                leaving.push((r, GoneReason::Timeout));
            }
        }
        for (r, reason) in leaving {
            self.remove_peer(r, Some(reason));
        }
    }

    // ---- forwarding --------------------------------------------------------

    /// Act on what draining `source` produced: forward RTP, relay data,
    /// pass keyframe requests upstream.
    fn act_on(&mut self, source: PeerRef, happenings: &mut Vec<Happening>, now: Instant) {
        if happenings.is_empty() {
            return;
        }
        let Some(room_sid) = slot_peer(&mut self.slots, source).map(|p| p.room) else {
            happenings.clear();
            return;
        };
        for happening in happenings.drain(..) {
            match happening {
                Happening::Rtp { track, packet } => self.forward(room_sid, track, &packet),
                Happening::KeyframeRequest { mid } => {
                    if let Some(room) = self.rooms.get_mut(&room_sid) {
                        for f in &mut room.forwarders {
                            if f.lanes
                                .iter()
                                .any(|l| l.subscriber == source && l.mid == mid)
                            {
                                f.subscriber_wants_keyframe();
                            }
                        }
                    }
                    self.request_keyframes(room_sid, now);
                }
                Happening::Data {
                    label_of,
                    binary,
                    data,
                } => self.relay_data(room_sid, source, label_of, binary, &data),
                Happening::SctpUp => {
                    if let Some(participant) =
                        slot_peer(&mut self.slots, source).map(|p| p.participant)
                    {
                        self.open_data_channels(participant);
                    }
                }
            }
        }
        self.request_keyframes(room_sid, now);
    }

    /// Write one incoming packet to every lane of its track. The writes are
    /// released by [`Worker::flush_written`] at the end of the batch.
    fn forward(&mut self, room_sid: RoomSid, track: TrackSid, packet: &RtpPacket) {
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return;
        };
        let Some(forwarder) = room.forwarders.iter_mut().find(|f| f.track == track) else {
            return;
        };
        self.setup.stats.rtp_in.fetch_add(1, Ordering::Relaxed);
        let meta = forwarder.meta(
            *packet.seq_no,
            packet.header.timestamp,
            *packet.header.payload_type,
            &packet.payload,
        );
        if !self.recorders.is_empty() {
            let codec = forwarder.codecs.video_codec(meta.pt);
            if self.recorders.packet(track, codec, packet) {
                forwarder.subscriber_wants_keyframe();
            }
        }
        let exts = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let slots = &mut self.slots;
        let mut forwarded = 0u64;
        for lane in &mut forwarder.lanes {
            let Some(out) = lane.admit(&meta) else {
                continue;
            };
            let Some(slot) = slots.get_mut(lane.subscriber.index as usize) else {
                continue;
            };
            if slot.generation != lane.subscriber.generation {
                continue;
            }
            let Some(subscriber) = slot.peer.as_mut() else {
                continue;
            };
            if subscriber.gone.is_some() {
                continue;
            }
            let mid = lane.mid;
            let write = guarded(subscriber, &self.setup.stats, |s| {
                let mut api = s.rtc.direct_api();
                if let Some(stream) = api.stream_tx_by_mid(mid, None) {
                    let rtp = RtpWrite::new(
                        out.pt.into(),
                        out.seq.into(),
                        out.time,
                        packet.timestamp,
                        packet.payload.clone(),
                    )
                    .marker(packet.header.marker)
                    .ext_vals(exts.clone())
                    .nackable(true);
                    stream.write_rtp(rtp);
                    return Ok(true);
                }
                Ok(false)
            });
            match write {
                Ok(false) => {}
                Ok(true) => {
                    forwarded += 1;
                    if !subscriber.written {
                        subscriber.written = true;
                        self.written.push(lane.subscriber);
                    }
                }
                Err(reason) => fail(subscriber, reason),
            }
        }
        self.setup
            .stats
            .rtp_forwarded
            .fetch_add(forwarded, Ordering::Relaxed);
    }

    /// Send the keyframe requests the room's forwarders want now.
    fn request_keyframes(&mut self, room_sid: RoomSid, now: Instant) {
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return;
        };
        let wanted: Vec<(PeerRef, Mid)> = room
            .forwarders
            .iter_mut()
            .filter_map(|f| f.poll_keyframe_request(now).then_some((f.publisher, f.mid)))
            .collect();
        let mut ignored = Vec::new();
        for (publisher, mid) in wanted {
            let Some(peer) = slot_peer(&mut self.slots, publisher) else {
                continue;
            };
            let outcome = guarded(peer, &self.setup.stats, |p| {
                if let Some(stream) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
                    stream.request_keyframe(KeyframeRequestKind::Pli);
                }
                Ok(())
            });
            match outcome {
                Ok(()) => drain(peer, &self.setup, &mut ignored),
                Err(reason) => fail(peer, reason),
            }
            // Media that arrived during this drain is dropped rather than
            // recursing; the publisher is mid-stream and loses nothing the
            // receivers cannot recover with NACK.
            ignored.clear();
        }
    }

    fn relay_data(
        &mut self,
        room_sid: RoomSid,
        source: PeerRef,
        channel: ChannelId,
        binary: bool,
        data: &[u8],
    ) {
        let Some((publisher, label)) = slot_peer(&mut self.slots, source).and_then(|p| {
            let label = p
                .channels
                .iter()
                .find(|(id, _, _)| *id == channel)
                .map(|(_, l, _)| l.clone())?;
            Some((p.participant, label))
        }) else {
            return;
        };
        let Some(room) = self.rooms.get(&room_sid) else {
            return;
        };
        let Some(track) = room
            .data_tracks
            .iter()
            .find(|(_, (p, l))| *p == publisher && *l == label)
            .map(|(t, _)| *t)
        else {
            return;
        };
        let track_label = track.to_string();
        let subscribers = room
            .data_subscribers
            .get(&track)
            .cloned()
            .unwrap_or_default();
        for subscriber in subscribers {
            let Some(r) = self.by_participant.get(&subscriber).copied() else {
                continue;
            };
            let Some(peer) = slot_peer(&mut self.slots, r) else {
                continue;
            };
            let Some(&(id, _, open)) = peer.channels.iter().find(|(_, l, _)| *l == track_label)
            else {
                continue;
            };
            if !open {
                if peer.pending_data.len() < PENDING_DATA {
                    peer.pending_data.push_back((id, binary, data.to_vec()));
                }
                continue;
            }
            let outcome = guarded(peer, &self.setup.stats, |p| {
                if let Some(mut ch) = p.rtc.channel(id) {
                    let _ = ch.write(binary, data);
                }
                Ok(())
            });
            let mut ignored = Vec::new();
            match outcome {
                Ok(()) => drain(peer, &self.setup, &mut ignored),
                Err(reason) => fail(peer, reason),
            }
        }
    }

    // ---- commands ----------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Negotiate {
                room,
                participant,
                sdp,
                publish,
                subscribe,
                reply,
            } => {
                let result = self.negotiate(room, participant, &sdp, &publish, &subscribe, now);
                let _ = reply.send(result);
            }
            Command::Unpublish { participant, track } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let mut retired = Vec::new();
                if let Some(peer) = slot_peer(&mut self.slots, r) {
                    peer.published.retain(|(_, t)| *t != track);
                    let room = peer.room;
                    if let Some(room) = self.rooms.get_mut(&room) {
                        room.forwarders.retain_mut(|f| {
                            if f.track != track {
                                return true;
                            }
                            retired.push((std::mem::take(&mut f.lanes), f.video));
                            false
                        });
                        room.data_tracks.remove(&track);
                        room.data_subscribers.remove(&track);
                        room.waiting.retain(|(t, _, _)| *t != track);
                    }
                }
                for (lanes, video) in retired {
                    self.retire(lanes, video);
                }
            }
            Command::Unsubscribe { participant, track } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let Some(peer) = slot_peer(&mut self.slots, r) else {
                    return;
                };
                peer.subscribed.retain(|(_, t)| *t != track);
                let room = peer.room;
                let mut retired = Vec::new();
                if let Some(room) = self.rooms.get_mut(&room) {
                    for f in room.forwarders.iter_mut().filter(|f| f.track == track) {
                        retired.push((f.take_subscriber(r), f.video));
                    }
                    if let Some(subscribers) = room.data_subscribers.get_mut(&track) {
                        subscribers.retain(|s| *s != participant);
                    }
                    room.waiting.retain(|(t, s, _)| !(*t == track && *s == r));
                }
                for (lanes, video) in retired {
                    self.retire(lanes, video);
                }
            }
            Command::PublishData {
                room,
                participant,
                label,
                track,
            } => {
                self.rooms
                    .entry(room)
                    .or_default()
                    .data_tracks
                    .insert(track, (participant, label));
            }
            Command::SubscribeData {
                room,
                participant,
                track,
            } => {
                let subscribers = self
                    .rooms
                    .entry(room)
                    .or_default()
                    .data_subscribers
                    .entry(track)
                    .or_default();
                if !subscribers.contains(&participant) {
                    subscribers.push(participant);
                }
                self.open_data_channels(participant);
            }
            Command::Record(spec) => self.recorders.start(spec, &self.setup.events),
            Command::StopRecording { track } => self.recorders.stop(track),
            Command::RoomEnded { room } => {
                self.recorders.room_ended(room);
                let peers: Vec<PeerRef> = self
                    .rooms
                    .get(&room)
                    .map(|r| r.peers.clone())
                    .unwrap_or_default();
                for r in peers {
                    self.remove_peer(r, None);
                }
                self.rooms.remove(&room);
            }
            Command::Remove { participant } => {
                if let Some(r) = self.by_participant.get(&participant).copied() {
                    self.remove_peer(r, None);
                }
            }
            Command::Sabotage { participant } => {
                if let Some(r) = self.by_participant.get(&participant).copied()
                    && let Some(peer) = slot_peer(&mut self.slots, r)
                {
                    peer.sabotaged = true;
                }
            }
        }
    }

    fn negotiate(
        &mut self,
        room: RoomSid,
        participant: ParticipantSid,
        sdp: &str,
        publish: &[PublishBinding],
        subscribe: &[SubscribeBinding],
        now: Instant,
    ) -> Result<String, MediaError> {
        let offer = crate::sdp::read_offer(sdp)?;
        let (r, created) = match self.by_participant.get(&participant) {
            Some(r) => (*r, false),
            None => (self.create_peer(room, participant, now)?, true),
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Err(MediaError::Closed);
        };
        let accepted = catch_unwind(AssertUnwindSafe(|| peer.rtc.sdp_api().accept_offer(offer)));
        let answer = match accepted {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                if created {
                    self.remove_peer(r, None);
                }
                return Err(MediaError::BadOffer(e.to_string()));
            }
            Err(_) => {
                self.setup.stats.peer_panics.fetch_add(1, Ordering::Relaxed);
                self.remove_peer(
                    r,
                    Some(GoneReason::Failed(
                        "the media session crashed applying an offer".into(),
                    )),
                );
                return Err(MediaError::BadOffer(
                    "the offer crashed the media session".into(),
                ));
            }
        };

        // Bind what the offer publishes.
        let mut problems = Vec::new();
        let mut forwarders = Vec::new();
        {
            let Some(peer) = slot_peer(&mut self.slots, r) else {
                return Err(MediaError::Closed);
            };
            for binding in publish {
                let mid = Mid::from(binding.mid.as_str());
                let Some(media) = peer.rtc.media(mid) else {
                    problems.push(format!("m-line {} is not in the offer", binding.mid));
                    continue;
                };
                let video = media.kind() == StrMediaKind::Video;
                if video != (binding.kind == MediaKind::Video) {
                    problems.push(format!("m-line {} is not {:?}", binding.mid, binding.kind));
                    continue;
                }
                let codecs: Vec<(u8, Option<VideoCodec>)> = media
                    .remote_pts()
                    .iter()
                    .filter_map(|pt| codec_of(&peer.rtc, *pt).map(|c| (**pt, video_codec(c))))
                    .filter(|(_, c)| !video || c.is_some())
                    .collect();
                if codecs.is_empty() {
                    problems.push(format!(
                        "m-line {} offers no codec Salon forwards",
                        binding.mid
                    ));
                    continue;
                }
                peer.published.retain(|(m, _)| *m != mid);
                peer.published.push((mid, binding.track));
                forwarders.push(Forwarder::new(
                    binding.track,
                    r,
                    mid,
                    video,
                    PublisherCodecs::new(codecs),
                ));
            }
        }
        let new_tracks: Vec<TrackSid> = forwarders.iter().map(|f| f.track).collect();
        let room_state = self.rooms.entry(room).or_default();
        for f in forwarders {
            room_state
                .forwarders
                .retain(|existing| existing.track != f.track);
            room_state.forwarders.push(f);
        }
        // Subscriptions that arrived before these tracks' media existed.
        for track in new_tracks {
            self.attach_waiting(room, track);
        }

        // Bind what it subscribes.
        for binding in subscribe {
            let mid = Mid::from(binding.mid.as_str());
            if let Err(problem) = self.bind(room, r, mid, binding.track) {
                problems.push(problem);
            }
        }

        // Drain after the mutations (accepting the offer, configuring streams).
        let mut happenings = std::mem::take(&mut self.happenings);
        if let Some(peer) = slot_peer(&mut self.slots, r) {
            drain(peer, &self.setup, &mut happenings);
        }
        self.act_on(r, &mut happenings, now);
        self.happenings = happenings;
        self.request_keyframes(room, now);

        if !problems.is_empty()
            && publish.len() + subscribe.len() == problems.len()
            && !(publish.is_empty() && subscribe.is_empty())
        {
            return Err(MediaError::NoCodec(problems.join("; ")));
        }
        for problem in problems {
            tracing::warn!(%participant, problem, "offer binding skipped");
        }
        self.open_data_channels(participant);
        // The offerer's codec preference decides what it sends; every
        // client, not only browsers, must find the candidates.
        let answer = codec_order::follow_offer(sdp, &answer.to_sdp_string());
        Ok(crate::sdp::finish_answer(&answer))
    }

    /// Send `track` to `subscriber` on its m-line `mid`. If the track's
    /// media does not exist yet (its publisher's offer is still on its way:
    /// the room announces a track before its first packet), the binding
    /// waits in the room and is made when the track's forwarder is.
    fn bind(&mut self, room: RoomSid, r: PeerRef, mid: Mid, track: TrackSid) -> Result<(), String> {
        let Some(room_state) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let Some(forwarder) = room_state.forwarders.iter().find(|f| f.track == track) else {
            room_state
                .waiting
                .retain(|(_, s, m)| !(*s == r && *m == mid));
            room_state.waiting.push((track, r, mid));
            if let Some(peer) = slot_peer(&mut self.slots, r) {
                peer.subscribed.retain(|(m, _)| *m != mid);
                peer.subscribed.push((mid, track));
            }
            return Ok(());
        };
        let (publisher, publisher_mid, video) =
            (forwarder.publisher, forwarder.mid, forwarder.video);
        let publisher_specs: Vec<(u8, Codec)> = {
            let Some(p) = self
                .slots
                .get(publisher.index as usize)
                .and_then(|s| s.peer.as_ref())
            else {
                return Ok(());
            };
            let pts: Vec<str0m::media::Pt> = p
                .rtc
                .media(publisher_mid)
                .map(|m| m.remote_pts().to_vec())
                .unwrap_or_default();
            pts.into_iter()
                .filter_map(|pt| codec_of(&p.rtc, pt).map(|c| (*pt, c)))
                .collect()
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Ok(());
        };
        let Some(media) = peer.rtc.media(mid) else {
            return Err(format!("m-line {mid} is not in the offer"));
        };
        let subscriber_pts: Vec<(u8, Codec)> = media
            .remote_pts()
            .iter()
            .filter_map(|pt| codec_of(&peer.rtc, *pt).map(|c| (**pt, c)))
            .collect();
        let pt_map: Vec<(u8, u8)> = publisher_specs
            .iter()
            .filter_map(|(from, codec)| {
                subscriber_pts
                    .iter()
                    .find(|(_, c)| c == codec)
                    .map(|(to, _)| (*from, *to))
            })
            .collect();
        if pt_map.is_empty() {
            return Err(format!(
                "m-line {mid} has no codec in common with track {track}"
            ));
        }
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let Some(stream) = peer.rtc.direct_api().stream_tx_by_mid(mid, None) {
                // Forwarded media leaves as it arrives: the publisher already
                // paced it, and pacing again adds delay.
                stream.set_unpaced(true);
                // A NACK comes within a round trip: keep a second of sent
                // packets for retransmission, not str0m's three, which were
                // most of a subscriber's memory.
                stream.set_rtx_cache(RTX_PACKETS, RTX_HISTORY, Some(RTX_RATIO_CAP));
            }
        }));
        // A reused m-line: the track it carried before stops there, and the
        // new one continues its stream.
        let previous = peer
            .subscribed
            .iter()
            .find(|(m, t)| *m == mid && *t != track)
            .map(|(_, t)| *t);
        peer.subscribed.retain(|(m, _)| *m != mid);
        peer.subscribed.push((mid, track));
        if let Some(old) = previous {
            let mut retired = Vec::new();
            if let Some(room_state) = self.rooms.get_mut(&room) {
                for f in room_state.forwarders.iter_mut().filter(|f| f.track == old) {
                    retired.extend(f.take_lane(r, mid).map(|lane| (vec![lane], f.video)));
                }
            }
            for (lanes, video) in retired {
                self.retire(lanes, video);
            }
        }
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Ok(());
        };
        let from = peer
            .continuations
            .iter()
            .position(|(m, _)| *m == mid)
            .map(|i| peer.continuations.remove(i).1);
        let lane = match from {
            Some(from) => Lane::continuing(r, mid, pt_map, video, from),
            // A fresh stream starts below 65536 so the subscriber's SRTP
            // rollover counter starts at zero.
            None => Lane::new(r, mid, pt_map, video, rand::random::<u16>() % 16_384 + 1),
        };
        if let Some(room_state) = self.rooms.get_mut(&room)
            && let Some(forwarder) = room_state.forwarders.iter_mut().find(|f| f.track == track)
        {
            forwarder.add_lane(lane);
        }
        Ok(())
    }

    /// Make the bindings that waited for `track`'s forwarder.
    fn attach_waiting(&mut self, room: RoomSid, track: TrackSid) {
        let waiting: Vec<(PeerRef, Mid)> = match self.rooms.get_mut(&room) {
            Some(room_state) => {
                let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut room_state.waiting)
                    .into_iter()
                    .partition(|(t, _, _)| *t == track);
                room_state.waiting = rest;
                ready.into_iter().map(|(_, r, m)| (r, m)).collect()
            }
            None => return,
        };
        let now = Instant::now();
        for (r, mid) in waiting {
            if let Err(problem) = self.bind(room, r, mid, track) {
                tracing::warn!(%track, problem, "subscription could not be bound");
            }
        }
        self.request_keyframes(room, now);
    }

    /// Open a data channel to `participant` for each data track it receives
    /// and has no channel for yet. Needs its peer with its SCTP association
    /// up; called again after each negotiation and when the association
    /// comes up, so a subscription that came first is served then.
    fn open_data_channels(&mut self, participant: ParticipantSid) {
        let Some(r) = self.by_participant.get(&participant).copied() else {
            return;
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return;
        };
        let Some(room) = self.rooms.get(&peer.room) else {
            return;
        };
        let wanted: Vec<String> = room
            .data_subscribers
            .iter()
            .filter(|(_, subscribers)| subscribers.contains(&participant))
            .map(|(track, _)| track.to_string())
            .filter(|label| !peer.channels.iter().any(|(_, l, _)| l == label))
            .collect();
        if wanted.is_empty() {
            return;
        }
        for label in wanted {
            let config = ChannelConfig {
                label: label.clone(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: None,
                protocol: String::new(),
            };
            match guarded(peer, &self.setup.stats, |p| {
                Ok(p.rtc.direct_api().create_data_channel(config))
            }) {
                Ok(id) => peer.channels.push((id, label, false)),
                Err(reason) => return fail(peer, reason),
            }
        }
        let mut ignored = Vec::new();
        drain(peer, &self.setup, &mut ignored);
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

/// Drain `peer`'s `Rtc` to its next timeout: send what it transmits, note
/// what happened. Under `catch_unwind` like every other call into it.
fn drain(peer: &mut Peer, setup: &Setup, happenings: &mut Vec<Happening>) {
    let result = catch_unwind(AssertUnwindSafe(|| drain_inner(peer, setup, happenings)));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => fail(peer, reason),
        Err(_) => {
            setup.stats.peer_panics.fetch_add(1, Ordering::Relaxed);
            fail(peer, "the media session crashed while sending".into());
        }
    }
}

fn drain_inner(
    peer: &mut Peer,
    setup: &Setup,
    happenings: &mut Vec<Happening>,
) -> Result<(), String> {
    // str0m's pacer releases one queued packet per `Timeout` and then asks
    // for another at once; answering here, instead of in the next turn of
    // the worker loop, sends a burst (a video frame to a subscriber) in one
    // go. Bounded, so a peer with a deep queue cannot starve the others.
    let mut turns = 0;
    loop {
        let output = peer.rtc.poll_output().map_err(|e| e.to_string())?;
        match output {
            Output::Timeout(at) => {
                let now = Instant::now();
                if at <= now && turns < IMMEDIATE_TURNS {
                    turns += 1;
                    peer.rtc
                        .handle_input(Input::Timeout(now))
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                peer.deadline = at;
                return Ok(());
            }
            Output::Transmit(t) => {
                if setup.outbound.send(t.source, t.destination, &t.contents) {
                    setup.stats.datagrams_out.fetch_add(1, Ordering::Relaxed);
                    setup
                        .stats
                        .bytes_out
                        .fetch_add(t.contents.len() as u64, Ordering::Relaxed);
                } else {
                    setup.stats.send_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            Output::Event(event) => on_event(peer, setup, event, happenings),
        }
    }
}

fn on_event(peer: &mut Peer, setup: &Setup, event: Event, happenings: &mut Vec<Happening>) {
    match event {
        Event::Connected => {
            peer.connected = true;
            let _ = setup.events.send(MediaEvent::Connected {
                room: peer.room,
                participant: peer.participant,
            });
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected)
            if peer.gone.is_none() =>
        {
            peer.gone = Some(GoneReason::Timeout);
        }
        Event::RtpPacket(packet) => {
            let mid = peer
                .rtc
                .direct_api()
                .stream_rx(&packet.header.ssrc)
                .map(|s| s.mid());
            if let Some(track) = mid.and_then(|m| {
                peer.published
                    .iter()
                    .find(|(pm, _)| *pm == m)
                    .map(|(_, t)| *t)
            }) {
                happenings.push(Happening::Rtp {
                    track,
                    packet: Box::new(packet),
                });
            }
        }
        Event::KeyframeRequest(request) => {
            happenings.push(Happening::KeyframeRequest { mid: request.mid })
        }
        Event::ChannelOpen(id, label) => {
            if !peer.sctp_up {
                peer.sctp_up = true;
                happenings.push(Happening::SctpUp);
            }
            match peer.channels.iter_mut().find(|(cid, _, _)| *cid == id) {
                Some(entry) => entry.2 = true,
                None => peer.channels.push((id, label, true)),
            }
            flush_pending(peer, id);
        }
        Event::ChannelData(data) => {
            happenings.push(Happening::Data {
                label_of: data.id,
                binary: data.binary,
                data: data.data,
            });
        }
        Event::ChannelClose(id) => peer.channels.retain(|(cid, _, _)| *cid != id),
        _ => {}
    }
}

/// Write what waited for channel `id` to open.
fn flush_pending(peer: &mut Peer, id: ChannelId) {
    let waiting: Vec<(ChannelId, bool, Vec<u8>)> = {
        let (ready, rest): (VecDeque<_>, VecDeque<_>) =
            peer.pending_data.drain(..).partition(|(c, _, _)| *c == id);
        peer.pending_data = rest;
        ready.into_iter().collect()
    };
    for (_, binary, data) in waiting {
        if let Some(mut channel) = peer.rtc.channel(id) {
            let _ = channel.write(binary, &data);
        }
    }
}

/// The codec behind payload type `pt` in this peer's negotiated config.
fn codec_of(rtc: &Rtc, pt: str0m::media::Pt) -> Option<Codec> {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.pt() == pt)
        .map(|p| p.spec().codec)
}

fn video_codec(codec: Codec) -> Option<VideoCodec> {
    match codec {
        Codec::Vp8 => Some(VideoCodec::Vp8),
        Codec::Vp9 => Some(VideoCodec::Vp9),
        Codec::H264 => Some(VideoCodec::H264),
        _ => None,
    }
}

//! The floor target: participants of the bare SRTP relay (`salon-floor`,
//! run by `salon bench-relay`), sending and measuring exactly what a
//! `salon-client` participant sends and measures.
//!
//! Each participant binds a UDP socket on loopback, joins its room on the
//! relay with a control message (its SSRCs and fresh random keying
//! material: keys differ per participant and per direction, as DTLS-SRTP
//! makes them) and then runs one task that
//!
//! - publishes the plan's tracks with `salon-client`'s synthetic generator
//!   ([`salon_client::synthetic`]: Opus-shaped audio at 50 packets/s,
//!   VP8-shaped video at the plan's bitrate and frame rate, the same frame
//!   clock, packet sizes, keyframes and send-time probe), each packet
//!   SRTP-protected with [`Profile::SALON`], the profile Salon's peers
//!   negotiate; and
//! - receives what the relay forwards, unprotects it, and counts it with
//!   `salon-client`'s own [`ReceiveStats`]: loss by extended RTP sequence
//!   number (the SRTP index), one-way latency from the probe.
//!
//! There is no signaling, ICE or DTLS to wait for, so a participant's
//! media is connected as soon as the relay accepts its join. A subscriber
//! learns which track an SSRC carries, and the stream's current rollover
//! counter, from the publisher through a registry in this process — the
//! out-of-band channel RFC 3711 §3.3.1 asks for when a receiver joins a
//! stream under way — since the relay forwards packets unchanged.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use salon_client::synthetic::{self, FrameClock};
use salon_client::{ReceiveStats, TrackKind, TrackSpec, WallClock};
use salon_floor::control::{self, Join, Message};
use salon_floor::srtp::{Context, IndexEstimator, KeyingMaterial, Profile, RtpHeader, TAG_LEN};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::histogram;
use crate::plan::ParticipantPlan;
use crate::salon::{AUDIO_TRACK, VIDEO_TRACK};
use crate::target::{
    Counters, MediaKind, Meter, Participant, ParticipantEvent, ReceivedTrack, SentTrack, Target,
    TargetError,
};

/// How long a participant waits for the relay's answer to a join or a
/// leave before asking again, and how many times it asks.
const CONTROL_TIMEOUT: Duration = Duration::from_millis(500);
const CONTROL_ATTEMPTS: u32 = 4;
/// Payload types the publishers use (the relay ignores them).
const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 96;
/// The largest datagram a participant sends or reads.
const MAX_DATAGRAM: usize = 2048;

/// A relay floor, reached at its UDP address.
#[derive(Debug)]
pub struct FloorTarget {
    relay: SocketAddr,
    url: String,
    profile: Profile,
    registry: Registry,
    next_ssrc: AtomicU32,
}

impl FloorTarget {
    /// The relay at `relay` (a loopback address), with Salon's SRTP profile.
    pub fn new(relay: SocketAddr) -> Self {
        Self {
            relay,
            url: format!("udp://{relay}"),
            profile: Profile::SALON,
            registry: Registry::default(),
            // Distinct SSRCs for the whole run: the relay refuses a join
            // whose SSRCs another participant of the room already sends.
            next_ssrc: AtomicU32::new(rand::random::<u32>() | 1),
        }
    }

    /// Use another SRTP profile (the relay speaks both AES-GCM ones).
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    fn ssrc(&self) -> u32 {
        loop {
            let ssrc = self.next_ssrc.fetch_add(1, Ordering::Relaxed);
            if ssrc != 0 {
                return ssrc;
            }
        }
    }
}

impl Target for FloorTarget {
    type Participant = FloorParticipant;

    fn kind(&self) -> &'static str {
        "floor"
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn join(&self, plan: &ParticipantPlan) -> Result<FloorParticipant, TargetError> {
        let fail = |message: String| TargetError {
            code: None,
            message,
        };
        let local: SocketAddr = if self.relay.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| fail(format!("cannot bind UDP on {local}: {e}")))?;

        let mut material = vec![0u8; self.profile.keying_material_len()];
        rand::fill(&mut material[..]);
        let keys = KeyingMaterial::split(self.profile, &material)
            .map_err(|e| fail(format!("keying material: {e}")))?;
        let uplink = keys
            .client(self.profile)
            .map_err(|e| fail(format!("uplink keys: {e}")))?;
        let downlink = keys
            .server(self.profile)
            .map_err(|e| fail(format!("downlink keys: {e}")))?;

        let now = Instant::now();
        let mut specs = Vec::new();
        if let Some(microphone) = crate::salon::audio_track(plan) {
            specs.push((AUDIO_TRACK, microphone, OPUS_PT));
        }
        if let Some(video) = plan.video {
            specs.push((
                VIDEO_TRACK,
                TrackSpec::video(VIDEO_TRACK)
                    .bitrate(video.bitrate_bps)
                    .fps(video.fps),
                VP8_PT,
            ));
        }
        let publications: Vec<Publication> = specs
            .into_iter()
            .enumerate()
            .map(|(index, (name, spec, payload_type))| {
                Publication::new(
                    name,
                    &plan.identity,
                    spec,
                    index as u32,
                    self.ssrc(),
                    payload_type,
                )
            })
            .collect();
        let ssrcs: Vec<u32> = publications.iter().map(|p| p.ssrc).collect();
        for p in &publications {
            self.registry
                .publish(p.ssrc, &p.track, p.spec.kind, now, p.highest.clone());
        }

        let joined = join_relay(
            &socket,
            self.relay,
            self.profile,
            &plan.room,
            &ssrcs,
            &material,
        )
        .await;
        if let Err(e) = joined {
            self.registry.unpublish(&ssrcs);
            return Err(fail(e));
        }

        let stats = Arc::new(Mutex::new(Stats {
            sent: publications
                .iter()
                .map(|p| SentTrack {
                    name: p.name.to_string(),
                    track: Some(p.track.clone()),
                    kind: media_kind(p.spec.kind),
                    packets: 0,
                    bytes: 0,
                })
                .collect(),
            received: BTreeMap::new(),
        }));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop_tx, stop) = oneshot::channel();
        let _ = events_tx.send(ParticipantEvent::MediaConnected);
        let session = Session {
            socket,
            relay: self.relay,
            uplink,
            downlink,
            publications,
            subscriptions: HashMap::new(),
            registry: self.registry.clone(),
            joined_at: now,
            wallclock: WallClock::now(),
            stats: stats.clone(),
            send_drops: 0,
        };
        let task = tokio::spawn(session.run(stop, events_tx));
        Ok(FloorParticipant {
            stats,
            events,
            stop: Some(stop_tx),
            task,
        })
    }
}

/// Send the join, retrying, until the relay accepts or refuses it.
async fn join_relay(
    socket: &UdpSocket,
    relay: SocketAddr,
    profile: Profile,
    room: &str,
    ssrcs: &[u32],
    material: &[u8],
) -> Result<(), String> {
    let request = rand::random::<u32>();
    let join = Join::new(request, profile, room.as_bytes(), ssrcs, material).ok_or_else(|| {
        format!(
            "cannot join {room:?}: room names may be at most {} bytes",
            control::MAX_ROOM_LEN
        )
    })?;
    match ask(socket, relay, Message::Join(join), request).await? {
        Message::Accepted { .. } => Ok(()),
        Message::Refused { reason, .. } => Err(format!("the relay refused the join: {reason}")),
        other => Err(format!("unexpected answer to a join: {other:?}")),
    }
}

/// Send a control message and wait for the answer with its request id.
async fn ask(
    socket: &UdpSocket,
    relay: SocketAddr,
    message: Message<'_>,
    request: u32,
) -> Result<Message<'static>, String> {
    let mut out = [0u8; control::MAX_LEN];
    let len = message.write(&mut out).ok_or("control message too long")?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for _ in 0..CONTROL_ATTEMPTS {
        socket
            .send_to(&out[..len], relay)
            .await
            .map_err(|e| format!("cannot reach the relay at {relay}: {e}"))?;
        let deadline = tokio::time::Instant::now() + CONTROL_TIMEOUT;
        loop {
            let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
            let Ok(received) = received else { break };
            let Ok((n, from)) = received else { continue };
            if from != relay {
                continue;
            }
            let reply = match Message::parse(&buf[..n]) {
                Ok(Message::Accepted { request: r }) if r == request => {
                    Message::Accepted { request: r }
                }
                Ok(Message::Refused { request: r, reason }) if r == request => {
                    Message::Refused { request: r, reason }
                }
                Ok(Message::Left { request: r }) if r == request => Message::Left { request: r },
                // Media that overtook the answer, or an old answer.
                _ => continue,
            };
            return Ok(reply);
        }
    }
    Err(format!(
        "the relay at {relay} did not answer within {} ms, {CONTROL_ATTEMPTS} times",
        CONTROL_TIMEOUT.as_millis()
    ))
}

/// What each publisher tells the subscribers in this process about its
/// streams: the track, its kind, and how far its SRTP index got.
#[derive(Debug, Clone, Default)]
struct Registry(Arc<Mutex<HashMap<u32, PublishedStream>>>);

#[derive(Debug, Clone)]
struct PublishedStream {
    track: String,
    kind: TrackKind,
    /// When the publisher joined: a subscription starts at the later of
    /// this and the subscriber's join.
    since: Instant,
    /// The highest SRTP index sent so far.
    highest: Arc<AtomicU64>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, PublishedStream>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(
        &self,
        ssrc: u32,
        track: &str,
        kind: TrackKind,
        since: Instant,
        highest: Arc<AtomicU64>,
    ) {
        self.lock().insert(
            ssrc,
            PublishedStream {
                track: track.to_string(),
                kind,
                since,
                highest,
            },
        );
    }

    fn unpublish(&self, ssrcs: &[u32]) {
        let mut streams = self.lock();
        for ssrc in ssrcs {
            streams.remove(ssrc);
        }
    }

    fn find(&self, ssrc: u32) -> Option<PublishedStream> {
        self.lock().get(&ssrc).cloned()
    }
}

/// One published track: `salon-client`'s frame clock and packetizer, an
/// SSRC, and the RTP state the client's media session keeps.
struct Publication {
    name: &'static str,
    track: String,
    spec: TrackSpec,
    index: u32,
    ssrc: u32,
    payload_type: u8,
    clock: FrameClock,
    frame: u32,
    picture_id: u16,
    /// The extended sequence number of the next packet: its SRTP index.
    next_seq: u64,
    highest: Arc<AtomicU64>,
    rtp_offset: u32,
    rtp_epoch: Option<Instant>,
}

impl Publication {
    fn new(
        name: &'static str,
        identity: &str,
        spec: TrackSpec,
        index: u32,
        ssrc: u32,
        payload_type: u8,
    ) -> Self {
        // As the client's media session starts its tracks.
        let next_seq = u64::from(rand::random::<u16>() & 0x7fff);
        Self {
            name,
            track: format!("{identity}/{name}"),
            clock: FrameClock::new(spec.fps),
            spec,
            index,
            ssrc,
            payload_type,
            frame: 0,
            picture_id: rand::random::<u16>() & 0x7fff,
            next_seq,
            highest: Arc::new(AtomicU64::new(next_seq)),
            rtp_offset: rand::random(),
            rtp_epoch: None,
        }
    }

    fn clock_rate(&self) -> u64 {
        if self.spec.kind == TrackKind::Audio {
            synthetic::AUDIO_CLOCK_RATE
        } else {
            synthetic::VIDEO_CLOCK_RATE
        }
    }
}

/// A subscribed stream, once its first packet arrived.
struct Subscription {
    track: String,
    kind: TrackKind,
    index: IndexEstimator,
}

/// Counters the participant's task writes and its meter reads.
#[derive(Debug)]
struct Stats {
    sent: Vec<SentTrack>,
    received: BTreeMap<String, ReceiveStats>,
}

type SharedStats = Arc<Mutex<Stats>>;

fn lock(stats: &SharedStats) -> MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// The participant's task: its socket, keys, sources and receivers.
struct Session {
    socket: UdpSocket,
    relay: SocketAddr,
    uplink: Context,
    downlink: Context,
    publications: Vec<Publication>,
    subscriptions: HashMap<u32, Subscription>,
    registry: Registry,
    joined_at: Instant,
    wallclock: WallClock,
    stats: SharedStats,
    /// Datagrams the socket refused (send buffer full).
    send_drops: u64,
}

impl Session {
    async fn run(
        mut self,
        mut stop: oneshot::Receiver<()>,
        events: mpsc::UnboundedSender<ParticipantEvent>,
    ) {
        let start = Instant::now();
        for p in &mut self.publications {
            p.clock.start(start);
        }
        let mut rx = vec![0u8; MAX_DATAGRAM];
        let mut tx = vec![0u8; MAX_DATAGRAM + TAG_LEN];
        let far = start + Duration::from_secs(86_400);
        loop {
            let due = self
                .publications
                .iter()
                .filter_map(|p| p.clock.next_due())
                .fold(far, Instant::min);
            tokio::select! {
                received = self.socket.recv_from(&mut rx) => match received {
                    Ok((n, from)) if from == self.relay => self.receive(&mut rx[..n]),
                    Ok(_) => {}
                    Err(e) if is_transient(&e) => {}
                    Err(e) => {
                        let _ = events.send(ParticipantEvent::Disconnected {
                            code: None,
                            message: format!("media socket failed: {e}"),
                        });
                        break;
                    }
                },
                () = tokio::time::sleep_until(due.into()) => self.send_due_frames(&mut tx),
                _ = &mut stop => {
                    self.leave().await;
                    break;
                }
            }
        }
        let ssrcs: Vec<u32> = self.publications.iter().map(|p| p.ssrc).collect();
        self.registry.unpublish(&ssrcs);
    }

    async fn leave(&self) {
        // Best effort: a relay that does not answer has nothing to forget.
        let request = rand::random::<u32>();
        let _ = ask(
            &self.socket,
            self.relay,
            Message::Leave { request },
            request,
        )
        .await;
    }

    /// Send the frames that are due, as the client's media session does.
    fn send_due_frames(&mut self, tx: &mut [u8]) {
        let now = Instant::now();
        for p in &mut self.publications {
            let sent_at_us = self.wallclock.unix_us(Instant::now());
            let Some(keyframe) = p.clock.tick(now) else {
                continue;
            };
            let epoch = *p.rtp_epoch.get_or_insert(now);
            let ticks = now.saturating_duration_since(epoch).as_micros() as u64 * p.clock_rate()
                / 1_000_000;
            let rtp_time = p.rtp_offset.wrapping_add(ticks as u32);
            let bytes = p.spec.frame_bytes(keyframe);
            let packets = match p.spec.kind {
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
                    frame.packets
                }
                _ => vec![synthetic::audio_packet(p.index, p.frame, sent_at_us, bytes)],
            };
            let first_frame = p.frame == 0;
            p.frame = p.frame.wrapping_add(1);

            let count = packets.len();
            let (mut sent, mut sent_bytes) = (0u64, 0u64);
            for (k, payload) in packets.iter().enumerate() {
                // Audio: the marker starts a talkspurt; video: it ends a frame.
                let marker = if p.spec.kind == TrackKind::Audio {
                    first_frame
                } else {
                    k + 1 == count
                };
                let index = p.next_seq;
                p.next_seq += 1;
                let Some(header_len) =
                    RtpHeader::write(tx, marker, p.payload_type, index as u16, rtp_time, p.ssrc)
                else {
                    continue;
                };
                let len = header_len + payload.len();
                let Some(body) = tx.get_mut(header_len..len) else {
                    continue;
                };
                body.copy_from_slice(payload);
                let Ok(n) = self.uplink.protect(tx, len, index) else {
                    continue;
                };
                p.highest.store(index, Ordering::Relaxed);
                // As the client does: a full socket buffer drops the packet.
                if self.socket.try_send_to(&tx[..n], self.relay).is_err() {
                    self.send_drops += 1;
                    continue;
                }
                sent += 1;
                sent_bytes += payload.len() as u64;
            }
            if let Some(s) = lock(&self.stats).sent.iter_mut().find(|s| s.name == p.name) {
                s.packets += sent;
                s.bytes += sent_bytes;
            }
        }
    }

    /// One datagram from the relay: unprotect, identify, measure.
    fn receive(&mut self, datagram: &mut [u8]) {
        let at = Instant::now();
        let Some(header) = RtpHeader::parse(datagram) else {
            return;
        };
        let sub = match self.subscriptions.entry(header.ssrc) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let Some(stream) = self.registry.find(header.ssrc) else {
                    return;
                };
                let subscribed_at = stream.since.max(self.joined_at);
                lock(&self.stats)
                    .received
                    .entry(stream.track.clone())
                    .or_insert_with(|| ReceiveStats::new(stream.kind, subscribed_at));
                e.insert(Subscription {
                    track: stream.track,
                    kind: stream.kind,
                    index: IndexEstimator::near(stream.highest.load(Ordering::Relaxed)),
                })
            }
        };
        let index = sub.index.estimate(header.sequence);
        let Ok(len) = self.downlink.unprotect(datagram, &header, index) else {
            return;
        };
        sub.index.update(index);
        let payload = &datagram[header.len..len];
        let (probe, keyframe, end_of_frame) = match sub.kind {
            TrackKind::Video => match synthetic::read_video_packet(payload) {
                Some(info) => (info.probe, info.keyframe, header.marker),
                None => (None, false, header.marker),
            },
            _ => (synthetic::read_audio_packet(payload), false, true),
        };
        let arrived_us = self.wallclock.unix_us(at);
        let latency = probe.map(|p| arrived_us.saturating_sub(p.sent_at_us));
        if let Some(s) = lock(&self.stats).received.get_mut(&sub.track) {
            s.record_packet(at, index, payload.len(), end_of_frame, keyframe, latency);
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::Interrupted
    )
}

fn media_kind(kind: TrackKind) -> MediaKind {
    if kind == TrackKind::Audio {
        MediaKind::Audio
    } else {
        MediaKind::Video
    }
}

/// A participant of the relay: its task, its events, its counters.
#[derive(Debug)]
pub struct FloorParticipant {
    stats: SharedStats,
    events: mpsc::UnboundedReceiver<ParticipantEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Participant for FloorParticipant {
    fn meter(&self) -> Arc<dyn Meter> {
        Arc::new(FloorMeter(self.stats.clone()))
    }

    async fn next_event(&mut self) -> Option<ParticipantEvent> {
        self.events.recv().await
    }

    async fn leave(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Reads a floor participant's counters.
struct FloorMeter(SharedStats);

impl Meter for FloorMeter {
    fn sample(&self) -> Counters {
        let stats = lock(&self.0);
        let received = stats
            .received
            .iter()
            .map(|(track, r)| ReceivedTrack {
                track: track.clone(),
                kind: media_kind(r.kind),
                packets: r.packets,
                bytes: r.bytes,
                expected: r.expected(),
                lost: r.lost(),
                foreign: r.foreign,
                latency: histogram::from_client(&r.latency),
                first_packet_after: r.time_to_first_packet(),
                width: r.width,
                height: r.height,
                last_packet_at: r.last_packet_at,
            })
            .collect();
        Counters {
            sent: stats.sent.clone(),
            received,
        }
    }
}

//! The Janus target: participants in Janus's VideoRoom plugin, driven over
//! the Janus API's WebSocket transport, with the same media sessions and the
//! same counters as Salon's participants.
//!
//! # One participant
//!
//! ```text
//!  WebSocket ── create session ── attach (handle P) ── VideoRoom "create" room (427: exists, fine)
//!     │                          └─ "join" as publisher ──▶ joined {id, publishers}
//!     │                          └─ "publish" + offer (audio, video) ──▶ configured + answer
//!     │          attach (handle S) ── "join" as subscriber {streams} ──▶ attached + offer
//!     │                           └─ "start" + answer
//!     │   later: "publishers" event on P ─▶ "subscribe" {streams} on S ─▶ updated + offer ─▶ "start" + answer
//!     └── keepalive every 25 s; leave: "destroy" the session
//!
//!  UDP: publishing MediaSession ──▶ Janus ──▶ receiving MediaSession (one per participant each)
//! ```
//!
//! VideoRoom keeps publishing and subscribing on separate PeerConnections by
//! design, so a participant has two media sessions where a Salon participant
//! has one: the publishing one offers audio and video (no data channel), the
//! receiving one answers Janus's multistream subscription offers
//! ([`MediaSession::accept_offer`]). Publishers that join later are
//! announced by `publishers` events and added to the subscription, so every
//! participant receives every other publisher's tracks, as with Salon. A
//! participant that only subscribes joins as a publisher that never
//! publishes: that is how VideoRoom tells it about the room's feeds.
//!
//! Rooms are created on demand by whoever joins first, with room for
//! [`MAX_PER_ROOM`] publishers and VideoRoom's defaults otherwise; a room's
//! numeric id is a hash of its name ([`room_id`]).
//!
//! # The same meter
//!
//! A track is named by its feed (the publisher's id in the room) and the
//! publisher's mid; publisher and subscribers derive the same
//! [`TrackSid`] from that pair ([`track_sid`]), so the report pairs what was
//! sent with what arrived exactly as for Salon. Both media sessions write
//! `salon-client` statistics; the [`Meter`] reads the publishing one's sent
//! tracks and the receiving one's received tracks. Janus has no `/metrics`:
//! forwarded packets are what the subscribers received.
//!
//! `MediaConnected` is reported when the publishing PeerConnection is up (for
//! a participant that only subscribes: the receiving one).
//!
//! # Why the WebSocket transport
//!
//! Janus pushes events (a publisher joined, a renegotiation offer) on the
//! socket the moment they happen, one TCP connection per participant, as
//! Salon's signaling does. The HTTP transport would need a long poll
//! outstanding per session, answered and reissued for every batch of
//! events: more signaling work in Janus that has nothing to do with
//! forwarding media. During the measurement window either carries only
//! keepalives.
//!
//! # ICE on loopback
//!
//! Janus never gathers candidates on loopback interfaces; [`netns`] explains
//! how the tool still keeps all of Janus's media on loopback, and [`server`]
//! starts a Janus configured for it.

pub mod api;
pub mod netns;
pub mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use salon_client::{
    ClientError, MediaEvent, MediaSession, RemoteTrack, StatsHandle, TrackKind, TrackSid, TrackSpec,
};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::plan::{MAX_PER_ROOM, ParticipantPlan};
use crate::salon::{VIDEO_TRACK, counters};
use crate::target::{Counters, Meter, Participant, ParticipantEvent, Target, TargetError};
use api::{Connection, Feed, Message, ROOM_EXISTS, SubscriberStream, VIDEOROOM};

/// How long one request may wait for Janus's reply.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus ends a session silent for 60 s (its default `session_timeout`);
/// janus.js sends a keepalive every 25 s.
const KEEPALIVE: Duration = Duration::from_secs(25);
/// How long leaving may wait for Janus to destroy the session.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Events kept for a runner that does not read them; later ones are dropped.
const EVENT_BUFFER: usize = 256;
/// Label of the (never offered) control channel of the media sessions.
const CHANNEL_LABEL: &str = "janus";

/// A Janus server with the VideoRoom plugin, reached at its WebSocket API.
#[derive(Debug, Clone)]
pub struct JanusTarget {
    url: String,
    bind_ip: IpAddr,
}

impl JanusTarget {
    /// `url` is Janus's WebSocket API (`ws://127.0.0.1:8188`). Media
    /// sessions bind [`netns::ICE_ADDRESS`], where the Janus of
    /// [`server`] gathers its candidates (see [`netns`] for why the
    /// clients share its address).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            bind_ip: IpAddr::V4(netns::ICE_ADDRESS),
        }
    }

    /// Bind the media sessions to `ip` instead: an address on the interface
    /// Janus gathers its candidates on.
    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = ip;
        self
    }
}

/// The numeric VideoRoom id of the room named `name`: FNV-1a, kept below
/// 2^53 (Janus's own ids are JavaScript-safe integers) and never 0.
pub fn room_id(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash & ((1 << 53) - 1)).max(1)
}

/// The track id under which the stream `mid` of `feed` is counted, by its
/// publisher and its subscribers alike: the feed in the first eight bytes,
/// the mid (up to eight bytes, zero-padded) in the last eight. A longer mid
/// is hashed behind a 0xff marker byte.
pub fn track_sid(feed: u64, mid: &str) -> TrackSid {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&feed.to_be_bytes());
    if mid.len() <= 8 && !mid.as_bytes().contains(&0) {
        bytes[8..8 + mid.len()].copy_from_slice(mid.as_bytes());
    } else {
        let hash = room_id(mid).to_be_bytes();
        bytes[8] = 0xff;
        bytes[9..].copy_from_slice(&hash[1..]);
    }
    TrackSid::from_bytes(bytes)
}

/// `<feed>/<mid>`: how reports name a Janus track (see [`track_sid`]).
pub fn track_label(track: &TrackSid) -> String {
    let bytes = track.to_bytes();
    let mut feed = [0; 8];
    feed.copy_from_slice(&bytes[..8]);
    let feed = u64::from_be_bytes(feed);
    let tail = &bytes[8..];
    let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
    match std::str::from_utf8(&tail[..end]) {
        Ok(mid) => format!("{feed}/{mid}"),
        Err(_) => format!("{feed}/#{}", track.as_str()),
    }
}

fn client_error(e: ClientError) -> TargetError {
    TargetError {
        code: Some(e.code),
        message: e.message,
    }
}

fn failure(message: impl Into<String>) -> TargetError {
    TargetError {
        code: None,
        message: message.into(),
    }
}

impl Target for JanusTarget {
    type Participant = JanusParticipant;

    fn kind(&self) -> &'static str {
        "janus"
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn join(&self, plan: &ParticipantPlan) -> Result<JanusParticipant, TargetError> {
        let span = tracing::debug_span!("janus", identity = %plan.identity);
        let (driver, meter) = setup(&self.url, self.bind_ip, plan)
            .instrument(span.clone())
            .await?;
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (leave, leave_rx) = oneshot::channel();
        let task = tokio::spawn(driver.run(events_tx, leave_rx).instrument(span));
        Ok(JanusParticipant {
            meter: Arc::new(meter),
            events,
            leave,
            task,
        })
    }
}

/// Join the room as a publisher, publish the plan's tracks, and prepare the
/// receiving session: everything up to the point where Janus admitted the
/// participant.
async fn setup(
    url: &str,
    bind_ip: IpAddr,
    plan: &ParticipantPlan,
) -> Result<(Driver, JanusMeter), TargetError> {
    let mut conn = Connection::open(url).await?;
    conn.create_session(REQUEST_TIMEOUT).await?;
    let publisher = conn.attach(REQUEST_TIMEOUT).await?;
    let room = room_id(&plan.room);

    // Whoever comes first creates the room; VideoRoom's defaults otherwise
    // (its default of 3 publishers would cap the plan).
    let create = json!({
        "request": "create",
        "room": room,
        "description": plan.room,
        "publishers": MAX_PER_ROOM,
    });
    match request(&mut conn, publisher, create, None).await {
        Ok(_) => {}
        Err(e) if e.code == Some(ROOM_EXISTS) => {}
        Err(e) => return Err(e),
    }
    let join = json!({
        "request": "join",
        "ptype": "publisher",
        "room": room,
        "display": plan.identity,
    });
    let joined = request(&mut conn, publisher, join, None).await?;
    let (feed, others) = match joined.videoroom() {
        Some(r) if r.videoroom == "joined" => (
            r.id.ok_or_else(|| failure("Janus joined us without an id"))?,
            r.publishers.clone(),
        ),
        _ => return Err(failure("Janus answered `join` without `joined`")),
    };

    let receiving = MediaSession::bind(bind_ip, CHANNEL_LABEL)
        .await
        .map_err(client_error)?;
    let publishing = if plan.audio.is_some() || plan.video.is_some() {
        let mut media = MediaSession::bind(bind_ip, CHANNEL_LABEL)
            .await
            .map_err(client_error)?;
        media.without_control_channel();
        if let Some(microphone) = crate::salon::audio_track(plan) {
            media.publish(microphone).map_err(client_error)?;
        }
        if let Some(video) = plan.video {
            media
                .publish(
                    TrackSpec::video(VIDEO_TRACK)
                        .bitrate(video.bitrate_bps)
                        .fps(video.fps),
                )
                .map_err(client_error)?;
        }
        let offer = media
            .create_offer()
            .ok_or_else(|| failure("nothing to offer"))?;
        let reply = request(
            &mut conn,
            publisher,
            json!({"request": "publish"}),
            Some(("offer", &offer.sdp)),
        )
        .await?;
        let answer = reply
            .jsep
            .filter(|j| j.kind == "answer")
            .ok_or_else(|| failure("Janus answered `publish` without an SDP answer"))?;
        media.accept_answer(&answer.sdp).map_err(client_error)?;
        for p in &offer.publish {
            media.confirm_publication(&p.mid, track_sid(feed, &p.mid));
        }
        Some(media)
    } else {
        None
    };

    let meter = JanusMeter {
        sent: publishing.as_ref().map(MediaSession::stats_handle),
        received: receiving.stats_handle(),
    };
    let mut driver = Driver {
        conn,
        room,
        feed,
        publisher,
        subscriber: Subscription::None,
        publishing,
        receiving,
        wanted: BTreeMap::new(),
        requested: BTreeSet::new(),
        connected: false,
        leaving: false,
        events: None,
    };
    driver.add_feeds(&others);
    Ok((driver, meter))
}

/// A plugin request and its reply.
async fn request(
    conn: &mut Connection,
    handle: u64,
    body: serde_json::Value,
    jsep: Option<(&str, &str)>,
) -> Result<Message, TargetError> {
    let transaction = conn.message(handle, body, jsep).await?;
    conn.reply(&transaction, REQUEST_TIMEOUT).await
}

/// A participant in a Janus VideoRoom.
#[derive(Debug)]
pub struct JanusParticipant {
    meter: Arc<JanusMeter>,
    events: mpsc::Receiver<ParticipantEvent>,
    leave: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Participant for JanusParticipant {
    fn meter(&self) -> Arc<dyn Meter> {
        self.meter.clone()
    }

    async fn next_event(&mut self) -> Option<ParticipantEvent> {
        self.events.recv().await
    }

    async fn leave(self) {
        let _ = self.leave.send(());
        let mut task = self.task;
        if tokio::time::timeout(LEAVE_TIMEOUT + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Reads the two media sessions' statistics.
#[derive(Debug)]
struct JanusMeter {
    sent: Option<StatsHandle>,
    received: StatsHandle,
}

impl Meter for JanusMeter {
    fn sample(&self) -> Counters {
        let sent = self.sent.as_ref().map(StatsHandle::snapshot);
        counters(sent.as_ref(), &self.received.snapshot(), track_label)
    }
}

/// Where the subscription handle is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subscription {
    /// Nothing to receive yet.
    None,
    /// `attach` sent.
    Attaching { transaction: String },
    /// `join` as subscriber sent; its offer not answered yet.
    Joining { handle: u64 },
    /// The first offer was answered: `subscribe` adds feeds.
    Ready { handle: u64 },
}

/// One participant's task: the Janus connection, both media sessions, the
/// subscription's state.
struct Driver {
    conn: Connection,
    room: u64,
    /// Our id in the room.
    feed: u64,
    /// The handle we joined (and publish) with.
    publisher: u64,
    subscriber: Subscription,
    publishing: Option<MediaSession>,
    receiving: MediaSession,
    /// Other publishers' audio and video mids.
    wanted: BTreeMap<u64, Vec<String>>,
    /// Feeds asked for in a `join` or `subscribe`.
    requested: BTreeSet<u64>,
    connected: bool,
    leaving: bool,
    events: Option<mpsc::Sender<ParticipantEvent>>,
}

impl Driver {
    async fn run(
        mut self,
        events: mpsc::Sender<ParticipantEvent>,
        mut leave: oneshot::Receiver<()>,
    ) {
        self.events = Some(events);
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let ended = match self.subscribe_new().await {
            Err(e) => e,
            Ok(()) => loop {
                let step = tokio::select! {
                    r = step(&mut self.publishing) => r.map_err(client_error),
                    r = self.receiving.step() => r.map_err(client_error),
                    message = self.conn.next() => match message {
                        Some(m) => self.on_message(m).await,
                        None => Err(failure("Janus closed the connection")),
                    },
                    _ = keepalive.tick() => self.conn.send(json!({"janus": "keepalive"})).await.map(drop),
                    // Asked to leave, or dropped.
                    _ = &mut leave => {
                        self.leave().await;
                        return;
                    }
                };
                if let Err(e) = step.and_then(|()| self.media_events()) {
                    break e;
                }
            },
        };
        self.emit(ParticipantEvent::Disconnected {
            code: ended.code,
            message: ended.message,
        });
        self.leave().await;
    }

    fn emit(&self, event: ParticipantEvent) {
        if let Some(events) = &self.events {
            let _ = events.try_send(event);
        }
    }

    /// Report what the media sessions say; an error when one closed.
    fn media_events(&mut self) -> Result<(), TargetError> {
        let mut closed = false;
        let mut up = false;
        if let Some(media) = &mut self.publishing {
            while let Some(e) = media.poll_event() {
                up |= e == MediaEvent::Connected;
                closed |= e == MediaEvent::Closed;
            }
        }
        while let Some(e) = self.receiving.poll_event() {
            up |= e == MediaEvent::Connected && self.publishing.is_none();
            closed |= e == MediaEvent::Closed;
        }
        if up && !self.connected {
            self.connected = true;
            self.emit(ParticipantEvent::MediaConnected);
        }
        if closed {
            return Err(failure("Janus closed a media connection"));
        }
        Ok(())
    }

    async fn on_message(&mut self, m: Message) -> Result<(), TargetError> {
        let ours = m.sender.is_some()
            && (m.sender == Some(self.publisher) || m.sender == self.subscriber_handle());
        match m.janus.as_str() {
            "event" => self.on_event(m).await,
            "success" => match &self.subscriber {
                Subscription::Attaching { transaction }
                    if m.transaction.as_ref() == Some(transaction) =>
                {
                    let handle = m
                        .data
                        .map(|d| d.id)
                        .filter(|&id| id != 0)
                        .ok_or_else(|| failure("Janus attached a handle without an id"))?;
                    self.join_as_subscriber(handle).await
                }
                _ => Ok(()),
            },
            "error" => {
                let error = m
                    .failure()
                    .unwrap_or_else(|| failure("Janus reported an error"));
                if matches!(&self.subscriber, Subscription::Attaching { transaction } if m.transaction.as_ref() == Some(transaction))
                {
                    return Err(error);
                }
                self.emit(ParticipantEvent::Error {
                    code: error.code.unwrap_or(0),
                    message: error.message,
                });
                Ok(())
            }
            "hangup" if ours => Err(failure(format!(
                "Janus hung up a PeerConnection: {}",
                m.reason.as_deref().unwrap_or("no reason given")
            ))),
            "detached" if ours => Err(failure("Janus detached a handle")),
            "timeout" => Err(failure("Janus timed the session out")),
            _ => Ok(()),
        }
    }

    async fn on_event(&mut self, m: Message) -> Result<(), TargetError> {
        let Some(room) = m.videoroom() else {
            return Ok(());
        };
        if let Some(e) = m.failure() {
            // A request of ours failed (`subscribe`, `start`…).
            self.emit(ParticipantEvent::Error {
                code: e.code.unwrap_or(0),
                message: e.message,
            });
            return Ok(());
        }
        if m.sender == Some(self.publisher) {
            if let Some(feed) = room.gone() {
                // VideoRoom renegotiates the subscription by itself
                // (`autoupdate`); only forget the feed.
                self.wanted.remove(&feed);
                self.requested.remove(&feed);
            }
            if !room.publishers.is_empty() {
                let feeds = room.publishers.clone();
                self.add_feeds(&feeds);
                self.subscribe_new().await?;
            }
            return Ok(());
        }
        let Some(handle) = self.subscriber_handle().filter(|&h| m.sender == Some(h)) else {
            return Ok(());
        };
        let Some(offer) = m.jsep.as_ref().filter(|j| j.kind == "offer") else {
            // `updating`: an offer follows once the last one is answered;
            // `updated` without an offer: nothing changed.
            return Ok(());
        };
        let answer = self
            .receiving
            .accept_offer(&offer.sdp, &bindings(&room.streams))
            .map_err(client_error)?;
        self.conn
            .message(
                handle,
                json!({"request": "start"}),
                Some(("answer", &answer)),
            )
            .await?;
        if self.subscriber == (Subscription::Joining { handle }) {
            self.subscriber = Subscription::Ready { handle };
            // Feeds announced while the first offer was on its way.
            self.subscribe_new().await?;
        }
        Ok(())
    }

    fn subscriber_handle(&self) -> Option<u64> {
        match self.subscriber {
            Subscription::Joining { handle } | Subscription::Ready { handle } => Some(handle),
            _ => None,
        }
    }

    /// Remember other publishers' audio and video.
    fn add_feeds(&mut self, feeds: &[Feed]) {
        for feed in feeds.iter().filter(|f| f.id != self.feed) {
            let mids: Vec<String> = feed
                .streams
                .iter()
                .filter(|s| !s.disabled && (s.kind == "audio" || s.kind == "video"))
                .map(|s| s.mid.clone())
                .collect();
            if !mids.is_empty() {
                self.wanted.entry(feed.id).or_insert(mids);
            }
        }
    }

    /// The wanted streams not asked for yet, in VideoRoom's `streams` form.
    fn unrequested(&self) -> Vec<serde_json::Value> {
        self.wanted
            .iter()
            .filter(|(feed, _)| !self.requested.contains(feed))
            .flat_map(|(&feed, mids)| {
                mids.iter()
                    .map(move |mid| json!({"feed": feed, "mid": mid}))
            })
            .collect()
    }

    fn mark_requested(&mut self) {
        self.requested.extend(self.wanted.keys().copied());
    }

    /// Ask for the wanted feeds not asked for yet: attach the subscription
    /// handle first, or add them to the subscription.
    async fn subscribe_new(&mut self) -> Result<(), TargetError> {
        let streams = self.unrequested();
        if streams.is_empty() {
            return Ok(());
        }
        match self.subscriber {
            Subscription::None => {
                let transaction = self
                    .conn
                    .send(json!({"janus": "attach", "plugin": VIDEOROOM}))
                    .await?;
                self.subscriber = Subscription::Attaching { transaction };
            }
            // Asked for once the first offer is answered.
            Subscription::Attaching { .. } | Subscription::Joining { .. } => {}
            Subscription::Ready { handle } => {
                self.conn
                    .message(
                        handle,
                        json!({"request": "subscribe", "streams": streams}),
                        None,
                    )
                    .await?;
                self.mark_requested();
            }
        }
        Ok(())
    }

    async fn join_as_subscriber(&mut self, handle: u64) -> Result<(), TargetError> {
        let join = json!({
            "request": "join",
            "ptype": "subscriber",
            "room": self.room,
            "streams": self.unrequested(),
        });
        self.conn.message(handle, join, None).await?;
        self.mark_requested();
        self.subscriber = Subscription::Joining { handle };
        Ok(())
    }

    /// Close both media sessions and destroy the Janus session: VideoRoom
    /// hangs up both PeerConnections and tells the room this feed is gone.
    async fn leave(&mut self) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        if let Some(media) = &mut self.publishing {
            media.close();
        }
        self.receiving.close();
        if self.conn.session().is_some() {
            let _ = self
                .conn
                .call(json!({"janus": "destroy"}), LEAVE_TIMEOUT)
                .await;
        }
        self.conn.close().await;
    }
}

/// A step of the publishing session, or never when there is none.
async fn step(media: &mut Option<MediaSession>) -> Result<(), ClientError> {
    match media {
        Some(media) => media.step().await,
        None => std::future::pending().await,
    }
}

/// The m-lines of a subscription offer that carry a publisher's audio or
/// video, with the track each carries.
fn bindings(streams: &[SubscriberStream]) -> Vec<RemoteTrack> {
    streams
        .iter()
        .filter(|s| s.active)
        .filter_map(|s| {
            let kind = match s.kind.as_str() {
                "audio" => TrackKind::Audio,
                "video" => TrackKind::Video,
                _ => return None,
            };
            Some(RemoteTrack {
                mid: s.mid.clone(),
                track: track_sid(s.feed_id?, s.feed_mid.as_deref()?),
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_stable_javascript_safe_and_distinct() {
        assert_eq!(room_id("lt-1a2b-0"), room_id("lt-1a2b-0"));
        assert_ne!(room_id("lt-1a2b-0"), room_id("lt-1a2b-1"));
        for name in ["", "a", "lt-ffff-499", "a room with a long name"] {
            let id = room_id(name);
            assert!((1..1 << 53).contains(&id), "{name}: {id}");
        }
    }

    #[test]
    fn a_track_is_named_the_same_by_publisher_and_subscriber() {
        let t = track_sid(8_426_541_234_567, "a1b");
        assert_eq!(t, track_sid(8_426_541_234_567, "a1b"));
        assert_ne!(t, track_sid(8_426_541_234_567, "a1c"));
        assert_ne!(t, track_sid(8_426_541_234_568, "a1b"));
        assert_eq!(track_label(&t), "8426541234567/a1b");
        assert_eq!(track_label(&track_sid(7, "0")), "7/0");
        assert_eq!(track_label(&track_sid(7, "12345678")), "7/12345678");
        // Long mids are hashed, and still distinct.
        let long = track_sid(7, "a-very-long-mid");
        assert_ne!(long, track_sid(7, "a-very-long-mie"));
        assert!(
            track_label(&long).starts_with("7/#MT"),
            "{}",
            track_label(&long)
        );
    }

    #[test]
    fn only_active_audio_and_video_m_lines_are_bound() {
        let stream = |mid: &str, kind: &str, active: bool, feed: Option<u64>| SubscriberStream {
            mid: mid.into(),
            kind: kind.into(),
            active,
            feed_id: feed,
            feed_mid: feed.map(|_| format!("p{mid}")),
        };
        let b = bindings(&[
            stream("0", "audio", true, Some(5)),
            stream("1", "video", true, Some(5)),
            stream("2", "video", false, None),
            stream("3", "data", true, Some(5)),
            stream("4", "video", true, None),
        ]);
        assert_eq!(
            b,
            [
                RemoteTrack {
                    mid: "0".into(),
                    track: track_sid(5, "p0"),
                    kind: TrackKind::Audio
                },
                RemoteTrack {
                    mid: "1".into(),
                    track: track_sid(5, "p1"),
                    kind: TrackKind::Video
                },
            ]
        );
    }
}

//! Salon's signaling protocol, version 1: the JSON messages a client and the
//! server exchange over the WebSocket at `/v1/signaling`.
//!
//! Every message is one WebSocket text frame holding one JSON object with a
//! `"type"` field. [`ClientMessage`] is what clients send, [`ServerMessage`]
//! what the server sends. `docs/protocol.md` describes the conversation;
//! this crate is its single source of truth for shapes and limits.
//!
//! # The shape of a session
//!
//! ```text
//! client                                     server
//!   │── join {version, token, room} ──────────▶│  verify token, admit
//!   │◀──────── joined {session, room, you, participants} ──│
//!   │── offer {sdp, publish[], subscribe[]} ──▶│  the client always offers;
//!   │◀──────────── answer {sdp, published[]} ──│  the server only answers
//!   │◀── participant_connected / track_published / subscribed … ──│
//!   │── offer (adds a receiving m-line per `subscribed`) ──▶│
//!   │── ping ─▶ ◀─ pong                                     │  keepalive
//!   │── leave ───────────────────────────────▶│
//! ```
//!
//! Only the client creates offers, so renegotiation never collides (no
//! glare): the server asks for a change (`subscribed`, `unsubscribed`) and
//! the client makes it in its next offer. A client keeps at most one offer
//! outstanding.
//!
//! # Evolving the protocol
//!
//! Both sides ignore fields they do not know, so a new optional field is
//! never a break: an old server reads a newer client's `leave` as `leave`,
//! an old client a newer server's `answer` as `answer`. A message *type*
//! the server does not know is refused with [`codes::INVALID_MESSAGE`],
//! naming it; clients skip server message types they do not know. A change
//! that old peers must not misread takes a new [`VERSION`].
//!
//! # What this crate must not know
//!
//! Sockets, rooms or media. It parses and prints messages and enforces the
//! protocol's size limit; the server decides what they mean.

use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A `join` or `resume` with another
/// version is refused with [`codes::INVALID_MESSAGE`].
pub const VERSION: u32 = 1;

/// Largest message accepted, in bytes of UTF-8 JSON. An offer or answer
/// carries every m-line of the session, about 1.5 KiB each: a subscriber in
/// a room of 50 (Twilio's largest group room) receiving 49 cameras and 49
/// microphones has about 98 of them, some 150 KiB (64 KiB, the old limit,
/// held only 40-odd, and `salon loadtest --publishers 50` showed every
/// participant dropped for offers answered with unreadable messages).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Longest `mid` an offer may declare, in bytes (what str0m stores).
pub const MAX_MID_BYTES: usize = 16;

/// Whether `mid` is one an offer may declare: 1 to [`MAX_MID_BYTES`]
/// ASCII letters, digits, `-` or `_`.
pub fn valid_mid(mid: &str) -> bool {
    !mid.is_empty()
        && mid.len() <= MAX_MID_BYTES
        && mid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Twilio's error codes for what can go wrong in signaling.
pub mod codes {
    /// Generic signaling failure; also how a client ends a session it
    /// could not resume within the session timeout (Twilio's "reconnection
    /// attempts were exhausted").
    pub const SIGNALING_ERROR: u32 = 53000;
    /// The signaling connection was lost.
    pub const SIGNALING_DISCONNECTED: u32 = 53001;
    /// The client sent nothing (not even `ping`) for too long.
    pub const SIGNALING_TIMEOUT: u32 = 53002;
    /// The client sent a message that is malformed, too large, of an unknown
    /// type, of an unsupported version, or out of order.
    pub const INVALID_MESSAGE: u32 = 53004;
    /// The server is at capacity or shutting down.
    pub const SERVER_BUSY: u32 = 53006;
    /// A `resume` names a session the server does not have: it ended
    /// (kicked, room completed, timed out) while its node lives. Join
    /// again, or not; do not resume.
    pub const PARTICIPANT_NOT_FOUND: u32 = 53204;
    /// The server could not apply the client's offer: its SDP does not
    /// parse or apply, or it contradicts what the message declares. Like
    /// every 534xx error with a `revision`, it refuses that offer: no
    /// answer comes.
    pub const REMOTE_DESCRIPTION_FAILED: u32 = 53403;
    /// The offer has no codec the server can forward (it is refused too).
    pub const NO_SUPPORTED_CODEC: u32 = 53404;
    /// Media stopped flowing (no ICE consent, no packets).
    pub const MEDIA_FAILED: u32 = 53405;
}

/// The kind of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
    Data,
}

/// A track as participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub sid: TrackSid,
    pub name: String,
    pub kind: TrackKind,
    /// False while the publisher has disabled (muted) it.
    pub enabled: bool,
    /// The publisher's priority (`publishPriority`); `standard` until it
    /// sets one. Later changes come as `track_priority_changed`.
    #[serde(default)]
    pub priority: Priority,
}

/// A participant and what it publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub sid: ParticipantSid,
    pub identity: String,
    pub tracks: Vec<TrackInfo>,
}

/// The room of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub sid: RoomSid,
    pub name: String,
    /// Whether some track of the room is being recorded.
    #[serde(default)]
    pub recording: bool,
}

/// An audio or video m-line the client sends on, declared in its offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishMedia {
    /// The m-line's `a=mid`.
    pub mid: String,
    /// The track's name, unique among the participant's tracks.
    pub name: String,
    pub kind: TrackKind,
    /// Start disabled (muted).
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// An m-line the client receives on, declared in its offer: which track the
/// server should send there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeMedia {
    pub mid: String,
    pub track: TrackSid,
}

/// A published track confirmed in an `answer` or `published`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The m-line (audio, video) or data channel label (data).
    pub mid: String,
    pub track: TrackInfo,
}

/// A STUN or TURN server the client may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A track priority: Twilio's `Track.Priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Standard,
    High,
}

/// How a subscriber's bandwidth is shared among its video tracks:
/// Twilio's `BandwidthProfileMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BandwidthMode {
    #[default]
    Grid,
    Collaboration,
    Presentation,
}

/// When tracks are switched off for bandwidth: Twilio's
/// `TrackSwitchOffMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackSwitchOffMode {
    Detected,
    #[default]
    Predicted,
    Disabled,
}

/// Width and height in pixels (render dimensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// Render dimensions a client may ask for: each side 1 to this.
pub const MAX_RENDER_SIDE: u32 = 16_384;

/// Network quality of one participant, in `network_quality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkQualityLevel {
    pub participant: ParticipantSid,
    /// 0 (broken) to 5 (excellent).
    pub level: u8,
    /// Present at verbosity 2 (`moderate`) and 3 (`detailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<NetworkQualityMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<NetworkQualityMedia>,
}

/// Twilio's `NetworkQualityAudioStats` / `NetworkQualityVideoStats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkQualityMedia {
    pub send: u8,
    pub recv: u8,
    /// Present at verbosity 3 (`detailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_stats: Option<NetworkQualityPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_stats: Option<NetworkQualityPath>,
}

/// Twilio's `NetworkQualitySendOrRecvStats`: the last interval's
/// measurements and the level each alone scores.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkQualityPath {
    /// Bits per second carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_actual: Option<u64>,
    /// Bits per second the path is estimated to carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_available: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_level: Option<u8>,
    /// 0.0 to 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_lost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_lost_level: Option<u8>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_level: Option<u8>,
}

/// One simulcast layer of a published video track, in `layers`: whether
/// the publisher should send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerHint {
    /// 0 is the lowest resolution.
    pub layer: u8,
    /// The layer's `a=rid`, when the track was published with RIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What a client sends. Fields the server does not know are ignored (see
/// *Evolving the protocol* above).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message of a session: who I am (the access token) and
    /// which room I want (a unique name or an `RM` SID). Without `room`: the
    /// token's room grant, or else a new room whose unique name is its SID
    /// (twilio-video's `connect(token)` without a `name`).
    Join {
        version: u32,
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Subscribe me to every track in the room, now and later.
        #[serde(default = "yes")]
        auto_subscribe: bool,
        /// Free text describing the client, for logs (`salon-video.js 0.1`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// The first message of a new socket for a session whose socket dropped:
    /// the participant stays in the room and its media goes on.
    Resume {
        version: u32,
        token: String,
        session: String,
    },
    /// A new local description. `publish` lists the sending m-lines this
    /// offer adds; `subscribe` the receiving m-lines it adds and which track
    /// each should carry. M-lines declared before keep their meaning.
    Offer {
        /// Greater than the previous offer's (clients count 1, 2, 3, …);
        /// echoed in the answer.
        revision: u32,
        sdp: String,
        #[serde(default)]
        publish: Vec<PublishMedia>,
        #[serde(default)]
        subscribe: Vec<SubscribeMedia>,
    },
    /// Publish a data track carried by the client's data channel `label`.
    PublishData { name: String, label: String },
    /// Stop publishing a track (any kind). The client then stops its
    /// transceiver in its next offer.
    Unpublish { track: TrackSid },
    /// Enable or disable (mute) a published track.
    SetTrackEnabled { track: TrackSid, enabled: bool },
    /// Ask to receive a track (when `auto_subscribe` is off, or after an
    /// `unsubscribe`). The server answers with `subscribed`.
    Subscribe { track: TrackSid },
    /// Stop receiving a track.
    Unsubscribe { track: TrackSid },
    /// Keepalive. The server answers `pong` with the same `id`.
    Ping {
        #[serde(default)]
        id: u64,
    },
    /// Leave the room. The server closes the socket.
    Leave {},
    /// How this participant's downlink is shared among the video tracks it
    /// receives: Twilio's `bandwidthProfile.video`. Absent fields keep
    /// their value (Twilio's defaults at first).
    SetBandwidthProfile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<BandwidthMode>,
        /// Bits per second of video; 0 removes the cap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_subscription_bitrate: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dominant_speaker_priority: Option<Priority>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        track_switch_off_mode: Option<TrackSwitchOffMode>,
        /// Deprecated `maxTracks`; 0 removes the limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_tracks: Option<u32>,
    },
    /// The priority of one of my published tracks (`publishPriority`,
    /// `LocalTrackPublication.setPriority`).
    SetPublishPriority { track: TrackSid, priority: Priority },
    /// My own priority for a track I receive
    /// (`RemoteVideoTrack.setPriority`); `null` goes back to the
    /// publisher's.
    SetSubscribePriority {
        track: TrackSid,
        priority: Option<Priority>,
    },
    /// Stop forwarding a video track to me, keeping the subscription
    /// (`RemoteVideoTrack.switchOff()`).
    SwitchOff { track: TrackSid },
    /// Forward it again (`switchOn()`).
    SwitchOn { track: TrackSid },
    /// The size I render a video track at
    /// (`setContentPreferences({renderDimensions})`); `null` for no limit.
    SetRenderDimensions {
        track: TrackSid,
        dimensions: Option<Dimensions>,
    },
    /// Ask for `network_quality` messages: Twilio's
    /// `NetworkQualityConfiguration`, verbosity 0 (none) to 3 (detailed)
    /// for myself and for the others.
    SetNetworkQuality { local: u8, remote: u8 },
}

/// Why the server ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisconnectReason {
    /// The client asked (`leave`).
    Left,
    /// Another connection joined with the same identity (53205).
    DuplicateIdentity,
    /// The room was completed (53118).
    RoomCompleted,
    /// Removed through the REST API.
    Kicked,
    /// The room's maximum participant duration ran out (53216).
    MaxDurationExceeded,
    /// Media stopped flowing (53405).
    MediaTimeout,
    /// A protocol or media failure on this connection.
    Failed,
    /// The server is shutting down.
    Shutdown,
    /// The answer to a `resume` whose session lived on a cluster node that
    /// is gone (it stopped renewing its lease; its rooms are failed): join
    /// the room again by name (53001).
    NodeLost,
}

/// What the server sends. A client ignores fields it does not know; one
/// message of a type it does not know fails [`ServerMessage::parse`] as
/// [`ProtocolError::UnknownType`], which a client skips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `join` (and to `resume`, with `resumed: true`).
    Joined {
        version: u32,
        /// Give this to `resume` if the socket drops.
        session: String,
        resumed: bool,
        room: RoomInfo,
        /// You, with the tracks you publish.
        participant: ParticipantInfo,
        /// Everyone else in the room, in join order.
        participants: Vec<ParticipantInfo>,
        ice_servers: Vec<IceServer>,
        /// The revision of the last offer the server handled (answered or
        /// refused), 0 before the first. After a `resume`, an offer with a
        /// higher revision was lost with the old socket and must be sent
        /// again; one at or below it was handled (its answer or error is
        /// among the replayed messages).
        #[serde(default)]
        last_revision: u32,
        /// Seconds the server keeps this participant while its signaling
        /// socket or its media is gone: resume (and restart ICE) within
        /// it. Absent from older servers: 10 s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_timeout: Option<u32>,
        /// The id of the node holding the room, when the server is one
        /// node of a cluster; absent from a single node. A client that
        /// loses that node may join the room again by name (a new room of
        /// the same name on a live node), where on a single node a lost
        /// room is simply gone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        /// The server selects simulcast layers: publish video with RIDs
        /// (`a=rid` / `a=simulcast`) if you want to. Absent (false) from
        /// servers that do not.
        #[serde(default)]
        simulcast: bool,
    },
    /// The answer to an `offer` with the same `revision`, and the tracks the
    /// offer published.
    Answer {
        revision: u32,
        sdp: String,
        published: Vec<Published>,
    },
    /// A data track published by `publish_data`.
    Published {
        published: Published,
    },
    ParticipantConnected {
        participant: ParticipantInfo,
    },
    ParticipantDisconnected {
        participant: ParticipantSid,
    },
    /// A participant's signaling or media went away: it is kept for the
    /// session timeout while it reconnects (Twilio's
    /// `participantReconnecting`).
    ParticipantReconnecting {
        participant: ParticipantSid,
    },
    /// It is back (Twilio's `participantReconnected`).
    ParticipantReconnected {
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
    /// The room started being recorded (some track is), or stopped (none is).
    Recording {
        recording: bool,
    },
    /// You now receive `track`. For audio and video, add a receiving m-line
    /// for it in your next offer (listing it in `subscribe`); for data, the
    /// server opens a data channel labelled with the track's SID.
    Subscribed {
        participant: ParticipantSid,
        track: TrackInfo,
    },
    /// You no longer receive `track`; stop its transceiver in your next offer.
    Unsubscribed {
        track: TrackSid,
    },
    /// A request failed; the session goes on unless a `disconnected` follows.
    Error {
        code: u32,
        message: String,
        /// The revision of the offer this error is about, if it is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u32>,
    },
    /// The session is over; the server closes the socket after this.
    Disconnected {
        reason: DisconnectReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        message: String,
    },
    Pong {
        id: u64,
    },
    /// The answer to `join` when the room is served by another node of the
    /// cluster (or a new room is placed there): open `url` (a WebSocket URL
    /// of this protocol) and send the same `join` there. The server closes
    /// the socket after this. A client follows a few redirects at most.
    Redirect {
        url: String,
        /// The node's id, for logs.
        node: String,
    },
    /// A publisher changed a track's priority (`trackPublishPriorityChanged`).
    TrackPriorityChanged {
        participant: ParticipantSid,
        track: TrackSid,
        priority: Priority,
    },
    /// A video track you receive stopped being forwarded to you; `reason`
    /// is Twilio's `switchOffReason` (`disabled-by-subscriber`,
    /// `network-congestion`, `max-bandwidth-reached`,
    /// `max-tracks-switched-on`, `disabled-by-publisher`).
    TrackSwitchedOff {
        track: TrackSid,
        reason: String,
    },
    /// It is forwarded again (from its next keyframe).
    TrackSwitchedOn {
        track: TrackSid,
    },
    /// The room's dominant speaker changed; `null` when they left.
    DominantSpeakerChanged {
        participant: Option<ParticipantSid>,
    },
    /// Network quality levels (and stats, by the verbosity asked for), sent
    /// when one changes, only after `set_network_quality`.
    NetworkQuality {
        participants: Vec<NetworkQualityLevel>,
    },
    /// Which simulcast layers of your published video track someone
    /// receives: pause the others (`RTCRtpEncodingParameters.active`).
    Layers {
        track: TrackSid,
        layers: Vec<LayerHint>,
    },
}

/// Why a message could not be read. Always [`codes::INVALID_MESSAGE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {bytes} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("invalid message: {0}")]
    Invalid(String),
    /// A well-formed message of a type this side does not know.
    #[error(
        "unknown message type '{found}': protocol version {VERSION} has {}",
        .expected.join(", ")
    )]
    UnknownType {
        found: String,
        expected: &'static [&'static str],
    },
    #[error("unsupported protocol version {0}: this server speaks version {VERSION}")]
    UnsupportedVersion(u32),
}

impl ProtocolError {
    pub fn code(&self) -> u32 {
        codes::INVALID_MESSAGE
    }
}

/// The `type`s of [`ClientMessage`].
pub const CLIENT_TYPES: &[&str] = &[
    "join",
    "resume",
    "offer",
    "publish_data",
    "unpublish",
    "set_track_enabled",
    "subscribe",
    "unsubscribe",
    "ping",
    "leave",
    "set_bandwidth_profile",
    "set_publish_priority",
    "set_subscribe_priority",
    "switch_off",
    "switch_on",
    "set_render_dimensions",
    "set_network_quality",
];

/// The `type`s of [`ServerMessage`].
pub const SERVER_TYPES: &[&str] = &[
    "joined",
    "answer",
    "published",
    "participant_connected",
    "participant_disconnected",
    "participant_reconnecting",
    "participant_reconnected",
    "track_published",
    "track_unpublished",
    "track_switched",
    "recording",
    "subscribed",
    "unsubscribed",
    "error",
    "disconnected",
    "pong",
    "redirect",
    "track_priority_changed",
    "track_switched_off",
    "track_switched_on",
    "dominant_speaker_changed",
    "network_quality",
    "layers",
];

/// Read one message of `M`, enforcing the size limit. When it does not
/// read, say why precisely: a message whose type is not one of `types` is
/// [`ProtocolError::UnknownType`]; anything else keeps serde's words
/// ("missing field `token`"), shortened.
fn parse_message<M: serde::de::DeserializeOwned>(
    text: &str,
    types: &'static [&'static str],
) -> Result<M, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge { bytes: text.len() });
    }
    serde_json::from_str(text).map_err(|e| {
        // Only on failure: read the type alone to tell the two cases apart.
        #[derive(Deserialize)]
        struct Tag {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        if let Ok(Tag { kind: Some(kind) }) = serde_json::from_str::<Tag>(text) {
            if !types.contains(&kind.as_str()) {
                let mut found: String = kind.chars().take(40).collect();
                if kind.chars().nth(40).is_some() {
                    found.push('…');
                }
                return ProtocolError::UnknownType {
                    found,
                    expected: types,
                };
            }
        }
        let mut detail = e.to_string();
        // serde quotes what it read: cut at a character boundary.
        let mut cut = detail.len().min(300);
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        ProtocolError::Invalid(detail)
    })
}

impl ClientMessage {
    /// Read one client message, enforcing the size limit and the version.
    /// Unknown fields are ignored; an unknown `type` is refused.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let message: ClientMessage = parse_message(text, CLIENT_TYPES)?;
        match &message {
            ClientMessage::Join { version, .. } | ClientMessage::Resume { version, .. }
                if *version != VERSION =>
            {
                Err(ProtocolError::UnsupportedVersion(*version))
            }
            _ => Ok(message),
        }
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The `type` name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::PublishData { .. } => "publish_data",
            ClientMessage::Unpublish { .. } => "unpublish",
            ClientMessage::SetTrackEnabled { .. } => "set_track_enabled",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Leave {} => "leave",
            ClientMessage::SetBandwidthProfile { .. } => "set_bandwidth_profile",
            ClientMessage::SetPublishPriority { .. } => "set_publish_priority",
            ClientMessage::SetSubscribePriority { .. } => "set_subscribe_priority",
            ClientMessage::SwitchOff { .. } => "switch_off",
            ClientMessage::SwitchOn { .. } => "switch_on",
            ClientMessage::SetRenderDimensions { .. } => "set_render_dimensions",
            ClientMessage::SetNetworkQuality { .. } => "set_network_quality",
        }
    }
}

impl ServerMessage {
    /// Read one server message (for clients), enforcing the size limit.
    /// Unknown fields are ignored; a message of an unknown type is
    /// [`ProtocolError::UnknownType`], which clients skip.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        parse_message(text, SERVER_TYPES)
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: no maps with non-string keys,
        // and the only floats (network quality stats) are finite.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl DisconnectReason {
    /// The error code a client is given, if the disconnection is an error
    /// from its point of view.
    pub const fn code(self) -> Option<u32> {
        match self {
            DisconnectReason::Left | DisconnectReason::Kicked => None,
            DisconnectReason::DuplicateIdentity => Some(53205),
            DisconnectReason::RoomCompleted | DisconnectReason::Shutdown => Some(53118),
            DisconnectReason::MaxDurationExceeded => Some(53216),
            DisconnectReason::MediaTimeout => Some(codes::MEDIA_FAILED),
            DisconnectReason::Failed | DisconnectReason::NodeLost => {
                Some(codes::SIGNALING_DISCONNECTED)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_reads_with_defaults() {
        let m = ClientMessage::parse(r#"{"type":"join","version":1,"token":"t","room":"standup"}"#)
            .unwrap();
        assert_eq!(
            m,
            ClientMessage::Join {
                version: 1,
                token: "t".into(),
                room: Some("standup".into()),
                auto_subscribe: true,
                client: None
            }
        );
        let m = ClientMessage::parse(r#"{"type":"join","version":1,"token":"t"}"#).unwrap();
        assert!(matches!(m, ClientMessage::Join { room: None, .. }), "{m:?}");
    }

    #[test]
    fn bad_messages_are_refused_with_53004() {
        for text in [
            "",
            "{",
            "[]",
            r#"{"type":"dance"}"#,
            r#"{"version":1}"#,
            r#"{"type":"join","version":1,"room":"x"}"#,
            r#"{"type":"join","version":2,"token":"t","room":"x"}"#,
            r#"{"type":"offer","revision":1,"sdp":"x","subscribe":[{"mid":"1","track":"nope"}]}"#,
            r#"{"type":"ping","id":-1}"#,
            r#"{"type":"subscribe","track":"MT1","extra":1}"#,
        ] {
            let err = ClientMessage::parse(text).unwrap_err();
            assert_eq!(err.code(), 53004, "{text}: {err}");
        }
        let big = format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(matches!(
            ClientMessage::parse(&big),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn an_unknown_type_is_named_in_the_error() {
        let err = ClientMessage::parse(r#"{"type":"dance","with":"me"}"#).unwrap_err();
        assert!(matches!(err, ProtocolError::UnknownType { .. }), "{err:?}");
        assert_eq!(err.code(), codes::INVALID_MESSAGE);
        let text = err.to_string();
        assert!(
            text.contains("'dance'") && text.contains("join, resume, offer"),
            "{text}"
        );
        let err = ServerMessage::parse(r#"{"type":"dance"}"#).unwrap_err();
        assert!(matches!(err, ProtocolError::UnknownType { .. }), "{err:?}");
        // A long or multi-byte type is cut, never split inside a character.
        let long = format!(r#"{{"type":"{}"}}"#, "é".repeat(500));
        let err = ClientMessage::parse(&long).unwrap_err();
        assert!(
            err.to_string().contains(&format!("'{}…'", "é".repeat(40))),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_ignored_so_the_protocol_can_grow() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"leave","reason":"lunch"}"#).unwrap(),
            ClientMessage::Leave {}
        );
        let join = ClientMessage::parse(
            r#"{"type":"join","version":1,"token":"t","room":"r","video_profile":{"a":[1]}}"#,
        )
        .unwrap();
        assert!(matches!(join, ClientMessage::Join { .. }), "{join:?}");
        let pong = ServerMessage::parse(r#"{"type":"pong","id":3,"rtt_ms":12.5}"#).unwrap();
        assert_eq!(pong, ServerMessage::Pong { id: 3 });
    }

    #[test]
    fn a_known_type_with_bad_fields_is_invalid_not_unknown() {
        for kind in CLIENT_TYPES {
            let text = format!(r#"{{"type":"{kind}","version":"one","id":"x","track":7}}"#);
            match ClientMessage::parse(&text) {
                Err(ProtocolError::UnknownType { .. }) => panic!("{kind} is a client type"),
                Err(_) => {}
                Ok(m) => assert_eq!(m.kind(), *kind),
            }
        }
        for kind in SERVER_TYPES {
            let text = format!(r#"{{"type":"{kind}","id":"x"}}"#);
            assert!(
                !matches!(
                    ServerMessage::parse(&text),
                    Err(ProtocolError::UnknownType { .. })
                ),
                "{kind} is a server type"
            );
        }
    }

    #[test]
    fn mids_are_short_and_plain() {
        for ok in ["0", "1", "audio", "v-1_a", "0123456789abcdef"] {
            assert!(valid_mid(ok), "{ok}");
        }
        for bad in ["", "0123456789abcdefg", "a b", "é", "a\n"] {
            assert!(!valid_mid(bad), "{bad:?}");
        }
    }

    #[test]
    fn server_messages_round_trip() {
        let m = ServerMessage::Disconnected {
            reason: DisconnectReason::RoomCompleted,
            code: Some(53118),
            message: "Room completed".into(),
        };
        let json = m.to_json();
        assert_eq!(
            json,
            r#"{"type":"disconnected","reason":"room-completed","code":53118,"message":"Room completed"}"#
        );
        assert_eq!(ServerMessage::parse(&json).unwrap(), m);
    }

    #[test]
    fn a_lost_node_is_said_apart_and_only_a_cluster_names_its_node() {
        let lost = ServerMessage::parse(
            r#"{"type":"disconnected","reason":"node-lost","code":53001,"message":"gone"}"#,
        )
        .unwrap();
        assert!(matches!(
            lost,
            ServerMessage::Disconnected {
                reason: DisconnectReason::NodeLost,
                code: Some(53001),
                ..
            }
        ));
        assert_eq!(DisconnectReason::NodeLost.code(), Some(53001));
        let joined = |node: Option<&str>| ServerMessage::Joined {
            version: VERSION,
            session: "s".into(),
            resumed: false,
            room: RoomInfo {
                sid: RoomSid::random(),
                name: "standup".into(),
                recording: false,
            },
            participant: ParticipantInfo {
                sid: ParticipantSid::random(),
                identity: "alice".into(),
                tracks: vec![],
            },
            participants: vec![],
            ice_servers: vec![],
            last_revision: 0,
            session_timeout: None,
            node: node.map(Into::into),
            simulcast: true,
        };
        assert!(!joined(None).to_json().contains("\"node\""));
        let json = joined(Some("node-a")).to_json();
        assert!(json.contains(r#""node":"node-a""#), "{json}");
        assert!(matches!(
            ServerMessage::parse(&json).unwrap(),
            ServerMessage::Joined { node: Some(node), .. } if node == "node-a"
        ));
    }

    #[test]
    fn adaptive_video_messages_read_and_bad_words_are_named() {
        let m = ClientMessage::parse(
            r#"{"type":"set_bandwidth_profile","mode":"collaboration","max_subscription_bitrate":2400000}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::SetBandwidthProfile {
                mode: Some(BandwidthMode::Collaboration),
                max_subscription_bitrate: Some(2_400_000),
                dominant_speaker_priority: None,
                track_switch_off_mode: None,
                max_tracks: None,
            }
        );
        let track = "MT0123456789abcdef0123456789abcdef";
        let m = ClientMessage::parse(&format!(
            r#"{{"type":"set_render_dimensions","track":"{track}","dimensions":{{"width":320,"height":180}}}}"#
        ))
        .unwrap();
        assert!(
            matches!(
                m,
                ClientMessage::SetRenderDimensions {
                    dimensions: Some(Dimensions {
                        width: 320,
                        height: 180
                    }),
                    ..
                }
            ),
            "{m:?}"
        );
        let m = ClientMessage::parse(&format!(
            r#"{{"type":"set_subscribe_priority","track":"{track}","priority":null}}"#
        ))
        .unwrap();
        assert!(matches!(
            m,
            ClientMessage::SetSubscribePriority { priority: None, .. }
        ));
        for (text, word) in [
            (
                format!(
                    r#"{{"type":"set_publish_priority","track":"{track}","priority":"urgent"}}"#
                ),
                "urgent",
            ),
            (
                r#"{"type":"set_bandwidth_profile","mode":"Grid"}"#.to_owned(),
                "Grid",
            ),
            (
                r#"{"type":"set_network_quality","local":1,"remote":-1}"#.to_owned(),
                "-1",
            ),
        ] {
            let err = ClientMessage::parse(&text).unwrap_err();
            assert_eq!(err.code(), 53004);
            assert!(err.to_string().contains(word), "{err}");
        }
        let m = ServerMessage::DominantSpeakerChanged { participant: None };
        assert_eq!(
            m.to_json(),
            r#"{"type":"dominant_speaker_changed","participant":null}"#
        );
        let m = ServerMessage::TrackSwitchedOff {
            track: TrackSid::from_bytes([7; 16]),
            reason: "network-congestion".into(),
        };
        assert_eq!(ServerMessage::parse(&m.to_json()).unwrap(), m);
    }
}

//! RSP, the Room Signaling Protocol: the bodies carried by TCMP `msg`
//! frames (and by the `hello` that opens a socket).
//!
//! ```text
//! client                                              server
//!   │── ice {token} (in hello) ─────────────────────────▶│  verify the token early
//!   │◀──────────────────────────── iced {ice_servers} ───│
//!   │── connect {token, name, participant, offer rev 1,  │  admit; answer; assign MT sids
//!   │           media_signaling, subscribe} ────────────▶│
//!   │◀── connected {sid, session, participant, options,  │  connect() resolves here
//!   │               participants, published, answer} ────│
//!   │◀── update {participants, subscribed, offer rev n} ─│  the server offers too
//!   │── update {answer rev n, participant} ─────────────▶│
//!   │── update {participant rev+1} (publish, mute, …) ──▶│
//!   │── sync {session, token, participant, …} ──────────▶│  on a new socket after a drop
//!   │◀───────────────────────── synced {full state} ─────│
//!   │── disconnect {session} ───────────────────────────▶│
//!   │◀─────────── disconnected {status?} / error {code} ─│  the server ends it
//! ```
//!
//! # Revisions
//!
//! Every piece of state carries a revision, and a receiver ignores anything
//! not newer than what it has (twilio-signaling.md §3.6):
//!
//! * the client's own participant state (`participant.revision`): the
//!   server ignores a revision at or below the last one it applied;
//! * each remote participant's state: the server increments it on every
//!   change, including `connected` ⇄ `reconnecting`, or the client drops it;
//! * `published` and `subscribed`: per client, strictly increasing;
//!   `subscribed` is a full snapshot, `published` is not;
//! * a peer connection's description revision is shared by both sides: an
//!   answer echoes its offer's revision, and a new offer (from either side)
//!   uses the highest revision seen + 1.

use std::collections::BTreeMap;

use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    MAX_CANDIDATES, MAX_PEER_CONNECTIONS, MAX_TEXT_BYTES, MAX_TRACKS, ProtocolError, check_id,
    check_len,
};

/// The RSP version the server sends.
pub const VERSION: u32 = 2;
/// RSP versions accepted in client bodies (3 is what 3.0.0-preview sends;
/// its shapes are unchanged).
pub const ACCEPTED_VERSIONS: [u32; 2] = [2, 3];
/// The version of the `ice` body.
pub const ICE_VERSION: u32 = 1;

// ---- shared pieces -----------------------------------------------------------

/// The kind of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
    Data,
}

/// A track priority (Twilio's Track Priority API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Standard,
    High,
}

/// One peer connection's part of a message: a description, ICE candidates,
/// or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConnection {
    /// Chosen by whoever created the peer connection (the client: a UUID).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice: Option<IceState>,
}

/// A session description or a command about one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    #[serde(rename = "type")]
    pub kind: DescriptionType,
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DescriptionType {
    Offer,
    Answer,
    Rollback,
    /// Close this peer connection.
    Close,
    /// Ask the other side to make an offer.
    CreateOffer,
}

/// Trickled ICE candidates: cumulative for one ufrag, with a revision that
/// increases per message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufrag: Option<String>,
    pub revision: u64,
    #[serde(default)]
    pub candidates: Vec<IceCandidate>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub complete: bool,
}

/// An `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u32>,
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

/// An error about one item (a publication, a subscription).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: u32,
    pub message: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---- client bodies -------------------------------------------------------------

/// What a client sends, in `msg` or as `hello.body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientBody {
    /// Ask for ICE servers (and have the token checked) before connecting.
    Ice(Ice),
    Connect(Box<Connect>),
    Update(Box<Update>),
    /// Resume a session on a new socket.
    Sync(Box<Sync>),
    Disconnect(Disconnect),
}

/// `ice`: the SDK's first body when the app gave no `iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ice {
    pub version: u32,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// Sent by `runPreflight()`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preflight: bool,
}

/// `connect`: join a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    pub version: u32,
    pub token: String,
    /// `ConnectOptions.name`; none means the room of the token's grant (or
    /// a new room).
    #[serde(default)]
    pub name: Option<String>,
    pub participant: LocalParticipantState,
    #[serde(default)]
    pub peer_connections: Vec<PeerConnection>,
    #[serde(default)]
    pub media_signaling: MediaSignalingRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_profile: Option<BandwidthProfile>,
    /// `"acquire"` or `"overrode"`: whether the app gave ICE servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_servers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Publisher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// A client `update`: any of its participant state, descriptions and ICE,
/// bandwidth profile, subscribe rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub version: u32,
    pub session: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<LocalParticipantState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_connections: Option<Vec<PeerConnection>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_profile: Option<BandwidthProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeRules>,
}

/// `sync`: the first body of a new socket after an unclean drop. Carries the
/// client's latest local description per peer connection (often an offer
/// the server already answered: compare revisions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sync {
    pub version: u32,
    pub session: String,
    /// The same token as `connect` (the SDK has no token refresh).
    pub token: String,
    #[serde(default)]
    pub name: Option<String>,
    pub participant: LocalParticipantState,
    #[serde(default)]
    pub peer_connections: Vec<PeerConnection>,
}

/// `disconnect`: leave. A TCMP `bye` and a close with code 1000 follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    pub version: u32,
    pub session: String,
}

/// The client's own participant: always the full track list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalParticipantState {
    pub revision: u64,
    #[serde(default)]
    pub tracks: Vec<LocalTrack>,
    /// `["recordings"]` when the app wants media warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_warnings: Vec<String>,
}

/// One of the client's tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTrack {
    /// The client's id: `a=msid` appdata on its m-line, the label of a data
    /// track's channel.
    pub id: String,
    pub kind: TrackKind,
    pub name: String,
    pub enabled: bool,
    /// The publish priority; absent or null means standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Noise-cancellation vendor, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_processor: Option<String>,
}

/// Which MSP channels the client wants (`{channel: {transports: [...]}}`).
/// Channels it did not ask for must not be announced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaSignalingRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_speaker: Option<Transports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_quality: Option<Transports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_priority: Option<Transports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_switch_off: Option<Transports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_hints: Option<Transports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_hints: Option<Transports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_transcriptions: Option<Transports>,
}

/// The transports a client accepts for a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transports {
    #[serde(default)]
    pub transports: Vec<TransportKind>,
}

/// A transport named in a request: only `data-channel` exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportKind {
    #[serde(rename = "type")]
    pub kind: String,
}

/// An MSP channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    ActiveSpeaker,
    NetworkQuality,
    TrackPriority,
    TrackSwitchOff,
    RenderHints,
    PublisherHints,
    ExtensionTranscriptions,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::ActiveSpeaker,
        Channel::NetworkQuality,
        Channel::TrackPriority,
        Channel::TrackSwitchOff,
        Channel::RenderHints,
        Channel::PublisherHints,
        Channel::ExtensionTranscriptions,
    ];

    /// The channel's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Channel::ActiveSpeaker => "active_speaker",
            Channel::NetworkQuality => "network_quality",
            Channel::TrackPriority => "track_priority",
            Channel::TrackSwitchOff => "track_switch_off",
            Channel::RenderHints => "render_hints",
            Channel::PublisherHints => "publisher_hints",
            Channel::ExtensionTranscriptions => "extension_transcriptions",
        }
    }
}

impl MediaSignalingRequest {
    /// The channels requested over a data channel, in [`Channel::ALL`] order.
    pub fn requested(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| {
                let transports = match c {
                    Channel::ActiveSpeaker => &self.active_speaker,
                    Channel::NetworkQuality => &self.network_quality,
                    Channel::TrackPriority => &self.track_priority,
                    Channel::TrackSwitchOff => &self.track_switch_off,
                    Channel::RenderHints => &self.render_hints,
                    Channel::PublisherHints => &self.publisher_hints,
                    Channel::ExtensionTranscriptions => &self.extension_transcriptions,
                };
                transports
                    .as_ref()
                    .is_some_and(|t| t.transports.iter().any(|t| t.kind == "data-channel"))
            })
            .collect()
    }
}

/// Subscribe rules: the SDK sends `include all` or `exclude all`
/// (`automaticSubscription: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeRules {
    #[serde(default)]
    pub rules: Vec<SubscribeRule>,
    #[serde(default)]
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeRule {
    #[serde(rename = "type")]
    pub rule: RuleType,
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TrackKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    Include,
    Exclude,
}

impl SubscribeRules {
    /// Whether these rules subscribe to everything automatically: the last
    /// `all` rule is `include`. The SDK sends only `include all` or
    /// `exclude all` (`automaticSubscription`), at connect; rules naming a
    /// publisher, track or kind (Twilio's Subscribe Rules REST API, which
    /// Salon does not serve) are not read, and without an `all` rule
    /// nothing is subscribed automatically.
    pub fn automatic(&self) -> bool {
        self.rules
            .iter()
            .rev()
            .find(|r| r.all)
            .is_some_and(|r| r.rule == RuleType::Include)
    }
}

/// The bandwidth profile (`bandwidth_profile` in `connect` and `update`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BandwidthProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoBandwidthProfile>,
}

/// Twilio's `VideoBandwidthProfileOptions` as the SDK sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoBandwidthProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BandwidthMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tracks: Option<u32>,
    /// Bits per second; 0 or absent means no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscription_bandwidth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_dimensions: Option<RenderDimensionsByPriority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_speaker_priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_switch_off: Option<TrackSwitchOffMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BandwidthMode {
    Grid,
    Collaboration,
    Presentation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackSwitchOffMode {
    Detected,
    Predicted,
    Disabled,
}

/// The deprecated per-priority render dimensions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderDimensionsByPriority {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<Dimensions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<Dimensions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<Dimensions>,
}

/// A width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// Who the client is (`connect.publisher`), for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl ClientBody {
    /// Read one client body from its JSON text, enforcing the size limit.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        if text.len() > crate::MAX_MESSAGE_BYTES {
            return Err(ProtocolError::TooLarge { bytes: text.len() });
        }
        let value = serde_json::from_str(text).map_err(ProtocolError::invalid)?;
        Self::from_json(value)
    }

    /// Read one client body from a `msg` frame's (or a `hello`'s) `body`,
    /// checking versions, identifiers and counts.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ProtocolError> {
        let body: ClientBody =
            crate::from_value(value, &["ice", "connect", "update", "sync", "disconnect"])?;
        body.check()?;
        Ok(body)
    }

    /// The `type` name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientBody::Ice(_) => "ice",
            ClientBody::Connect(_) => "connect",
            ClientBody::Update(_) => "update",
            ClientBody::Sync(_) => "sync",
            ClientBody::Disconnect(_) => "disconnect",
        }
    }

    /// The body as JSON (for clients and tests).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), ProtocolError> {
        match self {
            ClientBody::Ice(ice) => {
                if ice.version != ICE_VERSION {
                    return Err(ProtocolError::UnsupportedVersion {
                        what: "ice",
                        version: u64::from(ice.version),
                    });
                }
                Ok(())
            }
            ClientBody::Connect(c) => {
                check_version(c.version)?;
                check_name(c.name.as_deref())?;
                c.participant.check()?;
                check_peer_connections(&c.peer_connections)
            }
            ClientBody::Update(u) => {
                check_version(u.version)?;
                check_id("session", &u.session)?;
                if let Some(p) = &u.participant {
                    p.check()?;
                }
                if let Some(pcs) = &u.peer_connections {
                    check_peer_connections(pcs)?;
                }
                Ok(())
            }
            ClientBody::Sync(s) => {
                check_version(s.version)?;
                check_id("session", &s.session)?;
                check_name(s.name.as_deref())?;
                s.participant.check()?;
                check_peer_connections(&s.peer_connections)
            }
            ClientBody::Disconnect(d) => {
                check_version(d.version)?;
                check_id("session", &d.session)
            }
        }
    }
}

impl LocalParticipantState {
    fn check(&self) -> Result<(), ProtocolError> {
        check_len("participant.tracks", self.tracks.len(), MAX_TRACKS)?;
        check_len("participant.media_warnings", self.media_warnings.len(), 8)?;
        for track in &self.tracks {
            check_id("track id", &track.id)?;
            if track.name.len() > MAX_TEXT_BYTES {
                return Err(ProtocolError::Invalid("track name too long".into()));
            }
        }
        Ok(())
    }
}

fn check_version(version: u32) -> Result<(), ProtocolError> {
    if ACCEPTED_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(ProtocolError::UnsupportedVersion {
            what: "RSP",
            version: u64::from(version),
        })
    }
}

fn check_name(name: Option<&str>) -> Result<(), ProtocolError> {
    if name.is_some_and(|n| n.len() > MAX_TEXT_BYTES) {
        return Err(ProtocolError::Invalid("room name too long".into()));
    }
    Ok(())
}

fn check_peer_connections(pcs: &[PeerConnection]) -> Result<(), ProtocolError> {
    check_len("peer_connections", pcs.len(), MAX_PEER_CONNECTIONS)?;
    for pc in pcs {
        check_id("peer connection id", &pc.id)?;
        if let Some(ice) = &pc.ice {
            check_len("ice.candidates", ice.candidates.len(), MAX_CANDIDATES)?;
        }
        if let Some(d) = &pc.description
            && matches!(d.kind, DescriptionType::Offer | DescriptionType::Answer)
            && d.sdp.is_none()
        {
            return Err(ProtocolError::Invalid(
                "an offer or answer needs its sdp".into(),
            ));
        }
    }
    Ok(())
}

// ---- server bodies -------------------------------------------------------------

/// What the server sends, in `msg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerBody {
    Iced(Iced),
    /// The answer to `connect`: `connect()` resolves on it.
    Connected(RoomState),
    /// The answer to `sync`: the full state again.
    Synced(RoomState),
    Update(ServerUpdate),
    /// The server ended the participant.
    Disconnected(Disconnected),
    /// Fatal: the client disconnects with this code.
    Error(Error),
}

/// `iced`: the ICE servers the client may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iced {
    pub version: u32,
    pub ice_servers: Vec<IceServer>,
}

/// An `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(url) => vec![url],
        OneOrMany::Many(urls) => urls,
    })
}

/// The room as a client sees it on `connected` and `synced`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomState {
    pub version: u32,
    pub sid: RoomSid,
    pub name: String,
    /// Opaque; echoed by the client in `update`, `sync` and `disconnect`.
    pub session: String,
    pub participant: LocalParticipantInfo,
    /// Required: without it `connect()` hangs in the SDK.
    pub options: SessionOptions,
    /// Everyone else in the room.
    pub participants: Vec<RemoteParticipant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_connections: Vec<PeerConnection>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub media_signaling: BTreeMap<Channel, Announcement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

/// The client's own participant, as the server names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalParticipantInfo {
    pub sid: ParticipantSid,
    pub identity: String,
}

/// Session options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOptions {
    /// Seconds the server keeps a participant whose signaling or media
    /// dropped; the client's window for both resumes.
    pub session_timeout: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signaling_region: Option<String>,
}

/// A remote participant's state. The client applies it only if `revision`
/// is higher than the last it saw, and removes a participant only on
/// `state: disconnected` (or by its absence from `synced`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteParticipant {
    pub sid: ParticipantSid,
    pub identity: String,
    pub state: ParticipantState,
    pub revision: u64,
    /// Always present: an absent array throws in the SDK.
    pub tracks: Vec<RemoteTrack>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantState {
    Connected,
    Reconnecting,
    Disconnected,
}

/// A remote participant's track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTrack {
    pub sid: TrackSid,
    pub kind: TrackKind,
    pub name: String,
    pub enabled: bool,
    pub priority: Priority,
}

/// Results for the client's own tracks (not a snapshot: unlisted entries
/// stay as they were).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub revision: u64,
    pub tracks: Vec<PublishedTrack>,
}

/// The result of publishing one local track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTrack {
    /// The client's id for the track.
    pub id: String,
    pub state: PublicationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<TrackSid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicationState {
    Created,
    Ready,
    Failed,
}

impl PublishedTrack {
    /// The track is published as `sid`: `publishTrack()` resolves.
    pub fn ready(id: String, sid: TrackSid) -> Self {
        Self {
            id,
            state: PublicationState::Ready,
            sid: Some(sid),
            error: None,
        }
    }

    /// Publishing failed: `publishTrack()` rejects with `code`.
    pub fn failed(id: String, code: u32, message: String) -> Self {
        Self {
            id,
            state: PublicationState::Failed,
            sid: None,
            error: Some(ErrorInfo { code, message }),
        }
    }
}

/// The tracks the client receives: a full snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    pub revision: u64,
    pub tracks: Vec<SubscribedTrack>,
}

/// One subscription: `id` is what the client finds as `a=msid` appdata
/// (media) or as a data channel's label (data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedTrack {
    pub sid: TrackSid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// An MSP channel the server created: `{transport: {type, label}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub transport: AnnouncedTransport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedTransport {
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
}

impl Announcement {
    /// A data channel labelled `label`.
    pub fn data_channel(label: String) -> Self {
        Self {
            transport: AnnouncedTransport {
                kind: "data-channel".into(),
                label,
            },
        }
    }
}

/// Whether the room is being recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub revision: u64,
    pub is_recording: bool,
}

/// A server `update`: any subset of the room's changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUpdate {
    pub version: u32,
    /// Only the participants that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<RemoteParticipant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_connections: Vec<PeerConnection>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub media_signaling: BTreeMap<Channel, Announcement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

impl ServerUpdate {
    /// An empty update, to fill in.
    pub fn new() -> Self {
        Self {
            version: VERSION,
            ..Self::default()
        }
    }

    /// Whether it says nothing.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
            && self.published.is_none()
            && self.subscribed.is_none()
            && self.peer_connections.is_empty()
            && self.media_signaling.is_empty()
            && self.recording.is_none()
    }
}

/// `disconnected`: `status: completed` means the room ended (53118 in the
/// SDK); no status is a quiet end (a REST kick, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DisconnectStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisconnectStatus {
    Completed,
}

/// `error`: the client disconnects and reports `code` (for codes it knows,
/// its own message replaces `message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub version: u32,
    pub code: u32,
    pub message: String,
}

impl ServerBody {
    /// An `error` body.
    pub fn error(code: u32, message: impl Into<String>) -> Self {
        let mut message = message.into();
        crate::truncate(&mut message, MAX_TEXT_BYTES);
        ServerBody::Error(Error {
            version: VERSION,
            code,
            message,
        })
    }

    /// The body as JSON text (inside a `msg` use [`crate::tcmp::ServerFrame::msg`]).
    pub fn to_json(&self) -> String {
        crate::to_json(self)
    }

    /// The `type` name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerBody::Iced(_) => "iced",
            ServerBody::Connected(_) => "connected",
            ServerBody::Synced(_) => "synced",
            ServerBody::Update(_) => "update",
            ServerBody::Disconnected(_) => "disconnected",
            ServerBody::Error(_) => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connect_json() -> serde_json::Value {
        json!({
            "type": "connect", "version": 2, "token": "eyJ", "name": "standup",
            "participant": {"revision": 3, "tracks": [
                {"id": "0b6e-mic", "kind": "audio", "name": "mic", "enabled": true, "priority": "standard"},
                {"id": "77c1-cam", "kind": "video", "name": "camera", "enabled": true, "priority": "high"}]},
            "peer_connections": [{"id": "5f0c", "description": {"type": "offer", "revision": 1, "sdp": "v=0\r\n"}}],
            "media_signaling": {"active_speaker": {"transports": [{"type": "data-channel"}]},
                                "network_quality": {"transports": [{"type": "data-channel"}]}},
            "subscribe": {"rules": [{"type": "include", "all": true}], "revision": 1},
            "bandwidth_profile": {"video": {"mode": "collaboration", "max_subscription_bandwidth": 2500000,
                                            "track_switch_off": "predicted", "active_speaker_priority": "high"}},
            "ice_servers": "overrode", "format": "unified",
            "publisher": {"name": "twilio-video.js", "sdk_version": "2.36.0", "user_agent": "Mozilla/5.0"},
            "something_new": {"the": "SDK adds fields over time"}
        })
    }

    #[test]
    fn the_sdks_connect_reads() {
        let ClientBody::Connect(c) = ClientBody::from_json(connect_json()).unwrap() else {
            panic!("not a connect");
        };
        assert_eq!(c.name.as_deref(), Some("standup"));
        assert_eq!(c.participant.revision, 3);
        assert_eq!(c.participant.tracks[1].priority, Some(Priority::High));
        assert_eq!(
            c.media_signaling.requested(),
            [Channel::ActiveSpeaker, Channel::NetworkQuality]
        );
        assert!(c.subscribe.unwrap().automatic());
        let video = c.bandwidth_profile.unwrap().video.unwrap();
        assert_eq!(video.mode, Some(BandwidthMode::Collaboration));
        assert_eq!(video.max_subscription_bandwidth, Some(2_500_000));
        assert_eq!(video.track_switch_off, Some(TrackSwitchOffMode::Predicted));
        let pc = &c.peer_connections[0];
        assert_eq!(
            pc.description.as_ref().unwrap().kind,
            DescriptionType::Offer
        );
    }

    #[test]
    fn a_connect_without_a_name_means_the_tokens_room() {
        let mut value = connect_json();
        value["name"] = serde_json::Value::Null;
        let ClientBody::Connect(c) = ClientBody::from_json(value).unwrap() else {
            panic!("not a connect");
        };
        assert_eq!(c.name, None);
    }

    #[test]
    fn rsp_versions_2_and_3_are_accepted_others_not() {
        let mut value = connect_json();
        value["version"] = json!(3);
        assert!(ClientBody::from_json(value.clone()).is_ok());
        value["version"] = json!(1);
        assert!(matches!(
            ClientBody::from_json(value),
            Err(ProtocolError::UnsupportedVersion { what: "RSP", .. })
        ));
    }

    #[test]
    fn bad_bodies_are_refused_with_53004() {
        let mut cases = Vec::new();
        let mut v = connect_json();
        v["participant"]["tracks"][0]["priority"] = json!("urgent");
        cases.push(v);
        let mut v = connect_json();
        v["participant"]["tracks"][0]["id"] = json!("has space");
        cases.push(v);
        let mut v = connect_json();
        v["peer_connections"][0]["description"] = json!({"type": "offer", "revision": 1});
        cases.push(v);
        let mut v = connect_json();
        v["participant"]["revision"] = json!(-1);
        cases.push(v);
        let mut v = connect_json();
        v["bandwidth_profile"]["video"]["mode"] = json!("theatre");
        cases.push(v);
        let mut v = connect_json();
        let tracks: Vec<_> = (0..=MAX_TRACKS)
            .map(|i| json!({"id": format!("t{i}"), "kind": "data", "name": format!("t{i}"), "enabled": true}))
            .collect();
        v["participant"]["tracks"] = json!(tracks);
        cases.push(v);
        cases.push(json!({"type": "update", "version": 2}));
        cases.push(json!({"type": "sync", "version": 2, "session": "s"}));
        cases.push(json!({"type": "ice", "version": 2, "token": "t"}));
        cases.push(json!("connect"));
        for value in cases {
            let err = ClientBody::from_json(value.clone()).unwrap_err();
            assert_eq!(err.code(), 53004, "{value}: {err}");
        }
        assert_eq!(
            ClientBody::from_json(json!({"type": "dance"})),
            Err(ProtocolError::UnknownType("dance".into()))
        );
    }

    #[test]
    fn an_update_may_carry_only_ice() {
        let value = json!({"type": "update", "version": 2, "session": "abc",
            "peer_connections": [{"id": "5f0c", "ice": {"ufrag": "u", "revision": 2,
                "candidates": [{"candidate": "candidate:1 1 udp 1 10.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}],
                "complete": true}}]});
        let ClientBody::Update(u) = ClientBody::from_json(value).unwrap() else {
            panic!("not an update");
        };
        let ice = u.peer_connections.unwrap()[0].ice.clone().unwrap();
        assert!(ice.complete);
        assert_eq!(ice.candidates[0].sdp_mid.as_deref(), Some("0"));
    }

    #[test]
    fn the_smallest_connected_has_what_the_sdk_needs() {
        let body = ServerBody::Connected(RoomState {
            version: VERSION,
            sid: RoomSid::from_bytes([1; 16]),
            name: "standup".into(),
            session: "c4b1".into(),
            participant: LocalParticipantInfo {
                sid: ParticipantSid::from_bytes([2; 16]),
                identity: "alice".into(),
            },
            options: SessionOptions {
                session_timeout: 30,
                media_region: None,
                signaling_region: None,
            },
            participants: Vec::new(),
            published: Some(Published {
                revision: 1,
                tracks: vec![PublishedTrack::ready(
                    "0b6e-mic".into(),
                    TrackSid::from_bytes([3; 16]),
                )],
            }),
            subscribed: None,
            peer_connections: Vec::new(),
            media_signaling: BTreeMap::from([(
                Channel::ActiveSpeaker,
                Announcement::data_channel("as-1".into()),
            )]),
            recording: None,
        });
        let json: serde_json::Value = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(json["type"], "connected");
        assert_eq!(json["options"]["session_timeout"], 30);
        assert_eq!(json["participant"]["identity"], "alice");
        assert_eq!(json["published"]["tracks"][0]["state"], "ready");
        assert_eq!(
            json["media_signaling"]["active_speaker"]["transport"]["label"],
            "as-1"
        );
        assert!(json.get("subscribed").is_none());
    }

    #[test]
    fn errors_and_disconnections_print_as_the_sdk_reads_them() {
        assert_eq!(
            ServerBody::error(53205, "Duplicate identity").to_json(),
            r#"{"type":"error","version":2,"code":53205,"message":"Duplicate identity"}"#
        );
        let done = ServerBody::Disconnected(Disconnected {
            version: VERSION,
            status: Some(DisconnectStatus::Completed),
        });
        assert_eq!(
            done.to_json(),
            r#"{"type":"disconnected","version":2,"status":"completed"}"#
        );
    }

    #[test]
    fn ice_servers_accept_one_url_or_many() {
        let one: IceServer = serde_json::from_str(r#"{"urls":"stun:a:3478"}"#).unwrap();
        let many: IceServer =
            serde_json::from_str(r#"{"urls":["turn:a:3478"],"username":"u","credential":"c"}"#)
                .unwrap();
        assert_eq!(one.urls, ["stun:a:3478"]);
        assert_eq!(many.username.as_deref(), Some("u"));
    }
}

//! What the core reports after it changes state.
//!
//! Events are self-contained: each carries what a consumer needs to record or
//! announce it (identities, names, kinds), because by the time an event is
//! read the participant or track it names may already be gone from the core.

use std::time::Duration;

use salon_sid::{ParticipantSid, RoomSid, TrackSid};

use crate::settings::RoomSettings;

/// The kind of media a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
    Data,
}

impl TrackKind {
    /// The name used on the wire: `audio`, `video`, `data`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
            TrackKind::Data => "data",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "audio" => Some(TrackKind::Audio),
            "video" => Some(TrackKind::Video),
            "data" => Some(TrackKind::Data),
            _ => None,
        }
    }
}

/// Why a room stopped being in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Someone asked (REST `Status=completed`).
    Completed,
    /// Everyone left and nobody came back within `empty_room_timeout`.
    EmptyRoomTimeout,
    /// Nobody ever joined within `unused_room_timeout`.
    UnusedRoomTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The node holding the room stopped renewing its lease (several
    /// nodes): another node ended the room as `failed`.
    NodeFailed,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::EmptyRoomTimeout => "empty-room-timeout",
            EndReason::UnusedRoomTimeout => "unused-room-timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::NodeFailed => "node-failed",
        }
    }
}

/// Why a participant left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The participant asked to leave or closed its connection.
    Left,
    /// Another connection with the same identity joined the room.
    DuplicateIdentity,
    /// The room was completed while the participant was in it.
    RoomCompleted,
    /// Removed through the REST API (`Status=disconnected`).
    Kicked,
    /// The room's `max_participant_duration` ran out.
    MaxDurationExceeded,
    /// The participant's network went silent (no ICE consent, no packets).
    MediaTimeout,
    /// The participant's connection failed (protocol error, stalled socket,
    /// crashed media session).
    Failed,
    /// The server is shutting down.
    Shutdown,
}

impl DisconnectReason {
    /// The Twilio error code a client is told, if the disconnection is an
    /// error from the client's point of view.
    pub const fn code(self) -> Option<u32> {
        match self {
            DisconnectReason::Left | DisconnectReason::Kicked => None,
            DisconnectReason::DuplicateIdentity => Some(53205),
            DisconnectReason::RoomCompleted | DisconnectReason::Shutdown => Some(53118),
            DisconnectReason::MaxDurationExceeded => Some(53216),
            DisconnectReason::MediaTimeout => Some(53405),
            DisconnectReason::Failed => Some(53001),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Left => "left",
            DisconnectReason::DuplicateIdentity => "duplicate-identity",
            DisconnectReason::RoomCompleted => "room-completed",
            DisconnectReason::Kicked => "kicked",
            DisconnectReason::MaxDurationExceeded => "max-duration-exceeded",
            DisconnectReason::MediaTimeout => "media-timeout",
            DisconnectReason::Failed => "failed",
            DisconnectReason::Shutdown => "shutdown",
        }
    }
}

/// A change of state, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A room is now in progress.
    RoomCreated {
        room: RoomSid,
        name: String,
        settings: RoomSettings,
    },
    /// A room is no longer in progress. Every participant it had was
    /// disconnected (with its own event) before this one.
    RoomEnded { room: RoomSid, reason: EndReason },
    /// A participant joined a room.
    ParticipantConnected {
        room: RoomSid,
        participant: ParticipantSid,
        identity: String,
    },
    /// A participant left. This implies, without further events, that every
    /// track it published is unpublished, every subscription it held ended,
    /// and every subscription others held to its tracks ended.
    ParticipantDisconnected {
        room: RoomSid,
        participant: ParticipantSid,
        identity: String,
        reason: DisconnectReason,
    },
    /// A participant published a track.
    TrackPublished {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        name: String,
        kind: TrackKind,
        enabled: bool,
    },
    /// A participant stopped publishing a track. Subscriptions to it ended
    /// first, each with its own [`Event::Unsubscribed`].
    TrackUnpublished {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
    },
    /// A publisher enabled or disabled (muted) a track.
    TrackSwitched {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        enabled: bool,
    },
    /// `subscriber` now receives `track`, published by `publisher`.
    Subscribed {
        room: RoomSid,
        subscriber: ParticipantSid,
        publisher: ParticipantSid,
        track: TrackSid,
    },
    /// The room's dominant speaker changed (the media server decides, from
    /// audio levels); `None` when the last one left.
    DominantSpeakerChanged {
        room: RoomSid,
        participant: Option<ParticipantSid>,
    },
    /// A participant's network quality (the media server's measure): its
    /// level (0–5) or a path's level changed, or the measurements behind
    /// them were refreshed.
    NetworkQualityChanged {
        room: RoomSid,
        participant: ParticipantSid,
        level: u8,
        detail: Box<NetworkQualityDetail>,
    },
    /// The media server switched a video track `subscriber` receives off
    /// (`off`: Twilio's `switchOffReason`) or on again (`None`).
    SubscriptionSwitched {
        room: RoomSid,
        subscriber: ParticipantSid,
        track: TrackSid,
        off: Option<&'static str>,
    },
    /// The media server decided which simulcast layers of `participant`'s
    /// video `track` anyone receives (publisher layer pausing): one entry
    /// per layer in the order of the publisher's offer, with its RID if it
    /// has one, and whether to send it.
    PublisherLayers {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        layers: Vec<(Option<String>, bool)>,
    },
    /// A publisher set a track's priority (`low`, `standard`, `high`).
    TrackPriorityChanged {
        room: RoomSid,
        participant: ParticipantSid,
        track: TrackSid,
        priority: &'static str,
    },
    /// `subscriber` no longer receives `track`.
    Unsubscribed {
        room: RoomSid,
        subscriber: ParticipantSid,
        publisher: ParticipantSid,
        track: TrackSid,
    },
    /// Recording started (some track of the room is recorded) or stopped
    /// (none is).
    RecordingChanged { room: RoomSid, recording: bool },
}

impl Event {
    /// The room the event happened in.
    pub fn room(&self) -> RoomSid {
        match self {
            Event::RoomCreated { room, .. }
            | Event::RoomEnded { room, .. }
            | Event::ParticipantConnected { room, .. }
            | Event::ParticipantDisconnected { room, .. }
            | Event::TrackPublished { room, .. }
            | Event::TrackUnpublished { room, .. }
            | Event::TrackSwitched { room, .. }
            | Event::Subscribed { room, .. }
            | Event::RecordingChanged { room, .. }
            | Event::DominantSpeakerChanged { room, .. }
            | Event::NetworkQualityChanged { room, .. }
            | Event::SubscriptionSwitched { room, .. }
            | Event::PublisherLayers { room, .. }
            | Event::TrackPriorityChanged { room, .. }
            | Event::Unsubscribed { room, .. } => *room,
        }
    }
}

/// What twilio-video's `NetworkQualityStats` shows besides the level, as
/// the media server measured it. The core only carries it; each session
/// shows as much of it as its client asked for (its verbosity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkQualityDetail {
    pub audio: Option<MediaQuality>,
    pub video: Option<MediaQuality>,
}

/// The quality of one kind of media: Twilio's `NetworkQualityAudioStats`
/// and `NetworkQualityVideoStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaQuality {
    /// 0–5, of what the participant publishes (5 when nothing).
    pub send: u8,
    /// 0–5, of what it receives.
    pub recv: u8,
    /// The measurements behind `send` and `recv`, when measured.
    pub send_stats: Option<PathQuality>,
    pub recv_stats: Option<PathQuality>,
}

/// One direction's measurements over the last interval and the level each
/// alone scores: Twilio's `NetworkQualitySendOrRecvStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathQuality {
    /// Bits per second carried.
    pub bandwidth_actual: Option<u64>,
    /// Bits per second the path is estimated to carry.
    pub bandwidth_available: Option<u64>,
    pub bandwidth_level: Option<u8>,
    /// Parts per million lost.
    pub fraction_lost_ppm: Option<u32>,
    pub fraction_lost_level: Option<u8>,
    pub jitter: Option<Duration>,
    pub rtt: Option<Duration>,
    pub latency_level: Option<u8>,
}

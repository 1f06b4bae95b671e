//! What a room is configured to be: its type, limits and timeouts.
//!
//! A creator asks with a [`RoomRequest`] (every field optional, as in Twilio's
//! `POST /v1/Rooms`); [`Config::settle`] checks every value against Twilio's
//! ranges and fills Twilio's defaults, giving [`RoomSettings`] that the rest of
//! the core can trust.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::RoomError;
use crate::names;

/// Twilio's room types. Salon forwards media the same way for all of them;
/// they differ in how many participants they admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoomType {
    /// Two participants.
    Go,
    /// Up to ten participants (Twilio's mesh rooms; Salon still routes via the SFU).
    PeerToPeer,
    /// Up to four participants.
    GroupSmall,
    /// Up to 50 participants by default; the operator may raise the ceiling.
    #[default]
    Group,
}

impl RoomType {
    /// The name used on the wire: `go`, `peer-to-peer`, `group-small`, `group`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RoomType::Go => "go",
            RoomType::PeerToPeer => "peer-to-peer",
            RoomType::GroupSmall => "group-small",
            RoomType::Group => "group",
        }
    }
}

impl fmt::Display for RoomType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RoomType {
    type Err = RoomError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "go" => Ok(RoomType::Go),
            "peer-to-peer" => Ok(RoomType::PeerToPeer),
            "group-small" => Ok(RoomType::GroupSmall),
            "group" => Ok(RoomType::Group),
            other => Err(RoomError::InvalidType(names::excerpt(other))),
        }
    }
}

/// Video codecs a room may be restricted to (`VideoCodecs` in Twilio's API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    Vp8,
    H264,
}

impl VideoCodec {
    /// The name used on the wire: `VP8` or `H264`.
    pub const fn as_str(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H264",
        }
    }
}

impl FromStr for VideoCodec {
    type Err = RoomError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "VP8" => Ok(VideoCodec::Vp8),
            "H264" => Ok(VideoCodec::H264),
            other => Err(RoomError::InvalidVideoCodec(names::excerpt(other))),
        }
    }
}

/// HTTP method for status callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallbackMethod {
    Get,
    #[default]
    Post,
}

impl CallbackMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            CallbackMethod::Get => "GET",
            CallbackMethod::Post => "POST",
        }
    }
}

/// Where room events are reported, and how. The URL is checked by the caller
/// (it is a wire-level concern); the core only carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub url: String,
    pub method: CallbackMethod,
}

/// What a creator asks for. `None` means "Twilio's default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomRequest {
    /// Name clients use to join; defaults to the room's SID. Empty means absent.
    pub unique_name: Option<String>,
    pub room_type: Option<RoomType>,
    pub max_participants: Option<u32>,
    pub max_participant_duration: Option<Duration>,
    pub empty_room_timeout: Option<Duration>,
    pub unused_room_timeout: Option<Duration>,
    pub status_callback: Option<StatusCallback>,
    pub video_codecs: Option<Vec<VideoCodec>>,
    pub audio_only: Option<bool>,
    pub record_participants_on_connect: Option<bool>,
    pub media_region: Option<String>,
}

/// A room's settled configuration: every value in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    pub room_type: RoomType,
    pub max_participants: u32,
    pub max_participant_duration: Duration,
    pub empty_room_timeout: Duration,
    pub unused_room_timeout: Duration,
    pub status_callback: Option<StatusCallback>,
    pub video_codecs: Vec<VideoCodec>,
    pub audio_only: bool,
    pub record_participants_on_connect: bool,
    pub media_region: String,
}

/// Twilio's bounds, kept in one place so docs and code agree.
pub mod limits {
    use std::time::Duration;

    /// Default `MaxParticipantDuration`: four hours.
    pub const DEFAULT_MAX_PARTICIPANT_DURATION: Duration = Duration::from_secs(14_400);
    /// Shortest allowed `MaxParticipantDuration`: ten minutes.
    pub const MIN_MAX_PARTICIPANT_DURATION: Duration = Duration::from_secs(600);
    /// Longest allowed `MaxParticipantDuration`: one day.
    pub const MAX_MAX_PARTICIPANT_DURATION: Duration = Duration::from_secs(86_400);
    /// Default empty- and unused-room timeout: five minutes.
    pub const DEFAULT_ROOM_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    /// Empty- and unused-room timeouts are whole minutes from 1 to 60.
    pub const MIN_ROOM_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_ROOM_TIMEOUT: Duration = Duration::from_secs(60 * 60);
    /// Longest room name, participant identity or track name, in characters.
    pub const MAX_NAME_CHARS: usize = 128;
    /// Default ceiling of a `group` room.
    pub const DEFAULT_GROUP_MAX_PARTICIPANTS: u32 = 50;
}

/// How the operator has set up this server's rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most participants a `group` room may admit (Twilio: 50).
    pub group_max_participants: u32,
    /// Whether connecting to a name with no room in progress creates one.
    /// When off, such a connection fails with 53106.
    pub ad_hoc_rooms: bool,
    /// The `media_region` reported for rooms that do not ask for one.
    pub media_region: String,
    /// Where rooms created ad hoc (by a connection, not the REST API) send
    /// their status callbacks, like the default in Twilio's console.
    pub ad_hoc_status_callback: Option<StatusCallback>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group_max_participants: limits::DEFAULT_GROUP_MAX_PARTICIPANTS,
            ad_hoc_rooms: true,
            media_region: "local".to_owned(),
            ad_hoc_status_callback: None,
        }
    }
}

impl Config {
    /// The most participants a room of `room_type` can ever admit here.
    pub fn participant_ceiling(&self, room_type: RoomType) -> u32 {
        match room_type {
            RoomType::Go => 2,
            RoomType::PeerToPeer => 10,
            RoomType::GroupSmall => 4,
            RoomType::Group => self.group_max_participants,
        }
    }

    /// Check every value of `request` and fill in the defaults.
    pub fn settle(&self, request: &RoomRequest) -> Result<RoomSettings, RoomError> {
        let room_type = request.room_type.unwrap_or_default();
        let ceiling = self.participant_ceiling(room_type);
        let max_participants = match request.max_participants {
            None => ceiling,
            Some(n) if (1..=ceiling).contains(&n) => n,
            Some(n) => {
                return Err(RoomError::MaxParticipantsOutOfRange {
                    requested: n,
                    ceiling,
                });
            }
        };
        let max_participant_duration = in_range(
            "MaxParticipantDuration",
            request.max_participant_duration,
            limits::DEFAULT_MAX_PARTICIPANT_DURATION,
            limits::MIN_MAX_PARTICIPANT_DURATION..=limits::MAX_MAX_PARTICIPANT_DURATION,
        )?;
        let empty_room_timeout = in_range(
            "EmptyRoomTimeout",
            request.empty_room_timeout,
            limits::DEFAULT_ROOM_TIMEOUT,
            limits::MIN_ROOM_TIMEOUT..=limits::MAX_ROOM_TIMEOUT,
        )?;
        let unused_room_timeout = in_range(
            "UnusedRoomTimeout",
            request.unused_room_timeout,
            limits::DEFAULT_ROOM_TIMEOUT,
            limits::MIN_ROOM_TIMEOUT..=limits::MAX_ROOM_TIMEOUT,
        )?;
        let mut video_codecs = request.video_codecs.clone().unwrap_or_default();
        video_codecs.dedup();
        Ok(RoomSettings {
            room_type,
            max_participants,
            max_participant_duration,
            empty_room_timeout,
            unused_room_timeout,
            status_callback: request.status_callback.clone(),
            video_codecs,
            audio_only: request.audio_only.unwrap_or(false),
            record_participants_on_connect: request.record_participants_on_connect.unwrap_or(false),
            media_region: request
                .media_region
                .clone()
                .unwrap_or_else(|| self.media_region.clone()),
        })
    }
}

fn in_range(
    parameter: &'static str,
    requested: Option<Duration>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
) -> Result<Duration, RoomError> {
    match requested {
        None => Ok(default),
        Some(d) if range.contains(&d) => Ok(d),
        Some(d) => Err(RoomError::TimeoutOutOfRange {
            parameter,
            requested_secs: d.as_secs(),
            min_secs: range.start().as_secs(),
            max_secs: range.end().as_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_twilio() {
        let s = Config::default().settle(&RoomRequest::default()).unwrap();
        assert_eq!(s.room_type, RoomType::Group);
        assert_eq!(s.max_participants, 50);
        assert_eq!(s.max_participant_duration, Duration::from_secs(14_400));
        assert_eq!(s.empty_room_timeout, Duration::from_secs(300));
        assert_eq!(s.unused_room_timeout, Duration::from_secs(300));
        assert!(!s.audio_only);
    }

    #[test]
    fn each_type_caps_its_participants() {
        let config = Config {
            group_max_participants: 100,
            ..Config::default()
        };
        for (t, cap) in [
            (RoomType::Go, 2),
            (RoomType::PeerToPeer, 10),
            (RoomType::GroupSmall, 4),
            (RoomType::Group, 100),
        ] {
            let ok = RoomRequest {
                room_type: Some(t),
                max_participants: Some(cap),
                ..Default::default()
            };
            assert_eq!(config.settle(&ok).unwrap().max_participants, cap);
            let over = RoomRequest {
                max_participants: Some(cap + 1),
                ..ok.clone()
            };
            assert_eq!(config.settle(&over).unwrap_err().code(), 53107);
            let zero = RoomRequest {
                max_participants: Some(0),
                ..ok
            };
            assert_eq!(config.settle(&zero).unwrap_err().code(), 53107);
        }
    }

    #[test]
    fn timeouts_out_of_range_are_53109() {
        let config = Config::default();
        let cases = [
            RoomRequest {
                empty_room_timeout: Some(Duration::from_secs(59)),
                ..Default::default()
            },
            RoomRequest {
                unused_room_timeout: Some(Duration::from_secs(3601)),
                ..Default::default()
            },
            RoomRequest {
                max_participant_duration: Some(Duration::from_secs(599)),
                ..Default::default()
            },
            RoomRequest {
                max_participant_duration: Some(Duration::from_secs(86_401)),
                ..Default::default()
            },
        ];
        for request in cases {
            assert_eq!(
                config.settle(&request).unwrap_err().code(),
                53109,
                "{request:?}"
            );
        }
        let edges = RoomRequest {
            empty_room_timeout: Some(Duration::from_secs(60)),
            unused_room_timeout: Some(Duration::from_secs(3600)),
            max_participant_duration: Some(Duration::from_secs(600)),
            ..Default::default()
        };
        assert!(config.settle(&edges).is_ok());
    }

    #[test]
    fn wire_names_round_trip() {
        for t in [
            RoomType::Go,
            RoomType::PeerToPeer,
            RoomType::GroupSmall,
            RoomType::Group,
        ] {
            assert_eq!(t.as_str().parse::<RoomType>().unwrap(), t);
        }
        assert_eq!("small-group".parse::<RoomType>().unwrap_err().code(), 53108);
        assert_eq!("VP9".parse::<VideoCodec>().unwrap_err().code(), 20001);
    }
}

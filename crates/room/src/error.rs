//! Why the room core refused an input, with Twilio's numeric code for each.

use salon_sid::{ParticipantSid, RoomSid, TrackSid};

use crate::names::NameProblem;

/// A refused operation. Nothing changed in the core when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("Room name is invalid: it is empty or names another room's SID")]
    RoomNameInvalid,
    #[error("Room name is too long: at most 128 characters")]
    RoomNameTooLong,
    #[error("Room name contains invalid characters: control characters are not allowed")]
    RoomNameInvalidCharacters,
    #[error("Room contains too many Participants: the limit is {max_participants}")]
    RoomFull {
        room: RoomSid,
        max_participants: u32,
    },
    #[error("Room not found: {0}")]
    RoomNotFound(String),
    #[error(
        "MaxParticipants is out of range: {requested} is not between 1 and {ceiling} for this room type"
    )]
    MaxParticipantsOutOfRange { requested: u32, ceiling: u32 },
    #[error("RoomType is not valid: '{0}' is not one of go, peer-to-peer, group-small, group")]
    InvalidType(String),
    #[error(
        "Timeout is out of range: {parameter} of {requested_secs} s is not between {min_secs} s and {max_secs} s"
    )]
    TimeoutOutOfRange {
        parameter: &'static str,
        requested_secs: u64,
        min_secs: u64,
        max_secs: u64,
    },
    #[error("Room exists: a room named '{0}' is already in progress")]
    RoomExists(String),
    #[error("Invalid parameter VideoCodecs: '{0}' is not one of VP8, H264")]
    InvalidVideoCodec(String),
    #[error("Participant identity is invalid: it is empty")]
    IdentityInvalid,
    #[error("Participant identity is too long: at most 128 characters")]
    IdentityTooLong,
    #[error("Participant identity contains invalid characters: control characters are not allowed")]
    IdentityInvalidCharacters,
    #[error("Participant not found: {0}")]
    ParticipantNotFound(ParticipantSid),
    #[error("Unable to connect to Room: participant {0} is already connected")]
    AlreadyConnected(ParticipantSid),
    #[error("Track is invalid: {0} is not a track of this participant's room")]
    TrackNotFound(TrackSid),
    #[error("Track is invalid: {0} is already published")]
    TrackExists(TrackSid),
    #[error("Track name is invalid: it is empty")]
    TrackNameInvalid,
    #[error("Track name is too long: at most 128 characters")]
    TrackNameTooLong,
    #[error("Track name contains invalid characters: control characters are not allowed")]
    TrackNameInvalidCharacters,
    #[error("Track name is duplicated: this participant already publishes a track named '{0}'")]
    TrackNameDuplicated(String),
}

impl RoomError {
    /// Twilio's numeric code for this error.
    pub fn code(&self) -> u32 {
        use RoomError::*;
        match self {
            RoomNameInvalid => 53100,
            RoomNameTooLong => 53101,
            RoomNameInvalidCharacters => 53102,
            AlreadyConnected(_) => 53104,
            RoomFull { .. } => 53105,
            RoomNotFound(_) => 53106,
            MaxParticipantsOutOfRange { .. } => 53107,
            InvalidType(_) => 53108,
            TimeoutOutOfRange { .. } => 53109,
            RoomExists(_) => 53113,
            // Twilio has no room-specific code for a bad codec name.
            InvalidVideoCodec(_) => 20001,
            IdentityInvalid => 53200,
            IdentityTooLong => 53201,
            IdentityInvalidCharacters => 53202,
            ParticipantNotFound(_) => 53204,
            TrackNotFound(_) | TrackExists(_) => 53300,
            TrackNameInvalid => 53301,
            TrackNameTooLong => 53302,
            TrackNameInvalidCharacters => 53303,
            TrackNameDuplicated(_) => 53304,
        }
    }

    pub(crate) fn room_name(problem: NameProblem) -> Self {
        match problem {
            NameProblem::Empty => RoomError::RoomNameInvalid,
            NameProblem::TooLong => RoomError::RoomNameTooLong,
            NameProblem::ControlCharacter => RoomError::RoomNameInvalidCharacters,
        }
    }

    pub(crate) fn identity(problem: NameProblem) -> Self {
        match problem {
            NameProblem::Empty => RoomError::IdentityInvalid,
            NameProblem::TooLong => RoomError::IdentityTooLong,
            NameProblem::ControlCharacter => RoomError::IdentityInvalidCharacters,
        }
    }

    pub(crate) fn track_name(problem: NameProblem) -> Self {
        match problem {
            NameProblem::Empty => RoomError::TrackNameInvalid,
            NameProblem::TooLong => RoomError::TrackNameTooLong,
            NameProblem::ControlCharacter => RoomError::TrackNameInvalidCharacters,
        }
    }
}

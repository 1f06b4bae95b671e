//! Errors as values with Twilio codes.
//!
//! Everything that can go wrong in the client becomes one [`ClientError`]: a
//! Twilio error code and a message. Codes the server sends (a refused token,
//! a full room, a duplicate identity) are passed through unchanged; failures
//! the client notices itself get the Twilio code that describes them from
//! the client's side (see [`codes`]).

use std::fmt;

/// The codes a [`ClientError`] carries.
///
/// The server's codes are Twilio's (`20101`–`20107` for tokens, `53105` room
/// full, `53118` room completed, `53205` duplicate identity, …) and arrive
/// unchanged. The constants below are the ones the client itself assigns.
pub mod codes {
    pub use salon_signal::codes::*;

    /// The client could not apply the server's answer (Twilio 53402,
    /// "Client is unable to apply a remote media description").
    pub const REMOTE_DESCRIPTION_REJECTED: u32 = 53402;

    /// The track named does not exist or cannot do what was asked (Twilio
    /// 53300, "Track is invalid").
    pub const TRACK_INVALID: u32 = 53300;

    /// Two tracks of one participant have the same name (Twilio 53304).
    pub const TRACK_NAME_DUPLICATED: u32 = 53304;

    /// Not a Twilio code: a local wait ([`Client::wait_for`]) ran out of time
    /// before the event it waited for arrived.
    ///
    /// [`Client::wait_for`]: crate::Client::wait_for
    pub const WAIT_TIMEOUT: u32 = 0;
}

/// A failure with its Twilio error code.
///
/// ```
/// use salon_client::{ClientError, codes};
/// let err = ClientError::new(codes::SIGNALING_ERROR, "connection refused");
/// assert_eq!(err.to_string(), "53000: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// Twilio's error code (or [`codes::WAIT_TIMEOUT`]).
    pub code: u32,
    /// What happened, in words.
    pub message: String,
}

impl ClientError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A signaling failure (53000).
    pub(crate) fn signaling(message: impl Into<String>) -> Self {
        Self::new(codes::SIGNALING_ERROR, message)
    }

    /// The signaling connection went away (53001).
    pub(crate) fn signaling_lost(message: impl Into<String>) -> Self {
        Self::new(codes::SIGNALING_DISCONNECTED, message)
    }

    /// A media failure (53405).
    pub(crate) fn media(message: impl Into<String>) -> Self {
        Self::new(codes::MEDIA_FAILED, message)
    }

    /// Whether this is a local wait that ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.code == codes::WAIT_TIMEOUT
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ClientError {}

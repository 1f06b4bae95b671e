//! The signaling protocol of the official `twilio-video` SDK, as Salon's
//! `/signaling` WebSocket speaks it: message types, limits and parsing.
//!
//! The SDK talks to its server in three layers over one WebSocket, each a
//! module here:
//!
//! ```text
//!  WebSocket text frame ── tcmp: hello / welcome / msg / heartbeat / bye
//!                            └─ msg.body ── rsp: ice / connect / update / sync / disconnect (client)
//!                                                 iced / connected / update / synced / disconnected / error (server)
//!  data channels ───────── msp: active_speaker, network_quality, track_priority,
//!                               track_switch_off, render_hints, publisher_hints
//! ```
//!
//! * [`tcmp`]: the framing — a handshake (`hello` → `welcome`), payload
//!   frames (`msg`), keepalives, and the close discipline that decides
//!   between "resume" and "done".
//! * [`rsp`]: Room Signaling Protocol bodies, carried in `msg` (or as the
//!   `hello`'s body): joining, the state of participants and tracks with
//!   their revision counters, SDP offers and answers in both directions,
//!   resume (`sync`), leaving, errors.
//! * [`msp`]: Media Signaling Protocol messages, JSON on data channels the
//!   server creates: dominant speaker, network quality, track priorities,
//!   switch-off, render hints, publisher hints.
//!
//! `../shared/twilio-signaling.md` (in the project's planning documents)
//! and the SDK's own sources describe the conversation; this crate is the
//! single source of truth for the shapes and limits Salon accepts. Parsing
//! is permissive where the SDK is (unknown fields are ignored: the SDK sends
//! many Salon does not use, and adds more from version to version) and
//! strict where memory or meaning is at stake (sizes, counts, revision
//! numbers, enumerations).
//!
//! # What this crate must not know
//!
//! Sockets, rooms, media or Salon's own protocol. It reads and writes
//! messages; the server decides what they mean.

pub mod msp;
pub mod rsp;
pub mod tcmp;

/// Largest frame accepted, in bytes of UTF-8 JSON. SDP grows by 1-4 KB per
/// m-line and the SDK sends every m-line in every offer and answer, so a
/// room of 50 can need a few hundred KB (twilio-signaling.md, pitfall 14).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Longest identifier the client chooses (track ids, peer-connection ids,
/// `hello` ids) and longest session id, in bytes. The SDK uses UUIDs.
pub const MAX_ID_BYTES: usize = 128;
/// Most tracks one participant state may list.
pub const MAX_TRACKS: usize = 128;
/// Most peer connections one message may describe (the SDK uses one).
pub const MAX_PEER_CONNECTIONS: usize = 8;
/// Most ICE candidates one `ice` update may carry.
pub const MAX_CANDIDATES: usize = 64;
/// Most entries in one render-hints or publisher-hints message.
pub const MAX_HINTS: usize = 256;
/// Longest free-text field kept (names, user agents, error messages).
pub const MAX_TEXT_BYTES: usize = 1024;

/// Twilio's error codes for what can go wrong in signaling, as the SDK
/// knows them.
pub mod codes {
    /// Signaling connection error (also: a `bad` frame during the handshake).
    pub const SIGNALING_ERROR: u32 = 53000;
    /// Signaling connection disconnected.
    pub const SIGNALING_DISCONNECTED: u32 = 53001;
    /// Signaling connection timed out.
    pub const SIGNALING_TIMEOUT: u32 = 53002;
    /// The client sent an invalid signaling message.
    pub const INVALID_MESSAGE: u32 = 53004;
    /// The video server is busy.
    pub const SERVER_BUSY: u32 = 53006;
    /// Participant not found: a `sync` for a session the server does not
    /// have (it ended, or never was). The SDK ends the room with it.
    pub const PARTICIPANT_NOT_FOUND: u32 = 53204;
}

/// Why a frame, a body or a media-signaling message could not be read.
/// Always [`codes::INVALID_MESSAGE`] when reported to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {bytes} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    /// A `type` this side does not know. The server may ignore such frames
    /// where the SDK does the same.
    #[error("unknown message type '{0}'")]
    UnknownType(String),
    #[error("unsupported version {version} of {what}")]
    UnsupportedVersion { what: &'static str, version: u64 },
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl ProtocolError {
    /// Twilio's code for it.
    pub fn code(&self) -> u32 {
        codes::INVALID_MESSAGE
    }

    fn invalid(detail: impl std::fmt::Display) -> Self {
        // serde's messages are precise ("missing field `token`"); keep them,
        // but short.
        let mut detail = detail.to_string();
        truncate(&mut detail, 300);
        ProtocolError::Invalid(detail)
    }
}

/// Parse `text` as JSON into `T`, enforcing the size limit and naming an
/// unknown `type` precisely.
fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    known: &[&str],
) -> Result<T, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge { bytes: text.len() });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(ProtocolError::invalid)?;
    from_value(value, known)
}

/// Read an already parsed JSON object into `T`, naming an unknown `type`.
fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    known: &[&str],
) -> Result<T, ProtocolError> {
    let kind = match value.get("type") {
        Some(serde_json::Value::String(kind)) => kind.clone(),
        Some(_) => return Err(ProtocolError::Invalid("`type` is not a string".into())),
        None => return Err(ProtocolError::Invalid("missing field `type`".into())),
    };
    if !known.contains(&kind.as_str()) {
        let mut kind = kind;
        truncate(&mut kind, 64);
        return Err(ProtocolError::UnknownType(kind));
    }
    serde_json::from_value(value).map_err(ProtocolError::invalid)
}

/// Print a message. Serialising these types cannot fail: no maps with
/// non-string keys, and every float is finite by construction.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Cut `text` to at most `max` bytes on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Check an identifier the client chose: 1 to [`MAX_ID_BYTES`] bytes, no
/// control characters or whitespace (ids end up in SDP `a=msid` lines and
/// data-channel labels).
fn check_id(what: &str, id: &str) -> Result<(), ProtocolError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(ProtocolError::Invalid(format!(
            "{what} must be 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ProtocolError::Invalid(format!(
            "{what} must not contain whitespace or control characters"
        )));
    }
    Ok(())
}

fn check_len(what: &str, len: usize, max: usize) -> Result<(), ProtocolError> {
    if len > max {
        return Err(ProtocolError::Invalid(format!(
            "{what}: {len} entries, at most {max}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut s = "ééé".to_owned();
        truncate(&mut s, 3);
        assert_eq!(s, "é");
    }

    #[test]
    fn ids_are_plain_tokens() {
        for ok in ["a", "0b6e1f9a-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "MTae5491b7"] {
            assert!(check_id("id", ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(MAX_ID_BYTES + 1);
        for bad in ["", "a b", "a\nb", long.as_str()] {
            assert!(check_id("id", bad).is_err(), "{bad:?}");
        }
    }
}

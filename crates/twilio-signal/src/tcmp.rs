//! TCMP, the framing layer (version 2): one JSON object per WebSocket text
//! frame, with a `type`.
//!
//! ```text
//! client                                        server
//!   │── hello {id, version: 2, timeout, body?} ──▶│   body: the first RSP message
//!   │◀──────────── welcome {negotiatedTimeout} ───│   must precede every msg
//!   │◀─── msg {body} ─────── msg {body} ─────────▶│   RSP bodies, both ways
//!   │◀─── heartbeat ─────────── heartbeat ───────▶│   when idle for ~timeout
//!   │── bye, then close 1000 ────────────────────▶│   done: no resume
//! ```
//!
//! The close code decides what the client does next: 1000 means "done"
//! (no reconnection); anything else, or no close frame, means "come back"
//! with a `sync` on a new socket (see [`crate::rsp`]). So the server closes
//! with [`CLOSE_DONE`] only after it has ended the session, and with
//! [`CLOSE_GOING_AWAY`] when it wants the client to resume elsewhere.
//!
//! The client resends `hello` if no `welcome` comes within 5 s; it drops
//! `msg` frames that arrive before `welcome`, and a `welcome` without
//! `negotiatedTimeout` breaks its timers (the field is not optional here).

use serde::{Deserialize, Serialize};

use crate::{MAX_ID_BYTES, ProtocolError, check_id};

/// The TCMP version this crate speaks.
pub const VERSION: u32 = 2;
/// The heartbeat period the server grants at most, in milliseconds (the SDK
/// asks for 5000; Twilio grants it).
pub const MAX_TIMEOUT_MS: u64 = 5_000;
/// The shortest heartbeat period the server grants, in milliseconds: a
/// client asking for less would only make the server work harder.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
/// Close code for "the session is over, don't come back".
pub const CLOSE_DONE: u16 = 1000;
/// Close code for "this socket is going, resume on another one".
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientFrame {
    /// The handshake; the client may send it again on the same socket if no
    /// `welcome` comes.
    Hello(Hello),
    /// One RSP body: read it with [`crate::rsp::ClientBody::from_json`].
    Msg {
        body: serde_json::Value,
    },
    Heartbeat,
    /// The client is about to close the socket cleanly (code 1000).
    Bye,
}

/// The client's `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// A UUID the client chose; echoed in `welcome`.
    pub id: String,
    pub version: u32,
    /// The heartbeat period the client asks for, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The first RSP message (`ice`, `connect` or `sync`), if the client
    /// sent one with the handshake. SDK versions before 2.5 send none and
    /// follow with a `msg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Echo of a `busy` frame's cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The handshake is accepted.
    Welcome {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The heartbeat period, in milliseconds. Required by the SDK.
        #[serde(rename = "negotiatedTimeout")]
        negotiated_timeout: u64,
    },
    /// One RSP body.
    Msg {
        body: Box<crate::rsp::ServerBody>,
    },
    Heartbeat,
    Bye,
    /// The handshake is refused: the client closes and `connect()` fails
    /// with 53000.
    Bad {
        reason: String,
    },
    /// Overloaded: retry after `retry_after` ms (negative: give up, 53006).
    Busy {
        #[serde(rename = "retryAfter")]
        retry_after: i64,
        #[serde(rename = "keepAlive")]
        keep_alive: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cookie: Option<String>,
    },
}

impl ClientFrame {
    /// Read one frame, enforcing the size limit, the TCMP version and the
    /// length of the client's ids. An unknown `type` is
    /// [`ProtocolError::UnknownType`], which the server may ignore.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let frame: ClientFrame = crate::parse_json(text, &["hello", "msg", "heartbeat", "bye"])?;
        if let ClientFrame::Hello(hello) = &frame {
            if hello.version != VERSION {
                return Err(ProtocolError::UnsupportedVersion {
                    what: "TCMP",
                    version: u64::from(hello.version),
                });
            }
            check_id("hello id", &hello.id)?;
            if hello
                .cookie
                .as_ref()
                .is_some_and(|c| c.len() > MAX_ID_BYTES)
            {
                return Err(ProtocolError::Invalid("cookie too long".into()));
            }
        }
        Ok(frame)
    }

    /// The frame as JSON text (for clients and tests).
    pub fn to_json(&self) -> String {
        crate::to_json(self)
    }

    /// The `type` name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Hello(_) => "hello",
            ClientFrame::Msg { .. } => "msg",
            ClientFrame::Heartbeat => "heartbeat",
            ClientFrame::Bye => "bye",
        }
    }
}

impl ServerFrame {
    /// Read one server frame (for clients and tests). The body of a `msg`
    /// must be an RSP body this crate knows.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        crate::parse_json(text, &["welcome", "msg", "heartbeat", "bye", "bad", "busy"])
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        crate::to_json(self)
    }

    /// A `msg` frame carrying `body`.
    pub fn msg(body: crate::rsp::ServerBody) -> Self {
        ServerFrame::Msg {
            body: Box::new(body),
        }
    }
}

/// The heartbeat period to grant a client that asked for `requested`
/// milliseconds (or nothing).
pub fn negotiate_timeout(requested: Option<u64>) -> u64 {
    requested
        .unwrap_or(MAX_TIMEOUT_MS)
        .clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_with_a_connect_body_reads() {
        let text = r#"{"type":"hello","id":"3f0d2c4e-1b2a-4c3d-9e8f-0a1b2c3d4e5f","version":2,"timeout":5000,
            "body":{"type":"ice","version":1,"edge":"roaming","token":"eyJ"}}"#;
        let ClientFrame::Hello(hello) = ClientFrame::parse(text).unwrap() else {
            panic!("not a hello");
        };
        assert_eq!(hello.timeout, Some(5000));
        assert_eq!(hello.body.unwrap()["type"], "ice");
    }

    #[test]
    fn the_welcome_always_names_the_timeout() {
        let welcome = ServerFrame::Welcome {
            id: Some("abc".into()),
            negotiated_timeout: 5000,
        };
        assert_eq!(
            welcome.to_json(),
            r#"{"type":"welcome","id":"abc","negotiatedTimeout":5000}"#
        );
        assert_eq!(ServerFrame::parse(&welcome.to_json()).unwrap(), welcome);
    }

    #[test]
    fn bad_frames_are_refused() {
        for text in [
            "",
            "null",
            "[]",
            r#"{"id":"x"}"#,
            r#"{"type":7}"#,
            r#"{"type":"hello","id":"x","version":1}"#,
            r#"{"type":"hello","id":"","version":2}"#,
            r#"{"type":"hello","version":2}"#,
            r#"{"type":"msg"}"#,
        ] {
            let err = ClientFrame::parse(text).unwrap_err();
            assert_eq!(err.code(), 53004, "{text}: {err}");
        }
        assert_eq!(
            ClientFrame::parse(r#"{"type":"dance"}"#),
            Err(ProtocolError::UnknownType("dance".into()))
        );
    }

    #[test]
    fn heartbeats_and_byes_carry_nothing() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"heartbeat"}"#).unwrap(),
            ClientFrame::Heartbeat
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"bye"}"#).unwrap(),
            ClientFrame::Bye
        );
        assert_eq!(ServerFrame::Heartbeat.to_json(), r#"{"type":"heartbeat"}"#);
    }

    #[test]
    fn the_timeout_is_clamped() {
        assert_eq!(negotiate_timeout(Some(5000)), 5000);
        assert_eq!(negotiate_timeout(Some(60_000)), MAX_TIMEOUT_MS);
        assert_eq!(negotiate_timeout(Some(1)), MIN_TIMEOUT_MS);
        assert_eq!(negotiate_timeout(None), MAX_TIMEOUT_MS);
    }
}

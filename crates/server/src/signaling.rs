//! The signaling front-ends: WebSockets that carry a session's messages.
//!
//! Each front-end is a wire protocol and nothing else; what a session does
//! underneath (admission, the room service, media negotiation, resume,
//! teardown) is [`crate::session`]. Salon's own protocol, `/v1/signaling`
//! (`salon-signal`, documented in `docs/protocol.md`), is [`salon`];
//! Twilio's, `/signaling` (`salon-twilio-signal`), which the official
//! `twilio-video` SDK speaks, is [`twilio`]. Their socket and the limits on
//! it are [`connection`].
//!
//! ```text
//!  WebSocket ─▶ reader task ─▶ incoming ─┐
//!                                         ▼
//!                 room events ─────▶ front-end session ──▶ session::Member ──▶ RoomService
//!                                         │                                └──▶ Media
//!  WebSocket ◀─ writer task ◀─ outgoing ─┘
//! ```
//!
//! Every queue is bounded. A client that does not read its socket is cut
//! off; a client that sends nothing for [`SignalingConfig::idle_timeout`]
//! is disconnected (53002). When a socket drops without a close frame, the
//! session waits [`SignalingConfig::resume_grace`] for a `resume` on a new
//! socket before giving the participant up; media keeps flowing meanwhile.

use std::time::Duration;

use crate::session::{Presence, Resumables};

mod connection;
mod salon;
pub mod twilio;
pub use connection::{BURST_SECONDS, RATE_LIMITED};
use connection::{Connection, SalonWire};
pub use salon::upgrade;
use twilio::Attached;

/// Signaling's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalingConfig {
    /// Time allowed for the first message (`join` or `resume`).
    pub join_timeout: Duration,
    /// A session whose client sends nothing (not even `ping`) for this long ends.
    pub idle_timeout: Duration,
    /// How long a session whose socket dropped waits for `resume`.
    pub resume_grace: Duration,
    /// A client whose socket takes no data for this long is not reading:
    /// its connection is reset (the session may still be resumed).
    pub send_timeout: Duration,
    /// Messages a session may send per second on average, in bursts of
    /// ten seconds' worth; more are refused with 20429. 0: no limit.
    pub messages_per_second: u32,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            join_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            resume_grace: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            messages_per_second: 50,
        }
    }
}

/// Signaling's shared state: its timeouts, and the sessions that can be
/// resumed, by session id.
#[derive(Default)]
pub struct Signaling {
    config: SignalingConfig,
    /// Sessions of Salon's own protocol.
    salon: Resumables<Connection<SalonWire>>,
    /// Sessions of Twilio's protocol.
    twilio: Resumables<Attached>,
    /// Participants whose signaling is reconnecting, as they come and go.
    presence: Presence,
}

impl Signaling {
    pub fn new(config: SignalingConfig) -> Self {
        Self {
            config,
            salon: Resumables::default(),
            twilio: Resumables::default(),
            presence: Presence::default(),
        }
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.salon.len() + self.twilio.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Who is reconnecting, announced by sessions and by the media bridge.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    pub fn config(&self) -> SignalingConfig {
        self.config
    }
}

//! The relay floor: the least a server can do to forward SRTP media, as a
//! yardstick for Salon's SFU.
//!
//! DESIGN.md asks that Salon's server CPU per forwarded packet stay within
//! 2× of a bare UDP relay doing the same SRTP work. This crate is that
//! relay. It does only what forwarding cannot avoid: receive a datagram,
//! SRTP-unprotect it with its sender's key, and for each other participant
//! of the room SRTP-protect it with that participant's key and send it — on
//! one thread, in a plain `recvfrom`/`sendto` loop, allocating nothing per
//! packet. No ICE, no DTLS, no RTCP, no congestion control, no rewriting:
//! what Salon does beyond this is what the comparison prices.
//!
//! ```text
//!   participant ── UDP ──▶ recvfrom ──▶ sender by address, stream by SSRC
//!                                          │ AES-GCM open (sender's key)
//!                                          ▼
//!                          for each other participant of the room:
//!                             AES-GCM seal (its key) ──▶ sendto ── UDP ──▶ participant
//! ```
//!
//! # Same crypto as Salon
//!
//! Salon's peers are str0m on both ends and negotiate
//! `SRTP_AEAD_AES_256_GCM` ([`srtp`] explains why); the floor uses that
//! profile, derives session keys with the same SRTP KDF, and seals and
//! opens with the same `aws-lc-rs` AES-GCM str0m's aws-lc-rs backend calls.
//! Keys differ per participant and per direction, as DTLS-SRTP makes them.
//!
//! # Parts
//!
//! - [`srtp`]: the RFC 7714 transform, the KDF, RTP header parsing and the
//!   SRTP index estimate; shared with the load tester's participants.
//! - [`control`]: the join and leave messages that stand in for signaling
//!   and the DTLS handshake: a participant sends its room, SSRCs and keying
//!   material from its media socket; the relay answers.
//! - [`Relay`]: the forwarding logic, sans-IO: a datagram in, datagrams out
//!   through a [`Transmit`], counters in [`Stats`].
//! - [`serve`](mod@serve): the thin socket shell: [`Mode::Plain`] (`recvfrom`/`sendto`,
//!   the floor) or [`Mode::Batched`] (`recvmmsg`/`sendmmsg`, Linux).
//!
//! `salon bench-relay` runs it as a process; `salon loadtest --target floor`
//! starts that process itself and measures it like a Salon server.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let relay = salon_floor::spawn("127.0.0.1:0".parse()?, salon_floor::Mode::Plain)?;
//! println!("participants join at udp://{}", relay.local_addr());
//! // … run participants (salon-loadtest's FloorTarget) …
//! let (stats, _sockets) = relay.stop()?;
//! println!("forwarded {} packets", stats.rtp_forwarded);
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! Loopback only (the control messages carry keys in the clear). At most
//! [`relay::DEFAULT_MAX_PARTICIPANTS`] participants, four SSRCs each, room
//! names of 64 octets. No replay protection (RFC 3711's replay list is a
//! SHOULD, and an SFU's receive path does its own duplicate handling), no
//! idle timeout: a participant that vanishes without leaving keeps its slot
//! until the relay restarts or its address joins again.

pub mod control;
#[cfg(target_os = "linux")]
mod mmsg;
pub mod relay;
pub mod serve;
pub mod srtp;

pub use relay::{Relay, Stats, Transmit};
pub use serve::{
    BindError, Mode, Running, SocketStats, bind, pin_to_cpu, serve, spawn, stop_on_signals,
};
pub use srtp::Profile;

//! Salon's TURN server (RFC 8656): relays a client's media to Salon's media
//! port when the client cannot reach it directly (UDP blocked, only TCP or
//! TLS on 443 open, symmetric NATs on both sides).
//!
//! - `stun`: the wire format (STUN messages, channel data).
//! - `credentials`: short-lived TURN REST API credentials (`expiry:identity`
//!   and an HMAC-SHA1 password), minted for each join; coturn with
//!   `use-auth-secret` checks the same ones.
//! - `policy`: which peers an allocation may reach (Salon's media
//!   addresses; never private or metadata addresses).
//! - `limit`: how fast clients without an allocation are answered (per
//!   source IP and in all), so the server reflects no floods.
//! - `session`: one client's allocation, permissions and channels, sans-IO.
//! - `server`: the tokio shell (UDP, TCP, TLS listeners, relay sockets,
//!   quotas).
//! - `client`: a small TURN client, for `salon turn check` and tests.
//!
//! Does not know rooms, signaling or the media server: it is told the media
//! addresses it may relay to, and the secret.

pub mod client;
pub mod credentials;
pub mod limit;
pub mod policy;
pub mod server;
pub mod session;
pub mod stun;

pub use policy::{Network, PeerPolicy};
pub use server::{Quotas, TurnConfig, TurnServer, TurnStats, start};
pub use session::Rules;
pub use tokio_rustls::rustls;

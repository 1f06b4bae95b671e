//! A Rust client for Salon: it joins a room over the signaling protocol,
//! publishes synthetic audio, video and data, subscribes to the others'
//! tracks, and measures exactly what it receives.
//!
//! It exists for Salon's integration tests, the load tester and bots. It
//! encodes and decodes nothing: its media is synthetic, shaped like Opus and
//! VP8 so the SFU treats it as real (sizes, frame boundaries, keyframes,
//! PLI/FIR), and every packet carries a probe with its send time, so the
//! receiver knows per packet how late it is and what is missing
//! ([`synthetic`] defines the format).
//!
//! ```no_run
//! use std::time::Duration;
//! use salon_client::{Client, ClientConfig, ClientEvent, TrackSpec};
//!
//! # async fn demo(token_a: String, token_b: String) -> Result<(), salon_client::ClientError> {
//! let url = "ws://127.0.0.1:3000/v1/signaling";
//! let mut alice = Client::connect(
//!     ClientConfig::new(url, token_a, "standup").publish(TrackSpec::video("camera")),
//! )
//! .await?;
//! let mut bob = Client::connect(ClientConfig::new(url, token_b, "standup")).await?;
//!
//! // Bob is subscribed to Alice's camera automatically; wait for its media.
//! let started = bob
//!     .wait_for(|e| matches!(e, ClientEvent::MediaStarted { .. }), Duration::from_secs(5))
//!     .await?;
//! tokio::time::sleep(Duration::from_secs(2)).await;
//! let stats = bob.stats();
//! let camera = stats.subscribed.values().next().expect("one subscription");
//! println!(
//!     "{} frames, {} keyframes, loss {:.2} %, latency p50 {:?} µs p99 {:?} µs",
//!     camera.frames,
//!     camera.keyframes,
//!     camera.loss_fraction() * 100.0,
//!     camera.latency.p50(),
//!     camera.latency.p99(),
//! );
//! alice.leave().await;
//! bob.leave().await;
//! # let _ = started; Ok(()) }
//! ```
//!
//! # What it owns
//!
//! - [`Client`]: the handle. [`Client::connect`] joins and spawns one task
//!   that owns the WebSocket, the UDP socket and the str0m `Rtc`; the handle
//!   talks to it through channels ([`Client::next_event`],
//!   [`Client::unpublish`], [`Client::leave`], …) and reads the shared
//!   statistics ([`Client::stats`]).
//! - [`MediaSession`]: the media half without signaling — an `Rtc` in RTP
//!   mode, its socket, the synthetic sources and the receive statistics. It
//!   makes offers and accepts answers, so it can be tested against a bare
//!   str0m answerer; it also answers offers a server makes (Janus's
//!   VideoRoom subscriptions, for the load tester).
//! - Reconnection: when nothing comes from the server for 4 s (or ICE says
//!   disconnected) the client reports [`ClientEvent::Reconnecting`] (53405),
//!   restarts ICE (after 1 s, then every 4 s) and reports
//!   [`ClientEvent::Reconnected`] when the server is heard again; past the
//!   server's session timeout it gives up with 53405. [`Client::move_to`]
//!   moves its media to a new socket (a network change) and restarts ICE;
//!   [`Client::black_out_media`] simulates an outage. Both are counted in
//!   [`ClientStats`] (`ice_restarts`, `reconnections`).
//! - Resume: when the signaling socket drops (or the server falls silent
//!   for 20 s) the client reports [`ClientEvent::Resuming`] and sends
//!   `resume` on a new socket to the session's node (through the configured
//!   address when that node does not answer) until the server's session
//!   timeout, media going on meanwhile; then [`ClientEvent::Resumed`], the
//!   room reconciled with what it missed and a lost offer sent again. A
//!   refusal ends the session with the server's code; in a cluster, a
//!   `node-lost` answer makes it rejoin ([`ClientConfig::rejoin`]).
//!   [`Client::drop_signaling`] simulates the drop (`resumes` in
//!   [`ClientStats`]).
//! - [`stats`]: what is measured and how (loss from extended RTP sequence
//!   numbers, a log-bucketed latency histogram).
//! - [`synthetic`]: the payload format and frame pacing.
//!
//! # What it does not do
//!
//! Encode, decode, render, capture; TURN over TCP or TLS (over UDP it relays,
//! [`MediaTransport::Relay`]); `wss://` (plain `ws://` only). It trusts nothing the network says: no
//! input from the server or a peer can make it panic; every failure is a
//! [`ClientError`] with a Twilio code.

mod client;
mod error;
mod media;
mod path;
pub mod remb;
pub mod stats;
pub mod synthetic;

pub use client::{Client, ClientConfig, ClientEvent};
pub use error::{ClientError, codes};
pub use media::{
    LayerSpec, MediaEvent, MediaSession, Offer, RemoteTrack, StatsHandle, TrackSpec, WallClock,
};
pub use path::MediaTransport;
pub use salon_sid::{ParticipantSid, TrackSid};
pub use salon_signal::{
    DisconnectReason, ParticipantInfo, PublishMedia, RoomInfo, SubscribeMedia, TrackInfo, TrackKind,
};
pub use stats::{ClientStats, LatencyHistogram, PublishStats, ReceiveStats};

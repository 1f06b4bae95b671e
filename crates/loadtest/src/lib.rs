//! Load tests for an SFU: rooms of synthetic participants that publish and
//! subscribe, measured packet by packet, with the server's CPU time and
//! memory — how much media the server forwards per core, with how little
//! loss and delay.
//!
//! The crate is split at one boundary, the [`Target`]: everything else — the
//! [`Plan`] (who joins which room, publishing what, when), the [`runner`]
//! (ramp, settle, measurement window, leave), the statistics and the
//! [`Report`] — is the same whatever server is under test. The Salon target
//! ([`SalonTarget`]) joins with `salon-client`; the Janus target
//! ([`JanusTarget`]) joins Janus's VideoRoom plugin over the Janus API, with
//! the same `salon-client` media sessions, the same synthetic media and the
//! same counters, so the two servers are measured side by side under the
//! same load. [`janus::server`] runs a Janus for a run (installing Debian's
//! package when it is missing) and [`janus::netns`] gives it a loopback
//! address it can do ICE on. Another server (a bare relay) is another
//! implementation of [`Target`].
//!
//! The floor target ([`FloorTarget`], report kind `"floor"`, URL
//! `udp://host:port`) drives the bare SRTP relay of `salon-floor`: the same
//! synthetic media and the same measurement as the Salon target, through a
//! server that does nothing but SRTP and `recvfrom`/`sendto`, so a report
//! can set Salon's cost per forwarded packet beside that floor.
//!
//! ```text
//!   Plan ──▶ runner ──▶ Target::join ──▶ Participant ── Meter::sample ──▶ Counters
//!              │                                                          │
//!              ├── /proc/<server pid>, /proc/self, server /metrics        │
//!              ▼                                                          ▼
//!            Report  ◀──────────── window end − window start ─────────────┘
//! ```
//!
//! # What is measured
//!
//! Publishers send synthetic Opus-shaped audio (50 packets per second) and
//! VP8-shaped video (the configured bitrate and frame rate, frames split
//! into packets of at most 1100 bytes, a keyframe every 3 s and on request);
//! every packet carries its send time. With simulcast
//! ([`VideoShape::simulcast`]) the video is three RID layers, as libwebrtc
//! sends a 1280×720 camera, and a plan's [`BandwidthProfile`] makes every
//! participant set Twilio's `maxSubscriptionBitrate` and mode; the
//! [`video`] watch then follows, every 250 ms of the window, which layer
//! each subscription receives and whether its video stops. Publisher and subscriber run in this
//! one process and share its clock, so each received packet's one-way
//! latency — through the server and both network stacks — is known exactly,
//! and its RTP sequence number says what is missing.
//!
//! The window starts once every participant's media flows (or the settle
//! time ran out) and lasts the planned duration. At both ends the runner
//! snapshots every participant's cumulative counters, the server process
//! (`/proc/<pid>/stat` and `status`: CPU time, RSS, peak RSS), the server's
//! `/metrics` counters, and its own process; the report is the difference.
//! The headline numbers are **forwarded packets per server CPU-second** and
//! its inverse, **server CPU µs per forwarded packet**, beside loss and the
//! latency distribution.
//!
//! ```no_run
//! # async fn demo(key: salon_token::ApiKey) -> Result<(), salon_loadtest::RunError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use salon_loadtest::{Plan, RunOptions, SalonTarget};
//!
//! let target = SalonTarget::new("ws://127.0.0.1:3000/v1/signaling", key, Duration::from_secs(600));
//! let mut options = RunOptions::new(Plan::meeting(1, 4));
//! options.server_pid = Some(4242);
//! let report = salon_loadtest::run(Arc::new(target), options, |p| eprintln!("{p}")).await?;
//! print!("{}", report.table());
//! println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! # Bounds
//!
//! A run is bounded in count ([`plan::MAX_PARTICIPANTS`] participants, at
//! most [`plan::MAX_PER_ROOM`] per room) and in time (ramp, settle and
//! window each have a ceiling; a join may take 30 s past the ramp, leaving
//! 10 s), and talks to loopback addresses only ([`loopback::check`]).
//!
//! # The JSON report, schema `salon-loadtest/1`
//!
//! Fields are only added within a schema version; renaming a field or
//! changing its meaning bumps it. Times are in the unit their name says
//! (`_s`, `_ms`, `_us`); bitrates in bits per second of RTP payload (no
//! RTP, SRTP, UDP or IP headers: `server.metrics.bytes_*` has those);
//! CPU times have the kernel's resolution, one clock tick (10 ms); `null`
//! means "not measured". Latency summaries are
//! `{count, mean, min, p50, p90, p99, p999, max}` in µs (quantiles are the
//! upper edge of a bucket at most 3 % wide, never above the exact max);
//! duration summaries `{count, mean, p50, p99, max}` in ms.
//!
//! ```text
//! {
//!   "schema": "salon-loadtest/1",
//!   "target": {"kind": "salon" | "janus", "url": "ws://127.0.0.1:3999/v1/signaling"},
//!   "scenario": "meeting" | "webinar" | "mixed",
//!   "plan": {"rooms", "publishers", "subscribers",        // per room
//!            "audio": {"bitrate_bps"} | null, "video": {"bitrate_bps", "fps", "simulcast"} | null,
//!            "bandwidth_profile": {"max_subscription_bitrate_bps", "mode": "grid" | … | null} | null,
//!            "remb": bool,
//!            "speakers": n | null, "render": [width, height] | null,
//!            "ramp_s", "settle_s", "duration_s",
//!            "prefix"},
//!   "timing": {"before_window_s", "window_s"},
//!   "joins": {"planned", "joined", "failed", "disconnected", "media_connected",
//!             "join_ms", "media_connected_ms", "first_packet_ms",   // duration summaries
//!             "errors": [{"participant", "stage": "join"|"disconnected"|"error",
//!                         "code": 53105 | null, "message"}],        // the first 20
//!             "errors_total"},
//!   "window": null | {
//!     "duration_s",
//!     "sent": {"packets", "bytes", "packets_per_second", "bitrate_bps",
//!              "audio_packets", "video_packets"},
//!     "received": {"packets", "bytes", "packets_per_second", "bitrate_bps",
//!                  "expected", "lost", "loss_pct",                   // by RTP sequence number
//!                  "expected_deliveries", "delivered_pct",           // sent × subscribers
//!                  "foreign"},
//!     "subscriptions": {"expected", "present", "with_media"},
//!     "latency_us": {"all", "audio", "video"},                       // latency summaries
//!     "subscriber_bitrate_bps": {"count", "mean", "min", "max"},     // per receiving participant
//!     "video": null | {                                              // when the plan has video
//!       "simulcast", "cap_bps", "mode",
//!       "subscriber_bitrate_bps": {"count", "mean", "min", "max"},   // video only, per receiver
//!       "over_cap",                                                  // receivers above cap_bps
//!       "subscriptions", "layer_switches", "stalled", "switched_off", "longest_gap_ms",
//!       "switch_off_reasons": {"network-congestion": n, …},         // switch-offs in the window
//!       "layers": {"320x180": n, …, "unknown": n},                   // at the window's end
//!       "stall_ms", "watch_interval_ms", "observations",
//!       "subscribers": [{"room", "subscriber", "tracks", "bitrate_bps", "over_cap",
//!                        "layer_switches", "stalled", "switched_off"}]
//!     }
//!   },
//!   "subscriptions": [{"room", "subscriber", "publisher", "track", "track_name", "kind",
//!                      "packets", "bytes", "expected", "lost", "loss_pct", "bitrate_bps",
//!                      "first_packet_ms", "latency_us",
//!                      "width", "height", "layer_switches", "longest_gap_ms",  // video; else null
//!                      "stalled", "switched_off"}],
//!   "server": null | {"pid", "cpu_seconds", "cpu_cores", "rss_bytes", "peak_rss_bytes", "threads",
//!                     "metrics": null | {"rtp_received", "rtp_forwarded", "datagrams_received",
//!                                        "datagrams_sent", "bytes_received", "bytes_sent", "dropped"},
//!                     "metrics_error",
//!                     "forwarded_packets", "forwarded_source": "metrics" | "subscribers",
//!                     "forwarded_per_cpu_second", "cpu_us_per_forwarded_packet"},
//!   "generator": {"cpu_seconds", "cpu_cores", "rss_bytes", "peak_rss_bytes"},
//!   "machine": {"cores", "busy_cores",                    // /proc/stat, everything
//!               "other_cores"},                           // busy minus server and generator
//!   "warnings": ["…"]
//! }
//! ```
//!
//! `server.cpu_*` need the server's PID; `server.metrics` needs its
//! `/metrics` endpoint (Salon only: against Janus, `forwarded_packets` are
//! what the subscribers received, `forwarded_source: "subscribers"`);
//! `machine.other_cores` needs the PID too. A Janus track is named
//! `<feed>/<mid>` (its publisher's id in the room and the publisher's mid). Every
//! figure under `window`, `subscriptions`, `server`, `generator` and
//! `machine` covers the window only; `joins` covers the whole run. With
//! simulcast, `received.delivered_pct` is `null` (a subscriber receives one
//! layer of three, or none). Video bitrates are RTP payload, while the cap
//! the server applies counts what its allocation measures of each layer.

pub mod floor;
pub mod histogram;
pub mod janus;
pub mod loopback;
pub mod metrics;
pub mod plan;
pub mod process;
pub mod report;
pub mod runner;
pub mod salon;
pub mod target;
pub mod video;

pub use floor::FloorTarget;
pub use janus::JanusTarget;
pub use plan::{
    AudioShape, BandwidthMode, BandwidthProfile, LayerShape, ParticipantPlan, Plan, PlanError,
    Role, VideoShape,
};
pub use report::{Report, SCHEMA};
pub use runner::{Phase, Progress, RunError, RunOptions, run};
pub use salon::SalonTarget;
/// How a Salon participant's media travels (`SalonTarget::transport`).
pub use salon_client::MediaTransport;
pub use target::{Counters, Meter, Participant, ParticipantEvent, Target, TargetError};

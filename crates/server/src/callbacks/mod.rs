//! Status callbacks: delivering the outbox to the apps' webhooks.
//!
//! The store writes each callback to its outbox in the transaction that
//! records the room event behind it (`salon_store`'s `callbacks` module says
//! what each one contains). This module is the other half, the sender: one
//! task that reads the outbox and makes the HTTP requests.
//!
//! ```text
//!  RoomService ── Store::record ──▶ rooms, participants, tracks
//!                (one transaction)  status_callbacks (outbox) ──▶ Sender ──▶ app's webhook
//!                                        ▲            doorbell ─┘   │ signed, one at a time per room
//!                                        └── delivered: removed; failed: retried later ◀┘
//! ```
//!
//! What it guarantees:
//!
//! * **In order per room.** Only a room's oldest callback is ever in
//!   flight; the next one is sent after it was delivered or given up on.
//!   Rooms proceed in parallel, at most [`CallbackConfig::concurrency`] at
//!   once.
//! * **At least once, nothing lost.** A callback leaves the outbox only
//!   when its receiver answered 2xx, or when it is dropped for good (too
//!   many attempts, too old, or a destination the policy refuses), which is
//!   logged and counted in `/metrics`. A crash or restart loses nothing: the
//!   outbox is read again at start, and what was backing off is tried at
//!   once. A receiver may see a callback twice (an answer lost on the way
//!   back); `I-Twilio-Idempotency-Token` is the same on every attempt.
//! * **Bounded.** Each attempt has a connect timeout and a total timeout;
//!   redirects are not followed (a 3xx is a failed attempt); failures back
//!   off exponentially with jitter; a callback is tried at most
//!   [`CallbackConfig::max_attempts`] times and kept at most
//!   [`CallbackConfig::max_age`].
//! * **Never in the room service's way.** The room service only writes rows
//!   and rings a doorbell; everything slow happens here.
//! * **Only where the operator allows.** See [`destination`].
//!
//! Requests are signed with `X-Twilio-Signature` ([`signature`]).

pub mod destination;
mod sender;
pub mod signature;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

pub use sender::Sender;

/// How callbacks are delivered. The defaults follow Twilio's webhook
/// timeouts (5 s to connect, 15 s in all) and then retry far longer than
/// Twilio does.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Allow destinations on loopback, private and link-local networks.
    pub allow_private_network: bool,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest one attempt may take, from connecting to the end of the
    /// response.
    pub timeout: Duration,
    /// Attempts before a callback is dropped.
    pub max_attempts: u32,
    /// Age after which a callback not yet delivered is dropped.
    pub max_age: Duration,
    /// Rooms whose callbacks are in flight at once.
    pub concurrency: usize,
    /// Wait after the first failure; it doubles with each further one.
    pub first_retry: Duration,
    /// Longest wait between attempts.
    pub max_retry: Duration,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            allow_private_network: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            concurrency: 16,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
        }
    }
}

impl CallbackConfig {
    /// The wait after the `failures`-th failed attempt: `first_retry`
    /// doubled each time up to `max_retry`, then between half of it and all
    /// of it at random, so that many rooms failing together do not retry
    /// together.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let doubled = self
            .first_retry
            .saturating_mul(1 << failures.saturating_sub(1).min(20));
        let delay = doubled.min(self.max_retry);
        let half = delay / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// What the sender has done, for `/metrics`. Plain atomics: the sender
/// writes, the scrape reads.
#[derive(Debug, Default)]
pub struct CallbackStats {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dropped_attempts: AtomicU64,
    dropped_age: AtomicU64,
    dropped_refused: AtomicU64,
    backlog: AtomicI64,
    oldest_seconds: AtomicI64,
    in_flight: AtomicI64,
}

/// Why a callback was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Tried `max_attempts` times.
    Attempts,
    /// Older than `max_age`.
    Age,
    /// The destination is not allowed, or the URL cannot be used.
    Refused,
}

impl CallbackStats {
    fn dropped(&self, reason: DropReason) {
        match reason {
            DropReason::Attempts => &self.dropped_attempts,
            DropReason::Age => &self.dropped_age,
            DropReason::Refused => &self.dropped_refused,
        }
        .fetch_add(1, Relaxed);
    }
}

impl Collector for CallbackStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = [
            (
                "status_callbacks_delivered",
                "Status callbacks delivered (the receiver answered 2xx)",
                &self.delivered,
            ),
            (
                "status_callbacks_failed_attempts",
                "Status callback attempts that failed (error status, timeout, connection failure, redirect); each is retried or dropped",
                &self.failed_attempts,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Relaxed));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        // One family, labelled by reason.
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "status_callbacks_dropped",
            "Status callbacks given up on, by reason: attempts (tried too often), age (too old), refused (a destination the policy forbids, or an unusable URL)",
            None,
            counter.metric_type(),
        )?;
        for (reason, value) in [
            ("attempts", &self.dropped_attempts),
            ("age", &self.dropped_age),
            ("refused", &self.dropped_refused),
        ] {
            let labels = [("reason", reason)];
            ConstCounter::new(value.load(Relaxed)).encode(family.encode_family(&labels)?)?;
        }
        let gauges = [
            (
                "status_callbacks_backlog",
                "Status callbacks waiting in the outbox",
                &self.backlog,
            ),
            (
                "status_callbacks_oldest_age_seconds",
                "Age of the oldest status callback waiting in the outbox (0 when none waits)",
                &self.oldest_seconds,
            ),
            (
                "status_callbacks_in_flight",
                "Status callback requests under way",
                &self.in_flight,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value.load(Relaxed));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// Shared between the sender and the metrics registry.
pub type SharedStats = Arc<CallbackStats>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_a_ceiling() {
        let config = CallbackConfig::default();
        for (failures, ceiling) in [
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (10, 512),
            (11, 600),
            (40, 600),
        ] {
            let ceiling = Duration::from_secs(ceiling);
            for _ in 0..50 {
                let delay = config.retry_delay(failures);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "after {failures} failures: {delay:?} not within [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }
}

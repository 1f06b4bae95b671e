//! The receiver's own estimate of its downlink, for REMB (RTCP
//! receiver-estimated maximum bitrate): what a browser sends when
//! transport-wide congestion control is not negotiated, as on a Salon server
//! started with `--bandwidth-estimation remb`. Without it, the load tester's
//! subscribers give such a server no estimate at all, and it measures an
//! allocation bounded by the caps alone, which no browser sees.
//!
//! This is Chromium's receive-side rate control (libwebrtc's
//! `AimdRateControl` behind `RemoteBitrateEstimator`) on a link where nothing
//! queues, which is what the load tester's loopback is:
//!
//! * nothing is sent for the first [`INITIALIZATION`] of media; then the
//!   estimate starts at what arrived in the last second, and grows by
//!   [`GROWTH`] a second (multiplicative increase);
//! * it does not grow past [`CEILING`] times what arrived in the last
//!   second plus [`CEILING_EXTRA`]: a receiver cannot vouch for much more
//!   than it has seen. That limit stops a climb; it does not lower the
//!   estimate when less arrives (less may be all that is sent);
//! * it is measured and sent every [`INTERVAL`] (libwebrtc sends REMB once
//!   a second, sooner when it falls; here it falls only with what arrives,
//!   which is measured once a second).
//!
//! What it leaves out: the delay-based overuse detector, which drops the
//! estimate to 85% of what arrives when packets queue. On loopback nothing
//! queues but what a busy CPU delays, which is not the link; loss, which
//! Chromium's REMB does not read either, reaches the server in the receiver
//! reports.
//!
//! Sans-IO: [`ReceiveEstimate::on_received`] per packet (an addition),
//! [`ReceiveEstimate::poll`] when [`ReceiveEstimate::next_due`] comes.

use std::time::{Duration, Instant};

/// How long media must have arrived before the first estimate (libwebrtc's
/// `kInitializationTime`): until then the estimate is not valid and no REMB
/// is sent.
pub const INITIALIZATION: Duration = Duration::from_secs(5);
/// The estimate grows by this factor a second while nothing queues.
pub const GROWTH: f64 = 1.08;
/// At most this many times what arrived in the last second…
pub const CEILING: f64 = 1.5;
/// …plus this, bits per second.
pub const CEILING_EXTRA: u64 = 10_000;
/// How often the estimate is updated and sent. libwebrtc updates it as
/// packets arrive and sends at most every 200 ms; a receiver that reports
/// only once a second reads, to the server, as an estimate that stalls
/// between reports.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// What arrived is counted over the last [`BUCKETS`] intervals: one second,
/// as libwebrtc's incoming bitrate is.
const BUCKETS: usize = 4;

/// The estimate of one receiver (one media session).
#[derive(Debug, Clone, Default)]
pub struct ReceiveEstimate {
    /// Payload bytes received in each of the last intervals, the current
    /// one at `at`.
    buckets: [u64; BUCKETS],
    at: usize,
    /// When the current interval began: the first packet, then each
    /// update.
    since: Option<Instant>,
    /// When media first arrived.
    first: Option<Instant>,
    /// The estimate, bits per second, once valid.
    estimate: Option<f64>,
}

impl ReceiveEstimate {
    /// `bytes` of media arrived at `now`.
    pub fn on_received(&mut self, now: Instant, bytes: usize) {
        self.since.get_or_insert(now);
        self.first.get_or_insert(now);
        self.buckets[self.at] = self.buckets[self.at].saturating_add(bytes as u64);
    }

    /// When [`ReceiveEstimate::poll`] has something to do; `None` until
    /// media arrives.
    pub fn next_due(&self) -> Option<Instant> {
        self.since.map(|since| since + INTERVAL)
    }

    /// Update the estimate if an interval ended at `now`, and return it to
    /// send in a REMB, bits per second (`None` while it is not valid yet).
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        let since = self.since?;
        let elapsed = now.saturating_duration_since(since);
        if elapsed < INTERVAL {
            return None;
        }
        let first = self.first.unwrap_or(since);
        let window = now
            .saturating_duration_since(first)
            .min(INTERVAL * BUCKETS as u32)
            .as_secs_f64();
        let incoming = self.buckets.iter().sum::<u64>() as f64 * 8.0 / window;
        self.at = (self.at + 1) % BUCKETS;
        self.buckets[self.at] = 0;
        self.since = Some(now);
        let estimate = match self.estimate {
            Some(current) => {
                let ceiling = incoming * CEILING + CEILING_EXTRA as f64;
                let grown = current * GROWTH.powf(elapsed.as_secs_f64());
                if grown > ceiling {
                    current.max(ceiling)
                } else {
                    grown
                }
            }
            None if now.saturating_duration_since(first) >= INITIALIZATION => incoming,
            None => return None,
        };
        self.estimate = Some(estimate);
        Some(estimate.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// Feed `bps` of media for `seconds` (ten packets a second), polling
    /// every interval; the estimates sent.
    fn feed(e: &mut ReceiveEstimate, from: Instant, seconds: u64, bps: u64) -> Vec<u64> {
        let mut sent = Vec::new();
        let tenth = SEC / 10;
        let mut next_poll = from + INTERVAL;
        for p in 0..seconds as u32 * 10 {
            let at = from + tenth * p;
            while next_poll <= at {
                sent.extend(e.poll(next_poll));
                next_poll += INTERVAL;
            }
            e.on_received(at, (bps / 80) as usize);
        }
        let end = from + SEC * seconds as u32;
        while next_poll <= end {
            sent.extend(e.poll(next_poll));
            next_poll += INTERVAL;
        }
        sent
    }

    #[test]
    fn nothing_is_sent_before_media_has_arrived_for_the_initialization_time() {
        let mut e = ReceiveEstimate::default();
        let t0 = Instant::now();
        assert_eq!(e.next_due(), None);
        assert_eq!(e.poll(t0 + SEC * 10), None);
        e.on_received(t0, 1000);
        assert_eq!(e.next_due(), Some(t0 + INTERVAL));
        assert_eq!(e.poll(t0 + INTERVAL / 2), None, "not a whole interval yet");
        let sent = feed(&mut e, t0, 10, 800_000);
        assert_eq!(sent.len(), 21, "every 250 ms from 5 s on: {sent:?}");
        assert!(
            (790_000..=820_000).contains(&sent[0]),
            "what arrives: {sent:?}"
        );
    }

    /// Receiving 1 Mbit/s: from what arrives, the estimate grows 8% a
    /// second until it reads half as much again (plus 10 kbit/s).
    #[test]
    fn the_estimate_climbs_eight_percent_a_second_up_to_half_as_much_again_as_what_arrives() {
        let mut e = ReceiveEstimate::default();
        let t0 = Instant::now();
        let sent = feed(&mut e, t0, 30, 1_000_000);
        assert_eq!(sent.len(), 101);
        // A second is four reports.
        for i in 0..16 {
            let ratio = sent[i + 4] as f64 / sent[i] as f64;
            assert!(
                (ratio - GROWTH).abs() < 0.01,
                "{} then {}",
                sent[i],
                sent[i + 4]
            );
        }
        let top = 1_000_000.0 * CEILING + CEILING_EXTRA as f64;
        let last = *sent.last().expect("sent") as f64;
        assert!((last - top).abs() / top < 0.02, "{last} against {top}");
    }

    /// What arrives falls to a tenth (tracks switched off, say): the
    /// estimate holds, and does not climb until what arrives catches up.
    #[test]
    fn less_arriving_stops_the_climb_but_does_not_lower_the_estimate() {
        let mut e = ReceiveEstimate::default();
        let t0 = Instant::now();
        let before = *feed(&mut e, t0, 30, 1_000_000).last().expect("sent");
        let sent = feed(&mut e, t0 + SEC * 30, 3, 100_000);
        assert_eq!(sent, [before; 12]);
    }
}

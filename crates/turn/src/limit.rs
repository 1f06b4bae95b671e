//! How fast the server answers clients that hold no allocation yet.
//!
//! An unauthenticated request costs the server no memory (nonces are
//! stateless), but each is answered, and over UDP the answer goes to
//! whatever source address the datagram claims: a 401 with a realm and a
//! nonce is three to four times the size of a bare Allocate, so an open
//! answering machine would reflect and amplify floods at third parties.
//! Token buckets bound it: one per client IP (`per_source` answers a
//! second, bursts of twice that) and one for all sources together, so a
//! flood from spoofed addresses neither reflects much at any one of them
//! nor takes the server's CPU. A browser needs a handful of answers per
//! TURN URL to allocate.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] buckets, and a bucket that
//! has filled up again is forgotten when room is needed (it would read the
//! same as a new one). The all-sources bucket caps how fast new buckets
//! appear, so the table cannot fill within one refill time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Client IPs tracked at once.
pub const MAX_SOURCES: usize = 65_536;
/// Answers a second to every source together.
pub const ALL_SOURCES_PER_SECOND: f64 = 20_000.0;

/// A token bucket: `rate` tokens a second, at most `burst`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    /// The tokens now, without taking one.
    fn level(&self, rate: f64, burst: f64, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }

    fn take(&mut self, rate: f64, burst: f64, now: Instant) {
        self.tokens = self.level(rate, burst, now) - 1.0;
        self.at = now;
    }
}

/// The answers to clients without an allocation, limited per source IP and
/// in all.
#[derive(Debug)]
pub struct RequestLimit {
    rate: f64,
    burst: f64,
    sources: HashMap<IpAddr, Bucket>,
    all: Bucket,
}

impl RequestLimit {
    /// `per_source` answers a second to one IP (0: no limit).
    pub fn new(per_source: u32, now: Instant) -> Self {
        let rate = f64::from(per_source);
        RequestLimit {
            rate,
            burst: 2.0 * rate,
            sources: HashMap::new(),
            all: Bucket::full(2.0 * ALL_SOURCES_PER_SECOND, now),
        }
    }

    /// Whether a request from `ip` may be answered now (and count it).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let all_burst = 2.0 * ALL_SOURCES_PER_SECOND;
        if self.all.level(ALL_SOURCES_PER_SECOND, all_burst, now) < 1.0 {
            return false;
        }
        let (rate, burst) = (self.rate, self.burst);
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            self.sources
                .retain(|_, b| b.level(rate, burst, now) < burst);
            if self.sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let bucket = self
            .sources
            .entry(ip)
            .or_insert_with(|| Bucket::full(burst, now));
        if bucket.level(rate, burst, now) < 1.0 {
            return false;
        }
        bucket.take(rate, burst, now);
        self.all.take(ALL_SOURCES_PER_SECOND, all_burst, now);
        true
    }

    /// Sources tracked now.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n))
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut limit = RequestLimit::new(10, t0);
        let allowed = (0..100).filter(|_| limit.allow(ip(1), t0)).count();
        assert_eq!(allowed, 20, "a burst of twice the rate");
        // Another source is not held back by the first.
        assert!(limit.allow(ip(2), t0));
        // Half a second later: five more.
        let t1 = t0 + Duration::from_millis(500);
        let allowed = (0..100).filter(|_| limit.allow(ip(1), t1)).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn zero_is_no_limit() {
        let t0 = Instant::now();
        let mut limit = RequestLimit::new(0, t0);
        assert!((0..10_000).all(|_| limit.allow(ip(1), t0)));
        assert_eq!(limit.sources(), 0);
    }

    #[test]
    fn a_spoofed_flood_is_capped_in_all_and_the_table_stays_bounded() {
        let t0 = Instant::now();
        let mut limit = RequestLimit::new(50, t0);
        // Every datagram from a new address, as spoofed ones are: the
        // all-sources bucket (a burst of twice its rate) holds them back.
        let flood = 200_000u32;
        let allowed = (0..flood).filter(|n| limit.allow(ip(*n), t0)).count();
        assert_eq!(allowed, 2 * ALL_SOURCES_PER_SECOND as usize);
        assert!(limit.sources() <= MAX_SOURCES);
        // A second later the all-sources bucket has refilled by its rate;
        // buckets that filled up again make room for new sources.
        let t1 = t0 + Duration::from_secs(1);
        let allowed = (flood..2 * flood)
            .filter(|n| limit.allow(ip(*n), t1))
            .count();
        assert_eq!(allowed, ALL_SOURCES_PER_SECOND as usize);
        assert!(limit.sources() <= MAX_SOURCES);
        // A legitimate client then still gets answers.
        let t2 = t1 + Duration::from_secs(2);
        assert!(limit.allow(ip(u32::MAX / 2), t2));
    }
}

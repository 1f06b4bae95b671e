//! [`AuthThrottle`]: a per-address budget of failed authentications.
//!
//! Each client address may fail Basic authentication `per_minute` times in
//! a burst, and then once every `60 / per_minute` seconds. An address over
//! its budget gets `429` (Twilio's 20429, with `Retry-After`) for every
//! authenticated request — the right credentials included, or the throttle
//! would still tell a guesser when it guessed right — until its budget
//! refills. Successful requests cost nothing.
//!
//! Addresses are counted by IPv4 address and by IPv6 /64 (one host's share
//! of a network; a host has billions of addresses within it). The table
//! holds at most [`MAX_ADDRESSES`]: addresses whose budget is full again are
//! forgotten, and past the bound the longest-quiet ones are, so memory is
//! bounded whatever the number of addresses that fail.
//!
//! Behind a reverse proxy every client shares the proxy's address: throttle
//! at the proxy instead, and raise the budget or turn it off here
//! (`--auth-failures-per-minute 0`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses remembered at once (about 40 bytes each).
pub const MAX_ADDRESSES: usize = 16_384;

/// Failed authentications allowed per address.
pub struct AuthThrottle {
    per_minute: u32,
    failures: Mutex<HashMap<IpAddr, Budget>>,
}

/// What is left of one address's budget.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Failures it may still make; refills continuously.
    left: f64,
    at: Instant,
}

impl AuthThrottle {
    /// `per_minute` failures per address; 0 turns throttling off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            failures: Mutex::default(),
        }
    }

    /// `Err(wait)` while `address` has spent its budget: it may try again
    /// after `wait`.
    pub fn check(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&key(address)) {
            Some(budget) => {
                let left = self.refilled(budget, now);
                if left >= 1.0 {
                    Ok(())
                } else {
                    Err(Duration::from_secs_f64(
                        (1.0 - left) * 60.0 / f64::from(self.per_minute),
                    ))
                }
            }
            None => Ok(()),
        }
    }

    /// Count a failed authentication from `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&key(address)) {
            self.make_room(&mut failures, now);
        }
        let full = f64::from(self.per_minute);
        let budget = failures.entry(key(address)).or_insert(Budget {
            left: full,
            at: now,
        });
        budget.left = (self.refilled(budget, now) - 1.0).max(0.0);
        budget.at = now;
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refilled(&self, budget: &Budget, now: Instant) -> f64 {
        let full = f64::from(self.per_minute);
        let minutes = now.saturating_duration_since(budget.at).as_secs_f64() / 60.0;
        (budget.left + minutes * full).min(full)
    }

    /// Forget addresses whose budget is full again; if that frees nothing,
    /// the eighth that has been quiet longest.
    fn make_room(&self, failures: &mut HashMap<IpAddr, Budget>, now: Instant) {
        let full = f64::from(self.per_minute);
        failures.retain(|_, budget| self.refilled(budget, now) < full);
        if failures.len() < MAX_ADDRESSES {
            return;
        }
        let mut quiet: Vec<(Instant, IpAddr)> =
            failures.iter().map(|(ip, b)| (b.at, *ip)).collect();
        let drop = (MAX_ADDRESSES / 8).max(1);
        quiet.select_nth_unstable(drop - 1);
        for (_, ip) in &quiet[..drop] {
            failures.remove(ip);
        }
    }
}

/// The unit an address is counted in: IPv4 addresses, IPv6 /64s.
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let throttle = AuthThrottle::new(6);
        let start = Instant::now();
        let alice = ip("192.0.2.1");
        for _ in 0..6 {
            assert!(throttle.check(alice, start).is_ok());
            throttle.failed(alice, start);
        }
        let wait = throttle.check(alice, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Someone else is not affected.
        assert!(throttle.check(ip("192.0.2.2"), start).is_ok());
        // One failure more is allowed after the interval.
        let later = start + Duration::from_secs(10);
        assert!(throttle.check(alice, later).is_ok());
        throttle.failed(alice, later);
        assert!(throttle.check(alice, later).is_err());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_bit_network() {
        let throttle = AuthThrottle::new(1);
        let now = Instant::now();
        throttle.failed(ip("2001:db8:1:2::1"), now);
        assert!(throttle.check(ip("2001:db8:1:2:ffff::9"), now).is_err());
        assert!(throttle.check(ip("2001:db8:1:3::1"), now).is_ok());
        throttle.failed(ip("::ffff:192.0.2.7"), now);
        assert!(throttle.check(ip("192.0.2.7"), now).is_err());
    }

    #[test]
    fn memory_stays_bounded_however_many_addresses_fail() {
        let throttle = AuthThrottle::new(10);
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 * 3) {
            throttle.failed(IpAddr::V4(i.into()), now);
        }
        assert!(throttle.len() <= MAX_ADDRESSES);
        // Addresses whose budget refilled are forgotten first.
        let later = now + Duration::from_secs(61);
        throttle.failed(ip("198.51.100.1"), later);
        assert_eq!(throttle.len(), 1);
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = AuthThrottle::new(0);
        let now = Instant::now();
        for _ in 0..1000 {
            throttle.failed(ip("192.0.2.1"), now);
        }
        assert!(throttle.check(ip("192.0.2.1"), now).is_ok());
        assert!(throttle.is_empty());
    }
}

//! Latency distributions that can be subtracted and merged.
//!
//! A load test needs two operations a per-connection histogram does not:
//! *subtract* (what arrived in the measurement window is the histogram at
//! its end minus the one at its start) and *merge* (the run's p99 is over
//! every subscription's packets together, not an average of p99s).
//!
//! [`Latencies`] is one subscription's distribution, sparse (only the
//! buckets that hold values); [`Histogram`] is a dense sum of many. Both use
//! salon-client's bucket layout ([`LatencyHistogram::bucket_index`]: exact
//! below 64 µs, then 32 buckets per power of two, so a quantile is at most
//! about 3 % above the true value), so reading the client's histogram back
//! ([`from_client`]) loses nothing.

use salon_client::LatencyHistogram;
use serde::Serialize;

/// Number of buckets.
pub const BUCKETS: usize = LatencyHistogram::BUCKETS;

fn index(v: u64) -> usize {
    LatencyHistogram::bucket_index(v)
}

fn upper_bound(index: usize) -> u64 {
    LatencyHistogram::bucket_upper_bound(index)
}

/// The smallest value in a bucket.
fn lower_bound(index: usize) -> u64 {
    if index == 0 {
        0
    } else {
        upper_bound(index - 1).saturating_add(1)
    }
}

/// One subscription's latencies in microseconds, cumulative: the non-empty
/// buckets in increasing order, and the exact count, sum, min and max.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latencies {
    buckets: Vec<(u16, u64)>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Latencies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `n` values equal to `value`. Values must come in
    /// non-decreasing order (as when reading a histogram back bucket by
    /// bucket); an out-of-order value is still counted, in its place.
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let i = index(value) as u16;
        match self.buckets.last_mut() {
            Some((last, count)) if *last == i => *count += n,
            Some((last, _)) if *last > i => {
                match self.buckets.binary_search_by_key(&i, |&(b, _)| b) {
                    Ok(at) => self.buckets[at].1 += n,
                    Err(at) => self.buckets.insert(at, (i, n)),
                }
            }
            _ => self.buckets.push((i, n)),
        }
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += n;
        self.sum += u128::from(value) * u128::from(n);
    }

    /// Record one value.
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Replace the sum (when the source knows it better than the bucket
    /// values do, e.g. from its exact mean).
    pub fn set_sum(&mut self, sum: u128) {
        self.sum = sum;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// What was recorded after `earlier`, a copy of this distribution taken
    /// before. Min and max of the difference are exact when the extreme
    /// value itself is new, otherwise the bounds of the extreme bucket.
    pub fn since(&self, earlier: &Latencies) -> Latencies {
        if earlier.count == 0 {
            return self.clone();
        }
        let mut out = Latencies::new();
        let mut old = earlier.buckets.iter().peekable();
        for &(i, n) in &self.buckets {
            while old.peek().is_some_and(|&&(j, _)| j < i) {
                old.next();
            }
            let before = match old.peek() {
                Some(&&(j, m)) if j == i => m,
                _ => 0,
            };
            let n = n.saturating_sub(before);
            if n > 0 {
                out.buckets.push((i, n));
                out.count += n;
            }
        }
        let (Some(&(first, _)), Some(&(last, _))) = (out.buckets.first(), out.buckets.last())
        else {
            return out;
        };
        out.sum = self.sum.saturating_sub(earlier.sum);
        out.min = if self.min < earlier.min {
            self.min
        } else {
            lower_bound(usize::from(first)).max(self.min)
        };
        out.max = if self.max > earlier.max {
            self.max
        } else {
            upper_bound(usize::from(last)).min(self.max)
        };
        out
    }
}

/// The sum of many [`Latencies`]: fixed size, merged in one pass each.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Add one value.
    pub fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Add a distribution.
    pub fn add(&mut self, latencies: &Latencies) {
        if latencies.count == 0 {
            return;
        }
        for &(i, n) in &latencies.buckets {
            self.counts[usize::from(i)] += n;
        }
        self.count += latencies.count;
        self.sum += latencies.sum;
        self.min = self.min.min(latencies.min);
        self.max = self.max.max(latencies.max);
    }

    /// Add another histogram.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0.0–1.0): the upper end of the bucket that
    /// holds it, never more than the largest value. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_bound(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Count, mean, p50, p90, p99, p99.9 and max, for reports.
    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count,
            mean: (self.count > 0).then(|| (self.sum / u128::from(self.count)) as u64),
            min: (self.count > 0).then_some(self.min),
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: (self.count > 0).then_some(self.max),
        }
    }
}

/// A distribution in numbers. Every field but `count` is `null` (`None`)
/// when nothing was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean: Option<u64>,
    pub min: Option<u64>,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub max: Option<u64>,
}

/// Read salon-client's cumulative histogram back into [`Latencies`]: its
/// buckets, with the exact count, sum, min and max. Each bucket's values are
/// taken at its upper bound (never above the maximum), as its quantiles are.
pub fn from_client(h: &LatencyHistogram) -> Latencies {
    let mut out = Latencies::new();
    let Some(max) = h.max() else {
        return out;
    };
    for (i, n) in h.buckets() {
        out.record_n(upper_bound(i).min(max), n);
    }
    out.min = h.min().unwrap_or(out.min);
    out.max = max;
    out.sum = h.sum();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_contiguous() {
        for i in 1..BUCKETS - 1 {
            assert_eq!(lower_bound(i), upper_bound(i - 1) + 1, "bucket {i}");
            assert_eq!(index(lower_bound(i)), i);
            assert_eq!(index(upper_bound(i)), i);
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn a_client_histogram_reads_back_bucket_for_bucket() {
        let mut client = LatencyHistogram::new();
        let mut direct = Histogram::new();
        // A skewed distribution with a long tail, and repeated values.
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 40 + (x >> 40) % 900 + if (x >> 20) % 100 == 0 { 20_000 } else { 0 };
            client.record(v);
            direct.record(v);
        }
        let read = from_client(&client);
        assert_eq!(read.count(), 20_000);
        let mut merged = Histogram::new();
        merged.add(&read);
        for q in [0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.quantile(q), client.quantile(q), "q {q}");
            assert_eq!(merged.quantile(q), direct.quantile(q), "q {q}");
        }
        assert_eq!(merged.summary().max, client.max());
        assert_eq!(merged.summary().min, client.min());
        assert_eq!(merged.summary().mean, client.mean());
    }

    #[test]
    fn an_empty_or_single_value_histogram_reads_back() {
        assert_eq!(from_client(&LatencyHistogram::new()).count(), 0);
        let mut client = LatencyHistogram::new();
        client.record(777);
        let read = from_client(&client);
        assert_eq!((read.count(), read.max()), (1, Some(777)));
    }

    #[test]
    fn the_difference_is_what_came_after() {
        let mut before = Latencies::new();
        for v in [10, 20, 30, 1000] {
            before.record(v);
        }
        let mut after = before.clone();
        // Out of order on purpose: record_n keeps buckets sorted.
        for v in [500, 20, 40] {
            after.record(v);
        }
        let window = after.since(&before);
        assert_eq!(window.count(), 3);
        let mut h = Histogram::new();
        h.add(&window);
        assert_eq!(h.quantile(0.0), Some(20));
        // 500's bucket ends at 503; the old maximum (1000) is not in the window.
        assert_eq!(h.quantile(1.0), Some(503));
        assert_eq!(window.max(), Some(503));
        assert_eq!(h.summary().mean, Some((500 + 20 + 40) / 3));
        // Nothing new: empty.
        assert_eq!(after.since(&after).count(), 0);
        // A new maximum is exact.
        after.record(5000);
        assert_eq!(after.since(&before).max(), Some(5000));
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..100 {
            a.record(v);
            b.record(v + 100);
        }
        a.merge(&b);
        assert_eq!(a.count(), 200);
        assert_eq!(a.quantile(0.5), Some(99));
        let s = a.summary();
        assert_eq!((s.min, s.max), (Some(0), Some(199)));
    }
}

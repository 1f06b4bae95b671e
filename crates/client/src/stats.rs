//! What the client measures: per published track what it sent, per
//! subscribed track what arrived, how late, and what went missing.
//!
//! [`ReceiveStats::record_packet`] and the `PublishStats` counters are
//! updated by the media session as packets go by; a [`ClientStats`] is a
//! copy taken at one moment. Loss counts RTP sequence numbers (the extended,
//! 64-bit ones str0m provides), so a packet that arrives late, after a
//! retransmission or out of order, fills its hole instead of counting twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use salon_sid::TrackSid;
use salon_signal::TrackKind;

/// A copy of everything the client measured.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    /// Per published track, by name.
    pub published: BTreeMap<String, PublishStats>,
    /// Per subscribed track, by SID (current and past subscriptions).
    pub subscribed: BTreeMap<TrackSid, ReceiveStats>,
    /// Incoming RTP packets dropped on purpose before the WebRTC stack saw
    /// them (see [`crate::ClientConfig::receive_loss`]).
    pub simulated_losses: u64,
    /// Offers the server refused for its message rate limit (20429, not
    /// handled) and the client sent again after a pause.
    pub offers_sent_again: u64,
    /// Offers that restarted ICE (after the media connection was lost, or
    /// a move to another network).
    pub ice_restarts: u64,
    /// Times the media connection was lost and came back
    /// ([`crate::ClientEvent::Reconnected`]).
    pub reconnections: u64,
    /// Times the signaling socket dropped and the session resumed on a new
    /// one ([`crate::ClientEvent::Resumed`]).
    pub resumes: u64,
    /// REMB reports sent, and the last estimate in them, bits per second
    /// ([`crate::remb`]).
    pub rembs: u64,
    pub last_remb_bps: u64,
}

/// What was sent on one published track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishStats {
    pub kind: TrackKind,
    /// The track's SID, once the server confirmed the publication.
    pub track: Option<TrackSid>,
    /// RTP packets (data: messages) sent.
    pub packets: u64,
    /// RTP payload bytes (data: message bytes) sent.
    pub bytes: u64,
    /// Frames sent (audio: packets).
    pub frames: u64,
    pub keyframes: u64,
    /// PLI and FIR received for this track.
    pub keyframe_requests: u64,
    /// Simulcast: the RIDs of the layers the server's `layers` paused (not
    /// sent until it resumes them).
    pub paused: Vec<String>,
}

impl PublishStats {
    pub(crate) fn new(kind: TrackKind) -> Self {
        Self {
            kind,
            track: None,
            packets: 0,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            keyframe_requests: 0,
            paused: Vec::new(),
        }
    }
}

/// What arrived on one subscribed track.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    pub kind: TrackKind,
    /// RTP packets (data: messages) received, each sequence number once.
    pub packets: u64,
    /// RTP payload bytes (data: message bytes) received.
    pub bytes: u64,
    /// Completed frames: video packets with the marker bit; every audio packet.
    pub frames: u64,
    /// Packets that start a VP8 keyframe.
    pub keyframes: u64,
    /// Packets without a valid probe (not sent by a Salon client).
    pub foreign: u64,
    /// One-way latency of every probed packet, in microseconds.
    pub latency: LatencyHistogram,
    /// When the subscription started (the `subscribed` message).
    pub subscribed_at: Instant,
    pub first_packet_at: Option<Instant>,
    pub first_keyframe_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// Video: the width and height of the last keyframe (the simulcast
    /// layer received), 0 before one.
    pub width: u16,
    pub height: u16,
    sequence: SequenceTracker,
}

impl ReceiveStats {
    pub fn new(kind: TrackKind, subscribed_at: Instant) -> Self {
        Self {
            kind,
            packets: 0,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            foreign: 0,
            latency: LatencyHistogram::new(),
            subscribed_at,
            first_packet_at: None,
            first_keyframe_at: None,
            last_packet_at: None,
            width: 0,
            height: 0,
            sequence: SequenceTracker::default(),
        }
    }

    /// Count one RTP packet. `seq` is the extended sequence number,
    /// `latency_us` what its probe says (if it has one). Duplicates are
    /// ignored; the return value says whether the packet was new.
    pub fn record_packet(
        &mut self,
        at: Instant,
        seq: u64,
        bytes: usize,
        end_of_frame: bool,
        keyframe: bool,
        latency_us: Option<u64>,
    ) -> bool {
        if self.sequence.record(seq) == Arrival::Duplicate {
            return false;
        }
        self.packets += 1;
        self.bytes += bytes as u64;
        self.frames += u64::from(end_of_frame);
        if keyframe {
            self.keyframes += 1;
            self.first_keyframe_at.get_or_insert(at);
        }
        match latency_us {
            Some(us) => self.latency.record(us),
            None => self.foreign += 1,
        }
        self.first_packet_at.get_or_insert(at);
        self.last_packet_at = Some(at);
        true
    }

    /// Count one data message.
    pub fn record_message(&mut self, at: Instant, bytes: usize) {
        self.packets += 1;
        self.frames += 1;
        self.bytes += bytes as u64;
        self.first_packet_at.get_or_insert(at);
        self.last_packet_at = Some(at);
    }

    /// Packets between the lowest and highest sequence number seen.
    pub fn expected(&self) -> u64 {
        self.sequence.expected()
    }

    /// Packets missing: expected minus received. A late packet that fills
    /// a gap lowers this again.
    pub fn lost(&self) -> u64 {
        self.sequence
            .expected()
            .saturating_sub(self.sequence.received)
    }

    /// `lost / expected`, 0 before the first packet.
    pub fn loss_fraction(&self) -> f64 {
        let expected = self.expected();
        if expected == 0 {
            0.0
        } else {
            self.lost() as f64 / expected as f64
        }
    }

    /// Packets that arrived after a packet with a higher sequence number
    /// (reordered, or retransmitted after a NACK).
    pub fn late(&self) -> u64 {
        self.sequence.late
    }

    /// Packets whose sequence number had already been received.
    pub fn duplicates(&self) -> u64 {
        self.sequence.duplicates
    }

    /// From the subscription to the first packet.
    pub fn time_to_first_packet(&self) -> Option<Duration> {
        Some(
            self.first_packet_at?
                .saturating_duration_since(self.subscribed_at),
        )
    }

    /// From the subscription to the first keyframe.
    pub fn time_to_first_keyframe(&self) -> Option<Duration> {
        Some(
            self.first_keyframe_at?
                .saturating_duration_since(self.subscribed_at),
        )
    }

    /// Average received bitrate between the first and the last packet, in
    /// bits per second (0 until two packets arrived at different times).
    pub fn bitrate_bps(&self) -> f64 {
        match (self.first_packet_at, self.last_packet_at) {
            (Some(first), Some(last)) if last > first => {
                self.bytes as f64 * 8.0 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// How a sequence number relates to what arrived before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Higher than every sequence number so far (or the first).
    InOrder,
    /// Lower than the highest so far, not seen before.
    Late,
    /// Seen before.
    Duplicate,
}

/// Which sequence numbers arrived: the range seen and a window of the most
/// recent [`SequenceTracker::WINDOW`] numbers to recognise duplicates.
#[derive(Clone, Default)]
pub(crate) struct SequenceTracker {
    lowest: Option<u64>,
    highest: u64,
    received: u64,
    late: u64,
    duplicates: u64,
    /// Bit `s % WINDOW` is set when sequence number `s` (within WINDOW of
    /// `highest`) arrived.
    seen: Vec<u64>,
}

impl std::fmt::Debug for SequenceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceTracker")
            .field("lowest", &self.lowest)
            .field("highest", &self.highest)
            .field("received", &self.received)
            .field("late", &self.late)
            .field("duplicates", &self.duplicates)
            .finish_non_exhaustive()
    }
}

impl SequenceTracker {
    const WINDOW: u64 = 4096;

    pub(crate) fn record(&mut self, seq: u64) -> Arrival {
        if self.seen.is_empty() {
            self.seen = vec![0; (Self::WINDOW / 64) as usize];
        }
        let Some(lowest) = self.lowest else {
            self.lowest = Some(seq);
            self.highest = seq;
            self.received = 1;
            self.mark(seq);
            return Arrival::InOrder;
        };
        if seq > self.highest {
            // Forget the window slots the new highest pushes out.
            let gap = seq - self.highest;
            if gap >= Self::WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for s in self.highest + 1..seq {
                    self.unmark(s);
                }
            }
            self.highest = seq;
            self.received += 1;
            self.mark(seq);
            return Arrival::InOrder;
        }
        let in_window = self.highest - seq < Self::WINDOW;
        if in_window && self.is_marked(seq) {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        // Older than the window: assume it is new (it cannot be told apart).
        if in_window {
            self.mark(seq);
        }
        if seq < lowest {
            self.lowest = Some(seq);
        }
        self.received += 1;
        self.late += 1;
        Arrival::Late
    }

    pub(crate) fn expected(&self) -> u64 {
        match self.lowest {
            Some(lowest) => self.highest - lowest + 1,
            None => 0,
        }
    }

    fn slot(seq: u64) -> (usize, u64) {
        let bit = seq % Self::WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn mark(&mut self, seq: u64) {
        let (i, m) = Self::slot(seq);
        self.seen[i] |= m;
    }

    fn unmark(&mut self, seq: u64) {
        let (i, m) = Self::slot(seq);
        self.seen[i] &= !m;
    }

    fn is_marked(&self, seq: u64) -> bool {
        let (i, m) = Self::slot(seq);
        self.seen[i] & m != 0
    }
}

/// A histogram of microsecond values with log-linear buckets: exact below
/// 64 µs, then 32 buckets per power of two (at most 3 % relative error), up
/// to about 19 hours. Fixed size (8 KiB), constant time to record.
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Box<[u64; Self::BUCKETS]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl LatencyHistogram {
    const SUB_BITS: u32 = 5;
    const SUB: u64 = 1 << Self::SUB_BITS; // 32
    const EXACT: u64 = 2 * Self::SUB; // 64
    /// Values up to 2^36 µs get their own bucket; larger ones share the last.
    const MAX_MSB: u32 = 35;
    /// Number of buckets.
    pub const BUCKETS: usize =
        (Self::EXACT + (Self::MAX_MSB as u64 - Self::SUB_BITS as u64) * Self::SUB) as usize;

    pub fn new() -> Self {
        Self {
            counts: Box::new([0; Self::BUCKETS]),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, value_us: u64) {
        self.counts[Self::bucket_index(value_us)] += 1;
        self.count += 1;
        self.sum += u128::from(value_us);
        self.min = self.min.min(value_us);
        self.max = self.max.max(value_us);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// The exact largest value.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn mean(&self) -> Option<u64> {
        (self.count > 0).then(|| (self.sum / u128::from(self.count)) as u64)
    }

    /// The value at quantile `q` (0.0–1.0): the upper end of the bucket that
    /// holds it, never more than the largest value recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::bucket_upper_bound(i).min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn p50(&self) -> Option<u64> {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> Option<u64> {
        self.quantile(0.99)
    }

    /// The exact sum of the values recorded.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// The non-empty buckets in increasing order, as (bucket index, count):
    /// what a load test needs to merge and subtract distributions.
    pub fn buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (i, n))
    }

    /// The bucket that holds `v`.
    pub fn bucket_index(v: u64) -> usize {
        if v < Self::EXACT {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        if msb > Self::MAX_MSB {
            return Self::BUCKETS - 1;
        }
        let shift = msb - Self::SUB_BITS;
        let top = v >> shift; // in [32, 64)
        (Self::EXACT + u64::from(shift - 1) * Self::SUB + (top - Self::SUB)) as usize
    }

    /// The largest value bucket `index` holds (`u64::MAX` for the last,
    /// which holds everything above 2^36 µs).
    pub fn bucket_upper_bound(index: usize) -> u64 {
        let i = index as u64;
        if i < Self::EXACT {
            return i;
        }
        if index >= Self::BUCKETS - 1 {
            return u64::MAX;
        }
        let shift = (i - Self::EXACT) / Self::SUB + 1;
        let top = (i - Self::EXACT) % Self::SUB + Self::SUB;
        ((top + 1) << shift) - 1
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("p50", &self.p50())
            .field("p99", &self.p99())
            .field("max", &self.max())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> ReceiveStats {
        ReceiveStats::new(TrackKind::Video, Instant::now())
    }

    fn feed(s: &mut ReceiveStats, seqs: &[u64]) {
        let now = Instant::now();
        for &seq in seqs {
            s.record_packet(now, seq, 100, false, false, Some(1));
        }
    }

    #[test]
    fn no_gaps_no_loss() {
        let mut s = stats();
        feed(&mut s, &(1000..2000).collect::<Vec<_>>());
        assert_eq!(
            (s.packets, s.expected(), s.lost(), s.late()),
            (1000, 1000, 0, 0)
        );
        assert_eq!(s.loss_fraction(), 0.0);
    }

    #[test]
    fn a_gap_is_loss() {
        let mut s = stats();
        let seqs: Vec<u64> = (0..100).filter(|n| n % 10 != 3).collect();
        feed(&mut s, &seqs);
        assert_eq!((s.expected(), s.lost()), (100, 10));
        assert!((s.loss_fraction() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_late_packet_fills_its_gap() {
        let mut s = stats();
        feed(&mut s, &[1, 2, 4, 5]);
        assert_eq!(s.lost(), 1);
        feed(&mut s, &[3]);
        assert_eq!((s.lost(), s.late(), s.packets), (0, 1, 5));
    }

    #[test]
    fn a_reordered_first_packet_extends_the_range_down() {
        let mut s = stats();
        feed(&mut s, &[10, 11, 9, 12]);
        assert_eq!((s.expected(), s.lost(), s.late()), (4, 0, 1));
    }

    #[test]
    fn duplicates_count_once() {
        let mut s = stats();
        feed(&mut s, &[1, 2, 2, 3, 1]);
        assert_eq!((s.packets, s.duplicates(), s.lost()), (3, 2, 0));
    }

    #[test]
    fn the_window_forgets_what_it_passed() {
        let mut s = stats();
        feed(&mut s, &[0]);
        feed(&mut s, &[SequenceTracker::WINDOW + 10]);
        // 0 is outside the window now: counted late, not duplicate.
        feed(&mut s, &[SequenceTracker::WINDOW + 5]);
        assert_eq!(s.duplicates(), 0);
        feed(&mut s, &[SequenceTracker::WINDOW + 5]);
        assert_eq!(s.duplicates(), 1);
        // Slots reused after a jump hold no stale marks.
        let mut s = stats();
        feed(&mut s, &[5, 6]);
        feed(&mut s, &[6 + 2 * SequenceTracker::WINDOW - 1]);
        feed(&mut s, &[5 + 2 * SequenceTracker::WINDOW - 1]);
        assert_eq!(s.duplicates(), 0);
    }

    #[test]
    fn frames_keyframes_and_first_times() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(TrackKind::Video, t0);
        let ms = Duration::from_millis;
        s.record_packet(t0 + ms(10), 1, 1000, false, false, Some(500));
        s.record_packet(t0 + ms(20), 2, 1000, true, false, Some(700));
        s.record_packet(t0 + ms(30), 3, 1000, true, true, None);
        assert_eq!((s.frames, s.keyframes, s.foreign), (2, 1, 1));
        assert_eq!(s.time_to_first_packet(), Some(ms(10)));
        assert_eq!(s.time_to_first_keyframe(), Some(ms(30)));
        assert_eq!(s.latency.count(), 2);
        assert_eq!(s.latency.max(), Some(700));
        // 3000 bytes over 20 ms.
        assert!(
            (s.bitrate_bps() - 1_200_000.0).abs() < 1.0,
            "{}",
            s.bitrate_bps()
        );
    }

    #[test]
    fn the_histogram_is_exact_for_small_values() {
        let mut h = LatencyHistogram::new();
        for v in 1..=50 {
            h.record(v);
        }
        assert_eq!(h.p50(), Some(25));
        assert_eq!(h.quantile(1.0), Some(50));
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.mean(), Some(25));
    }

    #[test]
    fn the_histogram_is_within_three_percent_for_large_values() {
        let mut h = LatencyHistogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        let p50 = h.p50().unwrap() as f64;
        let p99 = h.p99().unwrap() as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.03, "p50 {p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.03, "p99 {p99}");
        assert_eq!(h.max(), Some(1_000_000));
        assert_eq!(h.quantile(1.0), Some(1_000_000));
    }

    #[test]
    fn histogram_buckets_are_contiguous_and_cover_everything() {
        let mut last = None;
        for v in (0..5000u64).chain([1 << 20, (1 << 36) - 1, 1 << 36, u64::MAX]) {
            let i = LatencyHistogram::bucket_index(v);
            assert!(i < LatencyHistogram::BUCKETS);
            if v < LatencyHistogram::EXACT << 8 {
                assert!(LatencyHistogram::bucket_upper_bound(i) >= v, "{v}");
            }
            if let Some((pv, pi)) = last {
                if v == pv + 1 {
                    assert!(i == pi || i == pi + 1, "{v}: {pi} -> {i}");
                }
            }
            last = Some((v, i));
        }
        let mut h = LatencyHistogram::new();
        h.record(u64::MAX);
        assert_eq!(h.p50(), Some(u64::MAX));
        assert_eq!(LatencyHistogram::new().p50(), None);
    }
}

//! Network quality: Twilio's level 0–5 per participant, and the
//! `networkQualityStats` behind it, computed from what the server sees of
//! the participant's media in both directions.
//!
//! # The contract
//!
//! One [`NetworkQuality`] exists per participant. It is sans-IO: no
//! sockets, no clock, no `str0m` types.
//!
//! * [`NetworkQuality::record`] takes a [`PathSample`] for one *path* — audio
//!   or video, sent by the participant ([`Direction::Send`], what the server
//!   receives from it) or received by it ([`Direction::Recv`], what the
//!   server forwards to it): packets, loss, round-trip time, jitter, and the
//!   bitrate carried, available and wanted. Several samples for one path in
//!   one interval (one per track) are merged.
//! * [`NetworkQuality::tick`] closes the interval, every [`INTERVAL`], with
//!   the time anything was last heard from the participant, and returns the
//!   participant's level when it changes (and the first time).
//! * [`NetworkQuality::report`], after a tick, says whether the
//!   participant's stats are worth sending again: its level or a path's
//!   level changed since the last report, or [`REPORT_EVERY`] passed (the
//!   measurements behind them move; twilio-video shows them at verbosity 3).
//! * [`NetworkQuality::stats`] renders what twilio-video's
//!   `NetworkQualityStats` exposes at a [`Verbosity`]: the level (1,
//!   `minimal`), the audio and video send and receive levels (2,
//!   `moderate`), and the measurements behind them (3, `detailed`).
//!
//! ```
//! use std::time::Instant;
//! use salon_media::MediaKind;
//! use salon_media::quality::*;
//!
//! let t0 = Instant::now();
//! let mut quality = NetworkQuality::new(t0);
//! let clean = PathSample { active: true, packets: 50, loss: Some(0.0), ..PathSample::default() };
//! quality.record(MediaKind::Audio, Direction::Send, clean);
//! assert_eq!(quality.tick(t0 + INTERVAL, t0 + INTERVAL), Some(Level::EXCELLENT));
//! let stats = quality.stats(Verbosity::Moderate).unwrap();
//! assert_eq!(stats.audio.unwrap().send, Level::EXCELLENT);
//! ```
//!
//! # The algorithm
//!
//! Twilio's levels: 5 excellent, 4 good, 3 average, 2 below average, 1 bad,
//! 0 broken (reconnecting); "not an absolute metric, but a score relative
//! to what you are demanding from the network", and 5 when nothing is sent
//! or received. Each interval, each path in use is scored three ways, each
//! 1–5, and takes the worst:
//!
//! * **fraction lost** — video suffers first (no codec repair; LiveKit's
//!   scorer leaves "excellent" at 2% and reaches "poor" at 6%), Opus
//!   audio later (in-band FEC and concealment: 2.5% and 7.5% there). Here
//!   video reaches 4 at 1%, 3 at 2%, 2 at 4%, 1 at 8%; audio 4 at 2%, 3 at
//!   4%, 2 at 8%, 1 at 15%. Intervals with fewer than [`MIN_PACKETS`]
//!   packets are not scored for loss (one lost packet of audio in DTX
//!   silence is not 30% loss);
//! * **latency** — the E-model's effective one-way delay, round trip / 2 +
//!   2 × jitter (as LiveKit's scorer simplifies it), against ITU-T G.114:
//!   up to 100 ms 5, 150 ms (G.114's limit for most applications) 4,
//!   250 ms 3, 400 ms (G.114's limit for acceptable planning) 2, above 1;
//! * **bandwidth** — what the path can carry (the estimate, else what it
//!   carried) against what is wanted of it: 90% of the demand or more 5,
//!   70% 4, 50% 3, 30% 2, less 1. This is the "relative to demand" part: a
//!   subscriber that wants three HD tiles on a 1 Mbit/s link scores lower
//!   than one that wants thumbnails.
//!
//! A path is **dead** when it is in use and nothing of it gets through —
//! the participant's media stopped arriving, or its reports say 95% and
//! more is lost — for [`DEAD_INTERVALS`] intervals in a row, and the whole
//! participant is when nothing at all was heard from it for [`DEAD_AFTER`]:
//! both score 0.
//!
//! **Smoothing.** A path's level goes down after [`DOWN_INTERVALS`] worse
//! intervals in a row (to the better of them) and up after
//! [`UP_INTERVALS`] better ones (to the worst of them), so one bad second
//! does not move it, trouble shows within two, and recovery is believed
//! after five. A path's first measurement, 0, and the way back from 0 are
//! taken at once. The participant's
//! level is the worst of its paths in use.
//!
//! # Cost
//!
//! [`NetworkQuality::record`]: O(1) per sample, per track per interval —
//! not per packet. [`NetworkQuality::tick`]: O(1), once a second. No
//! allocation.

use std::fmt;
use std::time::{Duration, Instant};

use crate::MediaKind;

/// How often [`NetworkQuality::tick`] wants to run.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Intervals a worse level must last before it is reported.
pub const DOWN_INTERVALS: u8 = 2;
/// Intervals a better level must last before it is reported.
pub const UP_INTERVALS: u8 = 5;
/// Consecutive dead intervals that make a path score 0.
pub const DEAD_INTERVALS: u8 = 2;
/// Silence from the participant (no packet of any kind) that makes it 0.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);
/// Loss at which a path counts as dead.
pub const DEAD_LOSS: f64 = 0.95;
/// The longest [`NetworkQuality::report`] goes without a report while
/// levels hold.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Fewest packets in an interval for its loss to be scored.
pub const MIN_PACKETS: u64 = 20;

/// A network quality level, 0–5 (Twilio's `NetworkQualityLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

impl Level {
    /// Network broken (reconnecting).
    pub const BROKEN: Level = Level(0);
    pub const BAD: Level = Level(1);
    pub const BELOW_AVERAGE: Level = Level(2);
    pub const AVERAGE: Level = Level(3);
    pub const GOOD: Level = Level(4);
    pub const EXCELLENT: Level = Level(5);

    /// The level `n`, if `n` is 0..=5.
    pub fn new(n: u8) -> Option<Level> {
        (n <= 5).then_some(Level(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// 5 less the number of `limits` the value reaches: `limits` ascending,
    /// each one a level lower.
    fn below(value: f64, limits: [f64; 4]) -> Level {
        Level(5 - limits.iter().filter(|l| value >= **l).count() as u8)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How much a participant is told: Twilio's `NetworkQualityVerbosity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verbosity {
    /// Nothing (twilio-video treats it as `Minimal` for the local
    /// participant; that is the SDK's business).
    None = 0,
    /// The level.
    Minimal = 1,
    /// The level and the audio and video send and receive levels.
    Moderate = 2,
    /// All of that and the measurements behind each of them.
    Detailed = 3,
}

/// A verbosity outside 0–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("network quality verbosity must be 0, 1, 2 or 3 (got {0})")]
pub struct InvalidVerbosity(pub i64);

impl TryFrom<i64> for Verbosity {
    type Error = InvalidVerbosity;
    fn try_from(n: i64) -> Result<Self, InvalidVerbosity> {
        match n {
            0 => Ok(Verbosity::None),
            1 => Ok(Verbosity::Minimal),
            2 => Ok(Verbosity::Moderate),
            3 => Ok(Verbosity::Detailed),
            _ => Err(InvalidVerbosity(n)),
        }
    }
}

/// Which way media goes, from the participant's side (Twilio's `send` is
/// the participant's published media, `recv` its subscribed media).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the participant to the server.
    Send,
    /// From the server to the participant.
    Recv,
}

/// What the server measured on one path over one interval. Unknown
/// measurements are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PathSample {
    /// Whether the path should carry media now: a published, enabled track
    /// for `Send`; a track forwarded to the participant for `Recv`.
    pub active: bool,
    /// Packets carried in the interval: received by the server for `Send`,
    /// sent by it for `Recv`.
    pub packets: u64,
    /// Fraction of packets lost, 0.0–1.0: the server's own count for
    /// `Send`, the participant's receiver reports for `Recv`.
    pub loss: Option<f64>,
    pub rtt: Option<Duration>,
    /// Interarrival jitter (RFC 3550 §6.4.1), as time.
    pub jitter: Option<Duration>,
    /// Bits per second carried.
    pub bitrate: Option<u64>,
    /// Bits per second the path is estimated to carry (the subscriber's
    /// bandwidth estimate for `Recv`).
    pub available: Option<u64>,
    /// Bits per second wanted of the path: what the publisher's encodings
    /// aim at for `Send`, what the subscriptions would take at their best
    /// (within render sizes and `maxSubscriptionBitrate`) for `Recv`.
    pub wanted: Option<u64>,
}

impl PathSample {
    /// Fold `other` (another track on the same path) into this one.
    fn merge(&mut self, other: &PathSample) {
        let (a, b) = (self.packets.max(1) as f64, other.packets.max(1) as f64);
        self.loss = match (self.loss, other.loss) {
            (Some(x), Some(y)) => Some((x * a + y * b) / (a + b)),
            (x, y) => x.or(y),
        };
        self.active |= other.active;
        self.packets = self.packets.saturating_add(other.packets);
        self.rtt = self.rtt.max(other.rtt);
        self.jitter = self.jitter.max(other.jitter);
        self.bitrate = sum(self.bitrate, other.bitrate);
        self.available = self.available.max(other.available);
        self.wanted = sum(self.wanted, other.wanted);
    }
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// Twilio's `NetworkQualityStats`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkQualityStats {
    pub level: Level,
    /// Present from `Moderate` on.
    pub audio: Option<MediaQualityStats>,
    pub video: Option<MediaQualityStats>,
}

impl NetworkQualityStats {
    /// These stats as a client that asked for `verbosity` sees them: the
    /// level alone at [`Verbosity::Minimal`], the paths' levels too at
    /// [`Verbosity::Moderate`], everything at [`Verbosity::Detailed`];
    /// nothing at [`Verbosity::None`].
    pub fn at(&self, verbosity: Verbosity) -> Option<NetworkQualityStats> {
        let media = |m: &Option<MediaQualityStats>| match verbosity {
            Verbosity::None | Verbosity::Minimal => None,
            Verbosity::Moderate => m.as_ref().map(|m| MediaQualityStats {
                send_stats: None,
                recv_stats: None,
                ..m.clone()
            }),
            Verbosity::Detailed => m.clone(),
        };
        (verbosity != Verbosity::None).then(|| NetworkQualityStats {
            level: self.level,
            audio: media(&self.audio),
            video: media(&self.video),
        })
    }
}

/// Twilio's `NetworkQualityMediaStats` (`NetworkQualityAudioStats`,
/// `NetworkQualityVideoStats`).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaQualityStats {
    /// The level of the participant's published media of this kind (5 when
    /// it publishes none).
    pub send: Level,
    /// The level of its subscribed media of this kind.
    pub recv: Level,
    /// Present at `Detailed`, for a path that was measured.
    pub send_stats: Option<PathStats>,
    pub recv_stats: Option<PathStats>,
}

/// Twilio's `NetworkQualitySendOrRecvStats`: the last interval's
/// measurements and the level each one alone scores.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStats {
    pub bandwidth: Option<BandwidthStats>,
    pub fraction_lost: Option<FractionLostStats>,
    pub latency: Option<LatencyStats>,
}

/// Twilio's `NetworkQualityBandwidthStats`, bits per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandwidthStats {
    pub actual: Option<u64>,
    pub available: Option<u64>,
    pub level: Option<Level>,
}

/// Twilio's `NetworkQualityFractionLostStats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FractionLostStats {
    /// 0.0–1.0.
    pub fraction_lost: f64,
    /// `None` when too few packets were carried to judge.
    pub level: Option<Level>,
}

/// Twilio's `NetworkQualityLatencyStats` (seconds on Twilio's wire).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyStats {
    pub jitter: Option<Duration>,
    pub rtt: Option<Duration>,
    pub level: Option<Level>,
}

/// The network quality of one participant. See the module docs.
#[derive(Debug)]
pub struct NetworkQuality {
    /// Audio send, audio recv, video send, video recv.
    paths: [Path; 4],
    level: Option<Level>,
    last_tick: Instant,
    /// The levels (participant, then each path's) of the last report, and
    /// when it was made.
    reported: Option<([Level; 5], Instant)>,
}

#[derive(Debug, Default)]
struct Path {
    /// Samples of the interval in progress, merged.
    pending: Option<PathSample>,
    /// The last closed interval and its scores.
    last: Option<(PathSample, Scores)>,
    in_use: bool,
    dead_for: u8,
    level: Smoothed,
}

#[derive(Debug, Clone, Copy, Default)]
struct Scores {
    bandwidth: Option<Level>,
    fraction_lost: Option<Level>,
    latency: Option<Level>,
}

impl Scores {
    fn of(kind: MediaKind, s: &PathSample) -> Scores {
        let fraction_lost = s.loss.filter(|_| s.packets >= MIN_PACKETS).map(|loss| {
            let limits = match kind {
                MediaKind::Audio => [0.02, 0.04, 0.08, 0.15],
                MediaKind::Video => [0.01, 0.02, 0.04, 0.08],
            };
            Level::below(loss, limits)
        });
        let latency = (s.rtt.is_some() || s.jitter.is_some()).then(|| {
            let rtt = s.rtt.unwrap_or_default().as_secs_f64();
            let jitter = s.jitter.unwrap_or_default().as_secs_f64();
            Level::below(
                rtt / 2.0 + 2.0 * jitter,
                [0.100, 0.150, 0.250, 0.400].map(|l| l + 1e-9),
            )
        });
        let bandwidth = match (s.wanted, s.available.or(s.bitrate)) {
            (Some(wanted), Some(have)) if wanted > 0 => {
                let shortfall = 1.0 - have as f64 / wanted as f64;
                // Compare the shortfall so that "90% or more" is 5.
                Some(Level::below(
                    shortfall,
                    [0.1, 0.3, 0.5, 0.7].map(|l| l + 1e-9),
                ))
            }
            _ => None,
        };
        Scores {
            bandwidth,
            fraction_lost,
            latency,
        }
    }

    fn worst(&self) -> Option<Level> {
        [self.bandwidth, self.fraction_lost, self.latency]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A level with hysteresis.
#[derive(Debug, Clone, Copy)]
struct Smoothed {
    level: Level,
    down_run: u8,
    down_to: Level,
    up_run: u8,
    up_to: Level,
}

impl Default for Smoothed {
    fn default() -> Self {
        Self {
            level: Level::EXCELLENT,
            down_run: 0,
            down_to: Level::EXCELLENT,
            up_run: 0,
            up_to: Level::EXCELLENT,
        }
    }
}

impl Smoothed {
    fn at_once(&mut self, level: Level) {
        *self = Smoothed {
            level,
            ..Smoothed::default()
        };
    }

    fn update(&mut self, raw: Level) {
        if raw == Level::BROKEN || self.level == Level::BROKEN {
            self.at_once(raw);
        } else if raw < self.level {
            self.up_run = 0;
            self.down_to = if self.down_run == 0 {
                raw
            } else {
                self.down_to.max(raw)
            };
            self.down_run += 1;
            if self.down_run >= DOWN_INTERVALS {
                self.at_once(self.down_to);
            }
        } else if raw > self.level {
            self.down_run = 0;
            self.up_to = if self.up_run == 0 {
                raw
            } else {
                self.up_to.min(raw)
            };
            self.up_run += 1;
            if self.up_run >= UP_INTERVALS {
                self.at_once(self.up_to);
            }
        } else {
            self.down_run = 0;
            self.up_run = 0;
        }
    }
}

const KINDS: [MediaKind; 2] = [MediaKind::Audio, MediaKind::Video];

fn path_index(kind: MediaKind, direction: Direction) -> usize {
    let k = match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 2,
    };
    k + match direction {
        Direction::Send => 0,
        Direction::Recv => 1,
    }
}

impl NetworkQuality {
    /// A participant that joined at `now`: no level until the first tick.
    pub fn new(now: Instant) -> Self {
        Self {
            paths: Default::default(),
            level: None,
            last_tick: now,
            reported: None,
        }
    }

    /// Add a measurement of one path to the interval in progress. Values
    /// out of range are clamped (loss to 0–1; not-a-number is unknown).
    pub fn record(&mut self, kind: MediaKind, direction: Direction, sample: PathSample) {
        let sample = PathSample {
            loss: sample
                .loss
                .filter(|l| !l.is_nan())
                .map(|l| l.clamp(0.0, 1.0)),
            ..sample
        };
        let path = &mut self.paths[path_index(kind, direction)];
        match &mut path.pending {
            Some(pending) => pending.merge(&sample),
            None => path.pending = Some(sample),
        }
    }

    /// Close the interval. `last_heard` is when the server last received
    /// anything from the participant (media, RTCP, ICE). Returns the level
    /// when it changed (or was first known).
    pub fn tick(&mut self, now: Instant, last_heard: Instant) -> Option<Level> {
        self.last_tick = now;
        for (i, path) in self.paths.iter_mut().enumerate() {
            let kind = KINDS[i / 2];
            let send = i % 2 == 0;
            let Some(sample) = path.pending.take() else {
                path.in_use = false;
                path.dead_for = 0;
                continue;
            };
            path.in_use = sample.active || sample.packets > 0;
            let nothing_through = sample.active
                && ((send && sample.packets == 0) || sample.loss.is_some_and(|l| l >= DEAD_LOSS));
            path.dead_for = if nothing_through {
                path.dead_for.saturating_add(1)
            } else {
                0
            };
            let scores = Scores::of(kind, &sample);
            let raw = if path.dead_for >= DEAD_INTERVALS {
                Some(Level::BROKEN)
            } else {
                scores.worst()
            };
            match (raw, &path.last) {
                // The first measurement has no history to smooth against.
                (Some(raw), None) => path.level.at_once(raw),
                (Some(raw), Some(_)) => path.level.update(raw),
                (None, _) => {}
            }
            path.last = Some((sample, scores));
        }
        let silent = now.saturating_duration_since(last_heard) >= DEAD_AFTER;
        let level = if silent {
            Level::BROKEN
        } else {
            self.paths
                .iter()
                .filter(|p| p.in_use)
                .map(|p| p.level.level)
                .min()
                .unwrap_or(Level::EXCELLENT)
        };
        let changed = self.level != Some(level);
        self.level = Some(level);
        changed.then_some(level)
    }

    /// Whether to report the participant's quality now (call it after
    /// [`Self::tick`]): the first time there is a level, when the level or
    /// any path's level differs from the last report, and every
    /// [`REPORT_EVERY`] otherwise. Returns the detailed stats to report
    /// (render less for lower verbosities with [`NetworkQualityStats::at`]).
    pub fn report(&mut self, now: Instant) -> Option<NetworkQualityStats> {
        let level = self.level?;
        let levels = [
            level,
            self.paths[0].current(),
            self.paths[1].current(),
            self.paths[2].current(),
            self.paths[3].current(),
        ];
        let due = match self.reported {
            None => true,
            Some((last, at)) => last != levels || now.saturating_duration_since(at) >= REPORT_EVERY,
        };
        if !due {
            return None;
        }
        self.reported = Some((levels, now));
        self.stats(Verbosity::Detailed)
    }

    /// When [`Self::tick`] should run next.
    pub fn poll_timeout(&self) -> Instant {
        self.last_tick + INTERVAL
    }

    /// The participant's level; `None` before the first tick.
    pub fn level(&self) -> Option<Level> {
        self.level
    }

    /// What twilio-video's `networkQualityStats` shows at `verbosity`;
    /// `None` at [`Verbosity::None`] or before the first tick.
    pub fn stats(&self, verbosity: Verbosity) -> Option<NetworkQualityStats> {
        let level = self.level?;
        if verbosity == Verbosity::None {
            return None;
        }
        let media = |kind: MediaKind| {
            (verbosity >= Verbosity::Moderate).then(|| {
                let send = &self.paths[path_index(kind, Direction::Send)];
                let recv = &self.paths[path_index(kind, Direction::Recv)];
                let details = |p: &Path| {
                    (verbosity == Verbosity::Detailed && p.in_use)
                        .then_some(p.last.as_ref())
                        .flatten()
                        .map(|(s, scores)| path_stats(s, scores))
                };
                MediaQualityStats {
                    send: send.current(),
                    recv: recv.current(),
                    send_stats: details(send),
                    recv_stats: details(recv),
                }
            })
        };
        Some(NetworkQualityStats {
            level,
            audio: media(MediaKind::Audio),
            video: media(MediaKind::Video),
        })
    }
}

impl Path {
    /// The smoothed level, or 5 when the path is not in use.
    fn current(&self) -> Level {
        if self.in_use {
            self.level.level
        } else {
            Level::EXCELLENT
        }
    }
}

fn path_stats(s: &PathSample, scores: &Scores) -> PathStats {
    PathStats {
        bandwidth: (s.bitrate.is_some() || s.available.is_some()).then_some(BandwidthStats {
            actual: s.bitrate,
            available: s.available,
            level: scores.bandwidth,
        }),
        fraction_lost: s.loss.map(|fraction_lost| FractionLostStats {
            fraction_lost,
            level: scores.fraction_lost,
        }),
        latency: (s.rtt.is_some() || s.jitter.is_some()).then_some(LatencyStats {
            jitter: s.jitter,
            rtt: s.rtt,
            level: scores.latency,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A participant sending and receiving audio and video, second by
    /// second, on a fake clock.
    struct Participant {
        quality: NetworkQuality,
        now: Instant,
        heard: Instant,
        levels: Vec<Level>,
    }

    fn clean(kind: MediaKind) -> PathSample {
        let (packets, bitrate) = match kind {
            MediaKind::Audio => (50, 40_000),
            MediaKind::Video => (300, 1_500_000),
        };
        PathSample {
            active: true,
            packets,
            loss: Some(0.0),
            rtt: Some(40 * MS),
            jitter: Some(5 * MS),
            bitrate: Some(bitrate),
            available: None,
            wanted: Some(bitrate),
        }
    }

    impl Participant {
        fn new() -> Self {
            let now = Instant::now();
            Self {
                quality: NetworkQuality::new(now),
                now,
                heard: now,
                levels: Vec::new(),
            }
        }

        /// One second in which every path is clean but what `change` alters.
        fn second(&mut self, change: impl Fn(MediaKind, Direction, &mut PathSample)) -> Level {
            for kind in KINDS {
                for direction in [Direction::Send, Direction::Recv] {
                    let mut sample = clean(kind);
                    change(kind, direction, &mut sample);
                    self.quality.record(kind, direction, sample);
                }
            }
            self.now += INTERVAL;
            self.heard = self.now;
            self.tick()
        }

        fn tick(&mut self) -> Level {
            if let Some(level) = self.quality.tick(self.now, self.heard) {
                self.levels.push(level);
            }
            self.quality.level().expect("known after a tick")
        }

        fn seconds(
            &mut self,
            n: usize,
            change: impl Fn(MediaKind, Direction, &mut PathSample),
        ) -> Level {
            (0..n).map(|_| self.second(&change)).last().expect("n > 0")
        }
    }

    fn untouched(_: MediaKind, _: Direction, _: &mut PathSample) {}

    #[test]
    fn a_clean_link_is_excellent() {
        let mut p = Participant::new();
        assert_eq!(
            p.quality.level(),
            None,
            "nothing known before the first interval"
        );
        assert_eq!(p.seconds(10, untouched), Level::EXCELLENT);
        assert_eq!(p.levels, [Level::EXCELLENT], "reported once");
    }

    #[test]
    fn ten_percent_loss_on_sent_video_is_bad_within_two_seconds() {
        let mut p = Participant::new();
        p.seconds(5, untouched);
        let lossy = |kind: MediaKind, direction: Direction, s: &mut PathSample| {
            if kind == MediaKind::Video && direction == Direction::Send {
                s.loss = Some(0.10);
            }
        };
        assert_eq!(
            p.second(lossy),
            Level::EXCELLENT,
            "one second is not enough"
        );
        assert_eq!(p.second(lossy), Level::BAD);
        let stats = p.quality.stats(Verbosity::Detailed).unwrap();
        let video = stats.video.unwrap();
        assert!(video.send <= Level::BELOW_AVERAGE);
        assert_eq!(video.recv, Level::EXCELLENT);
        let lost = video.send_stats.unwrap().fraction_lost.unwrap();
        assert_eq!(lost.fraction_lost, 0.10);
        assert_eq!(lost.level, Some(Level::BAD));
        // Audio is hurt later by the same loss: Opus conceals it.
        let mut q = Participant::new();
        q.seconds(3, |kind, _, s| {
            if kind == MediaKind::Audio {
                s.loss = Some(0.10)
            }
        });
        assert_eq!(q.quality.level(), Some(Level::BELOW_AVERAGE));
    }

    #[test]
    fn one_bad_second_does_not_move_the_level() {
        let mut p = Participant::new();
        p.seconds(5, untouched);
        p.second(|_, _, s| s.loss = Some(0.30));
        p.seconds(10, untouched);
        assert_eq!(p.levels, [Level::EXCELLENT]);
    }

    #[test]
    fn recovery_is_believed_after_five_good_seconds() {
        let mut p = Participant::new();
        p.seconds(3, |_, _, s| s.loss = Some(0.10));
        assert_eq!(p.quality.level(), Some(Level::BAD));
        assert_eq!(p.seconds(4, untouched), Level::BAD);
        assert_eq!(p.second(untouched), Level::EXCELLENT);
    }

    #[test]
    fn round_trip_time_and_jitter_set_the_latency_level() {
        let cases = [
            (40, 5, Level::EXCELLENT),
            (200, 10, Level::GOOD),          // 100 + 20 ms
            (300, 10, Level::AVERAGE),       // 150 + 20 ms
            (400, 50, Level::BELOW_AVERAGE), // 200 + 100 ms
            (900, 10, Level::BAD),           // 450 + 20 ms
            (50, 100, Level::AVERAGE),       // 25 + 200 ms: jitter alone
        ];
        for (rtt, jitter, want) in cases {
            let mut p = Participant::new();
            let level = p.seconds(3, |_, _, s| {
                s.rtt = Some(rtt * MS);
                s.jitter = Some(jitter * MS);
            });
            assert_eq!(level, want, "rtt {rtt} ms, jitter {jitter} ms");
            let stats = p.quality.stats(Verbosity::Detailed).unwrap();
            let latency = stats.audio.unwrap().recv_stats.unwrap().latency.unwrap();
            assert_eq!(latency.rtt, Some(rtt * MS));
            assert_eq!(latency.level, Some(want));
        }
    }

    #[test]
    fn a_subscriber_that_wants_more_than_its_link_carries_scores_lower() {
        let mut p = Participant::new();
        let level = p.seconds(3, |kind, direction, s| {
            if kind == MediaKind::Video && direction == Direction::Recv {
                s.wanted = Some(3_000_000);
                s.available = Some(1_200_000);
                s.bitrate = Some(1_100_000);
            }
        });
        assert_eq!(level, Level::BELOW_AVERAGE);
        let stats = p.quality.stats(Verbosity::Detailed).unwrap();
        let bandwidth = stats.video.unwrap().recv_stats.unwrap().bandwidth.unwrap();
        assert_eq!(bandwidth.actual, Some(1_100_000));
        assert_eq!(bandwidth.available, Some(1_200_000));
        assert_eq!(bandwidth.level, Some(Level::BELOW_AVERAGE));
    }

    #[test]
    fn a_dead_direction_is_broken() {
        let mut p = Participant::new();
        p.seconds(3, untouched);
        // The camera's packets stop arriving; RTCP and audio still do.
        let stopped = |kind: MediaKind, direction: Direction, s: &mut PathSample| {
            if kind == MediaKind::Video && direction == Direction::Send {
                s.packets = 0;
                s.loss = None;
                s.bitrate = Some(0);
            }
        };
        assert_eq!(p.second(stopped), Level::EXCELLENT);
        assert_eq!(p.second(stopped), Level::BROKEN);
        // It comes back: at once.
        assert_eq!(p.second(untouched), Level::EXCELLENT);
        // The participant's reports say everything sent to it is lost.
        p.seconds(2, |_, direction, s| {
            if direction == Direction::Recv {
                s.loss = Some(1.0)
            }
        });
        assert_eq!(p.quality.level(), Some(Level::BROKEN));
    }

    #[test]
    fn a_participant_not_heard_from_is_broken() {
        let mut p = Participant::new();
        p.seconds(3, untouched);
        for _ in 0..3 {
            p.now += INTERVAL;
            p.tick();
        }
        assert_eq!(p.quality.level(), Some(Level::BROKEN));
    }

    #[test]
    fn a_participant_that_sends_and_receives_nothing_is_excellent() {
        let mut p = Participant::new();
        p.now += INTERVAL;
        p.heard = p.now;
        assert_eq!(p.tick(), Level::EXCELLENT);
        let stats = p.quality.stats(Verbosity::Detailed).unwrap();
        let audio = stats.audio.unwrap();
        assert_eq!(
            (audio.send, audio.recv),
            (Level::EXCELLENT, Level::EXCELLENT)
        );
        assert_eq!(audio.send_stats, None);
    }

    #[test]
    fn quiet_audio_is_not_judged_on_a_handful_of_packets() {
        let mut p = Participant::new();
        // DTX: three packets a second, one lost.
        let level = p.seconds(5, |kind, _, s| {
            if kind == MediaKind::Audio {
                s.packets = 3;
                s.loss = Some(1.0 / 3.0);
            }
        });
        assert_eq!(level, Level::EXCELLENT);
    }

    #[test]
    fn samples_of_several_tracks_on_one_path_are_merged() {
        let t0 = Instant::now();
        let mut q = NetworkQuality::new(t0);
        let camera = PathSample {
            active: true,
            packets: 300,
            loss: Some(0.0),
            ..PathSample::default()
        };
        let screen = PathSample {
            packets: 100,
            loss: Some(0.2),
            ..camera
        };
        q.record(MediaKind::Video, Direction::Send, camera);
        q.record(MediaKind::Video, Direction::Send, screen);
        q.tick(t0 + INTERVAL, t0 + INTERVAL);
        let stats = q.stats(Verbosity::Detailed).unwrap();
        let lost = stats
            .video
            .unwrap()
            .send_stats
            .unwrap()
            .fraction_lost
            .unwrap();
        assert!(
            (lost.fraction_lost - 0.05).abs() < 1e-9,
            "{}",
            lost.fraction_lost
        );
    }

    #[test]
    fn verbosity_decides_what_the_stats_show() {
        let mut p = Participant::new();
        p.seconds(2, untouched);
        assert_eq!(p.quality.stats(Verbosity::None), None);
        let minimal = p.quality.stats(Verbosity::Minimal).unwrap();
        assert_eq!(
            (minimal.level, &minimal.audio, &minimal.video),
            (Level::EXCELLENT, &None, &None)
        );
        let moderate = p.quality.stats(Verbosity::Moderate).unwrap();
        let audio = moderate.audio.unwrap();
        assert_eq!((audio.send_stats, audio.recv_stats), (None, None));
        let detailed = p.quality.stats(Verbosity::Detailed).unwrap();
        assert!(detailed.video.unwrap().send_stats.is_some());

        assert_eq!(Verbosity::try_from(3), Ok(Verbosity::Detailed));
        for bad in [-1, 4, i64::MAX] {
            let err = Verbosity::try_from(bad).unwrap_err();
            assert!(err.to_string().contains("0, 1, 2 or 3"), "{err}");
        }
    }

    #[test]
    fn stats_are_reported_when_a_level_moves_and_every_few_seconds_otherwise() {
        let mut p = Participant::new();
        assert_eq!(p.quality.report(p.now), None, "nothing before a level");
        p.second(untouched);
        let first = p.quality.report(p.now).expect("the first level");
        assert!(first.video.unwrap().send_stats.is_some(), "detailed");
        let mut quiet = 0;
        while p.quality.report(p.now).is_none() {
            quiet += 1;
            p.second(untouched);
        }
        assert_eq!(
            quiet,
            REPORT_EVERY.as_secs(),
            "steady levels: every {REPORT_EVERY:?}"
        );

        // Lossy received audio moves that path's level (the participant's
        // too): reported in the interval it shows, not at the next refresh.
        let lossy = |kind: MediaKind, direction: Direction, s: &mut PathSample| {
            if (kind, direction) == (MediaKind::Audio, Direction::Recv) {
                s.loss = Some(0.05);
            }
        };
        p.second(lossy);
        assert_eq!(
            p.quality.report(p.now),
            None,
            "one bad second moves nothing"
        );
        p.second(lossy);
        let report = p.quality.report(p.now).expect("a path's level moved");
        assert_eq!(report.audio.unwrap().recv, Level::AVERAGE, "5% lost audio");
    }

    #[test]
    fn a_report_renders_at_each_verbosity() {
        let mut p = Participant::new();
        p.second(untouched);
        let detailed = p.quality.report(p.now).unwrap();
        assert_eq!(detailed.at(Verbosity::None), None);
        let minimal = detailed.at(Verbosity::Minimal).unwrap();
        assert_eq!((minimal.audio, minimal.video), (None, None));
        let moderate = detailed.at(Verbosity::Moderate).unwrap();
        assert_eq!(moderate, p.quality.stats(Verbosity::Moderate).unwrap());
        assert_eq!(detailed.at(Verbosity::Detailed).as_ref(), Some(&detailed));
    }

    #[test]
    fn nonsense_measurements_do_not_break_anything() {
        let mut p = Participant::new();
        let level = p.seconds(3, |_, _, s| {
            s.loss = Some(f64::NAN);
            s.rtt = Some(Duration::MAX);
            s.jitter = Some(Duration::MAX);
            s.bitrate = Some(u64::MAX);
            s.wanted = Some(0);
        });
        assert_eq!(
            level,
            Level::BAD,
            "an endless round trip is bad, not a crash"
        );
        let mut p = Participant::new();
        p.seconds(3, |_, _, s| s.loss = Some(-3.0));
        assert_eq!(p.quality.level(), Some(Level::EXCELLENT));
        assert_eq!(Level::new(6), None);
        assert_eq!(Level::new(4), Some(Level::GOOD));
    }
}

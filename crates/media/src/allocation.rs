//! Per-subscriber bandwidth allocation: which simulcast layer of each
//! subscribed video track a subscriber receives, or whether the track is
//! switched off — with the semantics of Twilio's Network Bandwidth Profile.
//!
//! # The contract
//!
//! One [`Allocator`] exists per subscriber. It is sans-IO: no sockets, no
//! clock, no `str0m` types. Each call to [`Allocator::allocate`] takes the
//! time and an [`Input`] — the subscriber's bandwidth estimate (and whether
//! the estimator can probe), the bitrate of the audio it receives, and every
//! video subscription with its priorities, flags, render dimensions and the
//! publisher's [`Layer`]s — and returns an [`Allocation`]:
//!
//! * a [`Decision`] per subscription, in input order: forward a layer
//!   ([`Target::Layer`], by its `spatial` id), forward nothing because the
//!   track is switched off ([`Target::Off`] with Twilio's
//!   [`SwitchOffReason`]), or nothing to forward yet ([`Target::Idle`]: the
//!   publisher sends no layer). `changed` tells the forwarder to switch,
//!   which it does at the next keyframe of the target layer (it asks for
//!   one);
//! * [`Switched`] transitions to tell the client (Twilio's
//!   `trackSwitchedOff` / `trackSwitchedOn`): a track reported switched off,
//!   on again, or off for another reason;
//! * `probe`: the total bitrate the allocator would like the estimator to
//!   probe for, to learn whether the next step up fits;
//! * `next`: when to call again if nothing else happens (a step up that is
//!   waiting for the estimate to have held long enough).
//!
//! The allocator remembers, per track, what it committed last; tracks absent
//! from an input are forgotten. Everything else is in the input, so a
//! recorded sequence of `(time, input)` replays to the same decisions.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use salon_media::allocation::*;
//!
//! let layers = [
//!     Layer { spatial: 0, width: 320, height: 180, frame_rate: 30.0, bitrate: 150_000 },
//!     Layer { spatial: 1, width: 640, height: 360, frame_rate: 30.0, bitrate: 500_000 },
//!     Layer { spatial: 2, width: 1280, height: 720, frame_rate: 30.0, bitrate: 1_500_000 },
//! ];
//! let camera = VideoSubscription::new("alice", &layers);
//! let mut allocator = Allocator::new(BandwidthProfile::default());
//! let t0 = Instant::now();
//!
//! let input = Input { estimate: 3_000_000, can_probe: true, lossy: false, audio: 40_000, tracks: &[camera] };
//! let out = allocator.allocate(t0, &input);
//! assert_eq!(out.decisions[0].target, Target::Layer(2));
//!
//! // The estimate collapses: the layer drops in the same call.
//! let input = Input { estimate: 400_000, ..input };
//! let out = allocator.allocate(t0 + Duration::from_secs(1), &input);
//! assert_eq!(out.decisions[0].target, Target::Layer(0));
//! ```
//!
//! # The algorithm
//!
//! **Budget.** Audio is reserved first and never switched off: the video
//! budget is the estimate minus the subscriber's audio bitrate, capped by
//! `maxSubscriptionBitrate` (which Twilio defines as a cap on *video*).
//! Under `trackSwitchOffMode: 'predicted'` only [`PREDICTED_USE`] of the
//! estimate is used, so tracks go off before the link congests rather than
//! after ("pro-actively switched off when network congestion is predicted",
//! twilio-video.js `TrackSwitchOffMode`); `detected` and `disabled` use all
//! of it.
//!
//! **One plan, three modes.** A plan gives each track a layer within a
//! budget, visiting tracks in rank order: effective priority (`high` before
//! `standard` before `low`), then screen shares, then the dominant
//! speaker's tracks, then the track key (so equal tracks are ordered the
//! same way every time). The effective priority is the subscriber's
//! override (`RemoteVideoTrack.setPriority`) or else the publisher's
//! (`publishPriority`), raised to `dominantSpeakerPriority` for the
//! dominant speaker's tracks. Then, after Twilio's `BandwidthProfileMode`:
//!
//! * `grid` — "share the available downlink bandwidth equally … irrespective
//!   of their priority; in case of insufficient bandwidth, the lower priority
//!   tracks are switched off": every track gets its lowest layer in rank
//!   order, then every track its next layer, and so on (the layer-by-layer
//!   round used by LiveKit's stream allocator and mediasoup's transport);
//! * `collaboration` — lower-priority tracks "still need to be visible" and
//!   bandwidth is shared "proportional to the requested render dimensions":
//!   every track gets its lowest layer in rank order, then the remainder
//!   goes, one layer at a time, to the track with the least bitrate per
//!   rendered pixel (render dimensions from the subscriber's hints, else
//!   Twilio's old per-priority defaults: 176×144, 640×480, 1280×720);
//! * `presentation` — higher-priority tracks are "preserved at any cost":
//!   each priority class gets all it can use (its own grid round) before the
//!   next class gets anything.
//!
//! A track whose lowest layer does not fit is switched off
//! (`network-congestion`, or `max-bandwidth-reached` when only
//! `maxSubscriptionBitrate` is in the way), except under
//! `trackSwitchOffMode: 'disabled'`, where it stays on its lowest layer
//! even past the budget — the one way an allocation exceeds its budget.
//! Render dimensions cap a track at the smallest layer that covers them
//! (long side ≥ long side and short side ≥ short side, so orientation does
//! not matter); a width or height of 0 means the lowest layer, as Twilio
//! documented for `renderDimensions`.
//!
//! **Stability.** Each call makes two plans. The *ideal* plan uses the
//! *trusted* estimate — the lowest estimate seen over the hold time
//! ([`UP_HOLD`]) — less [`HEADROOM`]. The *committed* plan may spend what
//! is spent now or what the ideal plan spends, whichever is more, but never
//! more than the current estimate; and no track may go above the higher of
//! its current layer and its ideal layer. So:
//!
//! * down is immediate: when the current layers no longer fit the current
//!   estimate, the committed plan lowers them in the same call;
//! * up needs the estimate to have held above the new total plus headroom
//!   for the whole hold time — that is, the link has shown it carries it:
//!   an estimator raises its estimate above what is sent only when a probe
//!   (or the media itself) got through. `probe` asks an estimator that can
//!   probe for that probe; with one that cannot (receiver estimates, say),
//!   the allocation climbs as the estimate itself creeps up with the media;
//! * between the two there is a band where nothing moves: a link whose
//!   estimate wanders by less than the headroom never changes layer;
//! * layer bitrates are smoothed per track ([`COST_SMOOTHING`], on top of
//!   the forwarder's keyframe-robust figure), and a total over
//!   `maxSubscriptionBitrate` by at most [`DOWN_TOLERANCE`] is kept for
//!   [`DOWN_HOLD`] before a step down: with a fixed cap, an overshoot is
//!   the noise of the layers' measured bitrates, not a change. Together
//!   with the 15% headroom to climb, a capped allocation whose layers read
//!   ±30% off from one call to the next does not move;
//! * in the committed plan, tracks keep the layer they have before tracks
//!   of equal rank (priority, screen share, dominant speaker) take a step,
//!   so noise at the margin does not swap one track's layer for another's
//!   (each swap costs two keyframes);
//! * a step up that is followed by a forced step down within the hold time
//!   doubles the hold (up to 2⁴ times), like LiveKit's probe back-off, so a
//!   marginal link does not oscillate; a step up that lasts resets it;
//! * other moves — a new subscription, a priority or dominant-speaker
//!   change, a track switched on again by the subscriber — take effect at
//!   once, as far as the trusted estimate (or what is spent now) allows;
//! * except for a track whose layer bitrates are still `settling` (its
//!   publisher began sending moments ago): it keeps its layer, or comes on
//!   at its lowest, until they settle. First measurements read low while
//!   an encoder ramps up, and every joining subscriber's keyframe request
//!   crowds in: steps taken on them are taken back a second later, each
//!   switch bringing keyframes that push every subscriber of the layer
//!   over its cap. Meanwhile its layers are priced like settled tracks'
//!   layers of their size, and a layer not measured at all from what is
//!   measured (`Guesses`: its track's other layers, else same-sized layers
//!   of other tracks, else [`nominal_bitrate`]), so a join storm's new
//!   tracks are not switched off for their first keyframes' rate or a
//!   30 fps camera's guessed one.
//!
//! # Receiver estimates
//!
//! An allocator made with [`Allocator::receiver_estimates`] is given the
//! subscriber's own estimate (REMB), which Chromium computes from the delay
//! of what it receives and which behaves differently from a send-side
//! estimate: it never reads more than half as much again as what is
//! received (+10 kbit/s), it climbs about 8% a second while nothing queues,
//! and on overuse it falls to 85% of what is received and stops climbing.
//! It cannot be asked to probe, and it misses a link that drops rather
//! than queues: so the estimate given is the lower of the REMB and what the
//! subscriber's loss reports say its link carried ([`LossBound`]). It is
//! read as a congestion signal, not as a ceiling:
//!
//! * congestion is an estimate under [`CONGESTED`] of what is sent that
//!   fell in this call, has not risen for [`STALL`] (counted from the
//!   last step up too), or is a loss bound (`lossy`). The first estimate
//!   after none ([`NO_ESTIMATE`]) counts as a rise: a receiver's first
//!   report is what it has seen arrive (Chromium's, 5 s after media
//!   began), which in a room filling up lags what the tracks just
//!   switched on send. On congestion the budget is the estimate, so
//!   layers drop at once; a step up on trial backs off as above, and no
//!   step is tried for the hold time;
//! * otherwise what is sent is kept, however far under it the estimate is
//!   (it is catching up), and tracks new to the subscriber come on at their
//!   lowest layer (the estimate can never make room for them ahead);
//! * and when the last step up has lasted the hold time, one more step is
//!   tried: the cheapest single step (a track's next layer, or a track off
//!   for bandwidth back on) — "probing with media", as LiveKit's allocator
//!   can. The caps (`maxSubscriptionBitrate`, render dimensions) and the
//!   mode's order hold as ever.
//!
//! # Cost
//!
//! Control path only, never per packet. A call costs O(n log n + n·l) for
//! n subscriptions of l layers in `grid` and `presentation`, O(n²·l) in
//! `collaboration` (n is at most a room's tracks, 100 or so), plus a few
//! vectors of n entries. Call it when the estimate, a subscription or a
//! layer's bitrate changes, and at `next`; a few times a second at most.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The fraction of the trusted estimate a step up may use, as a ratio:
/// 85/100 leaves 15% for the estimate's noise and for layers whose bitrate
/// wanders with the picture. mediasoup's congestion client waits for a
/// 150% rise before it redistributes upwards and a 75% fall downwards; the
/// band here is narrower because the hold time already filters noise.
pub const HEADROOM: (u64, u64) = (85, 100);
/// The fraction of the estimate used under `trackSwitchOffMode:
/// 'predicted'`: acting 10% before the estimate is reached.
pub const PREDICTED_USE: (u64, u64) = (90, 100);
/// How long the estimate must have held before the allocation steps up
/// (LiveKit's probe regulator uses the same 3 s as its base interval).
pub const UP_HOLD: Duration = Duration::from_secs(3);
/// The hold doubles after each failed step up, at most this many times
/// (3 s × 2⁴ = 48 s).
pub const MAX_BACKOFF: u32 = 4;
/// How far over `maxSubscriptionBitrate` the allocation may be, as a
/// ratio, for up to [`DOWN_HOLD`] before it steps down: the cap does not
/// move, so an overshoot of a few percent is the noise of measured layer
/// bitrates (an encoder's rate wanders with the picture). Beyond it, down
/// is at once; and a falling estimate (a real drop) is acted on at once.
pub const DOWN_TOLERANCE: (u64, u64) = (110, 100);
/// How long an overshoot within [`DOWN_TOLERANCE`] is tolerated.
pub const DOWN_HOLD: Duration = Duration::from_millis(1500);
/// With receiver estimates, an estimate under this share of what is sent
/// that falls, or stops rising for [`STALL`], is congestion: Chromium's
/// receive-side estimator answers overuse with 85% of what it receives and
/// then holds, while on a link that carries what is sent it climbs (8% a
/// second) until it is half as much again.
pub const CONGESTED: (u64, u64) = (90, 100);
/// How long an estimate under what is sent may go without rising.
pub const STALL: Duration = Duration::from_secs(1);
/// An estimate of this or more is none: nothing bounds the subscriber's
/// link yet (with receiver estimates, no REMB has come). The first real
/// estimate after none is taken as a rise, not a fall: a receiver's first
/// report is what it has seen arrive, not a sign of congestion.
pub const NO_ESTIMATE: u64 = 1 << 40;
/// The time constant of the EWMA the allocator applies to each layer's
/// bitrate: the forwarder's figure is already robust to keyframes
/// ([`crate::forward::LayerRate`]); this irons out what noise is left so
/// that a layer read 30% high once does not move a track.
pub const COST_SMOOTHING: Duration = Duration::from_secs(2);
/// Estimates kept for the trusted minimum. When more arrive within the
/// longest hold, the oldest interior point is dropped, which can only make
/// the minimum lower (more cautious), never higher.
const ESTIMATE_POINTS: usize = 64;

// ---------------------------------------------------------------------------
// Twilio's vocabulary

/// A track priority: Twilio's `Track.Priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    Low,
    #[default]
    Standard,
    High,
}

impl Priority {
    /// The word Twilio uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Standard => "standard",
            Priority::High => "high",
        }
    }

    /// Twilio's old default render dimensions per priority, used as the
    /// weight of a track without render hints in `collaboration` mode.
    fn default_render(self) -> Dimensions {
        match self {
            Priority::Low => Dimensions::new(176, 144),
            Priority::Standard => Dimensions::new(640, 480),
            Priority::High => Dimensions::new(1280, 720),
        }
    }
}

/// How priorities map to bandwidth: Twilio's `BandwidthProfileMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    #[default]
    Grid,
    Collaboration,
    Presentation,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Grid => "grid",
            Mode::Collaboration => "collaboration",
            Mode::Presentation => "presentation",
        }
    }
}

/// When tracks are switched off for bandwidth: Twilio's
/// `TrackSwitchOffMode` (twilio-video.js defaults to `predicted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SwitchOffMode {
    /// When the estimate cannot carry a track's lowest layer.
    Detected,
    /// Ahead of congestion: [`PREDICTED_USE`] of the estimate is the budget.
    #[default]
    Predicted,
    /// Never for bandwidth: tracks fall to their lowest layer and stay on.
    Disabled,
}

impl SwitchOffMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchOffMode::Detected => "detected",
            SwitchOffMode::Predicted => "predicted",
            SwitchOffMode::Disabled => "disabled",
        }
    }

    /// The part of the estimate this mode spends, as a ratio.
    fn usable(self) -> (u64, u64) {
        match self {
            SwitchOffMode::Predicted => PREDICTED_USE,
            SwitchOffMode::Detected | SwitchOffMode::Disabled => (1, 1),
        }
    }
}

/// A word that is not one of the values a setting accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {setting}: expected one of {expected}")]
pub struct ParseError {
    /// The setting, as Twilio names it (`priority`, `mode`, …).
    pub setting: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! parse_words {
    ($ty:ty, $setting:literal, $expected:literal, { $($word:literal => $value:expr),* $(,)? }) => {
        impl FromStr for $ty {
            type Err = ParseError;
            /// Parses Twilio's word, exactly (Twilio's SDKs are case-sensitive).
            fn from_str(s: &str) -> Result<Self, ParseError> {
                match s {
                    $($word => Ok($value),)*
                    _ => Err(ParseError {
                        setting: $setting,
                        value: s.chars().take(64).collect(),
                        expected: $expected,
                    }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

parse_words!(Priority, "priority", "low, standard, high", {
    "low" => Priority::Low, "standard" => Priority::Standard, "high" => Priority::High,
});
parse_words!(Mode, "mode", "grid, collaboration, presentation", {
    "grid" => Mode::Grid, "collaboration" => Mode::Collaboration, "presentation" => Mode::Presentation,
});
parse_words!(SwitchOffMode, "trackSwitchOffMode", "detected, predicted, disabled", {
    "detected" => SwitchOffMode::Detected, "predicted" => SwitchOffMode::Predicted,
    "disabled" => SwitchOffMode::Disabled,
});

/// The room's (or the participant's) bandwidth profile: the part of
/// Twilio's `bandwidthProfile.video` that the server acts on.
///
/// `clientTrackSwitchOffControl` and `contentPreferencesMode` are not here:
/// they decide whether the SDK or the application produces switch-off
/// requests and render dimensions, which reach the allocator the same way
/// either way ([`VideoSubscription::switched_off_by_subscriber`],
/// [`VideoSubscription::render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandwidthProfile {
    pub mode: Mode,
    /// Cap on the subscriber's video, bits per second; `None` for no cap
    /// (twilio-video.js's default; Twilio's mobile SDKs send 2,400,000).
    pub max_subscription_bitrate: Option<u64>,
    /// The least priority of the dominant speaker's video tracks
    /// (twilio-video.js's default: `standard`).
    pub dominant_speaker_priority: Priority,
    pub track_switch_off_mode: SwitchOffMode,
    /// Deprecated `maxTracks`: at most this many tracks on, chosen by
    /// rank; the others off with `max-tracks-switched-on`. `None` or
    /// `Some(0)`: no limit (Twilio: "0 … will remove any limit").
    pub max_tracks: Option<usize>,
}

impl Default for BandwidthProfile {
    fn default() -> Self {
        Self {
            mode: Mode::Grid,
            max_subscription_bitrate: None,
            dominant_speaker_priority: Priority::Standard,
            track_switch_off_mode: SwitchOffMode::Predicted,
            max_tracks: None,
        }
    }
}

/// Why a track is switched off: Twilio's `Track.SwitchOffReason`.
///
/// twilio-video reports these in large group rooms; in other rooms its
/// `switchOffReason` is null and a publisher's disabled track is
/// `trackDisabled` rather than a switch-off. Which to send is the
/// front-end's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwitchOffReason {
    /// The publisher disabled the track.
    DisabledByPublisher,
    /// The subscriber switched it off (`switchOff()`, or the SDK because
    /// nothing visible shows it).
    DisabledBySubscriber,
    /// Beyond the deprecated `maxTracks`.
    MaxTracksSwitchedOn,
    /// `maxSubscriptionBitrate` leaves no room for it.
    MaxBandwidthReached,
    /// The subscriber's estimated bandwidth leaves no room for it.
    NetworkCongestion,
}

impl SwitchOffReason {
    /// Twilio's spelling (`track.switchOffReason`).
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchOffReason::DisabledByPublisher => "disabled-by-publisher",
            SwitchOffReason::DisabledBySubscriber => "disabled-by-subscriber",
            SwitchOffReason::MaxTracksSwitchedOn => "max-tracks-switched-on",
            SwitchOffReason::MaxBandwidthReached => "max-bandwidth-reached",
            SwitchOffReason::NetworkCongestion => "network-congestion",
        }
    }

    /// Whether the reason is bandwidth (the allocator may switch the track
    /// on again by itself).
    pub fn is_bandwidth(self) -> bool {
        matches!(
            self,
            SwitchOffReason::MaxBandwidthReached | SwitchOffReason::NetworkCongestion
        )
    }
}

impl fmt::Display for SwitchOffReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------
// Layers and render dimensions

/// A width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// Render dimensions a client may ask for, refused by
/// [`Dimensions::checked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("render dimensions must be between 1 and {max} pixels on each side (got {width}×{height})")]
pub struct InvalidDimensions {
    pub width: i64,
    pub height: i64,
    pub max: u32,
}

impl Dimensions {
    /// The largest side a client may ask for: VP8 and H.264 frames cannot
    /// be wider than 16,383 pixels (VP8's 14-bit width field).
    pub const MAX_SIDE: u32 = 16_384;

    pub const fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// Validate render dimensions that came from a client (JSON numbers):
    /// each side 1..=[`Self::MAX_SIDE`].
    ///
    /// The allocator itself accepts any value — 0 means the lowest layer,
    /// anything huge the highest — so this is for the protocol to refuse
    /// nonsense with a clear error rather than act on it.
    pub fn checked(width: i64, height: i64) -> Result<Self, InvalidDimensions> {
        let side = |v: i64| {
            u32::try_from(v)
                .ok()
                .filter(|v| (1..=Self::MAX_SIDE).contains(v))
        };
        match (side(width), side(height)) {
            (Some(w), Some(h)) => Ok(Self::new(w, h)),
            _ => Err(InvalidDimensions {
                width,
                height,
                max: Self::MAX_SIDE,
            }),
        }
    }

    fn long_side(self) -> u32 {
        self.width.max(self.height)
    }

    fn short_side(self) -> u32 {
        self.width.min(self.height)
    }

    fn area(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// One spatial layer a publisher sends (or would send if asked): a
/// non-simulcast track is one layer. Shared with the forwarder, which names
/// layers by `spatial`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer {
    /// The layer's id: simulcast index, 0 the lowest.
    pub spatial: u8,
    pub width: u32,
    pub height: u32,
    /// Frames per second.
    pub frame_rate: f32,
    /// Measured bits per second; 0 when unknown (a paused layer that never
    /// flowed), and then a guess from resolution and frame rate is used.
    pub bitrate: u64,
}

impl Layer {
    /// What forwarding this layer costs, bits per second: the measured
    /// bitrate, or [`nominal_bitrate`] when none was measured.
    pub fn cost(&self) -> u64 {
        if self.bitrate > 0 {
            self.bitrate
        } else {
            nominal_bitrate(self.width, self.height, self.frame_rate)
        }
    }

    fn dimensions(&self) -> Dimensions {
        Dimensions::new(self.width, self.height)
    }

    fn covers(&self, render: Dimensions) -> bool {
        let own = self.dimensions();
        own.long_side() >= render.long_side() && own.short_side() >= render.short_side()
    }
}

/// A guess at a VP8 layer's bitrate from its size and frame rate, for
/// layers not yet measured: libwebrtc's simulcast target bitrates
/// (`media/engine/simulcast.cc`: 320×180 150 kbps, 480×270 350, 640×360
/// 500, 960×540 1,200, 1280×720 2,500, 1920×1080 4,000, at 30 fps),
/// interpolated by pixel count and scaled by frame rate.
pub fn nominal_bitrate(width: u32, height: u32, frame_rate: f32) -> u64 {
    const TABLE: [(u64, u64); 6] = [
        (320 * 180, 150_000),
        (480 * 270, 350_000),
        (640 * 360, 500_000),
        (960 * 540, 1_200_000),
        (1280 * 720, 2_500_000),
        (1920 * 1080, 4_000_000),
    ];
    const FLOOR: u64 = 30_000;
    let pixels = u64::from(width) * u64::from(height);
    let at_30fps = match TABLE.iter().position(|(p, _)| pixels <= *p) {
        Some(0) => TABLE[0].1 * pixels / TABLE[0].0,
        Some(i) => {
            let ((p0, b0), (p1, b1)) = (TABLE[i - 1], TABLE[i]);
            b0 + (b1 - b0) * (pixels - p0) / (p1 - p0)
        }
        None => {
            let (p, b) = TABLE[TABLE.len() - 1];
            b.saturating_mul(pixels) / p
        }
    }
    .max(FLOOR);
    let fps = if frame_rate.is_finite() && frame_rate > 0.0 {
        frame_rate.clamp(7.5, 60.0)
    } else {
        30.0
    };
    // Whole-number arithmetic on the frame rate in tenths.
    at_30fps * (fps * 10.0).round() as u64 / 300
}

// ---------------------------------------------------------------------------
// Input and output

/// One video track the subscriber is subscribed to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoSubscription<'a, K> {
    /// The track's key (its SID, say). Keys must be unique in an input.
    pub track: K,
    /// The publisher's priority (`publishPriority`).
    pub publish_priority: Priority,
    /// The subscriber's override (`RemoteVideoTrack.setPriority`), if any.
    pub subscribe_priority: Option<Priority>,
    /// Whether the track is the dominant speaker's (set only when the
    /// subscriber asked for dominant speaker detection).
    pub dominant_speaker: bool,
    /// Whether the track is a screen share (from its name or the
    /// publisher's hint): it goes before cameras of the same priority.
    pub screen_share: bool,
    /// The render dimensions the subscriber asked for
    /// (`setContentPreferences`, or the SDK's hints); `None` for no limit.
    pub render: Option<Dimensions>,
    /// The subscriber asked for the track to be off (`switchOff()`).
    pub switched_off_by_subscriber: bool,
    /// The publisher's track is enabled.
    pub publisher_enabled: bool,
    /// Its layers' bitrates are still being learned: the publisher began
    /// sending them moments ago. First measurements read low while an
    /// encoder ramps up, and the keyframes every joining subscriber asks
    /// for crowd in, so the allocation does not step the track up until
    /// they settle (a new track comes on at its lowest layer).
    pub settling: bool,
    /// The layers the publisher sends or would send when asked, lowest
    /// first (layers Salon paused count; layers the publisher stopped on its
    /// own do not). Empty: nothing to forward yet.
    pub layers: &'a [Layer],
}

impl<'a, K> VideoSubscription<'a, K> {
    /// A subscription with Twilio's defaults: `standard`, no override, not
    /// the dominant speaker, a camera, no render limit, switched on,
    /// enabled.
    pub fn new(track: K, layers: &'a [Layer]) -> Self {
        Self {
            track,
            publish_priority: Priority::Standard,
            subscribe_priority: None,
            dominant_speaker: false,
            screen_share: false,
            render: None,
            switched_off_by_subscriber: false,
            publisher_enabled: true,
            settling: false,
            layers,
        }
    }
}

/// Everything one allocation looks at besides the profile and the time.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a, K> {
    /// The subscriber's available bandwidth estimate, bits per second.
    pub estimate: u64,
    /// Whether the estimator can send probes when asked (`probe`).
    pub can_probe: bool,
    /// With receiver estimates: the estimate is a [`LossBound`], so the
    /// link is losing what is sent, whichever way the estimate moved.
    pub lossy: bool,
    /// Bits per second of the audio the subscriber receives: reserved first.
    pub audio: u64,
    pub tracks: &'a [VideoSubscription<'a, K>],
}

/// What to forward of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Forward the layer with this `spatial` id.
    Layer(u8),
    /// Forward nothing: the track is switched off.
    Off(SwitchOffReason),
    /// Forward nothing: the publisher sends no layer yet. Not a switch-off.
    Idle,
}

/// The allocation of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<K> {
    pub track: K,
    pub target: Target,
    /// Whether `target` differs from the previous call's (always true on a
    /// track's first call).
    pub changed: bool,
}

/// A switch-off state change to report to the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switched<K> {
    pub track: K,
    /// `Some(reason)`: now switched off (or off for a new reason);
    /// `None`: switched on again.
    pub off: Option<SwitchOffReason>,
}

/// The result of [`Allocator::allocate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<K> {
    /// One per input subscription, in input order.
    pub decisions: Vec<Decision<K>>,
    /// Switch-off transitions since the previous call, in input order.
    /// Tracks start switched on, so a track's first allocation reports only
    /// if it starts off.
    pub switched: Vec<Switched<K>>,
    /// Bits per second of the chosen layers.
    pub video_bitrate: u64,
    /// The total estimate (audio included) the allocator would like the
    /// estimator to probe for; `None` when nothing would be gained, when
    /// the estimate already covers it, or when the estimator cannot probe.
    pub probe: Option<u64>,
    /// Call again at this time even if no input changes: a step up is
    /// waiting for the estimate to have held for the hold time.
    pub next: Option<Instant>,
}

impl<K> Default for Allocation<K> {
    fn default() -> Self {
        Self {
            decisions: Vec::new(),
            switched: Vec::new(),
            video_bitrate: 0,
            probe: None,
            next: None,
        }
    }
}

// ---------------------------------------------------------------------------
// The allocator

/// The allocation state of one subscriber. See the module docs.
#[derive(Debug)]
pub struct Allocator<K> {
    profile: BandwidthProfile,
    tracks: HashMap<K, TrackState>,
    estimates: EstimateWindow,
    /// Doublings of the hold after failed steps up.
    backoff: u32,
    /// When the last step up was taken, while it is still on trial.
    trial: Option<Instant>,
    /// Since when what is spent has been over budget (within
    /// [`DOWN_TOLERANCE`]), for [`DOWN_HOLD`].
    over_since: Option<Instant>,
    /// The estimate is the subscriber's own ([`Self::receiver_estimates`]).
    receiver: bool,
    /// Receiver estimates: the estimate of the previous call, to tell a
    /// rising or a falling one.
    previous_estimate: u64,
    /// When the estimate last rose.
    last_rise: Option<Instant>,
    /// Receiver estimates: no step up is tried before this (congestion
    /// was seen; the hold, backed off, runs from then).
    quiet_until: Option<Instant>,
    /// Tags the tracks seen by the current call, to forget the others.
    epoch: u64,
    out: Allocation<K>,
}

/// Each layer's smoothed cost by `spatial` id, and whether it was measured.
type SmoothedCosts = Vec<(u8, f64, bool)>;

#[derive(Debug, Clone)]
struct TrackState {
    target: Target,
    /// What the subscriber was last told.
    reported: Option<SwitchOffReason>,
    epoch: u64,
    /// Each layer's smoothed cost, by `spatial` id ([`COST_SMOOTHING`]),
    /// and whether it was measured (not a guess).
    costs: SmoothedCosts,
    /// When `costs` were last updated.
    smoothed_at: Instant,
}

impl<K: Clone + Eq + Ord + Hash> Allocator<K> {
    pub fn new(profile: BandwidthProfile) -> Self {
        Self {
            profile,
            tracks: HashMap::new(),
            estimates: EstimateWindow::default(),
            backoff: 0,
            trial: None,
            over_since: None,
            receiver: false,
            previous_estimate: u64::MAX,
            last_rise: None,
            quiet_until: None,
            epoch: 0,
            out: Allocation::default(),
        }
    }

    /// The estimates are the subscriber's own (REMB), not a send-side
    /// estimator's that can probe: see "Receiver estimates" in the module
    /// docs.
    pub fn receiver_estimates(mut self, receiver: bool) -> Self {
        self.receiver = receiver;
        self
    }

    pub fn profile(&self) -> &BandwidthProfile {
        &self.profile
    }

    /// Change the profile; it applies from the next [`Self::allocate`].
    pub fn set_profile(&mut self, profile: BandwidthProfile) {
        self.profile = profile;
    }

    /// The hold time now in force: [`UP_HOLD`], doubled per failed step up.
    pub fn hold(&self) -> Duration {
        UP_HOLD * (1 << self.backoff)
    }

    /// Allocate the subscriber's bandwidth at `now`. See the module docs.
    pub fn allocate(&mut self, now: Instant, input: &Input<'_, K>) -> &Allocation<K> {
        self.estimates
            .push(now, input.estimate, UP_HOLD * (1 << MAX_BACKOFF));
        if self
            .trial
            .is_some_and(|at| now.saturating_duration_since(at) >= self.hold())
        {
            // The last step up lasted: the link carries it.
            self.backoff = 0;
            self.trial = None;
        }
        let hold = self.hold();
        let trusted = self.estimates.min_over(now, hold);
        let profile = self.profile;

        // Each layer's cost, smoothed per track (COST_SMOOTHING); layers
        // not measured yet guessed from what is.
        let guesses = Guesses::new(input.tracks);
        let smoothed: Vec<(Vec<Layer>, SmoothedCosts)> = input
            .tracks
            .iter()
            .map(|sub| self.smooth(now, sub, &guesses))
            .collect();

        // Who competes for bandwidth, and in what order.
        let mut early: Vec<Option<Target>> = vec![None; input.tracks.len()];
        let mut ranked: Vec<Candidate<'_, K>> = Vec::with_capacity(input.tracks.len());
        for (index, sub) in input.tracks.iter().enumerate() {
            early[index] = if !sub.publisher_enabled {
                Some(Target::Off(SwitchOffReason::DisabledByPublisher))
            } else if sub.switched_off_by_subscriber {
                Some(Target::Off(SwitchOffReason::DisabledBySubscriber))
            } else if sub.layers.is_empty() {
                Some(Target::Idle)
            } else {
                ranked.push(Candidate::new(index, sub, &smoothed[index].0, &profile));
                None
            };
        }
        ranked.sort_by(Candidate::rank);
        let max_tracks = profile.max_tracks.filter(|m| *m > 0).unwrap_or(usize::MAX);
        if ranked.len() > max_tracks {
            for beyond in ranked.drain(max_tracks..) {
                early[beyond.index] = Some(Target::Off(SwitchOffReason::MaxTracksSwitchedOn));
            }
        }

        // What each track has now, within what its render size allows, and
        // whether it is off for bandwidth (switching it on is a step up).
        let mut current: Vec<Option<usize>> = Vec::with_capacity(ranked.len());
        let mut starved: Vec<bool> = Vec::with_capacity(ranked.len());
        for c in &ranked {
            let before = self.tracks.get(c.key).map(|s| s.target);
            current.push(match before {
                Some(Target::Layer(spatial)) => c.index_of(spatial).map(|i| i.min(c.top)),
                _ => None,
            });
            starved.push(matches!(before, Some(Target::Off(r)) if r.is_bandwidth()));
        }
        let current_cost = ranked
            .iter()
            .zip(&current)
            .filter_map(|(c, cur)| cur.map(|i| c.cost(i)))
            .fold(0u64, u64::saturating_add);

        let usable = profile.track_switch_off_mode.usable();
        let subscription = profile.max_subscription_bitrate.unwrap_or(u64::MAX);
        let mut now_limits = Limits {
            network: video_budget(input.estimate, input.audio, usable),
            subscription,
        };
        // Receiver estimates: a congestion signal, not a ceiling (module
        // docs). What is sent is kept while the estimate is under it but
        // rising; one step up is tried when the last one has lasted.
        // With no congestion, `receiver_budget` is what may be spent.
        let mut receiver_budget = None;
        if self.receiver {
            let first = self.previous_estimate >= NO_ESTIMATE && input.estimate < NO_ESTIMATE;
            let fell = input.estimate < self.previous_estimate && !first;
            if input.estimate > self.previous_estimate || first {
                self.last_rise = Some(now);
            }
            self.previous_estimate = input.estimate;
            // A track new to this subscriber comes on at its lowest layer
            // unless the link is congested: the estimate only ever covers
            // half as much again as what is received, so it cannot make
            // room for it ahead.
            let fresh: u64 = ranked
                .iter()
                .zip(&current)
                .filter(|(c, cur)| cur.is_none() && !self.tracks.contains_key(c.key))
                .map(|(c, _)| c.cost(0))
                .fold(0u64, u64::saturating_add);
            let behind = now_limits.network < scale(current_cost, CONGESTED);
            // A step up starts the clock too: the estimate needs a moment
            // to see what it brought.
            let stalled = self
                .last_rise
                .max(self.trial)
                .is_none_or(|at| now.saturating_duration_since(at) >= STALL);
            let congested = behind && (fell || stalled || input.lossy);
            if congested {
                if self.trial.is_some() {
                    self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
                    self.trial = None;
                }
                self.quiet_until = Some(now + self.hold());
            } else {
                let kept = current_cost.saturating_add(fresh);
                // One step per hold while nothing says the link is full
                // (the estimate may still be catching up with the last).
                let quiet = self.quiet_until.is_some_and(|until| now < until);
                let step = (self.trial.is_none() && !quiet)
                    .then(|| cheapest_step(&ranked, &current, &starved))
                    .flatten()
                    .unwrap_or(0);
                receiver_budget = Some(kept.saturating_add(step));
            }
        }
        if let Some(budget) = receiver_budget {
            now_limits.network = now_limits.network.max(budget);
        }
        // Over the cap within the tolerance: keep for DOWN_HOLD (the noise
        // of layer bitrates: the cap itself does not move); beyond it, or
        // for longer, step down now. A falling estimate is a real drop and
        // is acted on at once.
        if current_cost <= subscription {
            self.over_since = None;
        } else if current_cost > scale(subscription, DOWN_TOLERANCE) {
            self.over_since = Some(now.checked_sub(DOWN_HOLD).unwrap_or(now));
        } else if self.over_since.is_none() {
            self.over_since = Some(now);
        }
        let tolerated = self
            .over_since
            .is_some_and(|since| now.saturating_duration_since(since) < DOWN_HOLD);
        let keep_limits = Limits {
            network: now_limits.network,
            subscription: if tolerated {
                scale(subscription, DOWN_TOLERANCE)
            } else {
                subscription
            },
        };
        let climb_limits = Limits {
            network: scale(video_budget(trusted, input.audio, usable), HEADROOM)
                .max(receiver_budget.unwrap_or(0)),
            subscription: scale(subscription, HEADROOM),
        };
        // The committed plan may keep what is spent now (if the estimate
        // still carries it) or spend what the trusted estimate allows, not
        // more: the total climbs only when the estimate has held.
        let commit_limits = Limits {
            network: keep_limits
                .network
                .min(current_cost.max(climb_limits.network)),
            subscription: keep_limits
                .subscription
                .min(current_cost.max(climb_limits.subscription)),
        };
        let keep_on = profile.track_switch_off_mode == SwitchOffMode::Disabled;

        // The ideal plan on the trusted estimate, then the committed plan,
        // no track above the higher of its current and its ideal layer.
        let tops: Vec<Cap> = ranked.iter().map(|c| Cap::UpTo(c.top)).collect();
        let ideal = Plan::run(&ranked, &tops, &[], climb_limits, profile.mode, keep_on);
        // A track whose layer bitrates are still settling keeps its layer
        // (or comes on at its lowest).
        let caps: Vec<Cap> = current
            .iter()
            .zip(&ideal.choices)
            .zip(&ranked)
            .map(|((cur, ideal), c)| match (cur, ideal) {
                (Some(cur), Choice::On(_)) if c.settling => Cap::UpTo(*cur),
                (Some(cur), Choice::On(i)) => Cap::UpTo((*cur).max(*i)),
                (Some(cur), Choice::Off(_)) => Cap::UpTo(*cur),
                (None, Choice::On(_)) if c.settling => Cap::UpTo(0),
                (None, Choice::On(i)) => Cap::UpTo(*i),
                (None, Choice::Off(reason)) => Cap::Off(*reason),
            })
            .collect();
        // Tracks keep what they have before others of their rank take a
        // step: at the margin, noise must not swap one track's layer for
        // another's.
        let committed = Plan::run(
            &ranked,
            &caps,
            &current,
            commit_limits,
            profile.mode,
            keep_on,
        );

        // A step up the estimate allowed (a higher layer, or a track back
        // on after a bandwidth switch-off) goes on trial; a forced step down
        // during a trial backs off.
        // Only the estimate fails a trial: the cap does not move.
        let over = current_cost > keep_limits.network;
        let stepped_up =
            current
                .iter()
                .zip(&starved)
                .zip(&committed.choices)
                .any(|((cur, starved), choice)| match (cur, choice.layer()) {
                    (Some(cur), Some(new)) => new > *cur,
                    (None, Some(_)) => *starved,
                    (_, None) => false,
                });
        if over && self.trial.is_some() {
            self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
            self.trial = None;
        }
        if stepped_up {
            self.trial = Some(now);
        }

        // What could still be gained, and how to find out whether it fits.
        let deficient = ranked
            .iter()
            .zip(&committed.choices)
            .any(|(c, choice)| c.deficient(*choice));
        let probe = if input.can_probe && deficient {
            self.probe_target(&ranked, &committed, input, usable, subscription)
        } else {
            None
        };
        let next = if deficient && trusted < input.estimate {
            self.estimates.next_rise(now, self.hold())
        } else {
            None
        };

        // Decisions in input order, transitions, state.
        let mut targets = early;
        for (c, choice) in ranked.iter().zip(&committed.choices) {
            targets[c.index] = Some(match choice {
                Choice::On(i) => Target::Layer(c.layers[*i].spatial),
                Choice::Off(reason) => Target::Off(*reason),
            });
        }
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;
        self.out.decisions.clear();
        self.out.switched.clear();
        for ((sub, target), (_, costs)) in input.tracks.iter().zip(targets).zip(smoothed) {
            let target = target.unwrap_or(Target::Idle);
            let before = self.tracks.get(&sub.track).map(|s| (s.target, s.reported));
            let reported_before = before.and_then(|(_, reported)| reported);
            let reported = match target {
                Target::Layer(_) => None,
                Target::Off(reason) => Some(reason),
                Target::Idle => reported_before,
            };
            if reported != reported_before {
                self.out.switched.push(Switched {
                    track: sub.track.clone(),
                    off: reported,
                });
            }
            self.out.decisions.push(Decision {
                track: sub.track.clone(),
                target,
                changed: before.is_none_or(|(t, _)| t != target),
            });
            self.tracks.insert(
                sub.track.clone(),
                TrackState {
                    target,
                    reported,
                    epoch,
                    costs,
                    smoothed_at: now,
                },
            );
        }
        self.tracks.retain(|_, s| s.epoch == epoch);
        self.out.video_bitrate = committed.spent;
        self.out.probe = probe;
        self.out.next = next;
        &self.out
    }

    /// `sub`'s layers with their costs smoothed since the last call
    /// ([`COST_SMOOTHING`]), and the smoothed costs to remember. A layer
    /// seen for the first time, or measured for the first time after a
    /// guess, counts at its cost.
    fn smooth(
        &self,
        now: Instant,
        sub: &VideoSubscription<'_, K>,
        guesses: &Guesses,
    ) -> (Vec<Layer>, SmoothedCosts) {
        let state = self.tracks.get(&sub.track);
        let weight = state.map_or(1.0, |s| {
            let dt = now.saturating_duration_since(s.smoothed_at).as_secs_f64();
            1.0 - (-dt / COST_SMOOTHING.as_secs_f64()).exp()
        });
        let mut costs = Vec::with_capacity(sub.layers.len());
        let layers = sub
            .layers
            .iter()
            .map(|layer| {
                let (cost, measured) = guesses.cost(layer, sub);
                let cost = cost as f64;
                let before = state.and_then(|s| {
                    s.costs
                        .iter()
                        .find(|(spatial, _, m)| *spatial == layer.spatial && *m == measured)
                        .map(|(_, c, _)| *c)
                });
                let smoothed = before.map_or(cost, |b| b + (cost - b) * weight);
                costs.push((layer.spatial, smoothed, measured));
                Layer {
                    bitrate: (smoothed.round() as u64).max(1),
                    ..*layer
                }
            })
            .collect();
        (layers, costs)
    }

    /// The total estimate that would let the best-ranked track short of its
    /// render cap take its next step, if the network (not
    /// `maxSubscriptionBitrate`) is what holds it back and the estimate
    /// does not cover it yet.
    fn probe_target(
        &self,
        ranked: &[Candidate<'_, K>],
        committed: &Plan,
        input: &Input<'_, K>,
        usable: (u64, u64),
        subscription: u64,
    ) -> Option<u64> {
        let step = ranked
            .iter()
            .zip(&committed.choices)
            .find_map(|(c, choice)| match choice {
                Choice::On(i) if *i < c.top => Some(c.cost(*i + 1).saturating_sub(c.cost(*i))),
                Choice::Off(SwitchOffReason::NetworkCongestion) => Some(c.cost(0)),
                _ => None,
            })?;
        let video = committed.spent.saturating_add(step);
        if video > scale(subscription, HEADROOM) {
            return None;
        }
        // Invert video ≤ (estimate − audio) × usable × headroom.
        let (un, ud) = usable;
        let (hn, hd) = HEADROOM;
        let needed = u128::from(video) * u128::from(ud) * u128::from(hd);
        let per = u128::from(un) * u128::from(hn);
        let estimate = u64::try_from(needed.div_ceil(per))
            .unwrap_or(u64::MAX)
            .saturating_add(input.audio);
        (estimate > input.estimate).then_some(estimate)
    }
}

/// Prices for layers whose own measurement is missing or not to be trusted
/// yet, from what is measured elsewhere.
///
/// * A layer not measured at all (the publisher has just begun it, or it
///   was paused before it ever flowed): its track's own measured layer
///   nearest in size, scaled by the ratio of [`nominal_bitrate`]s (an
///   encoder's layers keep its proportions); else the median of other
///   tracks' measured layers of the same size (settled tracks' if there
///   are any); else [`nominal_bitrate`], libwebrtc's targets at the
///   layer's frame rate.
/// * A layer of a `settling` track: the median of *settled* tracks' layers
///   of the same size, when there are any. In a room, publishers' encoders
///   are alike, and a newcomer's own first seconds are mostly keyframes
///   (every joining subscriber asks for one), which read two to four times
///   its rate; else its own measurement, as above.
///
/// Without this, a join storm's new tracks are priced at their keyframes'
/// rate, or at a 30 fps camera's, far above a grid tile's, and switched
/// off until measured: a switch off and on again for every join.
struct Guesses {
    /// Measured layers of settled tracks, as (pixels, bitrate), sorted.
    settled: Vec<(u64, u64)>,
    /// Measured layers of all tracks, likewise.
    measured: Vec<(u64, u64)>,
}

impl Guesses {
    fn new<K>(tracks: &[VideoSubscription<'_, K>]) -> Self {
        let needed = tracks
            .iter()
            .any(|t| t.settling || t.layers.iter().any(|l| l.bitrate == 0));
        if !needed {
            return Self {
                settled: Vec::new(),
                measured: Vec::new(),
            };
        }
        let pool = |settled_only: bool| {
            let mut pool: Vec<(u64, u64)> = tracks
                .iter()
                .filter(|t| !(settled_only && t.settling))
                .flat_map(|t| t.layers)
                .filter(|l| l.bitrate > 0)
                .map(|l| (l.dimensions().area(), l.bitrate))
                .collect();
            pool.sort_unstable();
            pool
        };
        Self {
            settled: pool(true),
            measured: pool(false),
        }
    }

    /// The price of `layer`, one of `sub`'s layers, and whether it is
    /// `sub`'s own settled measurement.
    fn cost<K>(&self, layer: &Layer, sub: &VideoSubscription<'_, K>) -> (u64, bool) {
        let area = layer.dimensions().area();
        if sub.settling
            && let Some(median) = median_of(&self.settled, area)
        {
            return (median, false);
        }
        if layer.bitrate > 0 {
            return (layer.bitrate, !sub.settling);
        }
        let nominal = |l: &Layer| nominal_bitrate(l.width, l.height, l.frame_rate);
        if let Some(m) = sub
            .layers
            .iter()
            .filter(|l| l.bitrate > 0)
            .min_by_key(|l| l.dimensions().area().abs_diff(area))
        {
            let ratio = nominal(layer) as f64 / nominal(m).max(1) as f64;
            return (((m.bitrate as f64 * ratio).round() as u64).max(1), false);
        }
        let guess = median_of(&self.settled, area)
            .or_else(|| median_of(&self.measured, area))
            .unwrap_or_else(|| nominal(layer));
        (guess, false)
    }
}

/// The median bitrate of `pool`'s layers of `area` pixels.
fn median_of(pool: &[(u64, u64)], area: u64) -> Option<u64> {
    let from = pool.partition_point(|(a, _)| *a < area);
    let to = pool.partition_point(|(a, _)| *a <= area);
    let same = pool.get(from..to).filter(|same| !same.is_empty())?;
    Some(same[same.len() / 2].1)
}

/// `value × ratio`, in whole numbers, without overflow.
fn scale(value: u64, (num, den): (u64, u64)) -> u64 {
    if value == u64::MAX {
        return value;
    }
    u64::try_from(u128::from(value) * u128::from(num) / u128::from(den)).unwrap_or(u64::MAX)
}

/// What video may spend of an estimate: what audio leaves, times `usable`.
fn video_budget(estimate: u64, audio: u64, usable: (u64, u64)) -> u64 {
    scale(estimate.saturating_sub(audio), usable)
}

/// What the cheapest single step up would add: one track's next layer, or
/// the lowest layer of a track off for bandwidth. `None`: nothing to gain.
fn cheapest_step<K: Ord>(
    ranked: &[Candidate<'_, K>],
    current: &[Option<usize>],
    starved: &[bool],
) -> Option<u64> {
    ranked
        .iter()
        .zip(current)
        .zip(starved)
        .filter_map(|((c, cur), starved)| match cur {
            Some(i) if *i < c.top => Some(c.cost(i + 1).saturating_sub(c.cost(*i))),
            None if *starved => Some(c.cost(0)),
            _ => None,
        })
        .min()
}

/// One eligible subscription, as the plans see it.
struct Candidate<'a, K> {
    /// Position in the input.
    index: usize,
    key: &'a K,
    layers: &'a [Layer],
    priority: Priority,
    screen_share: bool,
    dominant_speaker: bool,
    /// The highest layer index its render dimensions allow.
    top: usize,
    /// Pixels it is rendered at: its share in `collaboration`.
    weight: u64,
    /// Its layer bitrates are still settling: it does not step up.
    settling: bool,
}

impl<'a, K: Ord> Candidate<'a, K> {
    fn new(
        index: usize,
        sub: &'a VideoSubscription<'a, K>,
        layers: &'a [Layer],
        profile: &BandwidthProfile,
    ) -> Self {
        let mut priority = sub.subscribe_priority.unwrap_or(sub.publish_priority);
        if sub.dominant_speaker {
            priority = priority.max(profile.dominant_speaker_priority);
        }
        let highest = layers.len().saturating_sub(1);
        let top = match sub.render {
            None => highest,
            Some(r) if r.width == 0 || r.height == 0 => 0,
            Some(r) => layers.iter().position(|l| l.covers(r)).unwrap_or(highest),
        };
        let weight = sub
            .render
            .unwrap_or(priority.default_render())
            .area()
            .max(1);
        Self {
            index,
            key: &sub.track,
            layers,
            priority,
            screen_share: sub.screen_share,
            dominant_speaker: sub.dominant_speaker,
            top,
            weight,
            settling: sub.settling,
        }
    }

    /// Rank order: priority, then screen shares, then the dominant speaker,
    /// then the key — a total order, so the result never depends on the
    /// order of the input.
    fn rank(a: &Self, b: &Self) -> Ordering {
        b.priority
            .cmp(&a.priority)
            .then(b.screen_share.cmp(&a.screen_share))
            .then(b.dominant_speaker.cmp(&a.dominant_speaker))
            .then(a.key.cmp(b.key))
            .then(a.index.cmp(&b.index))
    }

    fn cost(&self, layer: usize) -> u64 {
        self.layers.get(layer).map_or(0, Layer::cost)
    }

    /// The index of the layer with this spatial id, or of the highest below
    /// it when it is gone (the publisher stopped it).
    fn index_of(&self, spatial: u8) -> Option<usize> {
        self.layers
            .iter()
            .position(|l| l.spatial == spatial)
            .or_else(|| self.layers.iter().rposition(|l| l.spatial < spatial))
    }

    /// Whether bandwidth keeps it below what its render size allows.
    fn deficient(&self, choice: Choice) -> bool {
        match choice {
            Choice::On(i) => i < self.top,
            Choice::Off(reason) => reason.is_bandwidth(),
        }
    }
}

/// The highest layer a plan may give a track, or off (and why).
#[derive(Debug, Clone, Copy)]
enum Cap {
    UpTo(usize),
    Off(SwitchOffReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    On(usize),
    Off(SwitchOffReason),
}

impl Choice {
    fn layer(self) -> Option<usize> {
        match self {
            Choice::On(i) => Some(i),
            Choice::Off(_) => None,
        }
    }
}

/// The two budgets a plan keeps within, bits per second of video.
#[derive(Debug, Clone, Copy)]
struct Limits {
    network: u64,
    subscription: u64,
}

/// One plan: a layer (or off) per ranked candidate within [`Limits`].
struct Plan {
    choices: Vec<Choice>,
    /// Bits per second of the chosen layers (saturating).
    spent: u64,
}

/// The state of a plan being made.
struct Planner<'p, 'a, K> {
    ranked: &'p [Candidate<'a, K>],
    caps: &'p [Cap],
    /// What each track has now (empty: no preference): within a level,
    /// tracks that have it are served first.
    current: &'p [Option<usize>],
    limits: Limits,
    keep_on: bool,
    choices: Vec<Choice>,
    /// Exact: a sum of u64 costs, whatever they are.
    spent: u128,
}

impl Plan {
    fn run<K: Ord>(
        ranked: &[Candidate<'_, K>],
        caps: &[Cap],
        current: &[Option<usize>],
        limits: Limits,
        mode: Mode,
        keep_on: bool,
    ) -> Plan {
        let mut p = Planner {
            ranked,
            caps,
            current,
            limits,
            keep_on,
            choices: vec![Choice::Off(SwitchOffReason::NetworkCongestion); ranked.len()],
            spent: 0,
        };
        match mode {
            Mode::Grid => {
                p.admit_all(0, ranked.len());
                p.round_robin(0, ranked.len());
            }
            Mode::Collaboration => {
                p.admit_all(0, ranked.len());
                p.water_fill();
            }
            Mode::Presentation => {
                // With switch-off disabled everyone is on whatever happens:
                // take the lowest layers first, so that the overshoot is
                // never more than they cost.
                if keep_on {
                    p.admit_all(0, ranked.len());
                }
                // Ranked order keeps each priority class contiguous.
                let mut start = 0;
                while start < ranked.len() {
                    let class = ranked[start].priority;
                    let end = ranked[start..]
                        .iter()
                        .position(|c| c.priority != class)
                        .map_or(ranked.len(), |n| start + n);
                    if !keep_on {
                        p.admit_all(start, end);
                    }
                    p.round_robin(start, end);
                    start = end;
                }
            }
        }
        Plan {
            choices: p.choices,
            spent: u64::try_from(p.spent).unwrap_or(u64::MAX),
        }
    }
}

impl<K> Planner<'_, '_, K> {
    fn top(&self, i: usize) -> Option<usize> {
        match self.caps[i] {
            Cap::UpTo(top) => Some(top.min(self.ranked[i].layers.len().saturating_sub(1))),
            Cap::Off(_) => None,
        }
    }

    fn cost(&self, i: usize, layer: usize) -> u64 {
        self.ranked[i].layers.get(layer).map_or(0, Layer::cost)
    }

    /// Whether `extra` more fits; if not, the reason to give.
    fn fits(&self, extra: u64) -> Result<(), SwitchOffReason> {
        let total = self.spent + u128::from(extra);
        match (
            total <= u128::from(self.limits.network),
            total <= u128::from(self.limits.subscription),
        ) {
            (true, true) => Ok(()),
            (true, false) => Err(SwitchOffReason::MaxBandwidthReached),
            (false, _) => Err(SwitchOffReason::NetworkCongestion),
        }
    }

    /// Switch track `i` on at its lowest layer if it fits (or always, when
    /// switch-off is disabled).
    fn admit(&mut self, i: usize) {
        if let Cap::Off(reason) = self.caps[i] {
            self.choices[i] = Choice::Off(reason);
            return;
        }
        let lowest = self.cost(i, 0);
        match self.fits(lowest) {
            Err(reason) if !self.keep_on => self.choices[i] = Choice::Off(reason),
            _ => {
                self.spent += u128::from(lowest);
                self.choices[i] = Choice::On(0);
            }
        }
    }

    /// Admit `start..end` in rank order, those on now first among equals.
    fn admit_all(&mut self, start: usize, end: usize) {
        for i in self.order(start, end, 0) {
            self.admit(i);
        }
    }

    /// `start..end` in rank order, except that among tracks of equal rank
    /// (priority, screen share, dominant speaker: all but the key) those
    /// that have `level` now come first.
    fn order(&self, start: usize, end: usize, level: usize) -> Vec<usize> {
        let class = |i: usize| {
            let c = &self.ranked[i];
            (c.priority, c.screen_share, c.dominant_speaker)
        };
        let mut order: Vec<usize> = (start..end).collect();
        // Stable: rank order is kept within each part.
        let mut group_start = 0;
        while group_start < order.len() {
            let key = class(order[group_start]);
            let group_end = order[group_start..]
                .iter()
                .position(|&i| class(i) != key)
                .map_or(order.len(), |n| group_start + n);
            order[group_start..group_end].sort_by_key(|&i| !self.has(i, level));
            group_start = group_end;
        }
        order
    }

    /// Whether track `i` has `level` or above now.
    fn has(&self, i: usize, level: usize) -> bool {
        self.current
            .get(i)
            .is_some_and(|c| c.is_some_and(|c| c >= level))
    }

    /// Move track `i` one layer up if its cap allows and it fits.
    fn raise(&mut self, i: usize) -> bool {
        let (Choice::On(layer), Some(top)) = (self.choices[i], self.top(i)) else {
            return false;
        };
        if layer >= top {
            return false;
        }
        let (old, new) = (self.cost(i, layer), self.cost(i, layer + 1));
        if new <= old {
            self.spent -= u128::from(old - new); // old is part of spent
        } else if self.fits(new - old).is_ok() {
            self.spent += u128::from(new - old);
        } else {
            return false;
        }
        self.choices[i] = Choice::On(layer + 1);
        true
    }

    /// Layer by layer: everyone in `start..end` gets layer 1 (in rank
    /// order), then layer 2, and so on. A track that cannot take a layer
    /// stays where it is; the others go on.
    fn round_robin(&mut self, start: usize, end: usize) {
        let highest = (start..end).filter_map(|i| self.top(i)).max().unwrap_or(0);
        for level in 1..=highest {
            for i in self.order(start, end, level) {
                if self.choices[i] == Choice::On(level - 1) {
                    self.raise(i);
                }
            }
        }
    }

    /// One layer at a time to the track with the least bitrate per rendered
    /// pixel (ties in rank order), until nobody can take another.
    fn water_fill(&mut self) {
        let mut stuck = vec![false; self.ranked.len()];
        loop {
            let mut best: Option<(usize, u64)> = None;
            for (i, _) in stuck.iter().enumerate().filter(|(_, stuck)| !**stuck) {
                let (Choice::On(layer), Some(top)) = (self.choices[i], self.top(i)) else {
                    continue;
                };
                if layer >= top {
                    continue;
                }
                let cost = self.cost(i, layer);
                let lower = best.is_none_or(|(b, b_cost)| {
                    // cost/weight < b_cost/b_weight, without division.
                    u128::from(cost) * u128::from(self.ranked[b].weight)
                        < u128::from(b_cost) * u128::from(self.ranked[i].weight)
                });
                if lower {
                    best = Some((i, cost));
                }
            }
            let Some((i, _)) = best else { break };
            if !self.raise(i) {
                stuck[i] = true;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The loss bound

/// With receiver estimates, the loss a subscriber reports bounds its
/// estimate, as the loss-based half of Google's congestion control does for
/// a sender: Chromium's REMB is delay-based only, and a link with a short
/// queue drops what it cannot carry before its delay tells. The reports are
/// RTCP receiver reports' fraction lost, which str0m hands over with each
/// round of per-stream stats.
///
/// Each round, all the streams sent to the subscriber together:
///
/// * with more than [`LOSS_HIGH`] of their packets lost, the link carried
///   what arrived (what was sent, less what was lost), and that is the
///   bound — unless what was sent was already within the bound in force:
///   then the loss is not this sender overrunning the link (a queue still
///   draining, or loss that is not congestion at all), and the bound stays
///   where it is rather than ratchet down round after round;
/// * with reports of less, the bound is lifted;
/// * with no reports, nothing changes, but a bound no report has renewed
///   for [`LOSS_STALE`] is lifted.
///
/// Feed it with [`Self::record`]; read it with [`Self::bound`].
#[derive(Debug, Default)]
pub struct LossBound {
    /// The round being gathered.
    round: Option<LossRound>,
    /// When the last round was taken, to turn its bytes into a rate.
    last: Option<Instant>,
    /// The bound, bits per second, and the round that last renewed it.
    bound: Option<(u64, Instant)>,
}

/// Above this share of packets lost in a round, the loss bounds the
/// estimate (GCC's loss-based controller decreases above 10% too).
pub const LOSS_HIGH: (u64, u64) = (10, 100);
/// How long a bound lasts with no report to renew it.
pub const LOSS_STALE: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct LossRound {
    at: Instant,
    bytes: u64,
    /// Packets of the streams with a report in this round, and the share
    /// of them lost.
    reported: u64,
    lost: f64,
}

impl LossBound {
    /// One stream's stats of the round stamped `at`: the packets and bytes
    /// sent since its last stats, and the fraction lost from the receiver
    /// reports since then, if any came.
    pub fn record(&mut self, at: Instant, packets: u64, bytes: u64, loss: Option<f32>) {
        if self.round.as_ref().is_some_and(|r| r.at != at) {
            self.close();
        }
        let round = self.round.get_or_insert(LossRound {
            at,
            bytes: 0,
            reported: 0,
            lost: 0.0,
        });
        round.bytes = round.bytes.saturating_add(bytes);
        if let Some(loss) = loss.filter(|l| l.is_finite()) {
            round.reported = round.reported.saturating_add(packets);
            round.lost += packets as f64 * f64::from(loss.clamp(0.0, 1.0));
        }
    }

    /// What the link is known to carry at `now`, bits per second, if loss
    /// says so. Closes the round recorded so far (a round's stats arrive
    /// together).
    pub fn bound(&mut self, now: Instant) -> Option<u64> {
        self.close();
        if self
            .bound
            .is_some_and(|(_, at)| now.saturating_duration_since(at) >= LOSS_STALE)
        {
            self.bound = None;
        }
        self.bound.map(|(bound, _)| bound)
    }

    fn close(&mut self) {
        let Some(round) = self.round.take() else {
            return;
        };
        let elapsed = self
            .last
            .replace(round.at)
            .map(|last| round.at.saturating_duration_since(last));
        let Some(elapsed) = elapsed.filter(|e| !e.is_zero()) else {
            return;
        };
        if round.reported == 0 {
            return; // no report: nothing known of the loss
        }
        let share = round.lost / round.reported as f64;
        if share <= LOSS_HIGH.0 as f64 / LOSS_HIGH.1 as f64 {
            self.bound = None;
            return;
        }
        let sent = (round.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
        let arrived = (sent as f64 * (1.0 - share)) as u64;
        self.bound = Some(match self.bound {
            Some((bound, _)) if sent <= bound => (bound, round.at),
            _ => (arrived, round.at),
        });
    }
}

/// The estimates of the last hold times, kept so that the minimum over any
/// window up to the longest hold is known: a monotonic queue, values rising
/// from front to back. Each point (t, v) says "from t on, no estimate was
/// below v".
#[derive(Debug, Default)]
struct EstimateWindow {
    points: VecDeque<(Instant, u64)>,
}

impl EstimateWindow {
    fn push(&mut self, now: Instant, value: u64, keep: Duration) {
        // Time never runs backwards here, whatever the caller passes.
        let now = self.points.back().map_or(now, |(t, _)| (*t).max(now));
        while self.points.len() >= 2 && self.points[1].0 + keep <= now {
            self.points.pop_front();
        }
        while self.points.back().is_some_and(|(_, v)| *v > value) {
            self.points.pop_back();
        }
        if self.points.back().is_some_and(|(_, v)| *v == value) {
            return; // the older point already says so, for longer
        }
        if self.points.len() >= ESTIMATE_POINTS {
            // Dropping an interior point lowers the minimum of the windows
            // that start in its span to its predecessor's: more cautious.
            self.points.remove(1);
        }
        self.points.push_back((now, value));
    }

    /// The point in force at the start of the window ending at `now`.
    fn first_in(&self, now: Instant, window: Duration) -> Option<usize> {
        (0..self.points.len()).find(|&i| {
            self.points
                .get(i + 1)
                .is_none_or(|(t, _)| *t + window > now)
        })
    }

    /// The least estimate over the last `window`.
    fn min_over(&self, now: Instant, window: Duration) -> u64 {
        self.first_in(now, window).map_or(0, |i| self.points[i].1)
    }

    /// When [`Self::min_over`] will next rise if the estimate holds.
    fn next_rise(&self, now: Instant, window: Duration) -> Option<Instant> {
        let i = self.first_in(now, window)?;
        self.points.get(i + 1).map(|(t, _)| *t + window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    /// Chrome's three VP8 simulcast layers for a 720p camera.
    const CAMERA: [Layer; 3] = [
        Layer {
            spatial: 0,
            width: 320,
            height: 180,
            frame_rate: 30.0,
            bitrate: 150_000,
        },
        Layer {
            spatial: 1,
            width: 640,
            height: 360,
            frame_rate: 30.0,
            bitrate: 500_000,
        },
        Layer {
            spatial: 2,
            width: 1280,
            height: 720,
            frame_rate: 30.0,
            bitrate: 1_500_000,
        },
    ];

    /// A subscriber's allocator driven by a fake clock.
    struct Subscriber {
        allocator: Allocator<&'static str>,
        clock: Instant,
        estimate: u64,
        can_probe: bool,
        lossy: bool,
        audio: u64,
    }

    impl Subscriber {
        fn new(profile: BandwidthProfile, estimate: u64) -> Self {
            Self {
                allocator: Allocator::new(profile),
                clock: Instant::now(),
                estimate,
                can_probe: true,
                lossy: false,
                audio: 0,
            }
        }

        fn allocate(
            &mut self,
            tracks: &[VideoSubscription<'_, &'static str>],
        ) -> Allocation<&'static str> {
            let input = Input {
                estimate: self.estimate,
                can_probe: self.can_probe,
                lossy: self.lossy,
                audio: self.audio,
                tracks,
            };
            self.allocator.allocate(self.clock, &input).clone()
        }

        fn after(&mut self, d: Duration) -> &mut Self {
            self.clock += d;
            self
        }
    }

    fn targets(out: &Allocation<&'static str>) -> Vec<Target> {
        out.decisions.iter().map(|d| d.target).collect()
    }

    fn camera(key: &'static str) -> VideoSubscription<'static, &'static str> {
        VideoSubscription::new(key, &CAMERA)
    }

    fn detected() -> BandwidthProfile {
        BandwidthProfile {
            track_switch_off_mode: SwitchOffMode::Detected,
            ..BandwidthProfile::default()
        }
    }

    /// A subscriber whose estimates are its own (REMB): Chromium reports at
    /// most 1.5× what it receives (+10 kbit/s), and 85% of it on overuse.
    fn receiver(estimate: u64) -> Subscriber {
        let mut sub = Subscriber::new(detected(), estimate);
        sub.allocator = Allocator::new(detected()).receiver_estimates(true);
        sub.can_probe = false;
        sub
    }

    /// What Chromium's REMB reads while receiving `bps` without overuse.
    fn ceiling(bps: u64) -> u64 {
        bps * 3 / 2 + 10_000
    }

    /// The loss bound of one round of two streams, a second after a first
    /// round: 1 Mbit/s sent in all.
    fn loss_round(bound: &mut LossBound, at: Instant, loss: [Option<f32>; 2]) -> Option<u64> {
        bound.record(at, 80, 100_000, loss[0]);
        bound.record(at, 20, 25_000, loss[1]);
        bound.bound(at)
    }

    #[test]
    fn loss_over_a_tenth_bounds_the_estimate_by_what_arrived() {
        let t0 = Instant::now();
        let mut bound = LossBound::default();
        // The first round has no rate to go by.
        assert_eq!(loss_round(&mut bound, t0, [Some(0.5), Some(0.5)]), None);
        // 80 packets at 50% and 20 at 0%: 40% of 1 Mbit/s lost.
        let b = loss_round(&mut bound, t0 + SEC, [Some(0.5), Some(0.0)]);
        assert_eq!(b, Some(600_000));
        // Still losing, but now sending within the bound: the loss is not
        // this sender's overrun, and the bound does not ratchet down.
        bound.record(t0 + 2 * SEC, 50, 50_000, Some(0.3));
        assert_eq!(bound.bound(t0 + 2 * SEC), Some(600_000));
        // A round without reports changes nothing; a bound no report
        // renews is lifted after LOSS_STALE.
        assert_eq!(
            loss_round(&mut bound, t0 + 3 * SEC, [None, None]),
            Some(600_000)
        );
        assert_eq!(bound.bound(t0 + 2 * SEC + LOSS_STALE), None);
        // Losing while sending over it: what arrived is the new bound.
        loss_round(&mut bound, t0 + 5 * SEC, [None, None]);
        loss_round(&mut bound, t0 + 6 * SEC, [Some(0.25), Some(0.25)]);
        assert_eq!(bound.bound(t0 + 6 * SEC), Some(750_000));
        assert_eq!(
            loss_round(&mut bound, t0 + 7 * SEC, [Some(0.5), Some(0.5)]),
            Some(500_000)
        );
        // A round reporting 10% or less lifts it.
        assert_eq!(
            loss_round(&mut bound, t0 + 8 * SEC, [Some(0.0625), None]),
            None
        );
        // The rate is over the time since the last round.
        bound.record(t0 + 10 * SEC, 100, 250_000, Some(0.5));
        assert_eq!(bound.bound(t0 + 10 * SEC), Some(500_000));
        // NaN is no report; a fraction over 1 is all lost.
        let mut fresh = LossBound::default();
        fresh.record(t0, 1, 1, Some(0.0));
        fresh.record(t0 + SEC, 100, 250_000, Some(f32::NAN));
        fresh.record(t0 + SEC, 100, 250_000, Some(3.0));
        assert_eq!(fresh.bound(t0 + SEC), Some(0));
    }

    #[test]
    fn behind_a_link_that_drops_the_loss_bound_keeps_a_receiver_allocation_low() {
        // A link of 300 kbit/s with a short queue: what is sent beyond it
        // is dropped, not delayed, so the REMB never sees overuse and
        // reads what arrives half as much again. The loss reports bound
        // it: the top layer goes within two rounds, and the tries of the
        // next layer up are rare and brief.
        const LINK: u64 = 300_000;
        let tracks = [camera("alice")];
        let mut sub = receiver(1 << 40);
        let mut loss = LossBound::default();
        let mut layers = Vec::new();
        let mut sent = targets(&sub.allocate(&tracks))
            .first()
            .and_then(|t| match t {
                Target::Layer(l) => Some(CAMERA[usize::from(*l)].bitrate),
                _ => None,
            })
            .unwrap_or(0);
        for second in 0..60 {
            // A round of stats a second; allocations four times a second.
            let arrived = sent.min(LINK);
            let lost = 1.0 - arrived as f64 / sent.max(1) as f64;
            loss.record(sub.clock, 100, sent / 8, Some(lost as f32));
            let remb = ceiling(arrived);
            let bound = loss.bound(sub.clock);
            sub.estimate = bound.map_or(remb, |b| b.min(remb));
            sub.lossy = bound.is_some_and(|b| b < remb);
            for _ in 0..4 {
                let out = sub.after(250 * MS).allocate(&tracks);
                let layer = match targets(&out).first() {
                    Some(Target::Layer(l)) => *l,
                    other => panic!("at {second} s: {other:?}"),
                };
                sent = CAMERA[usize::from(layer)].bitrate;
                if second >= 2 {
                    layers.push(layer);
                }
            }
        }
        let high = layers.iter().filter(|l| **l > 0).count();
        assert!(
            high * 10 <= layers.len(),
            "{high} of {} looks above the low layer: {layers:?}",
            layers.len()
        );
    }

    #[test]
    fn receiver_estimates_step_up_one_layer_at_a_time_and_down_on_a_fall() {
        let tracks = [camera("alice")];
        let mut sub = receiver(1 << 40);
        // No estimate yet: what the subscriber asks for.
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(2)]);
        // The first report, about what it receives: kept.
        sub.estimate = 1_600_000;
        assert_eq!(
            targets(&sub.after(SEC).allocate(&tracks)),
            [Target::Layer(2)]
        );
        // Overuse: 85% of 1.5 Mbit/s. Down in the same call.
        sub.estimate = 1_275_000;
        assert_eq!(
            targets(&sub.after(SEC).allocate(&tracks)),
            [Target::Layer(1)]
        );
        // The report now follows what is received, far below the top
        // layer: the estimate alone would never let it climb back.
        sub.estimate = ceiling(500_000);
        for _ in 0..11 {
            assert_eq!(
                targets(&sub.after(250 * MS).allocate(&tracks)),
                [Target::Layer(1)]
            );
        }
        // The hold after congestion is over: one step is tried.
        assert_eq!(
            targets(&sub.after(300 * MS).allocate(&tracks)),
            [Target::Layer(2)]
        );
        // The link cannot carry it: the report does not rise (overuse),
        // and a second later the step is undone; the next try waits twice
        // as long.
        assert_eq!(
            targets(&sub.after(500 * MS).allocate(&tracks)),
            [Target::Layer(2)]
        );
        assert_eq!(
            targets(&sub.after(600 * MS).allocate(&tracks)),
            [Target::Layer(1)]
        );
        assert_eq!(sub.allocator.hold(), UP_HOLD * 2);
        sub.estimate = ceiling(500_000) - 1;
        assert_eq!(
            targets(&sub.after(5 * SEC).allocate(&tracks)),
            [Target::Layer(1)]
        );
        sub.estimate = ceiling(500_000);
        assert_eq!(
            targets(&sub.after(1100 * MS).allocate(&tracks)),
            [Target::Layer(2)]
        );
        // This time the link carries it: the report climbs, 8% a second,
        // from below what is sent, and nothing moves.
        let mut remb = ceiling(500_000) as f64;
        for _ in 0..40 {
            remb = (remb * 1.08f64.powf(0.25)).min(ceiling(1_500_000) as f64);
            sub.estimate = remb as u64;
            assert_eq!(
                targets(&sub.after(250 * MS).allocate(&tracks)),
                [Target::Layer(2)]
            );
        }
        assert_eq!(
            sub.allocator.hold(),
            UP_HOLD,
            "a step that lasted resets the back-off"
        );
        // Where it levels off (half as much again as it receives), it
        // stays.
        for _ in 0..20 {
            assert_eq!(
                targets(&sub.after(250 * MS).allocate(&tracks)),
                [Target::Layer(2)]
            );
        }
    }

    #[test]
    fn receiver_estimates_let_a_new_track_on_at_once_unless_congested() {
        let mut sub = receiver(1 << 40);
        let render = |t: VideoSubscription<'static, &'static str>| VideoSubscription {
            render: Some(Dimensions::new(160, 90)),
            ..t
        };
        assert_eq!(
            targets(&sub.allocate(&[render(camera("a"))])),
            [Target::Layer(0)]
        );
        // The report sits where it can: half as much again as a quarter
        // layer, no room for another by itself.
        sub.estimate = ceiling(150_000);
        sub.after(SEC).allocate(&[render(camera("a"))]);
        let two = [render(camera("a")), render(camera("b"))];
        assert_eq!(
            targets(&sub.after(SEC).allocate(&two)),
            [Target::Layer(0), Target::Layer(0)],
            "the newcomer is on at once"
        );
        // Congestion: the report falls under what is sent, and a third
        // newcomer waits.
        sub.estimate = 200_000;
        let three = [
            render(camera("a")),
            render(camera("b")),
            render(camera("c")),
        ];
        let out = targets(&sub.after(SEC).allocate(&three));
        assert_eq!(
            out[2],
            Target::Off(SwitchOffReason::NetworkCongestion),
            "{out:?}"
        );
    }

    #[test]
    fn receiver_estimates_fill_a_grid_a_step_at_a_time_within_the_cap() {
        let profile = BandwidthProfile {
            max_subscription_bitrate: Some(1_000_000),
            ..detected()
        };
        let tracks = [camera("a"), camera("b"), camera("c")];
        let mut sub = receiver(1 << 40);
        sub.allocator = Allocator::new(profile).receiver_estimates(true);
        // The cap allows every quarter layer and one half layer.
        let first = targets(&sub.allocate(&tracks));
        assert_eq!(
            first.iter().filter(|t| **t == Target::Layer(1)).count(),
            1,
            "{first:?}"
        );
        // A congested link: 85% of what arrives. The first report is what
        // the receiver has seen, not a fall: kept while it may still rise…
        sub.estimate = 400_000;
        let kept = sub.after(SEC).allocate(&tracks);
        assert_eq!(targets(&kept), first, "{kept:?}");
        // …and down to what fits once it has not for STALL.
        let down = sub.after(STALL).allocate(&tracks);
        assert!(down.video_bitrate <= 400_000, "{down:?}");
        // The report keeps near what it receives; steps come one per hold,
        // never past the cap.
        let mut spent = down.video_bitrate;
        for _ in 0..6 {
            sub.estimate = ceiling(spent);
            let out = sub.after(UP_HOLD + 100 * MS).allocate(&tracks);
            assert!(out.video_bitrate <= 1_000_000, "{out:?}");
            assert!(out.video_bitrate >= spent, "{out:?}");
            spent = out.video_bitrate;
        }
        let last = targets(&sub.after(SEC).allocate(&tracks));
        assert_eq!(last, first, "back where the cap puts it");
    }

    #[test]
    fn when_the_estimate_drops_the_layer_drops_in_the_same_call() {
        let mut sub = Subscriber::new(detected(), 3_000_000);
        let tracks = [camera("alice")];
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(2)]);

        sub.after(200 * MS).estimate = 800_000;
        let out = sub.allocate(&tracks);
        assert_eq!(targets(&out), [Target::Layer(1)]);
        assert!(out.decisions[0].changed, "the forwarder is told to switch");
        assert!(out.switched.is_empty(), "a lower layer is not a switch-off");
    }

    #[test]
    fn when_the_estimate_recovers_the_layer_climbs_only_after_the_hold_time() {
        let mut sub = Subscriber::new(detected(), 3_000_000);
        let tracks = [camera("alice")];
        sub.allocate(&tracks);
        sub.after(SEC).estimate = 800_000;
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(1)]);

        sub.after(SEC).estimate = 3_000_000;
        let out = sub.allocate(&tracks);
        assert_eq!(
            targets(&out),
            [Target::Layer(1)],
            "not yet: the dip is in the window"
        );
        let due = out
            .next
            .expect("the allocator asks to be called when the hold ends");
        assert_eq!(due, sub.clock + UP_HOLD);

        sub.after(UP_HOLD - MS);
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(1)]);
        sub.after(MS);
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(2)]);
    }

    #[test]
    fn a_noisy_but_stable_link_never_changes_layer() {
        // Two cameras at 1.5 + 0.5 Mbps need 2 Mbps; the estimate wanders
        // ±6% around 2.6 Mbps for ten simulated minutes.
        let mut sub = Subscriber::new(detected(), 2_600_000);
        let tracks = [camera("alice"), camera("bob")];
        let first = targets(&sub.allocate(&tracks));
        let mut changes = 0;
        let mut noise: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..6_000 {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let wobble = (noise % 12_001) as i64 - 6_000; // ±6.000%
            sub.after(100 * MS).estimate = (2_600_000i64 + 2_600_000 * wobble / 100_000) as u64;
            let out = sub.allocate(&tracks);
            changes += out.decisions.iter().filter(|d| d.changed).count();
            assert!(out.switched.is_empty());
        }
        assert_eq!(first, [Target::Layer(2), Target::Layer(1)]);
        assert_eq!(changes, 0, "no flapping");
    }

    /// A xorshift generator: ±`percent`% noise, deterministic.
    struct Noise(u64);

    impl Noise {
        fn apply(&mut self, value: u64, percent: i64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let span = percent * 2_000 + 1;
            let wobble = (self.0 % span as u64) as i64 - percent * 1_000; // thousandths of a percent
            (value as i64 + value as i64 * wobble / 100_000) as u64
        }
    }

    /// The load tester's layers: 8, 27 and 80 kbit/s at 2 fps.
    const SMALL: [Layer; 3] = [
        Layer {
            spatial: 0,
            width: 320,
            height: 180,
            frame_rate: 2.0,
            bitrate: 8_000,
        },
        Layer {
            spatial: 1,
            width: 640,
            height: 360,
            frame_rate: 2.0,
            bitrate: 27_000,
        },
        Layer {
            spatial: 2,
            width: 1280,
            height: 720,
            frame_rate: 2.0,
            bitrate: 80_000,
        },
    ];

    /// Every layer read ±30% off its steady value at every call (four times
    /// a second, for ten simulated minutes): with a cap that binds, the
    /// allocation settles and stays; the cap holds within DOWN_TOLERANCE.
    #[test]
    fn layer_bitrates_noisy_by_30_percent_do_not_make_a_capped_allocation_flap() {
        const KEYS: [&str; 15] = [
            "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p13",
            "p14",
        ];
        let cap = 300_000;
        let profile = BandwidthProfile {
            max_subscription_bitrate: Some(cap),
            ..BandwidthProfile::default()
        };
        let mut sub = Subscriber::new(profile, 50_000_000);
        let mut noise = Noise(0x2545_f491_4f6c_dd1d);
        let mut layers = [SMALL; 15];
        let mut changes = 0;
        let mut settled = None;
        for step in 0..2_400 {
            for track in &mut layers {
                for (layer, steady) in track.iter_mut().zip(SMALL) {
                    layer.bitrate = noise.apply(steady.bitrate, 30);
                }
            }
            let tracks: Vec<_> = KEYS
                .iter()
                .zip(&layers)
                .map(|(key, l)| VideoSubscription::new(*key, l))
                .collect();
            let out = sub.after(250 * MS).allocate(&tracks);
            // After the first two seconds nothing moves.
            if step >= 8 {
                changes += out.decisions.iter().filter(|d| d.changed).count();
                let steady: u64 = out
                    .decisions
                    .iter()
                    .map(|d| match d.target {
                        Target::Layer(l) => SMALL[usize::from(l)].bitrate,
                        _ => 0,
                    })
                    .sum();
                assert!(steady <= cap, "{steady}");
                assert!(out.video_bitrate <= scale(cap, DOWN_TOLERANCE));
                settled.get_or_insert(targets(&out));
            }
        }
        let settled = settled.expect("settled");
        assert!(settled.iter().all(|t| matches!(t, Target::Layer(_))));
        assert!(settled.contains(&Target::Layer(1)), "{settled:?}");
        assert_eq!(changes, 0, "no flapping");
    }

    /// A join storm under a cap: ten tracks flow at the load tester's
    /// rates, five more have just begun (their layers not measured yet, no
    /// frame rate known). Priced at a 30 fps camera's rates (150 kbit/s for
    /// the lowest layer) the newcomers would not fit the 400 kbit/s and be
    /// switched off
    /// until measured; priced like the tracks already flowing, they come on
    /// at once, at their lowest layer while their bitrates settle, and climb
    /// only once settled.
    #[test]
    fn a_join_storm_brings_new_tracks_on_at_their_lowest_layer_until_they_settle() {
        const KEYS: [&str; 15] = [
            "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "n0", "n1", "n2", "n3",
            "n4",
        ];
        let unmeasured = SMALL.map(|l| Layer {
            bitrate: 0,
            frame_rate: 30.0,
            ..l
        });
        let capped = |cap| BandwidthProfile {
            max_subscription_bitrate: Some(cap),
            ..BandwidthProfile::default()
        };
        let mut sub = Subscriber::new(capped(400_000), 50_000_000);
        let flowing: Vec<_> = KEYS[..10]
            .iter()
            .map(|key| VideoSubscription::new(*key, &SMALL))
            .collect();
        let out = sub.allocate(&flowing);
        assert!(
            targets(&out)
                .iter()
                .all(|t| matches!(t, Target::Layer(1 | 2)))
        );
        let mut tracks = flowing.clone();
        tracks.extend(KEYS[10..].iter().map(|key| VideoSubscription {
            settling: true,
            ..VideoSubscription::new(*key, &unmeasured)
        }));
        let out = sub.after(250 * MS).allocate(&tracks);
        assert!(out.switched.is_empty(), "{:?}", out.switched);
        assert_eq!(targets(&out)[10..], [Target::Layer(0); 5]);
        assert!(out.video_bitrate <= 400_000);
        // Measured but still settling, with room to spare: the others
        // climb, they do not.
        sub.allocator.set_profile(capped(2_000_000));
        for t in &mut tracks[10..] {
            t.layers = &SMALL;
        }
        for _ in 0..12 {
            let out = sub.after(250 * MS).allocate(&tracks);
            assert_eq!(targets(&out)[..10], [Target::Layer(2); 10]);
            assert_eq!(targets(&out)[10..], [Target::Layer(0); 5]);
        }
        // Settled: they climb too.
        for t in &mut tracks[10..] {
            t.settling = false;
        }
        let out = sub.after(250 * MS).allocate(&tracks);
        assert_eq!(targets(&out), [Target::Layer(2); 15]);
    }

    /// A layer not measured yet is priced from its own track's measured
    /// layers, else from same-sized layers of other tracks, else at
    /// libwebrtc's targets; a settling track's layers like settled tracks'
    /// layers of their size, when there are any.
    #[test]
    fn unmeasured_and_settling_layers_are_priced_from_what_is_measured() {
        let unmeasured = SMALL.map(|l| Layer { bitrate: 0, ..l });
        let mut half = SMALL;
        half[1].bitrate = 0;
        half[2].bitrate = 0;
        // Its first seconds, keyframes mostly: four times the rate.
        let keyframes = SMALL.map(|l| Layer {
            bitrate: l.bitrate * 4,
            ..l
        });
        let settling = VideoSubscription {
            settling: true,
            ..VideoSubscription::new("d", &keyframes)
        };
        let tracks = [
            VideoSubscription::new("a", &SMALL),
            VideoSubscription::new("b", &half),
            VideoSubscription::new("c", &unmeasured),
            settling,
        ];
        let guesses = Guesses::new(&tracks);
        // Its own lowest layer, scaled as libwebrtc's targets scale.
        let ratio = nominal_bitrate(640, 360, 2.0) as f64 / nominal_bitrate(320, 180, 2.0) as f64;
        assert_eq!(
            guesses.cost(&half[1], &tracks[1]),
            ((8_000.0 * ratio).round() as u64, false)
        );
        assert_eq!(guesses.cost(&half[0], &tracks[1]), (8_000, true));
        // Same-sized layers elsewhere: the median of what is measured.
        assert_eq!(guesses.cost(&unmeasured[0], &tracks[2]), (8_000, false));
        assert_eq!(guesses.cost(&unmeasured[1], &tracks[2]), (27_000, false));
        // The settling track: like the settled ones, not its keyframes.
        assert_eq!(guesses.cost(&keyframes[0], &settling), (8_000, false));
        assert_eq!(guesses.cost(&keyframes[2], &settling), (80_000, false));
        // Nothing of its size anywhere.
        let alone = [VideoSubscription::new("c", &unmeasured)];
        assert_eq!(
            Guesses::new(&alone).cost(&unmeasured[2], &alone[0]),
            (nominal_bitrate(1280, 720, 2.0), false)
        );
        // Settling with no settled track to go by: its own figure.
        let alone = [settling];
        assert_eq!(
            Guesses::new(&alone).cost(&keyframes[1], &alone[0]),
            (108_000, false)
        );
    }

    /// One camera whose middle layer fits the cap only just (500 of 600
    /// kbit/s, with 15% headroom to climb): ±30% noise on every layer.
    #[test]
    fn a_layer_that_only_just_fits_does_not_flap_with_noise_and_a_real_drop_is_followed_at_once() {
        let profile = BandwidthProfile {
            max_subscription_bitrate: Some(600_000),
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 50_000_000);
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let mut layers = CAMERA;
        let mut history = Vec::new();
        for _ in 0..2_400 {
            for (layer, steady) in layers.iter_mut().zip(CAMERA) {
                layer.bitrate = noise.apply(steady.bitrate, 30);
            }
            let out = sub
                .after(250 * MS)
                .allocate(&[VideoSubscription::new("alice", &layers)]);
            history.push(out.decisions[0].target);
        }
        let switches = history.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches <= 1, "{switches} switches");
        assert_eq!(history.last(), Some(&Target::Layer(1)));

        // The link drops to 300 kbit/s: down within the same call.
        sub.after(250 * MS).estimate = 300_000;
        let out = sub.allocate(&[VideoSubscription::new("alice", &layers)]);
        assert_eq!(targets(&out), [Target::Layer(0)]);
    }

    #[test]
    fn a_low_priority_track_is_switched_off_below_its_lowest_layer_and_on_when_it_fits_again() {
        let profile = BandwidthProfile {
            mode: Mode::Presentation,
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 2_000_000);
        let mut slides = camera("slides");
        slides.publish_priority = Priority::High;
        let mut alice = camera("alice");
        alice.publish_priority = Priority::Low;
        let tracks = [alice, slides];
        assert_eq!(
            targets(&sub.allocate(&tracks)),
            [Target::Layer(0), Target::Layer(2)]
        );

        // 1.55 Mbps: the high track's top layer, nothing for the low one.
        sub.after(SEC).estimate = 1_550_000;
        let out = sub.allocate(&tracks);
        let congested = Target::Off(SwitchOffReason::NetworkCongestion);
        assert_eq!(targets(&out), [congested, Target::Layer(2)]);
        assert_eq!(
            out.switched,
            [Switched {
                track: "alice",
                off: Some(SwitchOffReason::NetworkCongestion)
            }]
        );
        assert!(
            sub.after(SEC).allocate(&tracks).switched.is_empty(),
            "told once"
        );

        // Room again: back on once the estimate has held.
        sub.after(SEC).estimate = 2_000_000;
        assert_eq!(targets(&sub.allocate(&tracks))[0], congested);
        sub.after(UP_HOLD);
        let out = sub.allocate(&tracks);
        assert_eq!(targets(&out)[0], Target::Layer(0));
        assert_eq!(
            out.switched,
            [Switched {
                track: "alice",
                off: None
            }]
        );
    }

    #[test]
    fn grid_shares_equally_and_switches_off_the_lowest_priority_first() {
        let mut sub = Subscriber::new(detected(), 2_000_000);
        let mut low = camera("c-low");
        low.publish_priority = Priority::Low;
        let mut high = camera("a-high");
        high.publish_priority = Priority::High;
        let tracks = [low, camera("b-standard"), high];
        // Three middle layers (1.5M) fit in 85% of 2M, three top layers do
        // not: equal shares, whatever the priority.
        assert_eq!(
            targets(&sub.allocate(&tracks)),
            [Target::Layer(1), Target::Layer(1), Target::Layer(1)]
        );
        // 320 kbps: two lowest layers; the low-priority track goes.
        sub.after(SEC).estimate = 320_000;
        assert_eq!(
            targets(&sub.allocate(&tracks)),
            [
                Target::Off(SwitchOffReason::NetworkCongestion),
                Target::Layer(0),
                Target::Layer(0)
            ]
        );
    }

    #[test]
    fn presentation_gives_the_high_priority_track_all_it_can_use_first() {
        let profile = BandwidthProfile {
            mode: Mode::Presentation,
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 2_200_000);
        let mut screen = camera("screen");
        screen.publish_priority = Priority::High;
        let tracks = [camera("alice"), camera("bob"), screen];
        // 85% of 2.2M is 1.87M: 1.5M for the high track, two lowest layers.
        assert_eq!(
            targets(&sub.allocate(&tracks)),
            [Target::Layer(0), Target::Layer(0), Target::Layer(2)]
        );
        // Grid would have given everyone the middle layer instead.
        let mut grid = Subscriber::new(detected(), 2_200_000);
        assert_eq!(
            targets(&grid.allocate(&tracks)),
            [Target::Layer(1), Target::Layer(1), Target::Layer(1)]
        );
    }

    #[test]
    fn collaboration_keeps_everyone_visible_and_shares_by_render_size() {
        let profile = BandwidthProfile {
            mode: Mode::Collaboration,
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 1_200_000);
        let mut big = camera("big");
        big.render = Some(Dimensions::new(1280, 720));
        let mut thumb = camera("thumb");
        thumb.render = Some(Dimensions::new(640, 360));
        let tracks = [big, thumb, camera("other")];
        // 85% of 1.2M is 1.02M. Everyone's lowest (450k), then the 1280×720
        // tile first (800k); the 640×360 tile's step would pass the budget.
        let out = sub.allocate(&tracks);
        assert_eq!(
            targets(&out),
            [Target::Layer(1), Target::Layer(0), Target::Layer(0)]
        );
        // Too little for all three lowest layers: the last-ranked one goes
        // rather than anyone dropping a layer it does not have.
        sub.after(SEC).estimate = 310_000;
        let out = sub.allocate(&tracks);
        assert_eq!(
            out.decisions
                .iter()
                .filter(|d| matches!(d.target, Target::Off(_)))
                .count(),
            1
        );
    }

    #[test]
    fn max_subscription_bitrate_caps_video_and_names_itself_as_the_reason() {
        let profile = BandwidthProfile {
            max_subscription_bitrate: Some(600_000),
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 10_000_000);
        let tracks = [
            camera("alice"),
            camera("bob"),
            camera("carol"),
            camera("dave"),
            camera("erin"),
        ];
        let out = sub.allocate(&tracks);
        assert!(out.video_bitrate <= 600_000, "{}", out.video_bitrate);
        assert_eq!(
            targets(&out)[4],
            Target::Off(SwitchOffReason::MaxBandwidthReached)
        );
        assert_eq!(out.probe, None, "probing cannot help past the cap");
    }

    #[test]
    fn audio_is_reserved_before_video() {
        let mut sub = Subscriber::new(detected(), 700_000);
        sub.audio = 250_000;
        let out = sub.allocate(&[camera("alice")]);
        assert_eq!(
            targets(&out),
            [Target::Layer(0)],
            "450k left: not the 500k layer"
        );
    }

    #[test]
    fn render_dimensions_cap_the_layer_at_the_smallest_that_covers_them() {
        let mut sub = Subscriber::new(detected(), 10_000_000);
        let with = |render| {
            let mut t = camera("alice");
            t.render = Some(render);
            [t]
        };
        let mut check = |render, want| {
            sub.after(SEC);
            assert_eq!(targets(&sub.allocate(&with(render))), [want], "{render:?}");
        };
        check(Dimensions::new(160, 90), Target::Layer(0));
        check(Dimensions::new(320, 180), Target::Layer(0));
        check(Dimensions::new(321, 180), Target::Layer(1));
        check(Dimensions::new(360, 640), Target::Layer(1)); // portrait tile
        check(Dimensions::new(1280, 720), Target::Layer(2));
        // Twilio: 0 means the lowest; absurd sizes just mean the highest.
        check(Dimensions::new(0, 0), Target::Layer(0));
        check(Dimensions::new(100_000, 100_000), Target::Layer(2));
        check(Dimensions::new(u32::MAX, 1), Target::Layer(2));
    }

    #[test]
    fn clients_cannot_ask_for_render_dimensions_of_zero_or_beyond_any_codec() {
        assert_eq!(Dimensions::checked(640, 360), Ok(Dimensions::new(640, 360)));
        for (w, h) in [
            (0, 360),
            (640, 0),
            (-1, 360),
            (100_000, 100_000),
            (i64::MAX, 1),
        ] {
            let err = Dimensions::checked(w, h).unwrap_err();
            assert!(err.to_string().contains("between 1 and 16384"), "{err}");
        }
    }

    #[test]
    fn manual_switch_off_and_on() {
        let mut sub = Subscriber::new(BandwidthProfile::default(), 3_000_000);
        let mut track = camera("alice");
        sub.allocate(&[track]);

        track.switched_off_by_subscriber = true;
        let out = sub.after(SEC).allocate(&[track]);
        let off = SwitchOffReason::DisabledBySubscriber;
        assert_eq!(targets(&out), [Target::Off(off)]);
        assert_eq!(
            out.switched,
            [Switched {
                track: "alice",
                off: Some(off)
            }]
        );
        assert_eq!(out.video_bitrate, 0);

        // On again at once: the estimate has held all along.
        track.switched_off_by_subscriber = false;
        let out = sub.after(100 * MS).allocate(&[track]);
        assert_eq!(targets(&out), [Target::Layer(2)]);
        assert_eq!(
            out.switched,
            [Switched {
                track: "alice",
                off: None
            }]
        );
    }

    #[test]
    fn a_track_the_publisher_disabled_is_off_with_that_reason() {
        let mut sub = Subscriber::new(BandwidthProfile::default(), 3_000_000);
        let mut track = camera("alice");
        track.publisher_enabled = false;
        track.switched_off_by_subscriber = true;
        let out = sub.allocate(&[track]);
        assert_eq!(
            targets(&out),
            [Target::Off(SwitchOffReason::DisabledByPublisher)]
        );
    }

    #[test]
    fn the_dominant_speaker_gets_the_big_layer_at_once_in_collaboration_and_presentation() {
        // Presentation: the dominant speaker's camera first, all of it.
        // Collaboration: shares by render size (1280×720 for a high track,
        // 640×480 for a standard one), so the other camera keeps a middle
        // layer.
        for (mode, estimate, big, small) in [
            (Mode::Presentation, 2_000_000, 2, 0),
            (Mode::Collaboration, 3_000_000, 2, 1),
        ] {
            let profile = BandwidthProfile {
                mode,
                dominant_speaker_priority: Priority::High,
                ..detected()
            };
            let mut sub = Subscriber::new(profile, estimate);
            let mut alice = camera("alice");
            let mut bob = camera("bob");
            alice.dominant_speaker = true;
            let out = sub.allocate(&[alice, bob]);
            assert_eq!(
                targets(&out),
                [Target::Layer(big), Target::Layer(small)],
                "{mode}"
            );

            // Bob takes the floor: the layers swap in the same call.
            alice.dominant_speaker = false;
            bob.dominant_speaker = true;
            let out = sub.after(SEC).allocate(&[alice, bob]);
            assert_eq!(
                targets(&out),
                [Target::Layer(small), Target::Layer(big)],
                "{mode}"
            );
            assert!(out.video_bitrate <= estimate);
        }
    }

    #[test]
    fn a_subscriber_override_beats_the_publishers_priority() {
        let profile = BandwidthProfile {
            mode: Mode::Presentation,
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 2_000_000);
        let mut alice = camera("alice");
        alice.publish_priority = Priority::High;
        let mut bob = camera("bob");
        bob.subscribe_priority = Some(Priority::High);
        alice.subscribe_priority = Some(Priority::Low);
        assert_eq!(
            targets(&sub.allocate(&[alice, bob])),
            [Target::Layer(0), Target::Layer(2)]
        );
    }

    #[test]
    fn a_screen_share_goes_before_cameras_of_the_same_priority() {
        let mut sub = Subscriber::new(detected(), 200_000);
        let mut screen = camera("z-screen");
        screen.screen_share = true;
        let out = sub.allocate(&[camera("a-camera"), screen]);
        assert_eq!(
            targets(&out),
            [
                Target::Off(SwitchOffReason::NetworkCongestion),
                Target::Layer(0)
            ]
        );
    }

    #[test]
    fn a_track_without_layers_is_idle_costs_nothing_and_is_not_reported() {
        let mut sub = Subscriber::new(detected(), 200_000);
        let out = sub.allocate(&[VideoSubscription::new("alice", &[]), camera("bob")]);
        assert_eq!(targets(&out), [Target::Idle, Target::Layer(0)]);
        assert!(out.switched.is_empty());
    }

    #[test]
    fn unknown_words_are_errors_that_say_what_is_accepted() {
        assert_eq!("high".parse::<Priority>(), Ok(Priority::High));
        assert_eq!("collaboration".parse::<Mode>(), Ok(Mode::Collaboration));
        assert_eq!(
            "disabled".parse::<SwitchOffMode>(),
            Ok(SwitchOffMode::Disabled)
        );
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"urgent\" is not a valid priority: expected one of low, standard, high"
        );
        assert!(
            "High".parse::<Priority>().is_err(),
            "Twilio's words are lowercase"
        );
        assert!("".parse::<Mode>().is_err());
        let long = "x".repeat(10_000);
        assert!(long.parse::<SwitchOffMode>().unwrap_err().value.len() <= 64);
        for p in [Priority::Low, Priority::Standard, Priority::High] {
            assert_eq!(p.to_string().parse::<Priority>(), Ok(p));
        }
    }

    #[test]
    fn with_switch_off_disabled_tracks_only_fall_to_their_lowest_layer() {
        let profile = BandwidthProfile {
            track_switch_off_mode: SwitchOffMode::Disabled,
            ..BandwidthProfile::default()
        };
        let mut sub = Subscriber::new(profile, 100_000);
        let out = sub.allocate(&[camera("alice"), camera("bob")]);
        assert_eq!(targets(&out), [Target::Layer(0), Target::Layer(0)]);
        assert!(out.switched.is_empty());
    }

    #[test]
    fn predicted_switches_off_before_the_estimate_is_reached_detected_at_it() {
        let mut thumb = camera("alice");
        thumb.render = Some(Dimensions::new(160, 90));
        let tracks = [
            thumb,
            VideoSubscription {
                track: "bob",
                ..thumb
            },
        ];
        for (profile, want) in [
            (detected(), Target::Layer(0)),
            (
                BandwidthProfile::default(),
                Target::Off(SwitchOffReason::NetworkCongestion),
            ),
        ] {
            let mut sub = Subscriber::new(profile, 1_000_000);
            assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(0); 2]);
            // 310 kbps still carries both thumbnails (300k), but not with
            // the 10% margin `predicted` keeps.
            sub.after(SEC).estimate = 310_000;
            let out = sub.allocate(&tracks);
            assert_eq!(targets(&out), [Target::Layer(0), want], "{profile:?}");
        }
    }

    #[test]
    fn max_tracks_keeps_the_best_ranked_on() {
        let profile = BandwidthProfile {
            max_tracks: Some(1),
            ..detected()
        };
        let mut sub = Subscriber::new(profile, 10_000_000);
        let mut bob = camera("bob");
        bob.publish_priority = Priority::High;
        let out = sub.allocate(&[camera("alice"), bob]);
        assert_eq!(
            targets(&out),
            [
                Target::Off(SwitchOffReason::MaxTracksSwitchedOn),
                Target::Layer(2)
            ]
        );
    }

    #[test]
    fn a_deficient_subscriber_asks_for_a_probe_and_climbs_once_it_succeeds() {
        let mut sub = Subscriber::new(detected(), 800_000);
        let tracks = [camera("alice")];
        let out = sub.allocate(&tracks);
        assert_eq!(targets(&out), [Target::Layer(1)]);
        // The next step costs 1.0M more: 1.5M / 0.85 ≈ 1.765M.
        let probe = out.probe.expect("a probe is wanted");
        assert_eq!(probe, 1_764_706);

        // The probe succeeds: the estimate rises to the target and holds.
        sub.after(500 * MS).estimate = probe;
        let out = sub.allocate(&tracks);
        assert_eq!(out.probe, None, "the estimate covers it: wait for the hold");
        assert_eq!(targets(&out), [Target::Layer(1)]);
        sub.after(UP_HOLD);
        let out = sub.allocate(&tracks);
        assert_eq!(targets(&out), [Target::Layer(2)]);
        assert_eq!(out.probe, None, "nothing more to gain");

        // An estimator that cannot probe is not asked to.
        let mut no_probe = Subscriber::new(detected(), 800_000);
        no_probe.can_probe = false;
        assert_eq!(no_probe.allocate(&tracks).probe, None);
    }

    #[test]
    fn a_step_up_that_fails_doubles_the_hold() {
        let mut sub = Subscriber::new(detected(), 800_000);
        let tracks = [camera("alice")];
        sub.allocate(&tracks);
        sub.after(SEC).estimate = 2_000_000;
        sub.allocate(&tracks);
        sub.after(UP_HOLD);
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(2)]);
        // Congestion right after the step: down, and twice the hold next time.
        sub.after(SEC).estimate = 800_000;
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(1)]);
        assert_eq!(sub.allocator.hold(), UP_HOLD * 2);

        sub.after(SEC).estimate = 2_000_000;
        sub.allocate(&tracks);
        sub.after(UP_HOLD);
        assert_eq!(
            targets(&sub.allocate(&tracks)),
            [Target::Layer(1)],
            "still held"
        );
        sub.after(UP_HOLD);
        assert_eq!(targets(&sub.allocate(&tracks)), [Target::Layer(2)]);
        // This one lasts: the hold resets.
        sub.after(UP_HOLD * 2);
        sub.allocate(&tracks);
        assert_eq!(sub.allocator.hold(), UP_HOLD);
    }

    #[test]
    fn a_layer_the_publisher_stops_is_replaced_by_the_one_below() {
        let mut sub = Subscriber::new(detected(), 3_000_000);
        assert_eq!(
            targets(&sub.allocate(&[camera("alice")])),
            [Target::Layer(2)]
        );
        let without_top = VideoSubscription::new("alice", &CAMERA[..2]);
        assert_eq!(
            targets(&sub.after(SEC).allocate(&[without_top])),
            [Target::Layer(1)]
        );
    }

    #[test]
    fn unmeasured_layers_are_priced_from_their_size() {
        assert_eq!(nominal_bitrate(320, 180, 30.0), 150_000);
        assert_eq!(nominal_bitrate(1280, 720, 30.0), 2_500_000);
        assert_eq!(nominal_bitrate(1280, 720, 15.0), 1_250_000);
        assert_eq!(nominal_bitrate(0, 0, f32::NAN), 30_000);
        assert!(nominal_bitrate(u32::MAX, u32::MAX, f32::INFINITY) > 4_000_000);
        let layer = Layer {
            bitrate: 0,
            ..CAMERA[1]
        };
        assert_eq!(layer.cost(), 500_000);
    }

    #[test]
    fn forgotten_tracks_start_afresh() {
        let mut sub = Subscriber::new(detected(), 3_000_000);
        let mut track = camera("alice");
        track.switched_off_by_subscriber = true;
        assert_eq!(sub.allocate(&[track]).switched.len(), 1);
        sub.after(SEC).allocate(&[]);
        let out = sub.after(SEC).allocate(&[track]);
        assert_eq!(
            out.switched.len(),
            1,
            "a new subscription starts switched on"
        );
        assert!(out.decisions[0].changed);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn layer_set() -> impl Strategy<Value = Vec<Layer>> {
            let bitrate = prop_oneof![20 => 0u64..3_000_000, 1 => Just(u64::MAX)];
            prop::collection::vec((1u32..2000, bitrate, 0u8..=60), 0..4).prop_map(|raw| {
                let mut layers: Vec<Layer> = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (side, bitrate, fps))| Layer {
                        spatial: i as u8,
                        width: side * 16 / 9,
                        height: side,
                        frame_rate: f32::from(fps),
                        bitrate,
                    })
                    .collect();
                layers.sort_by_key(|l| l.height);
                layers
            })
        }

        #[derive(Debug, Clone)]
        struct Track {
            layers: Vec<Layer>,
            priority: Priority,
            over: Option<Priority>,
            dominant: bool,
            screen: bool,
            render: Option<(u32, u32)>,
            off: bool,
            enabled: bool,
            settling: bool,
        }

        fn track() -> impl Strategy<Value = Track> {
            let priority = prop_oneof![
                Just(Priority::Low),
                Just(Priority::Standard),
                Just(Priority::High)
            ];
            (
                layer_set(),
                priority.clone(),
                prop::option::of(priority),
                any::<bool>(),
                any::<bool>(),
                prop::option::of((0u32..3000, 0u32..3000)),
                prop::bool::weighted(0.1),
                prop::bool::weighted(0.9),
                prop::bool::weighted(0.2),
            )
                .prop_map(
                    |(layers, priority, over, dominant, screen, render, off, enabled, settling)| {
                        Track {
                            layers,
                            priority,
                            over,
                            dominant,
                            screen,
                            render,
                            off,
                            enabled,
                            settling,
                        }
                    },
                )
        }

        fn profile() -> impl Strategy<Value = BandwidthProfile> {
            (
                prop_oneof![
                    Just(Mode::Grid),
                    Just(Mode::Collaboration),
                    Just(Mode::Presentation)
                ],
                prop::option::of(0u64..5_000_000),
                prop_oneof![
                    Just(SwitchOffMode::Detected),
                    Just(SwitchOffMode::Predicted),
                    Just(SwitchOffMode::Disabled)
                ],
                prop::option::of(0usize..4),
            )
                .prop_map(|(mode, max, switch_off, max_tracks)| BandwidthProfile {
                    mode,
                    max_subscription_bitrate: max,
                    dominant_speaker_priority: Priority::High,
                    track_switch_off_mode: switch_off,
                    max_tracks,
                })
        }

        /// A run: tracks (keys 0..n) and a sequence of (ms later, estimate,
        /// audio, tracks present).
        type Step = (u64, u64, u64, Vec<bool>);

        fn steps(n: usize) -> impl Strategy<Value = Vec<Step>> {
            prop::collection::vec(
                (
                    0u64..5_000,
                    0u64..6_000_000,
                    0u64..300_000,
                    prop::collection::vec(prop::bool::weighted(0.8), n),
                ),
                1..25,
            )
        }

        fn subscriptions<'a>(
            tracks: &'a [Track],
            present: &[bool],
            keys: &'a [u32],
        ) -> Vec<VideoSubscription<'a, u32>> {
            tracks
                .iter()
                .zip(keys)
                .zip(present)
                .filter(|(_, here)| **here)
                .map(|((t, key), _)| VideoSubscription {
                    track: *key,
                    publish_priority: t.priority,
                    subscribe_priority: t.over,
                    dominant_speaker: t.dominant,
                    screen_share: t.screen,
                    render: t.render.map(|(w, h)| Dimensions::new(w, h)),
                    switched_off_by_subscriber: t.off,
                    publisher_enabled: t.enabled,
                    settling: t.settling,
                    layers: &t.layers,
                })
                .collect()
        }

        /// Each track's layer prices after a call, as the allocator keeps
        /// them: (spatial, smoothed cost, measured).
        type Prices = HashMap<u32, SmoothedCosts>;

        /// The allocations of a run, with `next` as time since its start,
        /// and the prices it allocated with.
        fn run(
            profile: BandwidthProfile,
            tracks: &[Track],
            steps: &[Step],
            reverse: bool,
        ) -> Vec<(Allocation<u32>, Option<Duration>, Prices)> {
            let keys: Vec<u32> = (0..tracks.len() as u32).collect();
            let mut allocator = Allocator::new(profile);
            let start = Instant::now();
            let mut now = start;
            let mut outs = Vec::new();
            for (later, estimate, audio, present) in steps {
                now += Duration::from_millis(*later);
                let mut subs = subscriptions(tracks, present, &keys);
                if reverse {
                    subs.reverse();
                }
                let input = Input {
                    estimate: *estimate,
                    can_probe: true,
                    lossy: false,
                    audio: *audio,
                    tracks: &subs,
                };
                let mut out = allocator.allocate(now, &input).clone();
                if reverse {
                    out.decisions.reverse();
                    out.switched.reverse();
                }
                let next = out.next.map(|t| t - start);
                let prices = allocator
                    .tracks
                    .iter()
                    .map(|(key, state)| (*key, state.costs.clone()))
                    .collect();
                outs.push((out, next, prices));
            }
            outs
        }

        proptest! {
            #[test]
            fn the_allocation_stays_within_the_budget_but_for_lowest_layers_kept_on(
                profile in profile(),
                tracks in prop::collection::vec(track(), 0..6),
                steps in steps(6),
            ) {
                let outs = run(profile, &tracks, &steps, false);
                let keys: Vec<u32> = (0..tracks.len() as u32).collect();
                for ((_, estimate, audio, present), (out, _, prices)) in steps.iter().zip(&outs) {
                    let subs = subscriptions(&tracks, present, &keys);
                    // What the allocator priced a layer at: a measured
                    // layer of a settled track at its (constant) bitrate,
                    // others at a guess (Guesses), smoothed.
                    let price = |sub: &VideoSubscription<'_, u32>, layer: &Layer| {
                        let (_, cost, measured) = *prices[&sub.track]
                            .iter()
                            .find(|(spatial, _, _)| *spatial == layer.spatial)
                            .expect("a priced layer");
                        let cost = (cost.round() as u64).max(1);
                        if measured {
                            assert_eq!(cost, layer.bitrate.max(1), "a measured layer at its bitrate");
                        }
                        cost
                    };
                    let mut chosen = 0u64;
                    let mut lowest_on = 0u64;
                    for (sub, decision) in subs.iter().zip(&out.decisions) {
                        if let Target::Layer(spatial) = decision.target {
                            let layer = sub.layers.iter().find(|l| l.spatial == spatial).expect("a real layer");
                            chosen = chosen.saturating_add(price(sub, layer));
                            lowest_on = lowest_on.saturating_add(price(sub, &sub.layers[0]));
                        }
                    }
                    prop_assert_eq!(chosen, out.video_bitrate);
                    let usable = profile.track_switch_off_mode.usable();
                    // The cap may be exceeded within DOWN_TOLERANCE, for a
                    // while (the noise of layer bitrates).
                    let cap = scale(profile.max_subscription_bitrate.unwrap_or(u64::MAX), DOWN_TOLERANCE);
                    let budget = video_budget(*estimate, *audio, usable).min(cap);
                    if profile.track_switch_off_mode == SwitchOffMode::Disabled {
                        prop_assert!(chosen <= budget.max(lowest_on), "{} > max({}, {})", chosen, budget, lowest_on);
                    } else {
                        prop_assert!(chosen <= budget, "{} > {}", chosen, budget);
                    }
                }
            }

            #[test]
            fn the_allocation_is_deterministic_and_ignores_input_order(
                profile in profile(),
                tracks in prop::collection::vec(track(), 0..6),
                steps in steps(6),
            ) {
                let once = run(profile, &tracks, &steps, false);
                let again = run(profile, &tracks, &steps, false);
                for ((a, a_next, _), (b, b_next, _)) in once.iter().zip(&again) {
                    prop_assert_eq!(&a.decisions, &b.decisions);
                    prop_assert_eq!(&a.switched, &b.switched);
                    prop_assert_eq!((a.video_bitrate, a.probe, a_next), (b.video_bitrate, b.probe, b_next));
                }
                let reversed = run(profile, &tracks, &steps, true);
                for ((a, a_next, _), (b, b_next, _)) in once.iter().zip(&reversed) {
                    prop_assert_eq!(&a.decisions, &b.decisions);
                    prop_assert_eq!(&a.switched, &b.switched);
                    prop_assert_eq!((a.video_bitrate, a.probe, a_next), (b.video_bitrate, b.probe, b_next));
                }
            }
        }
    }
}

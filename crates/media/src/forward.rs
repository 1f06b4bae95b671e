//! The forwarding core: which subscriber gets which packet, and with what
//! sequence number.
//!
//! A [`Forwarder`] exists per published audio or video track; it holds one
//! [`Lane`] per subscriber. For every incoming packet the worker asks each
//! lane to [`Lane::admit`] it and gets back the sequence number to send it
//! with, or `None` to skip it. Sans-IO: no sockets, no `Rtc`, time as an
//! argument, so the rules are unit-tested here and the worker only moves
//! bytes.
//!
//! The rules:
//!
//! * **SSRC**: each lane writes into its subscriber's own send stream, so the
//!   SSRC is the subscriber's (str0m picks it and signals it in the answer).
//! * **Sequence numbers** are contiguous per lane and start below 65,536, so
//!   the subscriber's SRTP rollover counter starts at zero without
//!   out-of-band signalling: `out = first_out + (in - first_in)`. Gaps from
//!   upstream loss stay gaps (the subscriber NACKs; str0m answers from its
//!   RTX cache when it has the packet). Packets older than the lane's start
//!   are skipped, and so are packets whose extended sequence number is not
//!   an SRTP packet index ([`MAX_SEQ`]).
//! * **Timestamps** pass through while a lane carries one source. When a
//!   subscriber's m-line is reused for another track (see
//!   [`Lane::continuing`]), the new lane continues the old one's sequence
//!   numbers and rebases timestamps to follow on from its last, so the
//!   subscriber sees one continuous stream on one SSRC. A simulcast layer
//!   switch rebases the same way.
//! * **Simulcast**: a forwarder holds one [`SimulcastLayer`] per RID the
//!   publisher sends (a single one, without a RID, for a plain track), with
//!   its resolution (read from its keyframes), frame rate, bitrate (robust
//!   to keyframe bursts: [`LayerRate`]) and last keyframe. Each lane forwards one layer, its *current* one, and has a
//!   *target* set by the allocation ([`Forwarder::set_target`]). It switches
//!   only at a keyframe of the target layer (the forwarder asks the
//!   publisher for one on that layer), continuing sequence numbers and
//!   timestamps — the latter by the packets' arrival times — and, for VP8,
//!   the picture ID and TL0PICIDX ([`crate::vp8`]), so the subscriber sees
//!   one stream.
//! * **Keyframes**: a video lane forwards nothing until a keyframe begins,
//!   and the forwarder asks the publisher for one as soon as a lane is
//!   added, again every [`KEYFRAME_RETRY`] while any lane still waits, and
//!   when a subscriber asks (PLI/FIR) — never more often than
//!   [`KEYFRAME_THROTTLE`]. Requests name the layers wanted. The throttle
//!   is the forwarder's, that is the publisher track's, not a lane's: many
//!   subscribers switching layer within it make one request (the
//!   publisher's encoder answers on every layer anyway, as libvpx's
//!   simulcast encoder does), and a keyframe a request brings serves every
//!   lane waiting on that layer.
//!
//! Cost per packet: finding its layer among at most [`MAX_LAYERS`], reading
//! the VP8 descriptor (a few bytes), and per lane a few comparisons and
//! additions. Nothing allocates.

use std::time::{Duration, Instant};

use salon_sid::TrackSid;
use str0m::media::Rid;

use crate::keyframe::{VideoCodec, starts_keyframe};
use crate::record::RecordedCodec;
use crate::vp8;

/// Least time between two keyframe requests to one publisher's track.
pub const KEYFRAME_THROTTLE: Duration = Duration::from_millis(300);
/// How long a waiting lane waits before the request is repeated (the first
/// may have been lost, or the publisher ignored it).
pub const KEYFRAME_RETRY: Duration = Duration::from_millis(1000);

/// The largest extended sequence number a lane forwards: SRTP's packet
/// index has 48 bits (RFC 3711 §3.3.1). str0m extends a sequence number
/// *backwards* past roll-over zero to 2^64 − 65536 + seq, which a publisher
/// provokes by sending, early on, a packet half the sequence space behind
/// its highest; no numbering can continue from there (the arithmetic would
/// overflow), so such a packet is skipped.
pub const MAX_SEQ: u64 = (1 << 48) - 1;

/// Simulcast layers a forwarder keeps; RIDs beyond these are ignored
/// (browsers send at most 3, and Twilio's SDK 3).
pub const MAX_LAYERS: usize = 4;

/// A layer not heard from for this long is not offered to the allocation
/// (the publisher stopped it, for its own bandwidth or CPU).
pub const LAYER_SILENCE: Duration = Duration::from_millis(1500);

/// How long a layer's measured bitrate is taken to be still settling after
/// its first whole interval ([`SimulcastLayer::is_settling`]): the
/// [`DELTA_SMOOTHING`] average has then mostly caught up, and the keyframes
/// every joining subscriber asks for have mostly passed.
pub const LAYER_SETTLE: Duration = Duration::from_secs(3);
/// How long a layer that has shown only keyframes is taken to be settling:
/// past that, keyframes are what it sends.
pub const LAYER_SETTLE_MAX: Duration = Duration::from_secs(10);

/// A handle for a peer in its worker: slab index plus generation, so a stale
/// reference to a removed peer never reaches its successor in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRef {
    pub index: u32,
    pub generation: u32,
}

/// What the forwarder needs to know about one incoming packet.
#[derive(Debug, Clone, Copy)]
pub struct PacketMeta {
    /// Extended sequence number (no wrap-around).
    pub seq: u64,
    /// RTP timestamp as the publisher sent it.
    pub time: u32,
    /// Payload type as the publisher sent it.
    pub pt: u8,
    /// Whether the packet begins a keyframe (always false for audio).
    pub keyframe_start: bool,
    /// The simulcast layer (index into the forwarder's layers).
    pub layer: u8,
    /// When the packet arrived (to rebase timestamps at a layer switch).
    pub arrival: Option<Instant>,
    /// The VP8 payload descriptor, for VP8.
    pub vp8: Option<vp8::Descriptor>,
}

/// How one packet leaves on one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: u64,
    pub time: u32,
    pub pt: u8,
    /// VP8: the picture ID and TL0PICIDX to write over the packet's
    /// (`None`: leave as is).
    pub picture_id: Option<u16>,
    pub tl0: Option<u8>,
}

/// Where the next packet on a subscriber's m-line must continue from, when
/// the m-line is reused for another track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation {
    pub seq: u64,
    pub time: u32,
}

/// The codec of each of the publisher's payload types.
#[derive(Debug, Clone, Default)]
pub struct PublisherCodecs {
    /// (payload type, video codec if it is one we gate on keyframes)
    entries: Vec<(u8, Option<VideoCodec>)>,
    /// (payload type, how a recording writes it) for the payload types a
    /// recording can write; a recorded track in any other fails.
    recorded: Vec<(u8, RecordedCodec)>,
}

impl PublisherCodecs {
    pub fn new(entries: Vec<(u8, Option<VideoCodec>)>) -> Self {
        Self {
            entries,
            recorded: Vec::new(),
        }
    }

    /// Say how a recording writes each payload type it can.
    pub fn with_recorded(mut self, recorded: Vec<(u8, RecordedCodec)>) -> Self {
        self.recorded = recorded;
        self
    }

    /// How a recording writes payload type `pt`; `None`: it cannot.
    pub fn recorded_codec(&self, pt: u8) -> Option<RecordedCodec> {
        self.recorded
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, codec)| *codec)
    }

    /// The video codec of payload type `pt`, if it is one.
    pub fn video_codec(&self, pt: u8) -> Option<VideoCodec> {
        self.entries
            .iter()
            .find(|(p, _)| *p == pt)
            .and_then(|(_, codec)| *codec)
    }

    /// Whether a packet with `pt` and `payload` begins a keyframe.
    pub fn keyframe_start(&self, pt: u8, payload: &[u8]) -> bool {
        self.entries
            .iter()
            .find(|(p, _)| *p == pt)
            .and_then(|(_, codec)| *codec)
            .is_some_and(|codec| starts_keyframe(codec, payload))
    }
}

/// One subscriber's view of a forwarded track.
#[derive(Debug, Clone)]
pub struct Lane {
    pub subscriber: PeerRef,
    /// The subscriber's m-line carrying this track.
    pub mid: str0m::media::Mid,
    /// Publisher payload type → subscriber payload type.
    pt_map: Vec<(u8, u8)>,
    video: bool,
    /// The layer being forwarded; `None` until the lane starts (and again
    /// after it is switched off), when it waits for a keyframe.
    current: Option<u8>,
    /// The layer the allocation wants forwarded: the lane moves to it at
    /// its next keyframe.
    target: u8,
    /// (first incoming seq, first outgoing seq) of the current layer.
    start: Option<(u64, u64)>,
    base_out: u64,
    /// Continue from an earlier lane on the same m-line: rebase timestamps
    /// so the first packet goes out at this time.
    continue_at: Option<u32>,
    /// Added to incoming timestamps (wrapping), fixed at the start.
    time_offset: u32,
    /// Added to incoming VP8 picture IDs (modulo 2^15) and TL0PICIDX
    /// (modulo 2^8), fixed at the start.
    picture_id_offset: u16,
    tl0_offset: u8,
    /// The last packet sent: to continue from when the lane ends or
    /// switches layer, with its arrival.
    last: Option<Outgoing>,
    last_arrival: Option<Instant>,
    /// The subscriber switched the track off: nothing is forwarded.
    off: bool,
    /// The allocation switched it off (no bandwidth for it): nothing is
    /// forwarded.
    starved: bool,
    /// Packets admitted, for statistics.
    pub forwarded: u64,
    /// Layer switches made, for statistics.
    pub switches: u64,
}

impl Lane {
    /// A lane for a subscriber. `base_out` is the first outgoing sequence
    /// number (below 65,536; random in production).
    pub fn new(
        subscriber: PeerRef,
        mid: str0m::media::Mid,
        pt_map: Vec<(u8, u8)>,
        video: bool,
        base_out: u16,
    ) -> Self {
        Self {
            subscriber,
            mid,
            pt_map,
            video,
            current: None,
            target: 0,
            start: None,
            base_out: u64::from(base_out),
            continue_at: None,
            time_offset: 0,
            picture_id_offset: 0,
            tl0_offset: 0,
            last: None,
            last_arrival: None,
            off: false,
            starved: false,
            forwarded: 0,
            switches: 0,
        }
    }

    /// A lane on an m-line that carried another track before: it goes on
    /// from `from` (sequence numbers continue, timestamps are rebased), so
    /// the subscriber's decoder sees one stream.
    pub fn continuing(
        subscriber: PeerRef,
        mid: str0m::media::Mid,
        pt_map: Vec<(u8, u8)>,
        video: bool,
        from: Continuation,
    ) -> Self {
        Self {
            base_out: from.seq,
            continue_at: Some(from.time),
            ..Self::new(subscriber, mid, pt_map, video, 0)
        }
    }

    /// Where a later lane on this m-line should continue from: one packet
    /// and one frame interval after the last one sent.
    pub fn continuation(&self, video: bool) -> Option<Continuation> {
        self.last.map(|l| Continuation {
            seq: l.seq + 1,
            time: l.time.wrapping_add(frame_step(video)),
        })
    }

    /// Whether this lane still waits for a keyframe: to start, or to switch
    /// to its target layer (a switched-off lane waits for nothing).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.video && !self.off && !self.starved && self.current != Some(self.target)
    }

    /// The layer forwarded now, if any.
    pub fn current_layer(&self) -> Option<u8> {
        self.current
    }

    /// The layer the lane moves to at its next keyframe.
    pub fn target_layer(&self) -> u8 {
        self.target
    }

    /// Set the layer to move to. Whether it changed.
    pub fn set_target(&mut self, layer: u8) -> bool {
        let changed = self.target != layer;
        self.target = layer;
        changed
    }

    /// Whether the subscriber switched the track off.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Switch the lane off (forward nothing) or on again. On again, it
    /// continues where it stopped — the next sequence number, timestamps
    /// rebased to follow on — from the next keyframe (video), so the
    /// subscriber sees one stream with no gap to ask retransmission for.
    /// Whether anything changed.
    pub fn switch(&mut self, on: bool) -> bool {
        self.set(!on, self.starved)
    }

    /// Whether the allocation switched the lane off.
    pub fn is_starved(&self) -> bool {
        self.starved
    }

    /// Switch the lane off or on for the allocation (see [`Lane::switch`];
    /// it stays off while the subscriber has it off).
    pub fn starve(&mut self, starved: bool) -> bool {
        self.set(self.off, starved)
    }

    fn set(&mut self, off: bool, starved: bool) -> bool {
        let was_on = !self.off && !self.starved;
        self.off = off;
        self.starved = starved;
        let on = !off && !starved;
        if on == was_on {
            return false;
        }
        if on {
            // Start again (at a keyframe, for video), continuing from the
            // last packet sent.
            self.current = None;
        }
        true
    }

    /// How `packet` leaves on this lane, or `None` to skip it here.
    pub fn admit(&mut self, packet: &PacketMeta) -> Option<Outgoing> {
        if packet.seq > MAX_SEQ || self.off || self.starved {
            return None;
        }
        let pt = self
            .pt_map
            .iter()
            .find(|(from, _)| *from == packet.pt)
            .map(|(_, to)| *to)?;
        if self.current != Some(packet.layer) {
            // Another layer's packet (or the first): only the start of a
            // keyframe of the target layer (any packet, for audio) moves
            // the lane onto it.
            if packet.layer != self.target || (self.video && !packet.keyframe_start) {
                return None;
            }
            self.begin(packet);
        }
        let (first_in, first_out) = self.start?;
        if packet.seq < first_in {
            return None; // older than where this subscriber joined
        }
        self.forwarded += 1;
        let vp8 = packet.vp8.unwrap_or_default();
        let out = Outgoing {
            seq: first_out + (packet.seq - first_in),
            time: packet.time.wrapping_add(self.time_offset),
            pt,
            picture_id: vp8.picture_id.map(|(id, _, _)| {
                id.wrapping_add(self.picture_id_offset) % vp8::PICTURE_ID_MODULUS
            }),
            tl0: vp8.tl0.map(|(t, _)| t.wrapping_add(self.tl0_offset)),
        };
        if self.last.is_none_or(|l| out.seq > l.seq) {
            self.last = Some(out);
            self.last_arrival = packet.arrival;
        }
        Some(out)
    }

    /// Start forwarding `packet`'s layer with `packet`, following on from
    /// the last packet sent, if any.
    fn begin(&mut self, packet: &PacketMeta) {
        if self.current.is_some() {
            self.switches += 1;
        }
        self.current = Some(packet.layer);
        if let Some(last) = self.last {
            // The new layer numbers its packets, timestamps and pictures
            // on its own: continue the subscriber's from the last sent.
            let step = match (packet.arrival, self.last_arrival) {
                (Some(now), Some(then)) => {
                    let micros = now.saturating_duration_since(then).as_micros();
                    (micros * 9 / 100).clamp(1, u128::from(u32::MAX / 2)) as u32
                }
                _ => frame_step(self.video),
            };
            self.base_out = last.seq + 1;
            self.continue_at = Some(last.time.wrapping_add(step));
            let vp8 = packet.vp8.unwrap_or_default();
            if let (Some(out), Some((id, _, _))) = (last.picture_id, vp8.picture_id) {
                self.picture_id_offset = out
                    .wrapping_add(1)
                    .wrapping_sub(id)
                    .wrapping_add(vp8::PICTURE_ID_MODULUS)
                    % vp8::PICTURE_ID_MODULUS;
            }
            if let (Some(out), Some((t, _))) = (last.tl0, vp8.tl0) {
                self.tl0_offset = out.wrapping_add(1).wrapping_sub(t);
            }
        }
        self.start = Some((packet.seq, self.base_out));
        if let Some(at) = self.continue_at {
            self.time_offset = at.wrapping_sub(packet.time);
        }
    }
}

/// One frame of 30 fps video at 90 kHz; one 20 ms Opus frame at 48 kHz.
fn frame_step(video: bool) -> u32 {
    if video { 3_000 } else { 960 }
}

/// One simulcast layer of a published video track (the only layer of a
/// track sent without simulcast), as measured from what arrives.
#[derive(Debug, Clone)]
pub struct SimulcastLayer {
    /// The RID it is sent with; `None` for a track without simulcast.
    pub rid: Option<Rid>,
    /// Or its SSRC, for simulcast declared with `a=ssrc-group:SIM`.
    pub ssrc: Option<u32>,
    /// From its last keyframe; 0 until one arrived.
    pub width: u16,
    pub height: u16,
    /// Frames per second over the last measurement ([`Forwarder::measure`]).
    pub frame_rate: f32,
    /// What forwarding the layer costs in the long run, bits per second:
    /// its delta frames' rate plus its keyframes amortized (see
    /// [`LayerRate`]); what the allocation reads.
    pub bitrate: u64,
    pub last_keyframe: Option<Instant>,
    pub last_packet: Option<Instant>,
    /// Payload bytes and frames received, split by the kind of frame.
    counts: FrameCounts,
    /// Whether the frame being received began as a keyframe.
    in_keyframe: bool,
    /// The counts at the last measurement, and when.
    measured: Option<(Instant, FrameCounts)>,
    /// When the first whole interval of its measurement began: the first
    /// measurement after it was heard from.
    measured_from: Option<Instant>,
    rate: LayerRate,
}

/// Payload bytes and completed frames of a layer (frames end at the RTP
/// marker bit), keyframes apart from delta frames.
#[derive(Debug, Clone, Copy, Default)]
struct FrameCounts {
    bytes: u64,
    delta_bytes: u64,
    delta_frames: u64,
    key_bytes: u64,
    key_frames: u64,
}

/// How long the delta-frame rate is smoothed over (the time constant of
/// its EWMA): a couple of seconds irons out an encoder's frame-to-frame
/// variation without hiding a real change of rate for long.
pub const DELTA_SMOOTHING: Duration = Duration::from_secs(2);
/// How long a keyframe's extra bytes are amortized over (the time
/// constant of their EWMA).
pub const KEYFRAME_AMORTIZATION: Duration = Duration::from_secs(10);

/// A layer's bitrate as the allocation should see it: robust to keyframe
/// bursts.
///
/// Why: a keyframe is several delta frames' worth of bytes (4 or more at
/// low rates), and keyframes come on request — each layer switch of any
/// subscriber of the track asks for one, and libvpx's simulcast encoder
/// (like the load tester's) answers on every layer. A plain bytes-per-second
/// count over one second therefore reads a layer sent at 8 kbit/s as 8, 20
/// or 32 kbit/s depending on how many keyframes fell into the second; the
/// allocation then moves another track down, which asks for another
/// keyframe, and the measurement feeds the flapping it should damp.
///
/// What: two parts, each an EWMA over the one-second measurements.
/// * The *delta rate*: the mean size of the delta frames in the interval
///   times the number of frames (every frame counted as a delta frame), so
///   a keyframe neither inflates the rate nor, by displacing a delta frame,
///   deflates it; smoothed over [`DELTA_SMOOTHING`].
/// * The *keyframe overhead*: each keyframe's bytes beyond a delta frame,
///   averaged over [`KEYFRAME_AMORTIZATION`]. An occasional keyframe adds
///   little (one of 4 frames' worth on an 8 kbit/s, 2 fps layer adds about
///   1 kbit/s and fades); keyframes that keep coming (a publisher that sends
///   only keyframes, or requests that never stop) converge to their true
///   cost, so the long-run figure stays honest.
///
/// An interval with keyframes only (at a couple of frames a second, every
/// frame while subscribers join or switch, since each asks for one) takes
/// its delta frames to be the size they were last seen at: the keyframes'
/// excess goes to the overhead like any other. A layer that has never
/// shown a delta frame costs what its keyframes cost.
///
/// Without marker bits (no frame boundaries) the plain rate is smoothed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerRate {
    delta: Option<f64>,
    /// The mean delta frame's size, bytes, of the last interval that had
    /// one.
    delta_frame: Option<f64>,
    keyframes: f64,
}

impl LayerRate {
    /// Fold in one interval of `secs` seconds: `delta_bytes` over
    /// `delta_frames` delta frames, `key_bytes` over `key_frames`
    /// keyframes, `bytes` in all. Returns the rate, bits per second.
    fn update(&mut self, secs: f64, counts: FrameCounts) -> u64 {
        if secs <= 0.0 {
            return self.bits_per_second();
        }
        let frames = counts.delta_frames + counts.key_frames;
        if counts.delta_frames > 0 {
            self.delta_frame = Some(counts.delta_bytes as f64 / counts.delta_frames as f64);
        }
        let (delta, overhead) = if let Some(mean) = self.delta_frame.filter(|_| frames > 0) {
            let excess = (counts.key_bytes as f64 - mean * counts.key_frames as f64).max(0.0);
            (mean * frames as f64, excess)
        } else if frames > 0 {
            // Only keyframes ever: that is what the layer costs.
            (counts.key_bytes as f64, 0.0)
        } else {
            (counts.bytes as f64, 0.0)
        };
        let (delta, overhead) = (delta * 8.0 / secs, overhead * 8.0 / secs);
        let weight = |tau: Duration| 1.0 - (-secs / tau.as_secs_f64()).exp();
        self.delta = Some(match self.delta {
            Some(d) => d + (delta - d) * weight(DELTA_SMOOTHING),
            None => delta,
        });
        self.keyframes += (overhead - self.keyframes) * weight(KEYFRAME_AMORTIZATION);
        self.bits_per_second()
    }

    /// The rate, bits per second (0 before the first interval).
    pub fn bits_per_second(&self) -> u64 {
        (self.delta.unwrap_or(0.0) + self.keyframes).round() as u64
    }
}

impl SimulcastLayer {
    fn new(rid: Option<Rid>) -> Self {
        Self {
            rid,
            ssrc: None,
            width: 0,
            height: 0,
            frame_rate: 0.0,
            bitrate: 0,
            last_keyframe: None,
            last_packet: None,
            counts: FrameCounts::default(),
            in_keyframe: false,
            measured: None,
            measured_from: None,
            rate: LayerRate::default(),
        }
    }

    /// Whether it is being sent: heard from within [`LAYER_SILENCE`].
    pub fn is_active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|at| now.saturating_duration_since(at) < LAYER_SILENCE)
    }

    /// Whether its bitrate is still being learned: sent, but measured for
    /// less than [`LAYER_SETTLE`], or for less than [`LAYER_SETTLE_MAX`]
    /// without a delta frame yet (while subscribers join, each asking for
    /// a keyframe, a low-rate layer sends nothing else).
    pub fn is_settling(&self, now: Instant) -> bool {
        let measured_for = |limit| {
            self.measured_from
                .is_none_or(|from| now.saturating_duration_since(from) < limit)
        };
        self.is_active(now)
            && (measured_for(LAYER_SETTLE)
                || (self.rate.delta_frame.is_none() && measured_for(LAYER_SETTLE_MAX)))
    }

    fn area(&self) -> u32 {
        u32::from(self.width) * u32::from(self.height)
    }
}

/// The fan-out of one published audio or video track.
#[derive(Debug)]
pub struct Forwarder {
    pub track: TrackSid,
    pub publisher: PeerRef,
    /// The publisher's m-line for this track.
    pub mid: str0m::media::Mid,
    pub video: bool,
    pub codecs: PublisherCodecs,
    pub lanes: Vec<Lane>,
    /// What the publisher sends: one layer, or one per simulcast RID.
    pub layers: Vec<SimulcastLayer>,
    keyframe_requested_at: Option<Instant>,
    /// Layers (bits) whose keyframe should be requested at the next
    /// opportunity.
    keyframe_wanted: u8,
    /// The layers (bits) of the last request [`Forwarder::poll_keyframe_request`]
    /// answered true for.
    requested: u8,
    /// Packets received from the publisher, for statistics.
    pub received: u64,
    /// An audio track's voice in the room's dominant speaker detection.
    pub voice: Option<crate::speaker::Voice>,
    /// The publisher's priority for the track (`publishPriority`).
    pub priority: crate::allocation::Priority,
    /// Payload bytes received from the publisher.
    pub bytes: u64,
    /// Bits per second received, measured by [`Forwarder::measure`].
    pub bitrate: u64,
    measured: Option<(Instant, u64)>,
}

impl Forwarder {
    pub fn new(
        track: TrackSid,
        publisher: PeerRef,
        mid: str0m::media::Mid,
        video: bool,
        codecs: PublisherCodecs,
    ) -> Self {
        Self {
            track,
            publisher,
            mid,
            video,
            codecs,
            lanes: Vec::new(),
            layers: vec![SimulcastLayer::new(None)],
            keyframe_requested_at: None,
            keyframe_wanted: 0,
            requested: 0,
            received: 0,
            voice: None,
            priority: crate::allocation::Priority::Standard,
            bytes: 0,
            bitrate: 0,
            measured: None,
        }
    }

    /// A simulcast forwarder: one layer per RID (at most [`MAX_LAYERS`];
    /// fewer than two RIDs is no simulcast).
    pub fn with_rids(mut self, rids: &[Rid]) -> Self {
        if self.video && rids.len() > 1 {
            self.layers = rids
                .iter()
                .take(MAX_LAYERS)
                .map(|rid| SimulcastLayer::new(Some(*rid)))
                .collect();
        }
        self
    }

    /// A simulcast forwarder from an `a=ssrc-group:SIM` line: one layer
    /// per SSRC, lowest first (at most [`MAX_LAYERS`]; fewer than two is no
    /// simulcast).
    pub fn with_ssrcs(mut self, ssrcs: &[u32]) -> Self {
        if self.video && ssrcs.len() > 1 {
            self.layers = ssrcs
                .iter()
                .take(MAX_LAYERS)
                .map(|ssrc| SimulcastLayer {
                    ssrc: Some(*ssrc),
                    ..SimulcastLayer::new(None)
                })
                .collect();
        }
        self
    }

    /// Whether the publisher sends simulcast.
    pub fn is_simulcast(&self) -> bool {
        self.layers.len() > 1
    }

    /// Whether any simulcast layer's bitrate is still settling
    /// ([`SimulcastLayer::is_settling`]): the allocation does not step the
    /// track up meanwhile.
    pub fn is_settling(&self, now: Instant) -> bool {
        self.is_simulcast() && self.layers.iter().any(|l| l.is_settling(now))
    }

    /// The index of the smallest layer known (by its keyframes), else the
    /// first.
    pub fn lowest_layer(&self) -> u8 {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.area() > 0)
            .min_by_key(|(_, l)| l.area())
            .map_or(0, |(i, _)| i as u8)
    }

    /// The index of the largest layer known, else the last (what a
    /// recording keeps).
    pub fn top_layer(&self) -> u8 {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.area() > 0)
            .max_by_key(|(i, l)| (l.area(), *i))
            .map_or(self.layers.len().saturating_sub(1) as u8, |(i, _)| i as u8)
    }

    /// Add a subscriber; a video lane makes the forwarder want a keyframe.
    /// A new lane of a simulcast track starts on the lowest layer, until the
    /// allocation says otherwise.
    pub fn add_lane(&mut self, mut lane: Lane) {
        self.lanes
            .retain(|l| l.subscriber != lane.subscriber || l.mid != lane.mid);
        lane.set_target(self.lowest_layer());
        if self.video {
            self.keyframe_wanted |= 1 << lane.target;
        }
        self.lanes.push(lane);
    }

    /// Remove every lane to `subscriber`, returning them (their
    /// continuations let the m-lines be reused).
    pub fn take_subscriber(&mut self, subscriber: PeerRef) -> Vec<Lane> {
        let (taken, kept) = std::mem::take(&mut self.lanes)
            .into_iter()
            .partition(|l| l.subscriber == subscriber);
        self.lanes = kept;
        taken
    }

    /// Remove the lane on `subscriber`'s m-line `mid`, returning it.
    pub fn take_lane(&mut self, subscriber: PeerRef, mid: str0m::media::Mid) -> Option<Lane> {
        let index = self
            .lanes
            .iter()
            .position(|l| l.subscriber == subscriber && l.mid == mid)?;
        Some(self.lanes.remove(index))
    }

    /// Switch `subscriber`'s lanes off or on (see [`Lane::switch`]).
    /// Switching video on makes the forwarder want a keyframe.
    pub fn switch(&mut self, subscriber: PeerRef, on: bool) {
        let mut wanted = 0;
        for lane in self.lanes.iter_mut().filter(|l| l.subscriber == subscriber) {
            if lane.switch(on) && on {
                wanted |= 1 << lane.target;
            }
        }
        if self.video {
            self.keyframe_wanted |= wanted;
        }
    }

    /// Switch `subscriber`'s lanes off or on for the allocation.
    pub fn starve(&mut self, subscriber: PeerRef, starved: bool) {
        let mut wanted = 0;
        for lane in self.lanes.iter_mut().filter(|l| l.subscriber == subscriber) {
            if lane.starve(starved) && !starved {
                wanted |= 1 << lane.target;
            }
        }
        if self.video {
            self.keyframe_wanted |= wanted;
        }
    }

    /// Move `subscriber`'s lanes to `layer` (an index into
    /// [`Forwarder::layers`]) at its next keyframe, which is asked for.
    pub fn set_target(&mut self, subscriber: PeerRef, layer: u8) {
        if usize::from(layer) >= self.layers.len() {
            return;
        }
        for lane in self.lanes.iter_mut().filter(|l| l.subscriber == subscriber) {
            if lane.set_target(layer) && lane.waiting_for_keyframe() {
                self.keyframe_wanted |= 1 << layer;
            }
        }
    }

    /// A subscriber asked for a keyframe (PLI or FIR), or a recording
    /// needs one: every layer a lane forwards or waits for.
    pub fn subscriber_wants_keyframe(&mut self) {
        if self.video {
            let mut wanted = 1 << self.top_layer();
            for lane in &self.lanes {
                wanted |= 1 << lane.current.unwrap_or(lane.target);
            }
            self.keyframe_wanted |= wanted;
        }
    }

    /// Subscriber `subscriber` asked for a keyframe on its m-line `mid`:
    /// the layer it receives. Whether it receives this track there.
    pub fn keyframe_for(&mut self, subscriber: PeerRef, mid: str0m::media::Mid) -> bool {
        let Some(lane) = self
            .lanes
            .iter()
            .find(|l| l.subscriber == subscriber && l.mid == mid)
        else {
            return false;
        };
        if self.video {
            self.keyframe_wanted |= 1 << lane.current.unwrap_or(lane.target);
        }
        true
    }

    /// Whether to send a keyframe request to the publisher now; the layers
    /// to ask are then in [`Forwarder::requested_layers`]. Marks the request
    /// as sent when it answers true.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.video {
            return false;
        }
        let since = self
            .keyframe_requested_at
            .map(|at| now.saturating_duration_since(at));
        let waiting = self
            .lanes
            .iter()
            .filter(|l| l.waiting_for_keyframe())
            .fold(0u8, |m, l| m | 1 << l.target);
        let wanted = self.keyframe_wanted != 0;
        let due = match since {
            None => wanted || waiting != 0,
            Some(since) if since < KEYFRAME_THROTTLE => false,
            Some(since) => wanted || (waiting != 0 && since >= KEYFRAME_RETRY),
        };
        if due {
            self.keyframe_requested_at = Some(now);
            self.requested = self.keyframe_wanted | waiting;
            self.keyframe_wanted = 0;
        }
        due
    }

    /// The layers (bits of indices into [`Forwarder::layers`]) the last
    /// request that [`Forwarder::poll_keyframe_request`] granted is for.
    pub fn requested_layers(&self) -> u8 {
        self.requested
    }

    /// Update [`Forwarder::bitrate`] (plain bytes per second) and each
    /// layer's bitrate ([`LayerRate`]: robust to keyframe bursts) and frame
    /// rate from what arrived since the last call (a second or more apart,
    /// else nothing changes).
    pub fn measure(&mut self, now: Instant) {
        match self.measured {
            Some((at, bytes)) if now.saturating_duration_since(at) >= Duration::from_secs(1) => {
                let secs = now.saturating_duration_since(at).as_secs_f64();
                self.bitrate = ((self.bytes - bytes) as f64 * 8.0 / secs) as u64;
                self.measured = Some((now, self.bytes));
            }
            Some(_) => {}
            None => self.measured = Some((now, self.bytes)),
        }
        for layer in &mut self.layers {
            match layer.measured {
                Some((at, before))
                    if now.saturating_duration_since(at) >= Duration::from_secs(1) =>
                {
                    let secs = now.saturating_duration_since(at).as_secs_f64();
                    let c = layer.counts;
                    let interval = FrameCounts {
                        bytes: c.bytes - before.bytes,
                        delta_bytes: c.delta_bytes - before.delta_bytes,
                        delta_frames: c.delta_frames - before.delta_frames,
                        key_bytes: c.key_bytes - before.key_bytes,
                        key_frames: c.key_frames - before.key_frames,
                    };
                    layer.bitrate = layer.rate.update(secs, interval);
                    layer.frame_rate =
                        ((interval.delta_frames + interval.key_frames) as f64 / secs) as f32;
                    layer.measured = Some((now, c));
                }
                Some(_) => {}
                // The first interval starts once it is heard: one that
                // began before would read a fraction of its rate.
                None if layer.counts.bytes > 0 => {
                    layer.measured = Some((now, layer.counts));
                    layer.measured_from = Some(now);
                }
                None => {}
            }
        }
    }

    /// Describe a packet of the only layer for the lanes (tests, and
    /// tracks without simulcast).
    pub fn meta(&mut self, seq: u64, time: u32, pt: u8, payload: &[u8]) -> PacketMeta {
        let layer = self.layers.first().and_then(|l| l.rid);
        self.observe(layer, 0, None, false, seq, time, pt, payload)
            .unwrap_or(PacketMeta {
                seq,
                time,
                pt,
                keyframe_start: false,
                layer: 0,
                arrival: None,
                vp8: None,
            })
    }

    /// Describe a packet for the lanes, and count it in its layer's
    /// measurements. `None` when it belongs to no layer of this track (a
    /// RID or SSRC the offer did not announce, or none on a simulcast
    /// track).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        rid: Option<Rid>,
        ssrc: u32,
        arrival: Option<Instant>,
        marker: bool,
        seq: u64,
        time: u32,
        pt: u8,
        payload: &[u8],
    ) -> Option<PacketMeta> {
        self.received += 1;
        self.bytes += payload.len() as u64;
        let index = if self.layers.len() == 1 {
            0
        } else {
            self.layers.iter().position(|l| match l.ssrc {
                Some(own) => own == ssrc,
                None => rid.is_some() && l.rid == rid,
            })?
        };
        let codec = if self.video {
            self.codecs.video_codec(pt)
        } else {
            None
        };
        let vp8 = (codec == Some(VideoCodec::Vp8))
            .then(|| vp8::Descriptor::parse(payload))
            .flatten();
        let keyframe_start = match (codec, vp8) {
            (Some(VideoCodec::Vp8), Some(d)) => d.keyframe,
            (Some(codec), _) => starts_keyframe(codec, payload),
            (None, _) => false,
        };
        let layer = &mut self.layers[index];
        let size = payload.len() as u64;
        if keyframe_start {
            layer.in_keyframe = true;
        }
        let c = &mut layer.counts;
        c.bytes += size;
        if layer.in_keyframe {
            c.key_bytes += size;
        } else {
            c.delta_bytes += size;
        }
        // Video's marker bit ends a frame (audio's starts a talkspurt: no
        // frames counted, the plain rate is used).
        if marker && self.video {
            if layer.in_keyframe {
                c.key_frames += 1;
            } else {
                c.delta_frames += 1;
            }
            layer.in_keyframe = false;
        }
        if arrival.is_some() {
            layer.last_packet = arrival;
        }
        if keyframe_start {
            if arrival.is_some() {
                layer.last_keyframe = arrival;
            }
            if let Some(d) = vp8
                && d.size.0 > 0
                && d.size.1 > 0
            {
                (layer.width, layer.height) = d.size;
            }
        }
        Some(PacketMeta {
            seq,
            time,
            pt,
            keyframe_start,
            layer: index as u8,
            arrival,
            vp8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VP8_PT: u8 = 96;
    const KEY: [u8; 3] = [0x10, 0x00, 0x9d];
    const DELTA: [u8; 2] = [0x10, 0x01];
    const MIDDLE: [u8; 2] = [0x00, 0x00];

    fn peer(index: u32) -> PeerRef {
        PeerRef {
            index,
            generation: 0,
        }
    }

    fn video_forwarder() -> Forwarder {
        Forwarder::new(
            TrackSid::from_bytes([1; 16]),
            peer(0),
            "0".into(),
            true,
            PublisherCodecs::new(vec![(VP8_PT, Some(VideoCodec::Vp8))]),
        )
    }

    fn lane(index: u32, base: u16) -> Lane {
        Lane::new(peer(index), "1".into(), vec![(VP8_PT, 100)], true, base)
    }

    fn send(
        f: &mut Forwarder,
        lane: usize,
        seq: u64,
        time: u32,
        payload: &[u8],
    ) -> Option<Outgoing> {
        let meta = f.meta(seq, time, VP8_PT, payload);
        f.lanes[lane].admit(&meta)
    }

    #[test]
    fn a_video_lane_starts_at_a_keyframe_with_contiguous_rewritten_sequence_numbers() {
        let mut f = video_forwarder();
        f.add_lane(lane(1, 1000));
        let seqs: Vec<Option<u64>> = [
            (70_000, &DELTA[..]),
            (70_001, &MIDDLE[..]),
            (70_002, &KEY[..]),
            (70_003, &MIDDLE[..]),
            (70_005, &DELTA[..]),
        ]
        .iter()
        .map(|(seq, payload)| send(&mut f, 0, *seq, 9_000, payload).map(|o| o.seq))
        .collect();
        assert_eq!(seqs, [None, None, Some(1000), Some(1001), Some(1003)]);
        assert_eq!(
            send(&mut f, 0, 70_005, 9_000, &DELTA).map(|o| o.pt),
            Some(100),
            "payload type mapped"
        );
        // A late packet from before the start is skipped; one inside the run
        // fills its gap.
        assert_eq!(send(&mut f, 0, 70_001, 9_000, &MIDDLE), None);
        assert_eq!(
            send(&mut f, 0, 70_004, 9_000, &MIDDLE).map(|o| o.seq),
            Some(1002)
        );
        // Timestamps pass through untouched on a fresh lane.
        assert_eq!(
            send(&mut f, 0, 70_006, 12_000, &DELTA).map(|o| o.time),
            Some(12_000)
        );
    }

    #[test]
    fn each_lane_has_its_own_numbering_from_where_it_joined() {
        let mut f = video_forwarder();
        f.add_lane(lane(1, 10));
        assert_eq!(send(&mut f, 0, 5, 0, &KEY).map(|o| o.seq), Some(10));
        f.add_lane(lane(2, 500));
        for seq in 6..9 {
            let m = f.meta(seq, 0, VP8_PT, &DELTA);
            f.lanes[0].admit(&m);
            assert_eq!(
                f.lanes[1].admit(&m),
                None,
                "late joiner waits for a keyframe"
            );
        }
        let key = f.meta(9, 0, VP8_PT, &KEY);
        assert_eq!(f.lanes[0].admit(&key).map(|o| o.seq), Some(14));
        assert_eq!(f.lanes[1].admit(&key).map(|o| o.seq), Some(500));
    }

    #[test]
    fn audio_lanes_start_at_once_and_unknown_payload_types_are_skipped() {
        let mut f = Forwarder::new(
            TrackSid::from_bytes([2; 16]),
            peer(0),
            "0".into(),
            false,
            PublisherCodecs::new(vec![(111, None)]),
        );
        f.add_lane(Lane::new(peer(1), "1".into(), vec![(111, 109)], false, 7));
        let m = f.meta(123, 4_000, 111, &[1, 2, 3]);
        assert_eq!(
            f.lanes[0].admit(&m),
            Some(Outgoing {
                seq: 7,
                time: 4_000,
                pt: 109,
                picture_id: None,
                tl0: None,
            })
        );
        let other = f.meta(124, 4_960, 0, &[1]);
        assert_eq!(f.lanes[0].admit(&other), None, "no mapping for PT 0");
        assert!(
            !f.poll_keyframe_request(Instant::now()),
            "audio never asks for keyframes"
        );
    }

    #[test]
    fn keyframe_requests_are_prompt_then_throttled_then_retried() {
        let t0 = Instant::now();
        let mut f = video_forwarder();
        assert!(!f.poll_keyframe_request(t0), "no lanes, no request");
        f.add_lane(lane(1, 0));
        assert!(f.poll_keyframe_request(t0), "a new lane asks at once");
        f.add_lane(lane(2, 0));
        assert!(
            !f.poll_keyframe_request(t0 + Duration::from_millis(100)),
            "throttled"
        );
        assert!(
            f.poll_keyframe_request(t0 + KEYFRAME_THROTTLE),
            "the second lane's request after the throttle"
        );
        // Still waiting: retried after KEYFRAME_RETRY, not before.
        let t1 = t0 + KEYFRAME_THROTTLE;
        assert!(!f.poll_keyframe_request(t1 + Duration::from_millis(900)));
        assert!(f.poll_keyframe_request(t1 + KEYFRAME_RETRY));
        // Once every lane has its keyframe, no more retries...
        let key = f.meta(1, 0, VP8_PT, &KEY);
        for l in &mut f.lanes {
            l.admit(&key);
        }
        assert!(!f.poll_keyframe_request(t1 + KEYFRAME_RETRY * 5));
        // ...until a subscriber asks.
        f.subscriber_wants_keyframe();
        assert!(f.poll_keyframe_request(t1 + KEYFRAME_RETRY * 5));
    }

    #[test]
    fn removing_lanes() {
        let mut f = video_forwarder();
        f.add_lane(lane(1, 0));
        f.add_lane(lane(2, 0));
        f.add_lane(lane(1, 0)); // same subscriber and mid: replaces
        assert_eq!(f.lanes.len(), 2);
        assert!(f.take_lane(peer(1), "1".into()).is_some());
        assert_eq!(f.lanes.len(), 1);
        assert_eq!(f.take_subscriber(peer(2)).len(), 1);
        assert!(f.lanes.is_empty());
    }

    #[test]
    fn a_reused_m_line_continues_sequence_numbers_and_timestamps() {
        // Track A on m-line "1", then track B on the same m-line.
        let mut a = video_forwarder();
        a.add_lane(lane(1, 100));
        send(&mut a, 0, 10, 90_000, &KEY);
        send(&mut a, 0, 11, 90_000, &MIDDLE);
        send(&mut a, 0, 12, 93_000, &DELTA);
        let from = a
            .take_lane(peer(1), "1".into())
            .unwrap()
            .continuation(true)
            .unwrap();
        assert_eq!(
            from,
            Continuation {
                seq: 103,
                time: 96_000
            }
        );

        let mut b = video_forwarder();
        b.add_lane(Lane::continuing(
            peer(1),
            "1".into(),
            vec![(VP8_PT, 100)],
            true,
            from,
        ));
        // B's own numbering is unrelated; what leaves continues A's.
        assert_eq!(
            send(&mut b, 0, 5_000, 7_777_777, &KEY),
            Some(Outgoing {
                seq: 103,
                time: 96_000,
                pt: 100,
                picture_id: None,
                tl0: None,
            })
        );
        assert_eq!(
            send(&mut b, 0, 5_001, 7_780_777, &DELTA),
            Some(Outgoing {
                seq: 104,
                time: 99_000,
                pt: 100,
                picture_id: None,
                tl0: None,
            })
        );
    }

    #[test]
    fn a_sequence_number_extended_backwards_past_zero_is_skipped() {
        // str0m's extension of seq 40_000 arriving after seq 5 (roll-over
        // 0): one roll-over back, which wraps to the top of u64.
        let wrapped = u64::MAX - 65_535 + 40_000;
        let mut f = video_forwarder();
        f.add_lane(lane(1, 100));
        assert_eq!(
            send(&mut f, 0, wrapped, 0, &KEY),
            None,
            "not a start either"
        );
        assert!(f.lanes[0].waiting_for_keyframe());
        assert_eq!(send(&mut f, 0, 5, 0, &KEY).map(|o| o.seq), Some(100));
        assert_eq!(send(&mut f, 0, wrapped, 0, &DELTA), None);
        assert_eq!(send(&mut f, 0, 6, 0, &DELTA).map(|o| o.seq), Some(101));
        assert_eq!(
            f.take_lane(peer(1), "1".into())
                .and_then(|l| l.continuation(true))
                .map(|c| c.seq),
            Some(102),
            "the skipped packet left no trace"
        );
    }

    #[test]
    fn rebased_timestamps_wrap_around() {
        let mut f = Forwarder::new(
            TrackSid::from_bytes([3; 16]),
            peer(0),
            "0".into(),
            false,
            PublisherCodecs::new(vec![(111, None)]),
        );
        let from = Continuation {
            seq: 9,
            time: u32::MAX - 100,
        };
        f.add_lane(Lane::continuing(
            peer(1),
            "1".into(),
            vec![(111, 111)],
            false,
            from,
        ));
        let m = f.meta(1, 50, 111, &[0]);
        assert_eq!(f.lanes[0].admit(&m).map(|o| o.time), Some(u32::MAX - 100));
        let m = f.meta(2, 50 + 960, 111, &[0]);
        assert_eq!(f.lanes[0].admit(&m).map(|o| o.time), Some(859));
    }

    #[test]
    fn a_switched_off_lane_forwards_nothing_and_resumes_seamlessly_at_a_keyframe() {
        let mut f = video_forwarder();
        f.add_lane(lane(1, 500));
        f.add_lane(lane(2, 900));
        let t0 = Instant::now();
        assert!(f.poll_keyframe_request(t0));
        assert_eq!(send(&mut f, 0, 10, 3_000, &KEY).map(|o| o.seq), Some(500));
        assert_eq!(send(&mut f, 1, 10, 3_000, &KEY).map(|o| o.seq), Some(900));
        assert_eq!(send(&mut f, 0, 11, 6_000, &DELTA).map(|o| o.seq), Some(501));
        f.switch(peer(1), false);
        assert!(f.lanes[0].is_off() && !f.lanes[1].is_off());
        // Off: nothing, not even a keyframe; the other lane goes on, and an
        // off lane does not keep asking for keyframes.
        for seq in 12..20 {
            assert_eq!(send(&mut f, 0, seq, seq as u32 * 3_000, &KEY), None);
            assert!(send(&mut f, 1, seq, seq as u32 * 3_000, &DELTA).is_some());
        }
        assert!(!f.poll_keyframe_request(t0 + KEYFRAME_RETRY * 2));
        // On again: a keyframe is wanted, deltas wait, and the stream
        // continues with the next sequence number and a following timestamp.
        f.switch(peer(1), true);
        assert!(f.poll_keyframe_request(t0 + KEYFRAME_RETRY * 3));
        assert_eq!(send(&mut f, 0, 20, 60_000, &DELTA), None);
        let resumed = send(&mut f, 0, 21, 63_000, &KEY).unwrap();
        assert_eq!((resumed.seq, resumed.time), (502, 9_000));
        assert_eq!(
            send(&mut f, 0, 22, 66_000, &DELTA).map(|o| (o.seq, o.time)),
            Some((503, 12_000))
        );
        // Switching on twice changes nothing.
        f.switch(peer(1), true);
        assert_eq!(
            send(&mut f, 0, 23, 69_000, &DELTA).map(|o| o.seq),
            Some(504)
        );
    }

    /// A VP8 packet with a 15-bit picture ID and TL0PICIDX; a keyframe
    /// carries its size.
    fn vp8_packet(key: bool, picture_id: u16, tl0: u8, width: u16) -> Vec<u8> {
        let height = width * 9 / 16;
        let mut p = vec![
            0x90,
            0xe0,
            0x80 | (picture_id >> 8) as u8,
            picture_id as u8,
            tl0,
            0x20,
        ];
        if key {
            p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
            p.extend_from_slice(&width.to_le_bytes());
            p.extend_from_slice(&height.to_le_bytes());
        } else {
            p.extend_from_slice(&[0x11, 0x02, 0x00]);
        }
        p
    }

    fn simulcast_forwarder() -> Forwarder {
        let rids: Vec<Rid> = ["q", "h", "f"].iter().map(|r| Rid::from(*r)).collect();
        video_forwarder().with_rids(&rids)
    }

    /// Send a packet of layer `rid` arriving at `t0 + ms`.
    #[allow(clippy::too_many_arguments)]
    fn send_layer(
        f: &mut Forwarder,
        rid: &str,
        t0: Instant,
        ms: u64,
        seq: u64,
        time: u32,
        payload: &[u8],
    ) -> Option<Outgoing> {
        let meta = f.observe(
            Some(Rid::from(rid)),
            0,
            Some(t0 + Duration::from_millis(ms)),
            true,
            seq,
            time,
            VP8_PT,
            payload,
        )?;
        f.lanes.first_mut()?.admit(&meta)
    }

    #[test]
    fn a_simulcast_lane_switches_layer_at_the_target_layers_keyframe_and_stays_continuous() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        assert!(f.is_simulcast());
        // The layers' sizes come from their keyframes.
        send_layer(
            &mut f,
            "f",
            t0,
            0,
            900,
            500_000,
            &vp8_packet(true, 7_000, 40, 640),
        );
        send_layer(
            &mut f,
            "q",
            t0,
            0,
            100,
            10_000,
            &vp8_packet(true, 3, 200, 160),
        );
        assert_eq!((f.layers[2].width, f.layers[2].height), (640, 360));
        assert_eq!(f.lowest_layer(), 0);
        assert_eq!(f.top_layer(), 2);

        f.add_lane(lane(1, 1000));
        assert_eq!(f.lanes[0].target_layer(), 0, "a new lane starts low");
        assert!(f.poll_keyframe_request(t0));
        assert_eq!(f.requested_layers(), 0b001);
        // The high layer's packets are not for this lane; the low layer's
        // keyframe starts it.
        assert_eq!(
            send_layer(
                &mut f,
                "f",
                t0,
                30,
                901,
                502_700,
                &vp8_packet(false, 7_001, 40, 0)
            ),
            None
        );
        let first = send_layer(
            &mut f,
            "q",
            t0,
            33,
            101,
            13_000,
            &vp8_packet(true, 4, 201, 160),
        )
        .unwrap();
        assert_eq!(
            (first.seq, first.time, first.picture_id, first.tl0),
            (1000, 13_000, Some(4), Some(201))
        );
        let next = send_layer(
            &mut f,
            "q",
            t0,
            66,
            102,
            16_000,
            &vp8_packet(false, 5, 201, 0),
        )
        .unwrap();
        assert_eq!((next.seq, next.picture_id), (1001, Some(5)));

        // The allocation wants the top layer: the forwarder asks for its
        // keyframe; the low layer flows until it comes.
        f.set_target(peer(1), 2);
        assert!(f.lanes[0].waiting_for_keyframe());
        assert!(f.poll_keyframe_request(t0 + KEYFRAME_THROTTLE));
        assert_eq!(f.requested_layers(), 0b100);
        assert_eq!(
            send_layer(
                &mut f,
                "f",
                t0,
                99,
                902,
                505_400,
                &vp8_packet(false, 7_002, 40, 0)
            ),
            None
        );
        assert!(
            send_layer(
                &mut f,
                "q",
                t0,
                99,
                103,
                19_000,
                &vp8_packet(false, 6, 202, 0)
            )
            .is_some()
        );
        // Its keyframe switches: sequence numbers, timestamps (33 ms after
        // the last sent, at 90 kHz), picture ID and TL0PICIDX follow on.
        let switched = send_layer(
            &mut f,
            "f",
            t0,
            132,
            903,
            508_100,
            &vp8_packet(true, 7_003, 41, 640),
        )
        .unwrap();
        assert_eq!(
            (
                switched.seq,
                switched.time,
                switched.picture_id,
                switched.tl0
            ),
            (1003, 19_000 + 2_970, Some(7), Some(203))
        );
        assert!(!f.lanes[0].waiting_for_keyframe());
        assert_eq!(f.lanes[0].current_layer(), Some(2));
        assert_eq!(f.lanes[0].switches, 1);
        // The old layer is dropped now; the new one goes on.
        assert_eq!(
            send_layer(
                &mut f,
                "q",
                t0,
                133,
                104,
                22_000,
                &vp8_packet(false, 7, 202, 0)
            ),
            None
        );
        let after = send_layer(
            &mut f,
            "f",
            t0,
            165,
            904,
            511_100,
            &vp8_packet(false, 7_004, 41, 0),
        )
        .unwrap();
        assert_eq!(
            (after.seq, after.time, after.picture_id, after.tl0),
            (1004, 24_970, Some(8), Some(203))
        );
    }

    #[test]
    fn picture_ids_wrap_at_15_bits_across_a_switch() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        f.add_lane(lane(1, 0));
        send_layer(
            &mut f,
            "q",
            t0,
            0,
            1,
            0,
            &vp8_packet(true, 0x7fff, 255, 160),
        )
        .unwrap();
        f.set_target(peer(1), 1);
        let out = send_layer(&mut f, "h", t0, 33, 50, 9, &vp8_packet(true, 1234, 9, 320)).unwrap();
        assert_eq!((out.picture_id, out.tl0), (Some(0), Some(0)));
        let bytes = vp8_packet(false, 1235, 9, 0);
        let meta = f
            .observe(Some(Rid::from("h")), 0, None, false, 51, 9, VP8_PT, &bytes)
            .unwrap();
        let out = f.lanes[0].admit(&meta).unwrap();
        assert_eq!((out.picture_id, out.tl0), (Some(1), Some(0)));
    }

    /// Fifteen subscribers of one publisher's track moved to its half layer
    /// within a few housekeeping rounds: one keyframe request, not fifteen
    /// — the throttle is the track's (the publisher's encoder), not each
    /// lane's.
    #[test]
    fn layer_switches_of_many_subscribers_coalesce_into_one_request_per_track() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        for i in 0..15 {
            f.add_lane(lane(i, 0));
        }
        assert!(f.poll_keyframe_request(t0), "the new lanes ask once");
        // Their first keyframes arrive.
        send_layer(&mut f, "q", t0, 10, 1, 0, &vp8_packet(true, 1, 0, 320));
        let meta = f.observe(
            Some(Rid::from("q")),
            0,
            Some(t0 + Duration::from_millis(10)),
            true,
            2,
            0,
            VP8_PT,
            &vp8_packet(true, 2, 0, 320),
        );
        let meta = meta.expect("a layer packet");
        for lane in &mut f.lanes {
            lane.admit(&meta);
        }
        let mut requests = 0;
        for round in 0..4u64 {
            let now = t0 + KEYFRAME_THROTTLE + Duration::from_millis(round * 50);
            for i in (round as u32 * 4..(round as u32 + 1) * 4).take_while(|i| *i < 15) {
                f.set_target(peer(i), 1);
            }
            requests += u32::from(f.poll_keyframe_request(now));
        }
        assert_eq!(requests, 1);
        assert_eq!(f.requested_layers() & 0b010, 0b010, "for the half layer");
        // The rest are asked for after the throttle, together.
        assert!(f.poll_keyframe_request(t0 + KEYFRAME_THROTTLE * 2 + Duration::from_millis(50)));
    }

    /// Send one frame of `frame_bytes` on layer "q" at `at`, in packets of
    /// 500 bytes; a keyframe starts with a VP8 keyframe header.
    fn send_frame(f: &mut Forwarder, at: Instant, seq: &mut u64, key: bool, frame_bytes: usize) {
        let packets = frame_bytes.div_ceil(500);
        for i in 0..packets {
            let mut payload = if i == 0 {
                vp8_packet(key, *seq as u16, 0, 320)
            } else {
                vec![0x80, 0x00] // X=1, S=0: a continuation
            };
            payload.resize(500, 0);
            let marker = i + 1 == packets;
            f.observe(
                Some(Rid::from("q")),
                0,
                Some(at),
                marker,
                *seq,
                0,
                VP8_PT,
                &payload,
            );
            *seq += 1;
        }
    }

    /// One second of a 2 fps layer from `at`: two frames, each (keyframe,
    /// bytes), half a second apart, then the measurement at its end.
    fn two_frames(f: &mut Forwarder, at: Instant, seq: &mut u64, frames: [(bool, usize); 2]) {
        let [(key0, bytes0), (key1, bytes1)] = frames;
        send_frame(f, at, seq, key0, bytes0);
        send_frame(f, at + Duration::from_millis(500), seq, key1, bytes1);
        f.measure(at + Duration::from_secs(1));
    }

    /// A layer sent at 8 kbit/s (2 fps, 500-byte delta frames) with a
    /// keyframe of 4 frames' worth in one second: a plain count reads 20
    /// kbit/s; the allocation's rate stays within 8–10.
    #[test]
    fn a_keyframe_burst_barely_moves_a_layers_measured_bitrate() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        let mut seq = 0;
        f.measure(t0);
        let second = |s: u64| t0 + Duration::from_secs(s);
        for s in 0..12 {
            two_frames(&mut f, second(s), &mut seq, [(s == 0, 500), (false, 500)]);
        }
        let steady = f.layers[0].bitrate;
        assert!((7_500..=9_000).contains(&steady), "{steady}");
        assert!((f.layers[0].frame_rate - 2.0).abs() < 0.1);

        // One keyframe of 2000 bytes in place of a delta frame.
        two_frames(&mut f, second(12), &mut seq, [(true, 2000), (false, 500)]);
        let burst = f.layers[0].bitrate;
        assert!((8_000..=10_000).contains(&burst), "{burst}, not 20000");
        // It fades.
        for s in 13..30 {
            two_frames(&mut f, second(s), &mut seq, [(false, 500), (false, 500)]);
        }
        let after = f.layers[0].bitrate;
        assert!(after < 8_500, "{after}");

        // Keyframes that keep coming are what the layer costs: every frame
        // a keyframe of 2000 bytes is 32 kbit/s in the long run.
        for s in 30..70 {
            two_frames(&mut f, second(s), &mut seq, [(true, 2000), (true, 2000)]);
        }
        let all_keys = f.layers[0].bitrate;
        assert!((30_000..=32_500).contains(&all_keys), "{all_keys}");
    }

    /// Every frame a keyframe for three seconds (subscribers joining one
    /// after another, each asking for one): the delta frames are taken at
    /// the size last seen, and the keyframes' excess is amortized, so the
    /// layer reads under twice its rate, not four times.
    #[test]
    fn seconds_of_keyframes_only_keep_the_delta_frames_size() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        let mut seq = 0;
        f.measure(t0);
        let second = |s: u64| t0 + Duration::from_secs(s);
        for s in 0..12 {
            two_frames(&mut f, second(s), &mut seq, [(s == 0, 500), (false, 500)]);
        }
        let steady = f.layers[0].bitrate;
        for s in 12..15 {
            two_frames(&mut f, second(s), &mut seq, [(true, 2000), (true, 2000)]);
        }
        let storm = f.layers[0].bitrate;
        assert!(storm < steady * 2, "{storm} against {steady}");
        assert!(storm > steady, "the keyframes count: {storm}");
    }

    /// A layer that has sent nothing but keyframes (everyone joining at
    /// once) is settling past [`LAYER_SETTLE`], up to [`LAYER_SETTLE_MAX`];
    /// its first delta frame ends that.
    #[test]
    fn a_layer_of_keyframes_only_settles_at_its_first_delta_frame_or_at_the_limit() {
        let t0 = Instant::now();
        let second = |s: u64| t0 + Duration::from_secs(s);
        let run = |delta_from: u64| {
            let mut f = simulcast_forwarder();
            let mut seq = 0;
            let mut settling = Vec::new();
            for s in 0..12 {
                two_frames(
                    &mut f,
                    second(s),
                    &mut seq,
                    [(s < delta_from, 500), (s < delta_from, 500)],
                );
                settling.push(f.layers[0].is_settling(second(s + 1)));
            }
            settling
        };
        // Measured from 1 s: settled at 4 s with delta frames from the
        // start, at 6 s when they begin at 5 s, at 11 s without any.
        let settled_at = |settling: Vec<bool>| settling.iter().position(|s| !s).map(|i| i + 1);
        assert_eq!(settled_at(run(0)), Some(4));
        assert_eq!(settled_at(run(5)), Some(6));
        assert_eq!(settled_at(run(99)), Some(11));
    }

    /// Keyframes every other frame (a flapping allocation at its worst)
    /// converge to their true cost, too: the figure is robust, not blind.
    #[test]
    fn keyframes_that_keep_coming_are_counted_at_their_cost() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        let mut seq = 0;
        f.measure(t0);
        for s in 0..60 {
            let at = t0 + Duration::from_secs(s);
            two_frames(&mut f, at, &mut seq, [(true, 2000), (false, 500)]);
        }
        // 2500 bytes a second.
        let rate = f.layers[0].bitrate;
        assert!((18_500..=20_500).contains(&rate), "{rate}");
    }

    #[test]
    fn unknown_rids_are_not_forwarded_and_layers_measure_themselves() {
        let t0 = Instant::now();
        let mut f = simulcast_forwarder();
        f.add_lane(lane(1, 0));
        assert!(
            f.observe(Some(Rid::from("x")), 0, Some(t0), true, 1, 0, VP8_PT, &KEY)
                .is_none()
        );
        assert!(
            f.observe(None, 0, Some(t0), true, 1, 0, VP8_PT, &KEY)
                .is_none()
        );
        f.measure(t0);
        let send_second = |f: &mut Forwarder, s: u64| {
            for i in s * 30..(s + 1) * 30 {
                f.observe(
                    Some(Rid::from("h")),
                    0,
                    Some(t0 + Duration::from_millis(i * 1000 / 30)),
                    true,
                    i,
                    0,
                    VP8_PT,
                    &vp8_packet(i == 0, i as u16, 0, 320),
                );
            }
        };
        send_second(&mut f, 0);
        // The measurement starts once the layer is heard: a first interval
        // from before would read a fraction of its rate.
        let second = |s: u64| t0 + Duration::from_secs(s);
        f.measure(second(1));
        assert_eq!(f.layers[1].bitrate, 0);
        assert!(f.layers[1].is_settling(second(1)) && f.is_settling(second(1)));
        send_second(&mut f, 1);
        f.measure(second(2));
        let h = &f.layers[1];
        assert_eq!((h.width, h.height), (320, 180));
        assert!((h.frame_rate - 30.0).abs() < 0.5, "{}", h.frame_rate);
        assert!(h.bitrate > 0);
        assert!(h.is_active(second(2)));
        assert!(
            h.is_settling(second(3)),
            "measured for 2 s of {LAYER_SETTLE:?}"
        );
        assert!(!h.is_active(second(4)));
        assert!(!f.layers[0].is_active(t0));
        // Neither a silent layer nor one measured long enough is settling.
        let later = second(1) + LAYER_SETTLE;
        send_second(&mut f, 3);
        assert!(!f.layers[0].is_settling(later) && !f.layers[1].is_settling(later));
        assert!(!f.is_settling(later));
    }

    #[test]
    fn ssrc_group_layers_are_told_apart_by_ssrc() {
        let t0 = Instant::now();
        let mut f = video_forwarder().with_ssrcs(&[11, 12, 13]);
        assert!(f.is_simulcast());
        f.add_lane(lane(1, 100));
        let at = Some(t0);
        let high = f
            .observe(
                None,
                13,
                at,
                true,
                5,
                0,
                VP8_PT,
                &vp8_packet(true, 9, 0, 640),
            )
            .unwrap();
        assert_eq!(high.layer, 2);
        assert!(f.observe(None, 99, at, true, 5, 0, VP8_PT, &KEY).is_none());
        let low = f
            .observe(
                None,
                11,
                at,
                true,
                8,
                0,
                VP8_PT,
                &vp8_packet(true, 1, 0, 160),
            )
            .unwrap();
        assert_eq!(f.lanes[0].admit(&low).map(|o| o.seq), Some(100));
        assert_eq!((f.layers[2].width, f.layers[0].width), (640, 160));
    }
}

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
//!   subscriber sees one continuous stream on one SSRC. (Simulcast layer
//!   switching, later, rebases the same way.)
//! * **Keyframes**: a video lane forwards nothing until a keyframe begins,
//!   and the forwarder asks the publisher for one as soon as a lane is
//!   added, again every [`KEYFRAME_RETRY`] while any lane still waits, and
//!   when a subscriber asks (PLI/FIR) — never more often than
//!   [`KEYFRAME_THROTTLE`].

use std::time::{Duration, Instant};

use salon_sid::TrackSid;

use crate::keyframe::{VideoCodec, starts_keyframe};

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
}

/// How one packet leaves on one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: u64,
    pub time: u32,
    pub pt: u8,
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
}

impl PublisherCodecs {
    pub fn new(entries: Vec<(u8, Option<VideoCodec>)>) -> Self {
        Self { entries }
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
    waiting_for_keyframe: bool,
    /// (first incoming seq, first outgoing seq), once started.
    start: Option<(u64, u64)>,
    base_out: u64,
    /// Continue from an earlier lane on the same m-line: rebase timestamps
    /// so the first packet goes out at this time.
    continue_at: Option<u32>,
    /// Added to incoming timestamps (wrapping), fixed at the start.
    time_offset: u32,
    /// The last packet sent: to continue from when the lane ends.
    last: Option<Outgoing>,
    /// The subscriber switched the track off: nothing is forwarded.
    off: bool,
    /// The allocation switched it off (no bandwidth for it): nothing is
    /// forwarded.
    starved: bool,
    /// Packets admitted, for statistics.
    pub forwarded: u64,
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
            waiting_for_keyframe: video,
            start: None,
            base_out: u64::from(base_out),
            continue_at: None,
            time_offset: 0,
            last: None,
            off: false,
            starved: false,
            forwarded: 0,
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
        // One frame of 30 fps video at 90 kHz; one 20 ms Opus frame at 48 kHz.
        let step = if video { 3_000 } else { 960 };
        self.last.map(|l| Continuation {
            seq: l.seq + 1,
            time: l.time.wrapping_add(step),
        })
    }

    /// Whether this lane still waits for a keyframe (a switched-off lane
    /// waits for nothing).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe && !self.off && !self.starved
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
    pub fn switch(&mut self, on: bool, video: bool) -> bool {
        self.set(!on, self.starved, video)
    }

    /// Whether the allocation switched the lane off.
    pub fn is_starved(&self) -> bool {
        self.starved
    }

    /// Switch the lane off or on for the allocation (see [`Lane::switch`];
    /// it stays off while the subscriber has it off).
    pub fn starve(&mut self, starved: bool, video: bool) -> bool {
        self.set(self.off, starved, video)
    }

    fn set(&mut self, off: bool, starved: bool, video: bool) -> bool {
        let was_on = !self.off && !self.starved;
        self.off = off;
        self.starved = starved;
        let on = !off && !starved;
        if on == was_on {
            return false;
        }
        if on {
            if let Some(from) = self.continuation(video) {
                self.base_out = from.seq;
                self.continue_at = Some(from.time);
                self.start = None;
            }
            self.waiting_for_keyframe = video;
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
        if self.waiting_for_keyframe {
            if !packet.keyframe_start {
                return None;
            }
            self.waiting_for_keyframe = false;
        }
        if self.start.is_none() {
            self.start = Some((packet.seq, self.base_out));
            if let Some(at) = self.continue_at {
                self.time_offset = at.wrapping_sub(packet.time);
            }
        }
        let (first_in, first_out) = self.start?;
        if packet.seq < first_in {
            return None; // older than where this subscriber joined
        }
        self.forwarded += 1;
        let out = Outgoing {
            seq: first_out + (packet.seq - first_in),
            time: packet.time.wrapping_add(self.time_offset),
            pt,
        };
        if self.last.is_none_or(|l| out.seq > l.seq) {
            self.last = Some(out);
        }
        Some(out)
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
    keyframe_requested_at: Option<Instant>,
    /// Set when a keyframe should be requested at the next opportunity.
    keyframe_wanted: bool,
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
            keyframe_requested_at: None,
            keyframe_wanted: false,
            received: 0,
            voice: None,
            priority: crate::allocation::Priority::Standard,
            bytes: 0,
            bitrate: 0,
            measured: None,
        }
    }

    /// Add a subscriber; a video lane makes the forwarder want a keyframe.
    pub fn add_lane(&mut self, lane: Lane) {
        self.lanes
            .retain(|l| l.subscriber != lane.subscriber || l.mid != lane.mid);
        if self.video {
            self.keyframe_wanted = true;
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
        let video = self.video;
        let mut changed = false;
        for lane in self.lanes.iter_mut().filter(|l| l.subscriber == subscriber) {
            changed |= lane.switch(on, video);
        }
        if changed && on && video {
            self.keyframe_wanted = true;
        }
    }

    /// Switch `subscriber`'s lanes off or on for the allocation.
    pub fn starve(&mut self, subscriber: PeerRef, starved: bool) {
        let video = self.video;
        let mut changed = false;
        for lane in self.lanes.iter_mut().filter(|l| l.subscriber == subscriber) {
            changed |= lane.starve(starved, video);
        }
        if changed && !starved && video {
            self.keyframe_wanted = true;
        }
    }

    /// A subscriber asked for a keyframe (PLI or FIR).
    pub fn subscriber_wants_keyframe(&mut self) {
        if self.video {
            self.keyframe_wanted = true;
        }
    }

    /// Whether to send a keyframe request to the publisher now. Marks the
    /// request as sent when it answers true.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.video {
            return false;
        }
        let since = self
            .keyframe_requested_at
            .map(|at| now.saturating_duration_since(at));
        let waiting = self.lanes.iter().any(Lane::waiting_for_keyframe);
        let due = match since {
            None => self.keyframe_wanted || waiting,
            Some(since) if since < KEYFRAME_THROTTLE => false,
            Some(since) => self.keyframe_wanted || (waiting && since >= KEYFRAME_RETRY),
        };
        if due {
            self.keyframe_requested_at = Some(now);
            self.keyframe_wanted = false;
        }
        due
    }

    /// Update [`Forwarder::bitrate`] from the bytes received since the
    /// last call (a second or more apart, else nothing changes).
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
    }

    /// Describe a packet for the lanes.
    pub fn meta(&mut self, seq: u64, time: u32, pt: u8, payload: &[u8]) -> PacketMeta {
        self.received += 1;
        self.bytes += payload.len() as u64;
        let keyframe_start = self.video && self.codecs.keyframe_start(pt, payload);
        PacketMeta {
            seq,
            time,
            pt,
            keyframe_start,
        }
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
                pt: 109
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
                pt: 100
            })
        );
        assert_eq!(
            send(&mut b, 0, 5_001, 7_780_777, &DELTA),
            Some(Outgoing {
                seq: 104,
                time: 99_000,
                pt: 100
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
}

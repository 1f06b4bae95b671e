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
//!   are skipped.
//! * **Timestamps** pass through: each lane carries one source, so there is
//!   no discontinuity to hide. (Simulcast layer switching, later, will rebase
//!   here; the lane already owns the state it needs.)
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
    /// Payload type as the publisher sent it.
    pub pt: u8,
    /// Whether the packet begins a keyframe (always false for audio).
    pub keyframe_start: bool,
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
            forwarded: 0,
        }
    }

    /// Whether this lane still waits for a keyframe.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    /// The outgoing (sequence number, payload type) for `packet`, or `None`
    /// to skip it on this lane.
    pub fn admit(&mut self, packet: &PacketMeta) -> Option<(u64, u8)> {
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
        let (first_in, first_out) = *self.start.get_or_insert((packet.seq, self.base_out));
        if packet.seq < first_in {
            return None; // older than where this subscriber joined
        }
        self.forwarded += 1;
        Some((first_out + (packet.seq - first_in), pt))
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

    /// Remove every lane to `subscriber` (all its m-lines for this track).
    pub fn remove_subscriber(&mut self, subscriber: PeerRef) {
        self.lanes.retain(|l| l.subscriber != subscriber);
    }

    /// Remove the lane on `subscriber`'s m-line `mid`.
    pub fn remove_lane(&mut self, subscriber: PeerRef, mid: str0m::media::Mid) {
        self.lanes
            .retain(|l| !(l.subscriber == subscriber && l.mid == mid));
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

    /// Describe a packet for the lanes.
    pub fn meta(&mut self, seq: u64, pt: u8, payload: &[u8]) -> PacketMeta {
        self.received += 1;
        let keyframe_start = self.video && self.codecs.keyframe_start(pt, payload);
        PacketMeta {
            seq,
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

    #[test]
    fn a_video_lane_starts_at_a_keyframe_with_contiguous_rewritten_sequence_numbers() {
        let mut f = video_forwarder();
        f.add_lane(lane(1, 1000));
        let sent: Vec<Option<(u64, u8)>> = [
            (70_000, &DELTA[..]),
            (70_001, &MIDDLE[..]),
            (70_002, &KEY[..]),
            (70_003, &MIDDLE[..]),
            (70_005, &DELTA[..]),
        ]
        .iter()
        .map(|(seq, payload)| {
            let meta = f.meta(*seq, VP8_PT, payload);
            f.lanes[0].admit(&meta)
        })
        .collect();
        assert_eq!(
            sent,
            [
                None,
                None,
                Some((1000, 100)),
                Some((1001, 100)),
                Some((1003, 100))
            ]
        );
        // A late packet from before the start is skipped; one inside the run
        // fills its gap.
        let late = f.meta(70_001, VP8_PT, &MIDDLE);
        assert_eq!(f.lanes[0].admit(&late), None);
        let gap = f.meta(70_004, VP8_PT, &MIDDLE);
        assert_eq!(f.lanes[0].admit(&gap), Some((1002, 100)));
    }

    #[test]
    fn each_lane_has_its_own_numbering_from_where_it_joined() {
        let mut f = video_forwarder();
        f.add_lane(lane(1, 10));
        let key = f.meta(5, VP8_PT, &KEY);
        assert_eq!(f.lanes[0].admit(&key), Some((10, 100)));
        f.add_lane(lane(2, 500));
        for seq in 6..9 {
            let m = f.meta(seq, VP8_PT, &DELTA);
            f.lanes[0].admit(&m);
            assert_eq!(
                f.lanes[1].admit(&m),
                None,
                "late joiner waits for a keyframe"
            );
        }
        let key = f.meta(9, VP8_PT, &KEY);
        assert_eq!(f.lanes[0].admit(&key), Some((14, 100)));
        assert_eq!(f.lanes[1].admit(&key), Some((500, 100)));
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
        let m = f.meta(123, 111, &[1, 2, 3]);
        assert_eq!(f.lanes[0].admit(&m), Some((7, 109)));
        let other = f.meta(124, 0, &[1]);
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
        let key = f.meta(1, VP8_PT, &KEY);
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
        f.remove_lane(peer(1), "1".into());
        assert_eq!(f.lanes.len(), 1);
        f.remove_subscriber(peer(2));
        assert!(f.lanes.is_empty());
    }
}

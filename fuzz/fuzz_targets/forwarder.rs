//! A published track's packets, in any order and with any payload, going
//! through its `Forwarder` to lanes that come and go
//! (`crates/media/src/forward.rs`, `keyframe.rs`).
//!
//! Sequence numbers arrive as 16-bit values from the wire and are extended
//! exactly as str0m extends them before the worker sees them — including
//! its backwards wrap: from roll-over 0, a step back of more than half the
//! range extends to 2^64 − 65536 + seq. Timestamps are 32-bit values from
//! the wire; the clock only moves forward.
//!
//! Must hold, for every lane: nothing is admitted with a payload type the
//! lane does not map; a video lane admits nothing before a packet that
//! starts a keyframe; the first admitted packet goes out at the lane's base
//! (or where the lane it continues left off); after that, outgoing sequence
//! numbers keep the incoming distances, only packets whose extended
//! sequence number is an SRTP index (48 bits) are sent, and nothing older
//! than the start is; timestamps are shifted by one
//! fixed offset. Keyframe requests: never for audio, never two within
//! `KEYFRAME_THROTTLE`. Nothing panics.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use salon_media::forward::{
    Continuation, Forwarder, KEYFRAME_THROTTLE, Lane, PeerRef, PublisherCodecs,
};
use salon_media::keyframe::{VideoCodec, starts_keyframe};
use salon_sid::TrackSid;

/// The publisher's payload types: one per codec, and one nobody maps.
const PTS: [(u8, Option<VideoCodec>); 4] = [
    (96, Some(VideoCodec::Vp8)),
    (98, Some(VideoCodec::Vp9)),
    (102, Some(VideoCodec::H264)),
    (111, None),
];
const UNMAPPED_PT: u8 = 127;
/// The largest SRTP packet index (RFC 3711 §3.3.1: 48 bits).
const MAX_INDEX: u64 = (1 << 48) - 1;

#[derive(Debug, Arbitrary)]
struct Input {
    video: bool,
    /// The publisher's first sequence number.
    first_seq: u16,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    /// A packet: `seq_step` after the previous one on the wire (wrapping),
    /// `time_step` after its timestamp (wrapping), with payload type
    /// `PTS[pt]` (or an unmapped one).
    Packet {
        seq_step: i16,
        time_step: u32,
        pt: u8,
        payload: Vec<u8>,
    },
    /// A subscriber's lane on its m-line `mid`; it continues the stream of
    /// the lane last taken from that m-line if there is one and `reuse`.
    AddLane {
        subscriber: u8,
        mid: u8,
        base: u16,
        /// Which publisher payload types it maps (bit i: `PTS[i]`).
        pts: u8,
        reuse: bool,
    },
    TakeLane {
        subscriber: u8,
        mid: u8,
    },
    TakeSubscriber {
        subscriber: u8,
    },
    SubscriberWantsKeyframe,
    /// Time passes (milliseconds) and the worker polls for a keyframe request.
    Poll {
        after: u16,
    },
}

/// What the model remembers of each lane: the first packet admitted (in,
/// out) and the timestamp offset.
#[derive(Debug, Clone, Copy)]
struct Started {
    first_in: u64,
    first_out: u64,
    time_offset: u32,
}

#[derive(Debug)]
struct LaneModel {
    video: bool,
    base: u64,
    continue_at: Option<u32>,
    started: Option<Started>,
}

/// str0m's extension of a 16-bit sequence number given the previous
/// extended one (`str0m::rtp::RtpHeader::sequence_number`).
fn extend(previous: Option<u64>, seq: u16) -> u64 {
    let seq = u64::from(seq);
    let Some(previous) = previous else {
        return seq;
    };
    let roc = previous >> 16;
    let previous_seq = previous & 0xffff;
    let roc = if previous_seq < 0x8000 {
        if seq > 0x8000 + previous_seq {
            roc.wrapping_sub(1) & (u64::MAX >> 16)
        } else {
            roc
        }
    } else if previous_seq > seq + 0x8000 {
        (roc + 1) & (u64::MAX >> 16)
    } else {
        roc
    };
    (roc << 16) + seq
}

fn peer(subscriber: u8) -> PeerRef {
    PeerRef {
        index: u32::from(subscriber % 4) + 1,
        generation: 0,
    }
}

fn mid(mid: u8) -> str0m::media::Mid {
    ["0", "1"][usize::from(mid % 2)].into()
}

fuzz_target!(|input: Input| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut forwarder = Forwarder::new(
        TrackSid::from_bytes([1; 16]),
        PeerRef {
            index: 0,
            generation: 0,
        },
        "0".into(),
        input.video,
        PublisherCodecs::new(PTS.to_vec()),
    );
    let mut models: HashMap<(PeerRef, str0m::media::Mid), LaneModel> = HashMap::new();
    // Continuations of lanes taken, by m-line: what a new lane there
    // continues from.
    let mut left_off: HashMap<(PeerRef, str0m::media::Mid), Continuation> = HashMap::new();
    let mut wire_seq = input.first_seq;
    let mut max_seq: Option<u64> = None;
    let mut time = 0u32;
    let mut last_request: Option<Instant> = None;

    for step in input.steps {
        match step {
            Step::Packet {
                seq_step,
                time_step,
                pt,
                payload,
            } => {
                if max_seq.is_some() {
                    wire_seq = wire_seq.wrapping_add_signed(seq_step);
                }
                let seq = extend(max_seq, wire_seq);
                // str0m extends from the highest sequence number so far.
                max_seq = Some(max_seq.map_or(seq, |m| m.max(seq)));
                time = time.wrapping_add(time_step);
                let (pt, codec) = PTS
                    .get(usize::from(pt))
                    .copied()
                    .unwrap_or((UNMAPPED_PT, None));
                let meta = forwarder.meta(seq, time, pt, &payload);
                let keyframe = input.video && codec.is_some_and(|c| starts_keyframe(c, &payload));
                assert_eq!(meta.keyframe_start, keyframe);
                for lane in &mut forwarder.lanes {
                    let model = models
                        .get_mut(&(lane.subscriber, lane.mid))
                        .expect("every lane is modelled");
                    let admitted = lane.admit(&meta);
                    check(model, lane, &meta, admitted);
                }
            }
            Step::AddLane {
                subscriber,
                mid: m,
                base,
                pts,
                reuse,
            } => {
                let (subscriber, m) = (peer(subscriber), mid(m));
                // Publisher PT p maps to subscriber PT p + 1.
                let pt_map: Vec<(u8, u8)> = PTS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| pts & (1 << i) != 0)
                    .map(|(_, (p, _))| (*p, p + 1))
                    .collect();
                let from = reuse.then(|| left_off.remove(&(subscriber, m))).flatten();
                let lane = match from {
                    Some(from) => Lane::continuing(subscriber, m, pt_map, input.video, from),
                    None => Lane::new(subscriber, m, pt_map, input.video, base),
                };
                let model = LaneModel {
                    video: input.video,
                    base: from.map_or(u64::from(base), |f| f.seq),
                    continue_at: from.map(|f| f.time),
                    started: None,
                };
                forwarder.add_lane(lane);
                models.insert((subscriber, m), model);
            }
            Step::TakeLane { subscriber, mid: m } => {
                let (subscriber, m) = (peer(subscriber), mid(m));
                let lane = forwarder.take_lane(subscriber, m);
                assert_eq!(lane.is_some(), models.remove(&(subscriber, m)).is_some());
                if let Some(from) = lane.and_then(|l| l.continuation(input.video)) {
                    left_off.insert((subscriber, m), from);
                }
            }
            Step::TakeSubscriber { subscriber } => {
                let subscriber = peer(subscriber);
                for lane in forwarder.take_subscriber(subscriber) {
                    assert_eq!(lane.subscriber, subscriber);
                    assert!(models.remove(&(subscriber, lane.mid)).is_some());
                }
                models.retain(|(s, _), _| *s != subscriber);
            }
            Step::SubscriberWantsKeyframe => forwarder.subscriber_wants_keyframe(),
            Step::Poll { after } => {
                now += Duration::from_millis(u64::from(after));
                if forwarder.poll_keyframe_request(now) {
                    assert!(input.video, "audio never asks for keyframes");
                    if let Some(at) = last_request {
                        assert!(now - at >= KEYFRAME_THROTTLE, "requests throttled");
                    }
                    last_request = Some(now);
                }
            }
        }
        assert_eq!(
            forwarder.lanes.len(),
            models.len(),
            "one lane per subscriber m-line"
        );
    }
});

fn check(
    model: &mut LaneModel,
    lane: &Lane,
    meta: &salon_media::forward::PacketMeta,
    admitted: Option<salon_media::forward::Outgoing>,
) {
    let Some(out) = admitted else {
        return;
    };
    assert!(
        PTS.iter().any(|(p, _)| p + 1 == out.pt) && out.pt == meta.pt + 1,
        "payload type {} mapped to {}",
        meta.pt,
        out.pt
    );
    let started = match model.started {
        None => {
            assert!(
                !model.video || meta.keyframe_start,
                "a video lane starts at a keyframe"
            );
            assert_eq!(out.seq, model.base, "the first packet goes out at the base");
            if let Some(at) = model.continue_at {
                assert_eq!(out.time, at, "a continuing lane rebases its timestamps");
            }
            let started = Started {
                first_in: meta.seq,
                first_out: out.seq,
                time_offset: out.time.wrapping_sub(meta.time),
            };
            model.started = Some(started);
            started
        }
        Some(started) => started,
    };
    assert!(!lane.waiting_for_keyframe());
    assert!(meta.seq >= started.first_in, "nothing older than the start");
    assert_eq!(
        out.seq - started.first_out,
        meta.seq - started.first_in,
        "sequence distances are kept"
    );
    assert!(
        meta.seq <= MAX_INDEX,
        "only SRTP indices (48 bits) are forwarded"
    );
    assert_eq!(out.time, meta.time.wrapping_add(started.time_offset));
}

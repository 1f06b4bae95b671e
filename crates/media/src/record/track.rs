//! From RTP packets to frames: the sans-IO half of a recording.
//!
//! [`Reorder`] puts a track's packets back in sequence order, drops
//! duplicates and packets that arrive after their place was given up, and
//! holds at most its capacity (a ring indexed by sequence number: no
//! allocation per packet). A hole is waited for until the ring is full,
//! then skipped: the loss.
//!
//! [`Assembler`] turns the ordered packets into codec frames: Opus and
//! G.711 packets are frames as they are; VP8 and H.264 packets are
//! depacketized with str0m's depacketizers (RFC 7741, RFC 6184) and joined
//! until the marker bit. A frame with a missing packet is dropped, and video then waits for
//! the next keyframe, so the file never holds a frame its decoder cannot
//! decode. The first frame of a video recording is a keyframe.

use std::time::Instant;

use str0m::format::CodecExtra;
use str0m::unversioned::{Depacketizer, H264Depacketizer, Vp8Depacketizer};

use super::matroska::RecordedCodec;
use crate::keyframe::{VideoCodec, starts_keyframe};

/// One packet of a recorded track, as the recorder keeps it.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Extended sequence number (str0m's).
    pub seq: u64,
    pub rtp_time: u32,
    pub marker: bool,
    /// Shared with the forwarded copies: no payload is copied to hold it.
    pub payload: std::sync::Arc<[u8]>,
    pub arrival: Instant,
}

/// A sequence-number reorder buffer of fixed capacity.
pub struct Reorder {
    slots: Vec<Option<Packet>>,
    /// The next sequence number to release.
    next: Option<u64>,
}

impl Reorder {
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity.max(1)).map(|_| None).collect(),
            next: None,
        }
    }

    fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Forget everything held and the sequence (the stream starts again).
    pub fn reset(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.next = None;
    }

    fn slot(&mut self, seq: u64) -> &mut Option<Packet> {
        let i = (seq % (self.capacity() as u64)) as usize;
        &mut self.slots[i]
    }

    /// Take `packet`; push what is now in order onto `out`.
    pub fn push(&mut self, packet: Packet, out: &mut Vec<Packet>) {
        let next = *self.next.get_or_insert(packet.seq);
        if packet.seq < next {
            return; // late (its place was skipped) or a duplicate
        }
        if packet.seq >= next + (self.capacity() as u64) {
            // Too far ahead to hold: give up the oldest holes.
            self.release_until(packet.seq + 1 - (self.capacity() as u64), out);
        }
        let seq = packet.seq;
        let slot = self.slot(seq);
        if slot.as_ref().is_some_and(|p| p.seq == seq) {
            return; // duplicate
        }
        *slot = Some(packet);
        self.release_ready(out);
    }

    /// Release everything held, in order, skipping holes.
    pub fn flush(&mut self, out: &mut Vec<Packet>) {
        let Some(next) = self.next else {
            return;
        };
        let end = next + (self.capacity() as u64);
        self.release_until(end, out);
    }

    fn release_ready(&mut self, out: &mut Vec<Packet>) {
        while let Some(next) = self.next {
            match self.slot(next).take() {
                Some(p) if p.seq == next => {
                    out.push(p);
                    self.next = Some(next + 1);
                }
                other => {
                    *self.slot(next) = other;
                    break;
                }
            }
        }
    }

    fn release_until(&mut self, until: u64, out: &mut Vec<Packet>) {
        while let Some(next) = self.next {
            if next >= until {
                break;
            }
            if let Some(p) = self.slot(next).take() {
                if p.seq == next {
                    out.push(p);
                }
            }
            self.next = Some(next + 1);
        }
        self.release_ready(out);
    }
}

/// A whole codec frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// RTP time extended past wrap-arounds.
    pub rtp_time: i64,
    pub keyframe: bool,
    pub data: Vec<u8>,
    pub codec: RecordedCodec,
    /// When its last packet arrived.
    pub arrival: Instant,
}

/// Joins ordered packets into frames.
pub struct Assembler {
    codec: RecordedCodec,
    depacketizer: Option<Box<dyn Depacketizer + Send>>,
    /// The frame being joined: its RTP time, whether it started at a
    /// partition head and is a keyframe, and whether a packet went missing.
    current: Option<u32>,
    keyframe: bool,
    broken: bool,
    data: Vec<u8>,
    last_seq: Option<u64>,
    /// Until a keyframe arrives, video frames are dropped.
    waiting_for_keyframe: bool,
    /// RTP time extension.
    last_time: Option<(u32, i64)>,
}

impl Assembler {
    pub fn new(codec: RecordedCodec) -> Self {
        let depacketizer: Option<Box<dyn Depacketizer + Send>> = match codec {
            // One RTP packet, one frame.
            RecordedCodec::Opus | RecordedCodec::Pcmu | RecordedCodec::Pcma => None,
            RecordedCodec::Vp8 => Some(Box::new(Vp8Depacketizer::default())),
            RecordedCodec::H264 => Some(Box::new(H264Depacketizer::default())),
        };
        Self {
            codec,
            depacketizer,
            current: None,
            keyframe: false,
            broken: false,
            data: Vec::new(),
            last_seq: None,
            waiting_for_keyframe: codec.is_video(),
            last_time: None,
        }
    }

    /// The track was muted and media comes again: forget the frame being
    /// joined and the sequence, and (video) wait for a keyframe.
    pub fn resume(&mut self) {
        self.current = None;
        self.data.clear();
        self.broken = false;
        self.last_seq = None;
        self.waiting_for_keyframe = self.codec.is_video();
    }

    /// Whether video is waiting for a keyframe (the publisher should be
    /// asked for one).
    pub fn wants_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    fn extend(&mut self, time: u32) -> i64 {
        let extended = match self.last_time {
            None => i64::from(time),
            Some((last, last_ext)) => last_ext + i64::from(time.wrapping_sub(last) as i32),
        };
        self.last_time = Some((time, extended));
        extended
    }

    /// Take the next packet in sequence order; a frame it completes is
    /// returned.
    pub fn push(&mut self, packet: &Packet) -> Option<Frame> {
        let gap = self.last_seq.is_some_and(|last| packet.seq != last + 1);
        self.last_seq = Some(packet.seq);
        if packet.payload.is_empty() {
            // Padding (a sender probing its bandwidth): no media, and no
            // frame boundary either, whatever its marker says.
            return None;
        }
        let Some(depacketizer) = self.depacketizer.as_mut() else {
            // Opus: one packet, one frame.
            let rtp_time = self.extend(packet.rtp_time);
            return Some(Frame {
                rtp_time,
                keyframe: true,
                data: packet.payload.to_vec(),
                codec: self.codec,
                arrival: packet.arrival,
            });
        };
        if self.current != Some(packet.rtp_time) {
            // A new frame. What was being joined never saw its marker: lost.
            if self.current.is_some() && !self.data.is_empty() {
                self.waiting_for_keyframe = true;
            }
            self.current = Some(packet.rtp_time);
            self.data.clear();
            self.broken = !depacketizer.is_partition_head(&packet.payload);
            self.keyframe = starts_keyframe(video_codec(self.codec), &packet.payload);
        } else if gap {
            self.broken = true;
        }
        if !self.broken {
            let mut extra = CodecExtra::None;
            if depacketizer
                .depacketize(&packet.payload, &mut self.data, &mut extra)
                .is_err()
            {
                self.broken = true;
            }
        }
        if !packet.marker {
            return None;
        }
        self.current = None;
        let data = std::mem::take(&mut self.data);
        if self.broken {
            self.waiting_for_keyframe = true;
            return None;
        }
        if self.waiting_for_keyframe && !self.keyframe {
            return None;
        }
        self.waiting_for_keyframe = false;
        if data.is_empty() {
            return None;
        }
        let rtp_time = self.extend(packet.rtp_time);
        Some(Frame {
            rtp_time,
            keyframe: self.keyframe,
            data,
            codec: self.codec,
            arrival: packet.arrival,
        })
    }
}

fn video_codec(codec: RecordedCodec) -> VideoCodec {
    match codec {
        RecordedCodec::H264 => VideoCodec::H264,
        _ => VideoCodec::Vp8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, rtp_time: u32, marker: bool, payload: &[u8]) -> Packet {
        Packet {
            seq,
            rtp_time,
            marker,
            payload: payload.into(),
            arrival: Instant::now(),
        }
    }

    fn seqs(out: &[Packet]) -> Vec<u64> {
        out.iter().map(|p| p.seq).collect()
    }

    #[test]
    fn packets_come_out_in_order_without_duplicates() {
        let mut r = Reorder::new(8);
        let mut out = Vec::new();
        for seq in [10, 12, 11, 11, 13, 10, 15, 14] {
            r.push(packet(seq, 0, false, &[1]), &mut out);
        }
        assert_eq!(seqs(&out), [10, 11, 12, 13, 14, 15]);
    }

    #[test]
    fn a_hole_is_skipped_once_the_ring_is_full() {
        let mut r = Reorder::new(4);
        let mut out = Vec::new();
        r.push(packet(0, 0, false, &[1]), &mut out);
        for seq in 2..6 {
            r.push(packet(seq, 0, false, &[1]), &mut out);
        }
        assert_eq!(seqs(&out), [0, 2, 3, 4, 5]);
        // The lost packet, arriving after all, is too late.
        r.push(packet(1, 0, false, &[1]), &mut out);
        assert_eq!(seqs(&out), [0, 2, 3, 4, 5]);
    }

    #[test]
    fn flush_releases_what_waits_behind_a_hole() {
        let mut r = Reorder::new(16);
        let mut out = Vec::new();
        r.push(packet(0, 0, false, &[1]), &mut out);
        r.push(packet(2, 0, false, &[1]), &mut out);
        r.push(packet(3, 0, false, &[1]), &mut out);
        assert_eq!(seqs(&out), [0]);
        r.flush(&mut out);
        assert_eq!(seqs(&out), [0, 2, 3]);
    }

    // VP8 payloads: descriptor byte (S=1 on the first packet) + frame bytes.
    const KEY_HEAD: [u8; 4] = [0x10, 0x00, 0x9d, 0x01];
    const DELTA_HEAD: [u8; 3] = [0x10, 0x01, 0x02];
    const MIDDLE: [u8; 3] = [0x00, 0x07, 0x08];

    #[test]
    fn video_starts_at_a_keyframe_and_joins_packets_until_the_marker() {
        let mut a = Assembler::new(RecordedCodec::Vp8);
        assert!(a.wants_keyframe());
        assert_eq!(a.push(&packet(1, 100, true, &DELTA_HEAD)), None);
        assert_eq!(a.push(&packet(2, 200, false, &KEY_HEAD)), None);
        let frame = a.push(&packet(3, 200, true, &MIDDLE)).unwrap();
        assert!(frame.keyframe);
        assert_eq!(frame.data, [0x00, 0x9d, 0x01, 0x07, 0x08]);
        assert!(!a.wants_keyframe());
        let frame = a.push(&packet(4, 300, true, &DELTA_HEAD)).unwrap();
        assert!(!frame.keyframe);
        assert_eq!(frame.rtp_time, 300);
    }

    #[test]
    fn a_frame_missing_a_packet_is_dropped_and_video_waits_for_a_keyframe() {
        let mut a = Assembler::new(RecordedCodec::Vp8);
        a.push(&packet(1, 100, true, &KEY_HEAD)).unwrap();
        assert_eq!(a.push(&packet(2, 200, false, &DELTA_HEAD)), None);
        // Packet 3 was lost.
        assert_eq!(a.push(&packet(4, 200, true, &MIDDLE)), None);
        assert!(a.wants_keyframe());
        assert_eq!(a.push(&packet(5, 300, true, &DELTA_HEAD)), None);
        assert!(a.push(&packet(6, 400, true, &KEY_HEAD)).unwrap().keyframe);
    }

    #[test]
    fn after_a_mute_video_waits_for_a_keyframe_and_the_reorder_ring_starts_again() {
        let mut a = Assembler::new(RecordedCodec::Vp8);
        a.push(&packet(1, 100, true, &KEY_HEAD)).unwrap();
        a.push(&packet(2, 200, true, &DELTA_HEAD)).unwrap();
        a.resume();
        assert!(a.wants_keyframe());
        // Far ahead in sequence and time: deltas wait, a keyframe plays.
        assert_eq!(a.push(&packet(900, 90_200, true, &DELTA_HEAD)), None);
        let frame = a.push(&packet(901, 90_300, true, &KEY_HEAD)).unwrap();
        assert!(frame.keyframe);
        assert_eq!(frame.rtp_time, 90_300);

        let mut r = Reorder::new(4);
        let mut out = Vec::new();
        r.push(packet(10, 0, false, &[1]), &mut out);
        r.push(packet(12, 0, false, &[1]), &mut out);
        r.reset();
        out.clear();
        // A sequence number behind the old one is not "late" after a reset.
        r.push(packet(5, 0, false, &[1]), &mut out);
        assert_eq!(seqs(&out), [5]);
    }

    #[test]
    fn padding_between_frames_is_no_frame_and_no_loss() {
        let mut a = Assembler::new(RecordedCodec::Vp8);
        a.push(&packet(1, 100, true, &KEY_HEAD)).unwrap();
        // Padding-only packets carry the last frame's time, marked or not.
        assert_eq!(a.push(&packet(2, 100, true, &[])), None);
        assert_eq!(a.push(&packet(3, 100, false, &[])), None);
        assert!(!a.wants_keyframe());
        let frame = a.push(&packet(4, 200, true, &DELTA_HEAD)).unwrap();
        assert_eq!(frame.rtp_time, 200);
    }

    #[test]
    fn rtp_time_is_extended_across_the_wrap() {
        let mut a = Assembler::new(RecordedCodec::Opus);
        let first = a.push(&packet(1, u32::MAX - 959, true, &[1])).unwrap();
        let second = a.push(&packet(2, 0, true, &[1])).unwrap();
        assert_eq!(second.rtp_time - first.rtp_time, 960);
    }
}

//! Synthetic media: RTP payloads that look like Opus and VP8 to an SFU and
//! carry a measurement probe in every packet.
//!
//! The client encodes nothing. It sends payloads shaped like real media
//! (sizes, packet counts, frame boundaries, keyframes) so the server does the
//! work it would do for a browser, and so the receiver can measure every
//! packet. The SFU forwards payloads unchanged, so what a subscriber receives
//! is byte for byte what the publisher built here.
//!
//! # Audio ("Opus")
//!
//! One packet per frame, 50 per second (20 ms, RTP clock 48 kHz), each
//! `bitrate / 8 / 50` bytes (100 bytes at the default 40 kbit/s):
//!
//! ```text
//! [probe: 24 bytes][padding]
//! ```
//!
//! # Video ("VP8", RFC 7741)
//!
//! `fps` frames per second (RTP clock 90 kHz). An interframe is
//! `bitrate / 8 / fps` bytes of RTP payload (6250 at the default 1.5 Mbit/s,
//! 30 fps); a keyframe is [`KEYFRAME_SIZE_FACTOR`] times that. A frame is
//! split into packets of at most [`MAX_PACKET_PAYLOAD`] bytes of equal size;
//! the last carries the RTP marker bit. Every packet starts with a 4-byte
//! VP8 payload descriptor:
//!
//! ```text
//! byte 0   0x90 first packet of a frame (X=1, S=1, PID=0), 0x80 the others (X=1)
//! byte 1   0x80 (I=1: a picture ID follows)
//! byte 2-3 M=1 and a 15-bit picture ID, incremented per frame
//! ```
//!
//! The first packet of a frame then carries the VP8 frame header:
//!
//! ```text
//! interframe  3 bytes: frame tag with P=1 (bit 0 of the first byte), show_frame=1
//! keyframe   10 bytes: frame tag with P=0, start code 9d 01 2a, width, height (LE, 640x480,
//!            or a simulcast layer's size)
//! ```
//!
//! and every packet then the probe and padding. A packet starts a keyframe
//! exactly when S=1, PID=0 and bit 0 of the first byte after the descriptor
//! is 0 ([`is_vp8_keyframe`]), which is how the SFU detects keyframes too.
//!
//! # The probe
//!
//! 24 bytes, big-endian, right after the codec headers of every packet:
//!
//! ```text
//! 0..4    magic b"SLN1"
//! 4..8    track index: the position of the track in the publisher's list
//! 8..12   frame number (audio: packet number), counting from 0 per track
//! 12..14  index of this packet within its frame (0 for audio)
//! 14..16  number of packets in the frame (1 for audio)
//! 16..24  send time, microseconds since the UNIX epoch
//! ```
//!
//! Publisher and subscriber on one machine share its clock, so a packet's
//! latency is its arrival time minus its send time.

use std::time::{Duration, Instant};

/// The probe's first four bytes.
pub const PROBE_MAGIC: [u8; 4] = *b"SLN1";
/// Length of the probe.
pub const PROBE_LEN: usize = 24;
/// Largest RTP payload the client writes. With RTP header, extensions and
/// the SRTP tag a datagram stays under str0m's 1150-byte target MTU.
pub const MAX_PACKET_PAYLOAD: usize = 1100;
/// Length of the VP8 payload descriptor the client writes.
pub const VP8_DESCRIPTOR_LEN: usize = 4;
/// Length of a VP8 keyframe header (frame tag, start code, dimensions).
pub const VP8_KEYFRAME_HEADER_LEN: usize = 10;
/// Length of a VP8 interframe header (the frame tag).
pub const VP8_INTERFRAME_HEADER_LEN: usize = 3;
/// How much larger a keyframe is than an interframe.
pub const KEYFRAME_SIZE_FACTOR: usize = 4;
/// A video track sends a keyframe at least this often.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(3);
/// Dimensions written into keyframe headers.
pub const VIDEO_WIDTH: u16 = 640;
pub const VIDEO_HEIGHT: u16 = 480;
/// RTP clock rates: Opus's 48 kHz, and the 90 kHz of every video codec.
pub const AUDIO_CLOCK_RATE: u64 = 48_000;
pub const VIDEO_CLOCK_RATE: u64 = 90_000;

/// The measurement probe every synthetic packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Position of the track in its publisher's list of tracks.
    pub track_index: u32,
    /// Frame number (for audio, the packet number).
    pub frame: u32,
    /// Index of this packet within its frame.
    pub packet_index: u16,
    /// Number of packets of the frame.
    pub packet_count: u16,
    /// When the publisher built the packet, in microseconds since the UNIX epoch.
    pub sent_at_us: u64,
}

impl Probe {
    /// Append the probe's 24 bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROBE_MAGIC);
        out.extend_from_slice(&self.track_index.to_be_bytes());
        out.extend_from_slice(&self.frame.to_be_bytes());
        out.extend_from_slice(&self.packet_index.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.sent_at_us.to_be_bytes());
    }

    /// Read a probe from the start of `bytes`; `None` without the magic.
    pub fn read(bytes: &[u8]) -> Option<Probe> {
        let b = bytes.get(..PROBE_LEN)?;
        if b[..4] != PROBE_MAGIC {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&b[16..24]);
        Some(Probe {
            track_index: u32_at(4),
            frame: u32_at(8),
            packet_index: u16_at(12),
            packet_count: u16_at(14),
            sent_at_us: u64::from_be_bytes(sent),
        })
    }
}

/// The parts of a VP8 payload descriptor (RFC 7741 §4.2) the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// S: this packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index.
    pub partition_index: u8,
    /// The picture ID, 7 or 15 bits, when present.
    pub picture_id: Option<u16>,
    /// Length of the descriptor in bytes; the VP8 payload starts here.
    pub len: usize,
}

impl Vp8Descriptor {
    /// Parse the descriptor at the start of an RTP payload.
    pub fn parse(payload: &[u8]) -> Option<Vp8Descriptor> {
        let first = *payload.first()?;
        let extended = first & 0x80 != 0;
        let start_of_partition = first & 0x10 != 0;
        let partition_index = first & 0x07;
        let mut len = 1;
        let mut picture_id = None;
        if extended {
            let ext = *payload.get(1)?;
            len = 2;
            if ext & 0x80 != 0 {
                // I: picture ID, one byte, or two when its M bit is set.
                let b = *payload.get(len)?;
                if b & 0x80 != 0 {
                    let lo = *payload.get(len + 1)?;
                    picture_id = Some(u16::from(b & 0x7f) << 8 | u16::from(lo));
                    len += 2;
                } else {
                    picture_id = Some(u16::from(b));
                    len += 1;
                }
            }
            if ext & 0x40 != 0 {
                // L: TL0PICIDX.
                len += 1;
            }
            if ext & 0x30 != 0 {
                // T or K: TID/Y/KEYIDX.
                len += 1;
            }
        }
        if payload.len() < len {
            return None;
        }
        Some(Vp8Descriptor {
            start_of_partition,
            partition_index,
            picture_id,
            len,
        })
    }

    /// Whether this packet starts a frame: S=1 and PID=0.
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }
}

/// Whether an RTP payload starts a VP8 keyframe: S=1, PID=0, and bit 0 (P)
/// of the first byte after the descriptor is 0. The SFU uses the same rule.
pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    let Some(d) = Vp8Descriptor::parse(payload) else {
        return false;
    };
    d.starts_frame() && payload.get(d.len).is_some_and(|tag| tag & 0x01 == 0)
}

/// What a receiver reads from one synthetic video packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPacketInfo {
    pub starts_frame: bool,
    pub keyframe: bool,
    /// A keyframe's width and height, from its header.
    pub size: Option<(u16, u16)>,
    pub picture_id: Option<u16>,
    pub probe: Option<Probe>,
}

/// Read a synthetic video packet: descriptor, frame header, probe.
pub fn read_video_packet(payload: &[u8]) -> Option<VideoPacketInfo> {
    let d = Vp8Descriptor::parse(payload)?;
    let starts_frame = d.starts_frame();
    let keyframe = is_vp8_keyframe(payload);
    let header = match (starts_frame, keyframe) {
        (true, true) => VP8_KEYFRAME_HEADER_LEN,
        (true, false) => VP8_INTERFRAME_HEADER_LEN,
        _ => 0,
    };
    let probe = payload.get(d.len + header..).and_then(Probe::read);
    let size = (starts_frame && keyframe)
        .then(|| payload.get(d.len + 6..d.len + 10))
        .flatten()
        .map(|s| {
            (
                u16::from_le_bytes([s[0], s[1]]) & 0x3fff,
                u16::from_le_bytes([s[2], s[3]]) & 0x3fff,
            )
        });
    Some(VideoPacketInfo {
        starts_frame,
        keyframe,
        size,
        picture_id: d.picture_id,
        probe,
    })
}

/// Read a synthetic audio packet's probe.
pub fn read_audio_packet(payload: &[u8]) -> Option<Probe> {
    Probe::read(payload)
}

/// Build one audio packet of `size` bytes (at least [`PROBE_LEN`]).
pub fn audio_packet(track_index: u32, frame: u32, sent_at_us: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(PROBE_LEN));
    Probe {
        track_index,
        frame,
        packet_index: 0,
        packet_count: 1,
        sent_at_us,
    }
    .write_to(&mut out);
    pad(&mut out, size, frame);
    out
}

/// One synthetic video frame to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub keyframe: bool,
    /// RTP payloads in order; the last one gets the marker bit.
    pub packets: Vec<Vec<u8>>,
}

impl VideoFrame {
    /// Total payload bytes.
    pub fn len(&self) -> usize {
        self.packets.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
}

/// Build one video frame of about `frame_bytes` bytes of RTP payload, split
/// into packets of at most [`MAX_PACKET_PAYLOAD`] bytes.
pub fn video_frame(
    track_index: u32,
    frame: u32,
    picture_id: u16,
    keyframe: bool,
    frame_bytes: usize,
    sent_at_us: u64,
) -> VideoFrame {
    sized_video_frame(
        track_index,
        frame,
        picture_id,
        keyframe,
        frame_bytes,
        sent_at_us,
        (VIDEO_WIDTH, VIDEO_HEIGHT),
    )
}

/// [`video_frame`] whose keyframe header says `size` (width, height): a
/// simulcast layer's.
pub fn sized_video_frame(
    track_index: u32,
    frame: u32,
    picture_id: u16,
    keyframe: bool,
    frame_bytes: usize,
    sent_at_us: u64,
    dimensions: (u16, u16),
) -> VideoFrame {
    let header_len = if keyframe {
        VP8_KEYFRAME_HEADER_LEN
    } else {
        VP8_INTERFRAME_HEADER_LEN
    };
    let min_first = VP8_DESCRIPTOR_LEN + header_len + PROBE_LEN;
    let frame_bytes = frame_bytes.max(min_first);
    let count = frame_bytes
        .div_ceil(MAX_PACKET_PAYLOAD)
        .min(usize::from(u16::MAX));
    let base = frame_bytes / count;
    let extra = frame_bytes % count;
    let picture_id = picture_id & 0x7fff;

    let packets = (0..count)
        .map(|i| {
            let size = (base + usize::from(i < extra)).max(if i == 0 {
                min_first
            } else {
                VP8_DESCRIPTOR_LEN + PROBE_LEN
            });
            let mut out = Vec::with_capacity(size);
            // Payload descriptor: X=1, S=1 and PID=0 on the first packet.
            out.push(if i == 0 { 0x90 } else { 0x80 });
            out.push(0x80); // I=1
            out.push(0x80 | (picture_id >> 8) as u8); // M=1, high 7 bits
            out.push(picture_id as u8);
            if i == 0 {
                write_vp8_header(&mut out, keyframe, frame_bytes, dimensions);
            }
            Probe {
                track_index,
                frame,
                packet_index: i as u16,
                packet_count: count as u16,
                sent_at_us,
            }
            .write_to(&mut out);
            pad(&mut out, size, frame);
            out
        })
        .collect();

    VideoFrame { keyframe, packets }
}

/// The VP8 frame header (RFC 6386 §9.1): a 3-byte frame tag, and for
/// keyframes the start code and the dimensions.
fn write_vp8_header(out: &mut Vec<u8>, keyframe: bool, frame_bytes: usize, size: (u16, u16)) {
    // first_part_size is 19 bits; its value means nothing to an SFU.
    let first_part = frame_bytes.min(0x7ffff) as u32;
    let inter = u32::from(!keyframe);
    let show_frame = 1 << 4;
    let tag = inter | show_frame | (first_part << 5);
    out.extend_from_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        out.extend_from_slice(&size.0.to_le_bytes());
        out.extend_from_slice(&size.1.to_le_bytes());
    }
}

/// Fill up to `size` with a byte pattern (not zeros, so nothing on the path
/// can compress it away).
fn pad(out: &mut Vec<u8>, size: usize, seed: u32) {
    let mut v = seed as u8;
    while out.len() < size {
        out.push(v);
        v = v.wrapping_add(1);
    }
}

/// The frame schedule and payload sizes of one published track: when the
/// next frame is due, whether it must be a keyframe, what it looks like.
#[derive(Debug, Clone)]
pub struct FrameClock {
    interval: Duration,
    next_due: Option<Instant>,
    last_keyframe: Option<Instant>,
    keyframe_requested: bool,
}

impl FrameClock {
    pub fn new(fps: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / fps.max(1),
            next_due: None,
            last_keyframe: None,
            keyframe_requested: false,
        }
    }

    /// Time between frames.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the next frame is due; `None` until [`FrameClock::start`].
    pub fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// Start (or restart, after a pause) sending at `now`, with a keyframe.
    pub fn start(&mut self, now: Instant) {
        self.next_due = Some(now);
        self.keyframe_requested = true;
    }

    /// Stop sending until the next [`FrameClock::start`].
    pub fn stop(&mut self) {
        self.next_due = None;
    }

    /// Make the next frame a keyframe.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// If a frame is due at `now`, advance the schedule and say whether the
    /// frame must be a keyframe. A sender that fell behind by more than one
    /// interval skips the missed frames, as an encoder under load would.
    pub fn tick(&mut self, now: Instant) -> Option<bool> {
        let due = self.next_due?;
        if due > now {
            return None;
        }
        let mut next = due + self.interval;
        if next <= now {
            next = now + self.interval;
        }
        self.next_due = Some(next);
        let keyframe = self.keyframe_requested
            || self
                .last_keyframe
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_INTERVAL);
        if keyframe {
            self.keyframe_requested = false;
            self.last_keyframe = Some(now);
        }
        Some(keyframe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_reads_back_what_was_written() {
        let probe = Probe {
            track_index: 3,
            frame: 0xdead_beef,
            packet_index: 2,
            packet_count: 7,
            sent_at_us: 1_700_000_000_123_456,
        };
        let mut bytes = Vec::new();
        probe.write_to(&mut bytes);
        assert_eq!(bytes.len(), PROBE_LEN);
        assert_eq!(&bytes[..4], b"SLN1");
        assert_eq!(Probe::read(&bytes), Some(probe));
        assert_eq!(Probe::read(&bytes[..PROBE_LEN - 1]), None, "short");
        bytes[0] = b'X';
        assert_eq!(Probe::read(&bytes), None, "bad magic");
    }

    #[test]
    fn an_audio_packet_is_the_probe_then_padding() {
        let p = audio_packet(1, 42, 99, 100);
        assert_eq!(p.len(), 100);
        let probe = read_audio_packet(&p).unwrap();
        assert_eq!(
            (probe.track_index, probe.frame, probe.sent_at_us),
            (1, 42, 99)
        );
        assert_eq!((probe.packet_index, probe.packet_count), (0, 1));
        assert_eq!(
            audio_packet(0, 0, 0, 3).len(),
            PROBE_LEN,
            "never shorter than the probe"
        );
    }

    #[test]
    fn a_keyframe_carries_the_descriptor_the_frame_header_and_the_start_code() {
        let f = video_frame(0, 0, 0x1234, true, 25_000, 5);
        assert!(f.keyframe);
        assert_eq!(f.len(), 25_000);
        assert_eq!(f.packets.len(), 23);
        assert!(f.packets.iter().all(|p| p.len() <= MAX_PACKET_PAYLOAD));

        let first = &f.packets[0];
        assert_eq!(&first[..4], &[0x90, 0x80, 0x80 | 0x12, 0x34]);
        assert_eq!(first[4] & 1, 0, "P=0 for a keyframe");
        assert_eq!(&first[7..10], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([first[10], first[11]]), 640);
        assert_eq!(u16::from_le_bytes([first[12], first[13]]), 480);
        assert!(is_vp8_keyframe(first));

        for (i, p) in f.packets.iter().enumerate().skip(1) {
            assert_eq!(&p[..4], &[0x80, 0x80, 0x92, 0x34], "packet {i}");
            assert!(
                !is_vp8_keyframe(p),
                "only the first packet starts the keyframe"
            );
            let info = read_video_packet(p).unwrap();
            assert!(!info.starts_frame);
            assert_eq!(info.probe.unwrap().packet_index, i as u16);
        }
        let info = read_video_packet(first).unwrap();
        assert!(info.starts_frame && info.keyframe);
        assert_eq!(info.picture_id, Some(0x1234));
        let probe = info.probe.unwrap();
        assert_eq!(
            (probe.packet_index, probe.packet_count, probe.sent_at_us),
            (0, 23, 5)
        );
    }

    #[test]
    fn an_interframe_has_p_set_and_no_start_code() {
        let f = video_frame(2, 7, 9, false, 6250, 1);
        assert_eq!(f.len(), 6250);
        assert_eq!(f.packets.len(), 6);
        let first = &f.packets[0];
        assert_eq!(first[0], 0x90);
        assert_eq!(first[4] & 1, 1, "P=1 for an interframe");
        assert!(!is_vp8_keyframe(first));
        let info = read_video_packet(first).unwrap();
        assert!(info.starts_frame && !info.keyframe);
        let probe = info.probe.unwrap();
        assert_eq!((probe.track_index, probe.frame), (2, 7));
    }

    #[test]
    fn a_tiny_frame_is_one_packet_with_everything_in_it() {
        let f = video_frame(0, 0, 0, true, 1, 0);
        assert_eq!(f.packets.len(), 1);
        assert_eq!(
            f.len(),
            VP8_DESCRIPTOR_LEN + VP8_KEYFRAME_HEADER_LEN + PROBE_LEN
        );
        assert!(read_video_packet(&f.packets[0]).unwrap().probe.is_some());
    }

    #[test]
    fn picture_ids_wrap_at_15_bits() {
        let f = video_frame(0, 0, 0x8001, false, 100, 0);
        assert_eq!(
            read_video_packet(&f.packets[0]).unwrap().picture_id,
            Some(1)
        );
    }

    #[test]
    fn descriptors_from_other_senders_parse_too() {
        // X=1 with I (7-bit picture ID), L and T/K present: 5 bytes.
        let p = [0x90, 0xf0, 0x05, 0x11, 0x22, 0x00];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!((d.len, d.picture_id), (5, Some(5)));
        assert!(is_vp8_keyframe(&p));
        // No extension at all: 1 byte.
        let d = Vp8Descriptor::parse(&[0x10, 0x01]).unwrap();
        assert_eq!(d.len, 1);
        assert!(!is_vp8_keyframe(&[0x10, 0x01]));
        // PID != 0 never starts a keyframe.
        assert!(!is_vp8_keyframe(&[0x11, 0x00]));
        // Truncated descriptors are refused, not panicked on.
        assert_eq!(Vp8Descriptor::parse(&[0x90, 0x80, 0x80]), None);
        assert_eq!(Vp8Descriptor::parse(&[]), None);
        assert!(!is_vp8_keyframe(&[0x90, 0x80, 0x80, 0x01]));
    }

    #[test]
    fn the_frame_clock_starts_with_a_keyframe_and_repeats_one_every_three_seconds() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(30);
        assert_eq!(clock.tick(t0), None, "not started");
        clock.start(t0);
        let mut keyframes = Vec::new();
        let mut frames = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(7) {
            if let Some(key) = clock.tick(now) {
                frames += 1;
                if key {
                    keyframes.push(now - t0);
                }
            }
            now += Duration::from_millis(1);
        }
        assert!((209..=211).contains(&frames), "{frames} frames in 7 s");
        assert_eq!(keyframes.len(), 3, "{keyframes:?}");
        assert_eq!(keyframes[0], Duration::ZERO);
    }

    #[test]
    fn a_keyframe_request_makes_the_next_frame_a_keyframe() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(10);
        clock.start(t0);
        assert_eq!(clock.tick(t0), Some(true));
        assert_eq!(clock.tick(t0 + Duration::from_millis(100)), Some(false));
        clock.request_keyframe();
        assert_eq!(
            clock.tick(t0 + Duration::from_millis(150)),
            None,
            "not due yet"
        );
        assert_eq!(clock.tick(t0 + Duration::from_millis(200)), Some(true));
    }

    #[test]
    fn a_late_sender_skips_frames_instead_of_bursting() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(10);
        clock.start(t0);
        assert!(clock.tick(t0).is_some());
        // A second late: one frame now, the next one interval later.
        let late = t0 + Duration::from_secs(1);
        assert!(clock.tick(late).is_some());
        assert_eq!(clock.tick(late), None);
        assert_eq!(clock.next_due(), Some(late + Duration::from_millis(100)));
    }
}

//! A Matroska writer for one track: the few EBML elements a player needs.
//!
//! Layout of a file (Matroska v4, RFC 9559):
//!
//! ```text
//! EBML header   DocType "matroska" (Opus: .mka; H.264: .mkv) or "webm" (VP8)
//! Segment       size patched on finish
//!   SeekHead    written on finish over a reserved Void: where Info, Tracks
//!               and Cues are
//!   Info        TimestampScale 1 ms, Duration (patched on finish)
//!   Tracks      one TrackEntry: A_OPUS (+ OpusHead), V_VP8 or V_MPEG4/ISO/AVC
//!   Cluster*    Timestamp + SimpleBlocks; a new one at each video keyframe,
//!               after 5 s, or when a block's offset would overflow 16 bits
//!   Cues        on finish: a CuePoint per cluster that starts at a keyframe
//!               (every cluster of audio), so players seek without scanning
//! ```
//!
//! Why our own: the crates that write Matroska either wrap libwebm's C++
//! muxer (WebM codecs only, no H.264) or only read. What a per-track
//! recording needs is a header, blocks and two patched numbers; the code
//! below is all of it. Clusters are built in memory (at most 5 s of one
//! track) and written whole, so each has an exact size and the file is
//! readable up to its last complete cluster even if the process dies.

use std::io::{self, Seek, SeekFrom, Write};

/// The codec of a recorded track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedCodec {
    Opus,
    /// G.711 μ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    Vp8,
    H264,
}

impl RecordedCodec {
    /// Twilio's `codec` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordedCodec::Opus => "opus",
            RecordedCodec::Pcmu => "PCMU",
            RecordedCodec::Pcma => "PCMA",
            RecordedCodec::Vp8 => "VP8",
            RecordedCodec::H264 => "H264",
        }
    }

    /// Twilio's `container_format`: `mka` for audio, `mkv` for video.
    pub const fn container(self) -> &'static str {
        if self.is_video() { "mkv" } else { "mka" }
    }

    pub const fn is_video(self) -> bool {
        matches!(self, RecordedCodec::Vp8 | RecordedCodec::H264)
    }

    /// RTP clock rate.
    pub const fn clock_rate(self) -> u64 {
        match self {
            RecordedCodec::Opus => 48_000,
            RecordedCodec::Pcmu | RecordedCodec::Pcma => 8_000,
            RecordedCodec::Vp8 | RecordedCodec::H264 => 90_000,
        }
    }
}

/// Longest cluster, in milliseconds.
const CLUSTER_SPAN_MS: i64 = 5_000;

// Element IDs (RFC 9559 §5.1).
const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const BIT_DEPTH: u32 = 0x6264;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const VOID: u32 = 0xEC;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const CUES: u32 = 0x1C53_BB6B;
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_TRACK: u32 = 0xF7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;

/// Bytes reserved after the Segment's start for the SeekHead (three Seek
/// entries need at most 72).
const SEEK_HEAD_SPACE: usize = 96;
/// Most cue points kept (one per cluster: days of media); later clusters
/// are found by scanning.
const MAX_CUES: usize = 100_000;

/// What the track header says beyond the codec.
#[derive(Debug, Clone, Default)]
pub struct TrackHeader {
    pub width: u16,
    pub height: u16,
    /// `CodecPrivate` for H.264 (an `avcC` record); Opus's is built here.
    pub codec_private: Vec<u8>,
}

/// Writes one track's frames into a Matroska file.
pub struct MatroskaWriter<W: Write + Seek> {
    out: W,
    codec: RecordedCodec,
    /// File offset of the Segment's size field, and of its first child.
    segment_size_at: u64,
    segment_data_at: u64,
    /// File offset of the Duration value (an 8-byte float).
    duration_at: u64,
    /// File offset of the space reserved for the SeekHead, and the
    /// Segment-relative positions of Info and Tracks.
    seek_head_at: u64,
    info_position: u64,
    tracks_position: u64,
    /// (time ms, Segment-relative position) of clusters that start at a
    /// keyframe.
    cues: Vec<(i64, u64)>,
    cluster: Vec<u8>,
    cluster_start: Option<i64>,
    /// Whether the open cluster starts with a keyframe.
    cluster_keyed: bool,
    last_ms: i64,
    /// Typical frame spacing, added to the last block's time for the
    /// duration.
    frame_ms: i64,
    written: u64,
}

impl<W: Write + Seek> MatroskaWriter<W> {
    /// Write the file's header for `codec` and `header`.
    pub fn new(mut out: W, codec: RecordedCodec, header: &TrackHeader) -> io::Result<Self> {
        let mut head = Vec::with_capacity(256);
        let doc_type = match codec {
            RecordedCodec::Vp8 => "webm",
            _ => "matroska",
        };
        let mut ebml = Vec::new();
        uint(&mut ebml, EBML_VERSION, 1);
        uint(&mut ebml, EBML_READ_VERSION, 1);
        uint(&mut ebml, EBML_MAX_ID_LENGTH, 4);
        uint(&mut ebml, EBML_MAX_SIZE_LENGTH, 8);
        bytes(&mut ebml, DOC_TYPE, doc_type.as_bytes());
        uint(&mut ebml, DOC_TYPE_VERSION, 4);
        uint(&mut ebml, DOC_TYPE_READ_VERSION, 2);
        bytes(&mut head, EBML, &ebml);

        id(&mut head, SEGMENT);
        let segment_size_at = head.len() as u64;
        head.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        let segment_data_at = head.len() as u64;
        let seek_head_at = head.len() as u64;
        void(&mut head, SEEK_HEAD_SPACE);
        let info_position = head.len() as u64 - segment_data_at;

        let mut info = Vec::new();
        uint(&mut info, TIMESTAMP_SCALE, 1_000_000);
        bytes(&mut info, MUXING_APP, b"salon");
        bytes(&mut info, WRITING_APP, b"salon");
        id(&mut info, DURATION);
        size(&mut info, 8);
        let duration_in_info = info.len();
        info.extend_from_slice(&0f64.to_be_bytes());
        id(&mut head, INFO);
        size(&mut head, info.len() as u64);
        let duration_at = (head.len() + duration_in_info) as u64;
        head.extend_from_slice(&info);

        let mut entry = Vec::new();
        uint(&mut entry, TRACK_NUMBER, 1);
        uint(&mut entry, TRACK_UID, 1);
        uint(&mut entry, TRACK_TYPE, if codec.is_video() { 1 } else { 2 });
        uint(&mut entry, FLAG_LACING, 0);
        match codec {
            RecordedCodec::Opus => {
                bytes(&mut entry, CODEC_ID, b"A_OPUS");
                bytes(&mut entry, CODEC_PRIVATE, &opus_head());
                uint(&mut entry, SEEK_PRE_ROLL, 80_000_000);
                let mut audio = Vec::new();
                float(&mut audio, SAMPLING_FREQUENCY, 48_000.0);
                uint(&mut audio, CHANNELS, 2);
                bytes(&mut entry, AUDIO, &audio);
            }
            RecordedCodec::Pcmu | RecordedCodec::Pcma => {
                // Matroska has no codec ID of its own for G.711: it is
                // `A_MS/ACM` with a WAVEFORMATEX naming the format, as
                // ffmpeg and mkvmerge write it.
                bytes(&mut entry, CODEC_ID, b"A_MS/ACM");
                bytes(&mut entry, CODEC_PRIVATE, &g711_wave_format(codec));
                let mut audio = Vec::new();
                float(&mut audio, SAMPLING_FREQUENCY, 8_000.0);
                uint(&mut audio, CHANNELS, 1);
                uint(&mut audio, BIT_DEPTH, 8);
                bytes(&mut entry, AUDIO, &audio);
            }
            RecordedCodec::Vp8 | RecordedCodec::H264 => {
                if codec == RecordedCodec::Vp8 {
                    bytes(&mut entry, CODEC_ID, b"V_VP8");
                } else {
                    bytes(&mut entry, CODEC_ID, b"V_MPEG4/ISO/AVC");
                    bytes(&mut entry, CODEC_PRIVATE, &header.codec_private);
                }
                let mut video = Vec::new();
                uint(&mut video, PIXEL_WIDTH, u64::from(header.width));
                uint(&mut video, PIXEL_HEIGHT, u64::from(header.height));
                bytes(&mut entry, VIDEO, &video);
            }
        }
        let mut tracks = Vec::new();
        bytes(&mut tracks, TRACK_ENTRY, &entry);
        let tracks_position = head.len() as u64 - segment_data_at;
        bytes(&mut head, TRACKS, &tracks);

        out.write_all(&head)?;
        Ok(Self {
            out,
            codec,
            segment_size_at,
            segment_data_at,
            duration_at,
            seek_head_at,
            info_position,
            tracks_position,
            cues: Vec::new(),
            cluster: Vec::with_capacity(64 * 1024),
            cluster_start: None,
            cluster_keyed: false,
            last_ms: 0,
            frame_ms: if codec.is_video() { 33 } else { 20 },
            written: head.len() as u64,
        })
    }

    /// Add a frame at `ms` milliseconds from the start of the recording.
    /// Times must increase: a frame at or before the previous frame's time
    /// (a sender's clock that stood still or went back, or two frames
    /// within one millisecond) is placed 1 ms after it, since two blocks
    /// at one time are not valid to demuxers (ffmpeg: "non monotonically
    /// increasing dts").
    pub fn frame(&mut self, ms: i64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        let ms = match self.cluster_start {
            None => ms.max(0),
            Some(_) => ms.max(self.last_ms + 1),
        };
        let starts_cluster = match self.cluster_start {
            None => true,
            Some(start) => {
                (self.codec.is_video() && keyframe)
                    || ms - start >= CLUSTER_SPAN_MS
                    || ms - start > i64::from(i16::MAX)
            }
        };
        if starts_cluster {
            self.flush_cluster()?;
            self.cluster_start = Some(ms);
            self.cluster_keyed = keyframe;
            uint(&mut self.cluster, CLUSTER_TIMESTAMP, ms as u64);
        }
        let relative = (ms - self.cluster_start.unwrap_or(ms)) as i16;
        if ms > self.last_ms && self.codec.is_video() {
            // Video frame spacing varies; keep the last one seen.
            self.frame_ms = (ms - self.last_ms).min(1_000);
        }
        self.last_ms = ms;
        id(&mut self.cluster, SIMPLE_BLOCK);
        size(&mut self.cluster, 4 + data.len() as u64);
        self.cluster.push(0x81); // track number 1 as a 1-byte vint
        self.cluster.extend_from_slice(&relative.to_be_bytes());
        self.cluster.push(if keyframe { 0x80 } else { 0x00 });
        self.cluster.extend_from_slice(data);
        Ok(())
    }

    /// Bytes written to the file so far (the open cluster not included).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes buffered in the open cluster.
    pub fn buffered(&self) -> usize {
        self.cluster.len()
    }

    fn flush_cluster(&mut self) -> io::Result<()> {
        if self.cluster.is_empty() {
            return Ok(());
        }
        if self.cluster_keyed
            && self.cues.len() < MAX_CUES
            && let Some(start) = self.cluster_start
        {
            self.cues.push((start, self.written - self.segment_data_at));
        }
        let mut head = Vec::with_capacity(12);
        id(&mut head, CLUSTER);
        size(&mut head, self.cluster.len() as u64);
        self.out.write_all(&head)?;
        self.out.write_all(&self.cluster)?;
        self.written += (head.len() + self.cluster.len()) as u64;
        self.cluster.clear();
        Ok(())
    }

    /// Write the last cluster and patch the sizes. Returns the duration in
    /// milliseconds and the file's size.
    pub fn finish(mut self) -> io::Result<(u64, u64)> {
        self.flush_cluster()?;
        let duration = if self.cluster_start.is_some() {
            self.last_ms + self.frame_ms
        } else {
            0
        };
        let mut seeks = vec![(INFO, self.info_position), (TRACKS, self.tracks_position)];
        if !self.cues.is_empty() {
            let mut points = Vec::with_capacity(self.cues.len() * 16);
            for &(time, position) in &self.cues {
                let mut positions = Vec::with_capacity(12);
                uint(&mut positions, CUE_TRACK, 1);
                uint(&mut positions, CUE_CLUSTER_POSITION, position);
                let mut point = Vec::with_capacity(24);
                uint(&mut point, CUE_TIME, time.max(0) as u64);
                bytes(&mut point, CUE_TRACK_POSITIONS, &positions);
                bytes(&mut points, CUE_POINT, &point);
            }
            let mut cues = Vec::with_capacity(points.len() + 12);
            bytes(&mut cues, CUES, &points);
            seeks.push((CUES, self.written - self.segment_data_at));
            self.out.write_all(&cues)?;
            self.written += cues.len() as u64;
        }
        let mut entries = Vec::with_capacity(SEEK_HEAD_SPACE);
        for (element, position) in seeks {
            let mut seek = Vec::with_capacity(24);
            let mut element_id = Vec::with_capacity(4);
            id(&mut element_id, element);
            bytes(&mut seek, SEEK_ID, &element_id);
            uint(&mut seek, SEEK_POSITION, position);
            bytes(&mut entries, SEEK, &seek);
        }
        let mut seek_head = Vec::with_capacity(SEEK_HEAD_SPACE);
        bytes(&mut seek_head, SEEK_HEAD, &entries);
        if seek_head.len() + 2 <= SEEK_HEAD_SPACE {
            let padding = SEEK_HEAD_SPACE - seek_head.len();
            void(&mut seek_head, padding);
            self.out.seek(SeekFrom::Start(self.seek_head_at))?;
            self.out.write_all(&seek_head)?;
        }
        let segment_size = self.written - self.segment_data_at;
        self.out.seek(SeekFrom::Start(self.segment_size_at))?;
        let mut field = segment_size.to_be_bytes();
        field[0] = 0x01; // an 8-byte vint: 0x01 then 56 bits of size
        self.out.write_all(&field)?;
        self.out.seek(SeekFrom::Start(self.duration_at))?;
        self.out.write_all(&(duration as f64).to_be_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok((duration as u64, self.written))
    }
}

/// Opus's identification header (RFC 7845 §5.1), Matroska's `CodecPrivate`
/// for `A_OPUS`: WebRTC's Opus is 48 kHz stereo-capable.
fn opus_head() -> [u8; 19] {
    let mut head = [0u8; 19];
    head[..8].copy_from_slice(b"OpusHead");
    head[8] = 1; // version
    head[9] = 2; // channels
    head[10..12].copy_from_slice(&0u16.to_le_bytes()); // pre-skip
    head[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    head
}

/// The WAVEFORMATEX (little-endian, 18 bytes) of 8 kHz mono G.711:
/// format tag 7 (μ-law) or 6 (A-law), one byte per sample.
fn g711_wave_format(codec: RecordedCodec) -> [u8; 18] {
    let tag: u16 = if codec == RecordedCodec::Pcma { 6 } else { 7 };
    let mut format = [0u8; 18];
    format[0..2].copy_from_slice(&tag.to_le_bytes());
    format[2..4].copy_from_slice(&1u16.to_le_bytes()); // channels
    format[4..8].copy_from_slice(&8_000u32.to_le_bytes()); // samples per second
    format[8..12].copy_from_slice(&8_000u32.to_le_bytes()); // bytes per second
    format[12..14].copy_from_slice(&1u16.to_le_bytes()); // block align
    format[14..16].copy_from_slice(&8u16.to_le_bytes()); // bits per sample
    // cbSize (16..18): no extra bytes.
    format
}

/// A Void element of exactly `total` bytes (at least 2, at most 129).
fn void(out: &mut Vec<u8>, total: usize) {
    id(out, VOID);
    let content = total.saturating_sub(2);
    size(out, content as u64);
    out.resize(out.len() + content, 0);
}

fn id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// An element size as the shortest EBML variable-length integer.
fn size(out: &mut Vec<u8>, n: u64) {
    // A length of k bytes holds 7k bits; all-ones is reserved (unknown).
    for k in 1..=8u32 {
        if n < (1u64 << (7 * k)) - 1 {
            let marked = n | (1u64 << (7 * k));
            out.extend_from_slice(&marked.to_be_bytes()[(8 - k as usize)..]);
            return;
        }
    }
    out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]);
}

fn uint(out: &mut Vec<u8>, element: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    id(out, element);
    size(out, (8 - skip) as u64);
    out.extend_from_slice(&bytes[skip..]);
}

fn float(out: &mut Vec<u8>, element: u32, value: f64) {
    id(out, element);
    size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

fn bytes(out: &mut Vec<u8>, element: u32, value: &[u8]) {
    id(out, element);
    size(out, value.len() as u64);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn sizes_are_the_shortest_vint() {
        let mut out = Vec::new();
        size(&mut out, 5);
        assert_eq!(out, [0x85]);
        out.clear();
        size(&mut out, 200);
        assert_eq!(out, [0x40, 200]);
        out.clear();
        size(&mut out, 126);
        assert_eq!(out, [0xFE]);
        out.clear();
        size(&mut out, 127);
        assert_eq!(out, [0x40, 127]);
    }

    #[test]
    fn g711_is_a_ms_acm_track_with_its_wave_format() {
        let mut file = Cursor::new(Vec::new());
        let w =
            MatroskaWriter::new(&mut file, RecordedCodec::Pcmu, &TrackHeader::default()).unwrap();
        w.finish().unwrap();
        let bytes = file.into_inner();
        let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
        assert!(find(b"A_MS/ACM").is_some());
        // CodecPrivate, 18 bytes: μ-law, mono, 8000 Hz, 8000 B/s, align 1, 8 bits.
        let private = [
            0x63, 0xA2, 0x92, 7, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x40, 0x1F, 0, 0, 1, 0, 8, 0, 0, 0,
        ];
        assert!(find(&private).is_some(), "no WAVEFORMATEX for μ-law");
        assert_eq!(g711_wave_format(RecordedCodec::Pcma)[0], 6);
        // BitDepth 8, Channels 1.
        assert!(find(&[0x62, 0x64, 0x81, 8]).is_some());
        assert!(find(&[0x9F, 0x81, 1]).is_some());
        assert_eq!(RecordedCodec::Pcmu.container(), "mka");
        assert_eq!(RecordedCodec::Pcmu.clock_rate(), 8_000);
    }

    #[test]
    fn a_finished_file_has_its_segment_size_and_duration_patched() {
        let mut file = Cursor::new(Vec::new());
        let mut w =
            MatroskaWriter::new(&mut file, RecordedCodec::Opus, &TrackHeader::default()).unwrap();
        for i in 0..100 {
            w.frame(i * 20, true, &[0xfc, 1, 2, 3]).unwrap();
        }
        let (segment_size_at, segment_data_at, duration_at) = (
            w.segment_size_at as usize,
            w.segment_data_at,
            w.duration_at as usize,
        );
        let (duration, size) = w.finish().unwrap();
        assert_eq!(duration, 2_000);
        let file = file.into_inner();
        assert_eq!(file.len() as u64, size);
        assert_eq!(&file[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
        let mut field = [0u8; 8];
        field.copy_from_slice(&file[segment_size_at..segment_size_at + 8]);
        assert_eq!(field[0], 0x01);
        field[0] = 0;
        assert_eq!(u64::from_be_bytes(field), size - segment_data_at);
        let mut d = [0u8; 8];
        d.copy_from_slice(&file[duration_at..duration_at + 8]);
        assert_eq!(f64::from_be_bytes(d), 2_000.0);
    }

    #[test]
    fn frame_times_always_increase() {
        let mut file = Cursor::new(Vec::new());
        let mut w =
            MatroskaWriter::new(&mut file, RecordedCodec::Opus, &TrackHeader::default()).unwrap();
        let mut placed = Vec::new();
        for ms in [-5, 0, 20, 20, 10, 40, 41] {
            w.frame(ms, true, &[0xfc]).unwrap();
            placed.push(w.last_ms);
        }
        assert_eq!(placed, [0, 1, 20, 21, 22, 40, 41]);
    }

    /// The Segment-relative position a SeekHead entry gives `element`.
    fn seek_position(file: &[u8], seek_head_at: usize, element: &[u8]) -> Option<u64> {
        let head = &file[seek_head_at..seek_head_at + SEEK_HEAD_SPACE];
        let mut pattern = vec![0x53, 0xAB, 0x80 | element.len() as u8];
        pattern.extend_from_slice(element);
        let at = head.windows(pattern.len()).position(|w| w == pattern)? + pattern.len();
        assert_eq!(&head[at..at + 2], &[0x53, 0xAC]);
        let len = usize::from(head[at + 2] & 0x7f);
        Some(
            head[at + 3..at + 3 + len]
                .iter()
                .fold(0u64, |n, b| n << 8 | u64::from(*b)),
        )
    }

    #[test]
    fn the_seek_head_points_at_info_tracks_and_cues_of_each_keyframe_cluster() {
        let mut file = Cursor::new(Vec::new());
        let mut w = MatroskaWriter::new(
            &mut file,
            RecordedCodec::Vp8,
            &TrackHeader {
                width: 320,
                height: 240,
                codec_private: Vec::new(),
            },
        )
        .unwrap();
        let (seek_head_at, data_at) = (w.seek_head_at as usize, w.segment_data_at as usize);
        // Keyframes at 0 and 2 s: two keyed clusters (and one more at 5 s
        // of the second, which starts with a delta frame and gets no cue).
        for i in 0..300 {
            w.frame(i * 33, i == 0 || i == 60, &[0x10, 0x02]).unwrap();
        }
        w.finish().unwrap();
        let file = file.into_inner();
        assert_eq!(
            &file[seek_head_at..seek_head_at + 4],
            &[0x11, 0x4D, 0x9B, 0x74]
        );
        for (element, id) in [
            (&[0x15u8, 0x49, 0xA9, 0x66][..], INFO),
            (&[0x16, 0x54, 0xAE, 0x6B], TRACKS),
        ] {
            let at = data_at + seek_position(&file, seek_head_at, element).unwrap() as usize;
            assert_eq!(&file[at..at + 4], &id.to_be_bytes());
        }
        let cues = data_at
            + seek_position(&file, seek_head_at, &[0x1C, 0x53, 0xBB, 0x6B]).unwrap() as usize;
        assert_eq!(&file[cues..cues + 4], &[0x1C, 0x53, 0xBB, 0x6B]);
        // Two cue points (0xBB), each pointing at a Cluster.
        let points: Vec<usize> = file[cues..]
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == 0xF1)
            .map(|(i, _)| cues + i)
            .collect();
        assert_eq!(points.len(), 2, "cue cluster positions");
        for p in points {
            let len = usize::from(file[p + 1] & 0x7f);
            let position = file[p + 2..p + 2 + len]
                .iter()
                .fold(0usize, |n, b| n << 8 | usize::from(*b));
            assert_eq!(
                &file[data_at + position..data_at + position + 4],
                &[0x1F, 0x43, 0xB6, 0x75]
            );
        }
    }
}

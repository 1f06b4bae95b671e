//! Per-track recordings, written as the worker forwards.
//!
//! The control plane decides what is recorded ([`crate::Media::record`],
//! [`crate::Media::stop_recording`]); the worker hands each RTP packet of
//! a recorded track to [`Recorders::packet`] (one call in its forwarding
//! loop). On the worker thread a recording reorders and joins packets
//! into frames ([`track`]); the frames go over a bounded channel to the
//! recording's own writer thread, which writes Matroska ([`matroska`]).
//! Nothing on the packet path waits for a disk: a writer that falls
//! behind fills its channel, and the recording fails (`recording-failed`)
//! while the room goes on. A write error (a full disk) fails it the same
//! way.
//!
//! Costs on the worker thread: a track nobody records costs one check of
//! an empty list per forwarded packet. A recorded packet costs a copy of
//! its payload's reference (`Arc`, no copy) into the reorder ring, and each
//! frame one allocation and one channel send.
//!
//! Each recording reports [`RecordingEvent`]s: `Started` when its first
//! frame is written (video: a keyframe), then exactly one of `Completed`
//! or `Failed`.

pub mod matroska;
pub mod track;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use salon_sid::{RecordingSid, RoomSid, TrackSid};
use str0m::rtp::{RtpPacket, Ssrc};
use tokio::sync::mpsc;

use crate::{MediaEvent, MediaKind};
pub use matroska::RecordedCodec;
use matroska::{MatroskaWriter, TrackHeader};
use track::{Assembler, Frame, Packet, Reorder};

/// Frames queued for a writer before the recording counts as fallen behind.
const WRITER_QUEUE: usize = 1024;
/// Packets held for reordering: about a second of audio, a third of a
/// second of HD video.
const AUDIO_REORDER: usize = 64;
const VIDEO_REORDER: usize = 512;

/// What to record, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    pub recording: RecordingSid,
    pub room: RoomSid,
    pub track: TrackSid,
    pub kind: MediaKind,
    /// The file to write (its directory is created).
    pub path: PathBuf,
}

/// What a recording reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingEvent {
    /// The first frame is written; `at` is when it arrived.
    Started {
        recording: RecordingSid,
        codec: RecordedCodec,
        at: SystemTime,
    },
    /// The file is complete.
    Completed {
        recording: RecordingSid,
        duration: Duration,
        size: u64,
    },
    /// The recording stopped early; what was written stays in the file
    /// (playable up to its last complete cluster), unless nothing was.
    Failed {
        recording: RecordingSid,
        reason: String,
    },
}

// A recording's state, shared by the worker and its writer.
const RUNNING: u8 = 0;
/// Stopped normally: the writer finishes the file.
const STOPPING: u8 = 1;
/// The worker gave up on the writer (its queue was full).
const OVERRUN: u8 = 2;
/// The track's codec cannot be recorded.
const UNSUPPORTED: u8 = 3;

/// One track being recorded, as the worker sees it.
struct Recorder {
    spec: RecordSpec,
    /// The stream recorded: the first SSRC seen (with simulcast, one layer).
    ssrc: Option<Ssrc>,
    reorder: Reorder,
    assembler: Option<Assembler>,
    frames: Sender<Frame>,
    state: Arc<AtomicU8>,
    released: Vec<Packet>,
    /// Whether the assembler was waiting for a keyframe after the last packet.
    was_waiting: bool,
    /// The publisher muted the track: its packets are left out.
    paused: bool,
}

/// The recordings of one worker's tracks.
#[derive(Default)]
pub struct Recorders {
    active: Vec<Recorder>,
}

impl Recorders {
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Whether `track` is being recorded (it keeps its largest layer).
    pub fn records(&self, track: TrackSid) -> bool {
        self.active.iter().any(|r| r.spec.track == track)
    }

    /// Start recording `spec.track`: spawn its writer.
    pub fn start(&mut self, spec: RecordSpec, events: &mpsc::UnboundedSender<MediaEvent>) {
        if self.active.iter().any(|r| r.spec.track == spec.track) {
            return;
        }
        let (frames, queue) = crossbeam_channel::bounded(WRITER_QUEUE);
        let state = Arc::new(AtomicU8::new(RUNNING));
        let writer = Writer {
            recording: spec.recording,
            path: spec.path.clone(),
            codec: None,
            queue,
            state: state.clone(),
            events: events.clone(),
            anchor: (Instant::now(), SystemTime::now()),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("salon-rec-{}", &spec.recording.as_str()[2..10]))
            .spawn(move || writer.run());
        if let Err(e) = spawned {
            let _ = events.send(MediaEvent::Recording(RecordingEvent::Failed {
                recording: spec.recording,
                reason: format!("could not start the writer: {e}"),
            }));
            return;
        }
        let reorder = Reorder::new(match spec.kind {
            MediaKind::Audio => AUDIO_REORDER,
            MediaKind::Video => VIDEO_REORDER,
        });
        self.active.push(Recorder {
            spec,
            ssrc: None,
            reorder,
            assembler: None,
            frames,
            state,
            released: Vec::new(),
            was_waiting: false,
            paused: false,
        });
    }

    /// Stop recording `track`: the writer finishes the file.
    pub fn stop(&mut self, track: TrackSid) {
        self.active.retain_mut(|r| {
            if r.spec.track != track {
                return true;
            }
            r.finish();
            false
        });
    }

    /// Leave `track`'s media out while `paused` (a mute): what the
    /// reorder ring holds is written first, and after the mute video waits
    /// for a keyframe (the next packet asks for one).
    pub fn pause(&mut self, track: TrackSid, paused: bool) {
        let Some(at) = self.active.iter().position(|r| r.spec.track == track) else {
            return;
        };
        let recorder = &mut self.active[at];
        if recorder.paused == paused {
            return;
        }
        recorder.paused = paused;
        if paused {
            if recorder.release_all().is_err() {
                self.active.swap_remove(at);
            }
        } else {
            recorder.reorder.reset();
            if let Some(assembler) = recorder.assembler.as_mut() {
                assembler.resume();
            }
            recorder.was_waiting = false;
        }
    }

    /// Stop every recording of `room`.
    pub fn room_ended(&mut self, room: RoomSid) {
        let tracks: Vec<TrackSid> = self
            .active
            .iter()
            .filter(|r| r.spec.room == room)
            .map(|r| r.spec.track)
            .collect();
        for track in tracks {
            self.stop(track);
        }
    }

    /// A packet of `track` was forwarded; its payload type is `codec`
    /// (`None`: one a recording cannot write). Returns whether the
    /// recording wants a keyframe.
    pub fn packet(
        &mut self,
        track: TrackSid,
        codec: Option<RecordedCodec>,
        packet: &RtpPacket,
    ) -> bool {
        let Some(at) = self.active.iter().position(|r| r.spec.track == track) else {
            return false;
        };
        let recorder = &mut self.active[at];
        match recorder.packet(codec, packet) {
            Ok(wants) => wants,
            Err(()) => {
                // Its writer is gone (it failed and said so) or behind.
                self.active.swap_remove(at);
                false
            }
        }
    }
}

impl Recorder {
    fn packet(&mut self, codec: Option<RecordedCodec>, packet: &RtpPacket) -> Result<bool, ()> {
        if self.paused || *self.ssrc.get_or_insert(packet.header.ssrc) != packet.header.ssrc {
            return Ok(false);
        }
        if self.assembler.is_none() {
            match codec {
                Some(codec) if codec.is_video() == (self.spec.kind == MediaKind::Video) => {
                    self.assembler = Some(Assembler::new(codec));
                }
                // VP9 (or G.722, …) is forwarded but not recorded (Twilio
                // records Opus, PCMU, VP8 and H.264): the writer, never
                // fed, reports the failure.
                _ => {
                    self.state.store(UNSUPPORTED, Ordering::Release);
                    return Err(());
                }
            }
        }
        let Some(assembler) = self.assembler.as_mut() else {
            return Ok(false);
        };
        self.reorder.push(
            Packet {
                seq: *packet.seq_no,
                rtp_time: packet.header.timestamp,
                marker: packet.header.marker,
                payload: packet.payload.clone(),
                arrival: packet.timestamp,
            },
            &mut self.released,
        );
        for p in self.released.drain(..) {
            if let Some(frame) = assembler.push(&p) {
                match self.frames.try_send(frame) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        self.state.store(OVERRUN, Ordering::Release);
                        return Err(());
                    }
                    Err(TrySendError::Disconnected(_)) => return Err(()),
                }
            }
        }
        // Ask when a wait begins (the first packet of a video recording
        // included), not on every packet of it.
        let wants = assembler.wants_keyframe();
        let ask = wants && !self.was_waiting;
        self.was_waiting = wants;
        Ok(ask)
    }

    /// Write what the reorder ring holds. `Err`: the writer is gone or
    /// behind.
    fn release_all(&mut self) -> Result<(), ()> {
        if let Some(assembler) = self.assembler.as_mut() {
            self.reorder.flush(&mut self.released);
            for p in self.released.drain(..) {
                if let Some(frame) = assembler.push(&p) {
                    if self.frames.try_send(frame).is_err() {
                        self.state.store(OVERRUN, Ordering::Release);
                        return Err(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Release what the reorder ring holds and let the writer finish.
    fn finish(&mut self) {
        if self.release_all().is_err() {
            return;
        }
        let _ = self
            .state
            .compare_exchange(RUNNING, STOPPING, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropped without `finish` (the worker is stopping): finish anyway.
        let _ = self
            .state
            .compare_exchange(RUNNING, STOPPING, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// A recording's writer thread: frames in, a Matroska file out.
struct Writer {
    recording: RecordingSid,
    path: PathBuf,
    codec: Option<RecordedCodec>,
    queue: Receiver<Frame>,
    state: Arc<AtomicU8>,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// An instant and the wall-clock time it was, to date frames.
    anchor: (Instant, SystemTime),
}

impl Writer {
    fn run(mut self) {
        let outcome = self.write();
        let event = match outcome {
            Ok(Some((duration, size))) => RecordingEvent::Completed {
                recording: self.recording,
                duration,
                size,
            },
            Ok(None) => {
                let _ = std::fs::remove_file(&self.path);
                RecordingEvent::Failed {
                    recording: self.recording,
                    reason: "no media was received".into(),
                }
            }
            Err(reason) => RecordingEvent::Failed {
                recording: self.recording,
                reason,
            },
        };
        let _ = self.events.send(MediaEvent::Recording(event));
    }

    fn wall(&self, at: Instant) -> SystemTime {
        let (instant, wall) = self.anchor;
        match at.checked_duration_since(instant) {
            Some(after) => wall + after,
            None => wall - instant.saturating_duration_since(at),
        }
    }

    /// Write frames until the worker lets go. `Ok(None)`: no frame came.
    fn write(&mut self) -> Result<Option<(Duration, u64)>, String> {
        let mut file: Option<MatroskaWriter<BufWriter<File>>> = None;
        let mut first: Option<(i64, Instant)> = None;
        let mut h264 = H264Converter::default();
        let clock_ms = |codec: RecordedCodec, ticks: i64| ticks * 1000 / codec.clock_rate() as i64;
        loop {
            let frame = match self.queue.recv_timeout(Duration::from_millis(500)) {
                Ok(frame) => frame,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if self.state.load(Ordering::Acquire) == RUNNING {
                        continue;
                    }
                    // Stopped: the worker has sent all it will.
                    if let Ok(frame) = self.queue.try_recv() {
                        frame
                    } else {
                        break;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            if self.state.load(Ordering::Acquire) >= OVERRUN {
                break;
            }
            let codec = *self.codec.get_or_insert(frame.codec);
            let data = if codec == RecordedCodec::H264 {
                h264.convert(&frame.data)
            } else {
                frame.data
            };
            if file.is_none() {
                let header = match codec {
                    RecordedCodec::Vp8 => vp8_header(&data),
                    RecordedCodec::H264 => TrackHeader {
                        codec_private: h264.avcc_record().unwrap_or_default(),
                        ..TrackHeader::default()
                    },
                    RecordedCodec::Opus | RecordedCodec::Pcmu | RecordedCodec::Pcma => {
                        TrackHeader::default()
                    }
                };
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let out = File::create(&self.path)
                    .map_err(|e| format!("{}: {e}", self.path.display()))?;
                file = Some(
                    MatroskaWriter::new(BufWriter::with_capacity(256 * 1024, out), codec, &header)
                        .map_err(|e| format!("writing {}: {e}", self.path.display()))?,
                );
                first = Some((frame.rtp_time, frame.arrival));
                let _ = self
                    .events
                    .send(MediaEvent::Recording(RecordingEvent::Started {
                        recording: self.recording,
                        codec,
                        at: self.wall(frame.arrival),
                    }));
            }
            let (Some(writer), Some((rtp0, arrival0))) = (file.as_mut(), first) else {
                continue;
            };
            // The media clock places frames (a mute shows as the gap the
            // sender's clock shows); a sender whose clock jumps (a restart)
            // is placed by arrival time instead.
            let wall_ms = frame
                .arrival
                .saturating_duration_since(arrival0)
                .as_millis() as i64;
            let rtp_ms = clock_ms(codec, frame.rtp_time - rtp0);
            let ms = if rtp_ms < 0 || (rtp_ms - wall_ms).abs() > 10_000 {
                wall_ms
            } else {
                rtp_ms
            };
            writer
                .frame(ms, frame.keyframe, &data)
                .map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        }
        match self.state.load(Ordering::Acquire) {
            OVERRUN => {
                if let Some(writer) = file {
                    let _ = writer.finish();
                }
                return Err("the disk writer fell behind the track".into());
            }
            UNSUPPORTED => return Err("the track's codec cannot be recorded".into()),
            _ => {}
        }
        match file {
            None => Ok(None),
            Some(writer) => {
                let (ms, size) = writer
                    .finish()
                    .map_err(|e| format!("writing {}: {e}", self.path.display()))?;
                Ok(Some((Duration::from_millis(ms), size)))
            }
        }
    }
}

/// Width and height from a VP8 keyframe's header (RFC 6386 §9.1).
fn vp8_header(frame: &[u8]) -> TrackHeader {
    let mut header = TrackHeader::default();
    if frame.len() >= 10 && frame[3..6] == [0x9d, 0x01, 0x2a] {
        header.width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
        header.height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    }
    header
}

/// H.264 from RTP comes as Annex B (start codes); Matroska wants each NAL
/// unit prefixed by its length, and the SPS and PPS in `CodecPrivate`.
#[derive(Default)]
struct H264Converter {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl H264Converter {
    fn convert(&mut self, annex_b: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(annex_b.len() + 16);
        for nal in nal_units(annex_b) {
            match nal.first().map(|b| b & 0x1f) {
                Some(7) if self.sps.is_none() => self.sps = Some(nal.to_vec()),
                Some(8) if self.pps.is_none() => self.pps = Some(nal.to_vec()),
                _ => {}
            }
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    /// An `AVCDecoderConfigurationRecord` (ISO 14496-15 §5.2.4.1).
    fn avcc_record(&self) -> Option<Vec<u8>> {
        let (sps, pps) = (self.sps.as_ref()?, self.pps.as_ref()?);
        if sps.len() < 4 {
            return None;
        }
        let mut out = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        out.extend_from_slice(sps);
        out.push(1);
        out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        out.extend_from_slice(pps);
        Some(out)
    }
}

/// The NAL units of an Annex B byte stream.
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|s| {
            let mut end = s - 3;
            while end > 0 && data[end - 1] == 0 {
                end -= 1;
            }
            end
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(s, e)| e > s)
        .map(move |(s, e)| &data[s..e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_becomes_length_prefixed_and_keeps_the_parameter_sets() {
        let stream = [
            0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xaa, // SPS
            0, 0, 1, 0x68, 0xce, // PPS
            0, 0, 0, 1, 0x65, 0x88, 0x80, // IDR slice
        ];
        let mut c = H264Converter::default();
        let avcc = c.convert(&stream);
        assert_eq!(
            avcc,
            [
                0, 0, 0, 5, 0x67, 0x42, 0xc0, 0x1f, 0xaa, 0, 0, 0, 2, 0x68, 0xce, 0, 0, 0, 3, 0x65,
                0x88, 0x80
            ]
        );
        let record = c.avcc_record().unwrap();
        assert_eq!(&record[..6], &[1, 0x42, 0xc0, 0x1f, 0xff, 0xe1]);
    }

    #[test]
    fn vp8_dimensions_come_from_the_keyframe_header() {
        let frame = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
        let header = vp8_header(&frame);
        assert_eq!((header.width, header.height), (640, 480));
    }
}

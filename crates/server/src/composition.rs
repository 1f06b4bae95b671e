//! Compositions: a room's recordings mixed into one playable file by
//! Debian's `ffmpeg`, as a bounded background job.
//!
//! `POST /v1/Compositions` writes an `enqueued` row and queues the job
//! (at most [`QUEUE`] wait; more are refused with 503). One job runs at a
//! time; each is one `ffmpeg` process with a deadline, killed if it runs
//! over. Its progress (`-progress`) moves the row's `progress` and sends
//! `composition-progress` callbacks at each quarter; the end sends
//! `composition-available` or `composition-failed`.
//!
//! The queue is in memory: a node that stops (a crash, or a shutdown before
//! a job ends) resumes its `enqueued` and `processing` compositions when it
//! starts again (`rest::compositions::resume_unfinished`); the compositions
//! table records which node queued each.
//!
//! Time alignment: each recording starts at its first frame's time (its
//! `offset`); the timeline starts at the earliest source included
//! (`Trim=true`, the default) or at the room's creation (`Trim=false`).
//! Video sources are shown in a grid (or one source, for a region with
//! `max_columns` and `max_rows` both 1), each padded with black before it
//! starts and after it ends; audio sources are mixed, with silence in
//! their gaps.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use salon_sid::CompositionSid;
use salon_store::{CallbackEvent, RecordingRecord, Store, Timestamp};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Jobs waiting to run.
pub const QUEUE: usize = 16;
/// No job runs longer than this, whatever the length of the room.
const MAX_JOB: Duration = Duration::from_secs(2 * 3600);

/// How a composition is laid out, as parsed from its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Every matching video source, in a grid.
    Grid(Vec<String>),
    /// The first matching video source, full frame.
    Single(Vec<String>),
    /// Audio only.
    None,
}

impl Layout {
    /// Read Twilio's `VideoLayout` JSON: one region with `video_sources`.
    pub fn parse(json: Option<&str>) -> Result<Self, String> {
        let Some(json) = json else {
            return Ok(Layout::None);
        };
        let value: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let Some(regions) = value.as_object() else {
            return Err("must be an object of regions".into());
        };
        if regions.is_empty() {
            return Ok(Layout::None);
        }
        if regions.len() > 1 {
            return Err("Salon composes one region (a grid or a single source)".into());
        }
        let region = regions.values().next().cloned().unwrap_or(Value::Null);
        let sources: Vec<String> = region
            .get("video_sources")
            .and_then(Value::as_array)
            .ok_or("the region needs video_sources")?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or("video_sources are strings")
            })
            .collect::<Result<_, _>>()?;
        let one = |k: &str| region.get(k).and_then(Value::as_u64) == Some(1);
        Ok(if one("max_columns") && one("max_rows") {
            Layout::Single(sources)
        } else {
            Layout::Grid(sources)
        })
    }
}

/// Whether a source pattern (`*`, `prefix*`, a track name or a recording
/// SID) names `r`.
fn names(pattern: &str, r: &RecordingRecord) -> bool {
    if pattern == r.sid.as_str() {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => r.track_name.starts_with(prefix),
        None => pattern == r.track_name,
    }
}

fn select<'a>(
    recordings: &'a [RecordingRecord],
    kind: &str,
    patterns: &[String],
) -> Vec<&'a RecordingRecord> {
    let mut chosen: Vec<&RecordingRecord> = recordings
        .iter()
        .filter(|r| r.kind == kind && patterns.iter().any(|p| names(p, r)))
        .collect();
    // In the order they started: the grid fills left to right as people
    // arrive, the same way every time.
    chosen.sort_by_key(|r| (r.start_time.unwrap_or(r.date_created), r.sid.to_string()));
    chosen
}

/// What one job composes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub layout: Layout,
    pub audio_sources: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub trim: bool,
    /// Where the timeline starts without trimming (the room's creation).
    pub room_start: Timestamp,
}

/// The `ffmpeg` arguments for `plan` over `recordings` (files under
/// `dir`), writing `out`, and the length of the result in milliseconds.
/// `None`: no source matches.
pub fn ffmpeg_args(
    plan: &Plan,
    recordings: &[RecordingRecord],
    dir: &Path,
    out: &Path,
) -> Option<(Vec<String>, u64)> {
    let video: Vec<&RecordingRecord> = match &plan.layout {
        Layout::Grid(p) => select(recordings, "video", p),
        Layout::Single(p) => select(recordings, "video", p).into_iter().take(1).collect(),
        Layout::None => Vec::new(),
    };
    let audio = select(recordings, "audio", &plan.audio_sources);
    let sources: Vec<&RecordingRecord> = video.iter().chain(audio.iter()).copied().collect();
    if sources.is_empty() {
        return None;
    }
    let start_of = |r: &RecordingRecord| r.start_time.unwrap_or(r.date_created).millis();
    let t0 = if plan.trim {
        sources.iter().map(|r| start_of(r)).min().unwrap_or(0)
    } else {
        plan.room_start.millis()
    };
    let end = sources
        .iter()
        .map(|r| start_of(r) + r.duration_ms as i64)
        .max()
        .unwrap_or(t0);
    let total_ms = (end - t0).max(1) as u64;
    let offset = |r: &RecordingRecord| ((start_of(r) - t0).max(0) as f64) / 1000.0;

    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-y", "-v", "error"]
        .map(String::from)
        .to_vec();
    for r in &sources {
        args.push("-i".into());
        args.push(dir.join(&r.path).display().to_string());
    }
    let mut graph = Vec::new();
    let (w, h) = (plan.width, plan.height);
    if !video.is_empty() {
        let n = video.len() as u32;
        let cols = (f64::from(n).sqrt().ceil() as u32).max(1);
        let rows = n.div_ceil(cols);
        let (cw, ch) = ((w / cols) & !1, (h / rows) & !1);
        for (i, r) in video.iter().enumerate() {
            graph.push(format!(
                "[{i}:v]setpts=PTS-STARTPTS,fps=15,scale={cw}:{ch}:force_original_aspect_ratio=decrease,\
                 pad={cw}:{ch}:(ow-iw)/2:(oh-ih)/2:black,format=yuv420p,\
                 tpad=start_duration={:.3}:start_mode=add:color=black[v{i}]",
                offset(r)
            ));
        }
        if n == 1 {
            graph.push(format!(
                "[v0]pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black,tpad=stop=-1:stop_mode=add:color=black[vout]"
            ));
        } else {
            let inputs: String = (0..n).map(|i| format!("[v{i}]")).collect();
            let layout: Vec<String> = (0..n)
                .map(|i| format!("{}_{}", (i % cols) * cw, (i / cols) * ch))
                .collect();
            graph.push(format!(
                "{inputs}xstack=inputs={n}:layout={}:fill=black,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black[vout]",
                layout.join("|")
            ));
        }
    }
    if !audio.is_empty() {
        let base = video.len();
        for (j, r) in audio.iter().enumerate() {
            let ms = (offset(r) * 1000.0) as u64;
            graph.push(format!(
                "[{}:a]asetpts=PTS-STARTPTS,aresample=48000:async=1000:first_pts=0,adelay={ms}:all=1[a{j}]",
                base + j
            ));
        }
        if audio.len() == 1 {
            graph.push("[a0]anull[aout]".into());
        } else {
            let inputs: String = (0..audio.len()).map(|j| format!("[a{j}]")).collect();
            graph.push(format!(
                "{inputs}amix=inputs={}:duration=longest:normalize=0[aout]",
                audio.len()
            ));
        }
    }
    args.push("-filter_complex".into());
    args.push(graph.join(";"));
    if !video.is_empty() {
        args.extend(["-map".into(), "[vout]".into()]);
        if plan.format == "webm" {
            args.extend(
                [
                    "-c:v",
                    "libvpx",
                    "-b:v",
                    "1M",
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                ]
                .map(String::from),
            );
        } else {
            args.extend(
                [
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                ]
                .map(String::from),
            );
        }
    }
    if !audio.is_empty() {
        args.extend(["-map".into(), "[aout]".into()]);
        if plan.format == "webm" {
            args.extend(["-c:a", "libopus", "-b:a", "96k"].map(String::from));
        } else {
            args.extend(["-c:a", "aac", "-b:a", "128k"].map(String::from));
        }
    }
    if plan.format == "mp4" {
        args.extend(["-movflags".into(), "+faststart".into()]);
    }
    args.extend([
        "-t".into(),
        format!("{:.3}", total_ms as f64 / 1000.0),
        "-threads".into(),
        "2".into(),
        "-progress".into(),
        "pipe:1".into(),
        "-nostats".into(),
        out.display().to_string(),
    ]);
    Some((args, total_ms))
}

/// A queued job.
pub struct Job {
    pub sid: CompositionSid,
    pub plan: Plan,
    pub recordings: Vec<RecordingRecord>,
    /// It was `processing` when a previous process stopped: it starts over
    /// (without a second `composition-started`).
    pub interrupted: bool,
}

/// The handle REST uses.
#[derive(Clone)]
pub struct Compositions {
    jobs: mpsc::Sender<Job>,
    dir: PathBuf,
}

impl Compositions {
    /// Start the job runner; files go under `dir`.
    pub fn spawn(store: Store, dir: PathBuf, recordings_dir: PathBuf) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, dir.clone(), recordings_dir, queue));
        Self { jobs, dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queue a job; false when the queue is full.
    pub fn enqueue(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// Queue a job once there is room; false when the runner is gone.
    pub async fn enqueue_waiting(&self, job: Job) -> bool {
        self.jobs.send(job).await.is_ok()
    }
}

async fn run(store: Store, dir: PathBuf, recordings_dir: PathBuf, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.recv().await {
        let sid = job.sid;
        let outcome = compose(&store, &dir, &recordings_dir, job).await;
        let now = Timestamp::now();
        let result = match outcome {
            Ok((duration, size)) => {
                tracing::info!(composition = %sid, duration, size, "composition available");
                store
                    .composition_change(
                        sid,
                        &["processing"],
                        "completed",
                        100,
                        Some((duration, size)),
                        None,
                        Some(CallbackEvent::CompositionAvailable),
                        now,
                    )
                    .await
            }
            Err(reason) => {
                tracing::warn!(composition = %sid, reason, "composition failed");
                store
                    .composition_change(
                        sid,
                        &["enqueued", "processing"],
                        "failed",
                        0,
                        None,
                        Some(&reason),
                        Some(CallbackEvent::CompositionFailed),
                        now,
                    )
                    .await
            }
        };
        if let Err(e) = result {
            tracing::error!(composition = %sid, error = %e, "could not record a composition's end");
        }
    }
}

async fn compose(
    store: &Store,
    dir: &Path,
    recordings_dir: &Path,
    job: Job,
) -> Result<(u64, u64), String> {
    let (from, started_event) = if job.interrupted {
        (&["processing"], None)
    } else {
        (&["enqueued"], Some(CallbackEvent::CompositionStarted))
    };
    let started = store
        .composition_change(
            job.sid,
            from,
            "processing",
            0,
            None,
            None,
            started_event,
            Timestamp::now(),
        )
        .await
        .map_err(|e| e.to_string())?;
    if !started {
        return Err("the composition was deleted before it started".into());
    }
    let out = dir.join(format!("{}.{}", job.sid, job.plan.format));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let Some((args, total_ms)) = ffmpeg_args(&job.plan, &job.recordings, recordings_dir, &out)
    else {
        return Err("no recording matches the layout or the audio sources".into());
    };
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stdout = child.stdout.take().ok_or("no ffmpeg output")?;
    let mut stderr = child.stderr.take().ok_or("no ffmpeg errors")?;
    let deadline = MAX_JOB.min(Duration::from_millis(total_ms * 4 + 60_000));
    let progress = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut reported = 0u32;
        while let Ok(Some(line)) = lines.next_line().await {
            let Some(us) = line.strip_prefix("out_time_us=") else {
                continue;
            };
            let Ok(us) = us.trim().parse::<u64>() else {
                continue;
            };
            let percent = ((us / 1000) * 100 / total_ms.max(1)).min(99) as u32;
            if percent / 25 > reported / 25 {
                reported = percent;
                let _ = store
                    .composition_change(
                        job.sid,
                        &["processing"],
                        "processing",
                        percent,
                        None,
                        None,
                        Some(CallbackEvent::CompositionProgress),
                        Timestamp::now(),
                    )
                    .await;
            }
        }
    };
    let errors = async {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    };
    let finished = tokio::time::timeout(deadline, async {
        let (_, errors, status) = tokio::join!(progress, errors, child.wait());
        (errors, status)
    })
    .await;
    let (errors, status) = finished.map_err(|_| format!("ffmpeg ran over {deadline:?}"))?;
    let status = status.map_err(|e| e.to_string())?;
    if !status.success() {
        let _ = std::fs::remove_file(&out);
        let last = errors
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        return Err(format!("ffmpeg failed ({status}): {last}"));
    }
    let size = std::fs::metadata(&out).map_err(|e| e.to_string())?.len();
    Ok((total_ms, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_of_one_column_and_one_row_is_a_single_source() {
        assert_eq!(
            Layout::parse(Some(r#"{"grid":{"video_sources":["*"]}}"#)).unwrap(),
            Layout::Grid(vec!["*".into()])
        );
        assert_eq!(
            Layout::parse(Some(
                r#"{"main":{"max_columns":1,"max_rows":1,"video_sources":["cam"]}}"#
            ))
            .unwrap(),
            Layout::Single(vec!["cam".into()])
        );
        assert_eq!(Layout::parse(None).unwrap(), Layout::None);
        assert!(Layout::parse(Some(r#"{"a":{"video_sources":["*"]},"b":{}}"#)).is_err());
        assert!(Layout::parse(Some(r#"{"a":{}}"#)).is_err());
        assert!(Layout::parse(Some("[]")).is_err());
    }
}

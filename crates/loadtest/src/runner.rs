//! The runner: joins the plan's participants over the ramp, waits for
//! their media, measures a window, and ends everything.
//!
//! ```text
//!  start           ramp end      media flows        window end
//!    │── ramp ───────│── settle ──────│──── duration ─────│── leave
//!    joins spread evenly             snapshot           snapshot
//! ```
//!
//! Each participant is one task: it sleeps until its join time, joins
//! through the [`Target`], reports what happens to it, and leaves when the
//! run ends. The coordinator (the caller's task) owns all state; tasks talk
//! to it over one channel, so nothing is locked. Once a second it reads
//! every participant's [`Meter`] for the progress line. The window starts
//! once every joined participant's media is connected and every expected
//! subscription has received a packet (or the settle time ran out); there
//! it snapshots every meter, the server's `/proc` and `/metrics`, and its
//! own `/proc`, and again at the end. Everything reported about media is the
//! difference, so joins, first keyframes and ICE do not pollute it. When the
//! plan has video, the runner also looks at every participant's video every
//! [`WATCH_INTERVAL`] during the window ([`VideoWatch`]: layer switches and
//! stalls).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::histogram::Histogram;
use crate::metrics::{Scraper, ServerCounters};
use crate::plan::{ParticipantPlan, Plan, PlanError, Role};
use crate::process::{self, Pid};
use crate::report::{Outcome, Report, Snapshot};
use crate::target::{Counters, Meter, Participant, ParticipantEvent, Target, TargetError};
use crate::video::{VideoWatch, WATCH_INTERVAL};

/// How long participants get to leave after the window before they are
/// dropped.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the ramp a join may still be under way; after that it
/// counts as failed and the run goes on without it.
const JOIN_GRACE: Duration = Duration::from_secs(30);

/// What to run, and what to watch besides the participants.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub plan: Plan,
    /// The server's process, for CPU time and memory from `/proc`.
    pub server_pid: Option<u32>,
    /// The server's `/metrics`, for its packet counters.
    pub metrics: Option<Scraper>,
    /// How often the progress callback runs (at least 100 ms).
    pub progress_interval: Duration,
}

impl RunOptions {
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            server_pid: None,
            metrics: None,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot read the server's process {pid} in /proc: {error}")]
    ServerProcess { pid: u32, error: std::io::Error },
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Participants are joining.
    Ramp,
    /// Everyone joined (or failed); waiting for their media.
    Settle,
    /// Measuring.
    Window,
}

/// The live state, once per progress interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub elapsed: Duration,
    /// Time into the window and its length, during the window.
    pub window: Option<(Duration, Duration)>,
    pub total: usize,
    pub joined: usize,
    pub failed: usize,
    pub media_connected: usize,
    /// Subscriptions with media, and how many the joined participants make.
    pub subscriptions: (u64, u64),
    /// Over the last interval: packets received per second, loss, latency.
    pub rx_pps: f64,
    pub loss_pct: f64,
    pub p99_us: Option<u64>,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match (self.phase, self.window) {
            (Phase::Window, Some((at, of))) => {
                format!("window {:>5.1}/{:.0}s", at.as_secs_f64(), of.as_secs_f64())
            }
            (Phase::Settle, _) => "settling       ".into(),
            _ => "ramp           ".into(),
        };
        write!(
            f,
            "[{:>6.1}s] {phase}  joined {}/{}",
            self.elapsed.as_secs_f64(),
            self.joined,
            self.total
        )?;
        if self.failed > 0 {
            write!(f, " ({} failed)", self.failed)?;
        }
        write!(
            f,
            "  media {}/{}  rx {:.0} pps  loss {:.2}%  p99 {}",
            self.subscriptions.0,
            self.subscriptions.1,
            self.rx_pps,
            self.loss_pct,
            match self.p99_us {
                Some(us) => format!("{:.2} ms", us as f64 / 1000.0),
                None => "-".into(),
            }
        )
    }
}

/// What a participant task tells the coordinator.
enum Update {
    Joining {
        index: usize,
        at: Instant,
    },
    Joined {
        index: usize,
        at: Instant,
        meter: Arc<dyn Meter>,
    },
    JoinFailed {
        index: usize,
        error: TargetError,
    },
    MediaConnected {
        index: usize,
        at: Instant,
    },
    Error {
        index: usize,
        error: TargetError,
    },
    Disconnected {
        index: usize,
        error: TargetError,
    },
    Switched {
        index: usize,
        track: String,
        off: bool,
        reason: Option<String>,
        at: Instant,
    },
}

/// The coordinator's record of one participant.
pub(crate) struct Slot {
    pub plan: ParticipantPlan,
    pub join_started: Option<Instant>,
    pub joined_at: Option<Instant>,
    pub media_at: Option<Instant>,
    pub join_error: Option<TargetError>,
    /// Set when the session ended on its own before the run ended it.
    pub disconnected: Option<TargetError>,
    pub errors: Vec<TargetError>,
    pub meter: Option<Arc<dyn Meter>>,
    /// Subscribed tracks the server has switched off for this participant.
    pub switched_off: HashSet<String>,
    /// When the server switched a track off, and why (bounded: one entry
    /// per switch-off, and a switch-off needs a subscription).
    pub switch_offs: Vec<(Instant, String)>,
    /// Counters at the last progress tick.
    previous: Counters,
}

impl Slot {
    fn resolved(&self) -> bool {
        self.joined_at.is_some() || self.join_error.is_some()
    }

    fn live(&self) -> bool {
        self.joined_at.is_some() && self.disconnected.is_none()
    }
}

/// Run the plan against `target`, calling `progress` once per interval.
pub async fn run<T: Target>(
    target: Arc<T>,
    options: RunOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<Report, RunError> {
    let plan = options.plan.clone();
    plan.validate()?;
    if let Some(pid) = options.server_pid {
        process::sample(Pid::Id(pid)).map_err(|error| RunError::ServerProcess { pid, error })?;
    }

    let start = Instant::now();
    let (stop_tx, stop) = watch::channel(false);
    let (updates_tx, mut updates) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let mut slots: Vec<Slot> = plan
        .participants()
        .into_iter()
        .map(|p| {
            tasks.spawn(participant(
                target.clone(),
                p.clone(),
                start,
                stop.clone(),
                updates_tx.clone(),
            ));
            Slot {
                plan: p,
                join_started: None,
                joined_at: None,
                media_at: None,
                join_error: None,
                disconnected: None,
                errors: Vec::new(),
                meter: None,
                switched_off: HashSet::new(),
                switch_offs: Vec::new(),
                previous: Counters::default(),
            }
        })
        .collect();
    drop(updates_tx);

    let mut ticker =
        tokio::time::interval(options.progress_interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut phase = Phase::Ramp;
    let mut settle_since = start;
    let mut window_start: Option<Snapshot> = None;
    let mut video = VideoWatch::default();
    let watching = plan.video.is_some();
    let mut watch = tokio::time::interval(WATCH_INTERVAL);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut window_end: Option<Snapshot> = None;
    let mut last_tick = Instant::now();
    let mut warnings = Vec::new();
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);

    loop {
        let end_at = match &window_start {
            Some(s) => tokio::time::Instant::from_std(s.at + plan.duration),
            None => far,
        };
        tokio::select! {
            Some(update) = updates.recv() => apply(&mut slots, update),
            () = tokio::time::sleep_until(end_at), if window_start.is_some() => {
                let end = snapshot(&slots, &options).await;
                if watching {
                    video.observe(end.at, &end.counters, &switched_off(&slots));
                }
                window_end = Some(end);
                break;
            }
            _ = watch.tick(), if watching && window_start.is_some() => {
                let counters: Vec<Option<Counters>> =
                    slots.iter().map(|s| s.meter.as_ref().map(|m| m.sample())).collect();
                video.observe(Instant::now(), &counters, &switched_off(&slots));
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                let interval = now.saturating_duration_since(last_tick);
                last_tick = now;
                let current: Vec<Option<Counters>> =
                    slots.iter().map(|s| s.meter.as_ref().map(|m| m.sample())).collect();
                let line = progress_line(&plan, &mut slots, &current, phase, start, interval, window_start.as_ref().map(|s| s.at));
                progress(&line);

                if phase == Phase::Ramp && now >= start + plan.ramp + JOIN_GRACE {
                    for s in slots.iter_mut().filter(|s| !s.resolved()) {
                        s.join_error = Some(TargetError {
                            code: None,
                            message: format!("not joined {} s after the ramp", JOIN_GRACE.as_secs()),
                        });
                    }
                }
                if phase == Phase::Ramp
                    && now >= start + plan.ramp
                    && slots.iter().all(Slot::resolved)
                {
                    if !slots.iter().any(Slot::live) {
                        warnings.push("no participant joined: nothing was measured".into());
                        break;
                    }
                    phase = Phase::Settle;
                    settle_since = now;
                }
                if phase == Phase::Settle {
                    let connected = slots.iter().filter(|s| s.live()).all(|s| s.media_at.is_some());
                    let (with_media, expected) = line.subscriptions;
                    let ready = connected && with_media >= expected;
                    if ready || now >= settle_since + plan.settle {
                        if !ready {
                            warnings.push(format!(
                                "the window started after waiting {:.1} s with {} of {} subscriptions receiving media",
                                plan.settle.as_secs_f64(), with_media, expected
                            ));
                        }
                        let start = snapshot(&slots, &options).await;
                        if watching {
                            video.start(start.at, &start.counters, &switched_off(&slots));
                        }
                        window_start = Some(start);
                        phase = Phase::Window;
                    }
                }
            }
        }
    }

    // End the run: everyone leaves, in parallel, within a bound.
    let _ = stop_tx.send(true);
    let leave = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(LEAVE_TIMEOUT, leave).await.is_err() {
        warnings.push(format!(
            "{} participants had not left after {} s and were dropped",
            tasks.len(),
            LEAVE_TIMEOUT.as_secs()
        ));
        tasks.abort_all();
    }
    // Disconnections the coordinator had not read yet.
    while let Ok(update) = updates.try_recv() {
        apply(&mut slots, update);
    }

    Ok(Report::build(
        target.kind(),
        target.url(),
        &plan,
        options.server_pid,
        &slots,
        Outcome {
            start,
            window_start,
            window_end,
            video: watching.then_some(video),
            warnings,
        },
    ))
}

/// Per participant, the tracks the server has switched off for it.
fn switched_off(slots: &[Slot]) -> Vec<&HashSet<String>> {
    slots.iter().map(|s| &s.switched_off).collect()
}

fn apply(slots: &mut [Slot], update: Update) {
    match update {
        Update::Switched {
            index,
            track,
            off,
            reason,
            at,
        } => {
            if let Some(s) = slots.get_mut(index) {
                if off {
                    // The first thousand: enough to say why, and bounded.
                    if s.switch_offs.len() < 1000 {
                        s.switch_offs.push((at, reason.unwrap_or_default()));
                    }
                    s.switched_off.insert(track);
                } else {
                    s.switched_off.remove(&track);
                }
            }
        }
        Update::Joining { index, at } => {
            if let Some(s) = slots.get_mut(index) {
                s.join_started = Some(at);
            }
        }
        Update::Joined { index, at, meter } => {
            // A join that outlived its grace stays failed.
            if let Some(s) = slots.get_mut(index).filter(|s| s.join_error.is_none()) {
                s.joined_at = Some(at);
                s.meter = Some(meter);
            }
        }
        Update::JoinFailed { index, error } => {
            if let Some(s) = slots.get_mut(index) {
                s.join_error = Some(error);
            }
        }
        Update::MediaConnected { index, at } => {
            if let Some(s) = slots.get_mut(index) {
                s.media_at.get_or_insert(at);
            }
        }
        Update::Error { index, error } => {
            if let Some(s) = slots.get_mut(index) {
                s.errors.push(error);
            }
        }
        Update::Disconnected { index, error } => {
            if let Some(s) = slots.get_mut(index) {
                s.disconnected.get_or_insert(error);
            }
        }
    }
}

/// Everything measured at one moment: the server, the metrics, this
/// process, then every participant, in that order at both ends of the
/// window so the skews cancel.
async fn snapshot(slots: &[Slot], options: &RunOptions) -> Snapshot {
    let at = Instant::now();
    let server = options
        .server_pid
        .and_then(|pid| process::sample(Pid::Id(pid)).ok());
    let metrics: Option<Result<ServerCounters, String>> = match &options.metrics {
        Some(scraper) => Some(scraper.scrape().await.map_err(|e| e.to_string())),
        None => None,
    };
    let generator = process::sample(Pid::Current).ok();
    let machine = process::machine().ok();
    let counters = slots
        .iter()
        .map(|s| s.meter.as_ref().map(|m| m.sample()))
        .collect();
    Snapshot {
        at,
        server,
        metrics,
        generator,
        machine,
        counters,
    }
}

/// The progress line, over the interval since the last one; also moves
/// each slot's `previous` counters forward.
fn progress_line(
    plan: &Plan,
    slots: &mut [Slot],
    current: &[Option<Counters>],
    phase: Phase,
    start: Instant,
    interval: Duration,
    window_at: Option<Instant>,
) -> Progress {
    let now = Instant::now();
    let mut received = 0;
    let mut expected = 0;
    let mut lost = 0;
    let mut latency = Histogram::new();
    let mut with_media = 0;
    for (slot, now_counters) in slots.iter_mut().zip(current) {
        let Some(c) = now_counters else { continue };
        with_media += c.received.iter().filter(|r| r.packets > 0).count() as u64;
        let delta = c.since(&slot.previous);
        for r in &delta.received {
            received += r.packets;
            expected += r.expected;
            lost += r.lost;
            latency.add(&r.latency);
        }
        slot.previous = c.clone();
    }
    Progress {
        phase,
        elapsed: now.saturating_duration_since(start),
        window: window_at.map(|at| (now.saturating_duration_since(at), plan.duration)),
        total: slots.len(),
        joined: slots.iter().filter(|s| s.live()).count(),
        failed: slots
            .iter()
            .filter(|s| s.join_error.is_some() || s.disconnected.is_some())
            .count(),
        media_connected: slots
            .iter()
            .filter(|s| s.live() && s.media_at.is_some())
            .count(),
        subscriptions: (with_media, expected_subscriptions(plan, slots)),
        rx_pps: if interval.is_zero() {
            0.0
        } else {
            received as f64 / interval.as_secs_f64()
        },
        loss_pct: if expected == 0 {
            0.0
        } else {
            lost as f64 * 100.0 / expected as f64
        },
        p99_us: latency.quantile(0.99),
    }
}

/// Subscriptions the participants in the rooms now should have.
pub(crate) fn expected_subscriptions(plan: &Plan, slots: &[Slot]) -> u64 {
    let mut rooms: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for s in slots.iter().filter(|s| s.live()) {
        let room = rooms.entry(s.plan.room_index).or_default();
        match s.plan.role {
            Role::Publisher => room.0 += 1,
            Role::Subscriber => room.1 += 1,
        }
    }
    rooms
        .values()
        .map(|&(p, s)| plan.subscriptions_in_room(p, s))
        .sum()
}

/// One participant's life: wait for its turn, join, report, leave.
async fn participant<T: Target>(
    target: Arc<T>,
    plan: ParticipantPlan,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    updates: mpsc::UnboundedSender<Update>,
) {
    let index = plan.index;
    let turn = tokio::time::Instant::from_std(start + plan.join_at);
    tokio::select! {
        () = tokio::time::sleep_until(turn) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    let began = Instant::now();
    let _ = updates.send(Update::Joining { index, at: began });
    let joined = tokio::select! {
        joined = target.join(&plan) => joined,
        _ = stop.wait_for(|s| *s) => return,
    };
    let mut participant = match joined {
        Ok(p) => p,
        Err(error) => {
            let _ = updates.send(Update::JoinFailed { index, error });
            return;
        }
    };
    let _ = updates.send(Update::Joined {
        index,
        at: Instant::now(),
        meter: participant.meter(),
    });
    loop {
        let event = tokio::select! {
            event = participant.next_event() => event,
            _ = stop.wait_for(|s| *s) => break,
        };
        match event {
            Some(ParticipantEvent::MediaConnected) => {
                let _ = updates.send(Update::MediaConnected {
                    index,
                    at: Instant::now(),
                });
            }
            Some(ParticipantEvent::Error { code, message }) => {
                let error = TargetError {
                    code: Some(code),
                    message,
                };
                let _ = updates.send(Update::Error { index, error });
            }
            Some(ParticipantEvent::Disconnected { code, message }) => {
                let error = TargetError { code, message };
                let _ = updates.send(Update::Disconnected { index, error });
                return;
            }
            Some(ParticipantEvent::TrackSwitched { track, off, reason }) => {
                let _ = updates.send(Update::Switched {
                    index,
                    track,
                    off,
                    reason,
                    at: Instant::now(),
                });
            }
            Some(ParticipantEvent::Other) => {}
            None => {
                let error = TargetError {
                    code: None,
                    message: "the session ended without a word".into(),
                };
                let _ = updates.send(Update::Disconnected { index, error });
                return;
            }
        }
    }
    participant.leave().await;
}

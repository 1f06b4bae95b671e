//! The results of a run: built from the window's two snapshots, printed as
//! a table for people and serialized as JSON for scripts.
//!
//! The JSON shape is the stable contract documented in the crate docs
//! (schema `salon-loadtest/1`): fields are only ever added within a schema
//! version; a rename or a change of meaning bumps the version.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::histogram::{Histogram, Summary};
use crate::metrics::ServerCounters;
use crate::plan::{BandwidthMode, Plan, Role};
use crate::process::{MachineSample, ProcessSample};
use crate::runner::{Slot, expected_subscriptions};
use crate::target::{Counters, MediaKind, TargetError};
use crate::video::{STALL, VideoWatch, WATCH_INTERVAL};

/// The schema identifier in every report.
pub const SCHEMA: &str = "salon-loadtest/1";
/// Errors listed in full; the rest are only counted.
const MAX_ERRORS_LISTED: usize = 20;

/// Everything measured at one moment.
pub(crate) struct Snapshot {
    pub at: Instant,
    pub server: Option<ProcessSample>,
    pub metrics: Option<Result<ServerCounters, String>>,
    pub generator: Option<ProcessSample>,
    pub machine: Option<MachineSample>,
    /// Per participant, in plan order; `None` before it joined.
    pub counters: Vec<Option<Counters>>,
}

/// How the run went, for [`Report::build`].
pub(crate) struct Outcome {
    pub start: Instant,
    pub window_start: Option<Snapshot>,
    pub window_end: Option<Snapshot>,
    /// What the video watch saw, when the plan has video.
    pub video: Option<VideoWatch>,
    pub warnings: Vec<String>,
}

/// A whole run's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    pub target: TargetInfo,
    /// `meeting`, `webinar` or `mixed`.
    pub scenario: &'static str,
    pub plan: Plan,
    pub timing: Timing,
    pub joins: Joins,
    /// `None` (`null`) when no window was measured (nobody joined).
    pub window: Option<Window>,
    /// Every subscription that existed at the end of the window.
    pub subscriptions: Vec<SubscriptionReport>,
    /// `None` without `--server-pid` and without metrics.
    pub server: Option<ServerReport>,
    pub generator: GeneratorReport,
    pub machine: MachineReport,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub kind: &'static str,
    pub url: String,
}

/// Where the time went, in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// From the start to the window (ramp plus settle).
    pub before_window_s: f64,
    /// The window as measured (a little over the planned duration).
    pub window_s: f64,
}

/// How joining went.
#[derive(Debug, Clone, Serialize)]
pub struct Joins {
    pub planned: usize,
    pub joined: usize,
    pub failed: usize,
    /// Joined, then lost before the run ended it.
    pub disconnected: usize,
    pub media_connected: usize,
    /// From opening the connection to the server admitting the participant.
    pub join_ms: DurationSummary,
    /// From opening the connection to ICE and DTLS being up.
    pub media_connected_ms: DurationSummary,
    /// From a subscription to its first packet (video waits for a keyframe).
    pub first_packet_ms: DurationSummary,
    /// Join failures, disconnections and errors, the first few.
    pub errors: Vec<ParticipantError>,
    pub errors_total: usize,
}

/// A distribution of durations in milliseconds (exact, nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DurationSummary {
    pub count: usize,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl DurationSummary {
    fn of(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            values.get(rank - 1).map(|&d| ms(d))
        };
        Self {
            count: values.len(),
            mean: (!values.is_empty())
                .then(|| ms(values.iter().sum::<Duration>()) / values.len() as f64),
            p50: at(0.5),
            p99: at(0.99),
            max: values.last().map(|&d| ms(d)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ParticipantError {
    pub participant: String,
    /// `join` (refused or failed), `disconnected`, or `error` (a request
    /// failed, the session went on).
    pub stage: &'static str,
    pub code: Option<u32>,
    pub message: String,
}

/// The measurement window.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub duration_s: f64,
    pub sent: Sent,
    pub received: Received,
    pub subscriptions: SubscriptionCounts,
    /// One-way latency, publisher's send call to subscriber's receipt, µs.
    pub latency_us: LatencyByKind,
    /// What each receiving participant received, all tracks together.
    pub subscriber_bitrate_bps: Spread,
    /// The video subscribers received, against their cap; `None` without
    /// video in the plan.
    pub video: Option<VideoReport>,
}

/// The video subscribers received in the window: bitrate against the
/// bandwidth profile's cap, layers, switches, stalls.
#[derive(Debug, Clone, Serialize)]
pub struct VideoReport {
    pub simulcast: bool,
    /// `maxSubscriptionBitrate` each subscriber set, bits per second.
    pub cap_bps: Option<u64>,
    pub mode: Option<BandwidthMode>,
    /// Per receiving participant: all its video subscriptions together, in
    /// bits per second of RTP payload (what the cap limits also counts RTP
    /// headers, so this errs low by about 2–5 %).
    pub subscriber_bitrate_bps: Spread,
    /// Receiving participants whose video bitrate passed the cap.
    pub over_cap: usize,
    /// Video subscriptions watched.
    pub subscriptions: u64,
    /// Changes of received keyframe size, all subscriptions together.
    pub layer_switches: u64,
    /// Subscriptions whose video stopped for more than `stall_ms` while
    /// the server had not switched them off.
    pub stalled: u64,
    /// Subscriptions the server switched off (`track_switched_off`) at
    /// some point in the window.
    pub switched_off: u64,
    /// Switch-offs in the window by Twilio's reason
    /// (`network-congestion`: the estimate; `max-bandwidth-reached`: the
    /// cap).
    pub switch_off_reasons: BTreeMap<String, u64>,
    /// The longest silence of any subscription not switched off.
    pub longest_gap_ms: Option<f64>,
    /// Subscriptions by the keyframe size they received at the window's
    /// end (`"320x180"`; `"unknown"` before a keyframe).
    pub layers: BTreeMap<String, u64>,
    pub stall_ms: f64,
    /// How often the watch looked, and how many times it did.
    pub watch_interval_ms: f64,
    pub observations: u64,
    /// Each receiving participant's video.
    pub subscribers: Vec<SubscriberVideo>,
}

/// One receiving participant's video over the window.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberVideo {
    pub room: String,
    pub subscriber: String,
    pub tracks: usize,
    pub bitrate_bps: f64,
    pub over_cap: bool,
    pub layer_switches: u64,
    pub stalled: u64,
    pub switched_off: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub packets: u64,
    pub bytes: u64,
    pub packets_per_second: f64,
    pub bitrate_bps: f64,
    pub audio_packets: u64,
    pub video_packets: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub packets: u64,
    pub bytes: u64,
    pub packets_per_second: f64,
    pub bitrate_bps: f64,
    /// By sequence number: packets between the first and last seen.
    pub expected: u64,
    pub lost: u64,
    /// `lost / expected`, percent.
    pub loss_pct: f64,
    /// Packets sent, each times the subscribers of its track: what full
    /// delivery would be. Catches what sequence numbers cannot (a
    /// subscription that never started); off by the packets in flight at
    /// the window's edges.
    pub expected_deliveries: u64,
    /// `packets / expected_deliveries`, percent.
    pub delivered_pct: Option<f64>,
    /// Packets without the probe (not from a load-test publisher).
    pub foreign: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionCounts {
    /// What the participants in the rooms at the window's end should have.
    pub expected: u64,
    /// Subscriptions that existed.
    pub present: u64,
    /// Subscriptions that received at least one packet in the window.
    pub with_media: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyByKind {
    pub all: Summary,
    pub audio: Summary,
    pub video: Summary,
}

/// Mean, least and most of a per-participant figure.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub count: usize,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    fn of(values: &[f64]) -> Self {
        Self {
            count: values.len(),
            mean: (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
            min: values.iter().copied().reduce(f64::min),
            max: values.iter().copied().reduce(f64::max),
        }
    }
}

/// One subscription over the window.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionReport {
    pub room: String,
    pub subscriber: String,
    /// The publisher's identity, when it is a participant of this run.
    pub publisher: Option<String>,
    pub track: String,
    pub track_name: Option<String>,
    pub kind: MediaKind,
    pub packets: u64,
    pub bytes: u64,
    pub expected: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub bitrate_bps: f64,
    /// From the subscription to its first packet (maybe before the window).
    pub first_packet_ms: Option<f64>,
    pub latency_us: Summary,
    /// Video: the keyframe size received at the window's end (the
    /// simulcast layer), `None` before a keyframe or for audio.
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// Video: what the video watch saw (`None` for audio).
    pub layer_switches: Option<u64>,
    pub longest_gap_ms: Option<f64>,
    pub stalled: Option<bool>,
    pub switched_off: Option<bool>,
}

/// The server process and its counters over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub pid: Option<u32>,
    /// User plus system CPU time in the window.
    pub cpu_seconds: Option<f64>,
    /// `cpu_seconds / window`: cores kept busy.
    pub cpu_cores: Option<f64>,
    /// Resident memory at the window's end, and the process's peak.
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub threads: Option<u64>,
    /// The server's media counters over the window (`/metrics`).
    pub metrics: Option<ServerCounters>,
    pub metrics_error: Option<String>,
    /// Packets forwarded to subscribers in the window: the server's own
    /// count when `/metrics` answered, else what subscribers received.
    pub forwarded_packets: u64,
    /// `metrics` or `subscribers`: where `forwarded_packets` comes from.
    pub forwarded_source: &'static str,
    /// The headline: forwarded packets per second of server CPU.
    pub forwarded_per_cpu_second: Option<f64>,
    /// Its inverse: server CPU time per forwarded packet, µs.
    pub cpu_us_per_forwarded_packet: Option<f64>,
}

/// The load generator (this process) over the window.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorReport {
    pub cpu_seconds: Option<f64>,
    pub cpu_cores: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
}

/// The whole machine over the window: server, generator and anything else
/// that ran (another test, a browser) share its cores.
#[derive(Debug, Clone, Serialize)]
pub struct MachineReport {
    pub cores: usize,
    /// Cores kept busy, by everything.
    pub busy_cores: Option<f64>,
    /// Busy cores not accounted for by the server (when its PID is known)
    /// and the generator: other processes disturbing the measurement.
    pub other_cores: Option<f64>,
}

impl Report {
    pub(crate) fn build(
        kind: &'static str,
        url: &str,
        plan: &Plan,
        server_pid: Option<u32>,
        slots: &[Slot],
        outcome: Outcome,
    ) -> Report {
        let Outcome {
            start,
            window_start,
            window_end,
            video,
            mut warnings,
        } = outcome;
        let joins = joins(slots, window_end.as_ref());
        let window = window_start.as_ref().zip(window_end.as_ref());
        let seconds = window.map_or(0.0, |(a, b)| {
            b.at.saturating_duration_since(a.at).as_secs_f64()
        });
        let deltas: Vec<Option<Counters>> = match window {
            Some((a, b)) => a
                .counters
                .iter()
                .zip(&b.counters)
                .map(|(before, after)| {
                    let after = after.as_ref()?;
                    Some(match before {
                        Some(before) => after.since(before),
                        None => after.clone(),
                    })
                })
                .collect(),
            None => Vec::new(),
        };

        // Who publishes which track.
        let mut publishers: HashMap<&str, (&str, &str)> = HashMap::new();
        if let Some((_, end)) = window {
            for (slot, c) in slots.iter().zip(&end.counters) {
                for t in c.iter().flat_map(|c| &c.sent) {
                    if let Some(track) = &t.track {
                        publishers.insert(track, (&slot.plan.identity, &t.name));
                    }
                }
            }
        }

        let subscriptions: Vec<SubscriptionReport> = slots
            .iter()
            .zip(&deltas)
            .flat_map(|(slot, delta)| {
                delta.iter().flat_map(|d| &d.received).map(|r| {
                    let mut h = Histogram::new();
                    h.add(&r.latency);
                    let publisher = publishers.get(r.track.as_str());
                    let watched = video
                        .as_ref()
                        .and_then(|v| v.track(slot.plan.index, &r.track))
                        .filter(|_| r.kind == MediaKind::Video);
                    let sized = (r.kind == MediaKind::Video && r.width > 0).then_some(());
                    SubscriptionReport {
                        room: slot.plan.room.clone(),
                        subscriber: slot.plan.identity.clone(),
                        publisher: publisher.map(|p| p.0.to_string()),
                        track: r.track.clone(),
                        track_name: publisher.map(|p| p.1.to_string()),
                        kind: r.kind,
                        packets: r.packets,
                        bytes: r.bytes,
                        expected: r.expected,
                        lost: r.lost,
                        loss_pct: percent(r.lost, r.expected),
                        bitrate_bps: per_second(r.bytes * 8, seconds),
                        first_packet_ms: r.first_packet_after.map(|d| d.as_secs_f64() * 1000.0),
                        latency_us: h.summary(),
                        width: sized.map(|()| r.width),
                        height: sized.map(|()| r.height),
                        layer_switches: watched.map(|w| w.switches),
                        longest_gap_ms: watched.map(|w| w.longest_gap.as_secs_f64() * 1000.0),
                        stalled: watched.map(|w| w.stalled),
                        switched_off: watched.map(|w| w.switched_off),
                    }
                })
            })
            .collect();

        let bounds = window.map(|(a, b)| (a.at, b.at));
        let window_report = window.map(|_| {
            let mut window = summarize_window(plan, slots, &deltas, seconds);
            window.video = video.as_ref().map(|v| {
                let mut report = video_report(plan, v, &subscriptions, seconds);
                if let Some((start, end)) = bounds {
                    for (at, reason) in slots.iter().flat_map(|s| &s.switch_offs) {
                        if *at >= start && *at <= end {
                            *report.switch_off_reasons.entry(reason.clone()).or_insert(0) += 1;
                        }
                    }
                }
                report
            });
            if let Some(v) = &window.video {
                if v.stalled > 0 {
                    warnings.push(format!(
                        "{} of {} video subscriptions stalled (no video for more than {} s)",
                        v.stalled,
                        v.subscriptions,
                        STALL.as_secs()
                    ));
                }
                if v.over_cap > 0 {
                    warnings.push(format!(
                        "{} of {} subscribers received more video than their cap",
                        v.over_cap,
                        v.subscribers.len()
                    ));
                }
            }
            if window.subscriptions.with_media < window.subscriptions.expected {
                warnings.push(format!(
                    "{} of {} expected subscriptions received no media in the window",
                    window.subscriptions.expected - window.subscriptions.with_media,
                    window.subscriptions.expected
                ));
            }
            window
        });

        let server = window.and_then(|(a, b)| {
            let received = window_report.as_ref().map_or(0, |w| w.received.packets);
            server_report(server_pid, a, b, seconds, received)
        });
        if let Some(e) = server.as_ref().and_then(|s| s.metrics_error.as_ref()) {
            warnings.push(format!("server metrics unavailable: {e}"));
        }
        let generator = generator_report(window, seconds);
        let machine = machine_report(
            window,
            seconds,
            generator.cpu_cores,
            server.as_ref().and_then(|s| s.cpu_cores),
        );
        if let Some(busy) = machine.busy_cores {
            let cores = machine.cores as f64;
            if busy > 0.9 * cores {
                warnings.push(format!(
                    "the machine was saturated ({busy:.2} of {cores} cores busy): these figures may measure the machine rather than the server"
                ));
            }
        }
        if let Some(busy) = generator.cpu_cores {
            let cores = generator_cores() as f64;
            if busy > 0.9 * cores {
                warnings.push(format!(
                    "the load generator was saturated ({busy:.2} of the {cores} cores it may use): latency and loss may be the generator's, not the server's"
                ));
            }
        }
        if let Some(others) = machine.other_cores.filter(|&o| o > 0.15) {
            warnings.push(format!(
                "other processes kept {others:.2} cores busy during the window: latency and loss may be disturbed"
            ));
        }

        Report {
            schema: SCHEMA,
            target: TargetInfo {
                kind,
                url: url.to_string(),
            },
            scenario: plan.scenario(),
            plan: plan.clone(),
            timing: Timing {
                before_window_s: window_start
                    .as_ref()
                    .map_or(0.0, |s| s.at.saturating_duration_since(start).as_secs_f64()),
                window_s: seconds,
            },
            joins,
            window: window_report,
            subscriptions,
            server,
            generator,
            machine,
            warnings,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = self.write_table(&mut out);
        out
    }

    fn write_table(&self, out: &mut String) -> std::fmt::Result {
        let p = &self.plan;
        let mut media = Vec::new();
        if let Some(a) = p.audio {
            media.push(format!("audio {}", bitrate(a.bitrate_bps as f64)));
        }
        if let Some(v) = p.video {
            if v.simulcast {
                let layers: Vec<String> = v
                    .layers()
                    .iter()
                    .map(|l| format!("{}x{} {}", l.width, l.height, bitrate(l.bitrate_bps as f64)))
                    .collect();
                media.push(format!(
                    "simulcast video ({}) @ {} fps",
                    layers.join(", "),
                    v.fps
                ));
            } else {
                media.push(format!(
                    "video {} @ {} fps",
                    bitrate(v.bitrate_bps as f64),
                    v.fps
                ));
            }
        }
        if let Some(b) = p.bandwidth_profile {
            let mode = match b.mode {
                Some(BandwidthMode::Grid) => "grid",
                Some(BandwidthMode::Collaboration) => "collaboration",
                Some(BandwidthMode::Presentation) => "presentation",
                None => "default mode",
            };
            media.push(format!(
                "profile {mode}, cap {}",
                p.video_cap().map_or("none".into(), |c| bitrate(c as f64))
            ));
        }
        writeln!(
            out,
            "{} load test ({}): {} room(s) × {} publisher(s) + {} subscriber(s); {}",
            self.target.kind,
            self.scenario,
            p.rooms,
            p.publishers,
            p.subscribers,
            media.join(" + ")
        )?;
        writeln!(out, "target            {}", self.target.url)?;
        if self.window.is_some() {
            writeln!(
                out,
                "window            {:.1} s, after {:.1} s of ramp ({:.1} s planned) and settling",
                self.timing.window_s,
                self.timing.before_window_s,
                p.ramp.as_secs_f64()
            )?;
        }
        let j = &self.joins;
        writeln!(
            out,
            "joins             {}/{} joined, {} failed, {} disconnected, {} media connected",
            j.joined, j.planned, j.failed, j.disconnected, j.media_connected
        )?;
        for (name, d) in [
            ("join", &j.join_ms),
            ("media connected", &j.media_connected_ms),
            ("first packet", &j.first_packet_ms),
        ] {
            writeln!(
                out,
                "  {name:<16}p50 {}  p99 {}  max {}",
                ms(d.p50),
                ms(d.p99),
                ms(d.max)
            )?;
        }
        if let Some(w) = &self.window {
            writeln!(
                out,
                "subscriptions     {}/{} with media ({} present)",
                w.subscriptions.with_media, w.subscriptions.expected, w.subscriptions.present
            )?;
            writeln!(
                out,
                "sent              {} packets, {:.0} pps, {}",
                w.sent.packets,
                w.sent.packets_per_second,
                bitrate(w.sent.bitrate_bps)
            )?;
            writeln!(
                out,
                "received          {} packets, {:.0} pps, {}",
                w.received.packets,
                w.received.packets_per_second,
                bitrate(w.received.bitrate_bps)
            )?;
            writeln!(
                out,
                "loss              {:.3} % ({} of {} by sequence number); delivered {} of sent × subscribers",
                w.received.loss_pct,
                w.received.lost,
                w.received.expected,
                w.received
                    .delivered_pct
                    .map_or("-".into(), |d| format!("{d:.2} %"))
            )?;
            writeln!(
                out,
                "latency (ms)      {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "p50", "p90", "p99", "p99.9", "max", "mean"
            )?;
            for (name, s) in [
                ("all", &w.latency_us.all),
                ("audio", &w.latency_us.audio),
                ("video", &w.latency_us.video),
            ] {
                writeln!(
                    out,
                    "  {name:<16}{:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    us_as_ms(s.p50),
                    us_as_ms(s.p90),
                    us_as_ms(s.p99),
                    us_as_ms(s.p999),
                    us_as_ms(s.max),
                    us_as_ms(s.mean)
                )?;
            }
            let b = &w.subscriber_bitrate_bps;
            writeln!(
                out,
                "subscriber rate   mean {}, min {}, max {} ({} subscribers)",
                b.mean.map_or("-".into(), bitrate),
                b.min.map_or("-".into(), bitrate),
                b.max.map_or("-".into(), bitrate),
                b.count
            )?;
            if let Some(v) = &w.video {
                let b = &v.subscriber_bitrate_bps;
                writeln!(
                    out,
                    "subscriber video  mean {}, min {}, max {}; cap {}: {} of {} subscribers over it",
                    b.mean.map_or("-".into(), bitrate),
                    b.min.map_or("-".into(), bitrate),
                    b.max.map_or("-".into(), bitrate),
                    v.cap_bps.map_or("none".into(), |c| bitrate(c as f64)),
                    v.over_cap,
                    b.count
                )?;
                let layers: Vec<String> = v
                    .layers
                    .iter()
                    .map(|(size, n)| format!("{size}: {n}"))
                    .collect();
                writeln!(
                    out,
                    "video layers      {} switches; at the end {}",
                    v.layer_switches,
                    layers.join(", ")
                )?;
                let reasons: Vec<String> = v
                    .switch_off_reasons
                    .iter()
                    .map(|(why, n)| format!("{n} {why}"))
                    .collect();
                writeln!(
                    out,
                    "video stalls      {} of {} subscriptions silent > {} s; {} switched off by the server{}; longest silence {}",
                    v.stalled,
                    v.subscriptions,
                    STALL.as_secs(),
                    v.switched_off,
                    if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", reasons.join(", "))
                    },
                    ms(v.longest_gap_ms)
                )?;
            }
        } else {
            writeln!(out, "window            none: nothing was measured")?;
        }
        if let Some(s) = &self.server {
            let pid = s.pid.map_or("?".into(), |p| p.to_string());
            match (s.cpu_seconds, s.cpu_cores) {
                (Some(cpu), Some(cores)) => writeln!(
                    out,
                    "server (pid {pid})  CPU {cpu:.2} s = {cores:.2} cores; RSS {}, peak {}",
                    mib(s.rss_bytes),
                    mib(s.peak_rss_bytes)
                )?,
                _ => writeln!(out, "server            no CPU figures (no --server-pid)")?,
            }
            writeln!(
                out,
                "  forwarded       {} packets (from {})",
                s.forwarded_packets, s.forwarded_source
            )?;
            if let Some(m) = &s.metrics {
                writeln!(
                    out,
                    "  media port      {} RTP in, {} RTP out; {} datagrams in, {} out; {} dropped",
                    m.rtp_received,
                    m.rtp_forwarded,
                    m.datagrams_received,
                    m.datagrams_sent,
                    m.dropped
                )?;
            }
            if let (Some(per_cpu), Some(per_packet)) =
                (s.forwarded_per_cpu_second, s.cpu_us_per_forwarded_packet)
            {
                writeln!(
                    out,
                    "  efficiency      {per_cpu:.0} forwarded packets per CPU-second = {per_packet:.2} µs CPU per forwarded packet"
                )?;
            }
        }
        let g = &self.generator;
        if let (Some(cpu), Some(cores)) = (g.cpu_seconds, g.cpu_cores) {
            writeln!(
                out,
                "generator         CPU {cpu:.2} s = {cores:.2} cores; RSS {}, peak {}",
                mib(g.rss_bytes),
                mib(g.peak_rss_bytes)
            )?;
        }
        let m = &self.machine;
        if let Some(busy) = m.busy_cores {
            writeln!(
                out,
                "machine           {busy:.2} of {} cores busy{}",
                m.cores,
                m.other_cores
                    .map_or(String::new(), |o| format!(", {o:.2} by other processes"))
            )?;
        }
        for e in &self.joins.errors {
            writeln!(
                out,
                "error             {} ({}): {}{}",
                e.participant,
                e.stage,
                e.code.map_or(String::new(), |c| format!("{c}: ")),
                e.message
            )?;
        }
        if self.joins.errors_total > self.joins.errors.len() {
            writeln!(
                out,
                "error             … and {} more",
                self.joins.errors_total - self.joins.errors.len()
            )?;
        }
        for w in &self.warnings {
            writeln!(out, "warning           {w}")?;
        }
        Ok(())
    }
}

fn joins(slots: &[Slot], end: Option<&Snapshot>) -> Joins {
    let mut errors = Vec::new();
    let mut push = |slot: &Slot, stage: &'static str, e: &TargetError| {
        errors.push(ParticipantError {
            participant: slot.plan.identity.clone(),
            stage,
            code: e.code,
            message: e.message.clone(),
        });
    };
    for s in slots {
        if let Some(e) = &s.join_error {
            push(s, "join", e);
        }
        if let Some(e) = &s.disconnected {
            push(s, "disconnected", e);
        }
        for e in &s.errors {
            push(s, "error", e);
        }
    }
    let errors_total = errors.len();
    errors.truncate(MAX_ERRORS_LISTED);

    let since_start =
        |at: Option<Instant>, s: &Slot| Some(at?.saturating_duration_since(s.join_started?));
    let first_packets = end
        .map(|e| {
            e.counters
                .iter()
                .flatten()
                .flat_map(|c| &c.received)
                .filter_map(|r| r.first_packet_after)
                .collect()
        })
        .unwrap_or_default();
    Joins {
        planned: slots.len(),
        joined: slots.iter().filter(|s| s.joined_at.is_some()).count(),
        failed: slots.iter().filter(|s| s.join_error.is_some()).count(),
        disconnected: slots.iter().filter(|s| s.disconnected.is_some()).count(),
        media_connected: slots
            .iter()
            .filter(|s| s.joined_at.is_some() && s.media_at.is_some())
            .count(),
        join_ms: DurationSummary::of(
            slots
                .iter()
                .filter_map(|s| since_start(s.joined_at, s))
                .collect(),
        ),
        media_connected_ms: DurationSummary::of(
            slots
                .iter()
                .filter_map(|s| since_start(s.media_at, s))
                .collect(),
        ),
        first_packet_ms: DurationSummary::of(first_packets),
        errors,
        errors_total,
    }
}

fn summarize_window(
    plan: &Plan,
    slots: &[Slot],
    deltas: &[Option<Counters>],
    seconds: f64,
) -> Window {
    // Subscribers of each publisher's tracks: everyone else in its room.
    let mut in_room: HashMap<u32, (u64, u64)> = HashMap::new();
    for s in slots
        .iter()
        .filter(|s| s.joined_at.is_some() && s.disconnected.is_none())
    {
        let room = in_room.entry(s.plan.room_index).or_default();
        match s.plan.role {
            Role::Publisher => room.0 += 1,
            Role::Subscriber => room.1 += 1,
        }
    }
    let mut sent = Sent {
        packets: 0,
        bytes: 0,
        packets_per_second: 0.0,
        bitrate_bps: 0.0,
        audio_packets: 0,
        video_packets: 0,
    };
    let mut received = Received {
        packets: 0,
        bytes: 0,
        packets_per_second: 0.0,
        bitrate_bps: 0.0,
        expected: 0,
        lost: 0,
        loss_pct: 0.0,
        expected_deliveries: 0,
        delivered_pct: None,
        foreign: 0,
    };
    let mut all = Histogram::new();
    let mut audio = Histogram::new();
    let mut video = Histogram::new();
    let mut present = 0;
    let mut with_media = 0;
    let mut rates = Vec::new();
    for (slot, delta) in slots.iter().zip(deltas) {
        let Some(d) = delta else { continue };
        let (publishers, subscribers) = in_room
            .get(&slot.plan.room_index)
            .copied()
            .unwrap_or_default();
        let fanout = (publishers + subscribers).saturating_sub(1);
        for t in &d.sent {
            sent.packets += t.packets;
            sent.bytes += t.bytes;
            match t.kind {
                MediaKind::Audio => sent.audio_packets += t.packets,
                MediaKind::Video => sent.video_packets += t.packets,
            }
            received.expected_deliveries += t.packets * fanout;
        }
        let mut bytes = 0;
        for r in &d.received {
            present += 1;
            with_media += u64::from(r.packets > 0);
            received.packets += r.packets;
            received.bytes += r.bytes;
            received.expected += r.expected;
            received.lost += r.lost;
            received.foreign += r.foreign;
            bytes += r.bytes;
            all.add(&r.latency);
            match r.kind {
                MediaKind::Audio => audio.add(&r.latency),
                MediaKind::Video => video.add(&r.latency),
            }
        }
        if !d.received.is_empty() {
            rates.push(per_second(bytes * 8, seconds));
        }
    }
    sent.packets_per_second = per_second(sent.packets, seconds);
    sent.bitrate_bps = per_second(sent.bytes * 8, seconds);
    received.packets_per_second = per_second(received.packets, seconds);
    received.bitrate_bps = per_second(received.bytes * 8, seconds);
    received.loss_pct = percent(received.lost, received.expected);
    // With simulcast a subscriber receives one layer of three, or none:
    // sent × subscribers says nothing about full delivery.
    let simulcast = plan.video.is_some_and(|v| v.simulcast);
    received.delivered_pct = (received.expected_deliveries > 0 && !simulcast)
        .then(|| percent(received.packets, received.expected_deliveries));
    Window {
        duration_s: seconds,
        sent,
        received,
        subscriptions: SubscriptionCounts {
            expected: expected_subscriptions(plan, slots),
            present,
            with_media,
        },
        latency_us: LatencyByKind {
            all: all.summary(),
            audio: audio.summary(),
            video: video.summary(),
        },
        subscriber_bitrate_bps: Spread::of(&rates),
        video: None,
    }
}

/// The video part of the window, from the subscriptions' reports and the
/// video watch.
fn video_report(
    plan: &Plan,
    watch: &VideoWatch,
    subscriptions: &[SubscriptionReport],
    seconds: f64,
) -> VideoReport {
    let cap = plan.video_cap();
    let mut subscribers: Vec<SubscriberVideo> = Vec::new();
    let mut layers = BTreeMap::new();
    for s in subscriptions.iter().filter(|s| s.kind == MediaKind::Video) {
        let size = match (s.width, s.height) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "unknown".into(),
        };
        *layers.entry(size).or_insert(0) += 1;
        let at = match subscribers
            .iter()
            .position(|v| v.subscriber == s.subscriber)
        {
            Some(i) => i,
            None => {
                subscribers.push(SubscriberVideo {
                    room: s.room.clone(),
                    subscriber: s.subscriber.clone(),
                    tracks: 0,
                    bitrate_bps: 0.0,
                    over_cap: false,
                    layer_switches: 0,
                    stalled: 0,
                    switched_off: 0,
                });
                subscribers.len() - 1
            }
        };
        let v = &mut subscribers[at];
        v.tracks += 1;
        v.bitrate_bps += per_second(s.bytes * 8, seconds);
        v.layer_switches += s.layer_switches.unwrap_or(0);
        v.stalled += u64::from(s.stalled == Some(true));
        v.switched_off += u64::from(s.switched_off == Some(true));
    }
    for v in &mut subscribers {
        v.over_cap = cap.is_some_and(|c| v.bitrate_bps > c as f64);
    }
    let rates: Vec<f64> = subscribers.iter().map(|v| v.bitrate_bps).collect();
    let gaps = watch.tracks().filter(|t| !t.switched_off);
    VideoReport {
        simulcast: plan.video.is_some_and(|v| v.simulcast),
        cap_bps: cap,
        mode: plan.bandwidth_profile.and_then(|p| p.mode),
        subscriber_bitrate_bps: Spread::of(&rates),
        over_cap: subscribers.iter().filter(|v| v.over_cap).count(),
        subscriptions: watch.tracks().count() as u64,
        layer_switches: watch.tracks().map(|t| t.switches).sum(),
        stalled: watch.tracks().filter(|t| t.stalled).count() as u64,
        switched_off: watch.tracks().filter(|t| t.switched_off).count() as u64,
        switch_off_reasons: BTreeMap::new(),
        longest_gap_ms: gaps
            .map(|t| t.longest_gap.as_secs_f64() * 1000.0)
            .reduce(f64::max),
        layers,
        stall_ms: STALL.as_secs_f64() * 1000.0,
        watch_interval_ms: WATCH_INTERVAL.as_secs_f64() * 1000.0,
        observations: watch.observations(),
        subscribers,
    }
}

fn server_report(
    pid: Option<u32>,
    start: &Snapshot,
    end: &Snapshot,
    seconds: f64,
    received: u64,
) -> Option<ServerReport> {
    let (metrics, metrics_error) = match (&start.metrics, &end.metrics) {
        (Some(Ok(a)), Some(Ok(b))) => (Some(b.since(a)), None),
        (Some(Err(e)), _) | (_, Some(Err(e))) => (None, Some(e.clone())),
        _ => (None, None),
    };
    if pid.is_none() && metrics.is_none() && metrics_error.is_none() {
        return None;
    }
    let cpu_seconds = start
        .server
        .zip(end.server)
        .map(|(a, b)| (b.cpu_seconds - a.cpu_seconds).max(0.0));
    let (forwarded_packets, forwarded_source) = match &metrics {
        Some(m) => (m.rtp_forwarded, "metrics"),
        None => (received, "subscribers"),
    };
    let per_cpu = cpu_seconds
        .filter(|&c| c > 0.0)
        .map(|c| forwarded_packets as f64 / c);
    let per_packet = cpu_seconds
        .filter(|_| forwarded_packets > 0)
        .map(|c| c * 1e6 / forwarded_packets as f64);
    Some(ServerReport {
        pid,
        cpu_seconds,
        cpu_cores: cpu_seconds.filter(|_| seconds > 0.0).map(|c| c / seconds),
        rss_bytes: end.server.and_then(|s| s.rss_bytes),
        peak_rss_bytes: end.server.and_then(|s| s.peak_rss_bytes),
        threads: end.server.and_then(|s| s.threads),
        metrics,
        metrics_error,
        forwarded_packets,
        forwarded_source,
        forwarded_per_cpu_second: per_cpu,
        cpu_us_per_forwarded_packet: per_packet,
    })
}

fn generator_report(window: Option<(&Snapshot, &Snapshot)>, seconds: f64) -> GeneratorReport {
    let samples = window.and_then(|(a, b)| a.generator.zip(b.generator));
    let cpu_seconds = samples.map(|(a, b)| (b.cpu_seconds - a.cpu_seconds).max(0.0));
    GeneratorReport {
        cpu_seconds,
        cpu_cores: cpu_seconds.filter(|_| seconds > 0.0).map(|c| c / seconds),
        rss_bytes: samples.and_then(|(_, b)| b.rss_bytes),
        peak_rss_bytes: samples.and_then(|(_, b)| b.peak_rss_bytes),
    }
}

fn machine_report(
    window: Option<(&Snapshot, &Snapshot)>,
    seconds: f64,
    generator_cores: Option<f64>,
    server_cores: Option<f64>,
) -> MachineReport {
    let cores = online_cores();
    let busy_cores = window
        .and_then(|(a, b)| a.machine.zip(b.machine))
        .filter(|_| seconds > 0.0)
        .map(|(a, b)| (b.busy_seconds - a.busy_seconds).max(0.0) / seconds);
    let other_cores = busy_cores
        .map(|busy| (busy - generator_cores.unwrap_or(0.0) - server_cores.unwrap_or(0.0)).max(0.0));
    MachineReport {
        cores,
        busy_cores,
        other_cores: other_cores.filter(|_| server_cores.is_some()),
    }
}

/// Every online CPU of the machine, not only those this process may run on
/// (`/proc/stat` counts them all, and the server is often pinned elsewhere).
fn online_cores() -> usize {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The CPUs this process may run on (its affinity mask, e.g. `taskset`).
fn generator_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn bitrate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else {
        format!("{:.1} kbit/s", bps / 1e3)
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} ms"))
}

fn us_as_ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{:.3}", v as f64 / 1000.0))
}

fn mib(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| {
        format!("{:.1} MiB", v as f64 / (1024.0 * 1024.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_quantiles_are_nearest_rank() {
        let d = DurationSummary::of((1..=100).map(Duration::from_millis).collect());
        assert_eq!(d.count, 100);
        assert_eq!(d.p50, Some(50.0));
        assert_eq!(d.p99, Some(99.0));
        assert_eq!(d.max, Some(100.0));
        assert_eq!(d.mean, Some(50.5));
        let empty = DurationSummary::of(Vec::new());
        assert_eq!((empty.count, empty.p50, empty.mean), (0, None, None));
    }

    #[test]
    fn spreads_and_formats() {
        let s = Spread::of(&[1.0, 3.0, 2.0]);
        assert_eq!((s.mean, s.min, s.max), (Some(2.0), Some(1.0), Some(3.0)));
        assert_eq!(bitrate(1_500_000.0), "1.50 Mbit/s");
        assert_eq!(bitrate(40_000.0), "40.0 kbit/s");
        assert_eq!(us_as_ms(Some(1234)), "1.234");
        assert_eq!(percent(1, 0), 0.0);
    }
}

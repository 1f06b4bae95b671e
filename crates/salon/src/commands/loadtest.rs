//! `salon loadtest`: drive a running Salon server on this machine with rooms
//! of synthetic participants and report what it forwarded, how late, what
//! was lost, and what it cost the server in CPU and memory.
//!
//! This module only turns the command line into a [`salon_loadtest::Plan`]
//! and a [`salon_loadtest::SalonTarget`] (resolving the URL and the signing
//! key), prints the progress line, and writes the report; the
//! `salon-loadtest` crate does the work. With `--target floor` the target
//! is a [`salon_loadtest::FloorTarget`] on a relay floor, started here
//! (`salon bench-relay`) unless `--url` names a running one.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use salon_loadtest::metrics::Scraper;
use salon_loadtest::{AudioShape, FloorTarget, Plan, RunOptions, SalonTarget, Target, VideoShape};
use salon_server::{Credentials, Metrics};
use salon_token::ApiKey;

use crate::bootstrap;
use crate::commands::bench_relay;
use crate::settings::Settings;

/// Load-test a running Salon server (or the relay floor) on this machine
///
/// Joins rooms of synthetic participants that publish Opus-shaped audio
/// (50 packets/s) and VP8-shaped video, measures every packet they receive
/// (loss by RTP sequence number; one-way latency from the send time each
/// packet carries, exact because sender and receiver share this machine's
/// clock), and reports join times, packets, loss, latency, subscriber
/// bitrate and, with --server-pid, the server's CPU time and memory — as a
/// live progress line on stderr, a table, and JSON (--json).
///
/// Every room has --publishers participants that publish audio and video AND
/// subscribe to every other publisher in the room, and --subscribers
/// participants that publish nothing and subscribe to every publisher. A
/// meeting of 4 in each of 2 rooms: `--rooms 2 --publishers 4`; a webinar
/// of one presenter to 20: `--publishers 1 --subscribers 20`.
///
/// Joins are spread evenly over --ramp; then the run waits (at most
/// --settle) until every subscription receives media, and measures for
/// --duration. Only that window counts. Then everyone leaves and the tool
/// exits. Loopback targets only; tokens are signed with the data
/// directory's API key (as `salon token create` does) or with --account-sid,
/// --api-key and --api-secret.
///
/// `--target floor` measures the relay floor instead of Salon: the same
/// participants and media through `salon bench-relay`, a bare one-thread
/// relay doing only the SRTP work forwarding cannot avoid. Without --url it
/// starts one on a free loopback port and measures its process (no
/// --server-pid needed); --floor-cpu pins it, --floor-batch makes it batch
/// its syscalls.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Load test")]
pub struct LoadtestArgs {
    /// What to load: a Salon server, or the relay floor (see `salon bench-relay`)
    #[arg(long, value_enum, default_value_t = TargetKind::Salon, value_name = "KIND")]
    pub target: TargetKind,

    /// The server under test, on loopback: Salon's signaling URL [default: ws://<--listen>/v1/signaling]; with --target floor a running relay's udp://HOST:PORT [default: start one]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Number of rooms, all of the same shape
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rooms: u32,

    /// Participants per room that publish audio and video (see --no-audio, --no-video); each also subscribes to the other publishers of its room
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub publishers: u32,

    /// Participants per room that publish nothing and subscribe to every publisher of their room
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub subscribers: u32,

    /// Video bitrate per publisher, bits per second; k and M suffixes work (800k, 1.5M)
    #[arg(long, default_value = "1.5M", value_name = "BPS", value_parser = parse_bitrate)]
    pub video_bitrate: u32,

    /// Video frames per second (1–60)
    #[arg(long, default_value_t = 30, value_name = "FPS")]
    pub video_fps: u32,

    /// Audio bitrate per publisher, bits per second (packet size = bitrate / 8 / 50)
    #[arg(long, default_value = "40k", value_name = "BPS", value_parser = parse_bitrate)]
    pub audio_bitrate: u32,

    /// Publishers send no video
    #[arg(long)]
    pub no_video: bool,

    /// Publishers send no audio
    #[arg(long)]
    pub no_audio: bool,

    /// Spread the joins evenly over this long (e.g. 5s, 500ms, 1m; 0 joins everyone at once)
    #[arg(long, default_value = "2s", value_name = "TIME", value_parser = parse_duration)]
    pub ramp: Duration,

    /// After the ramp, wait at most this long for every subscription's media before measuring anyway
    #[arg(long, default_value = "10s", value_name = "TIME", value_parser = parse_duration)]
    pub settle: Duration,

    /// Length of the measurement window (at most 1h)
    #[arg(long, default_value = "20s", value_name = "TIME", value_parser = parse_duration)]
    pub duration: Duration,

    /// PID of the server process: report its CPU time, RSS and peak RSS from /proc/PID [default with --target floor and no --url: the relay it starts]
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// With --target floor and no --url: pin the relay it starts to this CPU (Linux)
    #[arg(long, value_name = "CPU")]
    pub floor_cpu: Option<usize>,

    /// With --target floor and no --url: the relay batches its syscalls (recvmmsg/sendmmsg) instead of the plain recvfrom/sendto floor
    #[arg(long)]
    pub floor_batch: bool,

    /// The server's metrics endpoint, for its forwarded-packet counters [default: http://<URL's host:port>/metrics]
    #[arg(long, value_name = "URL", conflicts_with = "no_metrics")]
    pub metrics_url: Option<String>,

    /// Do not read the server's /metrics (forwarded packets are then what subscribers received)
    #[arg(long)]
    pub no_metrics: bool,

    /// Also write the results as JSON to FILE; `-` writes JSON to stdout and the table to stderr
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Room names are <PREFIX>-<n>, identities <PREFIX>-<n>-p<k> and <PREFIX>-<n>-s<k> [default: lt-<random>]
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,

    /// No progress line
    #[arg(long, short)]
    pub quiet: bool,
}

/// The kinds of server `salon loadtest` can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// A Salon server, through its signaling endpoint
    Salon,
    /// The relay floor (`salon bench-relay`), over UDP
    Floor,
}

pub async fn run(settings: &Settings, args: LoadtestArgs) -> Result<ExitCode> {
    let plan = Plan {
        rooms: args.rooms,
        publishers: args.publishers,
        subscribers: args.subscribers,
        audio: (!args.no_audio).then_some(AudioShape {
            bitrate_bps: args.audio_bitrate,
        }),
        video: (!args.no_video).then_some(VideoShape {
            bitrate_bps: args.video_bitrate,
            fps: args.video_fps,
        }),
        ramp: args.ramp,
        settle: args.settle,
        duration: args.duration,
        prefix: args
            .name_prefix
            .clone()
            .unwrap_or_else(|| format!("lt-{:04x}", rand::random::<u16>())),
    };
    plan.validate()?;
    if args.target == TargetKind::Floor {
        return run_floor(plan, &args).await;
    }

    let url = args
        .url
        .clone()
        .unwrap_or_else(|| default_url(settings.listen));
    let signaling = salon_loadtest::loopback::check(&url, &["ws"]).await?;
    let metrics = if args.no_metrics {
        None
    } else {
        let url = match &args.metrics_url {
            Some(url) => url.clone(),
            None => salon_loadtest::loopback::metrics_url(&signaling)
                .context("cannot derive the metrics URL: pass --metrics-url or --no-metrics")?,
        };
        salon_loadtest::loopback::check(&url, &["http"]).await?;
        Some(Scraper::new(url)?)
    };

    let key = signing_key(settings).await?;
    let ttl = plan.ramp + plan.settle + plan.duration + Duration::from_secs(300);
    let target = Arc::new(SalonTarget::new(url, key, ttl));
    let options = RunOptions {
        server_pid: args.server_pid,
        metrics,
        progress_interval: Duration::from_secs(1),
        plan,
    };
    execute(target, options, &args).await
}

/// `--target floor`: a running relay at --url, or one started here.
async fn run_floor(plan: Plan, args: &LoadtestArgs) -> Result<ExitCode> {
    let (addr, spawned) = match &args.url {
        Some(url) => {
            let parsed = salon_loadtest::loopback::check(url, &["udp"]).await?;
            let addr = match (parsed.host_str(), parsed.port()) {
                (Some(host), Some(port)) => {
                    tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
                        .await
                        .ok()
                        .and_then(|mut addrs| addrs.find(|a| a.ip().is_loopback()))
                }
                _ => None,
            };
            let addr = addr.with_context(|| {
                format!("{url:?} is not a relay address like udp://127.0.0.1:7998")
            })?;
            (addr, None)
        }
        None => {
            let relay = bench_relay::spawn(args.floor_batch, args.floor_cpu).await?;
            (relay.addr, Some(relay))
        }
    };
    let options = RunOptions {
        server_pid: args.server_pid.or(spawned.as_ref().map(|r| r.pid)),
        metrics: None,
        progress_interval: Duration::from_secs(1),
        plan,
    };
    let result = execute(Arc::new(FloorTarget::new(addr)), options, args).await;
    if let Some(relay) = spawned {
        relay.stop().await;
    }
    result
}

/// Run the plan against `target`, with the progress line, and write the
/// report.
async fn execute<T: Target>(
    target: Arc<T>,
    options: RunOptions,
    args: &LoadtestArgs,
) -> Result<ExitCode> {
    let live = !args.quiet;
    let terminal = std::io::stderr().is_terminal();
    let report = salon_loadtest::run(target, options, |progress| {
        if live {
            let mut err = std::io::stderr().lock();
            if terminal {
                let _ = write!(err, "\r\x1b[K{progress}");
            } else {
                let _ = writeln!(err, "{progress}");
            }
            let _ = err.flush();
        }
    })
    .await?;
    if live && terminal {
        eprintln!();
    }

    let table = report.table();
    match args.json.as_deref() {
        Some("-") => {
            eprint!("{table}");
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create the JSON report {path}"))?;
            let mut file = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut file, &report)?;
            writeln!(file)?;
            file.flush()
                .with_context(|| format!("cannot write the JSON report {path}"))?;
            print!("{table}");
        }
        None => print!("{table}"),
    }
    Ok(if report.window.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `ws://<listen>/v1/signaling`, on loopback when the server listens on
/// every address.
fn default_url(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "ws://{}/v1/signaling",
        std::net::SocketAddr::new(ip, listen.port())
    )
}

/// The key that signs the participants' tokens: the configured one, or the
/// data directory's oldest active key (as `salon token create` picks it).
async fn signing_key(settings: &Settings) -> Result<ApiKey> {
    let c = &settings.credentials;
    if let (Some(account), Some(key), Some(secret)) = (c.account_sid, c.api_key, &c.api_secret) {
        return Ok(ApiKey::new(key, account, secret.clone()));
    }
    let database = settings.data_dir.join(salon_store::DATABASE_FILE);
    if !database.exists() {
        bail!(
            "no credentials to sign tokens with: {} does not exist. Point --data-dir at the server's data directory, or pass --account-sid, --api-key and --api-secret",
            database.display()
        );
    }
    let store = bootstrap::open_store(&settings.data_dir).await?;
    let (account, _) = bootstrap::ensure_account(&store, settings).await?;
    let credentials = Credentials::load(&store, account.sid, Arc::new(Metrics::new())).await?;
    store.close().await;
    credentials.signing_key(account.sid).with_context(|| {
        format!(
            "no active API key in {}: create one with `salon keys create`",
            settings.data_dir.display()
        )
    })
}

/// `20s`, `500ms`, `2m`, `1.5s`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 20s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// `1500000`, `1.5M`, `800k`.
fn parse_bitrate(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let (number, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1e3),
        Some((i, 'm' | 'M')) => (&text[..i], 1e6),
        _ => (text, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a bitrate like 1500000, 1.5M or 800k"))?;
    let bps = value * scale;
    if !bps.is_finite() || bps < 0.0 || bps > f64::from(u32::MAX) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bps.round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn bitrates_take_k_and_m() {
        assert_eq!(parse_bitrate("1.5M"), Ok(1_500_000));
        assert_eq!(parse_bitrate("800k"), Ok(800_000));
        assert_eq!(parse_bitrate("40000"), Ok(40_000));
        assert!(parse_bitrate("lots").is_err());
        assert!(parse_bitrate("9000M").is_err());
    }

    #[test]
    fn the_default_url_is_loopback() {
        assert_eq!(
            default_url("0.0.0.0:3000".parse().unwrap()),
            "ws://127.0.0.1:3000/v1/signaling"
        );
        assert_eq!(
            default_url("127.0.0.1:3999".parse().unwrap()),
            "ws://127.0.0.1:3999/v1/signaling"
        );
        assert_eq!(
            default_url("[::]:3000".parse().unwrap()),
            "ws://[::1]:3000/v1/signaling"
        );
    }
}

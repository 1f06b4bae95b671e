//! `salon loadtest`: drive a running Salon server on this machine — or
//! Janus's VideoRoom, side by side — with rooms of synthetic participants
//! and report what it forwarded, how late, what was lost, and what it cost
//! the server in CPU and memory.
//!
//! This module only turns the command line into a [`salon_loadtest::Plan`]
//! and a target — [`salon_loadtest::SalonTarget`] (resolving the URL and
//! the signing key) or [`salon_loadtest::JanusTarget`] (starting Janus with
//! [`salon_loadtest::janus::server`] unless it is already running) — prints
//! the progress line, and writes the report; the `salon-loadtest` crate
//! does the work. [`prepare`] runs before the async runtime exists: it
//! installs Janus when needed and enters the network namespace it runs in.
//! With `--target floor` the target is a [`salon_loadtest::FloorTarget`] on
//! the relay floor, started here (`salon bench-relay`) unless `--url` names
//! a running one.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use salon_loadtest::janus::netns;
use salon_loadtest::janus::server::{self as janus_server, JanusOptions, JanusServer};
use salon_loadtest::metrics::Scraper;
use salon_loadtest::{
    AudioShape, BandwidthMode, BandwidthProfile, FloorTarget, JanusTarget, Plan, Report,
    RunOptions, SalonTarget, Target, VideoShape,
};
use salon_server::{Credentials, Metrics};
use salon_token::ApiKey;

use crate::bootstrap;
use crate::commands::bench_relay;
use crate::settings::Settings;

/// Load-test a running Salon server on this machine (or Janus, or the relay floor, side by side)
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
/// `--target janus` measures Janus's VideoRoom plugin (Debian's `janus`)
/// with the same participants, media and measurements. The tool installs
/// Janus with apt-get when it is missing (as root), starts it with a
/// configuration of its own (only VideoRoom and the WebSocket API, on
/// loopback; Janus's defaults otherwise), runs the plan, and stops it; its
/// PID gives the server figures. Janus never does ICE on loopback
/// interfaces, so the tool runs itself and its Janus in a private network
/// namespace where the loopback address 127.0.0.2 sits on an interface
/// Janus gathers from (this needs root, or unprivileged user namespaces);
/// the media still goes through the loopback device and nothing leaves the
/// machine. Forwarded packets are what the subscribers received (Janus has
/// no /metrics). Pin Janus with --janus-cpus as you pin Salon with taskset:
/// `taskset -c 1 salon loadtest --target janus --janus-cpus 0`.
///
/// --simulcast publishes each camera as three RID layers, as libwebrtc
/// sends a 1280x720 camera: q 320x180, h 640x360, f 1280x720 at 1/10, 1/3
/// and all of --video-bitrate (150k, 500k, 1.5M from the default), each at
/// --video-fps. --max-subscription-bitrate and --mode make every
/// participant set Twilio's bandwidth profile (maxSubscriptionBitrate, a cap
/// on the video it receives, which the server's allocation must respect;
/// mode grid, collaboration or presentation). With video, the report adds
/// each subscriber's received video bitrate against the cap (mean, min,
/// max, how many over it), layer switches (changes of the received
/// keyframe size, looked at every 250 ms), the layers received at the end,
/// and stalled subscriptions (video silent for more than 2 s while the
/// server had not switched it off). --render makes every subscriber report
/// a render size for each video track, as twilio-video does for its video
/// elements; --speakers N lets only N publishers per room speak (with an
/// audio level the dominant-speaker detection hears) while the others send
/// Opus DTX silence. A room of 50 in grid mode, each tile of a 7x7 grid in
/// a 1920x1080 window, two speakers, with a cap that holds all 49 quarter
/// layers (a lower one switches tracks off): `--publishers 50 --simulcast
/// --max-subscription-bitrate 10M --mode grid --render 274x154 --speakers 2`.
///
/// `--target floor` measures the relay floor: the same participants and
/// media through `salon bench-relay`, a bare one-thread relay doing only the
/// SRTP work forwarding cannot avoid. Without --url it starts one on a free
/// loopback port and measures its process (no --server-pid needed);
/// --floor-cpu pins it, --floor-batch makes it batch its syscalls.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Load test")]
pub struct LoadtestArgs {
    /// The server under test: a running Salon server, Janus's VideoRoom, or the relay floor
    #[arg(long, value_enum, default_value_t = TargetKind::Salon)]
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

    /// Salon: each publisher's video is three RID simulcast layers, libwebrtc's for a 1280x720 camera: 320x180, 640x360 and 1280x720 at 1/10, 1/3 and all of --video-bitrate (150k/500k/1.5M by default)
    #[arg(long, conflicts_with = "no_video")]
    pub simulcast: bool,

    /// Salon: every participant sets Twilio's bandwidth profile maxSubscriptionBitrate to this (bits per second of video it receives; k and M work), a cap the server's allocation must respect
    #[arg(long, value_name = "BPS", value_parser = parse_bitrate)]
    pub max_subscription_bitrate: Option<u32>,

    /// Salon: every participant sets this bandwidth profile mode [default: the server's, grid]
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ModeArg>,

    /// Salon: every participant sends REMB, its own estimate of its downlink, as Chromium's receive-side estimator does on a link where nothing queues (from what arrived after 5 s, growing 8% a second up to 1.5 times what arrives); what a server started with --bandwidth-estimation remb allocates on [default: none, and such a server is bounded by the caps alone]
    #[arg(long)]
    pub remb: bool,

    /// Publishers send no audio
    #[arg(long)]
    pub no_audio: bool,

    /// In each room, only the first N publishers speak (50 audio packets/s with a speaking RFC 6464 level); the others publish silence with Opus DTX, as twilio-video does by default (5 small packets/s) [default: everyone sends 50 packets/s, no level]
    #[arg(long, value_name = "N", conflicts_with = "no_audio")]
    pub speakers: Option<u32>,

    /// Salon: every subscriber reports this render size (WIDTHxHEIGHT) for each video track it receives, as twilio-video's contentPreferencesMode 'auto' reports its video elements' size
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub render: Option<(u32, u32)>,

    /// Spread the joins evenly over this long (e.g. 5s, 500ms, 1m; 0 joins everyone at once)
    #[arg(long, default_value = "2s", value_name = "TIME", value_parser = parse_duration)]
    pub ramp: Duration,

    /// After the ramp, wait at most this long for every subscription's media before measuring anyway
    #[arg(long, default_value = "10s", value_name = "TIME", value_parser = parse_duration)]
    pub settle: Duration,

    /// Length of the measurement window (at most 1h)
    #[arg(long, default_value = "20s", value_name = "TIME", value_parser = parse_duration)]
    pub duration: Duration,

    /// Salon: every participant's media goes through the TURN server its `joined` names (UDP, channel data), as a browser with iceTransportPolicy 'relay' would: the built-in TURN's cost beside direct UDP
    #[arg(long, conflicts_with = "ice_tcp")]
    pub relay: bool,

    /// Salon: every participant's media goes over ICE-TCP to the media port (RFC 6544, RFC 4571 framing) instead of UDP
    #[arg(long)]
    pub ice_tcp: bool,

    /// PID of the server process: report its CPU time, RSS and peak RSS from /proc/PID (a Janus the tool starts is read without it)
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// With --target floor and no --url: pin the relay it starts to this CPU (Linux)
    #[arg(long, value_name = "CPU")]
    pub floor_cpu: Option<usize>,

    /// With --target floor and no --url: the relay batches its syscalls (recvmmsg/sendmmsg) instead of the plain recvfrom/sendto floor
    #[arg(long)]
    pub floor_batch: bool,

    /// Salon's metrics endpoint, for its forwarded-packet counters [default: http://<URL's host:port>/metrics]
    #[arg(long, value_name = "URL", conflicts_with = "no_metrics")]
    pub metrics_url: Option<String>,

    /// Do not read Salon's /metrics (forwarded packets are then what subscribers received, as always for Janus)
    #[arg(long)]
    pub no_metrics: bool,

    /// Also write the results as JSON to FILE; `-` writes JSON to stdout and the table to stderr
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// The WebSocket API of a Janus already running (implies --target janus); it must gather its ICE candidates on the interface that holds --janus-bind-ip. Without it, the tool starts its own Janus
    #[arg(long, value_name = "URL", help_heading = "Janus")]
    pub janus_url: Option<String>,

    /// The address the participants' media binds; must be loopback, on the interface an already-running Janus gathers on [default: 127.0.0.2]
    #[arg(
        long,
        value_name = "IP",
        requires = "janus_url",
        help_heading = "Janus"
    )]
    pub janus_bind_ip: Option<IpAddr>,

    /// The janus binary to start [default: janus on PATH, installed with apt-get when missing and root]
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "janus_url",
        help_heading = "Janus"
    )]
    pub janus_bin: Option<PathBuf>,

    /// Pin the Janus the tool starts (all its threads) to these CPUs, as `taskset -c` takes them: 0, 0-1, 0,2
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus, conflicts_with = "janus_url", help_heading = "Janus")]
    pub janus_cpus: Option<CpuList>,

    /// Write the log of the Janus the tool starts to FILE (by default it goes with its temporary directory)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "janus_url",
        help_heading = "Janus"
    )]
    pub janus_log: Option<PathBuf>,

    /// Room names are <PREFIX>-<n>, identities <PREFIX>-<n>-p<k> and <PREFIX>-<n>-s<k> [default: lt-<random>]
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,

    /// Salon only: create each room through the REST API with RecordParticipantsOnConnect=true before anyone joins, so the server records every published track (the cost of recording; the files go to the server's recordings directory)
    #[arg(long)]
    pub record: bool,

    /// No progress line
    #[arg(long, short)]
    pub quiet: bool,
}

/// Which server `salon loadtest` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// A running Salon server (--url)
    Salon,
    /// Janus's VideoRoom plugin: started by the tool, or the one at --janus-url
    Janus,
    /// The relay floor (`salon bench-relay`), over UDP: started by the tool, or the one at --url
    Floor,
}

/// Twilio's bandwidth profile modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Grid,
    Collaboration,
    Presentation,
}

impl From<ModeArg> for BandwidthMode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Grid => BandwidthMode::Grid,
            ModeArg::Collaboration => BandwidthMode::Collaboration,
            ModeArg::Presentation => BandwidthMode::Presentation,
        }
    }
}

/// CPUs to pin a process to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

fn parse_cpus(text: &str) -> Result<CpuList, String> {
    janus_server::parse_cpus(text).map(CpuList)
}

impl LoadtestArgs {
    fn janus(&self) -> bool {
        self.target == TargetKind::Janus || self.janus_url.is_some()
    }

    /// The bandwidth profile every participant sets, if any.
    fn bandwidth_profile(&self) -> Option<BandwidthProfile> {
        (self.max_subscription_bitrate.is_some() || self.mode.is_some()).then(|| BandwidthProfile {
            max_subscription_bitrate_bps: self.max_subscription_bitrate.map(u64::from),
            mode: self.mode.map(BandwidthMode::from),
        })
    }
}

/// What [`prepare`] did before the runtime started.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The `janus` binary to start, when the tool starts Janus itself (this
    /// process is then in its private network namespace).
    janus: Option<PathBuf>,
}

/// Before the async runtime exists: when the tool is to start Janus itself,
/// find or install it (and `ip`, from iproute2) while the network is still
/// there, then move this process into the network namespace Janus runs in
/// (see [`salon_loadtest::janus::netns`]).
pub fn prepare(args: &LoadtestArgs) -> Result<Prepared> {
    salon_only(args)?;
    if !args.janus() || args.janus_url.is_some() {
        return Ok(Prepared::default());
    }
    let mut say = |line: &str| eprintln!("salon loadtest: {line}");
    let janus = match &args.janus_bin {
        Some(path) => janus_server::find(&path.to_string_lossy())
            .with_context(|| format!("--janus-bin {} is not a file", path.display()))?,
        None => janus_server::find_or_install("janus", "janus", &mut say)?,
    };
    let ip = janus_server::find_or_install("ip", "iproute2", &mut say)?;
    netns::isolate(&ip)?;
    Ok(Prepared { janus: Some(janus) })
}

/// Refuse Salon-only flags for the other targets: the Janus target
/// publishes one video stream per camera and asks VideoRoom for no
/// substream; the floor relays whatever it gets and allocates nothing.
fn salon_only(args: &LoadtestArgs) -> Result<()> {
    if (args.janus() || args.target == TargetKind::Floor)
        && (args.simulcast
            || args.bandwidth_profile().is_some()
            || args.render.is_some()
            || args.remb)
    {
        bail!(
            "--simulcast, --max-subscription-bitrate, --mode, --render and --remb are for Salon: the Janus and floor targets publish one video stream and set no bandwidth profile or render size"
        );
    }
    Ok(())
}

/// Interrupted by Ctrl-C.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

pub async fn run(settings: &Settings, args: LoadtestArgs, prepared: Prepared) -> Result<ExitCode> {
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
            simulcast: args.simulcast,
        }),
        bandwidth_profile: args.bandwidth_profile(),
        remb: args.remb,
        speakers: args.speakers,
        render: args.render,
        ramp: args.ramp,
        settle: args.settle,
        duration: args.duration,
        prefix: args
            .name_prefix
            .clone()
            .unwrap_or_else(|| format!("lt-{:04x}", rand::random::<u16>())),
    };
    plan.validate()?;
    salon_only(&args)?;

    let report = if args.target == TargetKind::Floor {
        run_floor(&args, plan).await
    } else if args.janus() {
        run_janus(&args, plan, prepared).await
    } else {
        run_salon(settings, &args, plan).await
    };
    let report = match report {
        Ok(report) => report,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("salon loadtest: interrupted");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e),
    };

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

/// A run against a Salon server.
async fn run_salon(settings: &Settings, args: &LoadtestArgs, plan: Plan) -> Result<Report> {
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
    let transport = if args.relay {
        salon_loadtest::MediaTransport::Relay
    } else if args.ice_tcp {
        salon_loadtest::MediaTransport::Tcp
    } else {
        salon_loadtest::MediaTransport::Udp
    };
    let mut target = SalonTarget::new(url, key, ttl).transport(transport);
    if args.record {
        let metrics = salon_loadtest::loopback::metrics_url(&signaling)
            .context("cannot derive the REST URL from the signaling URL")?;
        target = target.record_rooms(metrics.trim_end_matches("/metrics"));
    }
    let target = Arc::new(target);
    let options = RunOptions {
        server_pid: args.server_pid,
        metrics,
        progress_interval: Duration::from_secs(1),
        plan,
    };
    execute(target, options, args.quiet).await
}

/// A run against Janus: the one at --janus-url, or one started for it (and
/// stopped after it, whatever happens).
async fn run_janus(args: &LoadtestArgs, plan: Plan, prepared: Prepared) -> Result<Report> {
    if args.record {
        bail!("--record asks Salon to record its rooms; Janus is measured without recording");
    }
    if args.url.is_some() {
        bail!("--url is a Salon signaling URL; an already-running Janus is --janus-url");
    }
    if args.metrics_url.is_some() {
        bail!(
            "Janus has no /metrics: forwarded packets are what the subscribers receive (drop --metrics-url)"
        );
    }
    let server = match (&args.janus_url, prepared.janus) {
        (Some(_), _) => None,
        (None, Some(program)) => {
            if args.server_pid.is_some() {
                bail!("--server-pid: the tool starts Janus itself and reads its PID");
            }
            let options = JanusOptions {
                cpus: args.janus_cpus.clone().map(|c| c.0),
                log: args.janus_log.clone(),
                ..JanusOptions::new(program)
            };
            let server = JanusServer::start(&options).await?;
            if !args.quiet {
                eprintln!(
                    "salon loadtest: started {} (pid {}) at {}{}",
                    options.program.display(),
                    server.pid(),
                    server.url(),
                    options
                        .cpus
                        .as_ref()
                        .map_or(String::new(), |c| format!(", on CPUs {c:?}"))
                );
            }
            Some(server)
        }
        (None, None) => bail!("Janus was not prepared before the runtime started"),
    };
    let result = async {
        let url = match (&server, &args.janus_url) {
            (Some(server), _) => server.url().to_string(),
            (None, Some(url)) => url.clone(),
            (None, None) => bail!("no Janus to test"),
        };
        salon_loadtest::loopback::check(&url, &["ws"]).await?;
        let bind_ip = args.janus_bind_ip.unwrap_or(IpAddr::V4(netns::ICE_ADDRESS));
        if !bind_ip.is_loopback() {
            bail!("--janus-bind-ip {bind_ip} is not a loopback address");
        }
        let target = Arc::new(JanusTarget::new(url).bind_ip(bind_ip));
        let options = RunOptions {
            server_pid: server.as_ref().map(JanusServer::pid).or(args.server_pid),
            metrics: None,
            progress_interval: Duration::from_secs(1),
            plan,
        };
        execute(target, options, args.quiet).await
    }
    .await;
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

/// `--target floor`: a running relay at --url, or one started here (and
/// stopped after the run, whatever happens).
async fn run_floor(args: &LoadtestArgs, plan: Plan) -> Result<Report> {
    if args.record {
        bail!("--record asks Salon to record its rooms; the relay floor records nothing");
    }
    if args.janus_url.is_some() {
        bail!("--janus-url is for --target janus");
    }
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
    let result = execute(Arc::new(FloorTarget::new(addr)), options, args.quiet).await;
    if let Some(relay) = spawned {
        relay.stop().await;
    }
    result
}

/// Run the plan with the progress line on stderr; Ctrl-C ends it.
async fn execute<T: Target>(target: Arc<T>, options: RunOptions, quiet: bool) -> Result<Report> {
    let live = !quiet;
    let terminal = std::io::stderr().is_terminal();
    let run = salon_loadtest::run(target, options, |progress| {
        if live {
            let mut err = std::io::stderr().lock();
            if terminal {
                let _ = write!(err, "\r\x1b[K{progress}");
            } else {
                let _ = writeln!(err, "{progress}");
            }
            let _ = err.flush();
        }
    });
    let report = tokio::select! {
        report = run => report?,
        _ = tokio::signal::ctrl_c() => {
            if live && terminal {
                eprintln!();
            }
            return Err(Interrupted.into());
        }
    };
    if live && terminal {
        eprintln!();
    }
    Ok(report)
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
    if settings.database_url.is_none() && !database.exists() {
        bail!(
            "no credentials to sign tokens with: {} does not exist. Point --data-dir at the server's data directory, or pass --account-sid, --api-key and --api-secret",
            database.display()
        );
    }
    let store = bootstrap::open_store(settings).await?;
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
/// `320x180`: a width and a height.
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not WIDTHxHEIGHT (e.g. 320x180)");
    let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let side = |v: &str| v.trim().parse::<u32>().map_err(|_| bad());
    Ok((side(w)?, side(h)?))
}

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

    fn parse(args: &[&str]) -> Result<LoadtestArgs, clap::Error> {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(["salon", "loadtest"].iter().chain(args).copied())?;
        match cli.command {
            Some(crate::cli::Command::Loadtest(args)) => Ok(args),
            other => panic!("not a load test: {other:?}"),
        }
    }

    #[test]
    fn janus_flags_choose_the_target() {
        let salon = parse(&[]).unwrap();
        assert!(!salon.janus());
        let managed = parse(&["--target", "janus", "--janus-cpus", "0,2-3"]).unwrap();
        assert!(managed.janus() && managed.janus_url.is_none());
        assert_eq!(managed.janus_cpus, Some(CpuList(vec![0, 2, 3])));
        // An already-running Janus implies the target.
        let running = parse(&["--janus-url", "ws://127.0.0.1:8188"]).unwrap();
        assert!(running.janus());
        // Flags for a Janus the tool starts make no sense with one it does not.
        assert!(parse(&["--janus-url", "ws://127.0.0.1:8188", "--janus-cpus", "0"]).is_err());
        assert!(parse(&["--janus-bind-ip", "127.0.0.3"]).is_err());
        assert!(parse(&["--target", "janus", "--janus-cpus", "zero"]).is_err());
        assert!(parse(&["--target", "mediasoup"]).is_err());
        // Simulcast and a bandwidth profile.
        let large = parse(&[
            "--simulcast",
            "--max-subscription-bitrate",
            "2.5M",
            "--mode",
            "grid",
        ])
        .unwrap();
        assert!(large.simulcast);
        assert_eq!(
            large.bandwidth_profile(),
            Some(BandwidthProfile {
                max_subscription_bitrate_bps: Some(2_500_000),
                mode: Some(BandwidthMode::Grid),
            })
        );
        assert_eq!(salon.bandwidth_profile(), None);
        assert!(parse(&["--simulcast", "--no-video"]).is_err());
        assert!(parse(&["--mode", "gallery"]).is_err());
        // Speakers and render dimensions.
        let grid = parse(&["--speakers", "2", "--render", "274x154"]).unwrap();
        assert_eq!((grid.speakers, grid.render), (Some(2), Some((274, 154))));
        assert!(parse(&["--render", "274"]).is_err());
        assert!(parse(&["--render", "axb"]).is_err());
        assert!(parse(&["--speakers", "2", "--no-audio"]).is_err());
        // Nothing to prepare for Salon or for a Janus already running.
        assert!(prepare(&salon).unwrap().janus.is_none());
        assert!(prepare(&running).unwrap().janus.is_none());
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

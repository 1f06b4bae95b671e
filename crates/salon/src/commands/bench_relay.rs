//! `salon bench-relay`: the relay floor (`salon-floor`) as a process of its
//! own, so `/proc` can measure it like a Salon server; and the helper that
//! lets `salon loadtest --target floor` start one.
//!
//! The relay runs on the main thread, before and without the async runtime:
//! the floor is one thread by design, and its process should hold nothing
//! else.

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use salon_floor::{Mode, Relay};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Run the relay floor: a bare SRTP relay to measure Salon against
///
/// DESIGN.md's target is server CPU per forwarded packet within 2× of a bare
/// UDP relay doing the same SRTP work; this is that relay. One thread, a
/// plain recvfrom/sendto loop: it SRTP-unprotects each packet with its
/// sender's key and SRTP-protects it for every other participant of the
/// room with that participant's key (SRTP_AEAD_AES_256_GCM, the profile
/// Salon's peers negotiate, on the same aws-lc-rs primitives). No ICE, no
/// DTLS, no RTCP: participants join with a control datagram carrying their
/// room, SSRCs and keys, which is why it serves loopback only.
///
/// It prints its address (udp://HOST:PORT) on stdout, serves until SIGINT
/// or SIGTERM, then prints what it counted on stderr. Drive it with
/// `salon loadtest --target floor --url udp://HOST:PORT --server-pid PID`,
/// or let `salon loadtest --target floor` start one.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Relay floor")]
pub struct BenchRelayArgs {
    /// UDP address to serve on, loopback only (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:7998", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Batch syscalls: recvmmsg/sendmmsg instead of one recvfrom/sendto per datagram (Linux)
    #[arg(long)]
    pub batch: bool,

    /// Pin the relay to this CPU, as `taskset -c CPU` would (Linux)
    #[arg(long, value_name = "CPU")]
    pub cpu: Option<usize>,
}

/// Serve until a signal; no async runtime exists while it runs.
pub fn run(args: BenchRelayArgs) -> Result<ExitCode> {
    let mode = if args.batch {
        Mode::Batched
    } else {
        Mode::Plain
    };
    if let Some(cpu) = args.cpu {
        salon_floor::pin_to_cpu(cpu)
            .with_context(|| format!("cannot pin the relay to CPU {cpu}"))?;
    }
    let socket = salon_floor::bind(args.bind)?;
    let addr = socket
        .local_addr()
        .context("the relay's socket has no address")?;
    let stop = salon_floor::stop_on_signals().context("cannot install signal handlers")?;
    // The first line on stdout is the address: `salon loadtest` reads it.
    println!("udp://{addr}");
    tracing::info!(
        "relay floor on udp://{addr} ({mode}, {}), pid {}",
        salon_floor::Profile::SALON,
        std::process::id()
    );

    let mut relay = Relay::default();
    let sockets = salon_floor::serve(&socket, &mut relay, mode, stop)
        .with_context(|| format!("the relay's socket failed ({mode})"))?;
    let s = relay.stats();
    eprintln!(
        "salon bench-relay: received {} datagrams ({} SRTP, {} RTCP ignored, {} control), forwarded {} packets, dropped {} ({} malformed, {} from unknown addresses, {} unknown SSRCs, {} unauthenticated), {} receive and {} send syscalls, {} send errors",
        s.datagrams,
        s.rtp_received,
        s.rtcp_ignored,
        s.control,
        s.rtp_forwarded,
        s.dropped(),
        s.malformed,
        s.unknown_source,
        s.unknown_ssrc,
        s.unauthenticated,
        sockets.receive_calls,
        sockets.send_calls,
        sockets.send_errors
    );
    Ok(ExitCode::SUCCESS)
}

/// A relay floor this process started for a load test; killed when dropped.
pub struct SpawnedRelay {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

/// How long a started relay gets to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Start `salon bench-relay` (this very executable) on a free loopback
/// port, and wait for its address.
pub async fn spawn(batch: bool, cpu: Option<usize>) -> Result<SpawnedRelay> {
    let exe = std::env::current_exe().context("cannot find this executable to start the relay")?;
    let mut command = Command::new(exe);
    command
        .args(["--log", "warn", "bench-relay", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if batch {
        command.arg("--batch");
    }
    if let Some(cpu) = cpu {
        command.args(["--cpu", &cpu.to_string()]);
    }
    let mut child = command.spawn().context("cannot start salon bench-relay")?;
    let pid = child.id().context("the relay exited at once")?;
    let stdout = child.stdout.take().context("the relay has no stdout")?;
    let mut line = String::new();
    let read = tokio::time::timeout(START_TIMEOUT, BufReader::new(stdout).read_line(&mut line))
        .await
        .context("the relay did not print its address within 10 s")?
        .context("cannot read the relay's address")?;
    if read == 0 {
        let status = child.wait().await.ok();
        bail!("the relay exited before serving ({status:?}); its error is above");
    }
    let addr = line
        .trim()
        .strip_prefix("udp://")
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("the relay printed {line:?}, not udp://HOST:PORT"))?;
    Ok(SpawnedRelay { child, addr, pid })
}

impl SpawnedRelay {
    /// Stop the relay and reap it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

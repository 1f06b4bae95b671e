//! A real `salon` process for the binary's integration tests.

#![allow(dead_code)] // each test binary uses a different part

pub mod interop;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const ACCOUNT_SID: &str = "AC5a10f00d5a10f00d5a10f00d5a10f00d";
pub const AUTH_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub const API_KEY: &str = "SK5a10f00d5a10f00d5a10f00d5a10f00d";
/// 32 letters and digits, like the secrets Twilio and Salon generate.
pub const API_SECRET: &str = "InteropSecret0123456789abcdefGHI";

/// Recordings and compositions need Debian's ffmpeg: without it their tests
/// skip, unless `SALON_FFMPEG=required` (as `scripts/test` sets).
pub fn ffmpeg_present(test: &str) -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var("SALON_FFMPEG").as_deref() != Ok("required"),
        "{test}: ffmpeg is required (SALON_FFMPEG=required) but not installed"
    );
    if !found {
        println!("{test}: skipped: ffmpeg is not installed (apt-get install ffmpeg)");
    }
    found
}

/// An access token for `grant`, signed with the test API key.
pub fn token_for(grant: &salon_token::Grant) -> String {
    let key = salon_token::ApiKey::new(
        API_KEY.parse().expect("an API key SID"),
        ACCOUNT_SID.parse().expect("an account SID"),
        API_SECRET,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    salon_token::mint(&key, grant, now, &salon_token::MintOptions::default()).expect("a token")
}

/// An access token for `identity`, for any room.
pub fn token(identity: &str) -> String {
    token_for(&salon_token::Grant::new(identity))
}

/// The number at a dotted `path` of a JSON report (`window.received.packets`).
pub fn num(v: &serde_json::Value, path: &str) -> f64 {
    let mut at = v;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {at}"))
}

/// How long the server may take to answer `/healthz`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root (crates/salon/../..)")
}

/// Remove inherited settings that would change what the children do:
/// other `SALON_*` settings (a developer's `SALON_PUBLIC_URL`, …) and the
/// `TWILIO_*` variables both Salon and the helper libraries read
/// (`TWILIO_REGION`/`TWILIO_EDGE` rewrite the libraries' host names). Keep
/// HTTP proxies away from loopback.
pub fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("SALON_") || name.starts_with("TWILIO_") {
            command.env_remove(name.as_ref());
        }
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
}

pub fn credentials(command: &mut Command) {
    command
        .env("SALON_ACCOUNT_SID", ACCOUNT_SID)
        .env("SALON_AUTH_TOKEN", AUTH_TOKEN)
        .env("SALON_API_KEY", API_KEY)
        .env("SALON_API_SECRET", API_SECRET);
}

/// The last `max` bytes of a file, for failure messages.
pub fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// A running `salon` server, killed when dropped (also when a test panics).
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    // Dropped after `child` is killed (see Drop), so the data outlives it.
    _dir: tempfile::TempDir,
}

/// How to start a server, beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The data directory (default: a fresh one), to restart on one.
    pub data_dir: Option<PathBuf>,
    /// Run under `ulimit -n` of this many open files.
    pub open_files: Option<u32>,
    /// Extra arguments (settings flags).
    pub args: Vec<String>,
    /// The public URL the server is told (default: `http://` and the
    /// listen address; [`Server::url`] is that address either way).
    pub public_url: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// The media port's address, as the server logged it when it started
    /// (`media=IP:PORT`; the tests ask for a free port, `--media-port 0`).
    pub fn media_addr(&self) -> SocketAddr {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.split_whitespace()
            .find_map(|word| word.strip_prefix("media=")?.parse().ok())
            .unwrap_or_else(|| panic!("no media=IP:PORT in the log:\n{log}"))
    }

    /// Start `salon` on a free port. A port taken between choosing and
    /// binding it shows as an early exit; then try another.
    pub fn start() -> Server {
        Self::launch(&Launch::default())
    }

    /// Start with extra arguments (settings flags).
    pub fn start_with(args: &[&str]) -> Server {
        Self::launch(&Launch {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..Launch::default()
        })
    }

    /// Start `salon` as `launch` says.
    pub fn launch(launch: &Launch) -> Server {
        let mut last_error = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            match Self::try_start(dir, launch) {
                Ok(server) => return server,
                Err((e, _)) => last_error = e,
            }
        }
        panic!("salon did not start: {last_error}");
    }

    /// Start again on the data directory of a server that was stopped or
    /// killed ([`Server::kill`]), with its log appended to.
    pub fn restart_in(dir: tempfile::TempDir, args: &[&str]) -> Server {
        let launch = Launch {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..Launch::default()
        };
        let mut dir = dir;
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(dir, &launch) {
                Ok(server) => return server,
                Err((e, back)) => {
                    last_error = e;
                    dir = back;
                }
            }
        }
        panic!("salon did not restart: {last_error}");
    }

    /// SIGKILL the server (no graceful shutdown) and give back its directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let empty = tempfile::tempdir().expect("a temporary directory");
        std::mem::replace(&mut self._dir, empty)
    }

    fn try_start(
        dir: tempfile::TempDir,
        launch: &Launch,
    ) -> Result<Server, (String, tempfile::TempDir)> {
        let data_dir = launch
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let log = dir.path().join("server.log");
        let addr = free_port();
        let url = format!("http://{addr}");
        let public_url = launch.public_url.clone().unwrap_or_else(|| url.clone());
        let opened = File::options().create(true).append(true).open(&log);
        let log_file = match opened {
            Ok(file) => file,
            Err(e) => return Err((format!("cannot create the log: {e}"), dir)),
        };
        let log_err = match log_file.try_clone() {
            Ok(file) => file,
            Err(e) => return Err((format!("cannot share the log: {e}"), dir)),
        };
        let mut command = match launch.open_files {
            None => Command::new(env!("CARGO_BIN_EXE_salon")),
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_salon"));
                shell
            }
        };
        clean_env(&mut command);
        credentials(&mut command);
        command.envs(launch.env.iter().map(|(k, v)| (k, v)));
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--public-url")
            .arg(&public_url)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--media-port")
            .arg("0")
            // The TURN server on free ports too (tests run side by side).
            .arg("--turn-port")
            .arg("0")
            .args(&launch.args)
            .arg("serve")
            // Plain text in the log the failure messages quote.
            .env("NO_COLOR", "1")
            // No stray ./salon.toml: run where there is none.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let why = format!("cannot run {}: {e}", env!("CARGO_BIN_EXE_salon"));
                return Err((why, dir));
            }
        };
        let mut server = Server {
            child,
            addr,
            url,
            data_dir,
            log,
            _dir: dir,
        };
        match server.wait_healthy() {
            Ok(()) => Ok(server),
            Err(e) => Err((e, server.kill())),
        }
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "salon exited with {status} before answering /healthz; its log:\n{}",
                    tail(&self.log, 8000)
                ));
            }
            if healthz(self.addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "salon did not answer GET /healthz with 200 within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    tail(&self.log, 8000)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// Whether `GET /healthz` answers 200, with a plain HTTP/1.1 request.
pub fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let status_line = response.split(|b| *b == b'\n').next().unwrap_or_default();
    status_line.starts_with(b"HTTP/1.1 200") || status_line.starts_with(b"HTTP/1.0 200")
}

/// Wait for `child` up to `timeout`; kill it and return `None` after that.
pub fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// PEM text of a DER blob.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

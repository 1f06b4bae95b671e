//! Salon against the official Twilio helper libraries: npm `twilio` and PyPI
//! `twilio`, pinned in `tests/interop/` and installed by
//! `tests/interop/setup`.
//!
//! Each test starts the real `salon` binary on a free loopback port with a
//! fresh data directory and fixed credentials, waits for `/healthz`, and runs
//! one script from `tests/interop/`:
//!
//! | test            | script                           | proves                                             |
//! |-----------------|----------------------------------|----------------------------------------------------|
//! | `node_tokens`   | `tests/interop/node/tokens.mjs`  | twilio-node tokens verify in Salon; Salon's match  |
//! | `node_rest`     | `tests/interop/node/rest.mjs`    | the Rooms API through twilio-node                  |
//! | `python_tokens` | `tests/interop/python/tokens.py` | twilio-python tokens verify in Salon; and back     |
//! | `python_rest`   | `tests/interop/python/rest.py`   | the Rooms API through twilio-python                |
//!
//! When the libraries are not installed the tests print a "skipped" line and
//! pass, unless `SALON_INTEROP=required` (as `scripts/test` sets it), which
//! makes them fail instead.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const ACCOUNT_SID: &str = "AC5a10f00d5a10f00d5a10f00d5a10f00d";
const AUTH_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const API_KEY: &str = "SK5a10f00d5a10f00d5a10f00d5a10f00d";
/// 32 letters and digits, like the secrets Twilio and Salon generate.
const API_SECRET: &str = "InteropSecret0123456789abcdefGHI";

/// How long the server may take to answer `/healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root (crates/salon/../..)")
}

fn interop_dir() -> PathBuf {
    repo_root().join("tests/interop")
}

fn venv_python() -> PathBuf {
    if cfg!(windows) {
        interop_dir().join(".venv/Scripts/python.exe")
    } else {
        interop_dir().join(".venv/bin/python")
    }
}

/// Which interpreter runs a script, and whether its library is installed.
#[derive(Clone, Copy)]
enum Runtime {
    Node,
    Python,
}

impl Runtime {
    fn program(self) -> PathBuf {
        match self {
            Runtime::Node => PathBuf::from("node"),
            Runtime::Python => venv_python(),
        }
    }

    /// `None` when ready, else what is missing.
    fn missing(self) -> Option<String> {
        match self {
            Runtime::Node => {
                let module = interop_dir().join("node_modules/twilio/package.json");
                if !module.is_file() {
                    return Some(format!("{} is missing", module.display()));
                }
                match Command::new("node").arg("--version").output() {
                    Ok(out) if out.status.success() => None,
                    _ => Some("`node` is not on PATH".to_owned()),
                }
            }
            Runtime::Python => {
                let python = venv_python();
                (!python.is_file()).then(|| format!("{} is missing", python.display()))
            }
        }
    }
}

/// Whether to go on: true when the libraries are installed. Otherwise skip
/// (return false), or fail when `SALON_INTEROP=required`.
fn installed(runtime: Runtime, test: &str) -> bool {
    let Some(missing) = runtime.missing() else {
        return true;
    };
    let required = std::env::var("SALON_INTEROP").is_ok_and(|v| v == "required");
    assert!(
        !required,
        "{test}: the Twilio helper libraries are not installed ({missing}) and SALON_INTEROP=required: run tests/interop/setup"
    );
    // Written to the process's stderr directly, not through eprintln!, which
    // the test harness captures: the skip must show without --nocapture.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: run tests/interop/setup to install the Twilio helper libraries ({missing})"
    );
    false
}

/// Remove inherited settings that would change what the children do:
/// other `SALON_*` settings (a developer's `SALON_PUBLIC_URL`, …) and the
/// `TWILIO_*` variables both Salon and the helper libraries read
/// (`TWILIO_REGION`/`TWILIO_EDGE` rewrite the libraries' host names). Keep
/// HTTP proxies away from loopback.
fn clean_env(command: &mut Command) {
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

fn credentials(command: &mut Command) {
    command
        .env("SALON_ACCOUNT_SID", ACCOUNT_SID)
        .env("SALON_AUTH_TOKEN", AUTH_TOKEN)
        .env("SALON_API_KEY", API_KEY)
        .env("SALON_API_SECRET", API_SECRET);
}

/// The last `max` bytes of a file, for failure messages.
fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// A running `salon` server, killed when dropped (also when a test panics).
struct Server {
    child: Child,
    addr: SocketAddr,
    url: String,
    data_dir: PathBuf,
    log: PathBuf,
    // Dropped after `child` is killed (see Drop), so the data outlives it.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Start `salon` on a free port. A port taken between choosing and
    /// binding it shows as an early exit; then try another.
    fn start() -> Server {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(server) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("salon did not start: {last_error}");
    }

    fn try_start() -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let data_dir = dir.path().join("data");
        let log = dir.path().join("server.log");
        let addr = free_port();
        let url = format!("http://{addr}");
        let log_file = File::create(&log).map_err(|e| format!("cannot create the log: {e}"))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("cannot share the log: {e}"))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
        clean_env(&mut command);
        credentials(&mut command);
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--public-url")
            .arg(&url)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("serve")
            // Plain text in the log the failure messages quote.
            .env("NO_COLOR", "1")
            // No stray ./salon.toml: run where there is none.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", env!("CARGO_BIN_EXE_salon")))?;
        let mut server = Server {
            child,
            addr,
            url,
            data_dir,
            log,
            _dir: dir,
        };
        server.wait_healthy()?;
        Ok(server)
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

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// Whether `GET /healthz` answers 200, with a plain HTTP/1.1 request.
fn healthz(addr: SocketAddr) -> bool {
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

/// Run one interop script against a fresh server; fail with its output
/// (and the server's log) unless it exits 0.
fn run_script(test: &str, runtime: Runtime, script: &str) {
    if !installed(runtime, test) {
        return;
    }
    let server = Server::start();
    let script_path = interop_dir().join(script);
    assert!(
        script_path.is_file(),
        "{test}: {} is missing",
        script_path.display()
    );
    let out_dir = tempfile::tempdir().expect("a temporary directory for the script's output");
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");

    let mut command = Command::new(runtime.program());
    clean_env(&mut command);
    credentials(&mut command);
    command
        .arg(&script_path)
        .env("SALON_URL", &server.url)
        .env("SALON_BIN", env!("CARGO_BIN_EXE_salon"))
        .env("SALON_DATA_DIR", &server.data_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(out_dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("the script's stdout file"))
        .stderr(File::create(&stderr_path).expect("the script's stderr file"));
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot run {}: {e}", runtime.program().display()));
    let status = wait(&mut child, SCRIPT_TIMEOUT);

    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {
            print!("{stdout}");
            if !stderr.trim().is_empty() {
                eprint!("{stderr}");
            }
            println!("{test}: {script} passed in {:.1?}", started.elapsed());
        }
        outcome => {
            let how = match outcome {
                Some(status) => format!("exited with {status}"),
                None => format!("did not finish within {SCRIPT_TIMEOUT:?} and was killed"),
            };
            panic!(
                "{test}: tests/interop/{script} {how}\n\
                 --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n\
                 --- salon log (last 8 KB) ---\n{}",
                tail(&server.log, 8000)
            );
        }
    }
}

/// Wait for `child` up to `timeout`; kill it and return `None` after that.
fn wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

#[test]
fn node_tokens() {
    run_script("node_tokens", Runtime::Node, "node/tokens.mjs");
}

#[test]
fn node_rest() {
    run_script("node_rest", Runtime::Node, "node/rest.mjs");
}

#[test]
fn python_tokens() {
    run_script("python_tokens", Runtime::Python, "python/tokens.py");
}

#[test]
fn python_rest() {
    run_script("python_rest", Runtime::Python, "python/rest.py");
}

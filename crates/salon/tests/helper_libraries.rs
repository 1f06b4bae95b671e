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
//! | `node_nts`      | `tests/interop/node/nts.mjs`     | `client.tokens.create()` gets Salon's ICE servers  |
//! | `python_nts`    | `tests/interop/python/nts.py`    | the same, and its TURN credentials allocate        |
//! | `node_recordings` | `tests/interop/node/recordings.mjs` | recordings, rules, compositions, `/Media` through twilio-node (aiortc participants) |
//! | `python_recordings` | `tests/interop/python/recordings.py` | the same through twilio-python, rules changed during the room |
//!
//! When the libraries are not installed the tests print a "skipped" line and
//! pass, unless `SALON_INTEROP=required` (as `scripts/test` sets it), which
//! makes them fail instead.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::interop::{Runtime, installed, interop_dir};
use common::{Server, clean_env, credentials, ffmpeg_present, tail, wait};

/// How long one script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

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

#[test]
fn node_nts() {
    run_script("node_nts", Runtime::Node, "node/nts.mjs");
}

#[test]
fn python_nts() {
    run_script("python_nts", Runtime::Python, "python/nts.py");
}

#[test]
fn node_recordings() {
    if !ffmpeg_present("node_recordings") {
        return;
    }
    run_script("node_recordings", Runtime::Node, "node/recordings.mjs");
}

#[test]
fn python_recordings() {
    if !ffmpeg_present("python_recordings") {
        return;
    }
    run_script("python_recordings", Runtime::Python, "python/recordings.py");
}

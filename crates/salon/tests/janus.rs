//! `salon loadtest --target janus`: the command line starts Debian's Janus
//! in a private network namespace, measures a small meeting in its
//! VideoRoom exactly as it measures Salon, and stops it.
//!
//! Runs when `janus` is installed and the test runs as root, or always with
//! `SALON_JANUS=required` (then the tool installs Janus with apt-get when it
//! is missing; `scripts/test` sets it). `SALON_JANUS=skip` leaves it out.
//! A separate test binary, so the meeting does not share the machine with
//! the other load tests.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{clean_env, tail};
use serde_json::Value;

/// Janus's start, the ramp, settling, the window and leaving take seconds;
/// an install takes a minute or two.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Whether the test should run.
fn wanted() -> bool {
    match std::env::var("SALON_JANUS").as_deref() {
        Ok("skip") => {
            eprintln!("SALON_JANUS=skip: the Janus test does not run");
            false
        }
        Ok("required") => true,
        _ if salon_loadtest::janus::server::find("janus").is_some() && root() => true,
        _ => {
            eprintln!("janus or root privileges missing: the Janus test does not run");
            false
        }
    }
}

#[test]
fn a_meeting_in_janus_is_measured_like_one_in_salon() {
    if !wanted() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("report.json");
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    let log = dir.path().join("janus.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    let mut child = command
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args([
            "loadtest",
            "--target",
            "janus",
            "--publishers",
            "2",
            "--ramp",
            "1s",
            "--settle",
            "10s",
            "--duration",
            "2s",
            "--name-prefix",
            "cli",
        ])
        .arg("--janus-log")
        .arg(&log)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .expect("salon loadtest runs");
    let status = common::wait(&mut child, RUN_TIMEOUT);
    let context = || {
        format!(
            "stdout:\n{}\nstderr:\n{}\nJanus log:\n{}",
            tail(&out, 8_000),
            tail(&err, 8_000),
            tail(&log, 8_000)
        )
    };
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("salon loadtest exited with {s}\n{}", context()),
        None => panic!("salon loadtest hung\n{}", context()),
    }
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("a report")).expect("JSON");

    assert_eq!(r["target"]["kind"], "janus", "{}", context());
    assert_eq!(r["joins"]["joined"].as_u64(), Some(2), "{}", context());
    let subscriptions = r["subscriptions"].as_array().expect("subscriptions");
    assert_eq!(subscriptions.len(), 4, "{}", context());
    for s in subscriptions {
        assert!(
            s["packets"].as_u64() > Some(0),
            "no media: {s}\n{}",
            context()
        );
        assert_eq!(s["lost"].as_u64(), Some(0), "{s}\n{}", context());
    }
    // The server figures are Janus's own process.
    let server = &r["server"];
    assert!(server["pid"].as_u64().is_some(), "{server}");
    assert_eq!(server["forwarded_source"], "subscribers", "{server}");
    assert!(server["cpu_seconds"].as_f64() > Some(0.0), "{server}");
    // The log was kept where asked, and Janus is gone.
    let log_text = std::fs::read_to_string(&log).expect("Janus's log");
    assert!(log_text.contains("VideoRoom"), "{log_text}");
    let pid = server["pid"].as_u64().unwrap_or(0);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "Janus (pid {pid}) outlived the run"
    );
}

//! `salon bench-relay` and `salon loadtest --target floor`: the relay floor
//! as a process, measured by the load tester like a server. These check the
//! wiring (the relay starts, is measured, forwards everything, stops), not
//! how fast it is.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{clean_env, num, tail};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Run `salon loadtest --target floor ARGS`; its JSON report and stderr.
fn loadtest_floor(args: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("report.json");
    let err = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    command
        .current_dir(dir.path())
        .args(["loadtest", "--target", "floor", "--json"])
        .arg(&json)
        .args(["--ramp", "300ms", "--settle", "5s", "--duration", "2s"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err).expect("stderr file"));
    let mut child = command.spawn().expect("salon loadtest runs");
    let status = common::wait(&mut child, RUN_TIMEOUT);
    let stderr = tail(&err, 16_000);
    assert!(
        status.is_some_and(|s| s.success()),
        "salon loadtest --target floor: {status:?}\n{stderr}"
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    (serde_json::from_str(&text).expect("JSON"), stderr)
}

fn assert_lossless_meeting_of_three(r: &Value) {
    assert_eq!(r["target"]["kind"], "floor");
    assert!(
        r["target"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("udp://127.0.0.1:")),
        "{}",
        r["target"]
    );
    let window = &r["window"];
    assert_eq!(window["subscriptions"]["expected"].as_u64(), Some(12));
    assert_eq!(window["subscriptions"]["with_media"].as_u64(), Some(12));
    assert_eq!(window["received"]["lost"].as_u64(), Some(0), "{window}");
    for s in r["subscriptions"].as_array().expect("subscriptions") {
        assert!(num(s, "packets") > 0.0, "{s}");
        assert_eq!(s["lost"].as_u64(), Some(0), "{s}");
    }
    let server = &r["server"];
    assert_eq!(server["forwarded_source"], "subscribers", "{server}");
    assert!(num(server, "forwarded_packets") > 0.0, "{server}");
    assert!(num(server, "peak_rss_bytes") > 0.0, "{server}");
    assert_eq!(server["threads"].as_u64(), Some(1), "one thread: {server}");
}

#[test]
fn loadtest_starts_measures_and_stops_its_own_relay() {
    let (r, stderr) = loadtest_floor(&["--publishers", "3"]);
    assert_lossless_meeting_of_three(&r);
    assert!(stderr.contains("joined 3/3"), "{stderr}");

    // The relay was a process of its own, measured, and is gone.
    let pid = r["server"]["pid"].as_u64().expect("the relay's PID");
    assert_ne!(pid, u64::from(std::process::id()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the relay {pid} outlived the load test"
    );
}

/// A `salon bench-relay` process, killed when dropped.
struct Relay {
    child: Child,
    url: String,
}

impl Relay {
    fn start(args: &[&str]) -> Relay {
        let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
        clean_env(&mut command);
        let mut child = command
            .args(["--log", "warn", "bench-relay", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("salon bench-relay runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the relay prints its address");
        let url = line.trim().to_string();
        assert!(url.starts_with("udp://127.0.0.1:"), "{url:?}");
        Relay { child, url }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_running_batched_relay_is_measured_and_reports_its_counters_on_sigterm() {
    let mut relay = Relay::start(&["--batch"]);
    let pid = relay.child.id().to_string();
    let (r, _) = loadtest_floor(&[
        "--publishers",
        "3",
        "--url",
        &relay.url,
        "--server-pid",
        &pid,
    ]);
    assert_lossless_meeting_of_three(&r);
    assert_eq!(r["target"]["url"].as_str(), Some(relay.url.as_str()));
    assert_eq!(r["server"]["pid"].as_u64(), pid.parse().ok());

    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = common::wait(&mut relay.child, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut relay.child.stderr.take().expect("stderr"), &mut stderr)
        .expect("its stderr");
    assert!(stderr.contains("forwarded"), "{stderr}");
    assert!(stderr.contains("dropped 0 "), "{stderr}");
}

#[test]
fn a_relay_off_this_machine_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    let output = command
        .current_dir(dir.path())
        .args([
            "loadtest",
            "--target",
            "floor",
            "--url",
            "udp://192.0.2.1:7998",
        ])
        .output()
        .expect("salon runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only targets loopback"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_salon"))
        .current_dir(dir.path())
        .args(["bench-relay", "--bind", "0.0.0.0:0"])
        .output()
        .expect("salon runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

#[test]
fn help_describes_the_floor() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_salon"))
            .args(args)
            .output()
            .expect("salon runs");
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let top = help(&["--help"]);
    assert!(top.contains("bench-relay"), "{top}");
    let relay = help(&["bench-relay", "--help"]);
    for word in [
        "--bind",
        "--batch",
        "--cpu",
        "SRTP_AEAD_AES_256_GCM",
        "loopback",
    ] {
        assert!(relay.contains(word), "{word} missing:\n{relay}");
    }
    let loadtest = help(&["loadtest", "--help"]);
    for word in [
        "--target",
        "floor",
        "udp://",
        "--floor-cpu",
        "--floor-batch",
    ] {
        assert!(loadtest.contains(word), "{word} missing:\n{loadtest}");
    }
}

//! `salon loadtest` against a real `salon` server: a short run of one small
//! room, its JSON report read back. These tests check that the tool
//! measures, not how fast the server is: performance targets live in
//! benchmarks, never in tests.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ACCOUNT_SID, API_KEY, API_SECRET, Server, clean_env, num, tail};
use serde_json::Value;

/// Ramp, settle and window of these runs are a few seconds; leaving and
/// startup take a few more. Far above that, the tool is hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Run `salon loadtest ARGS` against `server`, return its JSON report
/// (checking the process succeeded) and its stderr.
fn loadtest(server: &Server, args: &[&str], env: &[(&str, &str)]) -> (Value, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("report.json");
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    command
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .arg("loadtest")
        .arg("--url")
        .arg(format!("ws://{}/v1/signaling", server.addr))
        .arg("--json")
        .arg(&json)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"));
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("salon loadtest runs");
    let status = common::wait(&mut child, RUN_TIMEOUT);
    let stderr = tail(&err, 16_000);
    let report = || {
        format!(
            "stdout:\n{}\nstderr:\n{stderr}\nserver log:\n{}",
            tail(&out, 16_000),
            tail(&server.log, 8_000)
        )
    };
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("salon loadtest exited with {s}\n{}", report()),
        None => panic!(
            "salon loadtest did not finish within {RUN_TIMEOUT:?}\n{}",
            report()
        ),
    }
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}):\n{text}"));
    (value, stderr)
}

#[test]
fn a_short_webinar_is_measured_end_to_end() {
    let server = Server::start();
    let pid = server.child.id().to_string();
    let data_dir = server.data_dir.to_string_lossy().into_owned();
    // One room of three: a presenter and two viewers. The signing key comes
    // from the server's data directory, as `salon token create` takes it.
    let (r, stderr) = loadtest(
        &server,
        &[
            "--data-dir",
            &data_dir,
            "--rooms",
            "1",
            "--publishers",
            "1",
            "--subscribers",
            "2",
            "--ramp",
            "2s",
            "--duration",
            "3s",
            "--server-pid",
            &pid,
            "--name-prefix",
            "smoke",
        ],
        &[],
    );

    assert_eq!(r["schema"], "salon-loadtest/1");
    assert_eq!(r["scenario"], "webinar");
    assert_eq!(r["target"]["kind"], "salon");
    // The progress line ran.
    assert!(stderr.contains("joined 3/3"), "{stderr}");

    // Everyone joined; join times are there.
    let joins = &r["joins"];
    assert_eq!(
        (joins["joined"].as_u64(), joins["failed"].as_u64()),
        (Some(3), Some(0)),
        "{joins}"
    );
    assert_eq!(joins["media_connected"].as_u64(), Some(3), "{joins}");
    for key in ["join_ms", "media_connected_ms", "first_packet_ms"] {
        assert!(num(joins, &format!("{key}.p50")) > 0.0, "{key}: {joins}");
        assert!(num(joins, &format!("{key}.p99")) >= num(joins, &format!("{key}.p50")));
    }

    // Two viewers × (audio + video), each with media and little loss.
    let window = &r["window"];
    assert!(num(window, "duration_s") >= 3.0, "{window}");
    assert_eq!(
        window["subscriptions"]["expected"].as_u64(),
        Some(4),
        "{window}"
    );
    let subscriptions = r["subscriptions"].as_array().expect("subscriptions");
    assert_eq!(subscriptions.len(), 4, "{subscriptions:?}");
    for s in subscriptions {
        assert!(num(s, "packets") > 0.0, "no media: {s}");
        assert!(num(s, "loss_pct") < 5.0, "{s}");
        assert_eq!(s["publisher"], "smoke-0-p0", "{s}");
        assert!(num(s, "latency_us.p50") > 0.0, "{s}");
    }
    assert!(num(window, "sent.packets") > 0.0, "{window}");
    assert!(num(window, "received.packets") > 0.0, "{window}");
    assert!(num(window, "received.loss_pct") < 5.0, "{window}");
    assert!(num(window, "latency_us.all.p99") >= num(window, "latency_us.all.p50"));
    assert!(num(window, "subscriber_bitrate_bps.mean") > 0.0, "{window}");

    // The server's CPU and memory, and its own packet counters.
    let server_report = &r["server"];
    assert_eq!(
        server_report["pid"].as_u64(),
        Some(u64::from(server.child.id()))
    );
    assert!(num(server_report, "cpu_seconds") > 0.0, "{server_report}");
    assert!(
        num(server_report, "peak_rss_bytes") > 0.0,
        "{server_report}"
    );
    assert_eq!(
        server_report["forwarded_source"], "metrics",
        "{server_report}"
    );
    assert!(
        num(server_report, "metrics.rtp_forwarded") > 0.0,
        "{server_report}"
    );
    assert!(
        num(server_report, "forwarded_per_cpu_second") > 0.0,
        "{server_report}"
    );
    assert!(
        num(server_report, "cpu_us_per_forwarded_packet") > 0.0,
        "{server_report}"
    );
    assert!(
        num(&r["generator"], "cpu_seconds") > 0.0,
        "{}",
        r["generator"]
    );
}

/// Every publisher of a meeting receives every other publisher's audio and
/// video.
///
/// This guards the race where a subscriber's receiving m-line is offered
/// before the publisher's own media was negotiated: the signaling session
/// announces each track as it is published in the room core, so a subscriber
/// can bind to a track that has no forwarder yet. The media worker parks such
/// bindings and attaches them when the forwarder appears; without that, the
/// first to join a meeting of two never hears the second.
#[test]
fn every_publisher_of_a_meeting_receives_every_other() {
    let server = Server::start();
    let (r, _) = loadtest(
        &server,
        &[
            "--publishers",
            "3",
            "--ramp",
            "1s",
            "--settle",
            "5s",
            "--duration",
            "2s",
            "--no-metrics",
        ],
        // Configured credentials: the same ones the server was started with.
        &[
            ("SALON_ACCOUNT_SID", ACCOUNT_SID),
            ("SALON_API_KEY", API_KEY),
            ("SALON_API_SECRET", API_SECRET),
        ],
    );
    let subscriptions = r["subscriptions"].as_array().expect("subscriptions");
    assert_eq!(subscriptions.len(), 12, "{subscriptions:?}");
    let silent: Vec<String> = subscriptions
        .iter()
        .filter(|s| s["packets"].as_u64() == Some(0))
        .map(|s| format!("{} ← {} {}", s["subscriber"], s["publisher"], s["kind"]))
        .collect();
    assert!(silent.is_empty(), "subscriptions without media: {silent:?}");
}

/// How far over its cap a subscriber's measured video may be. Without a
/// cap, grid mode would forward every full layer (15 × 80 kbit/s, 4× the
/// cap of the test below), so a cap not applied fails by far. What the
/// tolerance absorbs: the server holds the *allocation* under the cap from
/// the layers' measured bitrates (keyframes amortized, smoothed), and
/// lets it exceed the cap by up to 10 % for 1.5 s before stepping down
/// (`allocation::DOWN_TOLERANCE`); what the load tester measures over the
/// window is the packets that arrived, keyframes and all. Until December
/// 2026 layers flapped (every switch asked for keyframes that inflated
/// the measured bitrates and pushed another track down) and subscribers
/// were 5–19 % over, so this was 25 %; since the allocation stopped
/// flapping they stay under the cap (docs/performance.md, "Large
/// meeting").
const CAP_TOLERANCE: f64 = 0.10;

/// Layer switches (changes of the received keyframe size) per video
/// subscription in the window, at most. The window starts as soon as every
/// subscription has media, about 5 s after the first join, while the
/// allocation is still settling (layers measured, the join storm's
/// keyframes amortized, estimates held): in a debug build on the busy
/// 2-core machine (December 2026) the server's allocation stops changing
/// about 9 s after the first join, and the 10 s window saw 51–218 switches
/// for 240 subscriptions, all in its first seconds. A flapping allocation
/// (before: 0.3–0.6 per subscription per 4 s, for as long as the cap
/// bound) goes past this; the allocator's unit tests check the steady
/// state exactly (docs/performance.md, "Large meeting").
const MAX_SWITCHES_PER_SUBSCRIPTION: f64 = 1.0;

/// A room of `publishers`, everyone publishing three-layer simulcast video
/// (80 kbit/s full layer, so 8/27/80 kbit/s; no audio; 2 fps, so it runs in
/// seconds on two cores in a debug build) and setting `cap` as its
/// `maxSubscriptionBitrate` in grid mode; checks that everyone joined and
/// stayed, that every subscription received video throughout the window
/// (none silent for more than 2 s: a track the allocation switches off
/// and on again within that is reported, not failed), and that every
/// subscriber stayed under its cap. Returns the report's `window.video`.
fn simulcast_room(
    server_args: &[&str],
    publishers: u64,
    cap: f64,
    ramp: &str,
    settle: &str,
) -> Value {
    let server = Server::start_with(server_args);
    let pid = server.child.id().to_string();
    let data_dir = server.data_dir.to_string_lossy().into_owned();
    let (r, _) = loadtest(
        &server,
        &[
            "--data-dir",
            &data_dir,
            "--publishers",
            &publishers.to_string(),
            "--no-audio",
            "--simulcast",
            "--video-bitrate",
            "80k",
            "--video-fps",
            "2",
            "--max-subscription-bitrate",
            &format!("{cap}"),
            "--mode",
            "grid",
            "--ramp",
            ramp,
            "--settle",
            settle,
            "--duration",
            "10s",
            "--server-pid",
            &pid,
            "--name-prefix",
            "simulcast",
            "--quiet",
        ],
        &[],
    );
    let joins = &r["joins"];
    assert_eq!(joins["joined"].as_u64(), Some(publishers), "{joins}");
    assert_eq!(joins["disconnected"].as_u64(), Some(0), "{joins}");
    let subscriptions = publishers * (publishers - 1);
    let window = &r["window"];
    eprintln!("{publishers} people, cap {cap}: {}", window["video"]);
    assert_eq!(
        window["subscriptions"]["with_media"].as_u64(),
        Some(subscriptions),
        "{}",
        r["warnings"]
    );
    let video = window["video"].clone();
    assert_eq!(video["simulcast"], true, "{video}");
    assert_eq!(num(&video, "cap_bps"), cap, "{video}");
    assert_eq!(
        video["subscriptions"].as_u64(),
        Some(subscriptions),
        "{video}"
    );
    // Nobody's video stops.
    assert_eq!(video["stalled"].as_u64(), Some(0), "{video}");
    // Every subscriber under its cap, within the tolerance.
    let subscribers = video["subscribers"].as_array().expect("subscribers");
    assert_eq!(subscribers.len() as u64, publishers, "{video}");
    let limit = cap * (1.0 + CAP_TOLERANCE);
    let over: Vec<String> = subscribers
        .iter()
        .filter(|s| num(s, "bitrate_bps") > limit)
        .map(|s| format!("{}: {:.0} bit/s", s["subscriber"], num(s, "bitrate_bps")))
        .collect();
    assert!(
        over.is_empty(),
        "over the cap of {cap} + {CAP_TOLERANCE}: {over:?}\n{video}"
    );
    assert!(num(&video, "subscriber_bitrate_bps.min") > 0.0, "{video}");
    // The layers do not flap.
    let switches = num(&video, "layer_switches");
    assert!(
        switches <= MAX_SWITCHES_PER_SUBSCRIPTION * subscriptions as f64,
        "{switches} layer switches for {subscriptions} subscriptions\n{video}"
    );
    video
}

/// 16 people under a 300 kbit/s cap: their 15 quarter layers take about
/// 150 kbit/s, all 15 half layers 400, so grid mode gives everyone the
/// quarter layer and lifts some tracks to the half layer with the rest —
/// the cap, not the link, decides, and nothing reaches the full layer.
#[test]
fn a_simulcast_meeting_stays_under_the_cap_and_no_video_stops() {
    let video = simulcast_room(&[], 16, 300_000.0, "2s", "15s");
    let layers = &video["layers"];
    assert!(layers.get("1280x720").is_none(), "{layers}");
    assert!(layers.get("320x180").is_some(), "{layers}");
}

/// The same meeting on a server that takes its subscribers' own estimates
/// (`--bandwidth-estimation remb`): the load tester's subscribers send no
/// REMB, so the cap alone bounds them, and the allocation must hold it by
/// itself while the room fills up and its layers' bitrates settle (it did
/// not, 11 runs of 24, before settling tracks were kept from climbing:
/// docs/performance.md, "Settling layers").
#[test]
fn with_no_estimate_the_cap_alone_holds_a_simulcast_meeting() {
    let video = simulcast_room(
        &["--bandwidth-estimation", "remb"],
        16,
        300_000.0,
        "2s",
        "15s",
    );
    assert!(video["layers"].get("1280x720").is_none(), "{video}");
}

/// The same in a room of 50, Twilio's largest group room (2450 video
/// subscriptions; 49 quarter layers take about 0.5 Mbit/s, the cap of
/// 0.8 Mbit/s lifts some to the half layer). Ignored in `scripts/test`: a
/// debug build on two shared cores cannot carry 50 people's media (the
/// join storm itself no longer drops sessions: subscription events are
/// addressed to their subscriber's session only). On release, 3 December
/// 2026, after the allocation stopped flapping: by hand, 50 joined, none
/// disconnected, 2450 of 2450 subscriptions with media in the window, none
/// stalled, nobody over the cap (mean 630, max 647 kbit/s), 65 layer
/// switches in 6 s; through this test, with the machine saturated (other
/// processes on 1.1 of the 2 cores), 474 subscriptions had no media in the
/// window (switched off), nobody over the cap, 35 switches
/// (docs/performance.md). Run it on a release build and a quiet machine:
/// `cargo test --release --workspace --test loadtest -- --ignored room_of_50`.
#[test]
#[ignore = "a room of 50 needs a release build and a quiet machine (see its doc)"]
fn a_room_of_50_with_simulcast_stays_under_the_cap_and_no_video_stops() {
    simulcast_room(&[], 50, 800_000.0, "5s", "30s");
}

/// A meeting of 4 where one person speaks, rendered as small tiles: the
/// speaker's audio is 50 packets a second, the three silent publishers'
/// Opus DTX about 5, and every subscriber receives every camera's quarter
/// layer, the one that covers its 160x90 tiles.
#[test]
fn speakers_send_voice_the_others_dtx_and_small_tiles_get_the_low_layer() {
    let server = Server::start();
    let data_dir = server.data_dir.to_string_lossy().into_owned();
    let (r, _) = loadtest(
        &server,
        &[
            "--data-dir",
            &data_dir,
            "--publishers",
            "4",
            "--simulcast",
            "--video-bitrate",
            "300k",
            "--video-fps",
            "10",
            "--speakers",
            "1",
            "--render",
            "160x90",
            "--ramp",
            "1s",
            "--settle",
            "10s",
            "--duration",
            "4s",
            "--name-prefix",
            "voices",
            "--quiet",
        ],
        &[],
    );
    assert_eq!(r["plan"]["speakers"], 1, "{}", r["plan"]);
    assert_eq!(r["plan"]["render"], serde_json::json!([160, 90]));
    let seconds = num(&r["window"], "duration_s");
    let subscriptions = r["subscriptions"].as_array().expect("subscriptions");
    assert_eq!(subscriptions.len(), 4 * 3 * 2, "{subscriptions:?}");
    for s in subscriptions {
        let rate = num(s, "packets") / seconds;
        let from_speaker = s["publisher"].as_str().is_some_and(|p| p.ends_with("-p0"));
        match (s["kind"].as_str(), from_speaker) {
            (Some("audio"), true) => assert!((40.0..=60.0).contains(&rate), "speaker: {s}"),
            (Some("audio"), false) => assert!((2.0..=8.0).contains(&rate), "silent: {s}"),
            (Some("video"), _) => {
                assert_eq!(
                    (s["width"].as_u64(), s["height"].as_u64()),
                    (Some(320), Some(180)),
                    "{s}"
                );
            }
            _ => panic!("unexpected subscription {s}"),
        }
    }
}

#[test]
fn a_target_off_this_machine_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    let output = command
        .current_dir(dir.path())
        .args([
            "loadtest",
            "--url",
            "ws://192.0.2.1:3000/v1/signaling",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("salon runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only targets loopback"), "{stderr}");
}

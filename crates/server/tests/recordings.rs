//! Recordings end to end: Rust clients publish synthetic Opus and VP8 over
//! real UDP into a recorded room; the media server writes Matroska files;
//! the REST API lists them, and `ffprobe` (Debian's ffmpeg) reads them.
//!
//! The ffprobe checks run when `ffprobe` is installed, and must run when
//! `SALON_FFMPEG=required` (as `scripts/test` sets). The synthetic payloads
//! are shaped like Opus and VP8 but are not decodable media, so these
//! tests read containers and timestamps, not pictures (decoding is what a
//! browser-recorded test would add).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestServer, assert_error};
use salon_client::{ClientEvent, TrackSpec};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn ffprobe() -> Option<&'static str> {
    let found = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("SALON_FFMPEG").as_deref() == Ok("required") {
        panic!("ffprobe is required (SALON_FFMPEG=required) but not installed");
    }
    found.then_some("ffprobe")
}

/// Poll the room's recordings until `done` says they are what we wait for.
async fn recordings_of(s: &TestServer, room: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = s.get(&format!("/v1/Rooms/{room}/Recordings")).await;
        assert_eq!(status, 200, "{body}");
        let list = body["recordings"].as_array().cloned().unwrap_or_default();
        if done(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "recordings after {WAIT:?}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn all_finished(list: &[Value], n: usize) -> bool {
    list.len() == n && list.iter().all(|r| r["status"] != "processing")
}

/// ffprobe's JSON for `path`.
fn probe(ffprobe: &str, path: &std::path::Path, extra: &[&str]) -> Value {
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .args(extra)
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

fn file_of(s: &TestServer, recording: &Value) -> std::path::PathBuf {
    let room = recording["grouping_sids"]["room_sid"].as_str().unwrap();
    let sid = recording["sid"].as_str().unwrap();
    let ext = recording["container_format"].as_str().unwrap();
    s.dir
        .path()
        .join("recordings")
        .join(room)
        .join(format!("{sid}.{ext}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_gives_one_completed_recording_per_track_with_a_gap_for_a_mute() {
    let s = TestServer::start().await;
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "recorded"),
                ("RecordParticipantsOnConnect", "true"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{room}");
    assert!(
        room["links"]["recordings"]
            .as_str()
            .unwrap()
            .ends_with("/Recordings")
    );
    let room_sid = room["sid"].as_str().unwrap().to_owned();

    let mut alice = s
        .client(
            "alice",
            "recorded",
            &[
                TrackSpec::audio("mic"),
                TrackSpec::video("cam").bitrate(300_000).fps(15),
            ],
        )
        .await;
    let list = recordings_of(&s, &room_sid, |l| {
        l.len() == 2 && l.iter().all(|r| !r["codec"].is_null())
    })
    .await;
    assert!(list.iter().all(|r| r["status"] == "processing"));
    // The participant hears that the room is being recorded.
    alice
        .wait_for(
            |e| matches!(e, ClientEvent::Recording { recording: true }),
            WAIT,
        )
        .await
        .expect("told the room is recorded");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A mute of about two seconds in the middle.
    alice.set_enabled("mic", false).await.unwrap();
    alice.set_enabled("cam", false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    alice.set_enabled("mic", true).await.unwrap();
    alice.set_enabled("cam", true).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    alice.leave().await;

    let list = recordings_of(&s, &room_sid, |l| all_finished(l, 2)).await;
    let audio = list.iter().find(|r| r["type"] == "audio").expect("audio");
    let video = list.iter().find(|r| r["type"] == "video").expect("video");
    for (r, codec, container, track) in
        [(audio, "opus", "mka", "mic"), (video, "VP8", "mkv", "cam")]
    {
        assert_eq!(r["status"], "completed", "{r:#}");
        assert_eq!(r["codec"], codec);
        assert_eq!(r["container_format"], container);
        assert_eq!(r["track_name"], track);
        assert!(r["size"].as_u64().unwrap() > 1_000, "{r:#}");
        // About six seconds of media, the mute included.
        let duration = r["duration"].as_u64().unwrap();
        assert!((5..=8).contains(&duration), "{r:#}");
        assert!(r["offset"].as_i64().unwrap() > 0);
        assert!(file_of(&s, r).exists());
    }

    // Fetch, and the media link: a redirect to a signed URL Salon serves.
    let sid = audio["sid"].as_str().unwrap();
    let (status, fetched) = s.get(&format!("/v1/Recordings/{sid}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["source_sid"], audio["source_sid"]);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(format!("{}/v1/Recordings/{sid}/Media", s.url))
        .basic_auth(s.key, Some(&s.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let local = location.replace("http://salon.test", &s.url);
    let bytes = reqwest::get(&local).await.unwrap();
    assert_eq!(bytes.status(), 200);
    let bytes = bytes.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, audio["size"].as_u64().unwrap());
    assert_eq!(&bytes[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
    let tampered = local.replace("Signature=", "Signature=00");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);

    if let Some(ffprobe) = ffprobe() {
        for (r, codec) in [(audio, "opus"), (video, "vp8")] {
            let info = probe(ffprobe, &file_of(&s, r), &[]);
            assert_eq!(info["streams"][0]["codec_name"], codec, "{info:#}");
            let probed: f64 = info["format"]["duration"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let reported = r["duration"].as_f64().unwrap();
            // Twilio's duration is whole seconds (rounded up here).
            assert!(
                probed <= reported && reported - probed < 1.0,
                "ffprobe says {probed} s, the API {reported} s"
            );
        }
        // The mute shows as a gap between consecutive packets. (ffprobe
        // lists the synthetic VP8 frames; it refuses to parse synthetic
        // Opus, whose payload is a probe, not an Opus packet.)
        let packets = probe(ffprobe, &file_of(&s, video), &["-show_packets"]);
        let times: Vec<f64> = packets["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
            .collect();
        let widest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
        assert!(
            (1.5..3.0).contains(&widest),
            "the widest gap between video packets is {widest} s: {:?}",
            &times[..times.len().min(400)]
        );
    }

    // A recording is deleted once; its file goes with it.
    let path = file_of(&s, audio);
    let (status, _) = s
        .rest(
            reqwest::Method::DELETE,
            &format!("/v1/Recordings/{sid}"),
            &[],
        )
        .await;
    assert_eq!(status, 204);
    assert!(!path.exists());
    assert_error(&s.get(&format!("/v1/Recordings/{sid}")).await, 404, 20404);
    let (_, all) = s.get("/v1/Recordings").await;
    assert_eq!(all["recordings"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_rules_changed_during_the_room_start_and_stop_the_right_tracks() {
    let s = TestServer::start().await;
    let (status, room) = s.post("/v1/Rooms", &[("UniqueName", "ruled")]).await;
    assert_eq!(status, 201);
    let room_sid = room["sid"].as_str().unwrap().to_owned();
    let rules_path = format!("/v1/Rooms/{room_sid}/RecordingRules");
    let (status, rules) = s.get(&rules_path).await;
    assert_eq!(status, 200);
    assert_eq!(rules["rules"], serde_json::json!([]));

    let mut bob = s
        .client(
            "bob",
            "ruled",
            &[
                TrackSpec::audio("mic"),
                TrackSpec::video("cam").bitrate(300_000).fps(15),
            ],
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(recordings_of(&s, &room_sid, |_| true).await.is_empty());

    // Record Bob's audio only.
    let (status, rules) = s
        .post(
            &rules_path,
            &[("Rules", r#"[{"type":"include","kind":"audio"}]"#)],
        )
        .await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!(rules["rules"][0]["kind"], "audio");
    let list = recordings_of(&s, &room_sid, |l| l.len() == 1 && !l[0]["codec"].is_null()).await;
    assert_eq!(list[0]["type"], "audio");
    bob.wait_for(
        |e| matches!(e, ClientEvent::Recording { recording: true }),
        WAIT,
    )
    .await
    .expect("told recording started");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Then nothing: the audio recording completes while Bob goes on.
    let (status, _) = s.post(&rules_path, &[("Rules", "[]")]).await;
    assert_eq!(status, 200);
    let list = recordings_of(&s, &room_sid, |l| all_finished(l, 1)).await;
    assert_eq!(list[0]["status"], "completed");
    bob.wait_for(
        |e| matches!(e, ClientEvent::Recording { recording: false }),
        WAIT,
    )
    .await
    .expect("told recording stopped");

    // Unknown rule types and rules without filters are refused.
    for bad in [
        r#"[{"type":"maybe","all":true}]"#,
        r#"[{"type":"include"}]"#,
        r#"[{"type":"include","kind":"smell"}]"#,
        "not json",
    ] {
        assert_error(&s.post(&rules_path, &[("Rules", bad)]).await, 400, 53120);
    }
    bob.leave().await;
    let list = recordings_of(&s, &room_sid, |l| all_finished(l, 1)).await;
    assert_eq!(list.len(), 1, "the video was never recorded: {list:#?}");
}

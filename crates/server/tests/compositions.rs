//! Compositions end to end: real Matroska recordings (made by ffmpeg from
//! test patterns and tones, recorded in the store as a room's recordings),
//! composed by the server's ffmpeg job into a grid, checked with ffprobe
//! and by looking at the pixels.
//!
//! Needs Debian's ffmpeg: skipped without it unless `SALON_FFMPEG=required`
//! (as `scripts/test` sets).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver, expected_signature};
use common::{Options, TestServer, assert_error};
use salon_sid::{ParticipantSid, RecordingSid, RoomSid, TrackSid};
use salon_store::{NewRecording, Timestamp};
use serde_json::Value;

fn ffmpeg_present() -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("SALON_FFMPEG").as_deref() == Ok("required") {
        panic!("ffmpeg is required (SALON_FFMPEG=required) but not installed");
    }
    found
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-y", "-v", "error"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Record a finished recording of `seconds` starting `at` ms after `t0`.
#[allow(clippy::too_many_arguments)]
async fn add_recording(
    s: &TestServer,
    room: RoomSid,
    participant: ParticipantSid,
    name: &str,
    kind: &str,
    source: &str,
    t0: i64,
    at: i64,
    seconds: u32,
) {
    let sid = RecordingSid::random();
    let ext = if kind == "audio" { "mka" } else { "mkv" };
    let relative = format!("{room}/{sid}.{ext}");
    let path = s.dir.path().join("recordings").join(&relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let t = seconds.to_string();
    let path_text = path.display().to_string();
    if kind == "audio" {
        ffmpeg(&[
            "-f", "lavfi", "-i", source, "-t", &t, "-c:a", "libopus", &path_text,
        ]);
    } else {
        ffmpeg(&[
            "-f", "lavfi", "-i", source, "-t", &t, "-pix_fmt", "yuv420p", "-c:v", "libvpx",
            &path_text,
        ]);
    }
    let store = &s.state.store;
    let new = NewRecording {
        sid,
        account_sid: s.account,
        room_sid: room,
        participant_sid: participant,
        track_sid: TrackSid::random(),
        track_name: name,
        kind,
        container_format: ext,
        path: &relative,
    };
    store
        .insert_recording(&new, Timestamp::now())
        .await
        .unwrap();
    let codec = if kind == "audio" { "opus" } else { "VP8" };
    store
        .recording_started(
            sid,
            codec,
            Timestamp::from_millis(t0 + at),
            Timestamp::now(),
        )
        .await
        .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    store
        .recording_completed(sid, u64::from(seconds) * 1000, size, Timestamp::now())
        .await
        .unwrap();
}

/// Mean brightness of the left and right halves of the frame at `t`.
fn halves(file: &Path, t: f64) -> (u8, u8) {
    let out = ffmpeg(&[
        "-ss",
        &format!("{t}"),
        "-i",
        &file.display().to_string(),
        "-frames:v",
        "1",
        "-vf",
        "scale=2:1:flags=area,format=gray",
        "-f",
        "rawvideo",
        "-",
    ]);
    (out[0], out[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_composition_of_two_participants_has_both_videos_and_mixed_audio() {
    if !ffmpeg_present() {
        return;
    }
    let s = TestServer::start().await;
    let (status, room) = s.post("/v1/Rooms", &[("UniqueName", "composed")]).await;
    assert_eq!(status, 201);
    let room_sid: RoomSid = room["sid"].as_str().unwrap().parse().unwrap();
    let path = format!("/v1/Rooms/{room_sid}");

    // A room in progress, and a room without recordings, are refused.
    let form = [
        ("RoomSid", room_sid.as_str()),
        ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
        ("AudioSources", "*"),
        ("Format", "mp4"),
        ("Resolution", "640x480"),
    ];
    assert_error(&s.post("/v1/Compositions", &form).await, 400, 20001);
    let (status, _) = s.post(&path, &[("Status", "completed")]).await;
    assert_eq!(status, 200);
    assert_error(&s.post("/v1/Compositions", &form).await, 400, 20001);

    // Alice from the start, Bob a second later.
    let t0 = Timestamp::now().millis() - 60_000;
    let (alice, bob) = (ParticipantSid::random(), ParticipantSid::random());
    add_recording(
        &s,
        room_sid,
        alice,
        "alice-cam",
        "video",
        "testsrc=size=320x240:rate=15",
        t0,
        0,
        4,
    )
    .await;
    add_recording(
        &s,
        room_sid,
        alice,
        "alice-mic",
        "audio",
        "sine=frequency=440",
        t0,
        0,
        4,
    )
    .await;
    add_recording(
        &s,
        room_sid,
        bob,
        "bob-cam",
        "video",
        "testsrc2=size=320x240:rate=15",
        t0,
        1_000,
        4,
    )
    .await;
    add_recording(
        &s,
        room_sid,
        bob,
        "bob-mic",
        "audio",
        "sine=frequency=660",
        t0,
        1_000,
        4,
    )
    .await;

    for (name, value) in [
        ("Format", "avi"),
        ("Resolution", "big"),
        ("VideoLayout", "{\"a\":{}}"),
    ] {
        let mut bad: Vec<(&str, &str)> = form.iter().filter(|(k, _)| *k != name).copied().collect();
        bad.push((name, value));
        assert_error(&s.post("/v1/Compositions", &bad).await, 400, 20001);
    }

    let (status, created) = s.post("/v1/Compositions", &form).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "enqueued");
    let sid = created["sid"].as_str().unwrap().to_owned();
    let done = finished(&s, &sid).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["duration"], 5);
    let (_, listed) = s.get(&format!("/v1/Compositions?RoomSid={room_sid}")).await;
    assert_eq!(listed["compositions"].as_array().unwrap().len(), 1);

    let file = s
        .dir
        .path()
        .join("recordings/compositions")
        .join(format!("{sid}.mp4"));
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = info["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(audio["codec_name"], "aac");
    let duration: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 5.0).abs() < 0.5, "composed {duration} s");
    // Every frame decodes.
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decoded.status.success() && decoded.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    // Bob's cell is black before he arrives, and both show a picture after.
    let (left, right) = halves(&file, 0.4);
    assert!(left > 40 && right < 20, "at 0.4 s: {left} {right}");
    let (left, right) = halves(&file, 2.5);
    assert!(left > 40 && right > 40, "at 2.5 s: {left} {right}");

    // The media link redirects to a signed URL Salon serves.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(format!("{}/v1/Compositions/{sid}/Media", s.url))
        .basic_auth(s.key, Some(&s.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"]
        .to_str()
        .unwrap()
        .replace("http://salon.test", &s.url);
    let body = reqwest::get(&location)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len() as u64, std::fs::metadata(&file).unwrap().len());

    let (status, _) = s
        .rest(
            reqwest::Method::DELETE,
            &format!("/v1/Compositions/{sid}"),
            &[],
        )
        .await;
    assert_eq!(status, 204);
    assert!(!file.exists());
    assert_error(&s.get(&format!("/v1/Compositions/{sid}")).await, 404, 20404);
}

/// A server whose status callbacks may go to the receiver on loopback.
async fn server_with_callbacks() -> TestServer {
    TestServer::with(Options {
        callbacks: salon_server::callbacks::CallbackConfig {
            allow_private_network: true,
            ..Default::default()
        },
        ..Options::default()
    })
    .await
}

/// Wait until composition `sid` is neither enqueued nor processing.
async fn finished(s: &TestServer, sid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = s.get(&format!("/v1/Compositions/{sid}")).await;
        if c["status"] != "enqueued" && c["status"] != "processing" {
            return c;
        }
        assert!(Instant::now() < deadline, "still composing: {c:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ffmpeg_job_calls_back_as_it_goes_and_a_broken_source_fails_it() {
    if !ffmpeg_present() {
        return;
    }
    let s = server_with_callbacks().await;
    let receiver = Receiver::start(Answer::Accept).await;
    let (_, room) = s.post("/v1/Rooms", &[("UniqueName", "called-back")]).await;
    let room_sid: RoomSid = room["sid"].as_str().unwrap().parse().unwrap();
    s.post(&format!("/v1/Rooms/{room_sid}"), &[("Status", "completed")])
        .await;
    let t0 = Timestamp::now().millis() - 60_000;
    let alice = ParticipantSid::random();
    let source = "testsrc=size=320x240:rate=15";
    add_recording(&s, room_sid, alice, "cam", "video", source, t0, 0, 8).await;

    // A composition made by ffmpeg: enqueued, started, a progress callback
    // at each quarter it passes, available; every one signed.
    let callback = receiver.url("/compositions");
    let form = |format| {
        [
            ("RoomSid", room_sid.as_str()),
            ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
            ("Format", format),
            ("Resolution", "320x240"),
            ("StatusCallback", callback.as_str()),
        ]
    };
    let (status, created) = s.post("/v1/Compositions", &form("webm")).await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    let done = finished(&s, &sid).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let all = receiver
        .wait_for_delivered("composition-available", 1)
        .await;
    let events: Vec<&str> = all.iter().map(|c| c.event()).collect();
    assert_eq!(events.first(), Some(&"composition-enqueued"), "{events:?}");
    assert_eq!(events.get(1), Some(&"composition-started"), "{events:?}");
    assert_eq!(events.last(), Some(&"composition-available"), "{events:?}");
    let progress: Vec<&common::receiver::Captured> = all
        .iter()
        .filter(|c| c.event() == "composition-progress")
        .collect();
    assert!(!progress.is_empty(), "no progress callback: {events:?}");
    assert_eq!(events.len(), 3 + progress.len(), "{events:?}");
    let mut last = 0;
    for p in &progress {
        let percent: u32 = p.param("PercentageDone").unwrap().parse().unwrap();
        assert!(percent > last && percent < 100, "{events:?} at {percent}");
        last = percent;
        let left: u64 = p.param("SecondsRemaining").unwrap().parse().unwrap();
        assert!(left < 600, "{left} s left");
    }
    let uri = format!("/v1/Compositions/{sid}");
    for (i, c) in all.iter().enumerate() {
        assert_eq!(c.param("CompositionSid"), Some(sid.as_str()));
        assert_eq!(c.param("CompositionUri"), Some(uri.as_str()));
        assert_eq!(c.param("RoomSid"), Some(room_sid.as_str()));
        assert_eq!(c.param("AccountSid"), Some(s.account.as_str()));
        assert_eq!(c.param("SequenceNumber"), Some(i.to_string().as_str()));
        assert_eq!(
            c.signature.as_deref(),
            Some(expected_signature(&s.auth_token, c).as_str())
        );
    }
    let available = all.last().unwrap();
    assert_eq!(available.param("Duration"), Some("8"));
    assert_eq!(
        available.param("Size"),
        Some(done["size"].to_string().as_str())
    );
    assert_eq!(
        available.param("MediaUri"),
        Some(format!("{uri}/Media").as_str())
    );

    // A source ffmpeg cannot read fails the job: composition-failed, with
    // ffmpeg's reason, and the composition is failed.
    let (_, recordings) = s.get(&format!("/v1/Rooms/{room_sid}/Recordings")).await;
    let recording = &recordings["recordings"][0];
    let file = s
        .dir
        .path()
        .join("recordings")
        .join(room_sid.as_str())
        .join(format!("{}.mkv", recording["sid"].as_str().unwrap()));
    std::fs::write(&file, b"not a Matroska file").unwrap();
    let (status, created) = s.post("/v1/Compositions", &form("mp4")).await;
    assert_eq!(status, 201, "{created}");
    let broken = created["sid"].as_str().unwrap().to_owned();
    let done = finished(&s, &broken).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    let all = receiver.wait_for_delivered("composition-failed", 1).await;
    let failed: Vec<&common::receiver::Captured> = all
        .iter()
        .filter(|c| c.param("CompositionSid") == Some(broken.as_str()))
        .collect();
    let events: Vec<&str> = failed.iter().map(|c| c.event()).collect();
    assert_eq!(
        events,
        [
            "composition-enqueued",
            "composition-started",
            "composition-failed"
        ]
    );
    let why = failed[2].param("FailedOperation").unwrap();
    assert!(why.contains("ffmpeg failed"), "{why}");
    assert_eq!(
        failed[2].signature.as_deref(),
        Some(expected_signature(&s.auth_token, failed[2]).as_str())
    );
    // No file is left behind for it.
    let composed = s.dir.path().join("recordings/compositions");
    assert!(!composed.join(format!("{broken}.mp4")).exists());
}

/// CPU seconds (user + system) of this process's waited-for children, from
/// /proc/self/stat (`cutime`, `cstime`, in clock ticks of 1/100 s).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // cutime and cstime are fields 16 and 17 (1-based), 14 and 15 here.
    (ticks(13) + ticks(14)) / 100.0
}

/// A benchmark, not a test (`--ignored`): the time and CPU of composing a
/// room of four people (320x240 VP8 cameras at 15 fps and Opus
/// microphones, made by ffmpeg from test patterns and tones) into a 640x480
/// grid, mp4. `SALON_BENCH_MINUTES` sets the room's length (default 10).
///
/// ```sh
/// cargo test -p salon-server --test compositions -- --ignored --nocapture composing_a_room_of_four
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes of ffmpeg"]
async fn composing_a_room_of_four() {
    if !ffmpeg_present() {
        return;
    }
    let minutes: u32 = std::env::var("SALON_BENCH_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let seconds = minutes * 60;
    let s = TestServer::start().await;
    let (_, room) = s.post("/v1/Rooms", &[("UniqueName", "bench")]).await;
    let room_sid: RoomSid = room["sid"].as_str().unwrap().parse().unwrap();
    s.post(&format!("/v1/Rooms/{room_sid}"), &[("Status", "completed")])
        .await;
    let t0 = Timestamp::now().millis() - i64::from(seconds) * 1000;
    let made = Instant::now();
    for (i, pattern) in ["testsrc", "testsrc2", "smptebars", "rgbtestsrc"]
        .iter()
        .enumerate()
    {
        let who = ParticipantSid::random();
        add_recording(
            &s,
            room_sid,
            who,
            &format!("cam-{i}"),
            "video",
            &format!("{pattern}=size=320x240:rate=15"),
            t0,
            0,
            seconds,
        )
        .await;
        add_recording(
            &s,
            room_sid,
            who,
            &format!("mic-{i}"),
            "audio",
            &format!("sine=frequency={}", 300 + 100 * i),
            t0,
            0,
            seconds,
        )
        .await;
    }
    println!(
        "inputs: {minutes} min x 4 people made in {:.1?}",
        made.elapsed()
    );

    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let (status, created) = s
        .post(
            "/v1/Compositions",
            &[
                ("RoomSid", room_sid.as_str()),
                ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
                ("AudioSources", "*"),
                ("Format", "mp4"),
                ("Resolution", "640x480"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    let done: Value = loop {
        let (_, c) = s.get(&format!("/v1/Compositions/{sid}")).await;
        if c["status"] != "enqueued" && c["status"] != "processing" {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds() - cpu_before;
    assert_eq!(done["status"], "completed", "{done:#}");
    println!(
        "composed {} s of a room of four (grid 640x480, mp4) in {wall:.1} s wall, {cpu:.1} s CPU \
         (ffmpeg): {:.2}x real time, {:.2} cores busy; {} bytes",
        done["duration"],
        f64::from(seconds) / wall,
        cpu / wall,
        done["size"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composition_hooks_are_a_rest_resource_and_compose_each_room_that_ends() {
    let s = TestServer::start().await;
    // Create: FriendlyName is required and unique; the rest is a
    // composition's parameters, checked the same way.
    let hook_form = [
        ("FriendlyName", "grid-of-everyone"),
        ("VideoLayout", r#"{"grid":{"video_sources":["*"]}}"#),
        ("AudioSources", "*"),
        ("Format", "mp4"),
        ("Resolution", "320x240"),
        ("StatusCallback", "https://app.example.com/hooks"),
    ];
    let (status, hook) = s.post("/v1/CompositionHooks", &hook_form).await;
    assert_eq!(status, 201, "{hook}");
    let sid = hook["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("HK"), "{hook}");
    assert_eq!(hook["enabled"], true);
    assert_eq!(hook["format"], "mp4");
    assert_eq!(hook["resolution"], "320x240");
    assert_eq!(hook["audio_sources"], serde_json::json!(["*"]));
    assert_eq!(hook["video_layout"]["grid"]["video_sources"][0], "*");
    assert_eq!(
        hook["url"],
        format!("http://salon.test/v1/CompositionHooks/{sid}")
    );
    assert_error(
        &s.post("/v1/CompositionHooks", &hook_form).await,
        400,
        20001,
    );
    for bad in [
        vec![("AudioSources", "*")],
        vec![("FriendlyName", "no-sources")],
        vec![
            ("FriendlyName", "avi"),
            ("AudioSources", "*"),
            ("Format", "avi"),
        ],
        vec![
            ("FriendlyName", "huge"),
            ("AudioSources", "*"),
            ("Resolution", "5000x5000"),
        ],
    ] {
        assert_error(&s.post("/v1/CompositionHooks", &bad).await, 400, 20001);
    }
    // A disabled hook is kept but does not fire.
    let (status, disabled) = s
        .post(
            "/v1/CompositionHooks",
            &[
                ("FriendlyName", "off"),
                ("AudioSources", "*"),
                ("Enabled", "false"),
            ],
        )
        .await;
    assert_eq!(status, 201);
    let (_, listed) = s.get("/v1/CompositionHooks").await;
    assert_eq!(listed["composition_hooks"].as_array().unwrap().len(), 2);
    let (_, enabled) = s.get("/v1/CompositionHooks?Enabled=true").await;
    assert_eq!(enabled["composition_hooks"][0]["sid"], sid.as_str());
    assert_eq!(enabled["composition_hooks"].as_array().unwrap().len(), 1);
    // Update: what is given replaces; the rest stays.
    let path = format!("/v1/CompositionHooks/{sid}");
    let (status, updated) = s.post(&path, &[("Resolution", "640x480")]).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["resolution"], "640x480");
    assert_eq!(updated["format"], "mp4");
    assert_eq!(updated["friendly_name"], "grid-of-everyone");
    assert_error(&s.post(&path, &[("Format", "avi")]).await, 400, 20001);
    assert_error(&s.post(&path, &[("FriendlyName", "off")]).await, 400, 20001);
    let (_, fetched) = s.get(&path).await;
    assert_eq!(fetched["resolution"], "640x480");
    assert_error(
        &s.get("/v1/CompositionHooks/HK00000000000000000000000000000000")
            .await,
        404,
        20404,
    );

    // A recorded room ends: the enabled hook composes it, once.
    let (_, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "hooked"),
                ("RecordParticipantsOnConnect", "true"),
            ],
        )
        .await;
    let room_sid = room["sid"].as_str().unwrap().to_owned();
    let alice = s
        .client("alice", "hooked", &[salon_client::TrackSpec::audio("mic")])
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    alice.leave().await;
    s.post(&format!("/v1/Rooms/{room_sid}"), &[("Status", "completed")])
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let compositions = loop {
        let (_, list) = s.get(&format!("/v1/Compositions?RoomSid={room_sid}")).await;
        let list = list["compositions"].as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            break list;
        }
        assert!(Instant::now() < deadline, "the hook made no composition");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, again) = s.get(&format!("/v1/Compositions?RoomSid={room_sid}")).await;
    assert_eq!(
        again["compositions"].as_array().unwrap().len(),
        1,
        "{again:#}"
    );
    let c = &compositions[0];
    assert_eq!(c["format"], "mp4");
    assert_eq!(c["resolution"], "640x480");
    assert_eq!(c["status_callback"], "https://app.example.com/hooks");

    // A room without recordings makes no composition.
    let (_, quiet) = s.post("/v1/Rooms", &[("UniqueName", "quiet")]).await;
    let quiet_sid = quiet["sid"].as_str().unwrap().to_owned();
    s.post(
        &format!("/v1/Rooms/{quiet_sid}"),
        &[("Status", "completed")],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, none) = s
        .get(&format!("/v1/Compositions?RoomSid={quiet_sid}"))
        .await;
    assert_eq!(none["compositions"].as_array().unwrap().len(), 0);

    // Delete.
    let (status, _) = s.rest(reqwest::Method::DELETE, &path, &[]).await;
    assert_eq!(status, 204);
    assert_error(&s.get(&path).await, 404, 20404);
    let (status, _) = s
        .rest(
            reqwest::Method::DELETE,
            &format!("/v1/CompositionHooks/{}", disabled["sid"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(status, 204);
}

/// Compositions of `room`, as REST lists them.
async fn compositions_of(s: &TestServer, room: &str) -> Vec<Value> {
    let (_, list) = s.get(&format!("/v1/Compositions?RoomSid={room}")).await;
    list["compositions"].as_array().cloned().unwrap_or_default()
}

/// A node that stops before its compositions are made makes them when it
/// starts again: a room the shutdown itself ended still fires its hook
/// before the store closes, and a composition a crash left `processing`
/// starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compositions_a_stop_cut_short_are_made_after_the_restart() {
    if !ffmpeg_present() {
        return;
    }
    let s = TestServer::start().await;
    let (status, hook) = s
        .post(
            "/v1/CompositionHooks",
            &[
                ("FriendlyName", "everyone"),
                ("AudioSources", "*"),
                ("Format", "mp4"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{hook}");

    // A recorded room in progress when the server stops.
    let (_, live) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "live-at-shutdown"),
                ("RecordParticipantsOnConnect", "true"),
            ],
        )
        .await;
    let live_sid = live["sid"].as_str().unwrap().to_owned();
    let _alice = s
        .client(
            "alice",
            "live-at-shutdown",
            &[salon_client::TrackSpec::audio("mic")],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // An ended room whose composition a crash left `processing`.
    let (_, ended) = s.post("/v1/Rooms", &[("UniqueName", "crashed")]).await;
    let ended_sid: RoomSid = ended["sid"].as_str().unwrap().parse().unwrap();
    s.post(
        &format!("/v1/Rooms/{ended_sid}"),
        &[("Status", "completed")],
    )
    .await;
    let t0 = Timestamp::now().millis() - 60_000;
    let bob = ParticipantSid::random();
    add_recording(
        &s,
        ended_sid,
        bob,
        "bob-mic",
        "audio",
        "sine=frequency=660",
        t0,
        0,
        2,
    )
    .await;
    let stuck = salon_sid::CompositionSid::random();
    let now = Timestamp::now();
    let record = salon_store::CompositionRecord {
        sid: stuck,
        account_sid: s.account,
        room_sid: ended_sid,
        status: "enqueued".into(),
        format: "mp4".into(),
        resolution: "640x480".into(),
        video_layout: "{}".into(),
        audio_sources: r#"["*"]"#.into(),
        trim: true,
        status_callback: None,
        status_callback_method: "POST".into(),
        progress: 0,
        path: format!("{stuck}.mp4"),
        size: 0,
        duration_ms: 0,
        failure: None,
        date_created: now,
        date_updated: now,
        date_completed: None,
    };
    let store = &s.state.store;
    store.insert_composition(&record).await.unwrap();
    let started = store
        .composition_change(
            stuck,
            &["enqueued"],
            "processing",
            40,
            None,
            None,
            None,
            now,
        )
        .await
        .unwrap();
    assert!(started);

    // The shutdown ends the live room; its hook writes its composition
    // before the store closes.
    let dir = s.stop().await;
    let store = salon_store::Store::open(dir.path()).await.unwrap();
    let filter = salon_store::CompositionFilter {
        room_sid: Some(live_sid.parse().unwrap()),
        ..Default::default()
    };
    let written = store
        .compositions(&filter, &salon_store::PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        written.len(),
        1,
        "the hook fired for the room the shutdown ended"
    );
    store.close().await;

    // After the restart, both are made.
    let s = TestServer::in_dir(dir, common::Options::default()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    for room in [live_sid.as_str(), ended_sid.as_str()] {
        loop {
            let list = compositions_of(&s, room).await;
            assert_eq!(list.len(), 1, "{list:#?}");
            let status = list[0]["status"].as_str().unwrap_or_default().to_owned();
            if status == "completed" {
                assert!(list[0]["duration"].as_u64().unwrap_or(0) >= 1, "{list:#?}");
                break;
            }
            assert_ne!(status, "failed", "{list:#?}");
            assert!(
                Instant::now() < deadline,
                "not composed after the restart: {list:#?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

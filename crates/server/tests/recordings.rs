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

use common::receiver::{Answer, Receiver};
use common::{Options, TestServer, assert_error};
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

/// Status callbacks allowed to loopback (the tests' receiver).
fn with_callbacks() -> Options {
    Options {
        callbacks: salon_server::callbacks::CallbackConfig {
            allow_private_network: true,
            ..Default::default()
        },
        ..Options::default()
    }
}

/// The recording callbacks `receiver` was sent, as (event, RecordingSid).
fn recording_events(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .captured()
        .iter()
        .filter(|c| c.event().starts_with("recording-"))
        .map(|c| {
            let sid = c.param("RecordingSid").unwrap_or_default().to_owned();
            (c.event().to_owned(), sid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_gives_one_completed_recording_per_track_with_a_gap_for_a_mute() {
    let s = TestServer::with(with_callbacks()).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let callback = receiver.url("/recorded");
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "recorded"),
                ("RecordParticipantsOnConnect", "true"),
                ("StatusCallback", &callback),
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
    // The app hears each recording start and complete (in order per
    // recording; the two recordings' callbacks interleave).
    receiver.wait_for_delivered("recording-completed", 2).await;
    let events = recording_events(&receiver);
    for r in [audio, video] {
        let sid = r["sid"].as_str().unwrap();
        let of_it: Vec<&str> = events
            .iter()
            .filter(|(_, s)| s == sid)
            .map(|(e, _)| e.as_str())
            .collect();
        assert_eq!(
            of_it,
            ["recording-started", "recording-completed"],
            "{events:?}"
        );
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

/// The signature of a download link of `sid` valid until `expires`, made
/// as the server makes it: HMAC-SHA1 over `sid:expires` with a key derived
/// from the account's auth token.
fn link_signature(auth_token: &str, sid: &str, expires: u64) -> String {
    use hmac::{Hmac, Mac};
    let mut key = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    key.update(b"salon media download links v1");
    let key = key.finalize().into_bytes();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(format!("{sid}:{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The signed link `/Media` redirects to, on this server.
async fn media_link(s: &TestServer, resource: &str) -> String {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(format!("{}{resource}/Media", s.url))
        .basic_auth(s.key, Some(&s.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location
        .strip_prefix("http://salon.test")
        .expect("a link on the public URL")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_links_outlive_a_restart_until_they_expire_and_forged_ones_are_refused() {
    let s = TestServer::start().await;
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "linked"),
                ("RecordParticipantsOnConnect", "true"),
            ],
        )
        .await;
    assert_eq!(status, 201);
    let room_sid = room["sid"].as_str().unwrap().to_owned();
    let alice = s
        .client("alice", "linked", &[TrackSpec::audio("mic")])
        .await;
    recordings_of(&s, &room_sid, |l| l.len() == 1 && !l[0]["codec"].is_null()).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    alice.leave().await;
    let list = recordings_of(&s, &room_sid, |l| all_finished(l, 1)).await;
    assert_eq!(list[0]["status"], "completed", "{list:#?}");
    let sid = list[0]["sid"].as_str().unwrap().to_owned();
    let size = list[0]["size"].as_u64().unwrap();
    let link = media_link(&s, &format!("/v1/Recordings/{sid}")).await;
    let get = |url: String| async move { reqwest::get(url).await.unwrap() };
    assert_eq!(get(format!("{}{link}", s.url)).await.status(), 200);

    // Forged, expired, incomplete, or another recording's: 403, 20403.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = now - 5;
    let other = "RT00000000000000000000000000000000";
    for (what, query) in [
        (
            "expired (signed right)",
            format!(
                "Expires={expired}&Signature={}",
                link_signature(&s.auth_token, &sid, expired)
            ),
        ),
        (
            "another SID's signature",
            format!(
                "Expires={}&Signature={}",
                now + 60,
                link_signature(&s.auth_token, other, now + 60)
            ),
        ),
        (
            "signed with another token",
            format!(
                "Expires={}&Signature={}",
                now + 60,
                link_signature("not-the-auth-token", &sid, now + 60)
            ),
        ),
        ("no signature", format!("Expires={}", now + 60)),
        ("no expiry", "Signature=00".to_owned()),
        ("garbage", "Expires=soon&Signature=%ff%00".to_owned()),
    ] {
        let response = get(format!("{}/media/recordings/{sid}?{query}", s.url)).await;
        assert_eq!(response.status(), 403, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 20403, "{what}: {body}");
    }
    // A link signed as the server signs is good until it expires.
    let fresh = format!(
        "{}/media/recordings/{sid}?Expires={}&Signature={}",
        s.url,
        now + 60,
        link_signature(&s.auth_token, &sid, now + 60)
    );
    assert_eq!(get(fresh).await.status(), 200);

    // A restart: the link issued before it still works.
    let dir = s.stop().await;
    let s = TestServer::in_dir(dir, common::Options::default()).await;
    let response = get(format!("{}{link}", s.url)).await;
    assert_eq!(response.status(), 200, "a link from before the restart");
    assert_eq!(response.bytes().await.unwrap().len() as u64, size);

    // The recording deleted, its link is dead and a composition of the
    // room has nothing to compose.
    let (status, _) = s
        .rest(
            reqwest::Method::DELETE,
            &format!("/v1/Recordings/{sid}"),
            &[],
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(get(format!("{}{link}", s.url)).await.status(), 404);
    let (status, _) = s
        .post(&format!("/v1/Rooms/{room_sid}"), &[("Status", "completed")])
        .await;
    assert!(status == 200 || status == 400, "{status}");
    assert_error(
        &s.post(
            "/v1/Compositions",
            &[("RoomSid", room_sid.as_str()), ("AudioSources", "*")],
        )
        .await,
        400,
        20001,
    );
}

/// A tmpfs of `bytes` mounted at `at` (needs root), unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| SmallDisk(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_recording_and_the_room_goes_on() {
    // The recordings directory on a disk of 384 KiB: a 1 Mbit/s camera
    // fills it in about three seconds.
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("recordings"), 384 * 1024) else {
        assert!(
            std::env::var("SALON_FFMPEG").as_deref() != Ok("required") || !nix_is_root(),
            "root could not mount a tmpfs"
        );
        eprintln!("skipping: mounting a small tmpfs needs root");
        return;
    };
    let s = TestServer::in_dir(dir, with_callbacks()).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let callback = receiver.url("/full");
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "full"),
                ("RecordParticipantsOnConnect", "true"),
                ("StatusCallback", &callback),
            ],
        )
        .await;
    assert_eq!(status, 201);
    let room_sid = room["sid"].as_str().unwrap().to_owned();
    let alice = s
        .client(
            "alice",
            "full",
            &[TrackSpec::video("cam").bitrate(1_000_000).fps(30)],
        )
        .await;
    let mut bob = s.client("bob", "full", &[]).await;
    bob.wait_for(|e| matches!(e, ClientEvent::MediaStarted { .. }), WAIT)
        .await
        .expect("bob receives alice's camera");

    let list = recordings_of(&s, &room_sid, |l| all_finished(l, 1)).await;
    assert_eq!(list[0]["status"], "failed", "{list:#?}");
    // The app hears it: recording-started, then recording-failed.
    receiver.wait_for_delivered("recording-failed", 1).await;
    let sid = list[0]["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        recording_events(&receiver),
        [
            ("recording-started".to_owned(), sid.clone()),
            ("recording-failed".to_owned(), sid)
        ]
    );

    // The room goes on: bob still receives, alice can still publish.
    let (_, room) = s.get(&format!("/v1/Rooms/{room_sid}")).await;
    assert_eq!(room["status"], "in-progress");
    let received = |c: &salon_client::Client| -> u64 {
        c.stats().subscribed.values().map(|r| r.packets).sum()
    };
    let before = received(&bob);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(received(&bob) > before + 20, "bob still receives media");
    alice.publish(TrackSpec::audio("mic")).await.unwrap();
    bob.wait_for(
        |e| matches!(e, ClientEvent::TrackPublished { track, .. } if track.name == "mic"),
        WAIT,
    )
    .await
    .expect("a track published after the failure reaches bob");
    alice.leave().await;
    bob.leave().await;
    drop(s);
    drop(disk);
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

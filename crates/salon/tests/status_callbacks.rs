//! Status callbacks end to end, from the real `salon` binary to a webhook
//! receiver in this test:
//!
//! * `helper_libraries_create_rooms_whose_callbacks_they_validate`: twilio-node
//!   and twilio-python create rooms with a `StatusCallback` (POST and GET);
//!   Rust clients join, publish, mute, unmute, unpublish and leave; the
//!   receiver gets every event in order with Twilio's parameters, and the
//!   libraries' own validators (`twilio.validateRequest`,
//!   `RequestValidator`) accept every signature.
//! * `a_backlog_survives_sigkill`: while the receiver refuses callbacks the
//!   server is killed with SIGKILL; restarted, it delivers the whole backlog
//!   in order (and the end of the room the dead process left behind).
//!
//! The receiver is on loopback, so the server runs with
//! `--callback-private-network true`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::interop::{Runtime, installed, interop_dir};
use common::{ACCOUNT_SID, API_KEY, API_SECRET, Server, clean_env, credentials, tail, token};
use salon_client::{Client, ClientConfig, TrackSpec};

/// Settings every server here runs with.
const ARGS: &[&str] = &[
    "--callback-private-network",
    "true",
    "--callback-timeout",
    "2",
];

/// How long one step may take to show at the receiver.
const STEP: Duration = Duration::from_secs(20);

// ---- a webhook receiver ----------------------------------------------------

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    /// `http://{Host}{path?query}`, as an app reconstructs it.
    url: String,
    signature: String,
    /// POST body parameters, or GET query parameters.
    params: BTreeMap<String, String>,
    answered: u16,
}

impl Captured {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
    fn event(&self) -> &str {
        self.param("StatusCallbackEvent")
    }
}

/// A plain HTTP/1.1 receiver on a thread per connection, answering every
/// request with the current status.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<(u16, Vec<Captured>)>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("receiver bound");
        let receiver = Receiver {
            addr: listener.local_addr().expect("receiver address"),
            state: Arc::new(Mutex::new((status, Vec::new()))),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn answer(&self, status: u16) {
        self.state.lock().unwrap().0 = status;
    }

    fn captured(&self) -> Vec<Captured> {
        self.state.lock().unwrap().1.clone()
    }

    fn delivered(&self, room: &str) -> Vec<Captured> {
        self.captured()
            .into_iter()
            .filter(|c| c.answered == 200 && c.param("RoomSid") == room)
            .collect()
    }

    /// Wait until `room` has had `event` delivered `n` times.
    async fn wait_for(&self, room: &str, event: &str, n: usize) -> Vec<Captured> {
        let deadline = Instant::now() + STEP;
        loop {
            let delivered = self.delivered(room);
            if delivered.iter().filter(|c| c.event() == event).count() >= n {
                return delivered;
            }
            if Instant::now() > deadline {
                let seen: Vec<&str> = delivered.iter().map(Captured::event).collect();
                panic!("{room}: no {n}× {event} within {STEP:?}; delivered so far: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut writer = match stream.try_clone() {
            Ok(writer) => writer,
            Err(_) => return,
        };
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("").to_owned();
            let target = parts.next().unwrap_or("").to_owned();
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length.min(1 << 20)];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let form = if method == "GET" {
                target
                    .split_once('?')
                    .map_or("", |(_, q)| q)
                    .as_bytes()
                    .to_vec()
            } else {
                body
            };
            let status = {
                let mut state = self.state.lock().unwrap();
                let status = state.0;
                state.1.push(Captured {
                    method,
                    url: format!(
                        "http://{}{target}",
                        headers.get("host").map_or("", String::as_str)
                    ),
                    signature: headers
                        .get("x-twilio-signature")
                        .cloned()
                        .unwrap_or_default(),
                    params: url::form_urlencoded::parse(&form).into_owned().collect(),
                    answered: status,
                });
                status
            };
            let response = format!("HTTP/1.1 {status} Status\r\nContent-Length: 0\r\n\r\n");
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }
}

// ---- the server's side ---------------------------------------------------------

async fn join(server: &Server, identity: &str, room: &str, tracks: &[TrackSpec]) -> Client {
    let signaling = format!("ws://{}/v1/signaling", server.addr);
    let mut config = ClientConfig::new(signaling, token(identity), room);
    for track in tracks {
        config = config.publish(track.clone());
    }
    Client::connect(config).await.expect("joined")
}

async fn rest(server: &Server, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .basic_auth(API_KEY, Some(API_SECRET))
        .form(form)
        .send()
        .await
        .expect("REST call");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

/// Run a helper-library script; return its stdout, or fail with its output.
fn script(server: &Server, runtime: Runtime, script: &str, args: &[&str]) -> String {
    let mut command = Command::new(runtime.program());
    clean_env(&mut command);
    credentials(&mut command);
    let output = command
        .arg(interop_dir().join(script))
        .args(args)
        .env("SALON_URL", &server.url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(interop_dir().join(script).parent().unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|child| child.wait_with_output())
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", runtime.program().display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tests/interop/{script} {args:?} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}\n--- salon log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        tail(&server.log, 8000)
    );
    stdout
}

fn room_sid(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ROOM "))
        .unwrap_or_else(|| panic!("no ROOM line in {stdout}"))
        .to_owned()
}

fn events(captured: &[Captured]) -> Vec<&str> {
    captured.iter().map(Captured::event).collect()
}

/// What every callback of `room` must say, whatever its event.
fn check_common(captured: &[Captured], room: &str, name: &str) {
    let timestamp = |t: &str| {
        t.len() == 24
            && t.ends_with('Z')
            && t.as_bytes()[10] == b'T'
            && t.as_bytes()[19] == b'.'
            && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .is_ok()
    };
    for (i, c) in captured.iter().enumerate() {
        assert_eq!(c.param("SequenceNumber"), i.to_string(), "{}", c.event());
        assert_eq!(c.param("AccountSid"), ACCOUNT_SID);
        assert_eq!(c.param("RoomSid"), room);
        assert_eq!(c.param("RoomName"), name);
        assert_eq!(c.param("RoomType"), "group");
        let status = if c.event() == "room-ended" {
            "completed"
        } else {
            "in-progress"
        };
        assert_eq!(c.param("RoomStatus"), status, "{}", c.event());
        assert!(
            timestamp(c.param("Timestamp")),
            "Timestamp like 2020-08-19T17:40:05.273Z: {}",
            c.param("Timestamp")
        );
        if c.event().starts_with("participant-") || c.event().starts_with("track-") {
            assert!(c.param("ParticipantSid").starts_with("PA"), "{c:?}");
        }
        if c.event().starts_with("track-") {
            assert!(c.param("TrackSid").starts_with("MT"), "{c:?}");
        }
    }
}

/// Write what the receiver captured for the validators.
fn write_captured(path: &std::path::Path, captured: &[Captured]) {
    let list: Vec<serde_json::Value> = captured
        .iter()
        .map(|c| {
            let params = if c.method == "GET" {
                BTreeMap::new()
            } else {
                c.params.clone()
            };
            serde_json::json!({
                "method": c.method,
                "url": c.url,
                "params": params,
                "signature": c.signature,
            })
        })
        .collect();
    std::fs::write(path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_libraries_create_rooms_whose_callbacks_they_validate() {
    let test = "helper_libraries_create_rooms_whose_callbacks_they_validate";
    if !installed(Runtime::Node, test) || !installed(Runtime::Python, test) {
        return;
    }
    let receiver = Receiver::start(200);
    let server = Server::start_with(ARGS);

    // twilio-node creates a room reporting by POST.
    let created = script(
        &server,
        Runtime::Node,
        "node/callbacks.mjs",
        &[
            "create",
            "standup",
            &receiver.url("/video/events?app=salon"),
            "POST",
        ],
    );
    let room = room_sid(&created);
    receiver.wait_for(&room, "room-created", 1).await;

    let alice = join(
        &server,
        "alice",
        "standup",
        &[TrackSpec::audio("mic"), TrackSpec::video("camera")],
    )
    .await;
    receiver.wait_for(&room, "track-added", 2).await;
    let bob = join(&server, "bob", "standup", &[]).await;
    receiver.wait_for(&room, "participant-connected", 2).await;
    // The client tells the server about a mute by the track's SID, which
    // it learns when the server confirms the publication.
    let deadline = Instant::now() + STEP;
    while alice.published_track("mic").is_none() || alice.published_track("camera").is_none() {
        assert!(Instant::now() < deadline, "alice's tracks confirmed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    alice.set_enabled("mic", false).await.expect("muted");
    receiver.wait_for(&room, "track-disabled", 1).await;
    alice.set_enabled("mic", true).await.expect("unmuted");
    receiver.wait_for(&room, "track-enabled", 1).await;
    alice.unpublish("camera").await.expect("unpublished");
    receiver.wait_for(&room, "track-removed", 1).await;
    alice.leave().await;
    receiver
        .wait_for(&room, "participant-disconnected", 1)
        .await;
    bob.leave().await;
    receiver
        .wait_for(&room, "participant-disconnected", 2)
        .await;
    rest(
        &server,
        &format!("/v1/Rooms/{room}"),
        &[("Status", "completed")],
    )
    .await;
    let delivered = receiver.wait_for(&room, "room-ended", 1).await;

    assert_eq!(
        events(&delivered),
        [
            "room-created",
            "participant-connected",
            "track-added",
            "track-added",
            "participant-connected",
            "track-disabled",
            "track-enabled",
            "track-removed",
            "track-removed",
            "participant-disconnected",
            "participant-disconnected",
            "room-ended",
        ]
    );
    check_common(&delivered, &room, "standup");
    let d = |i: usize| &delivered[i];
    for i in [1, 2, 3, 5, 6, 7, 8, 9] {
        assert_eq!(
            d(i).param("ParticipantIdentity"),
            "alice",
            "{}",
            d(i).event()
        );
    }
    assert_eq!(d(4).param("ParticipantIdentity"), "bob");
    assert_eq!(d(10).param("ParticipantIdentity"), "bob");
    let mut added: Vec<(&str, &str)> = [d(2), d(3)]
        .iter()
        .map(|c| (c.param("TrackName"), c.param("TrackKind")))
        .collect();
    added.sort();
    assert_eq!(added, [("camera", "video"), ("mic", "audio")]);
    let mic = if d(2).param("TrackName") == "mic" {
        d(2)
    } else {
        d(3)
    };
    for i in [5, 6, 8] {
        assert_eq!(
            d(i).param("TrackSid"),
            mic.param("TrackSid"),
            "{}",
            d(i).event()
        );
        assert_eq!(d(i).param("TrackKind"), "audio");
    }
    assert_eq!(d(7).param("TrackName"), "camera");
    assert_eq!(d(7).param("ParticipantStatus"), "connected");
    assert_eq!(d(9).param("ParticipantStatus"), "disconnected");
    for i in [9, 10] {
        let duration: u64 = d(i).param("ParticipantDuration").parse().expect("seconds");
        assert!(duration < 120, "{duration}");
    }
    let room_duration: u64 = d(11).param("RoomDuration").parse().expect("seconds");
    assert!(room_duration < 120);
    for c in &delivered {
        assert_eq!(c.method, "POST");
        assert!(c.url.ends_with("/video/events?app=salon"), "{}", c.url);
    }

    // twilio-python creates a room reporting by GET.
    let created = script(
        &server,
        Runtime::Python,
        "python/callbacks.py",
        &["create", "by-get", &receiver.url("/video/get"), "GET"],
    );
    let by_get = room_sid(&created);
    let carol = join(&server, "carol", "by-get", &[TrackSpec::audio("mic")]).await;
    receiver.wait_for(&by_get, "track-added", 1).await;
    carol.leave().await;
    receiver
        .wait_for(&by_get, "participant-disconnected", 1)
        .await;
    rest(
        &server,
        &format!("/v1/Rooms/{by_get}"),
        &[("Status", "completed")],
    )
    .await;
    let got = receiver.wait_for(&by_get, "room-ended", 1).await;
    assert_eq!(
        events(&got),
        [
            "room-created",
            "participant-connected",
            "track-added",
            "track-removed",
            "participant-disconnected",
            "room-ended"
        ]
    );
    check_common(&got, &by_get, "by-get");
    assert!(got.iter().all(|c| c.method == "GET"));

    // Both libraries' validators accept every callback of both rooms.
    let all: Vec<Captured> = receiver
        .captured()
        .into_iter()
        .filter(|c| c.answered == 200)
        .collect();
    assert_eq!(all.len(), delivered.len() + got.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("captured.json");
    write_captured(&file, &all);
    let file = file.to_str().unwrap();
    print!(
        "{}",
        script(
            &server,
            Runtime::Node,
            "node/callbacks.mjs",
            &["validate", file]
        )
    );
    print!(
        "{}",
        script(
            &server,
            Runtime::Python,
            "python/callbacks.py",
            &["validate", file]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_survives_sigkill() {
    let receiver = Receiver::start(503);
    let server = Server::start_with(ARGS);
    let created = rest(
        &server,
        "/v1/Rooms",
        &[
            ("UniqueName", "crash"),
            ("StatusCallback", &receiver.url("/hooks")),
        ],
    )
    .await;
    let room = created["sid"].as_str().unwrap().to_owned();
    let alice = join(&server, "alice", "crash", &[TrackSpec::audio("mic")]).await;
    alice.leave().await;

    // The receiver refuses; the room's first callback is retried, and
    // everything after it waits its turn.
    let deadline = Instant::now() + STEP;
    while receiver.captured().len() < 3 {
        assert!(Instant::now() < deadline, "three refused attempts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        receiver
            .captured()
            .iter()
            .all(|c| c.event() == "room-created" && c.answered == 503)
    );

    let dir = server.kill();
    receiver.answer(200);
    let server = Server::restart_in(dir, ARGS);
    let delivered = receiver.wait_for(&room, "room-ended", 1).await;
    assert_eq!(
        events(&delivered),
        [
            "room-created",
            "participant-connected",
            "track-added",
            "track-removed",
            "participant-disconnected",
            "room-ended"
        ],
        "everything, once, in order; the room the dead process left is ended at the restart"
    );
    check_common(&delivered, &room, "crash");

    // And the backlog shows empty in /metrics.
    let deadline = Instant::now() + STEP;
    loop {
        let metrics = reqwest::get(format!("{}/metrics", server.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("\nsalon_status_callbacks_backlog 0\n")
            && metrics.contains("\nsalon_status_callbacks_delivered_total 6\n")
        {
            break;
        }
        assert!(Instant::now() < deadline, "backlog not empty:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! Salon and a WebRTC stack we did not write: Python's aiortc, pinned in
//! `tests/interop/requirements.txt` and installed by `tests/interop/setup`.
//!
//! `tests/interop/python/webrtc.py` joins a room of the real `salon` binary
//! following only `docs/protocol.md`, and publishes audio, video and a data
//! track; a `salon-client` (Rust) participant in the same room does the
//! same. Both directions must carry: aiortc receives the Rust participant's
//! audio and video RTP and its data messages; the Rust participant receives
//! aiortc's (real Opus and VP8, from libopus and libvpx): packets, whole
//! frames, a keyframe, and messages. Then aiortc leaves and must be told
//! `disconnected {reason: left}`.
//!
//! Without aiortc installed the test prints a "skipped" line and passes,
//! unless `SALON_INTEROP=required` (as `scripts/test` sets it).

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ACCOUNT_SID, API_KEY, API_SECRET, Server, clean_env, repo_root, tail, token_for};
use salon_client::{Client, ClientConfig, ClientStats, TrackKind, TrackSid, TrackSpec};
use serde_json::Value;
use tokio::sync::mpsc;

const ROOM: &str = "interop-aiortc";
/// How long the whole exchange may take before the test gives up.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(90);
/// What each side must receive of each of the other's tracks.
const WANT_PACKETS: u64 = 100;
const WANT_VIDEO_FRAMES: u64 = 30;
const WANT_MESSAGES: u64 = 3;

fn interop_dir() -> PathBuf {
    repo_root().join("tests/interop")
}

fn venv_python() -> PathBuf {
    interop_dir().join(".venv/bin/python")
}

/// Whether aiortc is installed; otherwise skip, or fail when
/// `SALON_INTEROP=required`.
fn installed() -> bool {
    let python = venv_python();
    let missing = if !python.is_file() {
        Some(format!("{} is missing", python.display()))
    } else {
        match Command::new(&python).args(["-c", "import aiortc"]).output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "aiortc does not import: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run {}: {e}", python.display())),
        }
    };
    let Some(missing) = missing else {
        return true;
    };
    let required = std::env::var("SALON_INTEROP").is_ok_and(|v| v == "required");
    assert!(
        !required,
        "aiortc is not installed ({missing}) and SALON_INTEROP=required: run tests/interop/setup"
    );
    // Straight to stderr: the harness captures eprintln! without --nocapture.
    let _ = writeln!(
        std::io::stderr(),
        "aiortc interop: skipped: run tests/interop/setup to install aiortc ({missing})"
    );
    false
}

/// The Python participant: killed if the test ends before it does.
struct Aiortc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Aiortc {
    fn start(server: &Server) -> Aiortc {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stderr = dir.path().join("stderr");
        let script = interop_dir().join("python/webrtc.py");
        let mut command = Command::new(venv_python());
        clean_env(&mut command);
        command
            .arg(&script)
            .env("SALON_URL", &server.url)
            .env("SALON_ACCOUNT_SID", ACCOUNT_SID)
            .env("SALON_API_KEY", API_KEY)
            .env("SALON_API_SECRET", API_SECRET)
            .env("SALON_ROOM", ROOM)
            .env("AIORTC_WANT_PACKETS", WANT_PACKETS.to_string())
            .env("AIORTC_WANT_MESSAGES", WANT_MESSAGES.to_string())
            .env("AIORTC_TIMEOUT", EXCHANGE_TIMEOUT.as_secs().to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("a file for its stderr"));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", venv_python().display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("its stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("aiortc stdout: {line}"),
                }
            }
        });
        Aiortc {
            child,
            stdin,
            lines,
            stderr,
            _dir: dir,
        }
    }

    /// The next line with `"event": event`.
    async fn event(&mut self, event: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line["event"] == event => return Ok(line),
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("aiortc ended before '{event}'")),
                Err(_) => return Err(format!("no '{event}' from aiortc within {timeout:?}")),
            }
        }
    }

    /// Tell it to leave, and wait for it to exit successfully.
    async fn leave(&mut self) -> Result<Value, String> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"leave\n");
        }
        let left = self.event("left", Duration::from_secs(30)).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(left),
                Ok(Some(status)) => return Err(format!("aiortc exited with {status}")),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => return Err("aiortc did not exit after leaving".into()),
            }
        }
    }

    fn stderr(&self) -> String {
        tail(&self.stderr, 8000)
    }
}

impl Drop for Aiortc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the Rust participant has of aiortc's tracks, when it has enough:
/// per kind, (packets, frames, keyframes, packets without our probe).
fn received_from(stats: &ClientStats, tracks: &[(TrackSid, TrackKind)]) -> Option<String> {
    let mut kinds = Vec::new();
    for (sid, kind) in tracks {
        let got = stats.subscribed.get(sid)?;
        let enough = match kind {
            TrackKind::Audio => got.packets >= WANT_PACKETS,
            TrackKind::Video => {
                got.packets >= WANT_PACKETS && got.frames >= WANT_VIDEO_FRAMES && got.keyframes >= 1
            }
            TrackKind::Data => got.packets >= WANT_MESSAGES,
        };
        if !enough {
            return None;
        }
        kinds.push(format!(
            "{kind:?}: {} packets, {} frames, {} keyframes, {} foreign",
            got.packets, got.frames, got.keyframes, got.foreign
        ));
    }
    (tracks.len() == 3).then(|| kinds.join("; "))
}

async fn exchange(server: &Server, aiortc: &mut Aiortc) -> Result<(), String> {
    let url = format!("ws://{}/v1/signaling", server.addr);
    let config = ClientConfig::new(
        url,
        token_for(&salon_token::Grant::new("salon-client").in_room(ROOM)),
        ROOM,
    )
    .publish(TrackSpec::audio("mic"))
    .publish(TrackSpec::video("camera"))
    .publish(TrackSpec::data("chat"));
    let mut rust = Client::connect(config)
        .await
        .map_err(|e| format!("salon-client could not join: {e}"))?;
    aiortc.event("joined", Duration::from_secs(30)).await?;

    // Both ways at once: Rust talks on its data track and watches its
    // statistics while aiortc reports what it received.
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut rust_got = None;
    let mut aiortc_got = None;
    while rust_got.is_none() || aiortc_got.is_none() {
        tokio::select! {
            _ = tick.tick() => {}
            event = rust.next_event() => {
                if event.is_none() {
                    return Err("salon-client's session ended".into());
                }
                continue;
            }
            line = aiortc.event("received", EXCHANGE_TIMEOUT), if aiortc_got.is_none() => {
                aiortc_got = Some(line?);
                continue;
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "not everything arrived within {EXCHANGE_TIMEOUT:?}: salon-client has {:?}; aiortc reported {}",
                rust.stats().subscribed,
                if aiortc_got.is_some() {
                    "enough"
                } else {
                    "nothing yet"
                },
            ));
        }
        let _ = rust
            .send_data("chat", b"hello from salon-client".to_vec())
            .await;
        let theirs: Vec<(TrackSid, TrackKind)> = rust
            .participants()
            .iter()
            .filter(|p| p.identity == "aiortc")
            .flat_map(|p| p.tracks.iter().map(|t| (t.sid, t.kind)))
            .collect();
        if rust_got.is_none() {
            rust_got = received_from(&rust.stats(), &theirs);
        }
    }
    let rust_got = rust_got.unwrap_or_default();
    let aiortc_got = aiortc_got.unwrap_or_default();
    println!("salon-client received from aiortc: {rust_got}");
    println!("aiortc received from salon-client: {aiortc_got}");

    // aiortc's report names the tracks it received by SID: they must be
    // exactly the Rust participant's.
    let mine = |name: &str| rust.published_track(name).map(|t| t.to_string());
    let (mic, camera, chat) = (mine("mic"), mine("camera"), mine("chat"));
    for (name, sid, field) in [
        ("mic", &mic, "packets"),
        ("camera", &camera, "packets"),
        ("chat", &chat, "messages"),
    ] {
        let sid = sid.as_ref().ok_or(format!("{name} was never published"))?;
        let count = aiortc_got[field][sid].as_u64().unwrap_or(0);
        let want = if field == "messages" {
            WANT_MESSAGES
        } else {
            WANT_PACKETS
        };
        if count < want {
            return Err(format!(
                "aiortc received {count} {field} of salon-client's {name} ({sid}), want {want}: {aiortc_got}"
            ));
        }
    }
    let published = &aiortc_got["published"];
    if published.as_object().map_or(0, |p| p.len()) != 3 {
        return Err(format!(
            "aiortc's microphone, camera and chat were not all confirmed: {aiortc_got}"
        ));
    }

    aiortc.leave().await?;
    rust.leave().await;
    Ok(())
}

#[test]
fn aiortc_and_salon_client_exchange_audio_video_and_data() {
    if !installed() {
        return;
    }
    let server = Server::start();
    let mut aiortc = Aiortc::start(&server);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let outcome = runtime.block_on(exchange(&server, &mut aiortc));
    if let Err(problem) = outcome {
        panic!(
            "{problem}\n--- aiortc's stderr (last 8 KB) ---\n{}\n--- salon log (last 8 KB) ---\n{}",
            aiortc.stderr(),
            tail(&server.log, 8000)
        );
    }
    println!("aiortc interop passed in {:.1?}", started.elapsed());
}

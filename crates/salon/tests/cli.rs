//! The `salon` command line, run as a real process.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ACCOUNT_SID, API_KEY, API_SECRET, Server, clean_env, ffmpeg_present, pem, token};
use salon_client::{Client, ClientConfig, TrackSpec};

/// Run `salon ARGS` in `dir` (so no stray salon.toml is read), with a clean
/// environment plus `env`.
fn salon(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    command.current_dir(dir).env("NO_COLOR", "1").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("salon runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn first_use_generates_credentials_and_shows_them_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = salon(dir.path(), &["token", "create", "--identity", "alice"], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let shown = stderr(&first);
    for name in [
        "SALON_ACCOUNT_SID=AC",
        "SALON_AUTH_TOKEN=",
        "SALON_API_KEY=SK",
        "SALON_API_SECRET=",
        "TWILIO_API_SECRET=",
    ] {
        assert!(shown.contains(name), "{name} missing from:\n{shown}");
    }
    let token = stdout(&first).trim().to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "stdout is just the token: {token}"
    );

    let second = salon(dir.path(), &["token", "inspect", &token], &[]);
    assert!(
        second.status.success(),
        "{}{}",
        stdout(&second),
        stderr(&second)
    );
    assert!(
        !stderr(&second).contains("SALON_API_SECRET="),
        "shown again"
    );
    assert!(stdout(&second).contains("verdict: valid"));
    assert!(stdout(&second).contains("identity   alice"));
    assert!(stdout(&second).contains("room       any room"));
}

#[test]
fn a_twilio_env_file_configures_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("TWILIO_API_KEY", API_KEY),
        ("TWILIO_API_SECRET", API_SECRET),
    ];
    let created = salon(
        dir.path(),
        &[
            "token",
            "create",
            "--identity",
            "bob",
            "--room",
            "standup",
            "--ttl",
            "600",
        ],
        &env,
    );
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(
        !stderr(&created).contains("generated"),
        "nothing generated when configured"
    );
    let token = stdout(&created).trim().to_owned();
    let inspected = salon(dir.path(), &["token", "inspect", &token], &env);
    let text = stdout(&inspected);
    assert!(
        text.contains(&format!("signed by  {API_KEY} (HS256)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("account    {ACCOUNT_SID}")),
        "{text}"
    );
    assert!(text.contains("room       standup"), "{text}");
    assert!(
        text.contains("(in 600 s)") || text.contains("(in 599 s)"),
        "{text}"
    );
}

#[test]
fn inspect_explains_rejections_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let token = stdout(&salon(
        dir.path(),
        &["token", "create", "--identity", "carol"],
        &[],
    ))
    .trim()
    .to_owned();
    let cases = [
        (format!("{token}x"), "rejected with 20107"),
        ("not.a.token".to_owned(), "rejected with 20101"),
        ("garbage".to_owned(), "rejected with 20101"),
    ];
    for (bad, verdict) in cases {
        let output = salon(dir.path(), &["token", "inspect", &bad], &[]);
        assert_eq!(output.status.code(), Some(1), "{bad}");
        assert!(
            stdout(&output).contains(verdict),
            "{bad}: {}",
            stdout(&output)
        );
        assert!(stdout(&output).contains("why: "), "explains why");
    }
    // Signed by another installation's key: unknown issuer, 20103.
    let other = tempfile::tempdir().unwrap();
    let foreign = stdout(&salon(
        other.path(),
        &["token", "create", "--identity", "x"],
        &[],
    ))
    .trim()
    .to_owned();
    let output = salon(dir.path(), &["token", "inspect", &foreign], &[]);
    assert!(
        stdout(&output).contains("rejected with 20103"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn keys_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let created = salon(dir.path(), &["keys", "create", "--name", "ci"], &[]);
    assert!(created.status.success());
    let text = stdout(&created);
    let sid = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SALON_API_KEY="))
        .expect("new key printed")
        .to_owned();
    assert!(text.contains("SALON_API_SECRET="));

    let token = stdout(&salon(
        dir.path(),
        &["token", "create", "--identity", "d", "--key", &sid],
        &[],
    ))
    .trim()
    .to_owned();
    assert!(
        salon(dir.path(), &["token", "inspect", &token], &[])
            .status
            .success()
    );

    assert!(
        salon(dir.path(), &["keys", "revoke", &sid], &[])
            .status
            .success()
    );
    let listed = stdout(&salon(dir.path(), &["keys", "list"], &[]));
    let line = listed
        .lines()
        .find(|l| l.starts_with(&sid))
        .expect("key listed");
    assert!(line.contains("revoked"), "{line}");
    assert!(
        listed.lines().filter(|l| l.contains("active")).count() == 1,
        "the default key stays:\n{listed}"
    );

    let inspected = salon(dir.path(), &["token", "inspect", &token], &[]);
    assert!(
        stdout(&inspected).contains("rejected with 20103"),
        "{}",
        stdout(&inspected)
    );
    let again = salon(dir.path(), &["keys", "revoke", &sid], &[]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already revoked"));
    let refused = salon(
        dir.path(),
        &["token", "create", "--identity", "d", "--key", &sid],
        &[],
    );
    assert!(stderr(&refused).contains("revoked"));
    let bad = salon(dir.path(), &["keys", "revoke", "SKnope"], &[]);
    assert!(
        stderr(&bad).contains("not a valid API key SID"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn the_configuration_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("salon.toml"), "data_dir = \"elsewhere\"\n").unwrap();
    let output = salon(dir.path(), &["keys", "list"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        dir.path().join("elsewhere/salon.db").exists(),
        "data_dir from salon.toml"
    );

    std::fs::write(
        dir.path().join("salon.toml"),
        "listen_address = \"0.0.0.0:1\"\n",
    )
    .unwrap();
    let output = salon(dir.path(), &["keys", "list"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("salon.toml"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("listen_address"),
        "names the unknown key: {}",
        stderr(&output)
    );

    // A flag beats the file; the environment beats the file too.
    std::fs::write(dir.path().join("salon.toml"), "data_dir = \"from-file\"\n").unwrap();
    salon(
        dir.path(),
        &["--data-dir", "from-flag", "keys", "list"],
        &[],
    );
    salon(
        dir.path(),
        &["keys", "list"],
        &[("SALON_DATA_DIR", "from-env")],
    );
    assert!(dir.path().join("from-flag/salon.db").exists());
    assert!(dir.path().join("from-env/salon.db").exists());
    assert!(!dir.path().join("from-file").exists());
}

#[test]
fn half_configured_credentials_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let output = salon(dir.path(), &["keys", "list"], &[("SALON_API_KEY", API_KEY)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("SALON_API_SECRET"),
        "{}",
        stderr(&output)
    );
    let output = salon(
        dir.path(),
        &["keys", "list"],
        &[("SALON_ACCOUNT_SID", "ACnope")],
    );
    assert!(
        stderr(&output).contains("not a valid account SID"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn help_describes_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let top = stdout(&salon(dir.path(), &["--help"], &[]));
    for word in [
        "serve",
        "token",
        "keys",
        "rooms",
        "recordings",
        "compositions",
        "--recordings-dir",
        "SALON_RECORDINGS_DIR",
        "--listen",
        "--public-url",
        "--data-dir",
        "SALON_LISTEN",
        "--app-routes",
    ] {
        assert!(top.contains(word), "{word} missing from --help:\n{top}");
    }
    for (args, words) in [
        (
            &["token", "create", "--help"][..],
            &["--identity", "--room", "--ttl"][..],
        ),
        (&["token", "inspect", "--help"], &["Exits 0"]),
        (&["keys", "revoke", "--help"], &["SID"]),
        (
            &["rooms", "create", "--help"],
            &[
                "--name",
                "--type",
                "--max-participants",
                "--record",
                "--empty-room-timeout",
            ],
        ),
        (&["rooms", "list", "--help"], &["--status", "--limit"]),
        (
            &["recordings", "list", "--help"],
            &["--room", "--status", "--limit"],
        ),
        (&["recordings", "download", "--help"], &["--output"]),
        (
            &["compositions", "create", "--help"],
            &["--layout", "--audio", "--format", "--resolution", "--trim"],
        ),
        (&["compositions", "download", "--help"], &["--output"]),
    ] {
        let text = stdout(&salon(dir.path(), args, &[]));
        for word in words {
            assert!(text.contains(word), "{word} missing from {args:?}:\n{text}");
        }
    }
}

#[test]
fn rooms_commands_go_through_the_running_server() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| against(&server, dir.path(), args);
    let created = run(&[
        "rooms",
        "create",
        "--name",
        "town hall",
        "--type",
        "group-small",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("type              group-small"));
    let listed = run(&["rooms", "list"]);
    assert!(stdout(&listed).contains("town hall"), "{}", stdout(&listed));
    let json = run(&["rooms", "get", "town hall", "--json"]);
    let room: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(room["unique_name"], "town hall");
    let completed = run(&["rooms", "complete", "town hall"]);
    assert!(
        stdout(&completed).contains("status            completed"),
        "{}",
        stdout(&completed)
    );
    let missing = run(&["rooms", "get", "town hall"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("20404"), "{}", stderr(&missing));
    let duplicate_type = run(&["rooms", "create", "--max-participants", "9", "--type", "go"]);
    assert!(
        stderr(&duplicate_type).contains("53107"),
        "{}",
        stderr(&duplicate_type)
    );

    drop(server);
    let unreachable = salon(
        dir.path(),
        &["rooms", "list", "--url", "http://127.0.0.1:9"],
        &[],
    );
    assert!(
        stderr(&unreachable).contains("is `salon serve` running"),
        "{}",
        stderr(&unreachable)
    );
}

#[test]
fn turn_check_allocates_through_every_turn_url_of_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_file = dir.path().join("turn.pem");
    let key_file = dir.path().join("turn.key");
    std::fs::write(&cert_file, pem("CERTIFICATE", cert.cert.der())).unwrap();
    std::fs::write(
        &key_file,
        pem("PRIVATE KEY", &cert.signing_key.serialize_der()),
    )
    .unwrap();
    let server = Server::start_with(&[
        "--turn-tls-port",
        "0",
        "--turn-tls-cert",
        cert_file.to_str().unwrap(),
        "--turn-tls-key",
        key_file.to_str().unwrap(),
        "--turn-tls-host",
        "localhost",
    ]);
    let media = server.media_addr().to_string();
    let ca = cert_file.to_str().unwrap();
    let check = |media: &str| {
        against(
            &server,
            dir.path(),
            &["turn", "check", "--ca", ca, "--media", media],
        )
    };
    let checked = check(&media);
    let out = stdout(&checked);
    assert!(checked.status.success(), "{out}\n{}", stderr(&checked));
    for url in [
        "turn:127.0.0.1:",
        "?transport=udp",
        "?transport=tcp",
        "turns:localhost:",
    ] {
        assert!(out.contains(url), "{url} not checked:\n{out}");
    }
    // Each relayed a Binding request to the media port and its answer back.
    assert_eq!(
        out.matches(&format!("reaches the media port {media}"))
            .count(),
        3,
        "{out}"
    );
    // A media address the relay may not reach (or nothing answers at) fails
    // the check, saying so.
    let refused = check("127.0.0.1:9");
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stdout(&refused).matches("FAIL ").count(),
        3,
        "{}",
        stdout(&refused)
    );
    assert!(
        stdout(&refused).contains("relaying to the media port 127.0.0.1:9"),
        "{}",
        stdout(&refused)
    );
    drop(server);

    let without = Server::start_with(&["--turn", "false"]);
    let checked = against(&without, dir.path(), &["turn", "check"]);
    assert_eq!(checked.status.code(), Some(1));
    assert!(
        stdout(&checked).contains("no TURN server"),
        "{}",
        stdout(&checked)
    );
}

#[test]
fn recordings_and_compositions_commands_go_through_the_running_server() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| against(&server, dir.path(), args);
    let listed = run(&["recordings", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).starts_with("SID"), "{}", stdout(&listed));
    let json = run(&["recordings", "list", "--json"]);
    assert_eq!(stdout(&json).trim(), "[]");
    let missing = run(&["recordings", "get", "RT0123456789abcdef0123456789abcdef"]);
    assert!(stderr(&missing).contains("20404"), "{}", stderr(&missing));
    let missing = run(&[
        "recordings",
        "download",
        "RT0123456789abcdef0123456789abcdef",
    ]);
    assert!(!missing.status.success());

    let created = run(&["rooms", "create", "--name", "live", "--json"]);
    let room: serde_json::Value = serde_json::from_str(&stdout(&created)).unwrap();
    let sid = room["sid"].as_str().unwrap();
    let refused = run(&["compositions", "create", sid]);
    assert!(
        stderr(&refused).contains("still in progress"),
        "{}",
        stderr(&refused)
    );
    let listed = run(&["compositions", "list", "--room", sid]);
    assert!(listed.status.success(), "{}", stderr(&listed));
}

/// Run `salon --data-dir DIR ARGS --url URL` against the running `server`,
/// as its operator would (its data directory's credentials).
fn against(server: &Server, dir: &Path, args: &[&str]) -> Output {
    let data_dir = server.data_dir.to_str().unwrap();
    let mut all = vec!["--data-dir", data_dir];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", &server.url]);
    salon(dir, &all, &[("SALON_ACCOUNT_SID", ACCOUNT_SID)])
}

/// What [`against`] prints on stdout, failing the test if it fails.
fn through(server: &Server, dir: &Path, args: &[&str]) -> String {
    let out = against(server, dir, args);
    assert!(out.status.success(), "salon {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// ffprobe's streams of `file`, as (codec_type, codec_name).
fn streams(file: &Path) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_streams"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    info["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (text("codec_type"), text("codec_name"))
        })
        .collect()
}

/// The way a user goes: `rooms create --record`, a participant publishes
/// and leaves, `rooms complete`; `recordings list`, `get` and `download`
/// give its two files. (The Rust client's media is synthetic, Matroska
/// files that do not decode: `compositions create`, `list` and `download`
/// run on browser media in tests/e2e/recordings.test.mjs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_is_listed_and_downloaded_from_the_command_line() {
    if !ffmpeg_present("cli recordings") {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| through(&server, dir.path(), args);
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&run(&all)).expect("--json prints JSON")
    };

    let room = json(&["rooms", "create", "--name", "recorded", "--record"]);
    let room_sid = room["sid"].as_str().unwrap().to_owned();
    let signaling = format!("ws://{}/v1/signaling", server.addr);
    let config = ClientConfig::new(signaling, token("alice"), "recorded")
        .publish(TrackSpec::audio("mic"))
        .publish(TrackSpec::video("cam").bitrate(300_000).fps(15));
    let alice = Client::connect(config).await.expect("alice joins");
    tokio::time::sleep(Duration::from_secs(4)).await;
    alice.leave().await;
    run(&["rooms", "complete", &room_sid]);

    // Both recordings completed, in the table and as JSON.
    let deadline = Instant::now() + Duration::from_secs(30);
    let recordings = loop {
        let list = json(&["recordings", "list", "--room", &room_sid]);
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() == 2 && list.iter().all(|r| r["status"] == "completed") {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "recordings not completed: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let table = run(&["recordings", "list", "--room", &room_sid]);
    for r in &recordings {
        let sid = r["sid"].as_str().unwrap();
        assert!(table.contains(sid), "{sid} not listed:\n{table}");
        let shown = run(&["recordings", "get", sid]);
        assert!(shown.contains("completed"), "{shown}");
        assert!(shown.contains(&room_sid), "{shown}");

        let kind = r["type"].as_str().unwrap();
        let file = dir.path().join(format!(
            "{kind}.{}",
            r["container_format"].as_str().unwrap()
        ));
        let said = run(&["recordings", "download", sid, "-o", file.to_str().unwrap()]);
        let size = std::fs::metadata(&file).expect("downloaded").len();
        assert_eq!(Some(size), r["size"].as_u64(), "{said}");
        let expected = if kind == "audio" { "opus" } else { "vp8" };
        assert_eq!(
            streams(&file),
            [(kind.to_owned(), expected.to_owned())],
            "{}",
            file.display()
        );
    }
}

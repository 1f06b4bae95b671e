//! Several salon nodes on one private redis-server (a free loopback port,
//! no persistence), as separate processes: the node registry.
//!
//! `SALON_REDIS=required` (as `scripts/test` sets) turns a missing
//! redis-server into a failure; otherwise these tests skip with a note
//! when it is missing, and `SALON_REDIS=skip` skips them.

mod common;
#[path = "../../store/tests/common/postgres.rs"]
mod postgres;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{API_KEY, API_SECRET, Server, clean_env, free_port};
use serde_json::Value;

/// A private redis-server, killed when dropped.
struct Redis {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Option<Redis> {
        Self::start_on(free_port())
    }

    fn start_on(addr: SocketAddr) -> Option<Redis> {
        if std::env::var("SALON_REDIS").is_ok_and(|v| v == "skip") {
            eprintln!("skipping (SALON_REDIS=skip)");
            return None;
        }
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            if std::env::var("SALON_REDIS").is_ok_and(|v| v == "required") {
                panic!("SALON_REDIS=required but redis-server is not installed");
            }
            eprintln!(
                "skipping: redis-server is not installed (SALON_REDIS=required makes this a failure)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(redis: &Redis, id: &str) -> Server {
    Server::start_with(&["--redis-url", &redis.url(), "--node-id", id])
}

fn salon(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    command
        .current_dir(dir.path())
        .args(["--data-dir", "data"])
        .args(args)
        .output()
        .expect("run salon")
}

/// The node ids `salon nodes list` prints.
fn listed(redis: &Redis) -> Vec<String> {
    let output = salon(&["--redis-url", &redis.url(), "nodes", "list"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Wait (up to `limit`) until the listed nodes are `expected`.
fn wait_for_nodes(redis: &Redis, expected: &[&str], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let nodes = listed(redis);
        if nodes == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes {nodes:?}, expected {expected:?} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn nodes_register_and_a_dead_node_drops_out_of_the_registry() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "node-a");
    let b = node(&redis, "node-b");
    let c = node(&redis, "node-c");
    assert_eq!(listed(&redis), ["node-a", "node-b", "node-c"]);
    let output = salon(&["--redis-url", &redis.url(), "nodes", "list"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(&b.url), "public URLs are listed: {text}");

    // A second live node with the same id is refused at start.
    let twin = salon(&[
        "--redis-url",
        &redis.url(),
        "--node-id",
        "node-b",
        "--listen",
        &free_port().to_string(),
        "--media-port",
        "0",
        "serve",
    ]);
    let stderr = String::from_utf8_lossy(&twin.stderr);
    assert!(!twin.status.success());
    assert!(
        stderr.contains("node id \"node-b\" is already used by a live node"),
        "{stderr}"
    );

    // SIGKILL: the node's lease runs out (10 s).
    let _ = c.kill();
    wait_for_nodes(&redis, &["node-a", "node-b"], Duration::from_secs(15));
    // SIGTERM: the node removes itself as it stops.
    let _ = Command::new("kill")
        .args(["-TERM", &b.child.id().to_string()])
        .status();
    wait_for_nodes(&redis, &["node-a"], Duration::from_secs(15));
    drop(a);
}

#[test]
fn nodes_register_again_after_redis_restarts() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr;
    let _a = node(&redis, "node-a");
    let _b = node(&redis, "node-b");
    assert_eq!(listed(&redis), ["node-a", "node-b"]);
    // Redis loses everything (no persistence) and comes back on its port.
    drop(redis);
    let redis = Redis::start_on(addr).expect("redis-server again");
    wait_for_nodes(&redis, &["node-a", "node-b"], Duration::from_secs(15));
}

#[test]
fn an_unreachable_redis_is_a_clear_error() {
    let port = free_port().port();
    let url = format!("redis://127.0.0.1:{port}");
    let serve = salon(&[
        "--redis-url",
        &url,
        "--listen",
        &free_port().to_string(),
        "--media-port",
        "0",
        "serve",
    ]);
    let list = salon(&["--redis-url", &url, "nodes", "list"]);
    for output in [serve, list] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains(&format!("cannot reach Redis at {url}")),
            "{stderr}"
        );
    }
    let without = salon(&["nodes", "list"]);
    assert!(String::from_utf8_lossy(&without.stderr).contains("pass --redis-url"));
}

async fn rest(method: reqwest::Method, url: String, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, url)
        .basic_auth(API_KEY, Some(API_SECRET))
        .form(form)
        .send()
        .await
        .expect("REST call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create_room(node: &Server, name: &str) -> String {
    let (status, room) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms", node.url),
        &[("UniqueName", name)],
    )
    .await;
    assert_eq!(status, 201, "{room}");
    room["sid"].as_str().expect("a room SID").to_owned()
}

async fn room_status(node: &Server, sid: &str) -> String {
    let (status, room) = rest(
        reqwest::Method::GET,
        format!("{}/v1/Rooms/{sid}", node.url),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{room}");
    room["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_rooms_fail_and_stay_failed_when_it_returns() {
    let Some(redis) = Redis::start() else { return };
    let Some(database) = postgres::fresh_database().await else {
        return;
    };
    let args = |id: &str| {
        vec![
            "--redis-url".to_owned(),
            redis.url(),
            "--database-url".to_owned(),
            database.clone(),
            "--node-id".to_owned(),
            id.to_owned(),
        ]
    };
    let start = |id: &str| {
        let args = args(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| Server::start_with(&args))
    };
    let a = start("node-a");
    let _b = start("node-b");
    let c = start("node-c");
    let on_a = create_room(&a, "stays").await;
    let on_c = create_room(&c, "dies").await;

    // Each node reports its load with its lease: one room on A and C.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let output = salon(&["--redis-url", &redis.url(), "nodes", "list"]);
        let rooms: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields[0].to_owned(), fields[3].to_owned())
            })
            .collect();
        let expected = [("node-a", "1"), ("node-b", "0"), ("node-c", "1")]
            .map(|(n, r)| (n.to_owned(), r.to_owned()));
        if rooms == expected {
            break;
        }
        assert!(Instant::now() < deadline, "load per node: {rooms:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let c_dir = tokio::task::block_in_place(|| c.kill());
    let killed = Instant::now();
    // Declared dead within 10 s of its death (the lease, a sweep, the grace
    // period); the bound here leaves room for a slow machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    while room_status(&a, &on_c).await != "failed" {
        assert!(Instant::now() < deadline, "node C's room never failed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("node C's room failed {:?} after SIGKILL", killed.elapsed());
    assert_eq!(room_status(&a, &on_a).await, "in-progress");

    // Node C comes back: its failed room stays failed.
    let args = args("node-c");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = tokio::task::block_in_place(|| Server::restart_in(c_dir, &args));
    assert_eq!(room_status(&c, &on_c).await, "failed");
    assert_eq!(room_status(&c, &on_a).await, "in-progress");
}

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

use common::{API_KEY, API_SECRET, Launch, Server, clean_env, free_port, token};
use salon_client::{Client, ClientConfig, ClientEvent, TrackSpec};
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
        "--turn-port",
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
        "--turn-port",
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
    let ids = ["node-a", "node-b", "node-c"];
    let mut nodes: Vec<Server> = ids.iter().map(|id| start(id)).collect();
    // Placement puts the two rooms on two nodes; which ones, the gauges say.
    let dying = create_room(&nodes[0], "dies").await;
    let mut holder = None;
    for (i, node) in nodes.iter().enumerate() {
        if gauge(node, "rooms_in_progress").await == 1 {
            holder = Some(i);
        }
    }
    let holder = holder.expect("a node holds the room");
    let staying = create_room(&nodes[0], "stays").await;
    let mut per_node = Vec::new();
    for node in &nodes {
        per_node.push(gauge(node, "rooms_in_progress").await.to_string());
    }
    assert_eq!(per_node[holder], "1", "{per_node:?}");

    // Each node reports its load with its lease.
    let expected: Vec<(String, String)> = ids
        .iter()
        .map(|id| (*id).to_owned())
        .zip(per_node)
        .collect();
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
        if rooms == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "load per node: {rooms:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let dead = nodes.remove(holder);
    let dead_dir = tokio::task::block_in_place(|| dead.kill());
    let killed = Instant::now();
    // Declared dead within 10 s of its death (the lease, a sweep, the grace
    // period); the bound here leaves room for a slow machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    while room_status(&nodes[0], &dying).await != "failed" {
        assert!(
            Instant::now() < deadline,
            "the dead node's room never failed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "the dead node's room failed {:?} after SIGKILL",
        killed.elapsed()
    );
    assert_eq!(room_status(&nodes[0], &staying).await, "in-progress");

    // The node comes back: its failed room stays failed.
    let args = args(ids[holder]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let back = tokio::task::block_in_place(|| Server::restart_in(dead_dir, &args));
    assert_eq!(room_status(&back, &dying).await, "failed");
    assert_eq!(room_status(&back, &staying).await, "in-progress");
}

// ---- placement, commands, redirects, failure, drain --------------------------

/// Redis, a PostgreSQL database and nodes on them; `None` when either is
/// skipped.
struct Nodes {
    redis: Redis,
    database: String,
    nodes: Vec<Server>,
}

impl Nodes {
    async fn start(ids: &[&str], extra: &[&str]) -> Option<Nodes> {
        let redis = Redis::start()?;
        let database = postgres::fresh_database().await?;
        let mut nodes = Vec::new();
        for id in ids {
            let args = node_args(&redis, &database, id, extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(tokio::task::block_in_place(|| Server::start_with(&args)));
        }
        Some(Nodes {
            redis,
            database,
            nodes,
        })
    }

    /// The node (index) whose gauge `name` is `value`.
    async fn node_with(&self, name: &str, value: u64) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if gauge(node, name).await == value {
                return Some(i);
            }
        }
        None
    }
}

fn node_args(redis: &Redis, database: &str, id: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--redis-url",
        &redis.url(),
        "--database-url",
        database,
        "--node-id",
        id,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// A gauge of `/metrics` (`rooms_in_progress`, `participants_connected`),
/// which a node of a cluster labels with its id.
async fn gauge(node: &Server, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let prefix = format!("salon_{name}{{node=");
    text.lines()
        .find(|line| line.starts_with(&prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix}…}} in /metrics of {}:\n{text}", node.url))
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn signaling(node: &Server) -> String {
    format!("ws://{}/v1/signaling", node.addr)
}

/// A participant with the client's defaults: in a cluster it rejoins by
/// itself when the room's node is lost (`ClientConfig::rejoin`).
async fn participant(node: &Server, identity: &str, room: &str) -> Client {
    let config = ClientConfig::new(signaling(node), token(identity), room)
        .publish(TrackSpec::audio("mic"))
        .publish(TrackSpec::video("camera"));
    Client::connect(config).await.expect("joined")
}

/// Wait until `client` receives media from someone.
async fn media_flows(client: &mut Client) {
    client
        .wait_for(
            |e| matches!(e, ClientEvent::MediaStarted { .. }),
            Duration::from_secs(20),
        )
        .await
        .expect("media from the other participant");
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn rooms_spread_over_the_nodes_and_rest_on_any_node_completes_them() {
    let Some(cluster) = Nodes::start(&["node-a", "node-b", "node-c"], &[]).await else {
        return;
    };
    let a = &cluster.nodes[0];
    let mut rooms = Vec::new();
    for i in 0..6 {
        rooms.push(create_room(a, &format!("spread-{i}")).await);
    }
    // Placement counts rooms in the shared database: every node has some.
    let mut per_node = Vec::new();
    for node in &cluster.nodes {
        per_node.push(gauge(node, "rooms_in_progress").await);
    }
    eprintln!("6 rooms created through node A: {per_node:?} on A, B, C");
    assert_eq!(per_node.iter().sum::<u64>(), 6, "{per_node:?}");
    let listing = salon(&["--redis-url", &cluster.redis.url(), "nodes", "list"]);
    assert!(
        per_node.iter().all(|n| *n >= 1),
        "rooms spread: {per_node:?}\n{}",
        String::from_utf8_lossy(&listing.stdout)
    );

    // The same name again, through another node: 53113, whoever holds it.
    let (status, body) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms", cluster.nodes[2].url),
        &[("UniqueName", "spread-0")],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(53113)),
        "{body}"
    );

    // REST on node A completes every room, wherever it runs.
    for sid in &rooms {
        let (status, room) = rest(
            reqwest::Method::POST,
            format!("{}/v1/Rooms/{sid}", a.url),
            &[("Status", "completed")],
        )
        .await;
        assert_eq!(status, 200, "{room}");
        assert_eq!(room["status"], "completed", "{room}");
    }
    for node in &cluster.nodes {
        assert_eq!(gauge(node, "rooms_in_progress").await, 0, "{}", node.url);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn participants_through_different_nodes_meet_and_a_kick_through_a_third_works() {
    let Some(cluster) = Nodes::start(&["node-a", "node-b", "node-c"], &[]).await else {
        return;
    };
    let [a, b, _] = &cluster.nodes[..] else {
        unreachable!()
    };
    let mut alice = participant(a, "alice", "meet").await;
    let mut bob = participant(b, "bob", "meet").await;
    assert_eq!(alice.room().sid, bob.room().sid, "one room for both");
    media_flows(&mut alice).await;
    media_flows(&mut bob).await;

    let holder = cluster
        .node_with("participants_connected", 2)
        .await
        .expect("one node holds both");
    let other = (holder + 1) % 3;
    eprintln!("room on node {holder}; kicking through node {other}");

    // A bus message that does not parse is dropped; the node goes on.
    let garbage = Command::new("redis-cli")
        .args(["-p", &cluster.redis.addr.port().to_string()])
        .args([
            "PUBLISH",
            &format!("salon:bus:node-{}", ["a", "b", "c"][holder]),
        ])
        .arg("{\"id\": 1, \"not\": \"a command\"}")
        .output()
        .expect("redis-cli");
    assert!(garbage.status.success());

    let room = alice.room().sid;
    let bob_sid = bob.participant().sid;
    let (status, kicked) = rest(
        reqwest::Method::POST,
        format!(
            "{}/v1/Rooms/{room}/Participants/{bob_sid}",
            cluster.nodes[other].url
        ),
        &[("Status", "disconnected")],
    )
    .await;
    assert_eq!(status, 200, "{kicked}");
    assert_eq!(kicked["status"], "disconnected", "{kicked}");
    let gone = bob
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .expect("bob is told");
    assert!(
        matches!(
            gone,
            ClientEvent::Disconnected {
                reason: Some(salon_client::DisconnectReason::Kicked),
                ..
            }
        ),
        "{gone:?}"
    );
    alice
        .wait_for(
            |e| matches!(e, ClientEvent::ParticipantDisconnected { participant } if *participant == bob_sid),
            WAIT,
        )
        .await
        .expect("alice sees bob go");
    let log = common::tail(&cluster.nodes[holder].log, 200_000);
    assert!(
        log.contains("dropping a bus message that does not parse"),
        "the holder logs the bad message"
    );

    // A kick through a node for a room whose node is gone: a clear 503.
    let holder_node = ["node-a", "node-b", "node-c"][holder];
    let mut nodes = cluster.nodes;
    let dead = nodes.remove(holder);
    let _ = tokio::task::block_in_place(|| dead.kill());
    let alice_sid = alice.participant().sid;
    let (status, error) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms/{room}/Participants/{alice_sid}", nodes[0].url),
        &[("Status", "disconnected")],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_u64()),
        (503, Some(20503)),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains(holder_node),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_participants_rejoin_on_a_live_node() {
    let Some(mut cluster) = Nodes::start(&["node-a", "node-b", "node-c"], &[]).await else {
        return;
    };
    let old_room = create_room(&cluster.nodes[0], "survive").await;
    let holder = cluster
        .node_with("rooms_in_progress", 1)
        .await
        .expect("a node holds the room");
    // The participants come in through another node (as through a load
    // balancer) and are redirected to the room's.
    let entry = (holder + 1) % 3;
    let mut alice = participant(&cluster.nodes[entry], "alice", "survive").await;
    let mut bob = participant(&cluster.nodes[entry], "bob", "survive").await;
    assert_eq!(alice.room().sid.to_string(), old_room);
    media_flows(&mut alice).await;
    media_flows(&mut bob).await;

    let dead = cluster.nodes.remove(holder);
    let entry = &cluster.nodes[if entry > holder { entry - 1 } else { entry }];
    let _ = tokio::task::block_in_place(|| dead.kill());
    let killed = Instant::now();
    wait_until(
        "the dead node's room failed",
        Duration::from_secs(30),
        || async { room_status(entry, &old_room).await == "failed" },
    )
    .await;
    let failed = killed.elapsed();

    let mut rooms = Vec::new();
    for client in [&mut alice, &mut bob] {
        let rejoined = client
            .wait_for(
                |e| matches!(e, ClientEvent::Rejoined { .. }),
                Duration::from_secs(30),
            )
            .await
            .expect("rejoined");
        let ClientEvent::Rejoined { room, .. } = rejoined else {
            unreachable!()
        };
        assert_eq!(room.name, "survive");
        assert_ne!(room.sid.to_string(), old_room);
        assert_eq!(client.room().sid, room.sid, "the handle names the new room");
        rooms.push(room.sid);
    }
    assert_eq!(rooms[0], rooms[1], "both in the same new room");
    media_flows(&mut alice).await;
    media_flows(&mut bob).await;
    eprintln!(
        "room failed {failed:?} after SIGKILL; both back in a call {:?} after SIGKILL",
        killed.elapsed()
    );
    let (status, listed) = rest(
        reqwest::Method::GET,
        format!(
            "{}/v1/Rooms?Status=in-progress&UniqueName=survive",
            entry.url
        ),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["rooms"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_a_node_then_it_exits() {
    let Some(mut cluster) = Nodes::start(&["node-a", "node-b"], &["--drain-timeout", "4"]).await
    else {
        return;
    };
    create_room(&cluster.nodes[0], "drain").await;
    let holder = cluster
        .node_with("rooms_in_progress", 1)
        .await
        .expect("a node holds the room");
    let other = 1 - holder;
    let mut alice = participant(&cluster.nodes[other], "alice", "drain").await;
    alice
        .wait_for(|e| matches!(e, ClientEvent::MediaConnected), WAIT)
        .await
        .expect("media connected");
    let first_room = alice.room().sid;

    let _ = Command::new("kill")
        .args(["-TERM", &cluster.nodes[holder].child.id().to_string()])
        .status();
    // While it drains it serves, but places new rooms on the other node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    create_room(&cluster.nodes[holder], "elsewhere").await;
    assert_eq!(gauge(&cluster.nodes[other], "rooms_in_progress").await, 1);
    assert_eq!(gauge(&cluster.nodes[holder], "rooms_in_progress").await, 1);

    // At the drain timeout its rooms end; the participant rejoins on the
    // other node, and the drained node exits.
    let rejoined = alice
        .wait_for(
            |e| matches!(e, ClientEvent::Rejoined { .. }),
            Duration::from_secs(30),
        )
        .await
        .expect("rejoined");
    let ClientEvent::Rejoined { room, .. } = rejoined else {
        unreachable!()
    };
    assert_ne!(room.sid, first_room);
    assert_eq!(alice.room().sid, room.sid, "the handle names the new room");
    let mut drained = cluster.nodes.remove(holder);
    let status =
        tokio::task::block_in_place(|| common::wait(&mut drained.child, Duration::from_secs(30)));
    assert!(status.is_some_and(|s| s.success()), "exited: {status:?}");
    let log = std::fs::read_to_string(&drained.log).unwrap_or_default();
    assert!(log.contains("draining: no new rooms here"), "{log}");
    assert_eq!(gauge(&cluster.nodes[0], "rooms_in_progress").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rooms_go_on_while_redis_is_away_and_nothing_is_lost_when_it_returns() {
    let Some(mut cluster) = Nodes::start(&["node-a", "node-b"], &[]).await else {
        return;
    };
    let a = &cluster.nodes[0];
    let mut alice = participant(a, "alice", "steady").await;
    let mut bob = participant(&cluster.nodes[1], "bob", "steady").await;
    media_flows(&mut alice).await;
    media_flows(&mut bob).await;
    let addr = cluster.redis.addr;

    // Redis goes away: new rooms are refused with a clear error…
    drop(std::mem::replace(
        &mut cluster.redis,
        Redis {
            child: Command::new("true").spawn().unwrap(),
            addr,
            _dir: tempfile::tempdir().unwrap(),
        },
    ));
    let (status, error) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms", a.url),
        &[("UniqueName", "refused")],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_u64()),
        (503, Some(20503)),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Redis"),
        "{error}"
    );
    // …and the call goes on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = alice.stats();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received =
        |s: &salon_client::ClientStats| -> u64 { s.subscribed.values().map(|t| t.packets).sum() };
    assert!(received(&alice.stats()) > received(&before), "media flows");

    // Redis comes back empty: the nodes register again, the room is still
    // the one room in progress, and new rooms are placed again.
    cluster.redis = Redis::start_on(addr).expect("redis-server again");
    wait_for_nodes(
        &cluster.redis,
        &["node-a", "node-b"],
        Duration::from_secs(15),
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // past the sweeper's grace
    create_room(a, "after").await;
    let (_, listed) = rest(
        reqwest::Method::GET,
        format!("{}/v1/Rooms?Status=in-progress", a.url),
        &[],
    )
    .await;
    let mut names: Vec<&str> = listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["unique_name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["after", "steady"], "{listed}");
    assert_eq!(
        room_status(a, alice.room().sid.as_ref()).await,
        "in-progress"
    );
    let _ = cluster.database;
}

/// The TCMP `hello` carrying RSP `connect`, as twilio-video.js opens
/// `/signaling` for `identity` in room `name` (hello id number `n`).
fn twilio_connect_hello(identity: &str, name: &str, n: u8) -> Value {
    serde_json::json!({
        "type": "hello", "id": format!("3f0d2c4e-0000-4000-8000-{n:012}"),
        "version": 2, "timeout": 5000, "body": {
            "type": "connect", "version": 2, "token": token(identity), "name": name,
            "participant": {"revision": 1, "tracks": []},
            "media_signaling": {},
            "subscribe": {"rules": [{"type": "include", "all": true}], "revision": 1},
            "format": "unified",
            "publisher": {"name": "twilio-video.js", "sdk_version": "2.36.0", "user_agent": "test"}
        }
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next RSP body on `socket` (a TCMP `msg`) that `wanted` takes,
/// within `limit`; a TCMP `bad` fails the test.
async fn next_rsp(socket: &mut Socket, limit: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("an RSP message in time")
            .expect("the socket stays open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_ne!(value["type"], "bad", "{value}");
        if value["type"] == "msg" && wanted(&value["body"]) {
            return value["body"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_sdks_signaling_is_proxied_to_the_rooms_node() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Some(mut cluster) = Nodes::start(&["node-a", "node-b"], &[]).await else {
        return;
    };
    let mut alice = participant(&cluster.nodes[0], "alice", "proxied").await;
    let holder = cluster
        .node_with("participants_connected", 1)
        .await
        .expect("a node holds the room");
    let other = &cluster.nodes[1 - holder];

    // Twilio's protocol (TCMP + RSP), as twilio-video.js speaks it, to the
    // node that does not hold the room.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/signaling", other.addr))
            .await
            .expect("open /signaling");
    let hello = twilio_connect_hello("bob", "proxied", 1);
    socket
        .send(Message::text(hello.to_string()))
        .await
        .expect("send hello");
    let mut frames = Vec::new();
    while frames.len() < 2 {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket stays open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] != "heartbeat" {
                frames.push(value);
            }
        }
    }
    assert_eq!(frames[0]["type"], "welcome", "one welcome: {frames:?}");
    let connected = &frames[1]["body"];
    assert_eq!(connected["type"], "connected", "{frames:?}");
    assert_eq!(
        connected["sid"],
        alice.room().sid.to_string(),
        "{connected}"
    );
    assert_eq!(
        connected["participants"][0]["identity"], "alice",
        "{connected}"
    );
    alice
        .wait_for(
            |e| matches!(e, ClientEvent::ParticipantConnected { participant } if participant.identity == "bob"),
            WAIT,
        )
        .await
        .expect("alice sees bob, who came through the other node");
    let log = std::fs::read_to_string(&other.log).unwrap_or_default();
    assert!(
        log.contains("twilio signaling proxied to the room's node"),
        "{log}"
    );

    // The socket drops; the SDK's new one reaches the node that does not
    // hold the session (behind one address, any node may take it): its
    // `sync` is proxied to the session's node, which resumes it.
    let session = connected["session"].as_str().expect("a session").to_owned();
    assert!(
        session.starts_with(&format!("{}~", ["node-a", "node-b"][holder])),
        "{session}"
    );
    drop(socket);
    let (mut again, _) = tokio_tungstenite::connect_async(format!("ws://{}/signaling", other.addr))
        .await
        .expect("open /signaling again");
    let sync = serde_json::json!({
        "type": "sync", "version": 2, "session": session, "token": token("bob"), "name": "proxied",
        "participant": {"revision": 1, "tracks": []},
        "peer_connections": []
    });
    let hello = serde_json::json!({
        "type": "hello", "id": "3f0d2c4e-0000-4000-8000-000000000002",
        "version": 2, "timeout": 5000, "body": sync
    });
    again
        .send(Message::text(hello.to_string()))
        .await
        .expect("send hello");
    let synced = next_rsp(&mut again, WAIT, |body| body["type"] != "update").await;
    assert_eq!(synced["type"], "synced", "{synced}");
    assert_eq!(synced["session"], session.as_str(), "{synced}");
    assert_eq!(synced["participants"][0]["identity"], "alice", "{synced}");

    // The session's node dies. The SDK's `sync` reaches the live node,
    // which holds it until the room is failed and then carries the
    // session into a new room of the same name: `synced` shows that room
    // and asks the client for a new peer connection (`create-offer`), under
    // revisions above any the lost node sent; the session keeps its id.
    // A stranger to the lost room is refused (once it is failed).
    drop(again);
    let old_room = alice.room().sid.to_string();
    let live_addr = other.addr;
    let live_log = other.log.clone();
    let dead = cluster.nodes.remove(holder);
    let _ = tokio::task::block_in_place(|| dead.kill());
    let sync_hello = |identity: &str, n: u8| {
        let sync = serde_json::json!({
            "type": "sync", "version": 2, "session": session, "token": token(identity), "name": "proxied",
            "participant": {"revision": 2, "tracks": []},
            "peer_connections": [{"id": "pc-of-the-dead-node", "description": {"type": "answer", "revision": 1, "sdp": "v=0\r\n"}}]
        });
        serde_json::json!({
            "type": "hello", "id": format!("3f0d2c4e-0000-4000-8000-{n:012}"),
            "version": 2, "timeout": 5000, "body": sync
        })
    };
    let answer = |hello: Value| async move {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{live_addr}/signaling"))
                .await
                .expect("open /signaling on the live node");
        socket
            .send(Message::text(hello.to_string()))
            .await
            .expect("send hello");
        // Held (with heartbeats) while the dead node's room is not failed:
        // answered within the resume grace.
        next_rsp(&mut socket, Duration::from_secs(40), |_| true).await
    };
    let stranger = answer(sync_hello("mallory", 3)).await;
    assert_eq!(stranger["type"], "error", "{stranger}");
    assert_eq!(stranger["code"], 53204, "{stranger}");
    let adopted = answer(sync_hello("bob", 4)).await;
    assert_eq!(adopted["type"], "synced", "{adopted}");
    assert_eq!(adopted["session"], session.as_str(), "{adopted}");
    assert_eq!(adopted["name"], "proxied", "{adopted}");
    assert_ne!(adopted["sid"], old_room.as_str(), "a new room: {adopted}");
    let pcs = adopted["peer_connections"]
        .as_array()
        .expect("peer connections");
    assert_eq!(pcs.len(), 1, "{adopted}");
    assert_ne!(pcs[0]["id"], "pc-of-the-dead-node", "{adopted}");
    assert_eq!(pcs[0]["description"]["type"], "create-offer", "{adopted}");
    let revision = pcs[0]["description"]["revision"]
        .as_u64()
        .expect("a revision");
    assert!(revision > 1_000_000, "{adopted}");
    assert_eq!(
        room_status(&cluster.nodes[0], &old_room).await,
        "failed",
        "adopted once the old room was failed"
    );
    let log = std::fs::read_to_string(&live_log).unwrap_or_default();
    assert!(log.contains("session of a lost node adopted"), "{log}");
}

/// Terminate TLS for one node as a load balancer would: accept on
/// `listener` with `cert`, and copy each connection to `node` in the clear.
async fn terminate_tls(
    listener: tokio::net::TcpListener,
    node: SocketAddr,
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
) {
    use tokio_rustls::rustls;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("a TLS configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(stream).await,
                    tokio::net::TcpStream::connect(node).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

/// Nodes whose public URLs are https (TLS at a terminator in front of
/// each, as behind a load balancer): the official SDK's signaling that
/// reaches the node without the room is proxied over wss://, trusting the
/// system's roots (here a private CA, given as `SSL_CERT_FILE`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_signaling_is_proxied_over_tls_to_a_node_with_an_https_url() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let Some(redis) = Redis::start() else {
        return;
    };
    let Some(database) = postgres::fresh_database().await else {
        return;
    };
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, common::pem("CERTIFICATE", cert.cert.der())).unwrap();
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let launch = Launch {
            args: node_args(&redis, &database, id, &[]),
            public_url: Some(format!("https://localhost:{port}")),
            env: vec![("SSL_CERT_FILE".into(), roots.display().to_string())],
            ..Launch::default()
        };
        let node = tokio::task::block_in_place(|| Server::launch(&launch));
        terminate_tls(listener, node.addr, &cert).await;
        nodes.push(node);
    }
    let cluster = Nodes {
        redis,
        database,
        nodes,
    };
    let mut alice = participant(&cluster.nodes[0], "alice", "over-tls").await;
    let holder = cluster
        .node_with("participants_connected", 1)
        .await
        .expect("a node holds the room");
    let other = &cluster.nodes[1 - holder];

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/signaling", other.addr))
            .await
            .expect("open /signaling");
    let hello = twilio_connect_hello("bob", "over-tls", 3);
    socket
        .send(Message::text(hello.to_string()))
        .await
        .expect("send hello");
    let connected = next_rsp(&mut socket, WAIT, |_| true).await;
    assert_eq!(connected["type"], "connected", "{connected}");
    assert_eq!(
        connected["sid"],
        alice.room().sid.to_string(),
        "{connected}"
    );
    alice
        .wait_for(
            |e| matches!(e, ClientEvent::ParticipantConnected { participant } if participant.identity == "bob"),
            WAIT,
        )
        .await
        .expect("alice sees bob, proxied over TLS");
    let log = std::fs::read_to_string(&other.log).unwrap_or_default();
    assert!(log.contains("wss://localhost:"), "{log}");
}

// ---- benchmarks (run by hand: `cargo test --test cluster -- --ignored --nocapture bench_`) ----

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Join time (socket opened to `joined`, the redirect included) through
/// the room's node and through a node that redirects to it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: figures in docs/performance.md"]
async fn bench_join_through_the_rooms_node_and_through_another() {
    let Some(cluster) = Nodes::start(&["node-a", "node-b", "node-c"], &[]).await else {
        return;
    };
    let _host = participant(&cluster.nodes[0], "host", "bench").await;
    let holder = cluster
        .node_with("participants_connected", 1)
        .await
        .expect("a node holds the room");
    let other = (holder + 1) % 3;
    const JOINS: usize = 50;
    for (label, node) in [
        ("the room's node", holder),
        ("another node (redirect)", other),
    ] {
        let mut times = Vec::new();
        for i in 0..JOINS {
            let config = ClientConfig::new(
                signaling(&cluster.nodes[node]),
                token(&format!("guest-{i}")),
                "bench",
            );
            let started = Instant::now();
            let guest = Client::connect(config).await.expect("joined");
            times.push(started.elapsed());
            guest.leave().await;
        }
        times.sort();
        eprintln!(
            "join through {label}: median {:?}, p90 {:?}, max {:?} ({JOINS} joins)",
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times[times.len() - 1]
        );
    }
}

/// A ramp of 100 rooms created one after another, all through node A:
/// where placement puts them, and how long a create takes on A itself and
/// on another node (over the bus).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: figures in docs/performance.md"]
async fn bench_placement_of_a_ramp_of_100_rooms() {
    let Some(cluster) = Nodes::start(&["node-a", "node-b", "node-c"], &[]).await else {
        return;
    };
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for i in 0..100 {
        let entry = 0;
        let before: Vec<u64> = {
            let mut v = Vec::new();
            for node in &cluster.nodes {
                v.push(gauge(node, "rooms_in_progress").await);
            }
            v
        };
        let started = Instant::now();
        create_room(&cluster.nodes[entry], &format!("ramp-{i}")).await;
        let took = started.elapsed();
        let after = gauge(&cluster.nodes[entry], "rooms_in_progress").await;
        if after > before[entry] {
            local.push(took);
        } else {
            remote.push(took);
        }
    }
    let mut per_node = Vec::new();
    for node in &cluster.nodes {
        per_node.push(gauge(node, "rooms_in_progress").await);
    }
    local.sort();
    remote.sort();
    eprintln!("100 rooms over A, B, C: {per_node:?}");
    for (label, times) in [
        ("on the node asked", &local),
        ("placed on another node (bus)", &remote),
    ] {
        if !times.is_empty() {
            eprintln!(
                "create {label}: {} rooms, median {:?}, p90 {:?}",
                times.len(),
                percentile(times, 0.5),
                percentile(times, 0.9)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_that_reaches_another_node_is_redirected_to_the_sessions_node_and_a_dead_ones_is_node_lost()
 {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Some(mut cluster) = Nodes::start(&["node-a", "node-b"], &[]).await else {
        return;
    };
    async fn next_message(
        socket: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, socket.next())
                .await
                .expect("a message in time")
                .expect("the socket stays open")
                .expect("a frame");
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).expect("JSON");
            }
        }
    }
    // Salon's protocol by hand: join (wherever placement puts the room).
    let mut url = signaling(&cluster.nodes[0]);
    let joined = loop {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("open");
        let join = serde_json::json!({"type": "join", "version": 1, "token": token("alice"), "room": "resumed"});
        socket.send(Message::text(join.to_string())).await.unwrap();
        let answer = next_message(&mut socket).await;
        match answer["type"].as_str() {
            Some("redirect") => url = answer["url"].as_str().unwrap().to_owned(),
            Some("joined") => break (socket, answer),
            _ => panic!("{answer}"),
        }
    };
    let (socket, joined) = joined;
    let session = joined["session"].as_str().unwrap().to_owned();
    let holder = cluster
        .node_with("participants_connected", 1)
        .await
        .expect("a node holds the room");
    let holder_id = ["node-a", "node-b"][holder];
    assert!(session.starts_with(&format!("{holder_id}~")), "{session}");
    // The socket drops; the new one reaches the other node.
    drop(socket);
    let (mut other, _) = tokio_tungstenite::connect_async(signaling(&cluster.nodes[1 - holder]))
        .await
        .expect("open");
    let resume = serde_json::json!({"type": "resume", "version": 1, "token": token("alice"), "session": session});
    other.send(Message::text(resume.to_string())).await.unwrap();
    let redirect = next_message(&mut other).await;
    assert_eq!(redirect["type"], "redirect", "{redirect}");
    assert_eq!(redirect["node"], holder_id, "{redirect}");
    let (mut there, _) = tokio_tungstenite::connect_async(redirect["url"].as_str().unwrap())
        .await
        .expect("open the session's node");
    there.send(Message::text(resume.to_string())).await.unwrap();
    let resumed = next_message(&mut there).await;
    assert_eq!(resumed["type"], "joined", "{resumed}");
    assert_eq!(resumed["resumed"], true, "{resumed}");
    assert_eq!(resumed["session"], session.as_str());

    // The session's node dies. Once its lease has run out, a resume through
    // the live node is answered `node-lost`: the room is gone with its node,
    // and the client may join a room of the same name again.
    drop(there);
    let dead = cluster.nodes.remove(holder);
    let _ = tokio::task::block_in_place(|| dead.kill());
    let live = &cluster.nodes[0];
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        assert!(
            Instant::now() < deadline,
            "still redirected to the dead node"
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(signaling(live))
            .await
            .expect("open");
        socket
            .send(Message::text(resume.to_string()))
            .await
            .unwrap();
        let answer = next_message(&mut socket).await;
        if answer["type"] != "redirect" {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(answer["type"], "disconnected", "{answer}");
    assert_eq!(answer["reason"], "node-lost", "{answer}");
    assert_eq!(answer["code"], 53001, "{answer}");

    // A session that ended on a live node (here: unknown to the node its id
    // names) is the plain refusal, after which a client must not come back.
    let live_id = ["node-a", "node-b"][1 - holder];
    let (mut socket, _) = tokio_tungstenite::connect_async(signaling(live))
        .await
        .expect("open");
    let stale = serde_json::json!({"type": "resume", "version": 1, "token": token("alice"), "session": format!("{live_id}~0123")});
    socket.send(Message::text(stale.to_string())).await.unwrap();
    let refused = next_message(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], 53204, "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rooms_go_on_while_postgres_is_away_and_what_happened_is_recorded_when_it_returns() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let Some(postgres) = postgres::private_cluster() else {
        return;
    };
    let database = postgres.fresh_database().await;
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b"] {
        let args = node_args(&redis, &database, id, &[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.push(tokio::task::block_in_place(|| Server::start_with(&args)));
    }
    let alice = participant(&nodes[0], "alice", "steady").await;
    let room = alice.room().sid.to_string();
    let holder = &nodes[if gauge(&nodes[0], "rooms_in_progress").await == 1 {
        0
    } else {
        1
    }];
    let mut alice = alice;
    let joined = Instant::now();
    let bob = participant(holder, "bob", "steady").await;
    media_flows(&mut alice).await;

    // The database goes away. Each node notices (its heartbeat fails)…
    tokio::task::block_in_place(|| postgres.stop());
    for node in &nodes {
        wait_until("the node notices", WAIT, || async {
            gauge(node, "store_up").await == 0
        })
        .await;
    }
    // …and refuses new rooms with a clear error, over REST and signaling.
    let (status, error) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms", nodes[0].url),
        &[("UniqueName", "refused")],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_u64()),
        (503, Some(20503)),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("database is unavailable"),
        "{error}"
    );
    let config = ClientConfig::new(signaling(holder), token("dave"), "fresh");
    let Err(refused) = Client::connect(config).await else {
        panic!("a new room was created while the database is away");
    };
    assert_eq!(refused.code, 53006, "{refused:?}");
    assert!(refused.message.contains("database"), "{refused:?}");

    // The room in progress goes on: bob leaves, carol joins and hears
    // alice, and alice's media keeps flowing.
    bob.leave().await;
    let left = Instant::now();
    let mut carol = participant(holder, "carol", "steady").await;
    media_flows(&mut carol).await;
    let received =
        |s: &salon_client::ClientStats| -> u64 { s.subscribed.values().map(|t| t.packets).sum() };
    let before = received(&alice.stats());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(received(&alice.stats()) > before, "media flows");
    assert!(
        holder_backlog(holder).await > 0,
        "the leave and join are kept"
    );

    // Five seconds later the database returns: the node writes what it
    // kept, in order and with the times things happened, then takes new
    // rooms again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::block_in_place(|| postgres.start_again());
    wait_until("the backlog is written", WAIT, || async {
        gauge(holder, "store_up").await == 1 && holder_backlog(holder).await == 0
    })
    .await;
    let (status, listed) = rest(
        reqwest::Method::GET,
        format!(
            "{}/v1/Rooms/{room}/Participants?Status=connected",
            nodes[0].url
        ),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let mut connected: Vec<&str> = listed["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["identity"].as_str())
        .collect();
    connected.sort();
    assert_eq!(connected, ["alice", "carol"], "{listed}");
    let (_, gone) = rest(
        reqwest::Method::GET,
        format!("{}/v1/Rooms/{room}/Participants?Identity=bob", nodes[0].url),
        &[],
    )
    .await;
    let bob = &gone["participants"][0];
    assert_eq!(bob["status"], "disconnected", "{gone}");
    // Bob's stay ends when he left, not when it was written (at least
    // five seconds later).
    let stayed = bob["duration"].as_u64().expect("a duration");
    let at_most = (left - joined).as_secs() + 2;
    assert!(
        stayed <= at_most,
        "bob stayed {stayed} s by the record; he left at most {at_most} s after joining"
    );
    wait_until("new rooms are taken again", WAIT, || async {
        let (status, _) = rest(
            reqwest::Method::POST,
            format!("{}/v1/Rooms", nodes[0].url),
            &[("UniqueName", "after")],
        )
        .await;
        status == 201
    })
    .await;
    drop(redis);
}

/// Room events a node keeps for its database.
async fn holder_backlog(node: &Server) -> u64 {
    gauge(node, "store_backlog_events").await
}

/// A REST call that does not follow redirects: (status, Location, body).
async fn rest_no_redirect(url: String) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let response = client
        .get(url)
        .basic_auth(API_KEY, Some(API_SECRET))
        .send()
        .await
        .expect("REST call");
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread")]
async fn recordings_and_compositions_are_served_and_made_by_the_node_whose_disk_holds_them() {
    let Some(cluster) = Nodes::start(&["node-a", "node-b"], &[]).await else {
        return;
    };
    let (status, room) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms", cluster.nodes[0].url),
        &[
            ("UniqueName", "recorded"),
            ("RecordParticipantsOnConnect", "true"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{room}");
    let sid = room["sid"].as_str().expect("a room SID").to_owned();
    let holder = cluster
        .node_with("rooms_in_progress", 1)
        .await
        .expect("one node holds the room");
    let (holder_id, other) = (["node-a", "node-b"][holder], &cluster.nodes[1 - holder]);
    let holder = &cluster.nodes[holder];
    let mut alice = participant(holder, "alice", "recorded").await;
    let _bob = participant(holder, "bob", "recorded").await;
    media_flows(&mut alice).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms/{sid}", other.url),
        &[("Status", "completed")],
    )
    .await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + WAIT;
    let recordings = loop {
        let (_, listed) = rest(
            reqwest::Method::GET,
            format!("{}/v1/Rooms/{sid}/Recordings?Status=completed", other.url),
            &[],
        )
        .await;
        let recordings = listed["recordings"].as_array().cloned().unwrap_or_default();
        if recordings.len() == 4 {
            break recordings;
        }
        assert!(
            Instant::now() < deadline,
            "four completed recordings: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The recording's media, asked of the other node, is a link to the
    // holder's copy, which downloads.
    let recording = recordings[0]["sid"].as_str().expect("a recording SID");
    let (status, location) =
        rest_no_redirect(format!("{}/v1/Recordings/{recording}/Media", other.url)).await;
    assert_eq!(status, 302);
    assert!(
        location.starts_with(&format!("{}/media/recordings/", holder.url)),
        "{location} is not on the holder {}",
        holder.url
    );
    let file = reqwest::get(&location).await.expect("the download");
    assert_eq!(file.status().as_u16(), 200);
    let bytes = file.bytes().await.expect("the file");
    assert_eq!(&bytes[..4], &[0x1a, 0x45, 0xdf, 0xa3], "a Matroska file");

    // A composition asked of the other node is made by the holder, where
    // the recordings are.
    let (status, composition) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Compositions", other.url),
        &[("RoomSid", sid.as_str()), ("AudioSources", "*")],
    )
    .await;
    assert_eq!(status, 201, "{composition}");
    let composition = composition["sid"].as_str().expect("a composition SID");
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&cluster.database)
        .await
        .expect("the database");
    let (node,): (String,) = sqlx::query_as("SELECT node FROM compositions WHERE sid = $1")
        .bind(composition)
        .fetch_one(&mut db)
        .await
        .expect("the composition's node");
    assert_eq!(node, holder_id);

    // Deleted through the other node, the file goes from the holder's disk.
    let recordings_dir = holder.data_dir.join("recordings").join(&sid);
    let on_disk = || {
        std::fs::read_dir(&recordings_dir)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(on_disk(), 4);
    let (status, _) = rest(
        reqwest::Method::DELETE,
        format!("{}/v1/Recordings/{recording}", other.url),
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(on_disk(), 3, "the holder removed the file");
    let _ = db.close().await;

    // Deleted while the holder is away, a file stays on its disk until it
    // starts again.
    let mut cluster = cluster;
    let index = ["node-a", "node-b"]
        .iter()
        .position(|id| *id == holder_id)
        .expect("the holder's index");
    let dead = cluster.nodes.remove(index);
    let dead_dir = tokio::task::block_in_place(|| dead.kill());
    let other = &cluster.nodes[0];
    let deadline = Instant::now() + WAIT;
    while listed(&cluster.redis).contains(&holder_id.to_owned()) {
        assert!(
            Instant::now() < deadline,
            "the holder's lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let second = recordings[1]["sid"].as_str().expect("a recording SID");
    let (status, _) = rest(
        reqwest::Method::DELETE,
        format!("{}/v1/Recordings/{second}", other.url),
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(on_disk(), 3, "the file stays while its node is away");
    let args = node_args(&cluster.redis, &cluster.database, holder_id, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _back = tokio::task::block_in_place(|| Server::restart_in(dead_dir, &args));
    let deadline = Instant::now() + WAIT;
    while on_disk() != 2 {
        assert!(
            Instant::now() < deadline,
            "the file of the recording deleted while its node was away is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

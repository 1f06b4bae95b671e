//! Salon nodes sharing one PostgreSQL database (a private cluster on a free
//! loopback port; see crates/store/tests/common/postgres.rs).

mod common;
#[path = "../../store/tests/common/postgres.rs"]
mod postgres;

use std::process::Command;

use common::{API_KEY, API_SECRET, Server, clean_env, credentials, token};
use salon_client::{Client, ClientConfig};
use serde_json::Value;

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

#[tokio::test(flavor = "multi_thread")]
async fn nodes_share_rooms_and_a_restarting_node_ends_only_its_own() {
    let Some(database) = postgres::fresh_database().await else {
        return;
    };
    let node = |name: &str| Server::start_with(&["--database-url", &database, "--node-id", name]);
    let a = tokio::task::block_in_place(|| node("node-a"));
    let (status, room) = rest(
        reqwest::Method::POST,
        format!("{}/v1/Rooms", a.url),
        &[("UniqueName", "shared")],
    )
    .await;
    assert_eq!(status, 201, "{room}");
    let sid = room["sid"].as_str().expect("a room SID").to_owned();

    // Node B reads the room node A created from the shared database, and
    // neither its start nor its restart after a crash ends it.
    let b = tokio::task::block_in_place(|| node("node-b"));
    let b_dir = tokio::task::block_in_place(|| b.kill());
    let b = tokio::task::block_in_place(|| {
        Server::restart_in(b_dir, &["--database-url", &database, "--node-id", "node-b"])
    });
    let (status, seen) = rest(
        reqwest::Method::GET,
        format!("{}/v1/Rooms/{sid}", b.url),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["unique_name"], "shared");
    assert_eq!(seen["status"], "in-progress", "{seen}");
    drop((a, b));
}

async fn create_named(url: String, name: String) -> (u16, Value) {
    rest(
        reqwest::Method::POST,
        format!("{url}/v1/Rooms"),
        &[("UniqueName", name.as_str())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_asked_for_the_same_unique_name_at_once_make_one_room() {
    let Some(database) = postgres::fresh_database().await else {
        return;
    };
    let node = |name: &str| {
        tokio::task::block_in_place(|| {
            Server::start_with(&["--database-url", &database, "--node-id", name])
        })
    };
    let (a, b) = (node("node-a"), node("node-b"));
    for round in 0..5 {
        let name = format!("contested-{round}");
        let create = |server: &Server| create_named(server.url.clone(), name.clone());
        let (on_a, on_b) = tokio::join!(create(&a), create(&b));
        let mut statuses = [on_a.0, on_b.0];
        statuses.sort();
        assert_eq!(statuses, [201, 400], "{on_a:?} {on_b:?}");
        let refused = if on_a.0 == 400 { &on_a.1 } else { &on_b.1 };
        assert_eq!(refused["code"], 53113, "{refused}");
        // Asking again on either node is refused the same way.
        for server in [&a, &b] {
            let (status, body) = create(server).await;
            assert_eq!((status, body["code"].clone()), (400, 53113.into()));
        }
        let (_, listed) = rest(
            reqwest::Method::GET,
            format!("{}/v1/Rooms?UniqueName={name}&Status=in-progress", a.url),
            &[],
        )
        .await;
        assert_eq!(
            listed["rooms"].as_array().map(Vec::len),
            Some(1),
            "{listed}"
        );
    }
}

#[test]
fn an_unreachable_database_is_a_clear_error_at_start() {
    let port = common::free_port().port();
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_salon"));
    clean_env(&mut command);
    credentials(&mut command);
    let output = command
        .current_dir(dir.path())
        .args(["--data-dir", "data", "--database-url"])
        .arg(format!("postgres://salon:hunter2@127.0.0.1:{port}/salon"))
        .arg("serve")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot open the database at postgres://salon:***@127.0.0.1:{port}/salon"
        )) && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password stays out: {stderr}"
    );
}

/// A gauge of a node's `/metrics` (with or without labels).
async fn gauge(node: &Server, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let name = format!("salon_{name}");
    text.lines()
        .find(|line| {
            line.strip_prefix(&name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics of {}:\n{text}", node.url))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_that_creates_a_room_as_the_database_goes_away_is_refused() {
    let Some(postgres) = postgres::private_cluster() else {
        return;
    };
    let database = postgres.fresh_database().await;
    let node = tokio::task::block_in_place(|| Server::start_with(&["--database-url", &database]));
    let signaling = format!("ws://{}/v1/signaling", node.addr);

    // The database goes away, and a join creates a room before the node
    // notices (new rooms are refused at once after that): the room's
    // creation is not written, and a room must be in the database before
    // anyone is told it exists. The join is refused, with the error of any
    // new room during an outage. (It was admitted to a room the database
    // did not have; on a shared database another node could take its name
    // meanwhile, and the clash was found only when the database returned.)
    tokio::task::block_in_place(|| postgres.stop());
    assert_eq!(gauge(&node, "store_up").await, 1, "not noticed yet");
    let config = ClientConfig::new(signaling.clone(), token("erin"), "onset");
    let Err(refused) = Client::connect(config).await else {
        panic!("admitted to a room whose creation was not written");
    };
    assert_eq!(refused.code, 53006, "{refused:?}");
    assert!(refused.message.contains("database"), "{refused:?}");
    assert_eq!(gauge(&node, "rooms_in_progress").await, 0, "the room ended");

    // When the database returns, what was kept is written: a room that
    // ended as it began. New rooms are taken again.
    tokio::task::block_in_place(|| postgres.start_again());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while gauge(&node, "store_up").await == 0 || gauge(&node, "store_backlog_events").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backlog is not written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, listed) = rest(
        reqwest::Method::GET,
        format!("{}/v1/Rooms?UniqueName=onset&Status=completed", node.url),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let rooms = listed["rooms"].as_array().expect("rooms");
    assert_eq!(rooms.len(), 1, "{listed}");
    assert_eq!(rooms[0]["status"], "completed", "{listed}");
    let config = ClientConfig::new(signaling, token("erin"), "onset");
    let erin = Client::connect(config).await.expect("a new room is taken");
    assert_ne!(
        erin.room().sid.to_string(),
        rooms[0]["sid"].as_str().unwrap_or_default()
    );
    erin.leave().await;
}

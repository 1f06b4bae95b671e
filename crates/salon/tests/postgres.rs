//! Salon nodes sharing one PostgreSQL database (a private cluster on a free
//! loopback port; see crates/store/tests/common/postgres.rs).

mod common;
#[path = "../../store/tests/common/postgres.rs"]
mod postgres;

use std::process::Command;

use common::{API_KEY, API_SECRET, Server, clean_env, credentials};
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

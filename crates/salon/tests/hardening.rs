//! The real `salon` process under conditions a test server in-process
//! cannot make: a low open-file limit, and a crash.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{API_KEY, API_SECRET, Launch, Server, healthz, tail};
use serde_json::Value;

#[test]
fn at_the_open_file_limit_the_server_keeps_answering_health_checks() {
    let limit = 256;
    let server = Server::launch(&Launch {
        open_files: Some(limit),
        ..Launch::default()
    });
    // Far more half-sent requests than the server has descriptors, held
    // open (the server closes the oldest to make room; the client keeps its
    // end).
    let mut held = Vec::new();
    let opening = Instant::now();
    for _ in 0..(3 * limit) {
        if opening.elapsed() > Duration::from_secs(10) {
            break;
        }
        let Ok(mut stream) = TcpStream::connect_timeout(&server.addr, Duration::from_millis(500))
        else {
            continue;
        };
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: salon.test\r\n");
        held.push(stream);
    }
    assert!(
        held.len() > limit as usize,
        "only {} connections",
        held.len()
    );
    // While they are held, a health check is answered, again and again.
    for attempt in 0..10 {
        let started = Instant::now();
        assert!(
            healthz(server.addr),
            "health check {attempt} failed after {:?}; the log:\n{}",
            started.elapsed(),
            tail(&server.log, 4000)
        );
    }
    // The server never ran out of descriptors, so never had to spin.
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        !log.contains("cannot accept connections"),
        "{}",
        tail(&server.log, 4000)
    );
    let open = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(open < limit as usize, "{open} descriptors open");
    drop(held);
    assert!(healthz(server.addr));
}

async fn rest(server: &Server, request: reqwest::RequestBuilder) -> Value {
    let response = request
        .basic_auth(API_KEY, Some(API_SECRET))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}; the log:\n{}", tail(&server.log, 4000)));
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn after_a_crash_a_room_ends_when_its_server_was_last_seen() {
    let data = tempfile::tempdir().unwrap();
    let launch = Launch {
        data_dir: Some(data.path().join("data")),
        ..Launch::default()
    };
    let http = reqwest::Client::new();
    let mut first = Server::launch(&launch);
    let room = rest(
        &first,
        http.post(format!("{}/v1/Rooms", first.url))
            .form(&[("UniqueName", "crashed")]),
    )
    .await;
    let sid = room["sid"].as_str().expect("a room").to_owned();
    // The server dies a moment later, without ending the room, and stays
    // down for a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.child.kill().expect("killed");
    let _ = first.child.wait();
    tokio::time::sleep(Duration::from_secs(4)).await;

    let second = Server::launch(&launch);
    let room = rest(&second, http.get(format!("{}/v1/Rooms/{sid}", second.url))).await;
    assert_eq!(room["status"], "completed", "{room}");
    let duration = room["duration"].as_u64().expect("a duration");
    assert!(
        duration <= 2,
        "the room lasted {duration} s: the downtime was counted ({room})"
    );
}

//! The HTTP front door under hostile clients: slow heads, idle keep-alives,
//! more connections than it takes, and requests the parser refuses. Raw
//! TCP on loopback, so every byte is the test's choice.

mod common;

use std::time::{Duration, Instant};

use common::{Options, TestServer};
use salon_server::http::HttpLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limits(header: u64, idle: u64, max_connections: usize) -> Options {
    Options {
        http: HttpLimits {
            max_connections,
            header_timeout: Duration::from_secs(header),
            idle_timeout: Duration::from_secs(idle),
            request_timeout: Duration::from_secs(30),
        },
        ..Options::default()
    }
}

/// Read until the server closes the connection (EOF or reset); how long
/// that took, or `None` if it stayed open for `patience`.
async fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + patience),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// One HTTP/1.1 response: status and body (by content-length).
async fn response(stream: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&buf[..n]);
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let status = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    while bytes.len() < head_end + length {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed inside the body");
        bytes.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&bytes[head_end..head_end + length]).into_owned();
    (status, body)
}

async fn healthz(stream: &mut TcpStream) -> u16 {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: salon.test\r\n\r\n")
        .await
        .unwrap();
    response(stream).await.0
}

#[track_caller]
fn twilio_error(body: &str, status: u16, code: u64) {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(json["status"], status, "{json}");
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(
        json["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_half_sent_request_is_dropped_after_the_header_timeout() {
    let s = TestServer::with(limits(1, 30, 100)).await;
    let mut half = TcpStream::connect(s.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: salon.test\r\n")
        .await
        .unwrap();
    let closed = closed_within(&mut half, Duration::from_secs(5))
        .await
        .expect("the server closed the half-sent request");
    assert!(
        closed >= Duration::from_millis(900),
        "too early: {closed:?}"
    );
    // A connection that sends nothing at all is held no longer.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn slowloris_connections_are_closed_however_steadily_they_trickle() {
    let s = TestServer::with(limits(1, 30, 1000)).await;
    let mut trickles = Vec::new();
    for _ in 0..50 {
        trickles.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // A header byte from every connection every 100 ms: each is active, none
    // ever finishes its head.
    let started = Instant::now();
    let mut open = trickles.len();
    let mut first = b"GET / HTTP/1.1\r\nX-Slow: ".to_vec();
    while open > 0 && started.elapsed() < Duration::from_secs(5) {
        open = 0;
        for stream in &mut trickles {
            let byte: &[u8] = if first.is_empty() { b"a" } else { &first };
            if stream.write_all(byte).await.is_ok() && stream.flush().await.is_ok() {
                // A write may succeed into the kernel after the peer closed;
                // a read tells for sure.
                let mut probe = [0u8; 1];
                match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
                {
                    Ok(Ok(0) | Err(_)) => {}
                    _ => open += 1,
                }
            }
        }
        first.clear();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        open,
        0,
        "connections still open after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // Meanwhile the server answers whoever asks properly.
    let mut client = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut client).await, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::with(limits(1, 3, 100)).await;
    let mut client = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut client).await, 200);
    // Idle past the header timeout but within the idle one: still open,
    // and a second request on it is answered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(healthz(&mut client).await, 200);
    let idle = closed_within(&mut client, Duration::from_secs(6))
        .await
        .expect("the idle connection was closed");
    assert!(
        idle >= Duration::from_millis(2900) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
}

#[tokio::test]
async fn at_the_connection_limit_waiting_connections_make_room_and_then_newcomers_get_503() {
    let s = TestServer::with(limits(30, 30, 20)).await;
    // Twenty half-sent requests fill every slot.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: salon.test\r\n")
            .await
            .unwrap();
        stalled.push(stream);
    }
    // A health check still gets through: the oldest stalled ones make room.
    for _ in 0..5 {
        let mut client = TcpStream::connect(s.addr).await.unwrap();
        assert_eq!(healthz(&mut client).await, 200);
    }
    let mut evicted = 0;
    for stream in &mut stalled {
        if closed_within(stream, Duration::from_millis(50))
            .await
            .is_some()
        {
            evicted += 1;
        }
    }
    assert!(evicted >= 1, "nobody was closed to make room");
    drop(stalled);
    // Connections that are busy (upgraded WebSockets waiting for `join`)
    // cannot be closed to make room: past the limit, a clear refusal.
    let mut sockets = Vec::new();
    let mut refused = None;
    for _ in 0..25 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream
            .write_all(
                b"GET /v1/signaling HTTP/1.1\r\nHost: salon.test\r\nConnection: Upgrade\r\n\
                  Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await
            .unwrap();
        let (status, body) = response(&mut stream).await;
        match status {
            101 => sockets.push(stream),
            503 => {
                refused = Some(body);
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let body = refused.expect("a refusal once every slot is busy");
    twilio_error(&body, 503, 20503);
    assert!(sockets.len() <= 20, "{} upgraded", sockets.len());
    // Freeing slots lets newcomers in again.
    drop(sockets);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = TcpStream::connect(s.addr).await.unwrap();
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: salon.test\r\n\r\n")
            .await
            .unwrap();
        if response(&mut client).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slots were not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn requests_the_parser_refuses_get_twilio_error_bodies() {
    let s = TestServer::start().await;
    let cases: [(Vec<u8>, u16, u64); 4] = [
        (
            format!(
                "GET /v1/Rooms?{} HTTP/1.1\r\nHost: salon.test\r\n\r\n",
                "a".repeat(10_000)
            )
            .into_bytes(),
            414,
            20414,
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: salon.test\r\nX-Big: {}\r\n\r\n",
                "b".repeat(40_000)
            )
            .into_bytes(),
            431,
            20431,
        ),
        (
            // Over hyper's own limit for a request target (64 KiB).
            format!(
                "GET /{} HTTP/1.1\r\nHost: salon.test\r\n\r\n",
                "c".repeat(70_000)
            )
            .into_bytes(),
            431,
            20431,
        ),
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), 400, 20400),
    ];
    for (request, status, code) in cases {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        // The server may answer and close before reading it all.
        let _ = stream.write_all(&request).await;
        let (got, body) = response(&mut stream).await;
        assert_eq!(got, status, "{body}");
        twilio_error(&body, status, code);
    }
    // A normal request still works on a fresh connection.
    let mut client = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut client).await, 200);
}

fn request_limit(seconds: u64) -> Options {
    Options {
        http: HttpLimits {
            max_connections: 100,
            request_timeout: Duration::from_secs(seconds),
            ..HttpLimits::default()
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn a_request_body_that_never_arrives_is_dropped_after_the_request_timeout() {
    let s = TestServer::with(request_limit(1)).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        b"POST /create-token HTTP/1.1\r\nHost: salon.test\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"identity\":",
    )
    .await
    .unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(5))
        .await
        .expect("the server gave up on the body");
    assert!(
        closed >= Duration::from_millis(900),
        "too early: {closed:?}"
    );
}

/// The server's sockets for one client connection in the kernel's table:
/// (state, bytes queued to send).
fn server_sockets(server_port: u16, client_port: u16) -> Vec<(u8, u64)> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |field: &str| {
                field
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if fields.len() > 4
                && port(fields[1]) == Some(server_port)
                && port(fields[2]) == Some(client_port)
            {
                let state = u8::from_str_radix(fields[3], 16).unwrap_or(0);
                let queued = fields[4]
                    .split(':')
                    .next()
                    .and_then(|q| u64::from_str_radix(q, 16).ok())
                    .unwrap_or(0);
                found.push((state, queued));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_client_that_does_not_read_its_answers_is_let_go_after_the_request_timeout() {
    let s = TestServer::with(request_limit(1)).await;
    // Megabytes of answers asked for at once, by a client with a tiny
    // receive buffer that never reads them.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut lazy = socket.connect(s.addr).await.unwrap();
    let client_port = lazy.local_addr().unwrap().port();
    let requests = "GET /app.js HTTP/1.1\r\nHost: salon.test\r\n\r\n".repeat(200);
    lazy.write_all(requests.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut held = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        held = server_sockets(s.addr.port(), client_port);
        if held.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        held.is_empty(),
        "the server still holds (state, queued): {held:?}"
    );
    // Everyone else is still served.
    let mut client = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut client).await, 200);
}

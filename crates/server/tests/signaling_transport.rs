//! The signaling socket's limits, against clients that push them: frames
//! too large, a thousand messages in one write, floods, and a client that
//! never reads. Whatever the server does, the client is told why.

mod common;

use std::time::{Duration, Instant};

use common::{Options, TestServer};
use futures_util::{SinkExt, StreamExt};
use salon_server::signaling::SignalingConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn signaling(config: SignalingConfig) -> Options {
    Options {
        signaling: config,
        ..Options::default()
    }
}

/// A client socket that may send frames of any size.
async fn open(s: &TestServer) -> Socket {
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(s.signaling_url(), Some(config), false)
            .await
            .expect("websocket");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("sent");
}

/// What the server says next: a message, or how it closed.
#[derive(Debug)]
enum Heard {
    Message(Value),
    Closed(Option<u16>),
}

async fn hear(socket: &mut Socket) -> Heard {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server says something in time")
        {
            Some(Ok(Message::Text(text))) => {
                return Heard::Message(serde_json::from_str(&text).expect("JSON"));
            }
            Some(Ok(Message::Close(frame))) => {
                return Heard::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            None | Some(Err(_)) => return Heard::Closed(None),
        }
    }
}

async fn message(socket: &mut Socket) -> Value {
    match hear(socket).await {
        Heard::Message(m) => m,
        other => panic!("expected a message, heard {other:?}"),
    }
}

async fn joined(s: &TestServer, identity: &str, room: &str) -> Socket {
    let mut socket = open(s).await;
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": s.token(identity, None), "room": room}),
    )
    .await;
    let joined = message(&mut socket).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    socket
}

/// The TCP stream under a client socket, to write frames by hand.
fn raw(socket: &mut Socket) -> &mut tokio::net::TcpStream {
    match socket.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(stream) => stream,
        _ => panic!("plain TCP expected"),
    }
}

/// A masked client text frame (RFC 6455 §5.2), mask key zero.
fn frame(text: &str) -> Vec<u8> {
    let mut out = vec![0x81];
    match text.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(text.as_bytes());
    out
}

#[tokio::test]
async fn a_frame_over_512_kib_closes_the_socket_with_1009() {
    let s = TestServer::start().await;
    let mut socket = joined(&s, "alice", "big").await;
    let huge = json!({"type": "ping", "id": 1, "pad": "x".repeat(600_000)});
    // The server may close before taking all of it.
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    match hear(&mut socket).await {
        Heard::Closed(code) => assert_eq!(code, Some(1009)),
        other => panic!("expected a close frame, heard {other:?}"),
    }
}

#[tokio::test]
async fn a_join_with_a_300_kb_token_is_refused_with_a_code_then_closed() {
    let s = TestServer::start().await;
    let mut socket = open(&s).await;
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": "e".repeat(300_000), "room": "r"}),
    )
    .await;
    let refused = message(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], 53004, "{refused}");
    match hear(&mut socket).await {
        Heard::Closed(code) => assert_eq!(code, Some(1000)),
        other => panic!("expected a close frame, heard {other:?}"),
    }
    // Within the message limit, the token itself is judged: too long, 20101.
    let mut socket = open(&s).await;
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": "e".repeat(20_000), "room": "r"}),
    )
    .await;
    assert_eq!(message(&mut socket).await["code"], 20101);
}

#[tokio::test]
async fn a_thousand_messages_in_one_write_are_all_answered() {
    let s = TestServer::with(signaling(SignalingConfig {
        messages_per_second: 1000,
        ..SignalingConfig::default()
    }))
    .await;
    let mut socket = joined(&s, "alice", "burst").await;
    let burst: Vec<u8> = (0..1000)
        .flat_map(|id| frame(&json!({"type": "ping", "id": id}).to_string()))
        .collect();
    raw(&mut socket).write_all(&burst).await.unwrap();
    for id in 0..1000 {
        let pong = message(&mut socket).await;
        assert_eq!(pong, json!({"type": "pong", "id": id}));
    }
    send(&mut socket, json!({"type": "leave"})).await;
    assert_eq!(message(&mut socket).await["type"], "disconnected");
}

#[tokio::test]
async fn a_flood_over_the_rate_is_refused_with_20429_and_the_session_goes_on() {
    let s = TestServer::with(signaling(SignalingConfig {
        messages_per_second: 10,
        ..SignalingConfig::default()
    }))
    .await;
    let mut socket = joined(&s, "alice", "flood").await;
    // Ten seconds' worth at once is fine; the next ones are refused, each
    // with the code (and an offer with its revision).
    let mut flood: Vec<u8> = (0..150)
        .flat_map(|id| frame(&json!({"type": "ping", "id": id}).to_string()))
        .collect();
    flood.extend(frame(
        &json!({"type": "offer", "revision": 7, "sdp": "v=0", "publish": []}).to_string(),
    ));
    raw(&mut socket).write_all(&flood).await.unwrap();
    let (mut pongs, mut refused) = (0, 0);
    let mut offer_refusal = None;
    for _ in 0..151 {
        let heard = message(&mut socket).await;
        match heard["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if heard["code"] == 20429 => {
                refused += 1;
                if heard["revision"] == 7 {
                    offer_refusal = Some(heard);
                }
            }
            _ => panic!("unexpected {heard}"),
        }
    }
    // Ten seconds' worth, less the join, plus what trickled in meanwhile.
    assert!((99..=101).contains(&pongs), "{pongs} pongs");
    assert_eq!(pongs + refused, 151);
    assert!(
        offer_refusal.is_some(),
        "the offer's refusal names its revision"
    );
    // A moment later, the session answers again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut socket, json!({"type": "ping", "id": 1000})).await;
    assert_eq!(
        message(&mut socket).await,
        json!({"type": "pong", "id": 1000})
    );
}

/// The server's sockets for one client connection, from the kernel's table:
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
async fn a_client_that_never_reads_has_its_connection_reset_after_the_send_timeout() {
    let s = TestServer::with(signaling(SignalingConfig {
        send_timeout: Duration::from_secs(1),
        resume_grace: Duration::from_secs(1),
        // Chatty publishes in bulk.
        messages_per_second: 0,
        ..SignalingConfig::default()
    }))
    .await;
    // A client with a tiny receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let client_port = stream.local_addr().unwrap().port();
    let (mut lazy, _) = tokio_tungstenite::client_async(
        s.signaling_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    send(
        &mut lazy,
        json!({"type": "join", "version": 1, "token": s.token("lazy", None), "room": "busy"}),
    )
    .await;
    // Another participant publishes far more than the socket takes.
    let mut chatty = joined(&s, "chatty", "busy").await;
    let publishes: Vec<u8> = (0..3000)
        .flat_map(|i| {
            frame(
                &json!({"type": "publish_data", "name": format!("data-{i}-{}", "x".repeat(60)), "label": format!("l{i}")})
                    .to_string(),
            )
        })
        .collect();
    let chatty_writes = tokio::spawn(async move {
        let _ = raw(&mut chatty).write_all(&publishes).await;
        // Keep reading so chatty itself is not the one cut off.
        while chatty.next().await.is_some() {}
    });
    // The server's side of lazy's connection is gone within the send
    // timeout and a little more, holding nothing.
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        last = server_sockets(s.addr.port(), client_port);
        if last.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last.is_empty(),
        "the server still holds lazy's socket (state, queued): {last:?}"
    );
    // The client learns it too: the connection was reset (at once, or when
    // it next says something).
    let raw = raw(&mut lazy);
    let _ = raw.write_all(&frame(r#"{"type":"ping","id":1}"#)).await;
    let mut buf = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) => return "eof",
                Err(_) => return "reset",
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the connection ended");
    assert_eq!(ended, "reset");
    // And the participant is gone once the session's resume grace runs out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.state.signaling.len() > 1 {
        assert!(Instant::now() < deadline, "lazy's session never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chatty_writes.abort();
}

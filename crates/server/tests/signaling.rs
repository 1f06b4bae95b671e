//! Signaling against misbehaving clients, over raw WebSockets.

mod common;

use std::time::Duration;

use common::{Options, TestServer};
use futures_util::{SinkExt, StreamExt};
use salon_server::signaling::SignalingConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(s: &TestServer) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(s.signaling_url())
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

/// The next JSON message, or `None` when the socket closes.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("JSON"));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn joined(s: &TestServer, identity: &str, room: &str) -> (Socket, Value) {
    let mut socket = open(s).await;
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": s.token(identity, None), "room": room}),
    )
    .await;
    let joined = next(&mut socket).await.expect("joined");
    assert_eq!(joined["type"], "joined", "{joined}");
    (socket, joined)
}

#[track_caller]
fn assert_error(message: &Option<Value>, code: u64) {
    let message = message.as_ref().expect("a message, not a closed socket");
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["code"], code, "{message}");
    assert!(message["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn the_first_message_must_be_a_well_formed_join_or_resume() {
    let s = TestServer::start().await;
    for first in [
        json!({"type": "ping"}),
        json!({"type": "offer", "revision": 1, "sdp": "v=0"}),
        json!({"type": "dance"}),
        json!({"type": "join", "version": 2, "token": "t", "room": "r"}),
        json!({"type": "join", "version": 1, "room": "r"}),
        json!([1, 2, 3]),
    ] {
        let mut socket = open(&s).await;
        send(&mut socket, first.clone()).await;
        assert_error(&next(&mut socket).await, 53004);
        assert!(
            next(&mut socket).await.is_none(),
            "closed after refusing {first}"
        );
    }
    // Not JSON at all.
    let mut socket = open(&s).await;
    socket.send(Message::Text("hello?".into())).await.unwrap();
    assert_error(&next(&mut socket).await, 53004);
    // A binary frame.
    let mut socket = open(&s).await;
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_error(&next(&mut socket).await, 53004);
    // A resume of a session that does not exist.
    let mut socket = open(&s).await;
    send(
        &mut socket,
        json!({"type": "resume", "version": 1, "token": s.token("x", None), "session": "nope"}),
    )
    .await;
    assert_error(&next(&mut socket).await, 53204);
}

#[tokio::test]
async fn a_join_without_a_room_takes_the_grant_or_makes_a_room_named_by_its_sid() {
    let s = TestServer::start().await;
    // A token that grants any room: a new room each time, named by its SID.
    let mut rooms = Vec::new();
    for identity in ["ada", "grace"] {
        let mut socket = open(&s).await;
        send(
            &mut socket,
            json!({"type": "join", "version": 1, "token": s.token(identity, None)}),
        )
        .await;
        let joined = next(&mut socket).await.expect("joined");
        assert_eq!(joined["type"], "joined", "{joined}");
        let (sid, name) = (&joined["room"]["sid"], &joined["room"]["name"]);
        assert!(
            sid.as_str().is_some_and(|s| s.starts_with("RM")),
            "{joined}"
        );
        assert_eq!(name, sid, "the room's unique name is its SID");
        rooms.push((socket, sid.as_str().unwrap().to_owned()));
    }
    assert_ne!(
        rooms[0].1, rooms[1].1,
        "each join without a room makes a new one"
    );
    // The next participant joins that room by the name it was given.
    let (_hopper, joined) = joined(&s, "hopper", &rooms[0].1).await;
    assert_eq!(joined["room"]["sid"], rooms[0].1.as_str());
    assert_eq!(joined["participants"][0]["identity"], "ada");
    let (status, room) = s.get(&format!("/v1/Rooms/{}", rooms[0].1)).await;
    assert_eq!(status, 200, "{room}");
    assert_eq!(room["unique_name"], rooms[0].1.as_str());
    // A token with a room grant: that room.
    let mut socket = open(&s).await;
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": s.token("lin", Some("granted"))}),
    )
    .await;
    let joined = next(&mut socket).await.expect("joined");
    assert_eq!(joined["room"]["name"], "granted", "{joined}");
}

#[tokio::test]
async fn bad_messages_during_a_session_get_errors_and_the_session_goes_on() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "r").await;
    let oversized = json!({"type": "ping", "id": 1, "pad": "x".repeat(300 * 1024)});
    send(&mut socket, oversized).await;
    assert_error(&next(&mut socket).await, 53004);
    send(&mut socket, json!({"type": "teleport"})).await;
    assert_error(&next(&mut socket).await, 53004);
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": "t", "room": "r"}),
    )
    .await;
    assert_error(&next(&mut socket).await, 53004);
    send(
        &mut socket,
        json!({"type": "unpublish", "track": "MTffffffffffffffffffffffffffffffff"}),
    )
    .await;
    assert_error(&next(&mut socket).await, 53300);
    send(
        &mut socket,
        json!({"type": "offer", "revision": 1, "sdp": "v=0\r\nthis is not SDP", "publish": []}),
    )
    .await;
    assert_error(&next(&mut socket).await, 53403);
    send(&mut socket, json!({"type": "offer", "revision": 2, "sdp": "v=0", "publish": [{"mid": "a very long mid indeed", "name": "x", "kind": "audio"}]})).await;
    assert_error(&next(&mut socket).await, 53403);
    // Still alive.
    send(&mut socket, json!({"type": "ping", "id": 42})).await;
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({"type": "pong", "id": 42})
    );
}

/// An offer whose only audio codec is one Salon does not forward.
const G722_ONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 9\r\nc=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=ice-options:trickle\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:9 G722/8000\r\na=ssrc:1111 cname:x\r\n";

#[tokio::test]
async fn an_offer_without_a_usable_codec_is_refused_with_53404_and_publishes_nothing() {
    let s = TestServer::start().await;
    let (mut socket, joined) = joined(&s, "alice", "codecs").await;
    send(&mut socket, json!({"type": "offer", "revision": 1, "sdp": G722_ONLY, "publish": [{"mid": "0", "name": "mic", "kind": "audio"}]})).await;
    let answer = next(&mut socket).await;
    let code = answer.as_ref().unwrap()["code"].as_u64();
    assert!(matches!(code, Some(53404) | Some(53403)), "{answer:?}");
    let room = joined["room"]["sid"].as_str().unwrap();
    let me = joined["participant"]["sid"].as_str().unwrap();
    let (_, tracks) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{me}/PublishedTracks"
        ))
        .await;
    assert_eq!(
        tracks["published_tracks"].as_array().unwrap().len(),
        0,
        "the track was unpublished again"
    );
}

#[tokio::test]
async fn closing_the_socket_leaves_at_once() {
    let s = TestServer::start().await;
    let (mut alice, _) = joined(&s, "alice", "door").await;
    let (mut bob, bob_joined) = joined(&s, "bob", "door").await;
    let connected = next(&mut alice).await.unwrap();
    assert_eq!(connected["type"], "participant_connected");
    bob.close(None).await.unwrap();
    let left = next(&mut alice).await.unwrap();
    assert_eq!(
        left,
        json!({"type": "participant_disconnected", "participant": bob_joined["participant"]["sid"]})
    );
}

#[tokio::test]
async fn leave_says_goodbye_and_closes() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "bye").await;
    send(&mut socket, json!({"type": "leave"})).await;
    let goodbye = next(&mut socket).await.unwrap();
    assert_eq!(
        goodbye,
        json!({"type": "disconnected", "reason": "left", "message": "Left the room"})
    );
    assert!(next(&mut socket).await.is_none());
}

#[tokio::test]
async fn a_dropped_socket_can_be_resumed_with_the_session() {
    let s = TestServer::start().await;
    let (mut socket, joined) = joined(&s, "alice", "resume").await;
    let session = joined["session"].as_str().unwrap().to_owned();
    assert_eq!(joined["last_revision"], 0);
    // An offer the server refuses: the error names its revision.
    send(
        &mut socket,
        json!({"type": "offer", "revision": 3, "sdp": "v=0\r\nnope", "publish": []}),
    )
    .await;
    let refused = next(&mut socket).await.unwrap();
    assert_eq!(
        (refused["code"].as_u64(), refused["revision"].as_u64()),
        (Some(53403), Some(3)),
        "{refused}"
    );
    // Drop the TCP connection without a close frame.
    drop(socket);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile someone joins: the resumed session hears about it.
    let (_bob, bob_joined) = self::joined(&s, "bob", "resume").await;
    let mut socket = open(&s).await;
    send(&mut socket, json!({"type": "resume", "version": 1, "token": s.token("alice", None), "session": session})).await;
    let resumed = next(&mut socket).await.unwrap();
    assert_eq!(resumed["type"], "joined");
    assert_eq!(resumed["resumed"], true);
    assert_eq!(
        resumed["participant"]["sid"], joined["participant"]["sid"],
        "same participant"
    );
    assert_eq!(resumed["participants"][0]["identity"], "bob");
    let missed = next(&mut socket).await.unwrap();
    assert_eq!(missed["type"], "participant_connected");
    assert_eq!(
        missed["participant"]["sid"],
        bob_joined["participant"]["sid"]
    );
    // Another identity cannot take the session over.
    let mut thief = open(&s).await;
    send(&mut thief, json!({"type": "resume", "version": 1, "token": s.token("mallory", None), "session": session})).await;
    assert_error(&next(&mut thief).await, 20106);
}

#[tokio::test]
async fn a_resume_before_the_server_saw_the_old_socket_go_shows_the_others_a_reconnect() {
    let s = TestServer::start().await;
    let (old, joined) = joined(&s, "alice", "roam").await;
    let (mut bob, _) = self::joined(&s, "bob", "roam").await;
    let alice = joined["participant"]["sid"].clone();
    // The client takes its socket for dead (it heard nothing) and resumes
    // on a new one, while the server still holds the old one open.
    let session = joined["session"].as_str().unwrap().to_owned();
    let mut socket = open(&s).await;
    send(&mut socket, json!({"type": "resume", "version": 1, "token": s.token("alice", None), "session": session})).await;
    assert_eq!(next(&mut socket).await.unwrap()["resumed"], true);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = next(&mut bob).await.expect("bob hears of it");
        if message["participant"] == alice {
            seen.push(message["type"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        seen,
        ["participant_reconnecting", "participant_reconnected"]
    );
    drop(old);
}

/// A session whose socket has a tiny receive buffer, so that not reading
/// it pushes back on the server at once.
async fn joined_with_tiny_buffer(s: &TestServer, identity: &str, room: &str) -> (Socket, Value) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        s.signaling_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    send(
        &mut ws,
        json!({"type": "join", "version": 1, "token": s.token(identity, None), "room": room}),
    )
    .await;
    let joined = next(&mut ws).await.expect("joined");
    (ws, joined)
}

fn quick() -> Options {
    Options {
        signaling: SignalingConfig {
            join_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            resume_grace: Duration::from_secs(1),
            ..SignalingConfig::default()
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_without_growing_memory() {
    let s = TestServer::with(quick()).await;
    let (lazy, lazy_joined) = joined_with_tiny_buffer(&s, "lazy", "busy").await;
    // Never read `lazy` while the room produces far more messages than its
    // queues hold: another participant publishes thousands of tracks.
    let room_sid: salon_sid::RoomSid = lazy_joined["room"]["sid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let chatty = s.join(room_sid, "chatty").await;
    // Loopback TCP buffers hold megabytes; produce several (two messages of
    // ~300 bytes per track: track_published and subscribed).
    // Published in batches, so the room service records fifty at a time.
    for batch in 0..160 {
        s.state
            .rooms
            .call(move |rooms, _| {
                for i in 0..50 {
                    let name = format!("data-{batch:03}-{i:02}-{}", "x".repeat(110));
                    rooms
                        .publish(
                            chatty,
                            salon_sid::TrackSid::random(),
                            &name,
                            salon_room::TrackKind::Data,
                            true,
                        )
                        .unwrap();
                }
            })
            .await
            .unwrap();
    }
    let room = lazy_joined["room"]["sid"].as_str().unwrap().to_owned();
    let lazy_sid = lazy_joined["participant"]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut status = String::new();
    for _ in 0..100 {
        let (_, p) = s
            .get(&format!("/v1/Rooms/{room}/Participants/{lazy_sid}"))
            .await;
        status = p["status"].as_str().unwrap_or_default().to_owned();
        if status == "disconnected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, "disconnected",
        "the participant that never read was removed"
    );
    drop(lazy);
}

#[tokio::test]
async fn hundreds_of_idle_sockets_do_not_stop_anyone_else() {
    let s = TestServer::with(quick()).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(open(&s).await);
    }
    // A real client still joins and gets answers promptly.
    let (mut socket, _) = joined(&s, "alice", "crowded").await;
    send(&mut socket, json!({"type": "ping", "id": 1})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "pong");
    // Idle sockets are refused (53002) and closed after the join timeout.
    for socket in &mut idle {
        let refused = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed in time");
        match refused {
            Some(Ok(Message::Text(text))) => assert!(text.contains("53002"), "{text}"),
            other => panic!("expected a 53002 error, got {other:?}"),
        }
    }
    // The joined client was not: its socket still answers.
    send(&mut socket, json!({"type": "ping", "id": 2})).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "pong");
}

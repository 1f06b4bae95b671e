//! Twilio's signaling protocol on `/signaling`, as the official
//! `twilio-video` SDK speaks it, over raw WebSockets: the handshake in both
//! forms, `connected`, publishing by `a=msid`, participant states with
//! revisions, mute, leave, refusals with Twilio's codes; and the
//! `/insights` sink.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(s: &TestServer, path: &str) -> Socket {
    let url = s.signaling_url().replace("/v1/signaling", path);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("sent");
}

/// The next frame other than a heartbeat, or `None` when the socket closes.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                if frame["type"] != "heartbeat" {
                    return Some(frame);
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next `msg` frame's body.
async fn body(socket: &mut Socket) -> Value {
    let frame = next(socket).await.expect("a frame, not a closed socket");
    assert_eq!(frame["type"], "msg", "{frame}");
    frame["body"].clone()
}

/// The next `update` that tells of participants (server offers and
/// subscription snapshots come in updates of their own).
async fn participants_update(socket: &mut Socket) -> Value {
    loop {
        let update = body(socket).await;
        assert_eq!(update["type"], "update", "{update}");
        if update["participants"].is_array() {
            return update;
        }
    }
}

/// The next server offer, with the `subscribed` snapshot it comes with.
async fn server_offer(socket: &mut Socket) -> Value {
    loop {
        let update = body(socket).await;
        assert_eq!(update["type"], "update", "{update}");
        if update["peer_connections"][0]["description"]["type"] == "offer" {
            return update;
        }
    }
}

/// The next body that is not an `update`.
async fn not_update(socket: &mut Socket) -> Value {
    loop {
        let body = body(socket).await;
        if body["type"] != "update" {
            return body;
        }
    }
}

/// Server offers until one sends `track`.
async fn eventually_offer_with(socket: &mut Socket, track: &str) -> Value {
    loop {
        let update = server_offer(socket).await;
        let sdp = update["peer_connections"][0]["description"]["sdp"]
            .as_str()
            .unwrap_or("");
        if sdp.contains(track) {
            return update;
        }
    }
}

fn hello(body: Option<Value>) -> Value {
    let mut hello = json!({"type": "hello", "id": "3f0d2c4e-0000-4000-8000-000000000001", "version": 2, "timeout": 5000});
    if let Some(body) = body {
        hello["body"] = body;
    }
    hello
}

/// A Chrome-like offer publishing one Opus track whose client id is `id`.
fn offer(id: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=ice-options:trickle\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=msid:stream {id}\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:1111 cname:x\r\n"
    )
}

fn connect(token: &str, room: &str, tracks: Value, sdp: Option<String>) -> Value {
    let mut connect = json!({
        "type": "connect", "version": 2, "token": token, "name": room,
        "participant": {"revision": 1, "tracks": tracks},
        "media_signaling": {},
        "subscribe": {"rules": [{"type": "include", "all": true}], "revision": 1},
        "format": "unified",
        "publisher": {"name": "twilio-video.js", "sdk_version": "2.36.0", "user_agent": "test"}
    });
    if let Some(sdp) = sdp {
        connect["peer_connections"] =
            json!([{"id": "pc-1", "description": {"type": "offer", "revision": 1, "sdp": sdp}}]);
    }
    connect
}

fn mic(enabled: bool) -> Value {
    json!([{"id": "mic-id", "kind": "audio", "name": "mic", "enabled": enabled, "priority": "standard"}])
}

/// Connect with the `connect` in the `hello`; the `welcome` and `connected`.
async fn connected(
    s: &TestServer,
    identity: &str,
    room: &str,
    tracks: Value,
    sdp: Option<String>,
) -> (Socket, Value) {
    let mut socket = open(s, "/signaling").await;
    let token = s.token(identity, None);
    send(&mut socket, hello(Some(connect(&token, room, tracks, sdp)))).await;
    let welcome = next(&mut socket).await.expect("welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["negotiatedTimeout"], 5000);
    let connected = body(&mut socket).await;
    assert_eq!(connected["type"], "connected", "{connected}");
    (socket, connected)
}

#[tokio::test]
async fn connect_in_the_hello_resolves_and_publishes_the_track_its_msid_names() {
    let s = TestServer::start().await;
    let (_alice, connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    assert_eq!(connected["name"], "standup");
    assert!(
        connected["sid"].as_str().unwrap().starts_with("RM"),
        "{connected}"
    );
    assert!(
        connected["participant"]["sid"]
            .as_str()
            .unwrap()
            .starts_with("PA")
    );
    assert_eq!(connected["participant"]["identity"], "alice");
    assert!(connected["session"].as_str().is_some_and(|s| !s.is_empty()));
    // Without options.session_timeout the SDK hangs or cannot resume.
    assert!(connected["options"]["session_timeout"].as_u64().unwrap() > 0);
    assert_eq!(connected["participants"], json!([]));
    let published = &connected["published"]["tracks"][0];
    assert_eq!(published["id"], "mic-id");
    assert_eq!(published["state"], "ready");
    let track = published["sid"].as_str().unwrap();
    assert!(track.starts_with("MT"), "{published}");
    let answer = &connected["peer_connections"][0];
    assert_eq!(answer["id"], "pc-1");
    assert_eq!(answer["description"]["type"], "answer");
    assert_eq!(answer["description"]["revision"], 1);
    assert!(
        answer["description"]["sdp"]
            .as_str()
            .unwrap()
            .contains("m=audio")
    );

    let room = connected["sid"].as_str().unwrap();
    let me = connected["participant"]["sid"].as_str().unwrap();
    let (_, tracks) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{me}/PublishedTracks"
        ))
        .await;
    assert_eq!(tracks["published_tracks"][0]["sid"], track, "{tracks}");
    assert_eq!(tracks["published_tracks"][0]["name"], "mic");
}

#[tokio::test]
async fn the_server_offers_a_data_channel_section_and_a_sendonly_m_line_per_subscription() {
    let s = TestServer::start().await;
    let (mut alice, alice_connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    // The client's first offer has no m=application: the server's first
    // offer adds it, under the next shared revision.
    let first = server_offer(&mut alice).await;
    let description = &first["peer_connections"][0]["description"];
    assert_eq!(first["peer_connections"][0]["id"], "pc-1");
    assert_eq!(description["revision"], 2, "{first}");
    assert!(
        description["sdp"]
            .as_str()
            .unwrap()
            .contains("m=application"),
        "{first}"
    );
    assert_eq!(first["subscribed"]["tracks"], json!([]));

    // Bob subscribes to Alice's mic: a sendonly m-line whose msid appdata
    // is the track's SID, named so in `subscribed`.
    let mic_sid = alice_connected["published"]["tracks"][0]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_sid = alice_connected["participant"]["sid"].as_str().unwrap();
    let (mut bob, _) = connected(&s, "bob", "standup", json!([]), Some(offer("nothing"))).await;
    let update = eventually_offer_with(&mut bob, &mic_sid).await;
    let sdp = update["peer_connections"][0]["description"]["sdp"]
        .as_str()
        .unwrap();
    assert!(
        sdp.contains(&format!("a=msid:{alice_sid} {mic_sid}")),
        "{sdp}"
    );
    assert!(sdp.contains("a=sendonly"), "{sdp}");
    let subscribed = update["subscribed"]["tracks"].as_array().unwrap();
    assert!(
        subscribed.contains(&json!({"sid": mic_sid, "id": mic_sid})),
        "{update}"
    );
}

#[tokio::test]
async fn the_ice_form_sees_who_is_there_and_both_sides_follow_each_change() {
    let s = TestServer::start().await;
    let (mut alice, alice_connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    let alice_sid = alice_connected["participant"]["sid"].clone();
    let mic_sid = alice_connected["published"]["tracks"][0]["sid"].clone();

    // Bob's SDK was given no iceServers: `ice` first, then `connect` in a msg.
    let mut bob = open(&s, "/signaling").await;
    let token = s.token("bob", None);
    send(
        &mut bob,
        hello(Some(
            json!({"type": "ice", "version": 1, "edge": "roaming", "token": token}),
        )),
    )
    .await;
    assert_eq!(next(&mut bob).await.unwrap()["type"], "welcome");
    let iced = body(&mut bob).await;
    assert_eq!(iced["type"], "iced", "{iced}");
    assert!(iced["ice_servers"].is_array());
    send(
        &mut bob,
        json!({"type": "msg", "body": connect(&token, "standup", json!([]), None)}),
    )
    .await;
    let bob_connected = body(&mut bob).await;
    assert_eq!(bob_connected["type"], "connected", "{bob_connected}");
    let session = bob_connected["session"].as_str().unwrap().to_owned();
    let others = bob_connected["participants"].as_array().unwrap();
    assert_eq!(others.len(), 1, "{bob_connected}");
    assert_eq!(others[0]["sid"], alice_sid);
    assert_eq!(others[0]["identity"], "alice");
    assert_eq!(others[0]["state"], "connected");
    assert_eq!(others[0]["tracks"][0]["sid"], mic_sid);
    assert_eq!(others[0]["tracks"][0]["kind"], "audio");
    let first = others[0]["revision"].as_u64().unwrap();

    // Alice hears of Bob.
    let update = participants_update(&mut alice).await;
    assert_eq!(update["type"], "update", "{update}");
    assert_eq!(update["participants"][0]["identity"], "bob");
    assert_eq!(update["participants"][0]["state"], "connected");
    assert_eq!(update["participants"][0]["tracks"], json!([]));
    let bob_revision = update["participants"][0]["revision"].as_u64().unwrap();

    // Alice mutes: a higher participant revision with enabled false.
    let alice_session = alice_connected["session"].as_str().unwrap();
    send(&mut alice, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": alice_session, "participant": {"revision": 2, "tracks": mic(false)}}})).await;
    let update = participants_update(&mut bob).await;
    let alice_state = &update["participants"][0];
    assert_eq!(alice_state["sid"], alice_sid, "{update}");
    assert_eq!(alice_state["tracks"][0]["enabled"], false);
    assert!(alice_state["revision"].as_u64().unwrap() > first);
    // A stale revision changes nothing; the next real change comes through.
    send(&mut alice, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": alice_session, "participant": {"revision": 2, "tracks": mic(true)}}})).await;
    send(&mut alice, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": alice_session, "participant": {"revision": 3, "tracks": []}}})).await;
    let update = participants_update(&mut bob).await;
    assert_eq!(
        update["participants"][0]["tracks"],
        json!([]),
        "unpublished: {update}"
    );

    // Bob leaves: Alice sees him disconnected, under a higher revision.
    send(
        &mut bob,
        json!({"type": "msg", "body": {"type": "disconnect", "version": 2, "session": session}}),
    )
    .await;
    send(&mut bob, json!({"type": "bye"})).await;
    let update = participants_update(&mut alice).await;
    assert_eq!(update["participants"][0]["identity"], "bob", "{update}");
    assert_eq!(update["participants"][0]["state"], "disconnected");
    assert!(update["participants"][0]["revision"].as_u64().unwrap() > bob_revision);
}

#[tokio::test]
async fn a_bad_token_is_refused_at_ice_and_at_connect_with_20101() {
    let s = TestServer::start().await;
    for first in [
        json!({"type": "ice", "version": 1, "token": "not.a.token"}),
        connect("not.a.token", "standup", json!([]), None),
    ] {
        let mut socket = open(&s, "/signaling").await;
        send(&mut socket, hello(Some(first))).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "welcome");
        let error = body(&mut socket).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], 20101, "{error}");
        assert!(next(&mut socket).await.is_none(), "then the socket closes");
    }
}

#[tokio::test]
async fn frames_before_hello_are_bad_and_unknown_bodies_are_errors() {
    let s = TestServer::start().await;
    let mut socket = open(&s, "/signaling").await;
    send(
        &mut socket,
        json!({"type": "msg", "body": {"type": "connect"}}),
    )
    .await;
    let bad = next(&mut socket).await.unwrap();
    assert_eq!(bad["type"], "bad", "{bad}");

    let mut socket = open(&s, "/signaling").await;
    send(
        &mut socket,
        hello(Some(json!({"type": "dance", "version": 2}))),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "welcome");
    let error = body(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_u64()),
        (Some("error"), Some(53004)),
        "{error}"
    );
}

#[tokio::test]
async fn a_duplicate_identity_ends_the_older_session_with_53205() {
    let s = TestServer::start().await;
    let (mut first, _) = connected(&s, "alice", "standup", json!([]), None).await;
    let (_second, _) = connected(&s, "alice", "standup", json!([]), None).await;
    let error = not_update(&mut first).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], 53205);
    assert!(next(&mut first).await.is_none(), "then the socket closes");
}

#[tokio::test]
async fn a_room_completed_over_rest_says_completed() {
    let s = TestServer::start().await;
    let (mut alice, connected) = connected(&s, "alice", "standup", json!([]), None).await;
    let room = connected["sid"].as_str().unwrap();
    let (status, _) = s
        .post(&format!("/v1/Rooms/{room}"), &[("Status", "completed")])
        .await;
    assert!(status.is_success(), "{status}");
    let end = not_update(&mut alice).await;
    assert_eq!(end["type"], "disconnected", "{end}");
    assert_eq!(end["status"], "completed");
}

#[tokio::test]
async fn the_insights_sink_answers_connect_and_takes_events() {
    let s = TestServer::start().await;
    let mut socket = open(&s, "/insights").await;
    send(&mut socket, json!({"type": "connect", "token": "eyJ", "version": 1, "publisher": {"name": "twilio-video.js"}})).await;
    let connected = next(&mut socket).await.unwrap();
    assert_eq!(connected["type"], "connected", "{connected}");
    assert!(connected["session"].as_str().is_some_and(|s| !s.is_empty()));
    for _ in 0..3 {
        send(&mut socket, json!({"type": "event", "group": "quality", "name": "stats-report", "payload": {"elapsedTime": 1}, "version": 1})).await;
    }
    socket.close(None).await.expect("closed cleanly");
}

fn sync(token: &str, session: &str) -> Value {
    json!({
        "type": "sync", "version": 2, "session": session, "token": token, "name": "standup",
        "participant": {"revision": 1, "tracks": mic(true)},
        "peer_connections": []
    })
}

#[tokio::test]
async fn a_session_whose_socket_dropped_is_synced_on_a_new_one() {
    let s = TestServer::start().await;
    let (alice, alice_connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    let session = alice_connected["session"].as_str().unwrap().to_owned();
    let (mut bob, _) = connected(&s, "bob", "standup", json!([]), None).await;
    // The socket goes without a close frame, as a network change does.
    drop(alice);
    // Bob sees Alice reconnecting, then back, each under a new revision.
    let away = participants_update(&mut bob).await;
    assert_eq!(away["participants"][0]["identity"], "alice", "{away}");
    assert_eq!(away["participants"][0]["state"], "reconnecting");
    assert_eq!(away["participants"][0]["tracks"][0]["kind"], "audio");

    let mut again = open(&s, "/signaling").await;
    let token = s.token("alice", None);
    send(&mut again, hello(Some(sync(&token, &session)))).await;
    assert_eq!(next(&mut again).await.unwrap()["type"], "welcome");
    let synced = not_update(&mut again).await;
    assert_eq!(synced["type"], "synced", "{synced}");
    assert_eq!(synced["session"], session.as_str());
    assert_eq!(synced["participant"], alice_connected["participant"]);
    assert_eq!(synced["participants"][0]["identity"], "bob", "{synced}");
    // Alice's mic is still hers, under the same SID.
    assert_eq!(
        synced["published"]["tracks"][0]["sid"],
        alice_connected["published"]["tracks"][0]["sid"]
    );
    assert!(synced["options"]["session_timeout"].as_u64().unwrap() > 0);
    let back = participants_update(&mut bob).await;
    assert_eq!(back["participants"][0]["state"], "connected", "{back}");
    assert!(
        back["participants"][0]["revision"].as_u64() > away["participants"][0]["revision"].as_u64()
    );
}

#[tokio::test]
async fn a_sync_for_an_unknown_or_foreign_session_is_refused() {
    let s = TestServer::start().await;
    let (_alice, alice_connected) = connected(&s, "alice", "standup", json!([]), None).await;
    let session = alice_connected["session"].as_str().unwrap();
    for (identity, session, code) in [
        ("alice", "0123456789abcdef0123456789abcdef", 53204),
        ("mallory", session, 20106),
    ] {
        let mut socket = open(&s, "/signaling").await;
        send(
            &mut socket,
            hello(Some(sync(&s.token(identity, None), session))),
        )
        .await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "welcome");
        let error = body(&mut socket).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], code, "{identity}: {error}");
        assert!(next(&mut socket).await.is_none(), "then the socket closes");
    }
}

#[tokio::test]
async fn updates_for_another_session_and_stray_answers_change_nothing_elsewhere() {
    let s = TestServer::start().await;
    let (_alice, alice_connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    let (mut bob, bob_connected) = connected(&s, "bob", "standup", json!([]), None).await;
    // An answer to an offer the server never made is ignored.
    let session = alice_connected["session"].as_str().unwrap();
    let bob_session = bob_connected["session"].as_str().unwrap();
    send(&mut bob, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": bob_session,
        "peer_connections": [{"id": "pc-9", "description": {"type": "answer", "revision": 7, "sdp": "v=0\r\n"}}]}})).await;
    // Alice's session id used on Bob's socket: an error for Bob only.
    send(
        &mut bob,
        json!({"type": "msg", "body": {"type": "update", "version": 2, "session": session,
        "participant": {"revision": 9, "tracks": []}}}),
    )
    .await;
    let error = not_update(&mut bob).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], 53004);
    // Alice's mic is still published.
    let room = alice_connected["sid"].as_str().unwrap();
    let me = alice_connected["participant"]["sid"].as_str().unwrap();
    let (_, tracks) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{me}/PublishedTracks"
        ))
        .await;
    assert_eq!(
        tracks["published_tracks"].as_array().unwrap().len(),
        1,
        "{tracks}"
    );
}

#[tokio::test]
async fn a_sync_with_the_original_token_works_after_it_expired_but_a_connect_does_not() {
    let s = TestServer::start().await;
    let (alice, connected_body) = connected(&s, "alice", "standup", json!([]), None).await;
    let session = connected_body["session"].as_str().unwrap().to_owned();
    drop(alice);
    // Issued two hours ago, valid for one: the SDK only has this one.
    let expired = s.token_at("alice", None, -7200);
    let mut again = open(&s, "/signaling").await;
    send(&mut again, hello(Some(sync(&expired, &session)))).await;
    assert_eq!(next(&mut again).await.unwrap()["type"], "welcome");
    let synced = not_update(&mut again).await;
    assert_eq!(synced["type"], "synced", "{synced}");

    let mut late = open(&s, "/signaling").await;
    send(
        &mut late,
        hello(Some(connect(&expired, "standup", json!([]), None))),
    )
    .await;
    assert_eq!(next(&mut late).await.unwrap()["type"], "welcome");
    let error = body(&mut late).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_u64()),
        (Some("error"), Some(20104)),
        "{error}"
    );
}

#[tokio::test]
async fn the_rooms_recording_state_is_in_connected_and_in_an_update_when_it_starts() {
    let s = TestServer::start().await;
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "taped"),
                ("RecordParticipantsOnConnect", "true"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{room}");
    let (mut watcher, connected) = connected(&s, "watcher", "taped", json!([]), None).await;
    // room.isRecording: false until a track is recorded.
    assert_eq!(connected["recording"]["is_recording"], false, "{connected}");
    let first = connected["recording"]["revision"].as_u64().unwrap();

    // A publisher's tracks start recording: recordingStarted, under a
    // later revision (the SDK ignores a revision it has seen).
    let _bob = s
        .client("bob", "taped", &[salon_client::TrackSpec::audio("mic")])
        .await;
    let update = loop {
        let update = body(&mut watcher).await;
        assert_eq!(update["type"], "update", "{update}");
        if update["recording"].is_object() {
            break update;
        }
    };
    assert_eq!(update["recording"]["is_recording"], true, "{update}");
    assert!(update["recording"]["revision"].as_u64().unwrap() > first);
}

#[tokio::test]
async fn connected_announces_the_msp_channels_asked_for_that_salon_serves() {
    let s = TestServer::start().await;
    let mut socket = open(&s, "/signaling").await;
    let token = s.token("alice", None);
    let mut body_out = connect(&token, "standup", mic(true), Some(offer("mic-id")));
    let dc = json!({"transports": [{"type": "data-channel"}]});
    body_out["media_signaling"] = json!({
        "active_speaker": dc, "network_quality": dc, "render_hints": dc,
        "publisher_hints": dc, "extension_transcriptions": dc,
        "track_priority": {"transports": [{"type": "websocket"}]},
    });
    send(&mut socket, hello(Some(body_out))).await;
    assert_eq!(next(&mut socket).await.expect("welcome")["type"], "welcome");
    let first = body(&mut socket).await;
    assert_eq!(first["type"], "connected", "{first}");
    // Each label is the channel's name; transcriptions and a transport
    // other than a data channel are not announced.
    let announced = first["media_signaling"].as_object().expect("announcements");
    let mut names: Vec<&str> = announced.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "active_speaker",
            "network_quality",
            "publisher_hints",
            "render_hints"
        ],
        "{first}"
    );
    for (name, announcement) in announced {
        assert_eq!(announcement["transport"]["type"], "data-channel");
        assert_eq!(announcement["transport"]["label"], name.as_str());
    }

    // Asking for nothing announces nothing.
    let (_bob, connected) = connected(&s, "bob", "standup", json!([]), None).await;
    assert!(connected.get("media_signaling").is_none(), "{connected}");
}

#[tokio::test]
async fn automatic_subscription_false_subscribes_to_nothing() {
    let s = TestServer::start().await;
    let (_alice, alice_connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    let mic_sid = alice_connected["published"]["tracks"][0]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob connects as `automaticSubscription: false` makes the SDK do.
    let mut bob = open(&s, "/signaling").await;
    let mut connect = connect(
        &s.token("bob", None),
        "standup",
        json!([]),
        Some(offer("nothing")),
    );
    connect["subscribe"] = json!({"rules": [{"type": "exclude", "all": true}], "revision": 1});
    send(&mut bob, hello(Some(connect))).await;
    assert_eq!(next(&mut bob).await.expect("welcome")["type"], "welcome");
    let bob_connected = body(&mut bob).await;
    assert_eq!(bob_connected["type"], "connected", "{bob_connected}");
    // He is told of alice's track, but never sent it.
    let alice_there = bob_connected["participants"][0]["tracks"][0]["sid"].clone();
    assert_eq!(alice_there, json!(mic_sid), "{bob_connected}");
    // Carol, subscribing to all, gets it: the time below is long enough.
    let (mut carol, _) = connected(&s, "carol", "standup", json!([]), Some(offer("nothing"))).await;
    eventually_offer_with(&mut carol, &mic_sid).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(frame) = tokio::time::timeout_at(deadline, next(&mut bob)).await {
        let frame = frame.expect("bob's socket stays open");
        if frame["type"] != "msg" {
            continue;
        }
        let sdp = frame["body"]["peer_connections"][0]["description"]["sdp"]
            .as_str()
            .unwrap_or("");
        assert!(
            !sdp.contains(&mic_sid),
            "bob was offered alice's track: {frame}"
        );
        let subscribed = &frame["body"]["subscribed"]["tracks"];
        assert!(
            subscribed.is_null() || subscribed == &json!([]),
            "bob subscribed: {frame}"
        );
    }
}

#[tokio::test]
async fn a_room_at_its_participant_limit_refuses_connect_with_53105() {
    let s = TestServer::start().await;
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[("UniqueName", "pair"), ("MaxParticipants", "2")],
        )
        .await;
    assert_eq!(status, 201, "{room}");
    let (_alice, _) = connected(&s, "alice", "pair", json!([]), None).await;
    let (_bob, _) = connected(&s, "bob", "pair", json!([]), None).await;
    let mut carol = open(&s, "/signaling").await;
    let token = s.token("carol", None);
    send(
        &mut carol,
        hello(Some(connect(&token, "pair", json!([]), None))),
    )
    .await;
    assert_eq!(next(&mut carol).await.unwrap()["type"], "welcome");
    let refused = body(&mut carol).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_u64()),
        (Some("error"), Some(53105)),
        "{refused}"
    );
    // The room is unchanged: two participants.
    let sid = room["sid"].as_str().unwrap();
    let (_, participants) = s
        .get(&format!("/v1/Rooms/{sid}/Participants?Status=connected"))
        .await;
    assert_eq!(
        participants["participants"].as_array().unwrap().len(),
        2,
        "{participants}"
    );
}

/// The answer a browser publishing `offer("mic-id")` gives to the
/// server's first offer (its audio m-line and the data-channel section).
fn answer_to(server_offer: &str) -> String {
    let app = server_offer
        .split("m=application")
        .nth(1)
        .and_then(|section| section.lines().find_map(|l| l.strip_prefix("a=mid:")))
        .expect("a data-channel section with a mid")
        .trim();
    let transport = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:active\r\n";
    format!(
        "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 {app}\r\n\
a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n{transport}\
a=mid:0\r\na=sendrecv\r\na=msid:stream mic-id\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=ssrc:1111 cname:x\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n{transport}\
a=mid:{app}\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
    )
}

/// An offer under a revision the session has passed is not answered; the
/// next one under a higher revision is.
#[tokio::test]
async fn an_offer_under_a_stale_revision_is_not_answered() {
    let s = TestServer::start().await;
    let (mut alice, connected) =
        connected(&s, "alice", "standup", mic(true), Some(offer("mic-id"))).await;
    let session = connected["session"].as_str().unwrap();
    // The server offers its data-channel section (revision 2): answered.
    let update = server_offer(&mut alice).await;
    let description = &update["peer_connections"][0]["description"];
    assert_eq!(description["revision"], 2, "{update}");
    let answer = answer_to(description["sdp"].as_str().unwrap());
    send(&mut alice, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": session,
        "peer_connections": [{"id": "pc-1", "description": {"type": "answer", "revision": 2, "sdp": answer}}]}})).await;
    // Offers under revisions 1 and 2 (passed), then 3.
    for revision in [1, 2, 3] {
        send(&mut alice, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": session,
            "peer_connections": [{"id": "pc-1", "description": {"type": "offer", "revision": revision, "sdp": offer("mic-id")}}]}})).await;
    }
    let answer = loop {
        let update = body(&mut alice).await;
        assert_eq!(update["type"], "update", "{update}");
        let description = &update["peer_connections"][0]["description"];
        assert_ne!(
            description["type"], "offer",
            "no other server offer: {update}"
        );
        if description["type"] == "answer" {
            break update;
        }
    };
    assert_eq!(
        answer["peer_connections"][0]["description"]["revision"], 3,
        "the first answer is to revision 3: {answer}"
    );
}

/// A message over 1 MiB is refused with 53004; a frame over 2 MiB is not
/// read at all, and the socket closes with 1009.
#[tokio::test]
async fn a_message_over_1_mib_is_53004_and_a_frame_over_2_mib_closes_with_1009() {
    let s = TestServer::start().await;
    let (mut alice, connected) = connected(&s, "alice", "standup", json!([]), None).await;
    let session = connected["session"].as_str().unwrap();
    let big = "x".repeat(1536 * 1024);
    send(&mut alice, json!({"type": "msg", "body": {"type": "update", "version": 2, "session": session,
        "participant": {"revision": 2, "tracks": [{"id": big, "kind": "audio", "name": "mic", "enabled": true}]}}})).await;
    let error = not_update(&mut alice).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_u64()),
        (Some("error"), Some(53004)),
        "{error}"
    );

    let mut socket = open(&s, "/signaling").await;
    let huge = "x".repeat(2 * 1024 * 1024 + 1024);
    // The server may close before the whole frame is written.
    let _ = socket
        .send(Message::Text(
            json!({"type": "msg", "body": {"type": "update", "pad": huge}})
                .to_string()
                .into(),
        ))
        .await;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("no close frame: {e}"),
            None => panic!("no close frame"),
        }
    };
    assert_eq!(code, Some(1009));
}

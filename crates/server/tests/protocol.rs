//! The rules of `docs/protocol.md` that a client written from the document
//! alone relies on, over raw WebSockets against a real server: unknown
//! fields are ignored and unknown types named; an offer is refused (534xx,
//! with its revision, nothing published) when it replays a revision,
//! declares what its SDP does not have, or lacks the first offer's data
//! channel; the answer carries the server's candidates in every bundled
//! m-line; a keepalive timeout says 53002 in its `disconnected`; a
//! duplicate identity's new session hears nothing of the one it replaced.

mod common;

use std::time::Duration;

use common::{Options, TestServer};
use futures_util::{SinkExt, StreamExt};
use salon_client::{MediaSession, TrackKind, TrackSid, TrackSpec};
use salon_server::signaling::SignalingConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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
            .expect("a message in time")
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

/// Nothing arrives for a little while (a `ping` is answered first).
async fn nothing_else(socket: &mut Socket) {
    send(socket, json!({"type": "ping", "id": 99})).await;
    let message = next(socket).await.expect("a message");
    assert_eq!(message, json!({"type": "pong", "id": 99}), "unexpected");
}

async fn joined(s: &TestServer, identity: &str, room: &str) -> (Socket, Value) {
    let (mut socket, _) = tokio_tungstenite::connect_async(s.signaling_url())
        .await
        .expect("websocket");
    send(
        &mut socket,
        json!({"type": "join", "version": 1, "token": s.token(identity, None), "room": room}),
    )
    .await;
    let joined = next(&mut socket).await.expect("joined");
    assert_eq!(joined["type"], "joined", "{joined}");
    (socket, joined)
}

/// A real first offer (str0m's, through salon-client's media session):
/// data channel, a microphone and a camera.
async fn first_offer() -> (MediaSession, salon_client::Offer) {
    let mut media = MediaSession::bind("127.0.0.1".parse().unwrap(), "protocol-test")
        .await
        .expect("a media session");
    media.publish(TrackSpec::audio("mic")).unwrap();
    media.publish(TrackSpec::video("camera")).unwrap();
    let offer = media.create_offer().expect("an offer");
    (media, offer)
}

fn offer_message(revision: u32, offer: &salon_client::Offer) -> Value {
    json!({
        "type": "offer",
        "revision": revision,
        "sdp": offer.sdp,
        "publish": offer.publish,
        "subscribe": offer.subscribe,
    })
}

/// Expect the refusal of offer `revision`: a 534xx error naming it.
#[track_caller]
fn assert_refused(message: &Option<Value>, revision: u32, code: u64, says: &str) {
    let message = message.as_ref().expect("a message, not a closed socket");
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["code"], code, "{message}");
    assert_eq!(message["revision"], revision, "{message}");
    let text = message["message"].as_str().unwrap_or_default();
    assert!(text.contains(says), "expected '{says}' in {message}");
}

async fn published_tracks(s: &TestServer, joined: &Value) -> usize {
    let room = joined["room"]["sid"].as_str().unwrap();
    let me = joined["participant"]["sid"].as_str().unwrap();
    let (_, tracks) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{me}/PublishedTracks"
        ))
        .await;
    tracks["published_tracks"].as_array().expect("a list").len()
}

#[tokio::test]
async fn a_leave_with_a_field_this_server_does_not_know_still_leaves() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "evolve").await;
    send(&mut socket, json!({"type": "leave", "reason": "lunch"})).await;
    let goodbye = next(&mut socket).await.expect("disconnected");
    assert_eq!(goodbye["type"], "disconnected", "{goodbye}");
    assert_eq!(goodbye["reason"], "left", "{goodbye}");
    assert!(next(&mut socket).await.is_none(), "the socket closes");
}

#[tokio::test]
async fn an_unknown_message_type_is_named_and_the_session_goes_on() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "evolve").await;
    send(&mut socket, json!({"type": "set_video_profile", "fps": 15})).await;
    let error = next(&mut socket).await.expect("an error");
    assert_eq!(error["code"], 53004, "{error}");
    let text = error["message"].as_str().unwrap();
    assert!(
        text.contains("'set_video_profile'") && text.contains("leave"),
        "{text}"
    );
    nothing_else(&mut socket).await;
}

#[tokio::test]
async fn the_answer_carries_the_candidates_in_every_bundled_m_line() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "candidates").await;
    let (_media, offer) = first_offer().await;
    send(&mut socket, offer_message(1, &offer)).await;
    let answer = next(&mut socket).await.expect("an answer");
    assert_eq!(answer["type"], "answer", "{answer}");
    let sdp = answer["sdp"].as_str().unwrap();
    let sections: Vec<&str> = sdp.split("\r\nm=").skip(1).collect();
    assert_eq!(sections.len(), 3, "audio, video, data:\n{sdp}");
    for section in sections {
        assert!(section.contains("\r\na=candidate:"), "{section}");
        assert!(section.contains("\r\na=end-of-candidates\r\n"), "{section}");
    }
    assert!(!sdp.contains("trickle"), "{sdp}");
}

#[tokio::test]
async fn a_replayed_revision_is_refused_and_applies_nothing() {
    let s = TestServer::start().await;
    let (mut socket, joined) = joined(&s, "alice", "revisions").await;
    let (_media, offer) = first_offer().await;
    send(&mut socket, offer_message(4, &offer)).await;
    let answer = next(&mut socket).await.expect("an answer");
    assert_eq!(
        (&answer["type"], &answer["revision"]),
        (&json!("answer"), &json!(4))
    );
    assert_eq!(published_tracks(&s, &joined).await, 2);

    // The same offer again (as a client that resent it after a resume
    // would): its tracks must not be published twice.
    for revision in [4, 3] {
        send(&mut socket, offer_message(revision, &offer)).await;
        assert_refused(&next(&mut socket).await, revision, 53403, "not after 4");
    }
    nothing_else(&mut socket).await;
    assert_eq!(published_tracks(&s, &joined).await, 2);
}

#[tokio::test]
async fn an_offer_that_declares_what_its_sdp_lacks_is_refused_before_anything_is_published() {
    let s = TestServer::start().await;
    let (mut watcher, _) = joined(&s, "bob", "declarations").await;
    let (mut socket, joined) = joined(&s, "alice", "declarations").await;
    assert_eq!(
        next(&mut watcher).await.unwrap()["type"],
        "participant_connected"
    );
    let (_media, offer) = first_offer().await;
    let audio_mid = offer.publish[0].mid.clone();

    let mut not_there = offer_message(1, &offer);
    not_there["publish"][1]["mid"] = json!("nope");
    send(&mut socket, not_there).await;
    assert_refused(
        &next(&mut socket).await,
        1,
        53403,
        "mid nope is not an m-line",
    );

    let mut wrong_kind = offer_message(2, &offer);
    wrong_kind["publish"] = json!([{"mid": audio_mid, "name": "cam", "kind": "video"}]);
    send(&mut socket, wrong_kind).await;
    assert_refused(&next(&mut socket).await, 2, 53403, "is audio");

    // A publish m-line declared as a subscription: recvonly is needed.
    let mut wrong_direction = offer_message(3, &offer);
    wrong_direction["publish"] = json!([]);
    wrong_direction["subscribe"] = json!([{"mid": audio_mid, "track": TrackSid::random()}]);
    send(&mut socket, wrong_direction).await;
    assert_refused(&next(&mut socket).await, 3, 53403, "is sendonly");

    assert_eq!(published_tracks(&s, &joined).await, 0);
    // Bob heard of no track: nothing was published and taken back.
    nothing_else(&mut watcher).await;

    // The offer as it is goes through.
    send(&mut socket, offer_message(4, &offer)).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "answer");
    assert_eq!(published_tracks(&s, &joined).await, 2);
}

#[tokio::test]
async fn the_first_offer_must_have_a_data_channel() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "data").await;
    let (_media, offer) = first_offer().await;
    // Cut the m=application section out of the SDP and the BUNDLE group.
    let mut sections: Vec<&str> = offer.sdp.split("\r\nm=").collect();
    let data = sections
        .iter()
        .position(|s| s.starts_with("application"))
        .expect("a data channel");
    let data_mid = sections[data]
        .split("\r\n")
        .find_map(|l| l.strip_prefix("a=mid:"))
        .expect("its mid")
        .to_owned();
    sections.remove(data);
    let sdp = sections.join("\r\nm=");
    let group = sdp
        .split("\r\n")
        .find(|l| l.starts_with("a=group:BUNDLE"))
        .unwrap();
    let without: Vec<&str> = group.split(' ').filter(|m| *m != data_mid).collect();
    let sdp = sdp.replacen(group, &without.join(" "), 1);
    let mut message = offer_message(1, &offer);
    message["sdp"] = json!(sdp);
    send(&mut socket, message).await;
    assert_refused(&next(&mut socket).await, 1, 53403, "data channel");
}

#[tokio::test]
async fn an_sdp_that_does_not_parse_is_refused_with_its_line() {
    let s = TestServer::start().await;
    let (mut socket, _) = joined(&s, "alice", "parse").await;
    let (_media, offer) = first_offer().await;
    let mut message = offer_message(1, &offer);
    message["sdp"] = json!(offer.sdp.replacen("s=-", "s is for session", 1));
    send(&mut socket, message).await;
    let refusal = next(&mut socket).await;
    assert_refused(&refusal, 1, 53403, "line 3");
    let text = refusal.unwrap()["message"].to_string();
    assert!(!text.contains("0x") && !text.contains("Pointer"), "{text}");
}

#[tokio::test]
async fn a_keepalive_timeout_ends_with_53002_in_one_message() {
    let s = TestServer::with(Options {
        signaling: SignalingConfig {
            idle_timeout: Duration::from_millis(600),
            ..SignalingConfig::default()
        },
        ..Options::default()
    })
    .await;
    let (mut socket, _) = joined(&s, "alice", "quiet").await;
    let goodbye = next(&mut socket).await.expect("disconnected");
    assert_eq!(goodbye["type"], "disconnected", "{goodbye}");
    assert_eq!(goodbye["reason"], "failed", "{goodbye}");
    assert_eq!(goodbye["code"], 53002, "{goodbye}");
    assert!(next(&mut socket).await.is_none(), "then the socket closes");
}

#[tokio::test]
async fn a_duplicate_identity_hears_nothing_of_the_session_it_replaced() {
    let s = TestServer::start().await;
    let (mut old, old_joined) = joined(&s, "alice", "twice").await;
    let (mut new, new_joined) = joined(&s, "alice", "twice").await;
    assert_ne!(
        old_joined["participant"]["sid"],
        new_joined["participant"]["sid"]
    );
    assert_eq!(new_joined["participants"], json!([]), "{new_joined}");
    let goodbye = next(&mut old).await.expect("the old one is told");
    assert_eq!(goodbye["code"], 53205, "{goodbye}");
    // The new session never saw the old participant: no
    // participant_disconnected for it.
    nothing_else(&mut new).await;
}

/// A subscription to a track the session knows is checked against the
/// track's kind: audio on a video m-line is refused.
#[tokio::test]
async fn a_subscription_goes_on_an_m_line_of_its_kind() {
    let s = TestServer::start().await;
    let (mut alice, _) = joined(&s, "alice", "kinds").await;
    let (_alice_media, alice_offer) = first_offer().await;
    send(&mut alice, offer_message(1, &alice_offer)).await;
    assert_eq!(next(&mut alice).await.unwrap()["type"], "answer");

    let (mut bob, _) = joined(&s, "bob", "kinds").await;
    let mut audio = None;
    while audio.is_none() {
        let message = next(&mut bob).await.expect("subscribed");
        if message["type"] == "subscribed" && message["track"]["kind"] == "audio" {
            audio = Some(message["track"]["sid"].as_str().unwrap().to_owned());
        }
    }
    let audio: TrackSid = audio.unwrap().parse().unwrap();
    let mut media = MediaSession::bind("127.0.0.1".parse().unwrap(), "protocol-test")
        .await
        .unwrap();
    media.subscribe(TrackSid::random(), TrackKind::Video);
    let offer = media.create_offer().expect("an offer");
    let mut message = offer_message(1, &offer);
    message["subscribe"][0]["track"] = json!(audio);
    send(&mut bob, message).await;
    loop {
        let message = next(&mut bob).await;
        if message.as_ref().is_some_and(|m| m["type"] == "subscribed") {
            continue;
        }
        assert_refused(
            &message,
            1,
            53403,
            "is video, but the offer subscribes audio",
        );
        break;
    }
}

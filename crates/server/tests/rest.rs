//! The `/v1` REST API against a real server and database.

mod common;

use std::time::Duration;

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use salon_room::{DisconnectReason, TrackKind};
use salon_sid::TrackSid;
use salon_store::Timestamp;
use serde_json::Value;

#[tokio::test]
async fn creating_a_room_returns_twilios_fields_with_absolute_urls() {
    let s = TestServer::start().await;
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "Daily stand-up"),
                ("Type", "group-small"),
                ("MaxParticipants", "3"),
                ("EmptyRoomTimeout", "10"),
                ("UnusedRoomTimeout", "2"),
                ("MaxParticipantDuration", "3600"),
                ("StatusCallback", "https://app.example.com/events"),
                ("StatusCallbackMethod", "GET"),
                ("VideoCodecs", "VP8"),
                ("VideoCodecs", "H264"),
                ("AudioOnly", "false"),
                ("RecordParticipantsOnConnect", "false"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let sid = room["sid"].as_str().unwrap();
    assert!(sid.starts_with("RM") && sid.len() == 34);
    assert_eq!(room["status"], "in-progress");
    assert_eq!(room["unique_name"], "Daily stand-up");
    assert_eq!(room["type"], "group-small");
    assert_eq!(room["max_participants"], 3);
    assert_eq!(room["empty_room_timeout"], 10);
    assert_eq!(room["unused_room_timeout"], 2);
    assert_eq!(room["max_participant_duration"], 3600);
    assert_eq!(room["status_callback"], "https://app.example.com/events");
    assert_eq!(room["status_callback_method"], "GET");
    assert_eq!(room["video_codecs"], serde_json::json!(["VP8", "H264"]));
    assert_eq!(room["account_sid"], s.account.as_str());
    assert_eq!(room["end_time"], Value::Null);
    assert_eq!(room["duration"], Value::Null);
    assert_eq!(room["url"], format!("http://salon.test/v1/Rooms/{sid}"));
    assert_eq!(
        room["links"]["participants"],
        format!("http://salon.test/v1/Rooms/{sid}/Participants")
    );
    let created = room["date_created"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok()
    );
    assert!(
        created.ends_with('Z') && created.len() == 20,
        "ISO 8601 UTC, whole seconds: {created}"
    );
}

#[tokio::test]
async fn a_room_without_a_name_is_named_by_its_sid_and_json_bodies_work() {
    let s = TestServer::start().await;
    let response = s
        .http
        .post(format!("{}/v1/Rooms", s.url))
        .basic_auth(s.key, Some(&s.secret))
        .json(&serde_json::json!({"Type": "go", "MaxParticipants": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let room: Value = response.json().await.unwrap();
    assert_eq!(room["unique_name"], room["sid"]);
    assert_eq!(room["type"], "go");
}

#[tokio::test]
async fn every_bad_creation_parameter_gets_its_twilio_code() {
    let s = TestServer::start().await;
    let long = "n".repeat(129);
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, u64);
    let cases: &[Case] = &[
        (&[("Type", "conference")], 400, 53108),
        (&[("MaxParticipants", "0")], 400, 53107),
        (&[("MaxParticipants", "51")], 400, 53107),
        (&[("Type", "go"), ("MaxParticipants", "3")], 400, 53107),
        (&[("MaxParticipants", "lots")], 400, 53107),
        (&[("MaxParticipants", "99999999999999999999")], 400, 53107),
        (&[("EmptyRoomTimeout", "0")], 400, 53109),
        (&[("UnusedRoomTimeout", "61")], 400, 53109),
        (&[("MaxParticipantDuration", "599")], 400, 53109),
        (&[("MaxParticipantDuration", "86401")], 400, 53109),
        (&[("EmptyRoomTimeout", "-5")], 400, 53109),
        (&[("StatusCallbackMethod", "PUT")], 400, 53110),
        (&[("StatusCallback", "not a url")], 400, 53111),
        (&[("StatusCallback", "ftp://example.com/x")], 400, 53111),
        (&[("UniqueName", &long)], 400, 53101),
        (&[("UniqueName", "tab\there")], 400, 53102),
        (
            &[("UniqueName", "RM00000000000000000000000000000001")],
            400,
            53100,
        ),
        (&[("VideoCodecs", "VP9")], 400, 20001),
        (&[("AudioOnly", "maybe")], 400, 20001),
        (&[("MediaRegion", "Mars One")], 400, 53115),
    ];
    for (form, status, code) in cases {
        let response = s.post("/v1/Rooms", form).await;
        assert_error(&response, *status, *code);
    }
    // Nothing was created by any of them.
    let (_, list) = s.get("/v1/Rooms").await;
    assert_eq!(list["rooms"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_unique_name_in_progress_cannot_be_taken_twice_but_can_be_reused_after() {
    let s = TestServer::start().await;
    let first = s.create_room("weekly").await;
    assert_error(
        &s.post("/v1/Rooms", &[("UniqueName", "weekly")]).await,
        400,
        53113,
    );
    let (status, _) = s
        .post(&format!("/v1/Rooms/{first}"), &[("Status", "completed")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = s.create_room("weekly").await;
    assert_ne!(first, second);
}

#[tokio::test]
async fn rooms_are_fetched_by_sid_always_and_by_name_only_while_in_progress() {
    let s = TestServer::start().await;
    let sid = s.create_room("team sync").await;
    let (status, by_sid) = s.get(&format!("/v1/Rooms/{sid}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, by_name) = s.get("/v1/Rooms/team%20sync").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_sid, by_name);

    let (status, completed) = s
        .post(&format!("/v1/Rooms/{sid}"), &[("Status", "completed")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(completed["status"], "completed");
    assert!(completed["end_time"].is_string());
    assert!(completed["duration"].is_u64());

    assert_eq!(
        s.get(&format!("/v1/Rooms/{sid}")).await.1["status"],
        "completed"
    );
    assert_error(&s.get("/v1/Rooms/team%20sync").await, 404, 20404);
    // Completing again is harmless and answers the same room.
    let (status, again) = s
        .post(&format!("/v1/Rooms/{sid}"), &[("Status", "completed")])
        .await;
    assert_eq!(
        (status, again["end_time"].clone()),
        (StatusCode::OK, completed["end_time"].clone())
    );
}

#[tokio::test]
async fn updating_a_room_to_anything_but_completed_is_53112() {
    let s = TestServer::start().await;
    let sid = s.create_room("r").await;
    assert_error(
        &s.post(&format!("/v1/Rooms/{sid}"), &[("Status", "in-progress")])
            .await,
        400,
        53112,
    );
    assert_error(&s.post(&format!("/v1/Rooms/{sid}"), &[]).await, 400, 53112);
    assert_error(&s.get("/v1/Rooms?Status=finished").await, 400, 53112);
    assert_eq!(
        s.get(&format!("/v1/Rooms/{sid}")).await.1["status"],
        "in-progress"
    );
}

#[tokio::test]
async fn unknown_rooms_and_malformed_sids_are_20404() {
    let s = TestServer::start().await;
    assert_error(
        &s.get("/v1/Rooms/RMffffffffffffffffffffffffffffffff").await,
        404,
        20404,
    );
    assert_error(&s.get("/v1/Rooms/RMnothex").await, 404, 20404);
    assert_error(
        &s.post(
            "/v1/Rooms/RMffffffffffffffffffffffffffffffff",
            &[("Status", "completed")],
        )
        .await,
        404,
        20404,
    );
    let room = s.create_room("r").await;
    assert_error(
        &s.get(&format!("/v1/Rooms/{room}/Participants/PA123")).await,
        404,
        20404,
    );
    assert_error(
        &s.get(&format!(
            "/v1/Rooms/{room}/Participants/nobody/PublishedTracks"
        ))
        .await,
        404,
        20404,
    );
    assert_error(
        &s.get("/v1/Rooms/RMffffffffffffffffffffffffffffffff/Participants")
            .await,
        404,
        20404,
    );
    assert_error(&s.get("/v1/Nothing/Here").await, 404, 20404);
    assert_error(&s.get("/v1/Rooms/%FF%FE").await, 404, 20404);
}

#[tokio::test]
async fn lists_filter_by_status_and_name_and_page_through_next_page_url() {
    let s = TestServer::start().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(s.create_room(&format!("room-{i}")).await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (_, done) = s
        .post(
            &format!("/v1/Rooms/{}", created[0]),
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(done["status"], "completed");

    let (status, mut page) = s.rest(Method::GET, "/v1/Rooms", &[("PageSize", "2")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["meta"]["key"], "rooms");
    assert_eq!(page["meta"]["page_size"], 2);
    assert_eq!(
        page["meta"]["first_page_url"],
        "http://salon.test/v1/Rooms?Status=in-progress&PageSize=2&Page=0"
    );
    let mut seen = Vec::new();
    loop {
        for room in page["rooms"].as_array().unwrap() {
            assert_eq!(room["status"], "in-progress");
            seen.push(room["sid"].as_str().unwrap().to_owned());
        }
        match page["meta"]["next_page_url"].as_str() {
            Some(next) => page = s.follow(next).await.1,
            None => break,
        }
    }
    let expected: Vec<String> = created[1..]
        .iter()
        .rev()
        .map(|sid| sid.to_string())
        .collect();
    assert_eq!(seen, expected, "every room in progress, newest first, once");

    let (_, completed) = s
        .rest(Method::GET, "/v1/Rooms", &[("Status", "completed")])
        .await;
    assert_eq!(completed["rooms"].as_array().unwrap().len(), 1);
    let (_, named) = s
        .rest(Method::GET, "/v1/Rooms", &[("UniqueName", "room-3")])
        .await;
    assert_eq!(named["rooms"][0]["sid"], created[3].as_str());

    let future = "2999-01-01T00:00:00Z";
    let (_, none) = s
        .rest(Method::GET, "/v1/Rooms", &[("DateCreatedAfter", future)])
        .await;
    assert_eq!(none["rooms"].as_array().unwrap().len(), 0);
    let (_, all) = s
        .rest(Method::GET, "/v1/Rooms", &[("DateCreatedBefore", future)])
        .await;
    assert_eq!(all["rooms"].as_array().unwrap().len(), 6);

    assert_error(
        &s.rest(Method::GET, "/v1/Rooms", &[("PageSize", "0")]).await,
        400,
        20001,
    );
    assert_error(
        &s.rest(Method::GET, "/v1/Rooms", &[("PageToken", "garbage")])
            .await,
        400,
        20001,
    );
    assert_error(
        &s.rest(
            Method::GET,
            "/v1/Rooms",
            &[("DateCreatedAfter", "last week")],
        )
        .await,
        400,
        20001,
    );
}

#[tokio::test]
async fn participants_and_their_tracks_show_the_live_truth() {
    let s = TestServer::start().await;
    let room = s.create_room("live").await;
    let alice = s.join(room, "alice").await;
    let bob = s.join(room, "bob").await;
    let camera = TrackSid::random();
    s.state
        .rooms
        .publish(alice, camera, "camera".into(), TrackKind::Video, true)
        .await
        .unwrap();

    let (status, list) = s.get(&format!("/v1/Rooms/{room}/Participants")).await;
    assert_eq!(status, StatusCode::OK);
    let participants = list["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    // Both joined within the same millisecond, so the listing order between
    // them is by sid; look Alice up by identity instead.
    let listed_alice = participants
        .iter()
        .find(|p| p["identity"] == "alice")
        .expect("alice is listed");
    assert_eq!(listed_alice["sid"], alice.as_str());
    assert_eq!(listed_alice["status"], "connected");
    assert_eq!(
        listed_alice["links"]["published_tracks"],
        format!("http://salon.test/v1/Rooms/{room}/Participants/{alice}/PublishedTracks")
    );

    let (_, by_identity) = s.get(&format!("/v1/Rooms/{room}/Participants/alice")).await;
    assert_eq!(by_identity["sid"], alice.as_str());
    let (_, by_name_of_room) = s.get(&format!("/v1/Rooms/live/Participants/{bob}")).await;
    assert_eq!(by_name_of_room["identity"], "bob");

    let (_, published) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{alice}/PublishedTracks"
        ))
        .await;
    assert_eq!(published["meta"]["key"], "published_tracks");
    assert_eq!(published["published_tracks"][0]["sid"], camera.as_str());
    assert_eq!(published["published_tracks"][0]["kind"], "video");
    assert_eq!(published["published_tracks"][0]["name"], "camera");
    let (status, track) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{alice}/PublishedTracks/{camera}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(track["enabled"], true);

    let (_, subscribed) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{bob}/SubscribedTracks"
        ))
        .await;
    assert_eq!(subscribed["subscribed_tracks"][0]["sid"], camera.as_str());
    assert_eq!(
        subscribed["subscribed_tracks"][0]["publisher_sid"],
        alice.as_str()
    );
    let (status, _) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{bob}/SubscribedTracks/{camera}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &s.get(&format!(
            "/v1/Rooms/{room}/Participants/{bob}/PublishedTracks/{camera}"
        ))
        .await,
        404,
        20404,
    );
    assert_error(
        &s.get(&format!(
            "/v1/Rooms/{room}/Participants/{bob}/PublishedTracks/not-a-sid"
        ))
        .await,
        404,
        20404,
    );

    // Kick Alice: she is disconnected, her track and Bob's subscription go.
    let (status, kicked) = s
        .post(
            &format!("/v1/Rooms/{room}/Participants/{alice}"),
            &[("Status", "disconnected")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{kicked}");
    assert_eq!(kicked["status"], "disconnected");
    assert!(kicked["end_time"].is_string());
    assert!(
        s.state
            .rooms
            .call(move |rooms, _| rooms.participant(alice).is_none())
            .await
            .unwrap()
    );
    let (_, subscribed) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{bob}/SubscribedTracks"
        ))
        .await;
    assert_eq!(subscribed["subscribed_tracks"].as_array().unwrap().len(), 0);
    let (_, connected) = s
        .rest(
            Method::GET,
            &format!("/v1/Rooms/{room}/Participants"),
            &[("Status", "connected")],
        )
        .await;
    assert_eq!(connected["participants"].as_array().unwrap().len(), 1);
    assert_error(
        &s.get(&format!("/v1/Rooms/{room}/Participants/alice")).await,
        404,
        20404,
    );
    assert_error(
        &s.post(
            &format!("/v1/Rooms/{room}/Participants/{bob}"),
            &[("Status", "connected")],
        )
        .await,
        400,
        20001,
    );

    // Completing the room disconnects Bob.
    s.post(&format!("/v1/Rooms/{room}"), &[("Status", "completed")])
        .await;
    let (_, bob_now) = s.get(&format!("/v1/Rooms/{room}/Participants/{bob}")).await;
    assert_eq!(bob_now["status"], "disconnected");
    assert_eq!(
        s.state
            .rooms
            .call(|rooms, _| rooms.participant_count())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn rest_calls_need_valid_basic_credentials() {
    let s = TestServer::start().await;
    let url = format!("{}/v1/Rooms", s.url);
    let anonymous = s.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"Salon\""
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], 20003);

    for (user, password) in [
        (s.key.to_string(), "wrong".to_owned()),
        (s.account.to_string(), s.secret.clone()),
        (
            "SKffffffffffffffffffffffffffffffff".to_owned(),
            s.secret.clone(),
        ),
        ("nobody".to_owned(), "x".to_owned()),
    ] {
        let response = TestServer::send(s.http.get(&url).basic_auth(user, Some(password))).await;
        assert_error(&response, 401, 20003);
    }
    let garbage = TestServer::send(s.http.get(&url).header("authorization", "Basic !!!")).await;
    assert_error(&garbage, 401, 20003);

    // The account SID and auth token work too.
    let (status, _) =
        TestServer::send(s.http.get(&url).basic_auth(s.account, Some(&s.auth_token))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_key_in_the_database_takes_effect_within_a_second() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/v1/Rooms").await.0, StatusCode::OK);
    // Another process (here: another connection pool) revokes the key.
    let other = salon_store::Store::open(s.dir.path()).await.unwrap();
    assert!(other.revoke_api_key(s.key, Timestamp::now()).await.unwrap());
    let mut refused = false;
    for _ in 0..50 {
        if s.get("/v1/Rooms").await.0 == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "revoked key still accepted after a second");
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_never_a_500() {
    let s = TestServer::start().await;
    let url = format!("{}/v1/Rooms", s.url);
    let post = || s.http.post(&url).basic_auth(s.key, Some(&s.secret));

    let big = "a".repeat(70 * 1024);
    assert_error(
        &TestServer::send(post().body(format!("UniqueName={big}"))).await,
        413,
        20413,
    );
    // Chunked, without a Content-Length, is cut off at the limit too.
    let (status, body) = raw_chunked(&s, 10, 8 * 1024).await;
    assert_eq!(
        (status, body["code"].clone()),
        (413, Value::from(20413)),
        "{body}"
    );

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{not json".to_vec()),
        ("application/json", b"[1,2]".to_vec()),
        (
            "application/json",
            br#"{"UniqueName": {"nested": 1}}"#.to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"UniqueName=%C3%28".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            vec![b'U', b'=', 0xff, 0xfe],
        ),
    ];
    for (content_type, body) in cases {
        let response =
            TestServer::send(post().header("content-type", content_type).body(body)).await;
        assert_error(&response, 400, 20001);
    }
    assert_error(
        &TestServer::send(s.http.delete(&url).basic_auth(s.key, Some(&s.secret))).await,
        405,
        20004,
    );
    let (status, _) = s.get("/v1/Rooms").await;
    assert_eq!(status, StatusCode::OK, "the server is fine afterwards");
}

/// Send a chunked request by hand (no Content-Length) and return the status
/// line and body.
async fn raw_chunked(s: &TestServer, chunks: usize, chunk: usize) -> (u16, Value) {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", s.key, s.secret));
    let head = format!(
        "POST /v1/Rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        let data = vec![b'x'; chunk];
        // The server may stop reading once over the limit; that is the point.
        if stream
            .write_all(format!("{chunk:x}\r\n").as_bytes())
            .await
            .is_err()
            || stream.write_all(&data).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // The body may itself be chunked: take the JSON object inside.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_participant_that_left_is_reported_disconnected_with_its_duration() {
    let s = TestServer::start().await;
    let room = s.create_room("r").await;
    let p = s.join(room, "p").await;
    s.state
        .rooms
        .disconnect(p, DisconnectReason::Left)
        .await
        .unwrap();
    let (_, record) = s.get(&format!("/v1/Rooms/{room}/Participants/{p}")).await;
    assert_eq!(record["status"], "disconnected");
    assert!(record["duration"].is_u64());
    assert!(record["start_time"].is_string());
}

//! Health, metrics, the tutorial routes, restarts and timers.

mod common;

use std::time::Duration;

use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;
use salon_room::{Join, RoomRef};
use salon_sid::{ParticipantSid, RoomSid};
use serde_json::{Value, json};

#[tokio::test]
async fn healthz_answers_ok() {
    let s = TestServer::start().await;
    let response = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn metrics_count_rooms_participants_requests_and_disconnections() {
    let s = TestServer::start().await;
    let room = s.create_room("metered").await;
    s.join(room, "a").await;
    s.join(room, "b").await;
    s.get("/v1/Rooms/RMffffffffffffffffffffffffffffffff").await;
    let _ = s
        .http
        .get(format!("{}/v1/Rooms", s.url))
        .send()
        .await
        .unwrap();

    let response = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for line in [
        "salon_rooms_in_progress 1",
        "salon_participants_connected 2",
        r#"salon_http_requests_total{route="/v1/Rooms",status="201"} 1"#,
        r#"salon_http_requests_total{route="/v1/Rooms/{room}",status="404"} 1"#,
        r#"salon_http_requests_total{route="/v1/Rooms",status="401"} 1"#,
        r#"salon_token_verifications_total{result="ok"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }

    s.post(&format!("/v1/Rooms/{room}"), &[("Status", "completed")])
        .await;
    let text = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "salon_rooms_in_progress 0",
        "salon_participants_connected 0",
        r#"salon_rooms_ended_total{reason="completed"} 1"#,
        r#"salon_participants_disconnected_total{reason="room-completed"} 2"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn create_token_mints_a_token_that_verifies_for_the_room() {
    let s = TestServer::start().await;
    // JSON, as the tutorial's browser code sends it.
    let (status, body) = TestServer::send(
        s.http
            .post(format!("{}/create-token", s.url))
            .json(&json!({"identity": "alice", "roomName": "standup"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let verified = s
        .state
        .credentials
        .verify(body["token"].as_str().unwrap())
        .expect("token verifies");
    assert_eq!(verified.identity, "alice");
    assert_eq!(verified.room.as_deref(), Some("standup"));
    assert_eq!(verified.key, s.key);
    assert_eq!(verified.expires_at - verified.issued_at.unwrap(), 14_400);

    // Form bodies work too.
    let (status, body) = TestServer::send(
        s.http
            .post(format!("{}/create-token", s.url))
            .form(&[("identity", "bob"), ("roomName", "standup")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        s.state
            .credentials
            .verify(body["token"].as_str().unwrap())
            .is_ok()
    );
}

#[tokio::test]
async fn create_token_explains_what_is_missing() {
    let s = TestServer::start().await;
    let url = format!("{}/create-token", s.url);
    let missing = TestServer::send(s.http.post(&url).json(&json!({"roomName": "x"}))).await;
    assert_error(&missing, 400, 53200);
    assert_eq!(missing.1["message"], "identity is required");
    assert_error(
        &TestServer::send(s.http.post(&url).json(&json!({"identity": ""}))).await,
        400,
        53200,
    );
    let long = "i".repeat(129);
    assert_error(
        &TestServer::send(s.http.post(&url).json(&json!({"identity": long}))).await,
        400,
        53201,
    );
    let long_room = "r".repeat(129);
    assert_error(
        &TestServer::send(
            s.http
                .post(&url)
                .json(&json!({"identity": "a", "roomName": long_room})),
        )
        .await,
        400,
        53101,
    );
    assert_error(
        &TestServer::send(
            s.http
                .post(&url)
                .header("content-type", "application/json")
                .body("{oops"),
        )
        .await,
        400,
        20001,
    );
}

#[tokio::test]
async fn auth_token_answers_in_the_tutorials_shape() {
    let s = TestServer::start().await;
    let (status, body) = TestServer::send(
        s.http
            .post(format!("{}/auth/token", s.url))
            .json(&json!({"username": "carol", "roomSid": "RM00000000000000000000000000000001"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["username"], "carol");
    assert_eq!(body["roomSid"], "RM00000000000000000000000000000001");
    let token = s
        .state
        .credentials
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        token.room.as_deref(),
        Some("RM00000000000000000000000000000001")
    );
    assert_eq!(
        token.expires_at - token.issued_at.unwrap(),
        14_400,
        "four hours, as the tutorial"
    );
}

#[tokio::test]
async fn the_tutorial_rooms_api_works_in_its_shapes() {
    let s = TestServer::start().await;
    let (_, none) = TestServer::send(s.http.get(format!("{}/rooms", s.url))).await;
    assert_eq!(
        none,
        json!({"message": "No active rooms found", "activeRooms": []})
    );

    let (status, room) = TestServer::send(
        s.http
            .post(format!("{}/rooms/create", s.url))
            .json(&json!({"roomName": "book club"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_eq!(
        room["uniqueName"], "book club",
        "camelCase, as twilio-node serialises rooms"
    );
    assert_eq!(room["type"], "group");
    let sid = room["sid"].as_str().unwrap().to_owned();
    assert!(room["links"]["participants"].is_string());

    let (_, active) = TestServer::send(s.http.get(format!("{}/rooms", s.url))).await;
    assert_eq!(
        active,
        json!({"activeRooms": [{"sid": sid, "name": "book club"}]})
    );
    let (_, fetched) = TestServer::send(s.http.get(format!("{}/rooms/{sid}", s.url))).await;
    assert_eq!(fetched["room"]["sid"], sid);
    assert_eq!(fetched["room"]["status"], "in-progress");

    let duplicate = TestServer::send(
        s.http
            .post(format!("{}/rooms/create", s.url))
            .json(&json!({"roomName": "book club"})),
    )
    .await;
    assert_error(&duplicate, 400, 53113);

    let (status, closed) =
        TestServer::send(s.http.post(format!("{}/rooms/complete/{sid}", s.url))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        closed,
        json!({"closedRoom": {"sid": sid, "name": "book club"}})
    );
    let (_, fetched) = TestServer::send(s.http.get(format!("{}/rooms/{sid}", s.url))).await;
    assert_eq!(fetched["room"]["status"], "completed");
    assert_error(
        &TestServer::send(s.http.get(format!(
            "{}/rooms/RMffffffffffffffffffffffffffffffff",
            s.url
        )))
        .await,
        404,
        20404,
    );
}

#[tokio::test]
async fn tutorial_routes_answer_cors_preflights_for_listed_origins_only() {
    let s = TestServer::with(Options {
        cors_origins: vec!["http://localhost:5173".into()],
        ..Options::default()
    })
    .await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/create-token", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let response = preflight("http://localhost:5173").await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    // Another page gets no permission from the browser's point of view.
    let response = preflight("https://evil.example").await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        response.headers()
    );
}

#[tokio::test]
async fn web_pages_of_other_origins_cannot_mint_tokens_or_complete_rooms() {
    let s = TestServer::start().await;
    let room = s.create_room("standup").await;
    // A page on some other site posts to the developer's local Salon: the
    // browser sends it (a "simple" request needs no preflight) with its
    // Origin, and the server refuses it.
    for (path, body) in [
        (
            "/create-token",
            json!({"identity": "mallory", "roomName": "standup"}),
        ),
        ("/rooms/complete/standup", json!({})),
    ] {
        let response = TestServer::send(
            s.http
                .post(format!("{}{path}", s.url))
                .header("origin", "https://evil.example")
                .json(&body),
        )
        .await;
        assert_error(&response, 403, 20403);
    }
    let (_, record) = s.get(&format!("/v1/Rooms/{room}")).await;
    assert_eq!(
        record["status"], "in-progress",
        "the room was not completed"
    );
    // A site whose name was pointed at this machine (DNS rebinding) is
    // same-origin to the browser, and still refused.
    let response = TestServer::send(
        s.http
            .post(format!("{}/create-token", s.url))
            .header("origin", "http://rebound.evil.example:3000")
            .header("host", "rebound.evil.example:3000")
            .json(&json!({"identity": "mallory"})),
    )
    .await;
    assert_error(&response, 403, 20403);
    // The demo app's own page (same origin, by address) and clients that
    // are not browsers are served.
    let host = s.addr.to_string();
    let response = TestServer::send(
        s.http
            .post(format!("{}/create-token", s.url))
            .header("origin", format!("http://{host}"))
            .json(&json!({"identity": "alice"})),
    )
    .await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    let response = TestServer::send(
        s.http
            .post(format!("{}/create-token", s.url))
            .json(&json!({"identity": "bob"})),
    )
    .await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
}

#[tokio::test]
async fn tutorial_routes_can_be_switched_off() {
    let s = TestServer::with(Options {
        app_routes: false,
        ..Options::default()
    })
    .await;
    let response = TestServer::send(
        s.http
            .post(format!("{}/create-token", s.url))
            .json(&json!({"identity": "a"})),
    )
    .await;
    assert_error(&response, 404, 20404);
    assert_eq!(
        s.get("/v1/Rooms").await.0,
        StatusCode::OK,
        "the REST API stays"
    );
}

#[tokio::test]
async fn a_restart_closes_what_the_previous_process_left_in_progress() {
    let s = TestServer::start().await;
    let room = s.create_room("before").await;
    let p = s.join(room, "p").await;
    // Simulate a crash: the server's state is dropped without the graceful
    // path that ends rooms. Dropping the runtime's tasks would be the real
    // thing; here the store is simply reopened by a new server while the
    // rows still say in-progress.
    let dir = tempfile::tempdir().unwrap();
    copy_database(s.dir.path(), dir.path()).await;
    let restarted = TestServer::in_dir(dir, Options::default()).await;
    let (_, room_now) = restarted.get(&format!("/v1/Rooms/{room}")).await;
    assert_eq!(room_now["status"], "completed");
    assert!(room_now["end_time"].is_string());
    let (_, p_now) = restarted
        .get(&format!("/v1/Rooms/{room}/Participants/{p}"))
        .await;
    assert_eq!(p_now["status"], "disconnected");
    // The name is free again.
    restarted.create_room("before").await;
}

/// Copy a live database (with its WAL) as a crash would leave it.
async fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    for name in ["salon.db", "salon.db-wal", "salon.db-shm"] {
        let source = from.join(name);
        if source.exists() {
            tokio::fs::copy(&source, to.join(name)).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_graceful_stop_ends_every_room() {
    let s = TestServer::start().await;
    let room = s.create_room("closing time").await;
    s.join(room, "last").await;
    let dir = s.stop().await;
    let store = salon_store::Store::open(dir.path()).await.unwrap();
    let record = store.room(room).await.unwrap().unwrap();
    assert_eq!(record.status, salon_store::RoomStatus::Completed);
    assert_eq!(record.end_reason.as_deref(), Some("shutdown"));
}

#[tokio::test]
async fn the_room_service_fires_the_cores_timers() {
    let s = TestServer::start().await;
    let (_, room) = s
        .post(
            "/v1/Rooms",
            &[("UniqueName", "brief"), ("UnusedRoomTimeout", "1")],
        )
        .await;
    let sid: RoomSid = room["sid"].as_str().unwrap().parse().unwrap();
    // The service sleeps on tokio's clock; jump it past the one-minute timeout.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    // The timer fired on the service's task; wait for its events to land.
    let mut record = s.state.store.room(sid).await.unwrap().unwrap();
    for _ in 0..200 {
        if record.status == salon_store::RoomStatus::Completed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        record = s.state.store.room(sid).await.unwrap().unwrap();
    }
    assert_eq!(record.status, salon_store::RoomStatus::Completed);
    assert_eq!(record.end_reason.as_deref(), Some("unused-room-timeout"));
}

#[tokio::test]
async fn joining_by_name_creates_the_room_ad_hoc_and_records_it() {
    let s = TestServer::start().await;
    let admission = s
        .state
        .rooms
        .join(Join {
            room: RoomRef::Name("walk-in".into()),
            participant: ParticipantSid::random(),
            identity: "dana".into(),
            auto_subscribe: true,
            new_room: RoomSid::random(),
        })
        .await
        .unwrap();
    assert!(admission.created);
    let (_, room) = s.get("/v1/Rooms/walk-in").await;
    assert_eq!(room["sid"], admission.room.as_str());
    let (_, participants) = s.get("/v1/Rooms/walk-in/Participants").await;
    assert_eq!(participants["participants"][0]["identity"], "dana");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_twilios_shape() {
    let s = TestServer::start().await;
    assert_error(
        &TestServer::send(s.http.get(format!("{}/nope", s.url))).await,
        404,
        20404,
    );
    assert_error(
        &TestServer::send(s.http.put(format!("{}/healthz", s.url))).await,
        405,
        20004,
    );
    let landing = s.http.get(&s.url).send().await.unwrap();
    assert_eq!(landing.status(), StatusCode::OK);
    assert!(landing.text().await.unwrap().contains("Salon"));
}

#[tokio::test]
async fn the_demo_app_and_the_sdk_are_served() {
    let s = TestServer::start().await;
    let index = s.http.get(&s.url).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let sdk = s
        .http
        .get(format!("{}/sdk/salon-video.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(sdk.status(), StatusCode::OK);
    let kind = sdk.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.contains("javascript"), "{kind}");
    for missing in ["/sdk/nope.js", "/sdk/../Cargo.toml", "/no-such-file.css"] {
        assert_error(
            &TestServer::send(s.http.get(format!("{}{missing}", s.url))).await,
            404,
            20404,
        );
    }
    // The SDK is for pages of any origin (an app imports it from Salon).
    let from_elsewhere = s
        .http
        .get(format!("{}/sdk/salon-video.js", s.url))
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(from_elsewhere.headers()["access-control-allow-origin"], "*");
    let preflight = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/sdk/salon-video.js", s.url),
        )
        .header("origin", "http://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-app")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    // The script-tag build (the `Twilio.Video` global) is beside the module.
    let global = s
        .http
        .get(format!("{}/sdk/salon-video.global.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(global.status(), StatusCode::OK);
    assert!(global.text().await.unwrap().contains("Twilio"));
    // The demo app is not for other origins.
    let demo = s.http.get(&s.url).send().await.unwrap();
    assert!(!demo.headers().contains_key("access-control-allow-origin"));
    // Other methods on app paths are still Twilio-shaped errors.
    assert_error(
        &TestServer::send(s.http.post(format!("{}/index.html", s.url))).await,
        404,
        20404,
    );
}

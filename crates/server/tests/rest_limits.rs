//! The REST API against requests Twilio's helper libraries never send but
//! other clients might: names that are no parameter, Twilio features Salon
//! lacks, bodies of other types, and credentials guessed again and again.

mod common;

use common::{Options, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::Value;

async fn rooms_in_progress(s: &TestServer) -> usize {
    let (_, list) = s.get("/v1/Rooms").await;
    list["rooms"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_name_that_is_no_parameter_is_refused_and_nothing_is_created() {
    let s = TestServer::start().await;
    let response = s
        .post(
            "/v1/Rooms",
            &[("UniqueName", "standup"), ("MaxParticipant", "4")],
        )
        .await;
    assert_error(&response, 400, 20001);
    let message = response.1["message"].as_str().unwrap();
    assert!(message.contains("MaxParticipant"), "{message}");
    assert_eq!(rooms_in_progress(&s).await, 0);
    // The same for updates.
    let room = s.create_room("standup").await;
    let response = s
        .post(
            &format!("/v1/Rooms/{room}"),
            &[("Status", "completed"), ("Reason", "done")],
        )
        .await;
    assert_error(&response, 400, 20001);
    let (_, record) = s.get(&format!("/v1/Rooms/{room}")).await;
    assert_eq!(record["status"], "in-progress");
}

#[tokio::test]
async fn twilio_parameters_salon_does_not_act_on_are_taken_or_refused_plainly() {
    let s = TestServer::start().await;
    // Deprecated or about recording: accepted, and the room is as asked.
    let (status, room) = s
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "taken"),
                ("EnableTurn", "true"),
                ("LargeRoom", "false"),
                (
                    "RecordingRules",
                    r#"{"rules":[{"type":"include","all":true}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["large_room"], false);
    // A feature Salon does not have is refused rather than ignored.
    for (name, value) in [
        ("LargeRoom", "true"),
        ("TranscribeParticipantsOnConnect", "true"),
        ("RecordingRules", "all of them"),
        ("EnableTurn", "sometimes"),
    ] {
        let response = s
            .post("/v1/Rooms", &[("UniqueName", "refused"), (name, value)])
            .await;
        assert_error(&response, 400, 20001);
        assert!(
            response.1["message"].as_str().unwrap().contains(name),
            "{}",
            response.1
        );
    }
    assert_eq!(rooms_in_progress(&s).await, 1);
}

#[tokio::test]
async fn xml_and_multipart_bodies_are_refused_not_read_as_a_default_room() {
    let s = TestServer::start().await;
    for (content_type, body) in [
        ("application/xml", "<Room><UniqueName>x</UniqueName></Room>"),
        ("text/xml; charset=utf-8", "<Room/>"),
        (
            "multipart/form-data; boundary=XYZ",
            "--XYZ\r\nContent-Disposition: form-data; name=\"UniqueName\"\r\n\r\nx\r\n--XYZ--\r\n",
        ),
        ("text/plain", "UniqueName=x"),
    ] {
        let request = s
            .http
            .post(format!("{}/v1/Rooms", s.url))
            .basic_auth(s.key, Some(&s.secret))
            .header("content-type", content_type)
            .body(body);
        let response = TestServer::send(request).await;
        assert_error(&response, 400, 20001);
    }
    assert_eq!(rooms_in_progress(&s).await, 0);
    // Form bodies without a type, and JSON, are read as before.
    let request = s
        .http
        .post(format!("{}/v1/Rooms", s.url))
        .basic_auth(s.key, Some(&s.secret))
        .body("UniqueName=untyped");
    let (status, room) = TestServer::send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["unique_name"], "untyped");
}

#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_gets_429_for_a_while() {
    let s = TestServer::with(Options {
        auth_failures_per_minute: 5,
        ..Options::default()
    })
    .await;
    let with = |user: &str, password: &str| {
        s.http
            .get(format!("{}/v1/Rooms", s.url))
            .basic_auth(user, Some(password))
    };
    for _ in 0..5 {
        let response = TestServer::send(with(s.key.as_str(), "guess")).await;
        assert_error(&response, 401, 20003);
    }
    let response = with(s.key.as_str(), "guess").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "Retry-After: {wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "code": 20429,
            "message": body["message"],
            "more_info": "https://www.twilio.com/docs/errors/20429",
            "status": 429
        })
    );
    // Even the right credentials: a guesser must not learn it guessed right.
    let response = TestServer::send(with(s.key.as_str(), &s.secret)).await;
    assert_error(&response, 429, 20429);
    // The rest of the server is not throttled.
    let health = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn throttling_can_be_turned_off() {
    let s = TestServer::with(Options {
        auth_failures_per_minute: 0,
        ..Options::default()
    })
    .await;
    for _ in 0..50 {
        let response = TestServer::send(
            s.http
                .get(format!("{}/v1/Rooms", s.url))
                .basic_auth(s.key, Some("guess")),
        )
        .await;
        assert_error(&response, 401, 20003);
    }
    assert_eq!(s.get("/v1/Rooms").await.0, StatusCode::OK);
}

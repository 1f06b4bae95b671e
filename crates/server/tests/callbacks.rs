//! Status callbacks from a real server to a real receiver on loopback:
//! what arrives, in which order, signed how, and what happens when the
//! receiver fails, hangs, redirects, answers slowly, or lives where
//! callbacks may not go.

mod common;

use std::time::Duration;

use common::receiver::{Answer, Captured, Receiver, expected_signature};
use common::{Options, TestServer, assert_error};
use reqwest::Method;
use salon_server::callbacks::CallbackConfig;

/// Fast retries, so failures play out in a test's time.
fn quick() -> CallbackConfig {
    CallbackConfig {
        allow_private_network: true,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_millis(800),
        first_retry: Duration::from_millis(50),
        max_retry: Duration::from_millis(200),
        ..CallbackConfig::default()
    }
}

async fn server(callbacks: CallbackConfig) -> TestServer {
    TestServer::with(Options {
        callbacks,
        ..Options::default()
    })
    .await
}

async fn room_with_callback(server: &TestServer, name: &str, url: &str, method: &str) -> String {
    let (status, body) = server
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", name),
                ("StatusCallback", url),
                ("StatusCallbackMethod", method),
            ],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["sid"].as_str().unwrap().to_owned()
}

fn events(captured: &[Captured]) -> Vec<&str> {
    captured.iter().map(Captured::event).collect()
}

fn sequence(captured: &[Captured]) -> Vec<i64> {
    captured
        .iter()
        .map(|c| c.param("SequenceNumber").unwrap().parse().unwrap())
        .collect()
}

fn metric(server: &TestServer, line_start: &str) -> f64 {
    let text = server.state.metrics.render();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
}

/// Wait until the metric on `line_start` satisfies `ok` (the sender
/// updates its figures just after it acts, and the backlog once a second).
async fn wait_metric(server: &TestServer, line_start: &str, ok: impl Fn(f64) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = metric(server, line_start);
        if ok(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{line_start} stayed at {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn callbacks_arrive_signed_and_in_order_and_a_failing_receiver_holds_back_only_its_room() {
    let server = server(quick()).await;
    let flaky = Receiver::start(Answer::Accept).await;
    flaky.then(&[
        Answer::Status(500),
        Answer::Status(503),
        Answer::Status(429),
    ]);
    let steady = Receiver::start(Answer::Accept).await;
    let a = room_with_callback(&server, "a", &flaky.url("/hooks/video?tenant=7"), "POST").await;
    let b = room_with_callback(&server, "b", &steady.url("/hooks"), "POST").await;
    for (room, identity) in [(&a, "alice"), (&b, "bob")] {
        let participant = server.join(room.parse().unwrap(), identity).await;
        server
            .state
            .rooms
            .disconnect(participant, salon_room::DisconnectReason::Left)
            .await
            .unwrap();
    }
    for room in [&a, &b] {
        let (status, _) = server
            .post(&format!("/v1/Rooms/{room}"), &[("Status", "completed")])
            .await;
        assert_eq!(status, 200);
    }

    let order = [
        "room-created",
        "participant-connected",
        "participant-disconnected",
        "room-ended",
    ];
    for receiver in [&flaky, &steady] {
        let delivered = receiver.wait_for_delivered("room-ended", 1).await;
        assert_eq!(events(&delivered), order);
        assert_eq!(sequence(&delivered), [0, 1, 2, 3]);
        for c in &delivered {
            assert_eq!(c.method, Method::POST);
            assert_eq!(
                c.content_type.as_deref(),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(
                c.signature.as_deref(),
                Some(expected_signature(&server.auth_token, c).as_str()),
                "X-Twilio-Signature of {}",
                c.event()
            );
            assert_eq!(c.param("AccountSid"), Some(server.account.as_str()));
        }
    }
    assert!(flaky.delivered()[0].url.ends_with("/hooks/video?tenant=7"));

    // The flaky receiver failed room-created three times: the same callback
    // came four times, with one idempotency token, and nothing overtook it.
    let seen = flaky.captured();
    assert_eq!(
        seen.iter().map(|c| c.answered.unwrap()).collect::<Vec<_>>(),
        [500, 503, 429, 200, 200, 200, 200]
    );
    assert!(seen[..4].iter().all(|c| c.event() == "room-created"));
    let token = seen[0].idempotency_token.clone().expect("a token");
    assert!(
        seen[..4]
            .iter()
            .all(|c| c.idempotency_token.as_ref() == Some(&token))
    );
    assert_ne!(seen[4].idempotency_token.as_ref(), Some(&token));
    // And the steady receiver's room did not wait for it.
    assert_eq!(steady.captured().len(), 4);

    wait_metric(&server, "salon_status_callbacks_delivered_total", |v| {
        v == 8.0
    })
    .await;
    assert_eq!(
        metric(&server, "salon_status_callbacks_failed_attempts_total"),
        3.0
    );
}

#[tokio::test]
async fn get_callbacks_carry_their_parameters_in_the_signed_query() {
    let server = server(quick()).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let room = room_with_callback(&server, "by-get", &receiver.url("/events?app=1"), "GET").await;
    let delivered = receiver.wait_for_delivered("room-created", 1).await;
    let created = &delivered[0];
    assert_eq!(created.method, Method::GET);
    assert!(created.body_params.is_empty());
    assert!(
        created.url.contains("/events?app=1&AccountSid="),
        "parameters follow the URL's own query: {}",
        created.url
    );
    assert_eq!(created.param("RoomSid"), Some(room.as_str()));
    assert_eq!(created.param("RoomName"), Some("by-get"));
    assert_eq!(
        created.signature.as_deref(),
        Some(expected_signature(&server.auth_token, created).as_str()),
        "a GET is signed over its full URL"
    );
}

#[tokio::test]
async fn a_receiver_that_hangs_or_answers_too_slowly_is_timed_out_and_tried_again() {
    let server = server(quick()).await;
    let receiver = Receiver::start(Answer::Accept).await;
    receiver.then(&[Answer::Hang, Answer::Slowly(Duration::from_secs(3))]);
    room_with_callback(&server, "patient", &receiver.url("/slow"), "POST").await;
    let delivered = receiver.wait_for_delivered("room-created", 1).await;
    assert_eq!(delivered.len(), 1);
    let seen = receiver.captured();
    assert_eq!(seen.len(), 3, "hung, too slow, then delivered");
    assert!(seen.iter().all(|c| c.event() == "room-created"));
    assert_eq!(
        metric(&server, "salon_status_callbacks_failed_attempts_total"),
        2.0
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_a_callback_is_dropped_after_its_last_attempt() {
    let server = server(CallbackConfig {
        max_attempts: 3,
        ..quick()
    })
    .await;
    let receiver = Receiver::start(Answer::RedirectToItself).await;
    let room = room_with_callback(&server, "loop", &receiver.url("/moved"), "POST").await;
    server.join(room.parse().unwrap(), "alice").await;

    // Each callback is tried three times, one request per attempt: the
    // redirect is never followed. Then the room's next callback goes.
    let seen = receiver
        .wait_until("six redirected attempts", Duration::from_secs(20), |all| {
            all.len() >= 6
        })
        .await;
    assert_eq!(
        events(&seen[..6]),
        [
            "room-created",
            "room-created",
            "room-created",
            "participant-connected",
            "participant-connected",
            "participant-connected"
        ]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.captured().len(), 6, "nothing more to send");
    assert_eq!(
        metric(
            &server,
            "salon_status_callbacks_dropped_total{reason=\"attempts\"}"
        ),
        2.0
    );
    wait_metric(&server, "salon_status_callbacks_backlog", |v| v == 0.0).await;
}

#[tokio::test]
async fn callbacks_to_the_private_network_are_refused_unless_the_operator_allows_them() {
    let server = server(CallbackConfig {
        allow_private_network: false,
        ..quick()
    })
    .await;
    let receiver = Receiver::start(Answer::Accept).await;
    // By address, and by a name that resolves to loopback (checked after DNS).
    let by_address = receiver.url("/by-address");
    let by_name = format!("http://localhost:{}/by-name", receiver.addr.port());
    room_with_callback(&server, "literal", &by_address, "POST").await;
    room_with_callback(&server, "named", &by_name, "GET").await;

    wait_metric(
        &server,
        "salon_status_callbacks_dropped_total{reason=\"refused\"}",
        |v| v == 2.0,
    )
    .await;
    assert!(
        receiver.captured().is_empty(),
        "no request reached the private address"
    );
    assert_eq!(
        metric(&server, "salon_status_callbacks_failed_attempts_total"),
        0.0,
        "a refusal is final, not retried"
    );
}

#[tokio::test]
async fn rooms_created_by_a_connection_report_to_the_operators_default() {
    let receiver = Receiver::start(Answer::Accept).await;
    let server = TestServer::with(Options {
        callbacks: quick(),
        rooms: salon_room::Config {
            ad_hoc_status_callback: Some(salon_room::StatusCallback {
                url: receiver.url("/default"),
                method: salon_room::CallbackMethod::Post,
            }),
            ..salon_room::Config::default()
        },
        ..Options::default()
    })
    .await;
    let admission = server
        .state
        .rooms
        .join(salon_room::Join {
            room: salon_room::RoomRef::Name("drop-in".into()),
            participant: salon_sid::ParticipantSid::random(),
            identity: "alice".into(),
            auto_subscribe: true,
            new_room: salon_sid::RoomSid::random(),
        })
        .await
        .unwrap();
    assert!(admission.created);
    let delivered = receiver
        .wait_for_delivered("participant-connected", 1)
        .await;
    assert_eq!(
        events(&delivered),
        ["room-created", "participant-connected"]
    );
    assert_eq!(delivered[0].param("RoomName"), Some("drop-in"));
    let (_, room) = server.get(&format!("/v1/Rooms/{}", admission.room)).await;
    assert_eq!(room["status_callback"], receiver.url("/default"));
}

#[tokio::test]
async fn callback_urls_that_are_not_http_are_refused_when_the_room_is_created() {
    let server = server(quick()).await;
    for url in [
        "ftp://app.example.com/hooks",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "/relative/path",
        "http://",
    ] {
        let response = server
            .post(
                "/v1/Rooms",
                &[("UniqueName", "bad"), ("StatusCallback", url)],
            )
            .await;
        assert_error(&response, 400, 53111);
    }
    let response = server
        .post(
            "/v1/Rooms",
            &[
                ("UniqueName", "bad"),
                ("StatusCallback", "https://app.example.com/hooks"),
                ("StatusCallbackMethod", "PUT"),
            ],
        )
        .await;
    assert_error(&response, 400, 53110);
}

#[tokio::test]
async fn callbacks_older_than_the_limit_are_dropped_unsent() {
    let server = server(CallbackConfig {
        max_age: Duration::from_millis(300),
        ..quick()
    })
    .await;
    let receiver = Receiver::start(Answer::Status(503)).await;
    let room = room_with_callback(&server, "stale", &receiver.url("/down"), "POST").await;
    server.join(room.parse().unwrap(), "alice").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    receiver.answer(Answer::Accept);
    // Both the failing head and the callback behind it expire.
    wait_metric(
        &server,
        "salon_status_callbacks_dropped_total{reason=\"age\"}",
        |v| v == 2.0,
    )
    .await;
    wait_metric(&server, "salon_status_callbacks_backlog", |v| v == 0.0).await;
    assert!(receiver.delivered().is_empty());
}

#[tokio::test]
async fn the_outbox_outlives_the_server() {
    let receiver = Receiver::start(Answer::Status(503)).await;
    let server = server(quick()).await;
    let room = room_with_callback(&server, "durable", &receiver.url("/later"), "POST").await;
    server.join(room.parse().unwrap(), "alice").await;
    receiver
        .wait_until("a failed attempt", Duration::from_secs(10), |all| {
            !all.is_empty()
        })
        .await;
    wait_metric(&server, "salon_status_callbacks_backlog", |v| v >= 1.0).await;

    // A graceful stop ends the room, which adds callbacks; none can be
    // delivered yet. The next start delivers all of them, in order.
    let dir = server.stop().await;
    receiver.answer(Answer::Accept);
    let server = TestServer::in_dir(
        dir,
        Options {
            callbacks: quick(),
            ..Options::default()
        },
    )
    .await;
    let delivered = receiver.wait_for_delivered("room-ended", 1).await;
    assert_eq!(
        events(&delivered),
        [
            "room-created",
            "participant-connected",
            "participant-disconnected",
            "room-ended"
        ]
    );
    assert_eq!(sequence(&delivered), [0, 1, 2, 3]);
    for c in &delivered {
        assert_eq!(
            c.signature.as_deref(),
            Some(expected_signature(&server.auth_token, c).as_str())
        );
    }
}

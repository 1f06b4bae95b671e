//! Calls that survive network changes, over real UDP: a participant whose
//! media path goes away is kept for the session timeout and shown to the
//! others as reconnecting; its client restarts ICE (from a new address if it
//! moved) and media flows again; after the session timeout it is gone, with
//! Twilio's 53405. One who joins meanwhile is told it is reconnecting.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::{Options, TestServer};
use salon_client::{Client, ClientEvent, ParticipantSid, TrackSpec};

const WAIT: Duration = Duration::from_secs(10);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn av() -> Vec<TrackSpec> {
    vec![
        TrackSpec::audio("microphone"),
        TrackSpec::video("camera").bitrate(300_000).fps(15),
    ]
}

/// Packets received so far on every subscribed track.
fn received(client: &Client) -> u64 {
    client.stats().subscribed.values().map(|r| r.packets).sum()
}

/// Read `client`'s events into `seen` until one matches `wanted`.
async fn until(
    client: &mut Client,
    seen: &mut Vec<ClientEvent>,
    wanted: impl Fn(&ClientEvent) -> bool,
    limit: Duration,
    what: &str,
) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, client.next_event()).await {
            Ok(Some(event)) => {
                let done = wanted(&event);
                seen.push(event);
                if done {
                    return;
                }
            }
            Ok(None) => panic!("{what}: the client ended; saw {seen:#?}"),
            Err(_) => panic!("{what}: not within {limit:?}; saw {seen:#?}"),
        }
    }
}

/// Media flows into `client` again: its received packets grow by `n`.
async fn flowing(client: &mut Client, n: u64, what: &str) {
    let from = received(client);
    let deadline = Instant::now() + WAIT;
    while received(client) < from + n {
        assert!(
            Instant::now() < deadline,
            "{what}: {} packets in {WAIT:?}",
            received(client) - from
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), client.next_event()).await;
    }
}

/// Wait for media on `n` subscribed tracks.
async fn media_on(client: &mut Client, n: usize) {
    let deadline = Instant::now() + WAIT;
    while client
        .stats()
        .subscribed
        .values()
        .filter(|r| r.packets > 0)
        .count()
        < n
    {
        assert!(Instant::now() < deadline, "media on {n} tracks");
        let _ = tokio::time::timeout(Duration::from_millis(100), client.next_event()).await;
    }
}

fn about(participant: ParticipantSid) -> impl Fn(&ClientEvent) -> Option<&'static str> {
    move |e| match e {
        ClientEvent::ParticipantReconnecting { participant: p } if *p == participant => {
            Some("reconnecting")
        }
        ClientEvent::ParticipantReconnected { participant: p } if *p == participant => {
            Some("reconnected")
        }
        ClientEvent::ParticipantDisconnected { participant: p } if *p == participant => {
            Some("disconnected")
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shorter_than_the_session_timeout_is_a_reconnection_not_a_departure() {
    let s = TestServer::with(Options {
        peer_timeout: Duration::from_secs(20),
        ..Options::default()
    })
    .await;
    let mut steady = s.client("steady", "outage", &av()).await;
    let mut roamer = s.client("roamer", "outage", &av()).await;
    media_on(&mut steady, 2).await;
    media_on(&mut roamer, 2).await;
    let roamer_sid = roamer.participant().sid;

    roamer.black_out_media(Duration::from_secs(6)).await;
    let mut roamer_saw = Vec::new();
    until(
        &mut roamer,
        &mut roamer_saw,
        |e| matches!(e, ClientEvent::Reconnecting { .. }),
        WAIT,
        "the roamer notices",
    )
    .await;
    let mut steady_saw = Vec::new();
    until(
        &mut steady,
        &mut steady_saw,
        |e| about(roamer_sid)(e).is_some(),
        WAIT,
        "the others are told",
    )
    .await;
    // One who joins meanwhile is told too.
    let mut late = s.client("late", "outage", &[]).await;
    let mut late_saw = Vec::new();
    until(
        &mut late,
        &mut late_saw,
        |e| about(roamer_sid)(e).is_some(),
        WAIT,
        "a late joiner is told",
    )
    .await;
    until(
        &mut roamer,
        &mut roamer_saw,
        |e| matches!(e, ClientEvent::Reconnected),
        Duration::from_secs(20),
        "the roamer reconnects",
    )
    .await;
    until(
        &mut steady,
        &mut steady_saw,
        |e| about(roamer_sid)(e) == Some("reconnected"),
        WAIT,
        "the others are told it is back",
    )
    .await;
    until(
        &mut late,
        &mut late_saw,
        |e| about(roamer_sid)(e) == Some("reconnected"),
        WAIT,
        "the late joiner is told it is back",
    )
    .await;
    let told: Vec<_> = late_saw.iter().filter_map(about(roamer_sid)).collect();
    assert_eq!(told, ["reconnecting", "reconnected"], "{late_saw:#?}");
    flowing(&mut roamer, 50, "media to the roamer").await;
    flowing(&mut steady, 50, "media from the roamer").await;

    let told: Vec<_> = steady_saw.iter().filter_map(about(roamer_sid)).collect();
    assert_eq!(told, ["reconnecting", "reconnected"], "{steady_saw:#?}");
    assert!(
        roamer_saw.contains(&ClientEvent::Reconnecting { code: 53405 }),
        "{roamer_saw:#?}"
    );
    let stats = roamer.stats();
    assert!(stats.ice_restarts >= 1, "{stats:#?}");
    assert_eq!(stats.reconnections, 1, "{stats:#?}");
    let media = s.state.media.stats();
    assert!(media.interruptions.load(Relaxed) >= 1);
    assert!(media.ice_restarts.load(Relaxed) >= 1);
    let room = roamer.room().sid;
    let (_, p) = s
        .get(&format!("/v1/Rooms/{room}/Participants/{roamer_sid}"))
        .await;
    assert_eq!(p["status"], "connected");
    roamer.leave().await;
    steady.leave().await;
    late.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_signaling_socket_is_resumed_with_what_happened_meanwhile() {
    let s = TestServer::start().await;
    let mut steady = s.client("steady", "resume", &av()).await;
    let mut roamer = s.client("roamer", "resume", &av()).await;
    media_on(&mut steady, 2).await;
    media_on(&mut roamer, 2).await;
    let roamer_sid = roamer.participant().sid;
    let session = roamer.session().to_owned();

    roamer.drop_signaling().await;
    // While it is away, someone joins and publishes.
    let late = s
        .client("late", "resume", &[TrackSpec::audio("late-mic")])
        .await;
    let late_sid = late.participant().sid;
    let mut roamer_saw = Vec::new();
    until(
        &mut roamer,
        &mut roamer_saw,
        |e| matches!(e, ClientEvent::Resumed),
        WAIT,
        "the roamer resumes",
    )
    .await;
    assert!(
        roamer_saw
            .iter()
            .any(|e| matches!(e, ClientEvent::Resuming { code: 53001, .. })),
        "{roamer_saw:#?}"
    );
    // It learns of the newcomer once, from the resume or from the missed
    // messages, and receives its track.
    until(
        &mut roamer,
        &mut roamer_saw,
        |e| matches!(e, ClientEvent::Subscribed { participant, .. } if *participant == late_sid),
        WAIT,
        "the roamer subscribes to the newcomer",
    )
    .await;
    let connected = roamer_saw
        .iter()
        .filter(|e| matches!(e, ClientEvent::ParticipantConnected { participant } if participant.sid == late_sid))
        .count();
    assert_eq!(connected, 1, "{roamer_saw:#?}");
    assert!(roamer.participants().iter().any(|p| p.sid == late_sid));
    // The others saw one reconnect, never a departure.
    let mut steady_saw = Vec::new();
    until(
        &mut steady,
        &mut steady_saw,
        |e| about(roamer_sid)(e) == Some("reconnected"),
        WAIT,
        "the others are told it is back",
    )
    .await;
    let told: Vec<_> = steady_saw.iter().filter_map(about(roamer_sid)).collect();
    assert_eq!(told, ["reconnecting", "reconnected"], "{steady_saw:#?}");

    // The resumed session negotiates as before: a new track reaches the
    // others, and media flows both ways on the same media session.
    roamer
        .publish(TrackSpec::audio("second-mic"))
        .await
        .unwrap();
    until(
        &mut steady,
        &mut steady_saw,
        |e| matches!(e, ClientEvent::TrackPublished { participant, track } if *participant == roamer_sid && track.name == "second-mic"),
        WAIT,
        "the new track is published",
    )
    .await;
    flowing(&mut roamer, 50, "media to the roamer").await;
    flowing(&mut steady, 50, "media from the roamer").await;
    assert_eq!(roamer.session(), session);
    let stats = roamer.stats();
    assert_eq!(stats.resumes, 1, "{stats:#?}");
    assert_eq!(stats.ice_restarts, 0, "{stats:#?}");
    roamer.leave().await;
    steady.leave().await;
    late.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_that_moves_to_a_new_address_restarts_ice_and_its_media_resumes() {
    let s = TestServer::start().await;
    let mut steady = s.client("steady", "move", &av()).await;
    let mut roamer = s.client("roamer", "move", &av()).await;
    media_on(&mut steady, 2).await;
    media_on(&mut roamer, 2).await;
    let roamer_sid = roamer.participant().sid;

    // A new socket on a new port: the old 4-tuple is gone for good.
    let moved = roamer.move_to(LOOPBACK).await.unwrap();
    flowing(&mut roamer, 100, "media to the moved roamer").await;
    flowing(&mut steady, 100, "media from the moved roamer").await;
    assert_eq!(roamer.stats().ice_restarts, 1);
    assert_eq!(s.state.media.stats().ice_restarts.load(Relaxed), 1);

    // Nobody left: the steady one heard nothing of a departure, and the
    // server still has both.
    let mut steady_saw = Vec::new();
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(300), steady.next_event()).await
    {
        steady_saw.push(e);
    }
    assert!(
        !steady_saw
            .iter()
            .any(|e| about(roamer_sid)(e) == Some("disconnected")),
        "{steady_saw:#?}"
    );
    assert_eq!(s.state.media.stats().peers.load(Relaxed), 2);
    let _ = moved;
    roamer.leave().await;
    steady.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_session_timeout_a_silent_participant_is_disconnected_with_53405() {
    let s = TestServer::with(Options {
        peer_timeout: Duration::from_secs(5),
        ..Options::default()
    })
    .await;
    let mut steady = s.client("steady", "gone", &av()).await;
    let mut roamer = s.client("roamer", "gone", &av()).await;
    media_on(&mut steady, 2).await;
    media_on(&mut roamer, 2).await;
    let roamer_sid = roamer.participant().sid;
    let started = Instant::now();
    roamer.black_out_media(Duration::from_secs(60)).await;

    let mut steady_saw = Vec::new();
    until(
        &mut steady,
        &mut steady_saw,
        |e| about(roamer_sid)(e) == Some("disconnected"),
        Duration::from_secs(20),
        "the roamer leaves",
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not before the session timeout"
    );
    let told: Vec<_> = steady_saw.iter().filter_map(about(roamer_sid)).collect();
    assert_eq!(told, ["reconnecting", "disconnected"], "{steady_saw:#?}");

    let mut roamer_saw = Vec::new();
    until(
        &mut roamer,
        &mut roamer_saw,
        |e| matches!(e, ClientEvent::Disconnected { .. }),
        WAIT,
        "the roamer is told",
    )
    .await;
    let Some(ClientEvent::Disconnected { code, .. }) = roamer_saw.last() else {
        unreachable!()
    };
    assert_eq!(*code, Some(53405), "{roamer_saw:#?}");
    let room = steady.room().sid;
    let (_, p) = s
        .get(&format!("/v1/Rooms/{room}/Participants/{roamer_sid}"))
        .await;
    assert_eq!(p["status"], "disconnected");
    steady.leave().await;
}

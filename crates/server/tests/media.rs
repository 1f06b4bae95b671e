//! The media server end to end: real Rust clients (`salon-client`) over real
//! UDP on loopback, through signaling, the room core and the SFU.

mod common;

use std::time::{Duration, Instant};

use common::{Options, TestServer};
use salon_client::{
    Client, ClientConfig, ClientError, ClientEvent, DisconnectReason, TrackKind, TrackSpec,
};

const WAIT: Duration = Duration::from_secs(10);

async fn connect(s: &TestServer, identity: &str, room: &str, tracks: &[TrackSpec]) -> Client {
    s.client(identity, room, tracks).await
}

async fn try_connect(
    s: &TestServer,
    token: &str,
    room: &str,
    tracks: &[TrackSpec],
) -> Result<Client, ClientError> {
    let mut config = ClientConfig::new(s.signaling_url(), token, room);
    for track in tracks {
        config = config.publish(track.clone());
    }
    Client::connect(config).await
}

fn av() -> Vec<TrackSpec> {
    vec![
        TrackSpec::audio("microphone"),
        TrackSpec::video("camera").bitrate(300_000).fps(15),
    ]
}

/// Wait until `client` has received media on `n` tracks.
async fn media_on(client: &mut Client, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let started = client
            .stats()
            .subscribed
            .values()
            .filter(|r| r.packets > 0)
            .count();
        if started >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "media on {started} of {n} tracks after {WAIT:?}: {:#?}",
            client.stats()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), client.next_event()).await;
    }
}

/// Packets received so far on every subscribed track.
fn received(client: &Client) -> u64 {
    client.stats().subscribed.values().map(|r| r.packets).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_exchange_audio_and_video() {
    let s = TestServer::start().await;
    let mut alice = connect(&s, "alice", "call", &av()).await;
    let mut bob = connect(&s, "bob", "call", &av()).await;
    media_on(&mut alice, 2).await;
    media_on(&mut bob, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    for client in [&alice, &bob] {
        let stats = client.stats();
        assert_eq!(stats.subscribed.len(), 2, "{stats:#?}");
        for (track, r) in &stats.subscribed {
            match r.kind {
                TrackKind::Audio => assert!(r.packets >= 50, "{track}: {r:?}"),
                TrackKind::Video => {
                    assert!(r.frames >= 15, "{track}: {r:?}");
                    assert!(r.keyframes >= 1, "{track}: started at a keyframe");
                }
                TrackKind::Data => unreachable!(),
            }
            assert_eq!(r.foreign, 0, "every packet carries the publisher's probe");
            assert!(
                r.loss_fraction() < 0.05,
                "{track}: loss {}",
                r.loss_fraction()
            );
        }
    }
    // The REST API sees both, with their tracks.
    let room = alice.room().sid;
    let (_, list) = s
        .get(&format!("/v1/Rooms/{room}/Participants?Status=connected"))
        .await;
    assert_eq!(list["participants"].as_array().unwrap().len(), 2);
    let (_, tracks) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/alice/PublishedTracks"
        ))
        .await;
    assert_eq!(tracks["published_tracks"].as_array().unwrap().len(), 2);
    let (_, subs) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/bob/SubscribedTracks"
        ))
        .await;
    assert_eq!(subs["subscribed_tracks"].as_array().unwrap().len(), 2);
    alice.leave().await;
    bob.leave().await;
}

/// A subscriber on a lossy network gets its video whole: its WebRTC stack
/// asks for what is missing (NACK) and the server sends it again from what
/// it keeps of the stream (RTX).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_video_packets_are_retransmitted_to_the_subscriber() {
    let s = TestServer::start().await;
    let video = [TrackSpec::video("camera").bitrate(600_000).fps(15)];
    let alice = connect(&s, "alice", "lossy", &video).await;
    // Bob's client throws away every 10th RTP packet that reaches it.
    let config =
        ClientConfig::new(s.signaling_url(), s.token("bob", None), "lossy").receive_loss(10);
    let mut bob = Client::connect(config).await.expect("connected");
    media_on(&mut bob, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let stats = bob.stats();
    let r = stats.subscribed.values().next().expect("one subscription");
    assert!(
        stats.simulated_losses >= 15,
        "{} packets dropped in 3 s of 600 kbit/s video",
        stats.simulated_losses
    );
    // Without retransmission a tenth of the stream would be missing; the
    // last drop or two may still be on their way back.
    assert!(
        r.lost() * 5 <= stats.simulated_losses,
        "{} of {} dropped packets never came back: {r:?}",
        r.lost(),
        stats.simulated_losses
    );
    assert!(
        r.late() > 0,
        "repairs arrive after the packets that followed them: {r:?}"
    );
    assert!(r.frames >= 30, "{r:?}");
    alice.leave().await;
    bob.leave().await;
}

/// Behind a wildcard bind, ICE needs each datagram's real destination
/// address (a candidate) and replies must leave from it; with four workers
/// sharing the port, most flows are read by a worker that is not their
/// room's and handed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_on_a_wildcard_bind_across_workers() {
    let s = TestServer::with(Options {
        media_bind: "0.0.0.0:0".parse().unwrap(),
        media_workers: 4,
        ..Options::default()
    })
    .await;
    let mut clients = Vec::new();
    for name in ["ada", "grace", "edsger"] {
        clients.push(connect(&s, name, "wildcard", &[TrackSpec::audio("mic")]).await);
    }
    for client in &mut clients {
        media_on(client, 2).await;
    }
    let stats = s.state.media.stats();
    assert_eq!(
        stats
            .send_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    for client in clients {
        client.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_receives_a_keyframe_and_media_within_a_second() {
    let s = TestServer::start().await;
    let mut alice = connect(&s, "alice", "late", &av()).await;
    let mut bob = connect(&s, "bob", "late", &av()).await;
    media_on(&mut alice, 2).await;
    media_on(&mut bob, 2).await;
    // Let the publishers get well past their first keyframe.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut carol = connect(&s, "carol", "late", &[]).await;
    media_on(&mut carol, 4).await;
    let stats = carol.stats();
    for (track, r) in &stats.subscribed {
        let first = r.first_packet_at.expect("media");
        assert!(
            first - r.subscribed_at < Duration::from_secs(1),
            "{track}: first packet after {:?}",
            first - r.subscribed_at
        );
        if r.kind == TrackKind::Video {
            let key = r.first_keyframe_at.expect("a keyframe");
            assert_eq!(
                Some(key),
                r.first_packet_at,
                "{track}: video starts with a keyframe"
            );
            assert!(
                key - r.subscribed_at < Duration::from_secs(1),
                "{track}: keyframe after {:?}",
                key - r.subscribed_at
            );
        }
    }
    // The publishers were asked for those keyframes.
    let requests: u64 = alice
        .stats()
        .published
        .values()
        .map(|p| p.keyframe_requests)
        .sum();
    assert!(requests >= 1, "{:#?}", alice.stats().published);
    for c in [alice, bob, carol] {
        c.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublishing_and_leaving_are_seen_by_the_others() {
    let s = TestServer::start().await;
    let alice = connect(&s, "alice", "leaving", &av()).await;
    let mut bob = connect(&s, "bob", "leaving", &[]).await;
    media_on(&mut bob, 2).await;
    let camera = alice.published_track("camera").expect("camera published");

    alice.unpublish("camera").await.unwrap();
    bob.wait_for(
        |e| matches!(e, ClientEvent::TrackUnpublished { track, .. } if *track == camera),
        WAIT,
    )
    .await
    .unwrap();
    let alice_sid = alice.participant().sid;
    let room = alice.room().sid;
    let (_, tracks) = s
        .get(&format!(
            "/v1/Rooms/{room}/Participants/{alice_sid}/PublishedTracks"
        ))
        .await;
    assert_eq!(
        tracks["published_tracks"].as_array().unwrap().len(),
        1,
        "only the microphone left"
    );

    let started = Instant::now();
    alice.leave().await;
    bob.wait_for(|e| matches!(e, ClientEvent::ParticipantDisconnected { participant } if *participant == alice_sid), WAIT)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "leaving is seen at once: {:?}",
        started.elapsed()
    );
    let (_, p) = s
        .get(&format!("/v1/Rooms/{room}/Participants/{alice_sid}"))
        .await;
    assert_eq!(p["status"], "disconnected");
    bob.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refusals_carry_twilios_codes() {
    let s = TestServer::start().await;
    // Expired token.
    let expired = s.token_at("x", None, -7200);
    assert_eq!(
        try_connect(&s, &expired, "r", &[]).await.unwrap_err().code,
        20104
    );
    // Garbage token.
    assert_eq!(
        try_connect(&s, "not-a-token", "r", &[])
            .await
            .unwrap_err()
            .code,
        20101
    );
    // A grant for another room.
    let wrong = s.token("x", Some("other-room"));
    assert_eq!(
        try_connect(&s, &wrong, "r", &[]).await.unwrap_err().code,
        20106
    );
    // The right room grant works.
    let right = s.token("x", Some("r"));
    let x = try_connect(&s, &right, "r", &[])
        .await
        .expect("granted room");
    // Full room: a `go` room takes two.
    let (_, go) = s
        .post("/v1/Rooms", &[("UniqueName", "pair"), ("Type", "go")])
        .await;
    let a = connect(&s, "a", "pair", &[]).await;
    let b = connect(&s, "b", "pair", &[]).await;
    assert_eq!(
        try_connect(&s, &s.token("c", None), "pair", &[])
            .await
            .unwrap_err()
            .code,
        53105
    );
    // Completed room, by SID.
    let sid = go["sid"].as_str().unwrap().to_owned();
    s.post(&format!("/v1/Rooms/{sid}"), &[("Status", "completed")])
        .await;
    assert_eq!(
        try_connect(&s, &s.token("d", None), &sid, &[])
            .await
            .unwrap_err()
            .code,
        53118
    );
    // Unknown room SID.
    let unknown = "RMffffffffffffffffffffffffffffffff";
    assert_eq!(
        try_connect(&s, &s.token("d", None), unknown, &[])
            .await
            .unwrap_err()
            .code,
        53106
    );
    for c in [x, a, b] {
        c.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_identity_disconnects_the_older_connection_with_53205() {
    let s = TestServer::start().await;
    let mut first = connect(&s, "alice", "dup", &[]).await;
    let second = connect(&s, "alice", "dup", &[]).await;
    let event = first
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .unwrap();
    match event {
        ClientEvent::Disconnected { reason, code, .. } => {
            assert_eq!(reason, Some(DisconnectReason::DuplicateIdentity));
            assert_eq!(code, Some(53205));
        }
        other => panic!("{other:?}"),
    }
    let room = second.room().sid;
    let (_, list) = s
        .get(&format!("/v1/Rooms/{room}/Participants?Status=connected"))
        .await;
    assert_eq!(list["participants"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["participants"][0]["sid"],
        second.participant().sid.as_str()
    );
    second.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_room_through_rest_disconnects_everyone_with_53118() {
    let s = TestServer::start().await;
    let mut a = connect(&s, "a", "allhands", &av()).await;
    let mut b = connect(&s, "b", "allhands", &av()).await;
    media_on(&mut b, 2).await;
    let room = a.room().sid;
    let (status, _) = s
        .post(&format!("/v1/Rooms/{room}"), &[("Status", "completed")])
        .await;
    assert!(status.is_success());
    for client in [&mut a, &mut b] {
        match client
            .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
            .await
            .unwrap()
        {
            ClientEvent::Disconnected { code, reason, .. } => {
                assert_eq!(code, Some(53118));
                assert_eq!(reason, Some(DisconnectReason::RoomCompleted));
            }
            other => panic!("{other:?}"),
        }
    }
    // The media peers are gone too.
    let deadline = Instant::now() + WAIT;
    while s
        .state
        .media
        .stats()
        .peers
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        assert!(Instant::now() < deadline, "media peers left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_kick_disconnects_only_that_participant() {
    let s = TestServer::start().await;
    let mut a = connect(&s, "a", "kick", &[]).await;
    let mut b = connect(&s, "b", "kick", &[]).await;
    let room = a.room().sid;
    let (status, _) = s
        .post(
            &format!("/v1/Rooms/{room}/Participants/b"),
            &[("Status", "disconnected")],
        )
        .await;
    assert!(status.is_success());
    match b
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .unwrap()
    {
        ClientEvent::Disconnected { reason, .. } => {
            assert_eq!(reason, Some(DisconnectReason::Kicked))
        }
        other => panic!("{other:?}"),
    }
    let b_sid = b.participant().sid;
    a.wait_for(|e| matches!(e, ClientEvent::ParticipantDisconnected { participant } if *participant == b_sid), WAIT)
        .await
        .unwrap();
    a.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_panics_or_sends_garbage_does_not_disturb_the_others() {
    let s = TestServer::start().await;
    let mut alice = connect(&s, "alice", "robust", &av()).await;
    let mut bob = connect(&s, "bob", "robust", &av()).await;
    let mut victim = connect(&s, "victim", "robust", &av()).await;
    media_on(&mut alice, 4).await;
    media_on(&mut bob, 4).await;
    media_on(&mut victim, 4).await;

    // Garbage at the media port, from a stranger and in bulk.
    let garbage = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let media = s.state.media.local_addr();
    for i in 0..2000u32 {
        let mut junk = i.to_be_bytes().repeat(64);
        junk[0] = (i % 256) as u8; // every first-byte class: STUN, DTLS, RTP…
        let _ = garbage.send_to(&junk, media);
    }
    // The victim's media session panics.
    let victim_sid = victim.participant().sid;
    s.state.media.sabotage(victim.room().sid, victim_sid);

    alice
        .wait_for(|e| matches!(e, ClientEvent::ParticipantDisconnected { participant } if *participant == victim_sid), WAIT)
        .await
        .unwrap();
    match victim
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .unwrap()
    {
        ClientEvent::Disconnected { reason, .. } => {
            assert_eq!(reason, Some(DisconnectReason::Failed))
        }
        other => panic!("{other:?}"),
    }
    // Alice and Bob go on receiving each other.
    let before = (received(&alice), received(&bob));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = (received(&alice), received(&bob));
    assert!(
        after.0 > before.0 + 40 && after.1 > before.1 + 40,
        "{before:?} -> {after:?}"
    );
    assert!(
        s.state
            .media
            .stats()
            .peer_panics
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    alice.leave().await;
    bob.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_network_vanishes_is_removed_and_the_others_are_told() {
    let s = TestServer::with(Options {
        peer_timeout: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let mut alice = connect(&s, "alice", "vanish", &av()).await;
    let mut ghost = connect(&s, "ghost", "vanish", &av()).await;
    media_on(&mut alice, 2).await;
    media_on(&mut ghost, 2).await;
    let ghost_sid = ghost.participant().sid;
    let started = Instant::now();
    ghost.go_silent().await;
    alice
        .wait_for(|e| matches!(e, ClientEvent::ParticipantDisconnected { participant } if *participant == ghost_sid), Duration::from_secs(15))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "not before the timeout: {took:?}"
    );
    let room = alice.room().sid;
    let (_, p) = s
        .get(&format!("/v1/Rooms/{room}/Participants/{ghost_sid}"))
        .await;
    assert_eq!(p["status"], "disconnected");
    alice.leave().await;
    ghost.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_track_messages_are_relayed_to_the_room() {
    let s = TestServer::start().await;
    let alice = connect(&s, "alice", "chat", &[TrackSpec::data("chat")]).await;
    let mut bob = connect(&s, "bob", "chat", &[]).await;
    bob.wait_for(
        |e| matches!(e, ClientEvent::Subscribed { track, .. } if track.kind == TrackKind::Data),
        WAIT,
    )
    .await
    .unwrap();
    // The data channel to Bob opens asynchronously; keep saying hello.
    let deadline = Instant::now() + WAIT;
    let got = loop {
        alice
            .send_data("chat", b"hello, room".to_vec())
            .await
            .unwrap();
        match tokio::time::timeout(
            Duration::from_millis(200),
            bob.wait_for(
                |e| matches!(e, ClientEvent::DataMessage { .. }),
                Duration::from_millis(200),
            ),
        )
        .await
        {
            Ok(Ok(ClientEvent::DataMessage { data, .. })) => break data,
            _ => assert!(Instant::now() < deadline, "no data message relayed"),
        }
    };
    assert_eq!(got, b"hello, room");
    alice.leave().await;
    bob.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_refused_for_the_rate_limit_is_sent_again_and_the_session_goes_on() {
    // One message a second, bursts of ten: a host that renegotiates for
    // every guest who comes and goes soon exceeds it. Its refused offers
    // (20429, not handled) must go again, not leave it waiting for an
    // answer that never comes.
    let s = TestServer::with(Options {
        signaling: salon_server::signaling::SignalingConfig {
            messages_per_second: 1,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let mut host = connect(&s, "host", "busy", &[TrackSpec::audio("mic")]).await;
    for i in 0..12 {
        let guest = connect(
            &s,
            &format!("guest-{i}"),
            "busy",
            &[TrackSpec::audio("mic")],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        guest.leave().await;
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(50), host.next_event()).await
        {
            if let ClientEvent::Disconnected { .. } = event {
                panic!("the host was disconnected: {event:?}");
            }
        }
    }
    assert!(
        host.stats().offers_sent_again > 0,
        "the host never reached the rate limit"
    );
    // The last guest stays: the host still negotiates and receives it.
    let last = connect(&s, "last", "busy", &[TrackSpec::audio("mic")]).await;
    let track = loop {
        if let Some(track) = last.published_track("mic") {
            break track;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let receiving = host
            .stats()
            .subscribed
            .get(&track)
            .is_some_and(|r| r.packets > 0);
        if receiving {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no media from the last guest: {:#?}",
            host.stats()
        );
        if let Ok(Some(e @ ClientEvent::Disconnected { .. })) =
            tokio::time::timeout(Duration::from_millis(100), host.next_event()).await
        {
            panic!("the host was disconnected: {e:?}");
        }
    }
}

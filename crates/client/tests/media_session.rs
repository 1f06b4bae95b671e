//! The client's media session against a bare str0m answerer on loopback:
//! no server, no WebSocket (see `common` for the answerer).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Answerer;
use salon_client::{MediaEvent, MediaSession, RemoteTrack, TrackKind, TrackSid, TrackSpec};

/// Drive the session for `duration`, collecting its events.
async fn drive(media: &mut MediaSession, duration: Duration, events: &mut Vec<MediaEvent>) {
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        tokio::select! {
            r = media.step() => r.unwrap(),
            () = tokio::time::sleep_until(deadline) => return,
        }
        while let Some(e) = media.poll_event() {
            events.push(e);
        }
    }
}

/// Drive the session until `pred` holds for an event; panics after 5 s.
async fn drive_until(
    media: &mut MediaSession,
    events: &mut Vec<MediaEvent>,
    pred: impl Fn(&MediaEvent) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !events.iter().any(&pred) {
        assert!(
            Instant::now() < deadline,
            "no such event within 5 s; got {events:?}"
        );
        drive(media, Duration::from_millis(20), events).await;
    }
}

/// A session publishing `spec` and subscribed to a made-up track that the
/// answerer fills with the publication, dropping every `drop_every`-th packet.
async fn loopback(
    spec: TrackSpec,
    drop_every: u64,
) -> (
    MediaSession,
    TrackSid,
    Answerer,
    HashMap<&'static str, String>,
) {
    let kind = spec.kind;
    let mut media = MediaSession::bind("127.0.0.1".parse().unwrap(), "salon")
        .await
        .unwrap();
    media.publish(spec).unwrap();
    let track = TrackSid::random();
    media.subscribe(track, kind);

    let offer = media.create_offer().expect("a first offer");
    assert_eq!(offer.publish.len(), 1);
    assert_eq!(offer.subscribe.len(), 1);
    assert_eq!(offer.subscribe[0].track, track);
    assert!(
        offer.sdp.contains("m=application"),
        "the control channel is offered"
    );
    assert!(offer.sdp.contains("a=sendonly") && offer.sdp.contains("a=recvonly"));
    assert!(media.create_offer().is_none(), "one offer at a time");

    let answerer = Answerer::spawn().await;
    let answer = answerer.answer(&offer.sdp).await;
    answerer.route(&offer.publish[0].mid, &offer.subscribe[0].mid, drop_every);
    media.accept_answer(&answer).unwrap();
    assert!(!media.wants_offer());

    let mids = HashMap::from([
        ("publish", offer.publish[0].mid.clone()),
        ("subscribe", offer.subscribe[0].mid.clone()),
    ]);
    (media, track, answerer, mids)
}

#[tokio::test]
async fn two_seconds_of_video_arrive_whole() {
    let (mut media, track, _answerer, _) = loopback(TrackSpec::video("camera"), 0).await;
    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| *e == MediaEvent::Connected).await;
    drive(&mut media, Duration::from_secs(2), &mut events).await;
    // Let the last frames land.
    let sent = media.stats().published["camera"].clone();
    drive(&mut media, Duration::from_millis(200), &mut events).await;

    assert!(
        events.contains(&MediaEvent::MediaStarted { track }),
        "{events:?}"
    );
    let stats = media.stats();
    let rx = &stats.subscribed[&track];
    let published = &stats.published["camera"];

    // Paced at 30 fps: never faster. (How close it gets to 60 depends on
    // how much CPU the machine spares this process: timing is measured by
    // the load tester, not asserted here.)
    assert!(
        (10..=64).contains(&sent.frames),
        "{} frames sent in 2 s",
        sent.frames
    );
    assert!(published.frames >= sent.frames);
    assert_eq!(rx.frames, published.frames, "every frame sent arrived");
    assert_eq!(rx.packets, published.packets);
    assert_eq!(rx.bytes, published.bytes);
    assert_eq!((rx.lost(), rx.duplicates(), rx.foreign), (0, 0, 0));
    assert_eq!(rx.keyframes, published.keyframes);
    assert!(published.keyframes >= 1, "the first frame is a keyframe");
    let first_keyframe = rx.time_to_first_keyframe().expect("a keyframe");
    assert_eq!(
        Some(first_keyframe),
        rx.time_to_first_packet(),
        "the first packet starts a keyframe"
    );

    // ~6.25 KB per interframe, 4x per keyframe (about 1.5 Mbit/s at 30 fps).
    let per_frame = rx.bytes / rx.frames;
    assert!(
        (5_000..10_000).contains(&per_frame),
        "{per_frame} bytes per frame"
    );
    assert!(
        published.packets >= published.frames * 6,
        "frames are split into <=1100-byte packets"
    );

    // Every packet carries its send time, and none is held back: a second
    // would be a buffering bug, not a slow machine. (Latency itself is
    // measured by the load tester.)
    assert_eq!(rx.latency.count(), rx.packets);
    let max = rx.latency.max().unwrap();
    assert!(max < 1_000_000, "a packet took {max} µs");
}

/// With REMB on, a receiver reports its estimate from the fifth second of
/// media on, every 250 ms: what arrived, then growing with it (salon_client::remb).
#[tokio::test]
async fn a_receiver_with_remb_on_reports_what_arrives_after_five_seconds() {
    let (mut media, track, _answerer, _) =
        loopback(TrackSpec::video("camera").bitrate(400_000), 0).await;
    media.set_remb(true);
    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| *e == MediaEvent::Connected).await;
    drive(&mut media, Duration::from_secs(4), &mut events).await;
    assert_eq!(
        media.stats().rembs,
        0,
        "nothing before five seconds of media"
    );
    drive(&mut media, Duration::from_secs(3), &mut events).await;
    let stats = media.stats();
    assert!(stats.subscribed[&track].packets > 0);
    assert!(stats.rembs >= 4, "{} REMBs", stats.rembs);
    // 400 kbit/s of video arrive: the estimate starts there and grows at
    // most 8% a second (timing on a busy machine widens the window).
    assert!(
        (200_000..=700_000).contains(&stats.last_remb_bps),
        "{} bit/s",
        stats.last_remb_bps
    );
}

#[tokio::test]
async fn audio_loss_is_counted_from_sequence_gaps() {
    let (mut media, track, _answerer, _) = loopback(TrackSpec::audio("mic"), 10).await;
    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| *e == MediaEvent::Connected).await;
    drive(&mut media, Duration::from_secs(2), &mut events).await;

    let stats = media.stats();
    let sent = &stats.published["mic"];
    let rx = &stats.subscribed[&track];
    // 50 a second, never more; a loaded machine's timers fire late and the
    // clock does not catch up, so fewer is only a slow machine.
    assert!(
        (50..=105).contains(&sent.packets),
        "{} packets in 2 s at 50/s",
        sent.packets
    );
    assert_eq!(
        sent.bytes,
        sent.packets * 100,
        "100-byte packets at 40 kbit/s"
    );
    assert_eq!(rx.frames, rx.packets, "every audio packet is a frame");
    // The answerer drops every 10th packet; audio has no retransmission.
    let lost = rx.lost();
    let tenth = rx.expected() / 10;
    assert!(
        (tenth.saturating_sub(1)..=tenth + 1).contains(&lost),
        "{lost} lost of {}",
        rx.expected()
    );
    assert!(
        (rx.loss_fraction() - 0.1).abs() < 0.02,
        "{}",
        rx.loss_fraction()
    );
    assert_eq!(rx.packets + lost, rx.expected());
    assert_eq!(rx.keyframes, 0);
}

#[tokio::test]
async fn a_keyframe_request_is_answered_with_the_next_frame() {
    let (mut media, track, answerer, mids) =
        loopback(TrackSpec::video("camera").bitrate(300_000).fps(10), 0).await;
    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| *e == MediaEvent::Connected).await;
    drive(&mut media, Duration::from_millis(700), &mut events).await;
    assert_eq!(media.stats().published["camera"].keyframes, 1);

    answerer.request_keyframe(&mids["publish"]);
    drive(&mut media, Duration::from_millis(500), &mut events).await;

    let stats = media.stats();
    let published = &stats.published["camera"];
    assert_eq!(published.keyframe_requests, 1);
    assert_eq!(published.keyframes, 2, "one at the start, one on request");
    assert_eq!(stats.subscribed[&track].keyframes, 2);
}

#[tokio::test]
async fn data_tracks_flow_both_ways_over_sctp() {
    let mut media = MediaSession::bind("127.0.0.1".parse().unwrap(), "salon")
        .await
        .unwrap();
    media.publish(TrackSpec::data("chat")).unwrap();
    let track = TrackSid::random();
    media.subscribe(track, TrackKind::Data);
    let offer = media.create_offer().unwrap();
    assert!(
        offer.publish.is_empty() && offer.subscribe.is_empty(),
        "data lives on SCTP"
    );
    let answerer = Answerer::spawn().await;
    media
        .accept_answer(&answerer.answer(&offer.sdp).await)
        .unwrap();

    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| {
        matches!(e, MediaEvent::DataChannelOpen { .. })
    })
    .await;
    assert!(events.contains(&MediaEvent::DataChannelOpen {
        name: "chat".into(),
        label: "chat".into()
    }));

    // The answerer plays the server: a channel labelled with the track SID.
    answerer.open_channel(track.as_str());
    drive(&mut media, Duration::from_millis(300), &mut events).await;
    media.send_data("chat", b"hello").unwrap();
    drive_until(&mut media, &mut events, |e| {
        matches!(e, MediaEvent::DataMessage { .. })
    })
    .await;

    assert!(events.contains(&MediaEvent::MediaStarted { track }));
    assert!(events.contains(&MediaEvent::DataMessage {
        track,
        data: b"hello".to_vec()
    }));
    let stats = media.stats();
    assert_eq!(
        (
            stats.published["chat"].packets,
            stats.published["chat"].bytes
        ),
        (1, 5)
    );
    assert_eq!(
        (
            stats.subscribed[&track].packets,
            stats.subscribed[&track].bytes
        ),
        (1, 5)
    );
    assert_eq!(
        media.send_data("mic", b"x").unwrap_err().code,
        salon_client::codes::TRACK_INVALID
    );
}

#[tokio::test]
async fn unpublishing_stops_its_m_line_and_unsubscribing_makes_its_m_line_inactive() {
    let (mut media, track, answerer, _) = loopback(TrackSpec::video("camera"), 0).await;
    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| *e == MediaEvent::Connected).await;
    drive(&mut media, Duration::from_millis(300), &mut events).await;
    assert!(media.stats().subscribed[&track].packets > 0);

    media.unsubscribe(track);
    media.unpublish("camera").unwrap();
    assert!(media.wants_offer());
    let offer = media.create_offer().expect("a renegotiation");
    assert!(offer.publish.is_empty() && offer.subscribe.is_empty());
    // The sending m-line is stopped: port 0 (RFC 8843 §7.5.3). The
    // receiving one goes inactive, kept for a later subscription.
    assert_eq!(offer.sdp.matches("m=video 0 ").count(), 1, "{}", offer.sdp);
    let receiving = offer
        .sdp
        .split("m=")
        .find(|m| m.starts_with("video 9 "))
        .expect("the receiving m-line, still open");
    assert!(receiving.contains("a=inactive"), "{receiving}");
    assert_eq!(
        media.unpublish("camera").unwrap_err().code,
        salon_client::codes::TRACK_INVALID
    );

    // The answerer accepts the re-offer, and nothing flows any more.
    media
        .accept_answer(&answerer.answer(&offer.sdp).await)
        .unwrap();
    assert!(!media.wants_offer());
    drive(&mut media, Duration::from_millis(100), &mut events).await;
    let (sent, received) = {
        let stats = media.stats();
        (
            stats.published["camera"].packets,
            stats.subscribed[&track].packets,
        )
    };
    drive(&mut media, Duration::from_millis(300), &mut events).await;
    let stats = media.stats();
    assert_eq!(stats.published["camera"].packets, sent);
    assert_eq!(stats.subscribed[&track].packets, received);
}

#[tokio::test]
async fn a_track_name_is_published_once() {
    let mut media = MediaSession::bind("127.0.0.1".parse().unwrap(), "salon")
        .await
        .unwrap();
    media.publish(TrackSpec::audio("mic")).unwrap();
    let err = media.publish(TrackSpec::video("mic")).unwrap_err();
    assert_eq!(err.code, salon_client::codes::TRACK_NAME_DUPLICATED);
    let err = media.publish(TrackSpec::data("salon")).unwrap_err();
    assert_eq!(err.code, salon_client::codes::TRACK_NAME_DUPLICATED);
    let err = MediaSession::bind("0.0.0.0".parse().unwrap(), "salon")
        .await
        .unwrap_err();
    assert_eq!(err.code, salon_client::codes::MEDIA_FAILED);
}

#[tokio::test]
async fn a_later_subscription_reuses_an_idle_m_line_instead_of_growing_the_sdp() {
    let (mut media, track, answerer, _) = loopback(TrackSpec::video("camera"), 0).await;
    let mut events = Vec::new();
    drive_until(&mut media, &mut events, |e| *e == MediaEvent::Connected).await;
    media.unsubscribe(track);
    let offer = media.create_offer().expect("deactivation");
    media
        .accept_answer(&answerer.answer(&offer.sdp).await)
        .unwrap();
    let m_lines = offer.sdp.matches("m=").count();

    for round in 0..5u8 {
        let other = TrackSid::from_bytes([round + 1; 16]);
        media.subscribe(other, TrackKind::Video);
        let offer = media.create_offer().expect("reactivation");
        assert_eq!(offer.subscribe.len(), 1);
        assert_eq!(
            offer.sdp.matches("m=").count(),
            m_lines,
            "round {round}: no new m-line"
        );
        media
            .accept_answer(&answerer.answer(&offer.sdp).await)
            .unwrap();
        media.unsubscribe(other);
        let offer = media.create_offer().expect("deactivation");
        assert_eq!(offer.sdp.matches("m=").count(), m_lines);
        media
            .accept_answer(&answerer.answer(&offer.sdp).await)
            .unwrap();
    }
}

/// Drive two sessions at once for `duration`.
async fn drive_pair(
    a: &mut MediaSession,
    b: &mut MediaSession,
    duration: Duration,
    events: &mut Vec<MediaEvent>,
) {
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        tokio::select! {
            r = a.step() => r.unwrap(),
            r = b.step() => r.unwrap(),
            () = tokio::time::sleep_until(deadline) => return,
        }
        while a.poll_event().is_some() {}
        while let Some(e) = b.poll_event() {
            events.push(e);
        }
    }
}

#[tokio::test]
async fn an_offer_made_by_the_remote_side_is_answered_and_measured() {
    // The sender plays the server that offers (as Janus offers a
    // subscription); the receiver answers it.
    let ip = "127.0.0.1".parse().unwrap();
    let mut sender = MediaSession::bind(ip, "salon").await.unwrap();
    sender.without_control_channel();
    sender.publish(TrackSpec::audio("mic")).unwrap();
    sender.publish(TrackSpec::video("camera")).unwrap();
    let offer = sender.create_offer().expect("an offer");
    assert!(!offer.sdp.contains("m=application"), "{}", offer.sdp);
    let mid_of = |name: &str| {
        offer
            .publish
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.mid.clone())
            .unwrap()
    };
    let (audio, video) = (TrackSid::random(), TrackSid::random());
    let mut receiver = MediaSession::bind(ip, "salon").await.unwrap();
    let answer = receiver
        .accept_offer(
            &offer.sdp,
            &[
                RemoteTrack {
                    mid: mid_of("mic"),
                    track: audio,
                    kind: TrackKind::Audio,
                },
                RemoteTrack {
                    mid: mid_of("camera"),
                    track: video,
                    kind: TrackKind::Video,
                },
            ],
        )
        .unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    sender.accept_answer(&answer).unwrap();

    let mut events = Vec::new();
    drive_pair(
        &mut sender,
        &mut receiver,
        Duration::from_millis(1500),
        &mut events,
    )
    .await;
    assert!(events.contains(&MediaEvent::Connected), "{events:?}");
    for track in [audio, video] {
        assert!(
            events.contains(&MediaEvent::MediaStarted { track }),
            "{events:?}"
        );
        let rx = receiver.stats().subscribed[&track].clone();
        assert!(rx.packets > 0);
        assert_eq!((rx.lost(), rx.foreign), (0, 0));
        assert_eq!(rx.latency.count(), rx.packets);
    }

    // A second offer restates the layout: the camera's m-line now carries
    // another track, which starts afresh; the microphone's is dropped.
    let other = TrackSid::random();
    let answer = receiver
        .accept_offer(
            &offer.sdp,
            &[RemoteTrack {
                mid: mid_of("camera"),
                track: other,
                kind: TrackKind::Video,
            }],
        )
        .unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    let audio_before = receiver.stats().subscribed[&audio].packets;
    drive_pair(
        &mut sender,
        &mut receiver,
        Duration::from_millis(500),
        &mut events,
    )
    .await;
    let stats = receiver.stats();
    assert_eq!(stats.subscribed[&audio].packets, audio_before);
    assert!(stats.subscribed[&other].packets > 0);
    assert!(events.contains(&MediaEvent::MediaStarted { track: other }));

    // No crossing offers.
    sender.publish(TrackSpec::video("screen")).unwrap();
    let _pending = sender.create_offer().expect("a second offer");
    let err = sender.accept_offer(&offer.sdp, &[]).unwrap_err();
    assert_eq!(err.code, salon_client::codes::REMOTE_DESCRIPTION_REJECTED);
}

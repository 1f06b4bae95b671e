//! The floor target end to end: a relay on a thread of this process, the
//! runner driving participants through it, the report read back. These
//! check that the relay forwards everything and the target measures it,
//! not how fast anything is.

use std::sync::Arc;
use std::time::Duration;

use salon_loadtest::{FloorTarget, Plan, RunOptions, run};

fn short(mut plan: Plan) -> Plan {
    plan.ramp = Duration::from_millis(300);
    plan.settle = Duration::from_secs(5);
    plan.duration = Duration::from_secs(3);
    plan.prefix = "floor-test".into();
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_of_three_through_the_relay_loses_nothing() {
    let relay = salon_floor::spawn("127.0.0.1:0".parse().unwrap(), salon_floor::Mode::Plain)
        .expect("the relay starts");
    let target = Arc::new(FloorTarget::new(relay.local_addr()));
    let mut options = RunOptions::new(short(Plan::meeting(1, 3)));
    // The relay runs in this process: its CPU is ours.
    options.server_pid = Some(std::process::id());
    let report = run(target, options, |_| {}).await.expect("the run runs");
    let (stats, sockets) = relay.stop().expect("the relay stops cleanly");

    assert_eq!(report.target.kind, "floor");
    // (Warnings about a busy machine may come: the tests share two cores.)
    assert!(
        !report.warnings.iter().any(|w| w.contains("subscriptions")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.joins.joined, 3);
    let window = report.window.as_ref().expect("a measurement window");

    // Three publishers, each subscribed to the other two's audio and video.
    assert_eq!(window.subscriptions.expected, 12);
    assert_eq!(window.subscriptions.with_media, 12);
    assert_eq!(report.subscriptions.len(), 12);
    for s in &report.subscriptions {
        let who = format!("{} ← {:?} {:?}", s.subscriber, s.publisher, s.track_name);
        assert!(s.packets > 0, "{who}: no packets");
        assert_eq!(s.lost, 0, "{who}: lost {} of {}", s.lost, s.expected);
        assert!(s.publisher.is_some(), "{who}: publisher unknown");
        assert_eq!(s.latency_us.count, s.packets, "{who}: every packet timed");
    }
    assert_eq!(window.received.lost, 0);
    assert_eq!(window.received.foreign, 0, "every packet carried its probe");
    // 50 audio packets a second and 30 frames of several packets.
    assert!(window.sent.audio_packets >= 3 * 50 * 2, "{:?}", window.sent);
    assert!(window.sent.video_packets > window.sent.audio_packets);

    let server = report.server.as_ref().expect("the server section");
    assert_eq!(server.forwarded_source, "subscribers");
    assert!(server.forwarded_packets > 0);

    // Nothing reached the relay that it could not place.
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!((stats.joins, stats.leaves, stats.refusals), (3, 3, 0));
    assert_eq!(sockets.send_errors, 0);
    assert!(stats.rtp_forwarded >= window.received.packets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webinar_through_the_batched_relay_reaches_every_subscriber() {
    let mode = if cfg!(target_os = "linux") {
        salon_floor::Mode::Batched
    } else {
        salon_floor::Mode::Plain
    };
    let relay = salon_floor::spawn("127.0.0.1:0".parse().unwrap(), mode).unwrap();
    let target = Arc::new(FloorTarget::new(relay.local_addr()));
    let mut plan = short(Plan::webinar(1, 4));
    plan.video = Some(salon_loadtest::VideoShape {
        bitrate_bps: 500_000,
        fps: 15,
        simulcast: false,
    });
    let report = run(target, RunOptions::new(plan), |_| {}).await.unwrap();
    let (stats, _) = relay.stop().unwrap();

    let window = report.window.as_ref().expect("a measurement window");
    assert_eq!(window.subscriptions.expected, 8);
    assert_eq!(window.subscriptions.with_media, 8);
    assert_eq!(window.received.lost, 0);
    for s in &report.subscriptions {
        assert_eq!(s.publisher.as_deref(), Some("floor-test-0-p0"), "{s:?}");
    }
    assert_eq!(stats.dropped(), 0, "{stats:?}");
}

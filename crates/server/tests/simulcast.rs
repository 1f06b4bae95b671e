//! RID simulcast end to end with real Rust clients (`salon-client`) over
//! real UDP on loopback: a publisher sends three synthetic VP8 layers
//! (`a=simulcast:send q;h;f`, keyframes announcing 160×90, 320×180,
//! 640×360); a subscriber receives the layer its render dimensions ask for
//! and moves between layers on one continuous stream; a subscriber whose
//! `maxSubscriptionBitrate` is low receives a low layer; the publisher is
//! told (`layers`) to pause the layers nobody wants and to resume them when
//! someone does, and the Rust client obeys.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use salon_client::{Client, TrackKind, TrackSid, TrackSpec};
use salon_signal::{ClientMessage, Dimensions};

const WAIT: Duration = Duration::from_secs(10);

fn camera() -> TrackSpec {
    TrackSpec::video("camera").fps(15).simulcast(&[
        ("q", 160, 90, 100_000),
        ("h", 320, 180, 300_000),
        ("f", 640, 360, 900_000),
    ])
}

/// The video `client` receives: track, packets, keyframe width, loss.
fn video(client: &Client) -> Option<(TrackSid, u64, u16, f64)> {
    let stats = client.stats();
    stats
        .subscribed
        .iter()
        .find(|(_, r)| r.kind == TrackKind::Video)
        .map(|(t, r)| (*t, r.packets, r.width, r.loss_fraction()))
}

/// Wait until `f` holds of `client`, reading its events meanwhile.
async fn until(client: &mut Client, what: &str, f: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f(client) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}: {:#?}",
            client.stats()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), client.next_event()).await;
    }
}

async fn render(client: &Client, track: TrackSid, width: u32, height: u32) {
    client
        .adaptive(ClientMessage::SetRenderDimensions {
            track,
            dimensions: Some(Dimensions { width, height }),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_the_layer_its_render_dimensions_ask_for_on_one_stream() {
    let s = TestServer::start().await;
    let alice = s.client("alice", "simulcast", &[camera()]).await;
    let mut bob = s.client("bob", "simulcast", &[]).await;
    until(&mut bob, "video arrives", |c| {
        video(c).is_some_and(|(_, packets, width, _)| packets > 0 && width > 0)
    })
    .await;
    let (track, ..) = video(&bob).unwrap();

    render(&bob, track, 160, 90).await;
    until(&mut bob, "the 160-wide layer", |c| {
        video(c).is_some_and(|v| v.2 == 160)
    })
    .await;
    render(&bob, track, 640, 360).await;
    until(&mut bob, "the 640-wide layer", |c| {
        video(c).is_some_and(|v| v.2 == 640)
    })
    .await;
    render(&bob, track, 320, 180).await;
    until(&mut bob, "the 320-wide layer", |c| {
        video(c).is_some_and(|v| v.2 == 320)
    })
    .await;
    // Still flowing, and one stream: the switches left no sequence gaps.
    let (_, before, ..) = video(&bob).unwrap();
    until(&mut bob, "more video", |c| {
        video(c).is_some_and(|v| v.1 > before + 30)
    })
    .await;
    let (.., loss) = video(&bob).unwrap();
    assert!(loss < 0.02, "loss {loss} across layer switches");
    alice.leave().await;
    bob.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_max_subscription_bitrate_gets_a_low_layer() {
    let s = TestServer::start().await;
    let alice = s.client("alice", "capped", &[camera()]).await;
    let mut carol = s.client("carol", "capped", &[]).await;
    carol
        .adaptive(ClientMessage::SetBandwidthProfile {
            mode: None,
            max_subscription_bitrate: Some(200_000),
            dominant_speaker_priority: None,
            track_switch_off_mode: None,
            max_tracks: None,
        })
        .await
        .unwrap();
    until(&mut carol, "video arrives", |c| {
        video(c).is_some_and(|(_, packets, width, _)| packets > 0 && width > 0)
    })
    .await;
    // Measured bitrates take a second or two; then the cap holds it low.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, before, ..) = video(&carol).unwrap();
    until(&mut carol, "more video", |c| {
        video(c).is_some_and(|v| v.1 > before + 20)
    })
    .await;
    let (_, _, width, _) = video(&carol).unwrap();
    assert_eq!(width, 160, "the only layer under 200 kbit/s");
    alice.leave().await;
    carol.leave().await;
}

/// The RIDs `client`'s camera was told to pause.
fn paused(client: &Client) -> Vec<String> {
    client
        .stats()
        .published
        .get("camera")
        .map(|p| p.paused.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_nobody_receives_keeps_its_lowest_layer_and_a_subscriber_brings_the_rest_back() {
    let s = TestServer::start().await;
    let mut alice = s.client("alice", "pausing", &[camera()]).await;
    // Alone: after five seconds only "q" is sent.
    until(&mut alice, "h and f paused", |c| paused(c) == ["h", "f"]).await;

    let mut bob = s.client("bob", "pausing", &[]).await;
    until(&mut bob, "video arrives", |c| {
        video(c).is_some_and(|(_, packets, width, _)| packets > 0 && width > 0)
    })
    .await;
    // Bob's allocation wants the top layer as it was last heard: it is
    // resumed and he is switched to it at its first keyframe.
    until(&mut bob, "the 640-wide layer", |c| {
        video(c).is_some_and(|v| v.2 == 640)
    })
    .await;
    until(&mut alice, "every layer sent", |c| paused(c).is_empty()).await;
    alice.leave().await;
    bob.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layers_above_what_the_only_subscriber_renders_are_paused_and_resumed_when_it_asks() {
    let s = TestServer::start().await;
    let mut alice = s.client("alice", "render", &[camera()]).await;
    let mut bob = s.client("bob", "render", &[]).await;
    until(&mut bob, "video arrives", |c| {
        video(c).is_some_and(|(_, packets, width, _)| packets > 0 && width > 0)
    })
    .await;
    let (track, ..) = video(&bob).unwrap();

    render(&bob, track, 160, 90).await;
    until(&mut alice, "h and f paused", |c| paused(c) == ["h", "f"]).await;
    // Bob still receives the low layer.
    let (_, before, ..) = video(&bob).unwrap();
    until(&mut bob, "more video", |c| {
        video(c).is_some_and(|v| v.1 > before + 20 && v.2 == 160)
    })
    .await;

    let asked = Instant::now();
    render(&bob, track, 640, 360).await;
    until(&mut bob, "the 640-wide layer", |c| {
        video(c).is_some_and(|v| v.2 == 640)
    })
    .await;
    eprintln!(
        "paused top layer back at the subscriber in {:?}",
        asked.elapsed()
    );
    until(&mut alice, "every layer sent", |c| paused(c).is_empty()).await;

    render(&bob, track, 320, 180).await;
    until(&mut alice, "f paused", |c| paused(c) == ["f"]).await;
    let (.., loss) = video(&bob).unwrap();
    assert!(loss < 0.02, "loss {loss} across pauses and switches");
    alice.leave().await;
    bob.leave().await;
}

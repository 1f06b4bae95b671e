//! Joining and leaving many times leaves nothing behind. Its own test
//! binary: it counts the process's file descriptors, which tests running
//! beside it in the same process would move.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use salon_client::{ClientEvent, TrackSpec};

const WAIT: Duration = Duration::from_secs(10);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_leave_cycles_leave_nothing_behind() {
    use std::sync::atomic::Ordering::Relaxed;
    let s = TestServer::start().await;
    // Someone stays, so every cycle subscribes and forwards.
    let mut host = s.client("host", "churn", &[TrackSpec::audio("mic")]).await;
    let cycle = |i: usize| {
        let s = &s;
        async move {
            let mut guest = s
                .client(&format!("guest-{i}"), "churn", &[TrackSpec::audio("mic")])
                .await;
            guest
                .wait_for(|e| matches!(e, ClientEvent::MediaStarted { .. }), WAIT)
                .await
                .expect("media");
            guest.leave().await;
        }
    };
    for i in 0..5 {
        cycle(i).await;
    }
    let baseline_fds = open_fds();
    for i in 5..60 {
        cycle(i).await;
    }
    // Everything a guest held is released: media peers, sessions, room
    // membership, sockets.
    let deadline = Instant::now() + WAIT;
    loop {
        let peers = s.state.media.stats().peers.load(Relaxed);
        let sessions = s.state.signaling.len();
        let members = s
            .state
            .rooms
            .call(|rooms, _| rooms.participant_count())
            .await
            .unwrap();
        if peers == 1 && sessions == 1 && members == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {peers} peers, {sessions} sessions, {members} members"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fds = open_fds();
    assert!(
        fds <= baseline_fds + 4,
        "file descriptors grew from {baseline_fds} to {fds}"
    );
    // And the host heard every one of them come and go.
    assert!(
        host.stats().subscribed.len() >= 55,
        "{}",
        host.stats().subscribed.len()
    );
    let _ = host.next_event().await;
    host.leave().await;
}

//! Join a room with several synthetic participants, let media flow, and
//! print what each one received.
//!
//! ```text
//! cargo run -p salon-client --example room -- URL ROOM SECONDS TOKEN...
//! cargo run -p salon-client --example room -- ws://127.0.0.1:3000/v1/signaling standup 5 \
//!     "$(salon token create --identity a --room standup)" \
//!     "$(salon token create --identity b --room standup)"
//! ```
//!
//! Every participant publishes `mic`, `camera` and a `chat` data track and
//! says hello on `chat` once a second. Set `RUST_LOG=salon_client=debug` for
//! the client's log.

use std::time::Duration;

use salon_client::{Client, ClientConfig, ClientEvent, TrackSpec};

#[tokio::main]
async fn main() {
    tracing_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, room, seconds, tokens @ ..] = args.as_slice() else {
        eprintln!("usage: room URL ROOM SECONDS TOKEN...");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().unwrap_or(5);

    let mut clients = Vec::new();
    for token in tokens {
        let config = ClientConfig::new(url.as_str(), token.as_str(), room.as_str())
            .publish(TrackSpec::audio("mic"))
            .publish(TrackSpec::video("camera"))
            .publish(TrackSpec::data("chat"));
        match Client::connect(config).await {
            Ok(client) => {
                println!(
                    "{} joined {} as {}",
                    client.participant().identity,
                    client.room().name,
                    client.participant().sid
                );
                clients.push(client);
            }
            Err(e) => {
                eprintln!("connect failed: {e}");
                std::process::exit(1);
            }
        }
    }

    let mut tasks = Vec::new();
    for mut client in clients {
        tasks.push(tokio::spawn(async move {
            let who = client.participant().identity.clone();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
            let mut hello = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = hello.tick() => {
                        let _ = client.send_data("chat", format!("hello from {who}")).await;
                    }
                    event = client.next_event() => match event {
                        Some(ClientEvent::DataMessage { track, data }) => {
                            println!("{who}: {track}: {}", String::from_utf8_lossy(&data));
                        }
                        Some(event @ ClientEvent::Disconnected { .. }) => {
                            println!("{who}: {event:?}");
                            break;
                        }
                        Some(event) => println!("{who}: {event:?}"),
                        None => break,
                    }
                }
            }
            (who, client)
        }));
    }
    for task in tasks {
        let Ok((who, client)) = task.await else {
            continue;
        };
        let stats = client.stats();
        for (name, s) in &stats.published {
            println!(
                "{who} sent {name} ({:?}): {} packets, {} frames, {} keyframes, {} keyframe requests",
                s.track, s.packets, s.frames, s.keyframes, s.keyframe_requests
            );
        }
        for (track, s) in &stats.subscribed {
            println!(
                "{who} got {track} ({:?}): {} packets, {} frames, {} keyframes, lost {} ({:.2} %), late {}, \
                 latency p50 {:?} p99 {:?} max {:?} µs, first packet after {:?}, first keyframe after {:?}, {:.0} kbit/s",
                s.kind,
                s.packets,
                s.frames,
                s.keyframes,
                s.lost(),
                s.loss_fraction() * 100.0,
                s.late(),
                s.latency.p50(),
                s.latency.p99(),
                s.latency.max(),
                s.time_to_first_packet(),
                s.time_to_first_keyframe(),
                s.bitrate_bps() / 1000.0,
            );
        }
        client.leave().await;
    }
}

fn tracing_init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

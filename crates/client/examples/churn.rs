//! Join and leave a room over and over, and watch the server's memory and
//! file descriptors: they must come back to where they were.
//!
//! ```text
//! cargo run --release -p salon-client --example churn -- \
//!     ws://127.0.0.1:3999/v1/signaling SERVER_PID ACCOUNT_SID API_KEY API_SECRET [CYCLES]
//! ```
//!
//! One participant stays in the room publishing audio, so every cycle
//! subscribes, negotiates, receives media and tears down. Prints the
//! server's RSS and open file descriptors every 100 cycles.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use salon_client::{Client, ClientConfig, ClientEvent, TrackSpec};
use salon_token::{ApiKey, Grant, MintOptions};

fn server(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss_kib, fds)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, pid, account, key, secret, rest @ ..] = args.as_slice() else {
        eprintln!("usage: churn URL SERVER_PID ACCOUNT_SID API_KEY API_SECRET [CYCLES]");
        std::process::exit(2);
    };
    let pid: u32 = pid.parse()?;
    let cycles: usize = rest.first().map(|c| c.parse()).transpose()?.unwrap_or(1000);
    let key = ApiKey::new(key.parse()?, account.parse()?, secret.as_str());
    let token = |identity: &str| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        salon_token::mint(&key, &Grant::new(identity), now, &MintOptions::default())
    };
    let room = format!("churn-{}", std::process::id());
    let mut host = Client::connect(
        ClientConfig::new(url, token("host")?, &room).publish(TrackSpec::audio("mic")),
    )
    .await?;
    let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    // Read the host's events as a real application would; report trouble.
    let watcher = tokio::spawn(async move {
        loop {
            tokio::select! {
                event = host.next_event() => match event {
                    Some(e @ (ClientEvent::Error { .. } | ClientEvent::Disconnected { .. })) => eprintln!("host: {e:?}"),
                    Some(_) => {}
                    None => break,
                },
                _ = &mut stop => break,
            }
        }
        host
    });

    let started = Instant::now();
    println!(
        "{:>6}  {:>10}  {:>5}  {:>8}",
        "cycle", "RSS (KiB)", "fds", "elapsed"
    );
    let (rss, fds) = server(pid);
    println!(
        "{:>6}  {rss:>10}  {fds:>5}  {:>7.1}s",
        0,
        started.elapsed().as_secs_f32()
    );
    let mut failures = 0;
    for i in 1..=cycles {
        let config = ClientConfig::new(url, token(&format!("guest-{i}"))?, &room)
            .publish(TrackSpec::audio("mic"));
        let mut guest = Client::connect(config).await?;
        let media = guest
            .wait_for(
                |e| matches!(e, ClientEvent::MediaStarted { .. }),
                Duration::from_secs(10),
            )
            .await;
        if let Err(e) = media {
            failures += 1;
            eprintln!(
                "cycle {i}: no media: {e}; guest {}: {:#?}",
                guest.participant().sid,
                guest.stats()
            );
        }
        guest.leave().await;
        if i % 100 == 0 {
            let (rss, fds) = server(pid);
            println!(
                "{i:>6}  {rss:>10}  {fds:>5}  {:>7.1}s",
                started.elapsed().as_secs_f32()
            );
        }
    }
    let _ = stop_tx.send(());
    if let Ok(host) = watcher.await {
        host.leave().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, fds) = server(pid);
    println!("{:>6}  {rss:>10}  {fds:>5}  (everyone gone)", "end");
    println!("cycles without media: {failures}");
    Ok(())
}

//! A burst of connections against a running server, and its memory before,
//! during and after: does RSS come back?
//!
//! ```text
//! cargo run --release -p salon-server --example burst -- \
//!     sessions 127.0.0.1:3999 SERVER_PID ACCOUNT_SID API_KEY API_SECRET [N]
//! cargo run --release -p salon-server --example burst -- heads 127.0.0.1:3999 SERVER_PID [N]
//! ```
//!
//! `sessions`: N signaling sessions join rooms of 50 (signaling only, no
//! media), stay a moment, and all leave at once. `heads`: N connections each
//! send half a request head and wait until the server closes them (its
//! header deadline) or 15 s pass. Prints the server's RSS and open
//! descriptors at each step; the client needs `ulimit -n` above N.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use salon_token::{ApiKey, Grant, MintOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

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

fn report(step: &str, pid: u32, started: Instant) {
    let (rss, fds) = server(pid);
    println!(
        "{step:<28} RSS {:>8.1} MiB  fds {fds:>6}  at {:>6.1} s",
        rss as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    match args.as_slice() {
        [mode, addr, pid, account, key, secret, rest @ ..] if mode == "sessions" => {
            let addr: SocketAddr = addr.parse()?;
            let pid: u32 = pid.parse()?;
            let n: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(1000);
            let key = ApiKey::new(key.parse()?, account.parse()?, secret.as_str());
            sessions(addr, pid, &key, n, started).await
        }
        [mode, addr, pid, rest @ ..] if mode == "heads" => {
            let addr: SocketAddr = addr.parse()?;
            let pid: u32 = pid.parse()?;
            let n: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(1000);
            heads(addr, pid, n, started).await
        }
        _ => {
            eprintln!(
                "usage: burst sessions ADDR SERVER_PID ACCOUNT_SID API_KEY API_SECRET [N]\n       burst heads ADDR SERVER_PID [N]"
            );
            std::process::exit(2);
        }
    }
}

async fn sessions(
    addr: SocketAddr,
    pid: u32,
    key: &ApiKey,
    n: usize,
    started: Instant,
) -> Result<(), Box<dyn std::error::Error>> {
    report("before", pid, started);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let url = format!("ws://{addr}/v1/signaling");
    let mut joining = tokio::task::JoinSet::new();
    for i in 0..n {
        let token = salon_token::mint(
            key,
            &Grant::new(format!("burst-{i}")),
            now,
            &MintOptions::default(),
        )?;
        let url = url.clone();
        let room = format!("burst-{}-{}", std::process::id(), i / 50);
        joining.spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.ok()?;
            let join =
                serde_json::json!({"type": "join", "version": 1, "token": token, "room": room});
            ws.send(Message::Text(join.to_string().into())).await.ok()?;
            // Until `joined`; the others' news may come first.
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message
                    && text.contains("\"joined\"")
                {
                    return Some(ws);
                }
            }
            None
        });
    }
    let mut sockets = Vec::new();
    while let Some(joined) = joining.join_next().await {
        if let Ok(Some(ws)) = joined {
            sockets.push(ws);
        }
    }
    println!("{} of {n} sessions joined", sockets.len());
    report("all joined", pid, started);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Everyone leaves at once, reading the room's news until its own
    // goodbye.
    let mut leaving = tokio::task::JoinSet::new();
    for mut ws in sockets {
        leaving.spawn(async move {
            let _ = ws.send(Message::Text(r#"{"type":"leave"}"#.into())).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(Ok(message)) = ws.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        });
    }
    while leaving.join_next().await.is_some() {}
    report("all left", pid, started);
    settle(pid, started).await;
    Ok(())
}

async fn heads(
    addr: SocketAddr,
    pid: u32,
    n: usize,
    started: Instant,
) -> Result<(), Box<dyn std::error::Error>> {
    report("before", pid, started);
    let mut held = Vec::new();
    for _ in 0..n {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(mut stream) => {
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: salon.test\r\nX-Slow: ")
                    .await;
                held.push(stream);
            }
            Err(e) => {
                println!("connect failed after {} connections: {e}", held.len());
                break;
            }
        }
    }
    report(&format!("{} heads sent", held.len()), pid, started);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut closed = 0;
    for stream in &mut held {
        let mut buf = [0u8; 64];
        if matches!(
            tokio::time::timeout_at(deadline, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        ) {
            closed += 1;
        }
    }
    println!("{closed} of {} closed by the server", held.len());
    report("held ones gone", pid, started);
    drop(held);
    settle(pid, started).await;
    Ok(())
}

/// RSS 5 and 30 seconds after the burst.
async fn settle(pid: u32, started: Instant) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    report("5 s later", pid, started);
    tokio::time::sleep(Duration::from_secs(25)).await;
    report("30 s later", pid, started);
}

//! What relaying costs the TURN server: CPU time per relayed packet.
//!
//! The server runs alone on one thread (a current-thread runtime); a TURN
//! client on another thread allocates, binds a channel to a peer socket and
//! sends 1200-byte channel-data packets at a fixed rate, and the peer
//! echoes each one back through the relayed address, so every packet
//! crosses the server twice (client → peer, peer → client). The server
//! thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) divided by the packets it
//! relayed is the figure in docs/performance.md.
//!
//!   cargo run --release --example relay_cost -p salon-turn -- [packets per second] [seconds]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use salon_turn::client::{Received, Transport, TurnClient};
use salon_turn::{PeerPolicy, Quotas, Rules, TurnConfig, credentials};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rate = args.first().copied().unwrap_or(10_000);
    let seconds = args.get(1).copied().unwrap_or(10);
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let (addr_tx, addr_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let server = salon_turn::start(TurnConfig {
                udp: Some(loopback),
                tcp: None,
                tls: None,
                relay_ip: "127.0.0.1".parse().unwrap(),
                relay_public_ip: None,
                rules: Rules {
                    realm: "salon".into(),
                    secret: b"bench".to_vec(),
                    nonce_key: [1; 32],
                    policy: PeerPolicy {
                        media: vec![peer_addr],
                        allowed: vec![],
                    },
                    default_lifetime: Duration::from_secs(600),
                    max_lifetime: Duration::from_secs(600),
                },
                quotas: Quotas::default(),
            })
            .await
            .unwrap();
            addr_tx.send(server.udp.unwrap()).unwrap();
            let start = thread_cpu();
            while done_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            thread_cpu() - start
        })
    });
    let turn = addr_rx.recv().unwrap();

    // The peer: echo everything back to where it came from (the relayed address).
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = peer.recv_from(&mut buf) {
            let _ = peer.send_to(&buf[..n], from);
        }
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sent, received) = rt.block_on(async {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let c = credentials::mint(b"bench", "bench", now, 600);
        let mut client = TurnClient::connect(turn, Transport::Udp, &c.username, &c.password)
            .await
            .unwrap();
        client.allocate().await.unwrap();
        client.channel_bind(0x4000, peer_addr).await.unwrap();
        let payload = vec![0x55u8; 1200];
        let interval = Duration::from_secs(1) / rate as u32;
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut next = Instant::now();
        let (mut sent, mut received) = (0u64, 0u64);
        while Instant::now() < end {
            client.send_channel(0x4000, &payload).await.unwrap();
            sent += 1;
            next += interval;
            // Take what came back while waiting for the next send time.
            while let Ok(Ok(Received::Channel(..))) = tokio::time::timeout(
                next.saturating_duration_since(Instant::now()),
                client.recv(Duration::from_secs(1)),
            )
            .await
            {
                received += 1;
            }
        }
        while let Ok(Received::Channel(..)) = client.recv(Duration::from_millis(300)).await {
            received += 1;
        }
        (sent, received)
    });
    done_tx.send(()).unwrap();
    let cpu = server.join().unwrap();
    let relayed = sent + received;
    println!(
        "rate {rate}/s for {seconds} s: sent {sent}, echoed back {received} ({:.2}% lost); \
         server thread CPU {:.3} s = {:.2} µs per relayed packet ({relayed} relayed), {:.0}% of one core",
        100.0 * (sent - received.min(sent)) as f64 / sent as f64,
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / relayed as f64,
        100.0 * cpu.as_secs_f64() / seconds as f64,
    );
}

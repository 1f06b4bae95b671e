//! Connectivity through a real server: the ICE servers in `joined` carry
//! credentials the built-in TURN server accepts, relaying only to Salon's
//! media port; Twilio's Network Traversal Service route answers in
//! Twilio's shape with working credentials; media flows over ICE-TCP and
//! through the built-in TURN server, and TCP connections to the media port
//! that break its rules are closed alone.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Options, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use salon_client::{Client, ClientConfig, MediaTransport, TrackSpec};
use salon_server::connectivity::{BuiltInTurn, ConnectivityConfig};
use salon_turn::client::{Error, Transport, TurnClient};
use serde_json::{Value, json};
use std::sync::atomic::Ordering::Relaxed;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn with_turn() -> Options {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Options {
        connectivity: ConnectivityConfig {
            secret: b"connectivity-test".to_vec(),
            credential_ttl: Duration::from_secs(3600),
            external_urls: Vec::new(),
            turn: Some(BuiltInTurn {
                host: "127.0.0.1".into(),
                tls_host: "localhost".into(),
                udp: Some(loopback),
                tcp: Some(loopback),
                tls: None,
                public_ip: None,
                allow_peers: Vec::new(),
                quotas: Default::default(),
            }),
        },
        ..Options::default()
    }
}

async fn joined(s: &TestServer, identity: &str) -> Value {
    let (mut socket, _) = tokio_tungstenite::connect_async(s.signaling_url())
        .await
        .unwrap();
    let join =
        json!({"type": "join", "version": 1, "token": s.token(identity, None), "room": "lobby"});
    socket
        .send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no joined: {other:?}"),
        }
    }
}

/// The address in a `turn:host:port?transport=…` URL.
fn turn_addr(url: &str) -> SocketAddr {
    let rest = url.split_once(':').unwrap().1;
    rest.split('?').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn joined_hands_out_turn_credentials_that_relay_to_the_media_port_only() {
    let s = TestServer::with(with_turn()).await;
    let joined = joined(&s, "alice").await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let servers = joined["ice_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{joined}");
    let stun: Vec<&str> = servers[0]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(stun[0].starts_with("stun:127.0.0.1:"), "{stun:?}");
    assert!(servers[0].get("username").is_none());
    let turn: Vec<&str> = servers[1]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(
        turn.iter().any(|u| u.ends_with("?transport=udp")),
        "{turn:?}"
    );
    assert!(
        turn.iter().any(|u| u.ends_with("?transport=tcp")),
        "{turn:?}"
    );
    let username = servers[1]["username"].as_str().unwrap();
    let password = servers[1]["credential"].as_str().unwrap();
    assert!(username.ends_with(":alice"), "{username}");

    let media = s.state.media.candidates()[0];
    for url in &turn {
        let transport = if url.ends_with("udp") {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let mut client = TurnClient::connect(turn_addr(url), transport, username, password)
            .await
            .unwrap();
        let relayed = client.allocate().await.unwrap();
        assert_eq!(relayed.ip(), media.ip(), "{url}");
        let metrics = s.state.metrics.render();
        // (The previous URL's allocation may not have ended yet.)
        let alive = metrics
            .lines()
            .find_map(|l| l.strip_prefix("salon_turn_allocations "))
            .and_then(|v| v.parse::<u32>().ok());
        assert!(
            matches!(alive, Some(1 | 2)),
            "{url}: the allocation is not in /metrics:\n{metrics}"
        );
        client.channel_bind(0x4000, media).await.unwrap();
        let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let refused = client.channel_bind(0x4001, elsewhere).await;
        assert!(
            matches!(refused, Err(Error::Refused { code: 403, .. })),
            "{url}: {refused:?}"
        );
        client.refresh(0).await.unwrap();
    }
}

#[tokio::test]
async fn without_turn_joined_lists_no_ice_servers() {
    let s = TestServer::start().await;
    let joined = joined(&s, "bob").await;
    assert_eq!(joined["ice_servers"], json!([]), "{joined}");
}

#[tokio::test]
async fn the_network_traversal_service_answers_like_twilio() {
    let s = TestServer::with(with_turn()).await;
    let path = format!("/2010-04-01/Accounts/{}/Tokens.json", s.account);
    let (status, body) = s.post(&path, &[("Ttl", "600")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["account_sid"], s.account.to_string());
    assert_eq!(body["ttl"], "600");
    assert!(
        body["date_created"].as_str().unwrap().ends_with("+0000"),
        "{body}"
    );
    let servers = body["ice_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{body}");
    for server in servers {
        assert_eq!(server["url"], server["urls"]);
    }
    let turn = &servers[1];
    assert_eq!(turn["username"], body["username"]);
    let mut client = TurnClient::connect(
        turn_addr(turn["urls"].as_str().unwrap()),
        Transport::Udp,
        turn["username"].as_str().unwrap(),
        turn["credential"].as_str().unwrap(),
    )
    .await
    .unwrap();
    client.allocate().await.unwrap();

    // Twilio's errors: no credentials, another account, a bad Ttl.
    let anonymous = s
        .http
        .post(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let other = "/2010-04-01/Accounts/AC00000000000000000000000000000000/Tokens.json";
    assert_eq!(s.post(other, &[]).await.0, StatusCode::NOT_FOUND);
    for ttl in ["0", "86401", "soon"] {
        let (status, body) = s.post(&path, &[("Ttl", ttl)]).await;
        assert_eq!(
            (status, body["code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(20001)),
            "{ttl}: {body}"
        );
    }
}

fn av() -> Vec<TrackSpec> {
    vec![
        TrackSpec::audio("microphone"),
        TrackSpec::video("camera").bitrate(300_000).fps(15),
    ]
}

async fn client_over(
    s: &TestServer,
    identity: &str,
    room: &str,
    transport: MediaTransport,
) -> Client {
    let mut config =
        ClientConfig::new(s.signaling_url(), s.token(identity, None), room).transport(transport);
    for track in av() {
        config = config.publish(track);
    }
    Client::connect(config).await.expect("connected")
}

/// Packets received so far on every subscribed track, once there are `n`.
async fn receiving(client: &mut Client, n: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = client.stats();
        let started = stats.subscribed.values().filter(|r| r.packets > 0).count();
        if started >= n {
            return stats.subscribed.values().map(|r| r.packets).sum();
        }
        assert!(
            Instant::now() < deadline,
            "media on {started} of {n} tracks: {stats:#?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), client.next_event()).await;
    }
}

/// Media keeps arriving at `client`: more packets a second later.
async fn still_receiving(client: &mut Client, what: &str) {
    let before = receiving(client, 2).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(100), client.next_event()).await;
    }
    let after = receiving(client, 2).await;
    assert!(after > before + 20, "{what}: {before} → {after} packets");
}

/// Whether the server closed `stream` within `within` (EOF or reset).
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_over_ice_tcp_and_tcp_connections_that_break_the_rules_are_closed_alone() {
    let s = TestServer::with(Options {
        tcp_limits: salon_media::TcpLimits {
            first_frame_timeout: Duration::from_secs(1),
            max_frame: 1500,
            ..salon_media::TcpLimits::default()
        },
        ..Options::default()
    })
    .await;
    let media_tcp = s.state.media.tcp_addr().expect("ICE-TCP is on by default");
    assert_eq!(media_tcp.port(), s.state.media.local_addr().port());

    // Alice has no UDP candidate at all: her media can only be on TCP.
    let mut alice = client_over(&s, "alice", "tcp", MediaTransport::Tcp).await;
    let mut bob = client_over(&s, "bob", "tcp", MediaTransport::Udp).await;
    receiving(&mut alice, 2).await;
    receiving(&mut bob, 2).await;
    let stats = s.state.media.stats();
    assert_eq!(stats.tcp_connections.load(Relaxed), 1, "alice's connection");
    let rejected = stats.tcp_rejected.load(Relaxed);

    // A connection that sends nothing is closed after the first-frame
    // deadline, not before.
    let mut silent = tokio::net::TcpStream::connect(media_tcp).await.unwrap();
    assert!(
        !closed_by_server(&mut silent, Duration::from_millis(300)).await,
        "closed before its deadline"
    );
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(5)).await,
        "a silent connection is closed"
    );

    // Garbage (an HTTP request: its first two bytes read as a 18 245-byte
    // frame), an oversize frame, and a first frame that is not STUN.
    let mut oversize = vec![0x06, 0x00]; // 1536 > 1500
    oversize.extend_from_slice(&[0x80; 1536]);
    let mut not_stun = vec![0x00, 0x64];
    not_stun.extend_from_slice(&[0x16; 100]);
    let bad: [(&str, &[u8]); 4] = [
        ("HTTP", b"GET / HTTP/1.1\r\nHost: salon\r\n\r\n"),
        ("oversize", &oversize),
        ("not STUN", &not_stun),
        ("empty frame", &[0, 0, 1, 2]),
    ];
    for (what, bytes) in bad {
        let mut stream = tokio::net::TcpStream::connect(media_tcp).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        assert!(
            closed_by_server(&mut stream, Duration::from_secs(5)).await,
            "{what}: closed"
        );
    }
    assert!(
        stats.tcp_rejected.load(Relaxed) >= rejected + 5,
        "each counted: {}",
        stats.tcp_rejected.load(Relaxed)
    );

    // Alice's connection, and everyone's media, carried on throughout.
    still_receiving(&mut alice, "alice over ICE-TCP").await;
    still_receiving(&mut bob, "bob over UDP").await;
    assert_eq!(
        stats.tcp_connections.load(Relaxed),
        1,
        "only alice's is left"
    );
    alice.leave().await;
    bob.leave().await;
}

#[tokio::test]
async fn with_ice_tcp_off_the_media_port_has_no_tcp_side() {
    let s = TestServer::start().await;
    assert!(s.state.media.tcp_addr().is_some());
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let media = salon_media::Media::start(
        salon_media::MediaConfig {
            bind,
            workers: 1,
            ice_tcp: false,
            ..salon_media::MediaConfig::default()
        },
        tx,
    )
    .unwrap();
    assert_eq!(media.tcp_addr(), None);
    media.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_relayed_through_the_built_in_turn_exchanges_media() {
    let s = TestServer::with(with_turn()).await;
    let mut relayed = client_over(&s, "relayed", "turn", MediaTransport::Relay).await;
    let mut direct = client_over(&s, "direct", "turn", MediaTransport::Udp).await;
    receiving(&mut relayed, 2).await;
    receiving(&mut direct, 2).await;
    still_receiving(&mut relayed, "through TURN").await;
    still_receiving(&mut direct, "direct").await;
    relayed.leave().await;
    direct.leave().await;
}

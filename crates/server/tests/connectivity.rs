//! Connectivity through a real server: the ICE servers in `joined` carry
//! credentials the built-in TURN server accepts, relaying only to Salon's
//! media port; Twilio's Network Traversal Service route answers in
//! Twilio's shape with working credentials.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Options, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use salon_server::connectivity::{BuiltInTurn, ConnectivityConfig};
use salon_turn::client::{Error, Transport, TurnClient};
use serde_json::{Value, json};
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

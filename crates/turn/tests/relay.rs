//! The TURN server on loopback, driven by its client over UDP, TCP and
//! TLS: allocations, permissions, channels and relayed data, refused
//! credentials, forbidden peers, quotas.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use salon_turn::client::{Error, Keeper, Received, Transport, TurnClient};
use salon_turn::rustls;
use salon_turn::{PeerPolicy, Quotas, Rules, TurnConfig, TurnServer, credentials};
use tokio::net::UdpSocket;

const SECRET: &[u8] = b"turn-test-secret";
const WAIT: Duration = Duration::from_secs(5);

struct Setup {
    server: TurnServer,
    /// A stand-in for Salon's media port: the one peer the policy allows.
    media: UdpSocket,
    client_tls: Arc<rustls::ClientConfig>,
}

fn unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn setup(quotas: Quotas) -> Setup {
    setup_with(quotas, Duration::from_secs(600)).await
}

/// A server whose allocations last `lifetime` unless refreshed.
async fn setup_with(quotas: Quotas, lifetime: Duration) -> Setup {
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server_tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = salon_turn::start(TurnConfig {
        udp: Some(loopback),
        tcp: Some(loopback),
        tls: Some((loopback, Arc::new(server_tls))),
        relay_ip: "127.0.0.1".parse().unwrap(),
        relay_public_ip: None,
        rules: Rules {
            realm: "salon".into(),
            secret: SECRET.to_vec(),
            nonce_key: rand::random(),
            policy: PeerPolicy {
                media: vec![media.local_addr().unwrap()],
                allowed: vec![],
            },
            default_lifetime: lifetime,
            max_lifetime: Duration::from_secs(3600),
        },
        quotas,
    })
    .await
    .unwrap();
    Setup {
        server,
        media,
        client_tls: Arc::new(client_tls),
    }
}

impl Setup {
    async fn client(&self, transport: &str, identity: &str) -> TurnClient {
        let c = credentials::mint(SECRET, identity, unix(), 300);
        self.client_with(transport, &c.username, &c.password).await
    }

    async fn client_with(&self, transport: &str, username: &str, password: &str) -> TurnClient {
        let (addr, transport) = match transport {
            "udp" => (self.server.udp.unwrap(), Transport::Udp),
            "tcp" => (self.server.tcp.unwrap(), Transport::Tcp),
            _ => (
                self.server.tls.unwrap(),
                Transport::Tls {
                    config: self.client_tls.clone(),
                    server_name: "localhost".into(),
                },
            ),
        };
        TurnClient::connect(addr, transport, username, password)
            .await
            .unwrap()
    }

    async fn media_recv(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0; 2048];
        let (n, from) = tokio::time::timeout(WAIT, self.media.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        buf.truncate(n);
        (buf, from)
    }
}

#[tokio::test]
async fn media_relays_both_ways_over_udp_tcp_and_tls() {
    let s = setup(Quotas::default()).await;
    let media = s.media.local_addr().unwrap();
    for transport in ["udp", "tcp", "tls"] {
        let mut client = s.client(transport, "alice").await;
        let relayed = client.allocate().await.unwrap();
        assert_eq!(relayed.ip().to_string(), "127.0.0.1", "{transport}");

        client.channel_bind(0x4000, media).await.unwrap();
        client
            .send_channel(0x4000, b"rtp from the client")
            .await
            .unwrap();
        let (got, from) = s.media_recv().await;
        assert_eq!(got, b"rtp from the client", "{transport}");
        assert_eq!(
            from, relayed,
            "{transport}: the peer sees the relayed address"
        );

        s.media
            .send_to(b"rtp to the client", relayed)
            .await
            .unwrap();
        assert_eq!(
            client.recv(WAIT).await.unwrap(),
            Received::Channel(0x4000, b"rtp to the client".to_vec()),
            "{transport}"
        );
        client.refresh(0).await.unwrap();
    }
}

/// Relay channel data from `socket` (through the TURN server at
/// `server`) to the media stand-in for `seconds`, four times a second,
/// letting `keeper` (if any) refresh meanwhile. Returns the seconds in
/// which media arrived, and how many refresh responses the keeper took.
async fn relay_for(
    s: &Setup,
    socket: &UdpSocket,
    server: SocketAddr,
    mut keeper: Option<Keeper>,
    seconds: u64,
) -> (Vec<u64>, usize) {
    let start = tokio::time::Instant::now();
    let mut frame = Vec::new();
    let (mut heard, mut answered) = (Vec::new(), 0);
    let (mut buf, mut media_buf) = (vec![0; 2048], vec![0; 2048]);
    while start.elapsed() < Duration::from_secs(seconds) {
        if let Some(keeper) = &mut keeper {
            while let Some(request) = keeper.poll_request(std::time::Instant::now()) {
                socket.send_to(&request, server).await.unwrap();
            }
        }
        salon_turn::stun::write_channel_data(&mut frame, 0x4000, b"rtp", false);
        socket.send_to(&frame, server).await.unwrap();
        let tick = tokio::time::Instant::now() + Duration::from_millis(250);
        loop {
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let (n, _) = r.unwrap();
                    if let Some(keeper) = &mut keeper
                        && keeper.handle_response(&buf[..n]).expect("a refresh is accepted")
                    {
                        answered += 1;
                    }
                }
                r = s.media.recv_from(&mut media_buf) => {
                    r.unwrap();
                    let second = start.elapsed().as_secs();
                    if heard.last() != Some(&second) {
                        heard.push(second);
                    }
                }
                () = tokio::time::sleep_until(tick) => break,
            }
        }
    }
    (heard, answered)
}

#[tokio::test]
async fn a_keeper_refreshes_the_allocation_and_its_channels_past_their_lifetime() {
    let s = setup_with(Quotas::default(), Duration::from_secs(2)).await;
    let media = s.media.local_addr().unwrap();
    let server = s.server.udp.unwrap();

    // Left alone, an allocation of 2 s stops relaying.
    let mut client = s.client("udp", "alone").await;
    client.allocate().await.unwrap();
    client.channel_bind(0x4000, media).await.unwrap();
    let (socket, _) = client.into_udp_parts().unwrap();
    let (heard, _) = relay_for(&s, &socket, server, None, 4).await;
    assert!(heard.contains(&0), "{heard:?}");
    assert!(!heard.contains(&3), "relayed past its lifetime: {heard:?}");

    // Kept, it relays on: Refresh every second, and ChannelBind every
    // second too (so that path is exercised; their real lifetimes are
    // minutes).
    let mut client = s.client("udp", "kept").await;
    client.allocate().await.unwrap();
    client.channel_bind(0x4000, media).await.unwrap();
    let (socket, keeper) = client.into_udp_parts().unwrap();
    assert_eq!(keeper.lifetime(), Duration::from_secs(2));
    let keeper = keeper.with_channel_refresh(Duration::from_secs(1));
    let (heard, answered) = relay_for(&s, &socket, server, Some(keeper), 6).await;
    assert_eq!(heard, [0, 1, 2, 3, 4, 5], "media every second");
    assert!(answered >= 8, "{answered} refreshes answered in 6 s");
}

#[tokio::test]
async fn send_and_data_indications_need_a_permission() {
    let s = setup(Quotas::default()).await;
    let media = s.media.local_addr().unwrap();
    let mut client = s.client("udp", "bob").await;
    let relayed = client.allocate().await.unwrap();

    // Without a permission the peer's datagram is dropped and the client's
    // Send goes nowhere; the permission then lets both through.
    s.media.send_to(b"unasked", relayed).await.unwrap();
    client.send_indication(media, b"too early").await.unwrap();
    client.create_permission(media).await.unwrap();
    client.send_indication(media, b"hello").await.unwrap();
    assert_eq!(s.media_recv().await.0, b"hello");
    s.media.send_to(b"welcome", relayed).await.unwrap();
    assert_eq!(
        client.recv(WAIT).await.unwrap(),
        Received::Data(media, b"welcome".to_vec())
    );
}

#[tokio::test]
async fn wrong_and_expired_credentials_allocate_nothing() {
    let s = setup(Quotas::default()).await;
    let c = credentials::mint(SECRET, "carol", unix(), 300);
    for transport in ["udp", "tcp"] {
        let mut wrong = s
            .client_with(transport, &c.username, "not-the-password")
            .await;
        assert!(
            matches!(
                wrong.allocate().await,
                Err(Error::Refused { code: 401, .. })
            ),
            "{transport}"
        );
    }
    let old = credentials::mint(SECRET, "carol", unix() - 600, 60);
    let mut expired = s.client_with("udp", &old.username, &old.password).await;
    assert!(matches!(
        expired.allocate().await,
        Err(Error::Refused { code: 401, .. })
    ));
    let other = credentials::mint(b"another secret", "carol", unix(), 300);
    let mut foreign = s.client_with("tcp", &other.username, &other.password).await;
    assert!(matches!(
        foreign.allocate().await,
        Err(Error::Refused { code: 401, .. })
    ));
    assert_eq!(s.server.allocations(), 0);
}

#[tokio::test]
async fn only_salons_media_address_is_a_peer() {
    let s = setup(Quotas::default()).await;
    let mut client = s.client("udp", "dave").await;
    let relayed = client.allocate().await.unwrap();
    let elsewhere = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    for peer in [
        elsewhere,
        relayed,
        "169.254.169.254:80".parse().unwrap(),
        "10.0.0.1:7882".parse().unwrap(),
    ] {
        let refused = client.channel_bind(0x4001, peer).await;
        assert!(
            matches!(refused, Err(Error::Refused { code: 403, .. })),
            "{peer}: {refused:?}"
        );
    }
    let refused = client
        .create_permission("192.168.0.1:1".parse().unwrap())
        .await;
    assert!(matches!(refused, Err(Error::Refused { code: 403, .. })));
}

#[tokio::test]
async fn quotas_bound_allocations_per_credential_and_source() {
    let s = setup(Quotas {
        per_credential: 2,
        per_source: 3,
        ..Quotas::default()
    })
    .await;
    let c = credentials::mint(SECRET, "erin", unix(), 300);
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut client = s.client_with("udp", &c.username, &c.password).await;
        client.allocate().await.unwrap();
        kept.push(client);
    }
    let mut third = s.client_with("tcp", &c.username, &c.password).await;
    assert!(matches!(
        third.allocate().await,
        Err(Error::Refused { code: 486, .. })
    ));

    // Another credential from the same address: one more, then the source's limit.
    let mut other = s.client("udp", "frank").await;
    other.allocate().await.unwrap();
    let mut over = s.client("udp", "grace").await;
    assert!(matches!(
        over.allocate().await,
        Err(Error::Refused { code: 486, .. })
    ));
    assert_eq!(s.server.allocations(), 3);

    // Ending one frees its place.
    kept.pop().unwrap().refresh(0).await.unwrap();
    let mut again = s.client("tcp", "grace").await;
    tokio::time::timeout(WAIT, async {
        loop {
            match again.allocate().await {
                Ok(_) => break,
                Err(Error::Refused { code: 486, .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_tcp_connection_that_sends_nothing_is_closed() {
    use tokio::io::AsyncReadExt;
    let s = setup(Quotas::default()).await;
    let mut idle = tokio::net::TcpStream::connect(s.server.tcp.unwrap())
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    // Closed by the server (read returns 0) after its first-allocation deadline.
    let read = tokio::time::timeout(Duration::from_secs(15), idle.read(&mut byte))
        .await
        .unwrap();
    assert_eq!(read.unwrap(), 0);
}

#[tokio::test]
async fn garbage_gets_no_answer_and_harms_no_session() {
    let s = setup(Quotas::default()).await;
    let media = s.media.local_addr().unwrap();
    let mut client = s.client("udp", "heidi").await;
    client.allocate().await.unwrap();
    client.channel_bind(0x4000, media).await.unwrap();

    let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for payload in [
        &b""[..],
        b"\x00\x01\x00\x00",
        b"\x40\x00\xff\xff",
        &[0xAB; 1200],
    ] {
        junk.send_to(payload, s.server.udp.unwrap()).await.unwrap();
    }
    let mut buf = [0u8; 64];
    let answer = tokio::time::timeout(Duration::from_millis(300), junk.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "garbage was answered");

    client.send_channel(0x4000, b"still here").await.unwrap();
    assert_eq!(s.media_recv().await.0, b"still here");
}

/// A STUN Binding request, as a STUN client (or a flood) sends it.
fn binding_request(n: u32) -> Vec<u8> {
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    request.extend_from_slice(&n.to_be_bytes());
    request.extend_from_slice(&[0; 8]);
    request
}

/// How many answers `socket` gets within a short while.
async fn answers(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; 512];
    let mut n = 0;
    while tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
        .await
        .is_ok()
    {
        n += 1;
    }
    n
}

#[tokio::test]
async fn a_flood_without_an_allocation_is_answered_only_as_fast_as_the_limit() {
    let s = setup(Quotas {
        requests_per_source: 5,
        ..Quotas::default()
    })
    .await;
    let server = s.server.udp.unwrap();
    // 100 Binding requests at once from one address (as a spoofed flood
    // aimed at it would arrive): a burst of twice the rate is answered.
    // (127.0.0.2: another source than the clients below, on loopback.)
    let flooder = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    for n in 0..100 {
        flooder.send_to(&binding_request(n), server).await.unwrap();
    }
    let answered = answers(&flooder).await;
    assert!((10..=12).contains(&answered), "{answered} answers");
    let limited = s
        .server
        .stats()
        .requests_limited
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(limited >= 88, "{limited} limited");

    // The limit is per address: a client elsewhere still allocates and
    // relays, over UDP and over TCP (where a connection without an
    // allocation has a bucket of its own).
    let mut client = s.client("tcp", "ivan").await;
    client.allocate().await.unwrap();
    let mut client = s.client("udp", "ivan").await;
    client.allocate().await.unwrap();
    let media = s.media.local_addr().unwrap();
    client.channel_bind(0x4000, media).await.unwrap();
    client.send_channel(0x4000, b"through").await.unwrap();
    assert_eq!(s.media_recv().await.0, b"through");
    assert_eq!(s.server.allocations(), 2);

    // A second later the flooder is answered again, at most a burst.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in 0..100 {
        flooder.send_to(&binding_request(n), server).await.unwrap();
    }
    let answered = answers(&flooder).await;
    assert!(
        (5..=10).contains(&answered),
        "{answered} answers a second later"
    );
}

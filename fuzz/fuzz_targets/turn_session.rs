//! One client's TURN session (`crates/turn/src/session.rs`), the sans-IO
//! core of the TURN server on Salon's public port 3478: any bytes from the
//! client, requests signed with valid credentials (so the fuzzer gets past
//! authentication to allocations, permissions and channels), channel data,
//! Send indications, datagrams from peers, the shell's answer to an
//! Allocate, and time passing.
//!
//! Each input starts as a browser does: a bare Allocate, whose 401 carries
//! the nonce the signed steps use.
//!
//! Must hold: no panic; every reply parses as a STUN success or error with
//! the request's transaction ID, and a signed request's reply carries
//! MESSAGE-INTEGRITY that verifies with its key; nothing is relayed without
//! an allocation, or to a peer the policy does not permit (only Salon's
//! media address here: never loopback, private or metadata addresses); a
//! relayed payload is part of the input; what goes back to the client for a
//! peer's datagram is channel data or a Data indication carrying it.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use salon_turn::PeerPolicy;
use salon_turn::credentials;
use salon_turn::session::{Action, Now, Rules, Session};
use salon_turn::stun::{self, Class, Message, Method, Writer, attr};

const SECRET: &[u8] = b"fuzz-secret";
const REALM: &str = "salon";
const MEDIA: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7882);
const RELAYED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 50000);
const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 4000);

/// Where a peer address points.
#[derive(Debug, Arbitrary)]
enum PeerChoice {
    Media,
    /// Salon's media host, another port.
    MediaHost(u16),
    Loopback(u16),
    Private(u16),
    Metadata,
    Any([u8; 4], u16),
}

impl PeerChoice {
    fn addr(&self) -> SocketAddr {
        match self {
            PeerChoice::Media => MEDIA,
            PeerChoice::MediaHost(port) => SocketAddr::from(([192, 0, 2, 1], *port)),
            PeerChoice::Loopback(port) => SocketAddr::from(([127, 0, 0, 1], *port)),
            PeerChoice::Private(port) => SocketAddr::from(([10, 1, 2, 3], *port)),
            PeerChoice::Metadata => SocketAddr::from(([169, 254, 169, 254], 80)),
            PeerChoice::Any(ip, port) => SocketAddr::from((*ip, *port)),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Step {
    /// Any bytes from the client.
    Raw(Vec<u8>),
    /// A request signed with the input's credentials: a method (Allocate,
    /// Refresh, CreatePermission, ChannelBind, Binding, or any code), typed
    /// attributes the fuzzer chooses, and any others.
    Signed {
        method: u16,
        transport: Option<u8>,
        lifetime: Option<u32>,
        peers: Vec<PeerChoice>,
        channel: Option<u16>,
        family: Option<u8>,
        extra: Vec<(u16, Vec<u8>)>,
        /// Sign with a wrong key instead.
        forged: bool,
    },
    ChannelData {
        channel: u16,
        data: Vec<u8>,
    },
    SendIndication {
        peer: PeerChoice,
        data: Vec<u8>,
    },
    Peer {
        peer: PeerChoice,
        data: Vec<u8>,
    },
    /// The shell's answer to an `Action::Allocate`: opened, or a quota.
    Grant(bool),
    Wait(u16),
}

fn method(code: u16) -> Method {
    match code % 8 {
        0 => Method::Allocate,
        1 => Method::Refresh,
        2 => Method::CreatePermission,
        3 => Method::ChannelBind,
        4 => Method::Binding,
        5 => Method::Send,
        _ => Method::Other(code & 0x0FFF),
    }
}

/// A reply in `out` to a request with `tid`: a success or error response
/// with that transaction ID (signed with `key`, when given, if a success).
fn check_reply(out: &[u8], tid: Option<[u8; 12]>, key: Option<&[u8; 16]>) {
    let reply = match Message::parse(out) {
        Ok(reply) => reply,
        Err(e) => panic!("a reply that does not parse ({e}): {out:02x?}"),
    };
    assert!(
        matches!(reply.class, Class::Success | Class::Error),
        "a reply of class {:?}",
        reply.class
    );
    if let Some(tid) = tid {
        assert_eq!(reply.transaction, tid, "a reply to another transaction");
    }
    if let Some(key) = key
        && reply.class == Class::Success
        && reply.method != Method::Binding
    {
        assert!(
            reply.verify_integrity(key),
            "a success not signed with the key"
        );
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let rules = Rules {
        realm: REALM.into(),
        secret: SECRET.to_vec(),
        nonce_key: [7; 32],
        policy: PeerPolicy {
            media: vec![MEDIA],
            allowed: Vec::new(),
        },
        default_lifetime: Duration::from_secs(600),
        max_lifetime: Duration::from_secs(3600),
    };
    let start = Instant::now();
    let mut now = Now {
        mono: start,
        unix: 1_800_000_000,
    };
    let client = CLIENT;
    let mut session = Session::new(client, false);
    let mut out = Vec::new();

    // The challenge: a bare Allocate is answered 401 with a nonce.
    let mut bare = Vec::new();
    let mut w = Writer::new(&mut bare, Method::Allocate, Class::Request, [1; 12]);
    w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    w.finish(None);
    assert_eq!(session.client(&rules, &bare, now, &mut out), Action::Reply);
    let nonce = {
        let challenge = Message::parse(&out).unwrap_or_else(|e| panic!("the challenge: {e}"));
        assert_eq!(challenge.error_code(), Some(401));
        challenge.text(attr::NONCE).unwrap_or_default().to_owned()
    };
    let credential = credentials::mint(SECRET, "fuzz", now.unix, 3600);
    let key = stun::long_term_key(&credential.username, REALM, &credential.password);
    let mut pending = false;
    let mut tid = 2u32;

    for step in steps.iter().take(64) {
        out.clear();
        match step {
            Step::Raw(bytes) => {
                let allocated = session.is_allocated();
                let request = Message::parse(bytes)
                    .ok()
                    .filter(|m| m.class == Class::Request)
                    .map(|m| m.transaction);
                match session.client(&rules, bytes, now, &mut out) {
                    Action::Reply | Action::ReplyAndClose => check_reply(&out, request, None),
                    Action::Relay(peer, data) => {
                        assert!(allocated, "relayed without an allocation");
                        assert!(rules.policy.permits(peer), "relayed to {peer}");
                        assert!(bytes.windows(data.len()).any(|w| w == data) || data.is_empty());
                    }
                    Action::Allocate { .. } => pending = true,
                    Action::None => {}
                }
            }
            Step::Signed {
                method: code,
                transport,
                lifetime,
                peers,
                channel,
                family,
                extra,
                forged,
            } => {
                tid += 1;
                let transaction = {
                    let mut t = [0u8; 12];
                    t[..4].copy_from_slice(&tid.to_be_bytes());
                    t
                };
                let mut request = Vec::new();
                let mut w = Writer::new(&mut request, method(*code), Class::Request, transaction);
                if let Some(t) = transport {
                    w.attr(attr::REQUESTED_TRANSPORT, &[*t, 0, 0, 0]);
                }
                if let Some(l) = lifetime {
                    w.u32(attr::LIFETIME, *l);
                }
                for peer in peers.iter().take(4) {
                    w.xor_address(attr::XOR_PEER_ADDRESS, peer.addr());
                }
                if let Some(c) = channel {
                    w.u32(attr::CHANNEL_NUMBER, u32::from(*c) << 16);
                }
                if let Some(f) = family {
                    w.attr(attr::REQUESTED_ADDRESS_FAMILY, &[*f, 0, 0, 0]);
                }
                for (kind, value) in extra.iter().take(4) {
                    // Attributes the signing below writes itself are left to it.
                    if ![attr::MESSAGE_INTEGRITY, attr::FINGERPRINT].contains(kind) {
                        w.attr(*kind, &value[..value.len().min(64)]);
                    }
                }
                w.attr(attr::USERNAME, credential.username.as_bytes())
                    .attr(attr::REALM, REALM.as_bytes())
                    .attr(attr::NONCE, nonce.as_bytes());
                let signing = if *forged { [0x55; 16] } else { key };
                w.finish(Some(&signing));
                let allocated = session.is_allocated();
                match session.client(&rules, &request, now, &mut out) {
                    Action::Reply => {
                        check_reply(&out, Some(transaction), (!forged).then_some(&key));
                    }
                    Action::ReplyAndClose => {
                        check_reply(&out, Some(transaction), (!forged).then_some(&key));
                        // The shell ends the session (a Refresh to 0).
                        session = Session::new(client, false);
                        pending = false;
                    }
                    Action::Relay(peer, _) => {
                        assert!(allocated, "relayed without an allocation");
                        assert!(rules.policy.permits(peer), "relayed to {peer}");
                    }
                    Action::Allocate { username } => {
                        assert!(!forged, "a forged Allocate was accepted");
                        assert_eq!(username, credential.username);
                        pending = true;
                    }
                    Action::None => {}
                }
            }
            Step::ChannelData { channel, data } => {
                let mut frame = Vec::new();
                stun::write_channel_data(&mut frame, *channel, data, false);
                let allocated = session.is_allocated();
                if let Action::Relay(peer, relayed) = session.client(&rules, &frame, now, &mut out)
                {
                    assert!(allocated, "relayed without an allocation");
                    assert!(rules.policy.permits(peer), "relayed to {peer}");
                    assert_eq!(relayed, &data[..]);
                }
            }
            Step::SendIndication { peer, data } => {
                let mut indication = Vec::new();
                let mut w = Writer::new(&mut indication, Method::Send, Class::Indication, [9; 12]);
                w.xor_address(attr::XOR_PEER_ADDRESS, peer.addr())
                    .attr(attr::DATA, data);
                w.finish(None);
                let allocated = session.is_allocated();
                match session.client(&rules, &indication, now, &mut out) {
                    Action::Relay(to, relayed) => {
                        assert!(allocated, "relayed without an allocation");
                        assert!(rules.policy.permits(to), "relayed to {to}");
                        assert_eq!(to, peer.addr());
                        assert_eq!(relayed, &data[..]);
                    }
                    Action::None => {}
                    other => panic!("a Send indication answered {other:?}"),
                }
            }
            Step::Peer { peer, data } => {
                let from = peer.addr();
                if session.peer(from, data, now, &mut out) {
                    assert!(
                        session.is_allocated(),
                        "a peer's datagram without an allocation"
                    );
                    if let Some((_, carried)) = stun::parse_channel_data(&out) {
                        assert_eq!(carried, &data[..]);
                    } else {
                        let indication = Message::parse(&out).unwrap_or_else(|e| {
                            panic!("a Data indication that does not parse: {e}")
                        });
                        assert_eq!(indication.method, Method::Data);
                        assert_eq!(indication.xor_address(attr::XOR_PEER_ADDRESS), Some(from));
                        assert_eq!(indication.get(attr::DATA), Some(&data[..]));
                    }
                }
            }
            Step::Grant(open) => {
                if *open {
                    session.allocated(RELAYED, now, &mut out);
                } else {
                    session.refuse(486, "Allocation Quota Reached", &mut out);
                }
                if pending {
                    check_reply(&out, None, Some(&key));
                } else {
                    assert!(out.is_empty(), "an answer to no Allocate");
                }
                pending = false;
            }
            Step::Wait(seconds) => {
                let by = Duration::from_secs(u64::from(*seconds));
                now.mono += by;
                now.unix += by.as_secs();
                if session.expired(now) {
                    // The shell ends an expired session: start over.
                    session = Session::new(client, false);
                    pending = false;
                }
            }
        }
    }
});

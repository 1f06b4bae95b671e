//! Datagrams from many senders reaching one worker's socket: the STUN
//! reading of the first datagram of a 4-tuple, the routing table that
//! learns 4-tuples from it, checked against a model of the routing rules
//! (`crates/media/src/demux.rs`), and the media port's answer to a plain
//! Binding request (`stun::binding_response`).
//!
//! Each step is one datagram from one of a few source addresses, or a peer
//! leaving (its ufrag removed) followed by a prune. Must hold: reading never
//! panics; a ufrag read is non-empty, has no colon and lies inside the
//! datagram's USERNAME; a 4-tuple is learnt only from a STUN request for a
//! known ufrag, then keeps its route until its peer leaves; the tuple
//! counter matches the table.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use salon_media::DemuxStats;
use salon_media::forward::PeerRef;
use salon_media::fuzzing::{
    BINDING_RESPONSE_MAX, Destination, Route, Router, Routes, binding_response, is_stun,
    recipient_ufrag,
};

/// Peers known to the worker's ufrag table: (ufrag, worker). Worker 0 is
/// the one under test; the others are elsewhere.
const PEERS: [(&str, usize); 4] = [("alpha", 0), ("beta", 0), ("gamma", 1), ("d", 2)];

#[derive(Debug, Arbitrary)]
enum Step {
    /// A datagram from source `from` (one of a few addresses).
    Datagram { from: u8, bytes: Vec<u8> },
    /// A STUN binding request for one of the peers (or a stranger), so
    /// that routes are learnt often; `tail` follows the USERNAME.
    Stun { from: u8, peer: u8, tail: Vec<u8> },
    /// Peer `peer` leaves: its ufrag is removed, then the worker prunes.
    Leave { peer: u8 },
}

fn source(from: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(from % 6)))
}

fn route(peer: usize) -> Route {
    Route {
        worker: PEERS[peer].1,
        peer: PeerRef {
            index: peer as u32,
            generation: 7,
        },
    }
}

/// A binding request whose USERNAME is `"<ufrag>:client"`.
fn binding_request(ufrag: &str, tail: &[u8]) -> Vec<u8> {
    let username = format!("{ufrag}:client");
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    attrs.extend_from_slice(tail);
    let mut message = vec![0x00, 0x01];
    message.extend_from_slice(&(attrs.len().min(0xffff) as u16).to_be_bytes());
    message.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    message.extend_from_slice(&[9; 12]);
    message.extend_from_slice(&attrs);
    message
}

/// What the STUN reader must say of any datagram.
fn check_reading(datagram: &[u8]) -> Option<&str> {
    let ufrag = recipient_ufrag(datagram)?;
    assert!(is_stun(datagram), "a ufrag read from a non-STUN datagram");
    assert!(!ufrag.is_empty() && !ufrag.contains(':'), "{ufrag:?}");
    // It is a slice of the datagram, past the 20-byte header and a 4-byte
    // attribute header.
    let start = ufrag.as_ptr() as usize - datagram.as_ptr() as usize;
    assert!(start >= 24 && start + ufrag.len() <= datagram.len());
    Some(ufrag)
}

fuzz_target!(|steps: Vec<Step>| {
    let routes = Arc::new(Routes::default());
    for (peer, (ufrag, _)) in PEERS.iter().enumerate() {
        routes.insert(ufrag, route(peer));
    }
    let stats = Arc::new(DemuxStats::default());
    let mut router = Router::new(0, routes.clone(), stats.clone());
    // The model: which peers are still there, and what each source maps to.
    let mut present = [true; PEERS.len()];
    let mut learnt: HashMap<SocketAddr, usize> = HashMap::new();
    let mut now = Instant::now();

    for step in steps {
        let (from, datagram, sent) = match step {
            Step::Datagram { from, bytes } => (source(from), bytes, None),
            Step::Stun { from, peer, tail } => {
                let ufrag = PEERS.get(usize::from(peer)).map_or("stranger", |p| p.0);
                (source(from), binding_request(ufrag, &tail), Some(ufrag))
            }
            Step::Leave { peer } => {
                let peer = usize::from(peer) % PEERS.len();
                routes.remove(PEERS[peer].0);
                present[peer] = false;
                now += Duration::from_secs(2); // a prune is due
                router.prune(now);
                learnt.retain(|_, p| *p != peer);
                assert_eq!(stats.tuples.load(Ordering::Relaxed), learnt.len() as u64);
                continue;
            }
        };
        let ufrag = check_reading(&datagram);
        // The media port's own answer to a plain Binding request: only to a
        // STUN request without a USERNAME, echoing its transaction.
        let mut reply = [0u8; BINDING_RESPONSE_MAX];
        if let Some(n) = binding_response(&datagram, from, &mut reply) {
            assert!(is_stun(&reply[..n]), "the answer is STUN");
            assert!(ufrag.is_none() && sent.is_none(), "an ICE check answered");
            assert_eq!(reply[..2], [0x01, 0x01], "a Binding success");
            assert_eq!(reply[4..20], datagram[4..20], "the request's transaction");
        }
        if sent.is_some() {
            assert_eq!(ufrag, sent, "the USERNAME of a well-formed request");
        }
        let expected = learnt.get(&from).copied().or_else(|| {
            let peer = PEERS.iter().position(|(u, _)| Some(*u) == ufrag)?;
            present[peer].then_some(peer)
        });
        let unknown_before = stats.unknown.load(Ordering::Relaxed);
        let got = router.route(from, &datagram);
        match (expected, got) {
            (None, Destination::Nowhere) => {
                assert_eq!(stats.unknown.load(Ordering::Relaxed), unknown_before + 1);
            }
            (Some(peer), Destination::Here(r)) => {
                assert_eq!(route(peer), Route { worker: 0, peer: r });
                learnt.insert(from, peer);
            }
            (Some(peer), Destination::There(r)) => {
                assert_eq!(route(peer), r);
                assert_ne!(r.worker, 0);
                learnt.insert(from, peer);
            }
            (expected, _) => panic!("{from} routed against the rules (expected peer {expected:?})"),
        }
        assert_eq!(stats.tuples.load(Ordering::Relaxed), learnt.len() as u64);
    }
});

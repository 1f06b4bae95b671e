//! One client's TURN session, sans-IO: what the server does with each
//! message from a client 5-tuple and each datagram from a peer, with no
//! sockets and no clock inside.
//!
//! Inputs: `client` (a datagram or TCP frame from the client), `peer` (a
//! datagram that reached the relayed address), `allocated` / `refuse` (the
//! shell's answer to an `Action::Allocate`), and the time. Outputs: an
//! `Action` and, for replies, the bytes written into the caller's buffer.
//!
//! Cost: a relayed packet in either direction is a scan of at most
//! `MAX_CHANNELS` channels or `MAX_PERMISSIONS` permissions, a header
//! written into a reused buffer, and no allocation.
//!
//! Authentication is the long-term credential mechanism (RFC 8489 §9.2)
//! with REST-scheme usernames (`credentials`); nonces are stateless (an
//! expiry and an HMAC of it and the client's IP), so an unauthenticated
//! request costs no memory.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::credentials;
use crate::policy::PeerPolicy;
use crate::stun::{self, Class, Message, Method, Writer, attr};

/// Permissions and channels one allocation may hold (RFC 8656 leaves the
/// number to the server; a WebRTC client needs one or two).
pub const MAX_PERMISSIONS: usize = 16;
pub const MAX_CHANNELS: usize = 16;
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
const NONCE_LIFETIME: u64 = 600;
const SOFTWARE: &[u8] = b"Salon TURN";
const UDP: u8 = 17;

/// What every session of a server shares.
#[derive(Clone)]
pub struct Rules {
    pub realm: String,
    /// The REST-scheme secret credentials are checked against.
    pub secret: Vec<u8>,
    /// Signs nonces; random per server.
    pub nonce_key: [u8; 32],
    pub policy: PeerPolicy,
    pub default_lifetime: Duration,
    pub max_lifetime: Duration,
}

/// The time, twice: monotonic for lifetimes, Unix seconds for credentials
/// and nonces.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub unix: u64,
}

/// What the shell does after an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Nothing (dropped, or nothing to say).
    None,
    /// Send the buffer to the client.
    Reply,
    /// Send the buffer to the client, then end the session.
    ReplyAndClose,
    /// Send these bytes from the relayed address to the peer.
    Relay(SocketAddr, &'a [u8]),
    /// An authenticated Allocate: check quotas, open a relay socket, then
    /// call `allocated` or `refuse`.
    Allocate { username: String },
}

struct Allocation {
    relayed: SocketAddr,
    username: String,
    transaction: [u8; 12],
    expires: Instant,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<(u16, SocketAddr, Instant)>,
}

/// A client 5-tuple's session.
pub struct Session {
    client: SocketAddr,
    /// Over TCP or TLS channel data is padded to 4 bytes.
    stream: bool,
    allocation: Option<Allocation>,
    /// The Allocate being served (between `Action::Allocate` and `allocated`).
    pending: Option<([u8; 12], String, [u8; 16], Duration)>,
}

impl Session {
    pub fn new(client: SocketAddr, stream: bool) -> Self {
        Session {
            client,
            stream,
            allocation: None,
            pending: None,
        }
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.client
    }

    /// When the allocation ends, if there is one.
    pub fn expires(&self) -> Option<Instant> {
        self.allocation.as_ref().map(|a| a.expires)
    }

    pub fn is_allocated(&self) -> bool {
        self.allocation.is_some()
    }

    /// The username of the allocation, for quotas.
    pub fn username(&self) -> Option<&str> {
        self.allocation.as_ref().map(|a| a.username.as_str())
    }

    /// A datagram or frame from the client.
    pub fn client<'a>(
        &mut self,
        rules: &Rules,
        bytes: &'a [u8],
        now: Now,
        out: &mut Vec<u8>,
    ) -> Action<'a> {
        if bytes.first().is_some_and(|b| b & 0xC0 == 0x40) {
            return self.channel_data(bytes, now);
        }
        let Ok(msg) = Message::parse(bytes) else {
            return Action::None;
        };
        match (msg.class, msg.method) {
            (Class::Indication, Method::Send) => self.send_indication(rules, &msg, now),
            (Class::Request, _) => self.request(rules, &msg, now, out),
            _ => Action::None,
        }
    }

    fn channel_data<'a>(&mut self, bytes: &'a [u8], now: Now) -> Action<'a> {
        let (Some((number, data)), Some(a)) = (stun::parse_channel_data(bytes), &self.allocation)
        else {
            return Action::None;
        };
        match a
            .channels
            .iter()
            .find(|(n, _, expires)| *n == number && *expires > now.mono)
        {
            Some(&(_, peer, _)) => Action::Relay(peer, data),
            None => Action::None,
        }
    }

    fn send_indication<'a>(&mut self, rules: &Rules, msg: &Message<'a>, now: Now) -> Action<'a> {
        let (Some(a), Some(peer), Some(data)) = (
            &self.allocation,
            msg.xor_address(attr::XOR_PEER_ADDRESS),
            msg.get(attr::DATA),
        ) else {
            return Action::None;
        };
        let permitted = a
            .permissions
            .iter()
            .any(|(ip, exp)| *ip == peer.ip() && *exp > now.mono);
        if permitted && rules.policy.permits(peer) {
            Action::Relay(peer, data)
        } else {
            Action::None
        }
    }

    fn request<'a>(
        &mut self,
        rules: &Rules,
        msg: &Message<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Action<'a> {
        let tid = msg.transaction;
        if msg.method == Method::Binding {
            let mut w = Writer::new(out, Method::Binding, Class::Success, tid);
            w.xor_address(attr::XOR_MAPPED_ADDRESS, self.client)
                .attr(attr::SOFTWARE, SOFTWARE);
            w.finish(None);
            return Action::Reply;
        }
        let unknown = msg.unknown_required();
        if !unknown.is_empty() {
            let list: Vec<u8> = unknown.iter().flat_map(|k| k.to_be_bytes()).collect();
            let mut w = Writer::new(out, msg.method, Class::Error, tid);
            w.error(420, "Unknown Attribute")
                .attr(attr::UNKNOWN_ATTRIBUTES, &list);
            w.finish(None);
            return Action::Reply;
        }
        let (username, key) = match authenticate(rules, msg, self.client.ip(), now, out) {
            Ok(found) => found,
            Err(()) => return Action::Reply,
        };
        let error = |out: &mut Vec<u8>, code: u16, reason: &str| {
            let mut w = Writer::new(out, msg.method, Class::Error, tid);
            w.error(code, reason);
            w.finish(Some(&key));
            Action::Reply
        };
        if msg.method == Method::Allocate {
            return self.allocate(rules, msg, username, key, now, out);
        }
        let Some(a) = &mut self.allocation else {
            return error(out, 437, "Allocation Mismatch");
        };
        if a.username != username {
            return error(out, 441, "Wrong Credentials");
        }
        match msg.method {
            Method::Refresh => {
                let requested = msg
                    .u32_attr(attr::LIFETIME)
                    .map(|s| Duration::from_secs(s.into()));
                let lifetime = requested
                    .unwrap_or(rules.default_lifetime)
                    .min(rules.max_lifetime);
                let mut w = Writer::new(out, Method::Refresh, Class::Success, tid);
                w.u32(attr::LIFETIME, lifetime.as_secs() as u32);
                w.finish(Some(&key));
                if lifetime.is_zero() {
                    self.allocation = None;
                    return Action::ReplyAndClose;
                }
                a.expires = now.mono + lifetime;
                Action::Reply
            }
            Method::CreatePermission => {
                let peers: Vec<SocketAddr> = msg
                    .all(attr::XOR_PEER_ADDRESS)
                    .filter_map(|v| stun::decode_xor_address(v, &tid))
                    .collect();
                if peers.is_empty() {
                    return error(out, 400, "Bad Request: no XOR-PEER-ADDRESS");
                }
                if !peers.iter().all(|p| rules.policy.permits_ip(p.ip())) {
                    return error(out, 403, "Forbidden: that peer is not relayed to");
                }
                for peer in peers {
                    if !install_permission(a, peer.ip(), now.mono) {
                        return error(out, 508, "Insufficient Capacity: too many permissions");
                    }
                }
                let w = Writer::new(out, Method::CreatePermission, Class::Success, tid);
                w.finish(Some(&key));
                Action::Reply
            }
            Method::ChannelBind => {
                let number = msg.u32_attr(attr::CHANNEL_NUMBER).map(|v| (v >> 16) as u16);
                let peer = msg.xor_address(attr::XOR_PEER_ADDRESS);
                let (Some(number), Some(peer)) = (number, peer) else {
                    return error(out, 400, "Bad Request: CHANNEL-NUMBER and XOR-PEER-ADDRESS");
                };
                if !(0x4000..=0x4FFF).contains(&number) {
                    return error(out, 400, "Bad Request: channel number out of range");
                }
                if !rules.policy.permits(peer) {
                    return error(out, 403, "Forbidden: that peer is not relayed to");
                }
                // A channel stays bound to its peer, and a peer to its channel.
                if a.channels
                    .iter()
                    .any(|(n, p, _)| (*n == number) != (*p == peer))
                {
                    return error(out, 400, "Bad Request: channel or peer bound otherwise");
                }
                if let Some(channel) = a.channels.iter_mut().find(|(n, _, _)| *n == number) {
                    channel.2 = now.mono + CHANNEL_LIFETIME;
                } else {
                    a.channels.retain(|c| c.2 > now.mono);
                    if a.channels.len() == MAX_CHANNELS {
                        return error(out, 508, "Insufficient Capacity: too many channels");
                    }
                    a.channels.push((number, peer, now.mono + CHANNEL_LIFETIME));
                }
                if !install_permission(a, peer.ip(), now.mono) {
                    return error(out, 508, "Insufficient Capacity: too many permissions");
                }
                let w = Writer::new(out, Method::ChannelBind, Class::Success, tid);
                w.finish(Some(&key));
                Action::Reply
            }
            _ => error(out, 400, "Bad Request: unsupported method"),
        }
    }

    fn allocate<'a>(
        &mut self,
        rules: &Rules,
        msg: &Message<'_>,
        username: String,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) -> Action<'a> {
        let tid = msg.transaction;
        let error = |out: &mut Vec<u8>, code: u16, reason: &str| {
            let mut w = Writer::new(out, Method::Allocate, Class::Error, tid);
            w.error(code, reason);
            w.finish(Some(&key));
            Action::Reply
        };
        if let Some(a) = &self.allocation {
            // A retransmitted Allocate gets its answer again (RFC 8656 §7.2).
            if a.transaction == tid {
                let relayed = a.relayed;
                let lifetime = a.expires.saturating_duration_since(now.mono);
                self.write_allocated(out, relayed, lifetime, tid, &key);
                return Action::Reply;
            }
            return error(out, 437, "Allocation Mismatch");
        }
        match msg.get(attr::REQUESTED_TRANSPORT) {
            None => return error(out, 400, "Bad Request: no REQUESTED-TRANSPORT"),
            Some(v) if v.first() != Some(&UDP) => {
                return error(out, 442, "Unsupported Transport Protocol");
            }
            Some(_) => {}
        }
        if msg.get(attr::EVEN_PORT).is_some() || msg.get(attr::RESERVATION_TOKEN).is_some() {
            return error(out, 508, "Insufficient Capacity: no port reservations");
        }
        if let Some(v) = msg.get(attr::REQUESTED_ADDRESS_FAMILY) {
            let family_ok = match v.first() {
                Some(0x01) => {
                    self.client.is_ipv4() || rules.policy.media.iter().any(|m| m.is_ipv4())
                }
                Some(0x02) => rules.policy.media.iter().any(|m| m.is_ipv6()),
                _ => false,
            };
            if !family_ok {
                return error(out, 440, "Address Family not Supported");
            }
        }
        let requested = msg
            .u32_attr(attr::LIFETIME)
            .map(|s| Duration::from_secs(s.into()));
        let lifetime = requested
            .unwrap_or(rules.default_lifetime)
            .clamp(Duration::from_secs(1), rules.max_lifetime);
        self.pending = Some((tid, username.clone(), key, lifetime));
        Action::Allocate { username }
    }

    /// The shell opened `relayed` for the pending Allocate: the success
    /// response is written to `out`.
    pub fn allocated(&mut self, relayed: SocketAddr, now: Now, out: &mut Vec<u8>) {
        let Some((tid, username, key, lifetime)) = self.pending.take() else {
            return;
        };
        self.write_allocated(out, relayed, lifetime, tid, &key);
        self.allocation = Some(Allocation {
            relayed,
            username,
            transaction: tid,
            expires: now.mono + lifetime,
            permissions: Vec::with_capacity(2),
            channels: Vec::with_capacity(2),
        });
    }

    /// The shell could not allocate (a quota, or no port): the error
    /// response (486 or 508) is written to `out`.
    pub fn refuse(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) {
        let Some((tid, _, key, _)) = self.pending.take() else {
            return;
        };
        let mut w = Writer::new(out, Method::Allocate, Class::Error, tid);
        w.error(code, reason);
        w.finish(Some(&key));
    }

    fn write_allocated(
        &self,
        out: &mut Vec<u8>,
        relayed: SocketAddr,
        lifetime: Duration,
        tid: [u8; 12],
        key: &[u8],
    ) {
        let mut w = Writer::new(out, Method::Allocate, Class::Success, tid);
        w.xor_address(attr::XOR_RELAYED_ADDRESS, relayed)
            .u32(attr::LIFETIME, lifetime.as_secs() as u32)
            .xor_address(attr::XOR_MAPPED_ADDRESS, self.client)
            .attr(attr::SOFTWARE, SOFTWARE);
        w.finish(Some(key));
    }

    /// A datagram from `peer` reached the relayed address: whether to send
    /// `out` (channel data or a Data indication) to the client.
    pub fn peer(&mut self, peer: SocketAddr, data: &[u8], now: Now, out: &mut Vec<u8>) -> bool {
        let Some(a) = &self.allocation else {
            return false;
        };
        if let Some(&(number, _, _)) = a
            .channels
            .iter()
            .find(|(_, p, exp)| *p == peer && *exp > now.mono)
        {
            stun::write_channel_data(out, number, data, self.stream);
            return true;
        }
        if !a
            .permissions
            .iter()
            .any(|(ip, exp)| *ip == peer.ip() && *exp > now.mono)
        {
            return false;
        }
        let mut w = Writer::new(out, Method::Data, Class::Indication, rand::random());
        w.xor_address(attr::XOR_PEER_ADDRESS, peer)
            .attr(attr::DATA, data);
        w.finish(None);
        true
    }

    /// Whether the allocation has run out (the shell then ends the session).
    pub fn expired(&self, now: Now) -> bool {
        self.allocation
            .as_ref()
            .is_some_and(|a| a.expires <= now.mono)
    }
}

fn install_permission(a: &mut Allocation, ip: IpAddr, now: Instant) -> bool {
    if let Some(p) = a.permissions.iter_mut().find(|(p, _)| *p == ip) {
        p.1 = now + PERMISSION_LIFETIME;
        return true;
    }
    a.permissions.retain(|p| p.1 > now);
    if a.permissions.len() == MAX_PERMISSIONS {
        return false;
    }
    a.permissions.push((ip, now + PERMISSION_LIFETIME));
    true
}

/// Check a request's long-term credentials; on failure the error response
/// (400, 401 or 438, with a fresh nonce) is in `out`.
fn authenticate(
    rules: &Rules,
    msg: &Message<'_>,
    client: IpAddr,
    now: Now,
    out: &mut Vec<u8>,
) -> Result<(String, [u8; 16]), ()> {
    let challenge = |out: &mut Vec<u8>, code: u16, reason: &str| {
        let nonce = nonce(rules, client, now.unix + NONCE_LIFETIME);
        let mut w = Writer::new(out, msg.method, Class::Error, msg.transaction);
        w.error(code, reason)
            .attr(attr::REALM, rules.realm.as_bytes())
            .attr(attr::NONCE, nonce.as_bytes());
        w.finish(None);
        Err(())
    };
    if !msg.has_integrity() {
        return challenge(out, 401, "Unauthenticated");
    }
    let (Some(username), Some(realm), Some(nonce)) = (
        msg.text(attr::USERNAME),
        msg.text(attr::REALM),
        msg.text(attr::NONCE),
    ) else {
        let mut w = Writer::new(out, msg.method, Class::Error, msg.transaction);
        w.error(
            400,
            "Bad Request: USERNAME, REALM and NONCE go with MESSAGE-INTEGRITY",
        );
        w.finish(None);
        return Err(());
    };
    if realm != rules.realm || credentials::check(username, now.unix).is_err() {
        return challenge(out, 401, "Unauthenticated");
    }
    let password = credentials::password(&rules.secret, username);
    let key = stun::long_term_key(username, realm, &password);
    if !msg.verify_integrity(&key) {
        return challenge(out, 401, "Unauthenticated");
    }
    if !nonce_valid(rules, client, nonce, now.unix) {
        return challenge(out, 438, "Stale Nonce");
    }
    Ok((username.to_owned(), key))
}

fn nonce(rules: &Rules, client: IpAddr, expiry: u64) -> String {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(&rules.nonce_key).expect("HMAC takes any key length");
    mac.update(&expiry.to_be_bytes());
    mac.update(client.to_string().as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{expiry:x}-{hex}")
}

fn nonce_valid(rules: &Rules, client: IpAddr, nonce: &str, now: u64) -> bool {
    let Some(expiry) = nonce
        .split('-')
        .next()
        .and_then(|e| u64::from_str_radix(e, 16).ok())
    else {
        return false;
    };
    expiry >= now && expiry <= now + NONCE_LIFETIME && self::nonce(rules, client, expiry) == nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"secret";

    fn rules() -> Rules {
        Rules {
            realm: "salon".into(),
            secret: SECRET.to_vec(),
            nonce_key: [9; 32],
            policy: PeerPolicy {
                media: vec!["192.0.2.1:7882".parse().unwrap()],
                allowed: vec![],
            },
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
        }
    }

    fn now() -> Now {
        Now {
            mono: Instant::now(),
            unix: 1_000_000,
        }
    }

    /// A client that signs requests the way browsers do.
    struct Client {
        username: String,
        key: [u8; 16],
        nonce: String,
    }

    impl Client {
        fn new(unix: u64) -> Self {
            let c = credentials::mint(SECRET, "alice", unix, 60);
            Client {
                key: stun::long_term_key(&c.username, "salon", &c.password),
                username: c.username,
                nonce: String::new(),
            }
        }

        fn request(&self, method: Method, tid: u8, attrs: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
            let mut buf = Vec::new();
            let mut w = Writer::new(&mut buf, method, Class::Request, [tid; 12]);
            attrs(&mut w);
            w.attr(attr::USERNAME, self.username.as_bytes())
                .attr(attr::REALM, b"salon")
                .attr(attr::NONCE, self.nonce.as_bytes());
            w.finish(Some(&self.key));
            buf
        }
    }

    fn allocate(s: &mut Session, rules: &Rules, now: Now) -> Client {
        let mut client = Client::new(now.unix);
        let mut out = Vec::new();
        let mut bare = Vec::new();
        let mut w = Writer::new(&mut bare, Method::Allocate, Class::Request, [1; 12]);
        w.attr(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0]);
        w.finish(None);
        assert_eq!(s.client(rules, &bare, now, &mut out), Action::Reply);
        let challenge = Message::parse(&out).unwrap();
        assert_eq!(challenge.error_code(), Some(401));
        client.nonce = challenge.text(attr::NONCE).unwrap().to_owned();

        let req = client.request(Method::Allocate, 2, |w| {
            w.attr(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0]);
        });
        assert_eq!(
            s.client(rules, &req, now, &mut out),
            Action::Allocate {
                username: client.username.clone()
            }
        );
        s.allocated("192.0.2.1:50000".parse().unwrap(), now, &mut out);
        let ok = Message::parse(&out).unwrap();
        assert_eq!(ok.class, Class::Success);
        assert!(ok.verify_integrity(&client.key));
        assert_eq!(
            ok.xor_address(attr::XOR_RELAYED_ADDRESS),
            Some("192.0.2.1:50000".parse().unwrap())
        );
        client
    }

    #[test]
    fn a_bound_channel_relays_both_ways_and_nothing_else_does() {
        let rules = rules();
        let now = now();
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), false);
        let client = allocate(&mut s, &rules, now);
        let media: SocketAddr = "192.0.2.1:7882".parse().unwrap();
        let mut out = Vec::new();

        // Before a permission, the peer's datagrams are dropped.
        assert!(!s.peer(media, b"early", now, &mut out));

        let bind = client.request(Method::ChannelBind, 3, |w| {
            w.u32(attr::CHANNEL_NUMBER, 0x4000 << 16)
                .xor_address(attr::XOR_PEER_ADDRESS, media);
        });
        assert_eq!(s.client(&rules, &bind, now, &mut out), Action::Reply);
        assert_eq!(Message::parse(&out).unwrap().class, Class::Success);

        let mut frame = Vec::new();
        stun::write_channel_data(&mut frame, 0x4000, b"rtp", false);
        assert_eq!(
            s.client(&rules, &frame, now, &mut out),
            Action::Relay(media, &b"rtp"[..])
        );
        assert!(s.peer(media, b"back", now, &mut out));
        assert_eq!(stun::parse_channel_data(&out), Some((0x4000, &b"back"[..])));

        // Another port on the same host has a permission (per IP) but no
        // channel: a Data indication.
        let other: SocketAddr = "192.0.2.1:9".parse().unwrap();
        assert!(s.peer(other, b"x", now, &mut out));
        assert_eq!(Message::parse(&out).unwrap().method, Method::Data);

        // A channel unknown to the allocation relays nothing.
        stun::write_channel_data(&mut frame, 0x4001, b"rtp", false);
        assert_eq!(s.client(&rules, &frame, now, &mut out), Action::None);
    }

    #[test]
    fn peers_outside_the_policy_are_forbidden() {
        let rules = rules();
        let now = now();
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), false);
        let client = allocate(&mut s, &rules, now);
        let mut out = Vec::new();
        for (tid, peer) in [
            (4, "169.254.169.254:80"),
            (5, "10.0.0.1:7882"),
            (6, "192.0.2.1:22"),
        ] {
            let peer: SocketAddr = peer.parse().unwrap();
            let bind = client.request(Method::ChannelBind, tid, |w| {
                w.u32(attr::CHANNEL_NUMBER, 0x4000 << 16)
                    .xor_address(attr::XOR_PEER_ADDRESS, peer);
            });
            s.client(&rules, &bind, now, &mut out);
            assert_eq!(
                Message::parse(&out).unwrap().error_code(),
                Some(403),
                "{peer}"
            );
        }
        let perm = client.request(Method::CreatePermission, 7, |w| {
            w.xor_address(
                attr::XOR_PEER_ADDRESS,
                "169.254.169.254:80".parse().unwrap(),
            );
        });
        s.client(&rules, &perm, now, &mut out);
        assert_eq!(Message::parse(&out).unwrap().error_code(), Some(403));
    }

    #[test]
    fn wrong_expired_or_foreign_credentials_are_refused() {
        let rules = rules();
        let now = now();
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), false);
        let mut out = Vec::new();
        let nonce = nonce(&rules, "198.51.100.7".parse().unwrap(), now.unix + 60);
        let attempt = |client: &Client, s: &mut Session, out: &mut Vec<u8>| {
            let req = client.request(Method::Allocate, 2, |w| {
                w.attr(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0]);
            });
            s.client(&rules, &req, now, out);
            Message::parse(out).unwrap().error_code()
        };
        let mut wrong = Client::new(now.unix);
        wrong.nonce = nonce.clone();
        wrong.key = stun::long_term_key(&wrong.username, "salon", "guessed");
        assert_eq!(attempt(&wrong, &mut s, &mut out), Some(401));

        let mut expired = Client::new(now.unix - 120);
        expired.nonce = nonce.clone();
        assert_eq!(attempt(&expired, &mut s, &mut out), Some(401));

        let mut stale = Client::new(now.unix);
        stale.nonce = format!("{:x}-0000000000000000", now.unix + 60);
        assert_eq!(attempt(&stale, &mut s, &mut out), Some(438));
        assert!(!s.is_allocated());
    }

    #[test]
    fn tcp_allocations_and_a_second_allocate_are_refused() {
        let rules = rules();
        let now = now();
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), false);
        let client = allocate(&mut s, &rules, now);
        let mut out = Vec::new();
        let again = client.request(Method::Allocate, 9, |w| {
            w.attr(attr::REQUESTED_TRANSPORT, &[UDP, 0, 0, 0]);
        });
        s.client(&rules, &again, now, &mut out);
        assert_eq!(Message::parse(&out).unwrap().error_code(), Some(437));

        let mut t = Session::new("198.51.100.7:4001".parse().unwrap(), false);
        let tcp = client.request(Method::Allocate, 9, |w| {
            w.attr(attr::REQUESTED_TRANSPORT, &[6, 0, 0, 0]);
        });
        t.client(&rules, &tcp, now, &mut out);
        assert_eq!(Message::parse(&out).unwrap().error_code(), Some(442));
    }

    #[test]
    fn a_refresh_to_zero_ends_the_allocation() {
        let rules = rules();
        let now = now();
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), true);
        let client = allocate(&mut s, &rules, now);
        let mut out = Vec::new();
        let refresh = client.request(Method::Refresh, 5, |w| {
            w.u32(attr::LIFETIME, 0);
        });
        assert_eq!(
            s.client(&rules, &refresh, now, &mut out),
            Action::ReplyAndClose
        );
        assert!(!s.is_allocated());
        let later = Now {
            mono: now.mono + Duration::from_secs(601),
            unix: now.unix + 601,
        };
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), true);
        allocate(&mut s, &rules, now);
        assert!(s.expired(later));
    }

    #[test]
    fn garbage_is_dropped() {
        let rules = rules();
        let mut s = Session::new("198.51.100.7:4000".parse().unwrap(), false);
        let mut out = Vec::new();
        for junk in [&b""[..], b"\x00\x01\x00", b"\x40\x00\xff\xff", &[0u8; 64]] {
            assert_eq!(s.client(&rules, junk, now(), &mut out), Action::None);
        }
    }
}

//! The TURN server's async shell: listeners on UDP, TCP and TLS, one task
//! per allocation (its client link, its relay socket, its lifetime), and
//! the quotas. The protocol is `session`'s.
//!
//! The UDP listener answers new 5-tuples statelessly (a Binding, a 401
//! challenge), at most as fast as `limit` allows per source IP, and starts
//! a session task only for an authenticated Allocate; it hands each later
//! datagram of that 5-tuple to the task through a bounded queue (a full
//! queue drops the datagram, as UDP would). A TCP or TLS connection is its own task from the start. Every
//! task reads its relay socket itself, so peer → client never crosses
//! tasks, and nothing on either path takes a lock: the quota table is
//! touched only when an allocation or connection starts and ends.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::limit::RequestLimit;
use crate::session::{Action, Now, Rules, Session};
use crate::stun;

/// Datagrams queued for one UDP session before more are dropped.
const UDP_QUEUE: usize = 256;
/// A relayed datagram larger than this is truncated by the kernel (WebRTC
/// keeps packets under the path MTU, about 1200 bytes).
const RELAY_BUFFER: usize = 4096;
/// A TCP or TLS connection must allocate within this long (and one that
/// sends nothing is closed then).
const FIRST_ALLOCATION: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// A client that does not read its TCP connection for this long is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Limits that keep the server from being anyone's free relay.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    /// Allocations at once per credential (username).
    pub per_credential: u32,
    /// Allocations at once per client IP.
    pub per_source: u32,
    /// Allocations at once in all.
    pub total: u32,
    /// TCP and TLS connections at once per client IP.
    pub connections_per_source: u32,
    /// TCP and TLS connections at once in all.
    pub connections: u32,
    /// Answers a second to a client IP that holds no allocation (bursts of
    /// twice that; 0: no limit): see `limit`.
    pub requests_per_source: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            per_credential: 10,
            per_source: 64,
            total: 4096,
            connections_per_source: 64,
            connections: 2048,
            requests_per_source: 50,
        }
    }
}

/// What to start.
#[derive(Clone)]
pub struct TurnConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// TURN over TLS: the address and the certificate to serve.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// Where relay sockets are bound.
    pub relay_ip: IpAddr,
    /// The relayed address clients are told, if not `relay_ip` (behind NAT).
    pub relay_public_ip: Option<IpAddr>,
    pub rules: Rules,
    pub quotas: Quotas,
}

/// A running TURN server; dropping it stops every listener and session.
pub struct TurnServer {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    shared: Arc<Shared>,
    _stop: watch::Sender<()>,
}

impl TurnServer {
    /// Allocations alive now.
    pub fn allocations(&self) -> u64 {
        self.shared.stats.allocations.load(Ordering::Relaxed)
    }

    /// The server's counters, to read while it runs.
    pub fn stats(&self) -> Arc<TurnStats> {
        self.shared.stats.clone()
    }
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct TurnStats {
    /// Allocations alive now.
    pub allocations: AtomicU64,
    /// Requests from clients without an allocation that the rate limit
    /// left unanswered (`limit`), since the start.
    pub requests_limited: AtomicU64,
}

struct Shared {
    rules: Rules,
    quotas: Quotas,
    relay_ip: IpAddr,
    relay_public_ip: IpAddr,
    usage: Mutex<Usage>,
    stats: Arc<TurnStats>,
    stop: watch::Receiver<()>,
}

#[derive(Default)]
struct Usage {
    per_credential: HashMap<String, u32>,
    per_source: HashMap<IpAddr, u32>,
    total: u32,
    connections_per_source: HashMap<IpAddr, u32>,
    connections: u32,
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K, up: bool) {
    if up {
        *map.entry(key).or_default() += 1;
    } else if let std::collections::hash_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

/// Holds one allocation's place in the quotas until dropped.
struct AllocationSlot {
    shared: Arc<Shared>,
    username: String,
    source: IpAddr,
}

impl Drop for AllocationSlot {
    fn drop(&mut self) {
        if let Ok(mut u) = self.shared.usage.lock() {
            bump(
                &mut u.per_credential,
                std::mem::take(&mut self.username),
                false,
            );
            bump(&mut u.per_source, self.source, false);
            u.total -= 1;
            self.shared
                .stats
                .allocations
                .store(u64::from(u.total), Ordering::Relaxed);
        }
    }
}

/// Holds one TCP or TLS connection's place until dropped.
struct ConnectionSlot {
    shared: Arc<Shared>,
    source: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut u) = self.shared.usage.lock() {
            bump(&mut u.connections_per_source, self.source, false);
            u.connections -= 1;
        }
    }
}

impl Shared {
    fn take_allocation(
        self: &Arc<Self>,
        username: &str,
        source: IpAddr,
    ) -> Result<AllocationSlot, &'static str> {
        let mut u = self.usage.lock().map_err(|_| "Allocation Quota Reached")?;
        let q = self.quotas;
        if u.total >= q.total {
            return Err("Allocation Quota Reached: the server is full");
        }
        if u.per_source.get(&source).copied().unwrap_or(0) >= q.per_source {
            return Err("Allocation Quota Reached: too many from this address");
        }
        if u.per_credential.get(username).copied().unwrap_or(0) >= q.per_credential {
            return Err("Allocation Quota Reached: too many with this credential");
        }
        u.total += 1;
        self.stats
            .allocations
            .store(u64::from(u.total), Ordering::Relaxed);
        bump(&mut u.per_source, source, true);
        bump(&mut u.per_credential, username.to_owned(), true);
        Ok(AllocationSlot {
            shared: self.clone(),
            username: username.to_owned(),
            source,
        })
    }

    fn take_connection(self: &Arc<Self>, source: IpAddr) -> Option<ConnectionSlot> {
        let mut u = self.usage.lock().ok()?;
        let q = self.quotas;
        if u.connections >= q.connections
            || u.connections_per_source.get(&source).copied().unwrap_or(0)
                >= q.connections_per_source
        {
            return None;
        }
        u.connections += 1;
        bump(&mut u.connections_per_source, source, true);
        Some(ConnectionSlot {
            shared: self.clone(),
            source,
        })
    }
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// Bind the listeners and start serving.
pub async fn start(config: TurnConfig) -> io::Result<TurnServer> {
    let (stop_tx, stop) = watch::channel(());
    let shared = Arc::new(Shared {
        rules: config.rules,
        quotas: config.quotas,
        relay_ip: config.relay_ip,
        relay_public_ip: config.relay_public_ip.unwrap_or(config.relay_ip),
        usage: Mutex::new(Usage::default()),
        stats: Arc::default(),
        stop,
    });
    let mut server = TurnServer {
        udp: None,
        tcp: None,
        tls: None,
        shared: shared.clone(),
        _stop: stop_tx,
    };
    if let Some(addr) = config.udp {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        server.udp = Some(socket.local_addr()?);
        tokio::spawn(udp_listener(shared.clone(), socket));
    }
    if let Some(addr) = config.tcp {
        let listener = TcpListener::bind(addr).await?;
        server.tcp = Some(listener.local_addr()?);
        tokio::spawn(tcp_listener(shared.clone(), listener, None));
    }
    if let Some((addr, tls)) = config.tls {
        let listener = TcpListener::bind(addr).await?;
        server.tls = Some(listener.local_addr()?);
        tokio::spawn(tcp_listener(
            shared.clone(),
            listener,
            Some(TlsAcceptor::from(tls)),
        ));
    }
    Ok(server)
}

async fn udp_listener(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let mut stop = shared.stop.clone();
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0; 65536];
    let mut out = Vec::with_capacity(1500);
    let mut limit = RequestLimit::new(shared.quotas.requests_per_source, Instant::now());
    loop {
        let (n, from) = tokio::select! {
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                // ICMP errors surface here on some systems; keep serving.
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let data = &buf[..n];
        if let Some(queue) = sessions.get(&from) {
            match queue.try_send(data.to_vec()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    sessions.remove(&from);
                }
            }
        }
        // A 5-tuple with no allocation: answered without keeping state
        // unless it is an authenticated Allocate, and only as fast as the
        // limit allows (its answer could go to a spoofed address).
        if !stun::is_stun(data) {
            continue;
        }
        if !limit.allow(from.ip(), Instant::now()) {
            shared
                .stats
                .requests_limited
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut session = Session::new(from, false);
        match session.client(&shared.rules, data, now(), &mut out) {
            Action::Reply | Action::ReplyAndClose => {
                let _ = socket.send_to(&out, from).await;
            }
            Action::Allocate { username } => {
                if sessions.len() >= 2 * shared.quotas.total as usize {
                    sessions.retain(|_, q| !q.is_closed());
                }
                let (queue, incoming) = mpsc::channel(UDP_QUEUE);
                sessions.insert(from, queue);
                let link = UdpLink {
                    socket: socket.clone(),
                    client: from,
                    incoming,
                };
                tokio::spawn(run_session(shared.clone(), session, link, Some(username)));
            }
            Action::None | Action::Relay(..) => {}
        }
    }
}

async fn tcp_listener(shared: Arc<Shared>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let mut stop = shared.stop.clone();
    loop {
        let (stream, from) = tokio::select! {
            got = listener.accept() => match got {
                Ok(got) => got,
                Err(e) => {
                    // Out of file descriptors: wait rather than spin.
                    tracing::warn!(error = %e, "TURN: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Some(slot) = shared.take_connection(from.ip()) else {
            continue; // dropped: closes the connection
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let session = Session::new(from, true);
            match tls {
                None => run_session(shared, session, StreamLink::new(stream), None).await,
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(TLS_HANDSHAKE, tls.accept(stream)).await
                    else {
                        return;
                    };
                    run_session(shared, session, StreamLink::new(stream), None).await;
                }
            }
        });
    }
}

/// How a session talks to its client.
trait Link {
    /// The next datagram or frame into `buf`; `false` when the client is gone.
    async fn recv(&mut self, buf: &mut Vec<u8>) -> bool;
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
}

struct UdpLink {
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    incoming: mpsc::Receiver<Vec<u8>>,
}

impl Link for UdpLink {
    async fn recv(&mut self, buf: &mut Vec<u8>) -> bool {
        match self.incoming.recv().await {
            Some(datagram) => {
                *buf = datagram;
                true
            }
            None => false,
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send_to(bytes, self.client).await.map(drop)
    }
}

/// A TCP or TLS connection carrying STUN messages and channel data back to
/// back (RFC 8656 §12.5).
struct StreamLink<S> {
    stream: S,
    /// Bytes read and not yet returned as a frame: reading into it is
    /// cancel-safe, so `recv` may lose a `select!` without losing data.
    pending: Vec<u8>,
}

impl<S> StreamLink<S> {
    fn new(stream: S) -> Self {
        StreamLink {
            stream,
            pending: Vec::with_capacity(2048),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link for StreamLink<S> {
    async fn recv(&mut self, buf: &mut Vec<u8>) -> bool {
        loop {
            if self.pending.len() >= 4 {
                let head = [
                    self.pending[0],
                    self.pending[1],
                    self.pending[2],
                    self.pending[3],
                ];
                let len = stun::frame_len(head);
                if self.pending.len() >= len {
                    buf.clear();
                    buf.extend_from_slice(&self.pending[..len]);
                    self.pending.drain(..len);
                    return true;
                }
            }
            // Frames are at most 20 + 65535 bytes, so this stays bounded.
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

async fn relay_recv(relay: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match relay {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// One client's session until its allocation ends, its link closes or the
/// server stops. `allocate` is the username of an Allocate the UDP listener
/// already accepted, to be completed first.
async fn run_session(
    shared: Arc<Shared>,
    mut session: Session,
    mut link: impl Link,
    allocate: Option<String>,
) {
    let mut stop = shared.stop.clone();
    let client = session.client_addr().ip();
    let mut relay: Option<UdpSocket> = None;
    let mut slot: Option<AllocationSlot> = None;
    let mut out = Vec::with_capacity(1500);
    let mut incoming = Vec::with_capacity(1500);
    let mut relayed = vec![0u8; RELAY_BUFFER];
    let give_up = tokio::time::Instant::now() + FIRST_ALLOCATION;
    // Over TCP or TLS, what a connection without an allocation is answered
    // (the UDP listener limits its own).
    let mut limit = RequestLimit::new(shared.quotas.requests_per_source, Instant::now());

    if let Some(username) = allocate {
        let allocated = complete_allocate(
            &shared,
            &mut session,
            &username,
            client,
            &mut relay,
            &mut slot,
            &mut out,
        )
        .await;
        if link.send(&out).await.is_err() || !allocated {
            return;
        }
    }
    loop {
        let deadline = match session.expires() {
            Some(expires) => tokio::time::Instant::from_std(expires),
            None => give_up,
        };
        tokio::select! {
            alive = link.recv(&mut incoming) => {
                if !alive {
                    return;
                }
                let now = now();
                if !session.is_allocated() && !limit.allow(client, now.mono) {
                    shared.stats.requests_limited.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match session.client(&shared.rules, &incoming, now, &mut out) {
                    Action::None => {}
                    Action::Reply => {
                        if link.send(&out).await.is_err() {
                            return;
                        }
                    }
                    Action::ReplyAndClose => {
                        let _ = link.send(&out).await;
                        return;
                    }
                    Action::Relay(peer, data) => {
                        if let Some(relay) = &relay {
                            let _ = relay.try_send_to(data, peer);
                        }
                    }
                    Action::Allocate { username } => {
                        complete_allocate(&shared, &mut session, &username, client, &mut relay, &mut slot, &mut out).await;
                        if link.send(&out).await.is_err() {
                            return;
                        }
                    }
                }
            }
            got = relay_recv(relay.as_ref(), &mut relayed) => {
                let Ok((n, peer)) = got else { continue };
                if session.peer(peer, &relayed[..n], now(), &mut out) && link.send(&out).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if session.expires().is_none() || session.expired(now()) {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The shell's half of an Allocate: the quota, then a relay socket.
/// Returns whether the allocation exists; the response is in `out` either way.
async fn complete_allocate(
    shared: &Arc<Shared>,
    session: &mut Session,
    username: &str,
    client: IpAddr,
    relay: &mut Option<UdpSocket>,
    slot: &mut Option<AllocationSlot>,
    out: &mut Vec<u8>,
) -> bool {
    let taken = match shared.take_allocation(username, client) {
        Ok(taken) => taken,
        Err(reason) => {
            session.refuse(486, reason, out);
            return false;
        }
    };
    let socket = match UdpSocket::bind(SocketAddr::new(shared.relay_ip, 0)).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(error = %e, "TURN: cannot open a relay socket");
            session.refuse(508, "Insufficient Capacity", out);
            return false;
        }
    };
    let port = match socket.local_addr() {
        Ok(addr) => addr.port(),
        Err(_) => {
            session.refuse(508, "Insufficient Capacity", out);
            return false;
        }
    };
    session.allocated(SocketAddr::new(shared.relay_public_ip, port), now(), out);
    *relay = Some(socket);
    *slot = Some(taken);
    true
}

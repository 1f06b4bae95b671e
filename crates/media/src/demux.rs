//! Every datagram to its peer: the media port and the routing.
//!
//! The media port is one UDP address. Each worker owns a socket bound to
//! it (several sockets share the port with `SO_REUSEPORT`, and the kernel
//! spreads remote 4-tuples over them by hash), reads its socket itself, and
//! routes what it reads:
//!
//! - The first datagram from a 4-tuple must be a STUN binding request; its
//!   USERNAME names the peer's local ufrag, which [`Routes`] maps to a worker
//!   and peer. The reading worker then remembers the 4-tuple in a table only
//!   it touches ([`Port`]), so every later datagram (DTLS, SRTP, SRTCP, STUN)
//!   is routed by one hash lookup, without locks. A given 4-tuple always
//!   lands on the same socket, so each table holds just that socket's flows.
//! - A datagram for a peer of this worker is handled in place, from the
//!   receive buffer. One for another worker's peer is copied into a pooled
//!   buffer and handed over ([`Handoff`]). With one worker nothing is ever
//!   handed over; with more, placing rooms by 4-tuple hash would remove the
//!   hop, at the price of knowing clients' addresses before they connect.
//! - Datagrams from unknown senders that are not STUN for a known ufrag are
//!   dropped and counted.
//!
//! Sockets are read with `recvmmsg` and GRO (through `quinn-udp`), which
//! also reports each datagram's destination address: behind a wildcard
//! bind, ICE needs to know which local address a client used, and replies
//! must leave from it.

use std::collections::{HashMap, HashSet};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use quinn_udp::{RecvMeta, UdpSocketState};

use crate::forward::PeerRef;
use crate::stun;

/// Datagrams waiting to be handed to one worker before new ones are dropped.
pub const HANDOFF_QUEUE: usize = 4096;
/// Largest datagram handed between workers (Ethernet MTU with room to spare).
pub const MAX_DATAGRAM: usize = 2048;
/// Buffers kept for reuse by hand-offs.
const POOL_SIZE: usize = 1024;
/// How often a worker forgets 4-tuples of peers that are gone.
pub const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// Receive buffers per `recvmmsg`.
const RECV_BATCH: usize = 16;
/// Socket buffer sizes asked for (the kernel caps them at
/// `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// Where a peer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub worker: usize,
    pub peer: PeerRef,
}

/// The ufrag → peer table, written by workers when they add or remove a
/// peer, read on a 4-tuple's first datagram only.
#[derive(Default)]
pub struct Routes {
    by_ufrag: Mutex<HashMap<String, Route>>,
}

impl Routes {
    pub fn insert(&self, ufrag: &str, route: Route) {
        self.by_ufrag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ufrag.to_owned(), route);
    }

    pub fn remove(&self, ufrag: &str) {
        self.by_ufrag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ufrag);
    }

    pub(crate) fn get(&self, ufrag: &str) -> Option<Route> {
        self.by_ufrag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ufrag)
            .copied()
    }

    /// Every route in the table, copied out under one short lock.
    fn live(&self) -> HashSet<Route> {
        self.by_ufrag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .copied()
            .collect()
    }
}

/// What the routing counts.
#[derive(Debug, Default)]
pub struct DemuxStats {
    /// Datagrams from unknown 4-tuples that were not STUN for a known ufrag.
    pub unknown: AtomicU64,
    /// Datagrams dropped because the worker they were handed to was full.
    pub overflow: AtomicU64,
    /// Datagrams handed from the worker that read them to the peer's.
    pub handed_over: AtomicU64,
    /// 4-tuples currently known.
    pub tuples: AtomicU64,
}

/// Bind `count` sockets to `addr`. With more than one they share the port
/// through `SO_REUSEPORT`; the port is first claimed without it, so a port
/// another process holds (even with `SO_REUSEPORT`) is refused rather than
/// shared, and port 0 picks a port nobody else has.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let open = |addr: SocketAddr, reuse_port: bool| -> io::Result<UdpSocket> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        // Best effort: a bigger buffer absorbs bursts while a worker is busy.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        Ok(socket.into())
    };
    if count <= 1 {
        return Ok(vec![open(addr, false)?]);
    }
    let claim = open(addr, false)?;
    let addr = claim.local_addr()?;
    drop(claim);
    (0..count).map(|_| open(addr, true)).collect()
}

/// One received datagram handed to the worker of its peer. The buffer goes
/// back to the pool when that worker is done with it.
pub struct Handoff {
    pub peer: PeerRef,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub buf: Vec<u8>,
}

/// Recycled hand-off buffers.
#[derive(Clone)]
pub struct BufferPool {
    give: Sender<Vec<u8>>,
    take: Receiver<Vec<u8>>,
}

impl BufferPool {
    pub fn new() -> Self {
        let (give, take) = crossbeam_channel::bounded(POOL_SIZE);
        Self { give, take }
    }

    /// A buffer holding a copy of `contents`.
    pub fn copy_of(&self, contents: &[u8]) -> Vec<u8> {
        let mut buf = self
            .take
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(MAX_DATAGRAM));
        buf.clear();
        buf.extend_from_slice(contents);
        buf
    }

    /// Return a buffer; dropped if the pool is full.
    pub fn put(&self, buf: Vec<u8>) {
        let _ = self.give.try_send(buf);
    }
}

/// Where a datagram read from a worker's socket goes.
pub enum Destination {
    /// A peer of this worker.
    Here(PeerRef),
    /// A peer of another worker.
    There(Route),
    /// Nobody: an unknown sender.
    Nowhere,
}

/// A worker's end of the media port: its socket and receive buffers.
pub struct Inbound {
    pub socket: mio::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
}

impl Inbound {
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        let local = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        // Room for the largest GRO batch the kernel may coalesce.
        let size = (state.gro_segments() * 1500).clamp(MAX_DATAGRAM, 1 << 16);
        Ok(Self {
            socket: mio::net::UdpSocket::from_std(socket),
            state,
            local,
            bufs: (0..RECV_BATCH).map(|_| vec![0; size]).collect(),
            meta: vec![RecvMeta::default(); RECV_BATCH],
        })
    }

    /// Read what is waiting, up to one `recvmmsg` worth: how many receive
    /// buffers were filled, `None` when the socket is dry.
    pub fn receive(&mut self) -> io::Result<Option<usize>> {
        let mut slices: [IoSliceMut<'_>; RECV_BATCH] = {
            let mut bufs = self.bufs.iter_mut();
            std::array::from_fn(|_| {
                IoSliceMut::new(bufs.next().map(|b| b.as_mut_slice()).unwrap_or(&mut []))
            })
        };
        match self
            .state
            .recv((&self.socket).into(), &mut slices, &mut self.meta)
        {
            Ok(count) => Ok(Some(count)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // ICMP port unreachable from a vanished client surfaces here on
            // some systems; it concerns one sender, not the socket.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// The datagrams of the last [`Inbound::receive`] that filled `count`
    /// buffers, GRO batches split into their segments: `(source,
    /// destination, contents)`.
    pub fn datagrams(
        &self,
        count: usize,
    ) -> impl Iterator<Item = (SocketAddr, SocketAddr, &[u8])> + '_ {
        let local = self.local;
        self.meta[..count.min(self.meta.len())]
            .iter()
            .zip(&self.bufs)
            .flat_map(move |(meta, buf)| {
                let destination =
                    SocketAddr::new(meta.dst_ip.unwrap_or_else(|| local.ip()), local.port());
                let len = meta.len.min(buf.len());
                buf[..len]
                    .chunks(meta.stride.max(1))
                    .map(move |segment| (meta.addr, destination, segment))
            })
    }
}

/// A worker's 4-tuple table: where each sender that reaches its socket goes.
pub struct Router {
    worker: usize,
    tuples: HashMap<SocketAddr, Route>,
    routes: Arc<Routes>,
    stats: Arc<DemuxStats>,
    pruned: Instant,
}

impl Router {
    pub fn new(worker: usize, routes: Arc<Routes>, stats: Arc<DemuxStats>) -> Self {
        Self {
            worker,
            tuples: HashMap::new(),
            routes,
            stats,
            pruned: Instant::now(),
        }
    }

    /// Where a datagram from `source` goes, learning its 4-tuple from a
    /// first STUN request.
    pub fn route(&mut self, source: SocketAddr, datagram: &[u8]) -> Destination {
        let route = match self.tuples.get(&source) {
            Some(route) => *route,
            None => {
                let Some(route) = stun::recipient_ufrag(datagram).and_then(|u| self.routes.get(u))
                else {
                    self.stats.unknown.fetch_add(1, Ordering::Relaxed);
                    return Destination::Nowhere;
                };
                self.tuples.insert(source, route);
                self.stats.tuples.fetch_add(1, Ordering::Relaxed);
                route
            }
        };
        if route.worker == self.worker {
            Destination::Here(route.peer)
        } else {
            Destination::There(route)
        }
    }

    /// Forget 4-tuples whose peer is gone (its ufrag was removed), now and
    /// then.
    pub fn prune(&mut self, now: Instant) {
        if now.saturating_duration_since(self.pruned) < PRUNE_EVERY {
            return;
        }
        self.pruned = now;
        if self.tuples.is_empty() {
            return;
        }
        let live = self.routes.live();
        let before = self.tuples.len();
        self.tuples.retain(|_, route| live.contains(route));
        let gone = (before - self.tuples.len()) as u64;
        self.stats.tuples.fetch_sub(gone, Ordering::Relaxed);
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stats
            .tuples
            .fetch_sub(self.tuples.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_share_one_port_that_nobody_else_can_take() {
        let sockets = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = sockets[0].local_addr().unwrap();
        assert_ne!(port.port(), 0);
        for socket in &sockets {
            assert_eq!(socket.local_addr().unwrap(), port);
        }
        // A second server on the same port is refused, with or without
        // SO_REUSEPORT of its own.
        assert!(bind(port, 2).is_err());
        assert!(bind(port, 1).is_err());
        drop(sockets);
        assert!(bind(port, 2).is_ok(), "the port is free again");
    }

    #[test]
    fn a_batch_reports_each_datagram_with_its_destination() {
        let sockets = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let local = sockets[0].local_addr().unwrap();
        let mut inbound = Inbound::new(sockets.into_iter().next().unwrap()).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for n in 0..3u8 {
            sender.send_to(&[n; 100], local).unwrap();
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 3 && Instant::now() < deadline {
            match inbound.receive().unwrap() {
                Some(count) => {
                    got.extend(inbound.datagrams(count).map(|(s, d, c)| (s, d, c.to_vec())))
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        assert_eq!(got.len(), 3);
        for (n, (source, destination, contents)) in got.into_iter().enumerate() {
            assert_eq!(source, sender.local_addr().unwrap());
            assert_eq!(destination, local);
            assert_eq!(contents, vec![n as u8; 100]);
        }
    }
}

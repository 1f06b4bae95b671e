//! The demux thread: every datagram on the media socket to its peer's worker.
//!
//! The first datagram from a 4-tuple must be a STUN binding request; its
//! USERNAME names the peer's local ufrag, which [`Routes`] maps to a worker
//! and peer. The demux then remembers the 4-tuple in a table only it touches,
//! so every later datagram (DTLS, SRTP, SRTCP, STUN) is routed by one hash
//! lookup, without locks. Datagrams from unknown senders that are not STUN for
//! a known ufrag are dropped (and counted).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::MediaStats;
use crate::forward::PeerRef;
use crate::stun;

/// Datagrams waiting for one worker before new ones are dropped.
pub const WORKER_QUEUE: usize = 4096;
/// Largest datagram accepted (Ethernet MTU with room to spare).
pub const MAX_DATAGRAM: usize = 2048;
/// Buffers kept for reuse.
const POOL_SIZE: usize = 8192;
/// How often the demux forgets 4-tuples of peers that are gone.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Where a peer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub worker: usize,
    pub peer: PeerRef,
}

/// The ufrag → peer table, written by workers when they add or remove a
/// peer, read by the demux on a 4-tuple's first datagram only.
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

    fn get(&self, ufrag: &str) -> Option<Route> {
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

/// One received datagram on its way to a worker. The buffer goes back to
/// the pool when the worker is done with it.
pub struct Datagram {
    pub peer: PeerRef,
    pub source: SocketAddr,
    pub buf: Vec<u8>,
}

/// Recycled datagram buffers.
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

    fn get(&self) -> Vec<u8> {
        let mut buf = self
            .take
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(MAX_DATAGRAM));
        buf.resize(MAX_DATAGRAM, 0);
        buf
    }

    /// Return a buffer; dropped if the pool is full.
    pub fn put(&self, buf: Vec<u8>) {
        let _ = self.give.try_send(buf);
    }
}

/// What the demux counts.
#[derive(Debug, Default)]
pub struct DemuxStats {
    /// Datagrams from unknown 4-tuples that were not STUN for a known ufrag.
    pub unknown: AtomicU64,
    /// Datagrams dropped because their worker's queue was full.
    pub overflow: AtomicU64,
    /// 4-tuples currently known.
    pub tuples: AtomicU64,
}

pub struct Demux {
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    workers: Vec<Sender<Datagram>>,
    routes: Arc<Routes>,
    tuples: HashMap<SocketAddr, Route>,
    pool: BufferPool,
    stats: Arc<MediaStats>,
    demux_stats: Arc<DemuxStats>,
    stop: Arc<AtomicBool>,
}

impl Demux {
    pub fn new(
        socket: Arc<UdpSocket>,
        workers: Vec<Sender<Datagram>>,
        routes: Arc<Routes>,
        pool: BufferPool,
        stats: Arc<MediaStats>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        // Wake up now and then even without traffic, to prune and to notice
        // a shutdown.
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(Self {
            local_addr: socket.local_addr()?,
            socket,
            workers,
            routes,
            tuples: HashMap::new(),
            pool,
            stats,
            demux_stats: Arc::default(),
            stop,
        })
    }

    pub fn stats(&self) -> Arc<DemuxStats> {
        self.demux_stats.clone()
    }

    pub fn run(mut self) {
        let mut pruned = Instant::now();
        let mut buf = self.pool.get();
        while !self.stop.load(Ordering::Relaxed) {
            match self.socket.recv_from(&mut buf) {
                Ok((len, source)) => {
                    self.stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
                    self.stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
                    buf.truncate(len);
                    match self.route(source, &buf) {
                        Some(route) => {
                            let datagram = Datagram {
                                peer: route.peer,
                                source,
                                buf,
                            };
                            buf = self.pool.get();
                            self.deliver(route.worker, datagram);
                        }
                        None => {
                            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            self.demux_stats.unknown.fetch_add(1, Ordering::Relaxed);
                            buf.resize(MAX_DATAGRAM, 0);
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // ICMP port unreachable from a vanished client surfaces here
                // on some systems; it concerns one sender, not the socket.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!(error = %e, addr = %self.local_addr, "media socket receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                self.prune();
                pruned = Instant::now();
            }
        }
        tracing::debug!("demux stopped");
    }

    fn route(&mut self, source: SocketAddr, datagram: &[u8]) -> Option<Route> {
        if let Some(route) = self.tuples.get(&source) {
            return Some(*route);
        }
        let ufrag = stun::recipient_ufrag(datagram)?;
        let route = self.routes.get(ufrag)?;
        self.tuples.insert(source, route);
        self.demux_stats
            .tuples
            .store(self.tuples.len() as u64, Ordering::Relaxed);
        Some(route)
    }

    fn deliver(&mut self, worker: usize, datagram: Datagram) {
        let Some(inbox) = self.workers.get(worker) else {
            return;
        };
        match inbox.try_send(datagram) {
            Ok(()) => {}
            Err(TrySendError::Full(d) | TrySendError::Disconnected(d)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                self.demux_stats.overflow.fetch_add(1, Ordering::Relaxed);
                self.pool.put(d.buf);
            }
        }
    }

    /// Forget 4-tuples whose peer is gone (its ufrag was removed).
    fn prune(&mut self) {
        if self.tuples.is_empty() {
            return;
        }
        let live = self.routes.live();
        self.tuples.retain(|_, route| live.contains(route));
        self.demux_stats
            .tuples
            .store(self.tuples.len() as u64, Ordering::Relaxed);
    }
}

//! The worker's ICE-TCP connections ([`crate::tcp`]): adopted from the
//! acceptor, read in the worker's `epoll` loop, written by the peers'
//! transmits.
//!
//! Per frame: one hash lookup on send (the 4-tuple), no allocation either
//! way (the read buffer and the write queue of each connection are
//! allocated once; the queue grows to its bound at most). A connection that
//! breaks a rule is marked broken where that is noticed (possibly inside a
//! peer's drain) and closed at the end of the worker's turn.

use std::io::{IoSlice, Read, Write};

use super::*;
use crate::tcp::{Adopted, FrameReader, TcpLimits, is_media_frame};

/// The first `mio` token of TCP connections (below it: the socket, the
/// waker).
pub(super) const FIRST_LINK: usize = 2;
/// Reads of one connection per turn of the worker loop, so one busy client
/// cannot starve the others; the rest waits for the next turn.
const READS_PER_TURN: usize = 8;

/// One client's TCP connection.
struct Link {
    stream: mio::net::TcpStream,
    peer: PeerRef,
    remote: SocketAddr,
    local: SocketAddr,
    reader: FrameReader,
    /// Framed bytes the kernel did not take yet: `queue[sent..]`.
    queue: Vec<u8>,
    sent: usize,
    broken: bool,
    _count: crate::tcp::Counted,
}

/// The worker's connections, by slot (the `mio` token minus
/// [`FIRST_LINK`]) and by 4-tuple.
#[derive(Default)]
pub(super) struct Links {
    slots: Vec<Option<Link>>,
    by_tuple: HashMap<(SocketAddr, SocketAddr), usize>,
    /// Slots marked broken, to close at the end of the turn.
    broken: Vec<usize>,
    /// Slots with bytes possibly left unread (their read budget ran out).
    unread: Vec<usize>,
    write_bound: usize,
}

impl Links {
    pub(super) fn new(limits: &TcpLimits) -> Self {
        Self {
            write_bound: limits.write_queue,
            ..Self::default()
        }
    }

    /// Send one framed datagram on the connection of (`local`, `remote`).
    /// Never blocks: what the kernel does not take is queued, up to the
    /// bound; beyond it the connection is broken.
    pub(super) fn send(&mut self, local: SocketAddr, remote: SocketAddr, contents: &[u8]) -> bool {
        let Some(&index) = self.by_tuple.get(&(remote, local)) else {
            return false;
        };
        let Some(link) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return false;
        };
        if link.broken {
            return false;
        }
        let Ok(len) = u16::try_from(contents.len()) else {
            return false;
        };
        let header = len.to_be_bytes();
        let mut written = 0;
        if link.sent == link.queue.len() {
            // Nothing queued: straight to the kernel.
            let total = 2 + contents.len();
            loop {
                let result = if written < 2 {
                    link.stream
                        .write_vectored(&[IoSlice::new(&header[written..]), IoSlice::new(contents)])
                } else {
                    link.stream.write(&contents[written - 2..])
                };
                match result {
                    Ok(0) => {
                        break_link(link, index, &mut self.broken);
                        return false;
                    }
                    Ok(n) => {
                        written += n;
                        if written == total {
                            return true;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        break_link(link, index, &mut self.broken);
                        return false;
                    }
                }
            }
        }
        // Queue the rest of the frame.
        let pending = link.queue.len() - link.sent;
        if pending + 2 + contents.len() - written > self.write_bound {
            break_link(link, index, &mut self.broken);
            return false;
        }
        if link.sent > 0 && link.sent == link.queue.len() {
            link.queue.clear();
            link.sent = 0;
        }
        if written < 2 {
            link.queue.extend_from_slice(&header[written..]);
            link.queue.extend_from_slice(contents);
        } else {
            link.queue.extend_from_slice(&contents[written - 2..]);
        }
        true
    }

    /// Write what is queued on slot `index` (it became writable).
    fn flush(&mut self, index: usize) {
        let Some(link) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        while !link.broken && link.sent < link.queue.len() {
            match link.stream.write(&link.queue[link.sent..]) {
                Ok(0) => break_link(link, index, &mut self.broken),
                Ok(n) => link.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break_link(link, index, &mut self.broken),
            }
        }
        if link.sent == link.queue.len() {
            link.queue.clear();
            link.sent = 0;
        }
    }
}

/// How a read of a connection ended.
#[derive(PartialEq, Eq)]
enum End {
    Open,
    /// The client closed it, or its peer is gone.
    Closed,
    /// A frame broke the rules: oversize, empty, or not media.
    Broke,
}

fn break_link(link: &mut Link, index: usize, broken: &mut Vec<usize>) {
    if !link.broken {
        link.broken = true;
        broken.push(index);
    }
}

impl Worker {
    /// Take a connection the acceptor routed to a peer of this worker, and
    /// read what it has sent (its first frame is still buffered).
    pub(super) fn adopt_tcp(&mut self, adopted: Adopted) {
        let Adopted {
            mut stream,
            route,
            remote,
            local,
            reader,
            count,
        } = adopted;
        // The peer may have left while the connection was on its way.
        if route.worker != self.setup.index || slot_peer(&mut self.slots, route.peer).is_none() {
            self.setup
                .stats
                .tcp_rejected
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let links = &mut self.tcp;
        let index = match links.slots.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                links.slots.push(None);
                links.slots.len() - 1
            }
        };
        if self
            .poll
            .registry()
            .register(
                &mut stream,
                mio::Token(FIRST_LINK + index),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        // A second connection on the same 4-tuple replaces the first.
        if let Some(old) = links.by_tuple.insert((remote, local), index)
            && let Some(link) = links.slots.get_mut(old).and_then(Option::as_mut)
        {
            break_link(link, old, &mut links.broken);
        }
        links.slots[index] = Some(Link {
            stream,
            peer: route.peer,
            remote,
            local,
            reader,
            queue: Vec::new(),
            sent: 0,
            broken: false,
            _count: count,
        });
        self.read_link(index);
    }

    /// A readiness event on a connection's token.
    pub(super) fn on_link_event(&mut self, token: usize, readable: bool, writable: bool) {
        let Some(index) = token.checked_sub(FIRST_LINK) else {
            return;
        };
        if writable {
            self.tcp.flush(index);
        }
        if readable {
            self.read_link(index);
        }
    }

    /// Read connections whose read budget ran out last turn. Whether any
    /// still has more.
    pub(super) fn read_unread_links(&mut self) -> bool {
        if self.tcp.unread.is_empty() {
            return false;
        }
        let unread = std::mem::take(&mut self.tcp.unread);
        for index in unread {
            self.read_link(index);
        }
        !self.tcp.unread.is_empty()
    }

    /// Read slot `index` (up to its budget) and feed each frame to its peer.
    fn read_link(&mut self, index: usize) {
        let Some(link) = self.tcp.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if link.broken {
            return;
        }
        let (peer, remote, local) = (link.peer, link.remote, link.local);
        // The buffer leaves the link while its frames are handled: a
        // peer's drain may write to this same connection.
        let mut reader = std::mem::take(&mut link.reader);
        let mut end = End::Open;
        let mut rounds = 0;
        'read: loop {
            // Frames already buffered first (an adopted connection arrives
            // with its first one).
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) if is_media_frame(frame) => {
                        let (s, r, l) = (&self.setup.stats, remote, local);
                        s.datagrams_in.fetch_add(1, Ordering::Relaxed);
                        s.bytes_in.fetch_add(frame.len() as u64, Ordering::Relaxed);
                        if !self.on_datagram(peer, Protocol::Tcp, r, l, frame) {
                            end = End::Closed; // its peer is gone
                            break 'read;
                        }
                    }
                    Ok(Some(_)) | Err(_) => {
                        end = End::Broke;
                        break 'read;
                    }
                    Ok(None) => break,
                }
            }
            if rounds == READS_PER_TURN {
                self.tcp.unread.push(index);
                break;
            }
            rounds += 1;
            let Some(link) = self.tcp.slots.get_mut(index).and_then(Option::as_mut) else {
                break;
            };
            if link.broken {
                break;
            }
            match link.stream.read(reader.spare()) {
                Ok(0) => {
                    end = End::Closed;
                    break;
                }
                Ok(n) => reader.filled(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    end = End::Closed;
                    break;
                }
            }
        }
        self.flush_written(Instant::now());
        let links = &mut self.tcp;
        if let Some(link) = links.slots.get_mut(index).and_then(Option::as_mut) {
            link.reader = reader;
            if end == End::Broke {
                self.setup
                    .stats
                    .tcp_rejected
                    .fetch_add(1, Ordering::Relaxed);
            }
            if end != End::Open {
                break_link(link, index, &mut links.broken);
            }
        }
    }

    /// Close the connections of peer `r` (it is being removed).
    pub(super) fn close_links_of(&mut self, r: PeerRef) {
        let links = &mut self.tcp;
        for (index, slot) in links.slots.iter_mut().enumerate() {
            if let Some(link) = slot.as_mut()
                && link.peer == r
            {
                break_link(link, index, &mut links.broken);
            }
        }
    }

    /// Close the connections marked broken this turn.
    pub(super) fn close_broken_links(&mut self) {
        if self.tcp.broken.is_empty() {
            return;
        }
        let links = &mut self.tcp;
        for index in links.broken.drain(..) {
            let Some(mut link) = links.slots.get_mut(index).and_then(Option::take) else {
                continue;
            };
            let _ = self.poll.registry().deregister(&mut link.stream);
            if links.by_tuple.get(&(link.remote, link.local)) == Some(&index) {
                links.by_tuple.remove(&(link.remote, link.local));
            }
            // Dropping the stream closes it; its count goes with it.
        }
        links
            .unread
            .retain(|i| links.slots.get(*i).is_some_and(Option::is_some));
    }
}

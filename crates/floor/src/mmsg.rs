//! The batched loop (Linux): `recvmmsg` fills up to [`RX_BATCH`] receive
//! buffers per call, the relay handles each datagram, writing what it sends
//! into a pool of [`TX_BATCH`] buffers, and `sendmmsg` sends the pool when
//! it is full and after every receive batch. Same relay, same crypto, fewer
//! syscalls.
//!
//! All the `unsafe` of the crate is here and in `pin_to_cpu`: the message
//! headers point into buffers this module owns, which never move while the
//! kernel uses them (they live in boxed slices allocated once).

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::relay::{MAX_DATAGRAM, MAX_OUTGOING, Relay, Transmit};
use crate::serve::{SocketStats, is_transient};

/// Datagrams read per `recvmmsg`.
pub const RX_BATCH: usize = 32;
/// Datagrams sent per `sendmmsg` at most.
pub const TX_BATCH: usize = 64;

/// Message headers pointing into owned buffers.
struct Messages {
    bufs: Box<[u8]>,
    buf_len: usize,
    addrs: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

impl Messages {
    fn new(count: usize, buf_len: usize) -> Self {
        let mut m = Messages {
            bufs: vec![0u8; count * buf_len].into_boxed_slice(),
            buf_len,
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C
            // structs for which all zeros is a valid value.
            addrs: (0..count).map(|_| unsafe { mem::zeroed() }).collect(),
            iovs: (0..count).map(|_| unsafe { mem::zeroed() }).collect(),
            headers: (0..count).map(|_| unsafe { mem::zeroed() }).collect(),
        };
        for i in 0..count {
            m.iovs[i] = libc::iovec {
                iov_base: m.bufs[i * buf_len..].as_mut_ptr().cast(),
                iov_len: buf_len,
            };
            let h = &mut m.headers[i].msg_hdr;
            h.msg_name = (&raw mut m.addrs[i]).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut m.iovs[i];
            h.msg_iovlen = 1;
        }
        m
    }

    fn buf(&mut self, i: usize) -> &mut [u8] {
        &mut self.bufs[i * self.buf_len..(i + 1) * self.buf_len]
    }
}

pub(crate) fn serve(
    socket: &UdpSocket,
    relay: &mut Relay,
    stop: &AtomicBool,
) -> io::Result<SocketStats> {
    let fd = socket.as_raw_fd();
    let mut rx = Messages::new(RX_BATCH, MAX_DATAGRAM);
    let mut tx = Batch {
        fd,
        messages: Messages::new(TX_BATCH, MAX_OUTGOING),
        queued: 0,
        stats: SocketStats::default(),
    };
    while !stop.load(Ordering::Relaxed) {
        for h in rx.headers.iter_mut() {
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_len = 0;
        }
        // SAFETY: the headers point into `rx`'s buffers, which outlive the
        // call; the count matches the array. MSG_WAITFORONE: block for the
        // first datagram (up to the socket's receive timeout), not the rest.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                rx.headers.as_mut_ptr(),
                RX_BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if is_transient(&e) {
                continue;
            }
            return Err(e);
        }
        tx.stats.receive_calls += 1;
        for i in 0..n as usize {
            let len = (rx.headers[i].msg_len as usize).min(MAX_DATAGRAM);
            let namelen = rx.headers[i].msg_hdr.msg_namelen;
            let Some(source) = read_addr(&rx.addrs[i], namelen) else {
                continue;
            };
            relay.handle(source, &mut rx.buf(i)[..len], &mut tx);
        }
        tx.flush();
    }
    Ok(tx.stats)
}

/// Collects outgoing datagrams and sends them together.
struct Batch {
    fd: libc::c_int,
    messages: Messages,
    queued: usize,
    stats: SocketStats,
}

impl Transmit for Batch {
    fn buffer(&mut self) -> &mut [u8] {
        if self.queued == TX_BATCH {
            self.flush();
        }
        let i = self.queued;
        self.messages.buf(i)
    }

    fn send(&mut self, len: usize, to: SocketAddr) {
        let i = self.queued;
        let namelen = write_addr(&to, &mut self.messages.addrs[i]);
        self.messages.iovs[i].iov_len = len.min(MAX_OUTGOING);
        self.messages.headers[i].msg_hdr.msg_namelen = namelen;
        self.queued += 1;
    }
}

impl Batch {
    fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.queued {
            self.stats.send_calls += 1;
            // SAFETY: headers `sent..queued` point into `messages`' buffers
            // and addresses, filled by `send`, and the count matches.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd,
                    self.messages.headers[sent..].as_mut_ptr(),
                    (self.queued - sent) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram failed: drop it and go on with the rest.
                self.stats.send_errors += 1;
                sent += 1;
            } else {
                sent += n as usize;
            }
        }
        self.queued = 0;
    }
}

fn read_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let sin = unsafe { &*(ptr::from_ref(storage).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(ptr::from_ref(storage).cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn write_addr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in; every field is written.
            let sin = unsafe { &mut *(ptr::from_mut(storage).cast::<libc::sockaddr_in>()) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            sin.sin_zero = [0; 8];
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(ptr::from_mut(storage).cast::<libc::sockaddr_in6>()) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_survive_the_round_trip_through_sockaddr() {
        for addr in [
            "127.0.0.1:7998",
            "10.1.2.3:1",
            "[::1]:65535",
            "[fe80::1%3]:5000",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            // SAFETY: all zeros is a valid sockaddr_storage.
            let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let len = write_addr(&addr, &mut storage);
            assert_eq!(read_addr(&storage, len), Some(addr));
            assert_eq!(read_addr(&storage, 2), None, "too short for {addr}");
        }
    }
}

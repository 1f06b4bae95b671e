//! ICE over TCP: passive TCP candidates on the media port (RFC 6544), for
//! clients whose networks drop UDP but let TCP out.
//!
//! The media port is also a TCP listener, on the same address and port
//! number as the UDP sockets. Every address the media server advertises for
//! UDP is advertised again as a `tcp … typ host tcptype passive` candidate;
//! a browser that cannot get UDP through connects to it (its candidate is
//! `tcptype active`) and runs ICE, DTLS and SRTP over the connection, each
//! datagram framed with a two-byte length (RFC 4571).
//!
//! ```text
//!  TCP :media ──accept──▶ acceptor thread (salon-media-tcp)
//!                           waits for the first frame (bounded in time and size):
//!                           a STUN binding request whose USERNAME names a
//!                           peer's ufrag, exactly as a first UDP datagram
//!                           └──▶ hands the connection to that peer's worker
//!  worker ── reads frames ──▶ the peer's Rtc (Protocol::Tcp, the 4-tuple)
//!         ◀── Transmit { proto: Tcp } ── framed onto the same connection
//! ```
//!
//! After the hand-over the connection belongs to the worker of its peer,
//! which reads it in its own `epoll` loop like its UDP socket: no locks, and
//! no allocation per frame (each connection has one read buffer and one
//! write queue, both allocated once and bounded).
//!
//! What a client controls is bounded ([`TcpLimits`]): connections open at
//! once (beyond it new ones are closed at once), the time to the first
//! complete frame, the size of a frame, and the bytes queued for a client
//! that does not read. A connection that breaks a rule — silent past the
//! deadline, a first frame that is not STUN for a known peer, a frame
//! larger than the limit, a frame that is none of STUN, DTLS, RTP or RTCP
//! (RFC 7983), a write queue over its bound — is closed alone; the peer and
//! every other connection carry on.
//!
//! [`FrameReader`] is the framing, sans-IO and unit tested.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::demux::{Route, Routes};
use crate::{Command, MediaStats, stun};

/// What a TCP client may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// TCP connections to the media port open at once (waiting for their
    /// first frame or carrying media); more are closed as they arrive.
    pub max_connections: u64,
    /// A new connection must deliver its first complete frame within this.
    pub first_frame_timeout: Duration,
    /// The largest frame accepted. WebRTC stacks keep each datagram under
    /// the path MTU over TCP too (about 1200 bytes from browsers); anything
    /// near the 64 KiB the framing allows is not media.
    pub max_frame: usize,
    /// Bytes queued for a client whose connection does not take them;
    /// beyond it the connection is closed.
    pub write_queue: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            first_frame_timeout: Duration::from_secs(5),
            max_frame: 4096,
            write_queue: 512 * 1024,
        }
    }
}

/// Why a frame could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than the limit.
    Oversize(usize),
    /// A zero-length frame: no datagram is empty.
    Empty,
}

/// RFC 4571 framing over one connection's byte stream: a two-byte
/// big-endian length, then that many bytes, repeated. One buffer, allocated
/// once with room for two of the largest frames; frames are handed out as
/// slices of it.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_frame: usize,
}

impl FrameReader {
    pub fn new(max_frame: usize) -> Self {
        let max_frame = max_frame.clamp(1, usize::from(u16::MAX));
        Self {
            buf: vec![0; 2 * (2 + max_frame)],
            start: 0,
            end: 0,
            max_frame,
        }
    }

    /// Where the next bytes read from the connection go; never empty while
    /// the buffered bytes are less than one complete largest frame.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`FrameReader::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes buffered and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next complete frame's position, without taking it.
    fn peek_range(&self) -> Result<Option<Range<usize>>, FrameError> {
        if self.end - self.start < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([
            self.buf[self.start],
            self.buf[self.start + 1],
        ]));
        if len > self.max_frame {
            return Err(FrameError::Oversize(len));
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        let body = self.start + 2;
        if self.end - body < len {
            return Ok(None);
        }
        Ok(Some(body..body + len))
    }

    /// The next complete frame, left in place.
    pub fn peek(&self) -> Result<Option<&[u8]>, FrameError> {
        Ok(self.peek_range()?.map(|r| &self.buf[r]))
    }

    /// Take the next complete frame.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let Some(range) = self.peek_range()? else {
            return Ok(None);
        };
        self.start = range.end;
        Ok(Some(&self.buf[range]))
    }
}

/// Whether a frame after the first may be what ICE-TCP carries: STUN,
/// DTLS, RTP or RTCP, by its first byte (RFC 7983 §7).
pub fn is_media_frame(frame: &[u8]) -> bool {
    matches!(frame.first(), Some(0..=3 | 20..=63 | 128..=191))
}

/// Counts a connection while it exists (waiting or adopted).
pub(crate) struct Counted(Arc<MediaStats>);

impl Counted {
    fn new(stats: Arc<MediaStats>) -> Self {
        stats.tcp_connections.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.tcp_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection whose first frame routed it to a peer, on its way to the
/// peer's worker. Its first frame is still in `reader`.
pub(crate) struct Adopted {
    pub stream: mio::net::TcpStream,
    pub route: Route,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub reader: FrameReader,
    pub count: Counted,
}

/// Bind the TCP side of the media port on `addr` (whose port the UDP
/// sockets already hold).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // A restarted server takes its port back from connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

const LISTENER: mio::Token = mio::Token(0);
pub(crate) const ACCEPTOR_WAKER: mio::Token = mio::Token(1);
const FIRST_PENDING: usize = 2;

/// A connection waiting for its first frame.
struct Pending {
    stream: mio::net::TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    reader: FrameReader,
    deadline: Instant,
    count: Counted,
}

/// What a connection's first frame decided.
enum Verdict {
    Wait,
    Adopt(Route),
    Close,
}

/// The acceptor: accepts, waits for first frames, hands connections over.
pub(crate) struct Acceptor {
    pub listener: mio::net::TcpListener,
    pub poll: mio::Poll,
    pub limits: TcpLimits,
    pub routes: Arc<Routes>,
    pub commands: Vec<crossbeam_channel::Sender<Command>>,
    pub wakers: Arc<Vec<Arc<mio::Waker>>>,
    pub stats: Arc<MediaStats>,
    pub stop: Arc<AtomicBool>,
}

impl Acceptor {
    pub fn run(mut self) {
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut self.listener, LISTENER, mio::Interest::READABLE)
        {
            tracing::warn!(error = %e, "ICE-TCP listener could not be polled: TCP candidates will not connect");
            return;
        }
        let mut pending: Vec<Option<Pending>> = Vec::new();
        let mut events = mio::Events::with_capacity(64);
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = pending
                .iter()
                .flatten()
                .map(|p| p.deadline.saturating_duration_since(now))
                .min();
            if let Err(e) = self.poll.poll(&mut events, wait) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::warn!(error = %e, "ICE-TCP acceptor poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(&mut pending),
                    ACCEPTOR_WAKER => {}
                    mio::Token(token) => self.first_bytes(&mut pending, token - FIRST_PENDING),
                }
            }
            // Silent past the deadline: closed.
            let now = Instant::now();
            for slot in &mut pending {
                if slot.as_ref().is_some_and(|p| p.deadline <= now)
                    && let Some(mut p) = slot.take()
                {
                    let _ = self.poll.registry().deregister(&mut p.stream);
                    self.stats.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn accept(&mut self, pending: &mut Vec<Option<Pending>>) {
        loop {
            let (mut stream, remote) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors, or a connection reset before it was
                // accepted: try again at the next readiness.
                Err(_) => return,
            };
            if self.stats.tcp_connections.load(Ordering::Relaxed) >= self.limits.max_connections {
                self.stats.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                continue; // dropped: closed
            }
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let index = match pending.iter().position(Option::is_none) {
                Some(index) => index,
                None => {
                    pending.push(None);
                    pending.len() - 1
                }
            };
            let token = mio::Token(FIRST_PENDING + index);
            if self
                .poll
                .registry()
                .register(&mut stream, token, mio::Interest::READABLE)
                .is_err()
            {
                continue;
            }
            pending[index] = Some(Pending {
                stream,
                remote,
                local,
                reader: FrameReader::new(self.limits.max_frame),
                deadline: Instant::now() + self.limits.first_frame_timeout,
                count: Counted::new(self.stats.clone()),
            });
        }
    }

    fn first_bytes(&mut self, pending: &mut [Option<Pending>], index: usize) {
        let Some(p) = pending.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let verdict = loop {
            let verdict = match p.reader.peek() {
                Ok(Some(frame)) => {
                    match stun::recipient_ufrag(frame).and_then(|ufrag| self.routes.get(ufrag)) {
                        Some(route) => Verdict::Adopt(route),
                        None => Verdict::Close,
                    }
                }
                Ok(None) => Verdict::Wait,
                Err(_) => Verdict::Close,
            };
            if !matches!(verdict, Verdict::Wait) {
                break verdict;
            }
            let spare = p.reader.spare();
            match p.stream.read(spare) {
                Ok(0) => break Verdict::Close,
                Ok(n) => p.reader.filled(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Verdict::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Verdict::Close,
            }
        };
        match verdict {
            Verdict::Wait => {}
            Verdict::Close => {
                if let Some(mut p) = pending[index].take() {
                    let _ = self.poll.registry().deregister(&mut p.stream);
                    self.stats.tcp_rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Verdict::Adopt(route) => {
                let Some(mut p) = pending[index].take() else {
                    return;
                };
                let _ = self.poll.registry().deregister(&mut p.stream);
                let adopted = Adopted {
                    stream: p.stream,
                    route,
                    remote: p.remote,
                    local: p.local,
                    reader: p.reader,
                    count: p.count,
                };
                let (Some(commands), Some(waker)) = (
                    self.commands.get(route.worker),
                    self.wakers.get(route.worker),
                ) else {
                    return;
                };
                if commands.send(Command::AdoptTcp(Box::new(adopted))).is_ok() {
                    let _ = waker.wake();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&(f.len() as u16).to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    /// Feed `bytes` in chunks of `step`, collecting every frame.
    fn read_all(reader: &mut FrameReader, bytes: &[u8], step: usize) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for chunk in bytes.chunks(step) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let spare = reader.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                reader.filled(n);
                rest = &rest[n..];
                while let Some(frame) = reader.next_frame().unwrap() {
                    frames.push(frame.to_vec());
                }
            }
        }
        frames
    }

    #[test]
    fn frames_come_out_whole_however_the_stream_is_cut() {
        let big = vec![0x80; 4096];
        let frames: Vec<&[u8]> = vec![&[1, 2, 3], &big, &[0x16; 100], &[0x80; 1]];
        let bytes = framed(&frames);
        for step in [1, 2, 3, 7, 100, 4097, bytes.len()] {
            let mut reader = FrameReader::new(4096);
            let got = read_all(&mut reader, &bytes, step);
            assert_eq!(got.len(), frames.len(), "step {step}");
            for (g, f) in got.iter().zip(&frames) {
                assert_eq!(g.as_slice(), *f, "step {step}");
            }
            assert_eq!(reader.buffered(), 0);
        }
    }

    #[test]
    fn a_frame_over_the_limit_or_empty_is_refused() {
        let mut reader = FrameReader::new(1500);
        let bytes = framed(&[&[0x80; 1501]]);
        reader.spare()[..2].copy_from_slice(&bytes[..2]);
        reader.filled(2);
        assert_eq!(reader.next_frame(), Err(FrameError::Oversize(1501)));
        let mut reader = FrameReader::new(1500);
        reader.spare()[..2].copy_from_slice(&[0, 0]);
        reader.filled(2);
        assert_eq!(reader.peek(), Err(FrameError::Empty));
    }

    #[test]
    fn peek_leaves_the_frame_for_the_next_reader() {
        let mut reader = FrameReader::new(100);
        let bytes = framed(&[&[0, 1], &[0x80, 2]]);
        reader.spare()[..bytes.len()].copy_from_slice(&bytes);
        reader.filled(bytes.len());
        assert_eq!(reader.peek().unwrap(), Some(&[0, 1][..]));
        assert_eq!(reader.next_frame().unwrap(), Some(&[0, 1][..]));
        assert_eq!(reader.next_frame().unwrap(), Some(&[0x80, 2][..]));
        assert_eq!(reader.next_frame().unwrap(), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any frames, cut anywhere, come out whole and in order.
            #[test]
            fn framing_survives_any_cut(
                frames in proptest::collection::vec(
                    proptest::collection::vec(any::<u8>(), 1..300), 0..20),
                step in 1usize..700,
            ) {
                let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                let mut reader = FrameReader::new(300);
                let got = read_all(&mut reader, &framed(&refs), step);
                prop_assert_eq!(got, frames);
            }

            /// Arbitrary bytes never panic the reader: they make frames, wait
            /// for more, or are refused.
            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..5000),
                step in 1usize..700,
            ) {
                let mut reader = FrameReader::new(1500);
                'feed: for chunk in bytes.chunks(step) {
                    let mut rest = chunk;
                    while !rest.is_empty() {
                        let spare = reader.spare();
                        prop_assert!(!spare.is_empty());
                        let n = spare.len().min(rest.len());
                        spare[..n].copy_from_slice(&rest[..n]);
                        reader.filled(n);
                        rest = &rest[n..];
                        loop {
                            match reader.next_frame() {
                                Ok(Some(frame)) => prop_assert!(!frame.is_empty() && frame.len() <= 1500),
                                Ok(None) => break,
                                Err(_) => break 'feed,
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_stun_dtls_rtp_and_rtcp_frames_are_media() {
        assert!(is_media_frame(&[0x00, 0x01]), "STUN");
        assert!(is_media_frame(&[22]), "DTLS handshake");
        assert!(is_media_frame(&[0x80, 0x60]), "RTP");
        assert!(!is_media_frame(b"GET"), "HTTP");
        assert!(!is_media_frame(&[0xff]));
        assert!(!is_media_frame(&[]));
    }
}

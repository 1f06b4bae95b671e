//! How a media session's datagrams reach the server.
//!
//! - [`MediaTransport::Udp`] (the default): the session's UDP socket is its
//!   ICE host candidate and talks to the server's UDP candidates directly.
//! - [`MediaTransport::Tcp`]: ICE over TCP (RFC 6544). Once the answer names
//!   the server's passive TCP candidate, the session connects to it; the
//!   connection's local address becomes its only candidate (`tcptype
//!   active`), and every datagram is framed with its two-byte length (RFC
//!   4571).
//! - [`MediaTransport::Relay`]: through a TURN server over UDP (RFC 8656),
//!   as a browser with `iceTransportPolicy: 'relay'` would. The session
//!   allocates with the credentials `joined` handed out, its relayed address
//!   becomes its only candidate, and once the answer names the server's
//!   addresses it binds a channel to each; every datagram then travels as
//!   channel data to and from the TURN server. The session refreshes the
//!   allocation, its channels and their permissions while it lasts
//!   ([`salon_turn::client::Keeper`]), so a relayed session outlives the
//!   TURN server's lifetimes.
//!
//! Sending never blocks: a datagram that does not fit is dropped and
//! counted, as a full UDP socket buffer would drop it (over TCP, only whole
//! frames are dropped, so the framing stays intact).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use salon_turn::client::{Keeper, Transport, TurnClient};
use salon_turn::stun;
use str0m::net::Protocol;
use tokio::net::{TcpStream, UdpSocket};

use crate::error::ClientError;

/// Bytes of TCP frames kept for a server that is not reading, beyond which
/// frames are dropped.
const TCP_QUEUE: usize = 1 << 20;
/// The largest frame taken from the server.
const MAX_FRAME: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the media of a session travels (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MediaTransport {
    #[default]
    Udp,
    /// ICE over TCP to the server's passive candidate, no UDP at all.
    Tcp,
    /// Through the TURN server `joined` names, over UDP.
    Relay,
}

/// The transport-specific state of a session.
pub(crate) enum Path {
    Udp,
    Tcp(Box<TcpPath>),
    Relay(Box<RelayPath>),
}

impl Path {
    /// The protocol str0m is told for datagrams on this path.
    pub(crate) fn protocol(&self) -> Protocol {
        match self {
            Path::Tcp(_) => Protocol::Tcp,
            Path::Udp | Path::Relay(_) => Protocol::Udp,
        }
    }
}

pub(crate) struct TcpPath {
    /// The server's passive candidate, once the answer named it.
    pub target: Option<SocketAddr>,
    pub stream: Option<TcpStream>,
    /// Bytes read and not yet taken as frames: `inbuf[..filled]`.
    pub inbuf: Vec<u8>,
    pub filled: usize,
    /// Frames written and not yet taken by the kernel: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    pub closed: bool,
}

impl TcpPath {
    pub(crate) fn new() -> Self {
        Self {
            target: None,
            stream: None,
            inbuf: vec![0; 2 * (2 + MAX_FRAME)],
            filled: 0,
            out: Vec::new(),
            sent: 0,
            closed: false,
        }
    }

    /// Connect to the server's candidate: the local address of the
    /// connection.
    pub(crate) async fn connect(&mut self, target: SocketAddr) -> Result<SocketAddr, ClientError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
            .await
            .map_err(|_| {
                ClientError::media(format!(
                    "ICE-TCP: no connection to {target} within {CONNECT_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| ClientError::media(format!("ICE-TCP: cannot connect to {target}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let local = stream
            .local_addr()
            .map_err(|e| ClientError::media(format!("ICE-TCP connection has no address: {e}")))?;
        self.stream = Some(stream);
        Ok(local)
    }

    /// Frame `contents` and send what the kernel takes now; whether it was
    /// kept (sent or queued).
    pub(crate) fn send(&mut self, contents: &[u8]) -> bool {
        let Ok(len) = u16::try_from(contents.len()) else {
            return false;
        };
        if self.stream.is_none() || self.out.len() - self.sent + 2 + contents.len() > TCP_QUEUE {
            return false;
        }
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out.extend_from_slice(contents);
        self.flush();
        true
    }

    /// Write what is queued, as far as the kernel takes it.
    pub(crate) fn flush(&mut self) {
        let Some(stream) = &self.stream else {
            return;
        };
        while self.sent < self.out.len() {
            match stream.try_write(&self.out[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent > TCP_QUEUE / 2 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// The next complete frame in `inbuf` as a range, or `None`.
    pub(crate) fn next_frame(
        &self,
        from: usize,
    ) -> Result<Option<std::ops::Range<usize>>, ClientError> {
        if self.filled < from + 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.inbuf[from], self.inbuf[from + 1]]));
        if len == 0 || len > MAX_FRAME {
            return Err(ClientError::media(format!(
                "ICE-TCP: a frame of {len} bytes from the server"
            )));
        }
        if self.filled < from + 2 + len {
            return Ok(None);
        }
        Ok(Some(from + 2..from + 2 + len))
    }

    /// Drop the first `taken` bytes of `inbuf` (frames handled).
    pub(crate) fn consume(&mut self, taken: usize) {
        self.inbuf.copy_within(taken..self.filled, 0);
        self.filled -= taken;
    }
}

pub(crate) struct RelayPath {
    /// The TURN server.
    pub server: SocketAddr,
    /// The allocation's relayed address: the session's candidate.
    pub relayed: SocketAddr,
    /// Until the channels are bound: the TURN client holding the socket.
    pub turn: Option<TurnClient>,
    /// After: the socket itself,
    pub socket: Option<UdpSocket>,
    /// and what keeps the allocation and its channels alive.
    keeper: Option<Keeper>,
    /// Channel number → the server address it reaches.
    pub channels: Vec<(u16, SocketAddr)>,
    /// The channel-data frame being written.
    frame: Vec<u8>,
}

impl RelayPath {
    /// Allocate on `server` with the credentials `joined` handed out.
    pub(crate) async fn allocate(
        server: SocketAddr,
        username: &str,
        credential: &str,
    ) -> Result<Self, ClientError> {
        let fail = |e: salon_turn::client::Error| ClientError::media(format!("TURN {server}: {e}"));
        let mut turn = TurnClient::connect(server, Transport::Udp, username, credential)
            .await
            .map_err(fail)?;
        let relayed = turn.allocate().await.map_err(fail)?;
        Ok(Self {
            server,
            relayed,
            turn: Some(turn),
            socket: None,
            keeper: None,
            channels: Vec::new(),
            frame: Vec::with_capacity(1600),
        })
    }

    /// Bind a channel to each of the server's addresses, then take the
    /// socket. Cancel-safe (it runs inside [`MediaSession::step`]): a
    /// channel is recorded only once bound, and the TURN client is let go
    /// only when every channel is.
    ///
    /// [`MediaSession::step`]: crate::MediaSession::step
    pub(crate) async fn bind(&mut self, peers: &[SocketAddr]) -> Result<(), ClientError> {
        let Some(turn) = &mut self.turn else {
            return Ok(());
        };
        for (i, peer) in peers.iter().enumerate() {
            if self.channels.iter().any(|(_, p)| p == peer) {
                continue;
            }
            let channel = 0x4000 + i as u16;
            turn.channel_bind(channel, *peer)
                .await
                .map_err(|e| ClientError::media(format!("TURN channel to {peer}: {e}")))?;
            self.channels.push((channel, *peer));
        }
        if let Some((socket, keeper)) = self.turn.take().and_then(TurnClient::into_udp_parts) {
            self.socket = Some(socket);
            self.keeper = Some(keeper);
        }
        Ok(())
    }

    /// Send the refreshes that are due (the allocation at half its
    /// lifetime, the channels and their permissions every few minutes).
    pub(crate) fn keep_alive(&mut self, now: std::time::Instant) {
        let (Some(socket), Some(keeper)) = (&self.socket, &mut self.keeper) else {
            return;
        };
        while let Some(request) = keeper.poll_request(now) {
            // Unsent is unanswered: the keeper sends it again.
            let _ = socket.try_send_to(&request, self.server);
        }
    }

    /// A datagram from the TURN server that is not channel data: the
    /// answer to a refresh. A refusal loses the relayed path.
    pub(crate) fn on_turn_message(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        let Some(keeper) = &mut self.keeper else {
            return Ok(());
        };
        keeper
            .handle_response(frame)
            .map(drop)
            .map_err(|e| ClientError::media(format!("TURN {}: a refresh failed: {e}", self.server)))
    }

    /// Send `contents` to `peer` through its channel; whether the socket
    /// took it.
    pub(crate) fn send(&mut self, peer: SocketAddr, contents: &[u8]) -> bool {
        let (Some(socket), Some((channel, _))) =
            (&self.socket, self.channels.iter().find(|(_, p)| *p == peer))
        else {
            return false;
        };
        stun::write_channel_data(&mut self.frame, *channel, contents, false);
        socket.try_send_to(&self.frame, self.server).is_ok()
    }

    /// The server address behind `channel`.
    pub(crate) fn peer_of(&self, channel: u16) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, p)| *p)
    }
}

/// The server's candidates in an answer: (protocol, address), UDP ones and
/// passive TCP ones, in order.
pub(crate) fn answer_candidates(sdp: &str) -> Vec<(Protocol, SocketAddr)> {
    let mut out = Vec::new();
    for line in sdp.lines() {
        let Some(rest) = line.trim_end().strip_prefix("a=candidate:") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(proto), Some(ip), Some(port)) = (fields.get(2), fields.get(4), fields.get(5))
        else {
            continue;
        };
        let proto = match proto.to_ascii_lowercase().as_str() {
            "udp" => Protocol::Udp,
            "tcp" if fields.windows(2).any(|w| w == ["tcptype", "passive"]) => Protocol::Tcp,
            _ => continue,
        };
        let Ok(addr) = format!("{ip}:{port}")
            .parse::<SocketAddr>()
            .or_else(|_| format!("[{ip}]:{port}").parse::<SocketAddr>())
        else {
            continue;
        };
        if !out.contains(&(proto, addr)) {
            out.push((proto, addr));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_names_udp_and_passive_tcp_candidates() {
        let sdp = "v=0\r\n\
            a=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\n\
            a=candidate:2 1 tcp 1509949695 127.0.0.1 5000 typ host tcptype passive\r\n\
            a=candidate:3 1 tcp 1509949695 127.0.0.1 9 typ host tcptype active\r\n\
            a=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\n";
        assert_eq!(
            answer_candidates(sdp),
            [
                (Protocol::Udp, "127.0.0.1:5000".parse().unwrap()),
                (Protocol::Tcp, "127.0.0.1:5000".parse().unwrap()),
            ]
        );
    }
}

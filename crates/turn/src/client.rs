//! A small TURN client: allocate, permit, bind channels, relay. Used by
//! `salon turn check` (to allocate through the configured TURN like a
//! browser would), by Salon's Rust client (its relayed media path) and by
//! the tests; not by the server's packet path.
//!
//! [`TurnClient`] makes an allocation with request/response round trips on
//! a socket it owns. A caller that then relays through the socket itself
//! takes it with [`TurnClient::into_udp_parts`], and the [`Keeper`] beside
//! it: sans-IO, it says when the allocation needs a Refresh and the
//! channels a ChannelBind (which also renews their permissions), writes
//! those requests signed with the allocation's credentials, and reads their
//! responses out of what the caller receives.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use crate::stun::{self, Class, Message, Method, Writer, attr};

const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(5);
const UDP_RETRANSMIT: Duration = Duration::from_millis(500);
/// An allocation's lifetime when the server does not say (RFC 8656 §3.2).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// How often a [`Keeper`] binds its channels again: a binding lasts 10
/// minutes and the permission it installs 5 (RFC 8656 §9, §12), so well
/// within the shorter.
const CHANNEL_REFRESH: Duration = Duration::from_secs(240);
/// A keeper's request unanswered this long is sent again (UDP loses it).
const KEEPER_RETRANSMIT: Duration = Duration::from_secs(1);
/// Sends of one keeper request before it waits for its next turn.
const KEEPER_SENDS: u32 = 5;

/// How to reach the TURN server.
#[derive(Clone)]
pub enum Transport {
    Udp,
    Tcp,
    /// TURN over TLS, checking the server's certificate against `config`
    /// for `server_name`.
    Tls {
        config: Arc<rustls::ClientConfig>,
        server_name: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the server answered {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Protocol(&'static str),
}

/// Application data that came back through the relay.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Channel(u16, Vec<u8>),
    Data(SocketAddr, Vec<u8>),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Link {
    Udp(UdpSocket),
    Stream(Box<dyn Stream>),
}

pub struct TurnClient {
    link: Link,
    credentials: Credentials,
    buf: Vec<u8>,
    /// Relayed data that arrived while waiting for a response.
    early: Vec<Received>,
    /// The allocation's lifetime, as the server granted it.
    lifetime: Duration,
    /// Channels bound so far, which a [`Keeper`] goes on refreshing.
    channels: Vec<(u16, SocketAddr)>,
}

impl TurnClient {
    pub async fn connect(
        server: SocketAddr,
        transport: Transport,
        username: &str,
        password: &str,
    ) -> Result<Self, Error> {
        let link = match transport {
            Transport::Udp => {
                let bind: SocketAddr = if server.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                }
                .parse()
                .map_err(|_| Error::Protocol("bind address"))?;
                let socket = UdpSocket::bind(bind).await?;
                socket.connect(server).await?;
                Link::Udp(socket)
            }
            Transport::Tcp => Link::Stream(Box::new(connect_tcp(server).await?)),
            Transport::Tls {
                config,
                server_name,
            } => {
                let tcp = connect_tcp(server).await?;
                let name = rustls::pki_types::ServerName::try_from(server_name)
                    .map_err(|_| Error::Protocol("not a valid TLS server name"))?;
                let tls = tokio::time::timeout(
                    TRANSACTION_TIMEOUT,
                    TlsConnector::from(config).connect(name, tcp),
                )
                .await
                .map_err(|_| Error::Timeout(TRANSACTION_TIMEOUT))??;
                Link::Stream(Box::new(tls))
            }
        };
        Ok(TurnClient {
            link,
            credentials: Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
                realm: String::new(),
                nonce: String::new(),
                key: None,
            },
            buf: Vec::with_capacity(1500),
            early: Vec::new(),
            lifetime: DEFAULT_LIFETIME,
            channels: Vec::new(),
        })
    }

    /// Allocate a relayed address (answering the server's 401 challenge).
    pub async fn allocate(&mut self) -> Result<SocketAddr, Error> {
        let response = self
            .transact(Method::Allocate, |w| {
                w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            })
            .await?;
        let m = Message::parse(&response).map_err(|_| Error::Protocol("unreadable response"))?;
        if let Some(seconds) = m.u32_attr(attr::LIFETIME) {
            self.lifetime = Duration::from_secs(seconds.into());
        }
        m.xor_address(attr::XOR_RELAYED_ADDRESS)
            .ok_or(Error::Protocol("no XOR-RELAYED-ADDRESS"))
    }

    pub async fn create_permission(&mut self, peer: SocketAddr) -> Result<(), Error> {
        self.transact(Method::CreatePermission, |w| {
            w.xor_address(attr::XOR_PEER_ADDRESS, peer);
        })
        .await
        .map(drop)
    }

    pub async fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), Error> {
        self.transact(Method::ChannelBind, |w| {
            w.u32(attr::CHANNEL_NUMBER, u32::from(channel) << 16)
                .xor_address(attr::XOR_PEER_ADDRESS, peer);
        })
        .await?;
        if !self.channels.iter().any(|(c, _)| *c == channel) {
            self.channels.push((channel, peer));
        }
        Ok(())
    }

    /// Refresh the allocation; a lifetime of 0 ends it.
    pub async fn refresh(&mut self, lifetime: u32) -> Result<(), Error> {
        self.transact(Method::Refresh, |w| {
            w.u32(attr::LIFETIME, lifetime);
        })
        .await
        .map(drop)
    }

    /// The UDP socket to the server, for a caller that relays through its
    /// allocation itself (channel data on a socket it polls), once the
    /// allocation and its channels are made, and the [`Keeper`] that keeps
    /// them alive. `None` over TCP or TLS.
    pub fn into_udp_parts(self) -> Option<(UdpSocket, Keeper)> {
        let Link::Udp(socket) = self.link else {
            return None;
        };
        let now = std::time::Instant::now();
        let keeper = Keeper {
            credentials: self.credentials,
            lifetime: self.lifetime,
            channels: self.channels,
            channel_refresh: CHANNEL_REFRESH,
            next_refresh: now + self.lifetime / 2,
            next_channels: now + CHANNEL_REFRESH,
            pending: Vec::new(),
        };
        Some((socket, keeper))
    }

    pub async fn send_channel(&mut self, channel: u16, data: &[u8]) -> Result<(), Error> {
        let mut frame = Vec::with_capacity(data.len() + 8);
        stun::write_channel_data(
            &mut frame,
            channel,
            data,
            matches!(self.link, Link::Stream(_)),
        );
        self.write(&frame).await
    }

    pub async fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Result<(), Error> {
        let mut frame = Vec::with_capacity(data.len() + 40);
        let mut w = Writer::new(&mut frame, Method::Send, Class::Indication, rand::random());
        w.xor_address(attr::XOR_PEER_ADDRESS, peer)
            .attr(attr::DATA, data);
        w.finish(None);
        self.write(&frame).await
    }

    /// The next relayed data, waiting at most `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, Error> {
        if !self.early.is_empty() {
            return Ok(self.early.remove(0));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.read())
                .await
                .map_err(|_| Error::Timeout(timeout))??;
            if let Some(data) = relayed(&frame) {
                return Ok(data);
            }
        }
    }

    async fn transact(
        &mut self,
        method: Method,
        attrs: impl Fn(&mut Writer<'_>),
    ) -> Result<Vec<u8>, Error> {
        // At most two rounds: the first may be challenged (401) or find
        // its nonce stale (438).
        for _ in 0..3 {
            let tid: [u8; 12] = rand::random();
            let mut request = Vec::with_capacity(200);
            let mut w = Writer::new(&mut request, method, Class::Request, tid);
            attrs(&mut w);
            self.credentials.sign(w);
            let response = self.exchange(&request, tid).await?;
            let m =
                Message::parse(&response).map_err(|_| Error::Protocol("unreadable response"))?;
            if m.class == Class::Success {
                return Ok(response);
            }
            let retry = match m.error_code() {
                Some(401) => self.credentials.key.is_none(),
                Some(438) => true,
                _ => false,
            };
            if retry && m.text(attr::REALM).is_some() && self.credentials.learn(&m) {
                continue;
            }
            return Err(refusal(&m));
        }
        Err(Error::Protocol("the server kept challenging"))
    }

    /// Send a request and wait for the response with its transaction ID
    /// (retransmitting over UDP), keeping relayed data that arrives between.
    async fn exchange(&mut self, request: &[u8], tid: [u8; 12]) -> Result<Vec<u8>, Error> {
        let deadline = tokio::time::Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            self.write(request).await?;
            let wait = match self.link {
                Link::Udp(_) => (tokio::time::Instant::now() + UDP_RETRANSMIT).min(deadline),
                Link::Stream(_) => deadline,
            };
            loop {
                match tokio::time::timeout_at(wait, self.read()).await {
                    Err(_) if wait >= deadline => return Err(Error::Timeout(TRANSACTION_TIMEOUT)),
                    Err(_) => break,
                    Ok(frame) => {
                        let frame = frame?;
                        if let Some(data) = relayed(&frame) {
                            self.early.push(data);
                        } else if Message::parse(&frame).is_ok_and(|m| m.transaction == tid) {
                            return Ok(frame);
                        }
                    }
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match &mut self.link {
            Link::Udp(socket) => socket.send(bytes).await.map(drop)?,
            Link::Stream(stream) => stream.write_all(bytes).await?,
        }
        Ok(())
    }

    async fn read(&mut self) -> Result<Vec<u8>, Error> {
        match &mut self.link {
            Link::Udp(socket) => {
                self.buf.resize(65536, 0);
                let n = socket.recv(&mut self.buf).await?;
                Ok(self.buf[..n].to_vec())
            }
            Link::Stream(stream) => {
                let mut head = [0u8; 4];
                stream.read_exact(&mut head).await?;
                let mut frame = vec![0u8; stun::frame_len(head)];
                frame[..4].copy_from_slice(&head);
                stream.read_exact(&mut frame[4..]).await?;
                Ok(frame)
            }
        }
    }
}

/// Keeps an allocation, its permissions and its channels alive for a
/// caller that owns the socket (see the module docs). Drive it with
/// [`Keeper::poll_request`] now and then (every second is plenty) and hand
/// it every STUN message the TURN server sends ([`Keeper::handle_response`]).
pub struct Keeper {
    credentials: Credentials,
    lifetime: Duration,
    channels: Vec<(u16, SocketAddr)>,
    channel_refresh: Duration,
    next_refresh: std::time::Instant,
    next_channels: std::time::Instant,
    /// Requests in flight: what they renew, their transaction, when last
    /// sent and how many times.
    pending: Vec<Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    Allocation,
    Channel(u16, SocketAddr),
}

struct Pending {
    what: Renewal,
    tid: [u8; 12],
    sent: std::time::Instant,
    sends: u32,
}

impl Keeper {
    /// Bind the channels again every `every` instead of every four minutes
    /// (for tests).
    pub fn with_channel_refresh(mut self, every: Duration) -> Self {
        self.next_channels = self.next_channels - self.channel_refresh + every;
        self.channel_refresh = every;
        self
    }

    /// The allocation's lifetime, as the server last granted it.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The next request to send to the TURN server, if one is due at `now`:
    /// a Refresh at half the allocation's lifetime, a ChannelBind for each
    /// channel every few minutes, or one of those again when unanswered.
    pub fn poll_request(&mut self, now: std::time::Instant) -> Option<Vec<u8>> {
        if now >= self.next_refresh {
            self.next_refresh = now + self.lifetime / 2;
            self.start(Renewal::Allocation, now);
        }
        if now >= self.next_channels {
            self.next_channels = now + self.channel_refresh;
            for (channel, peer) in self.channels.clone() {
                self.start(Renewal::Channel(channel, peer), now);
            }
        }
        // Give up on a request sent often enough; its next turn comes.
        self.pending.retain(|p| p.sends < KEEPER_SENDS);
        let p = self
            .pending
            .iter_mut()
            .find(|p| p.sends == 0 || now >= p.sent + KEEPER_RETRANSMIT)?;
        p.sent = now;
        p.sends += 1;
        let (what, tid) = (p.what, p.tid);
        Some(self.request(what, tid))
    }

    /// Read a STUN message from the TURN server: the response to one of
    /// this keeper's requests is taken (`Ok(true)`; a stale nonce is
    /// learnt and the request sent again), anything else is not
    /// (`Ok(false)`). A refusal is an error: the allocation, or the
    /// channel, is lost.
    pub fn handle_response(&mut self, frame: &[u8]) -> Result<bool, Error> {
        let Ok(m) = Message::parse(frame) else {
            return Ok(false);
        };
        let Some(at) = self.pending.iter().position(|p| p.tid == m.transaction) else {
            return Ok(false);
        };
        let what = self.pending[at].what;
        if m.class == Class::Success {
            self.pending.swap_remove(at);
            if what == Renewal::Allocation
                && let Some(seconds) = m.u32_attr(attr::LIFETIME)
            {
                self.lifetime = Duration::from_secs(seconds.into());
            }
            return Ok(true);
        }
        if m.error_code() == Some(438) && self.credentials.learn(&m) {
            let p = &mut self.pending[at];
            p.tid = rand::random();
            p.sends = 0;
            return Ok(true);
        }
        self.pending.swap_remove(at);
        Err(refusal(&m))
    }

    fn start(&mut self, what: Renewal, now: std::time::Instant) {
        if self.pending.iter().any(|p| p.what == what) {
            return;
        }
        self.pending.push(Pending {
            what,
            tid: rand::random(),
            sent: now,
            sends: 0,
        });
    }

    fn request(&self, what: Renewal, tid: [u8; 12]) -> Vec<u8> {
        let mut request = Vec::with_capacity(200);
        let method = match what {
            Renewal::Allocation => Method::Refresh,
            Renewal::Channel(..) => Method::ChannelBind,
        };
        let mut w = Writer::new(&mut request, method, Class::Request, tid);
        match what {
            Renewal::Allocation => {
                w.u32(attr::LIFETIME, self.lifetime.as_secs() as u32);
            }
            Renewal::Channel(channel, peer) => {
                w.u32(attr::CHANNEL_NUMBER, u32::from(channel) << 16)
                    .xor_address(attr::XOR_PEER_ADDRESS, peer);
            }
        }
        self.credentials.sign(w);
        request
    }
}

/// The long-term credentials of an allocation (RFC 8489 §9.2): what the
/// server's challenge taught (realm, nonce) and the key they make.
struct Credentials {
    username: String,
    password: String,
    realm: String,
    nonce: String,
    /// None until the server's first challenge.
    key: Option<[u8; 16]>,
}

impl Credentials {
    /// Finish a request: signed once a challenge gave realm and nonce.
    fn sign(&self, mut w: Writer<'_>) {
        match self.key {
            Some(key) => {
                w.attr(attr::USERNAME, self.username.as_bytes())
                    .attr(attr::REALM, self.realm.as_bytes())
                    .attr(attr::NONCE, self.nonce.as_bytes());
                w.finish(Some(&key));
            }
            None => w.finish(None),
        }
    }

    /// Take the realm and nonce of a 401 or 438 answer; false when it has
    /// no nonce to take.
    fn learn(&mut self, m: &Message<'_>) -> bool {
        let Some(nonce) = m.text(attr::NONCE) else {
            return false;
        };
        self.nonce = nonce.to_owned();
        if let Some(realm) = m.text(attr::REALM) {
            self.realm = realm.to_owned();
        }
        self.key = Some(stun::long_term_key(
            &self.username,
            &self.realm,
            &self.password,
        ));
        true
    }
}

/// An error answer as [`Error::Refused`], with its code and reason.
fn refusal(m: &Message<'_>) -> Error {
    let reason = m
        .get(attr::ERROR_CODE)
        .and_then(|v| std::str::from_utf8(v.get(4..)?).ok())
        .unwrap_or_default()
        .to_owned();
    Error::Refused {
        code: m.error_code().unwrap_or(0),
        reason,
    }
}

async fn connect_tcp(server: SocketAddr) -> Result<TcpStream, Error> {
    let tcp = tokio::time::timeout(TRANSACTION_TIMEOUT, TcpStream::connect(server))
        .await
        .map_err(|_| Error::Timeout(TRANSACTION_TIMEOUT))??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

fn relayed(frame: &[u8]) -> Option<Received> {
    if let Some((channel, data)) = stun::parse_channel_data(frame) {
        return Some(Received::Channel(channel, data.to_vec()));
    }
    let m = Message::parse(frame).ok()?;
    if m.class == Class::Indication && m.method == Method::Data {
        return Some(Received::Data(
            m.xor_address(attr::XOR_PEER_ADDRESS)?,
            m.get(attr::DATA)?.to_vec(),
        ));
    }
    None
}

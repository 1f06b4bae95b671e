//! A small TURN client: allocate, permit, bind channels, relay. Used by
//! `salon turn check` (to allocate through the configured TURN like a
//! browser would) and by the tests; not by the packet path.

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
    username: String,
    password: String,
    realm: String,
    nonce: String,
    key: Option<[u8; 16]>,
    buf: Vec<u8>,
    /// Relayed data that arrived while waiting for a response.
    early: Vec<Received>,
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
            username: username.to_owned(),
            password: password.to_owned(),
            realm: String::new(),
            nonce: String::new(),
            key: None,
            buf: Vec::with_capacity(1500),
            early: Vec::new(),
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
        .await
        .map(drop)
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
    /// allocation and its channels are made. `None` over TCP or TLS. The
    /// allocation lives on until its lifetime runs out (nothing refreshes it).
    pub fn into_udp_socket(self) -> Option<UdpSocket> {
        match self.link {
            Link::Udp(socket) => Some(socket),
            Link::Stream(_) => None,
        }
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
            if let Some(key) = self.key {
                w.attr(attr::USERNAME, self.username.as_bytes())
                    .attr(attr::REALM, self.realm.as_bytes())
                    .attr(attr::NONCE, self.nonce.as_bytes());
                w.finish(Some(&key));
            } else {
                w.finish(None);
            }
            let response = self.exchange(&request, tid).await?;
            let m =
                Message::parse(&response).map_err(|_| Error::Protocol("unreadable response"))?;
            if m.class == Class::Success {
                return Ok(response);
            }
            let code = m.error_code().unwrap_or(0);
            let retry = match code {
                401 if self.key.is_none() => true,
                438 => true,
                _ => false,
            };
            if retry && let (Some(realm), Some(nonce)) = (m.text(attr::REALM), m.text(attr::NONCE))
            {
                self.realm = realm.to_owned();
                self.nonce = nonce.to_owned();
                self.key = Some(stun::long_term_key(
                    &self.username,
                    &self.realm,
                    &self.password,
                ));
                continue;
            }
            let reason = m
                .get(attr::ERROR_CODE)
                .and_then(|v| std::str::from_utf8(v.get(4..)?).ok())
                .unwrap_or_default()
                .to_owned();
            return Err(Error::Refused { code, reason });
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

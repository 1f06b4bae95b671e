//! `salon turn check`: ask the running server for its ICE servers (through
//! Twilio's Network Traversal Service route, authenticated as the account)
//! and allocate through each TURN URL the way a browser would: a working
//! answer means the port is reachable from here, the credentials hold and
//! the relay has an address. Then relay, as a browser's ICE checks do: a
//! STUN Binding request goes through the relay to Salon's media port, and
//! the media port's answer (which names the relayed address as the sender)
//! comes back through it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use salon_turn::client::{Transport, TurnClient};
use salon_turn::rustls;
use salon_turn::rustls::pki_types::CertificateDer;
use salon_turn::rustls::pki_types::pem::PemObject;
use serde_json::Value;

use crate::bootstrap;
use crate::cli::RestTarget;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum TurnCommand {
    /// Allocate through every TURN URL the running server hands out (UDP, TCP, TLS), as a browser would
    ///
    /// Exits 0 when every one works, 1 otherwise.
    Check {
        /// Trust this certificate (PEM) for turns: URLs, e.g. a self-signed one [default: the system's roots]
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Relay to this media address [default: the relayed address's IP and the configured --media-port]
        #[arg(long, value_name = "IP:PORT")]
        media: Option<SocketAddr>,
        #[command(flatten)]
        target: RestTarget,
    },
}

pub async fn run(settings: &Settings, command: TurnCommand) -> Result<ExitCode> {
    let TurnCommand::Check { ca, media, target } = command;
    let media_port = settings.media_bind.port();
    let store = bootstrap::open_store(settings).await?;
    let (account, _) = bootstrap::ensure_account(&store, settings).await?;
    store.close().await;
    let base = target
        .url
        .clone()
        .unwrap_or_else(|| settings.public_url.clone());
    let base = base.trim_end_matches('/');
    let url = format!("{base}/2010-04-01/Accounts/{}/Tokens.json", account.sid);
    let response = reqwest::Client::new()
        .post(&url)
        .basic_auth(account.sid.to_string(), Some(&account.auth_token))
        .form(&[("Ttl", "300")])
        .send()
        .await
        .with_context(|| {
            format!(
                "cannot reach Salon at {base}: is `salon serve` running? (--url sets where to look)"
            )
        })?;
    let status = response.status();
    let token: Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        bail!("{url} answered {status}: {token}");
    }
    if target.json {
        println!("{token:#}");
    }
    let username = token["username"].as_str().unwrap_or_default();
    let password = token["password"].as_str().unwrap_or_default();
    let urls: Vec<&str> = token["ice_servers"]
        .as_array()
        .map(|servers| servers.iter().filter_map(|s| s["urls"].as_str()).collect())
        .unwrap_or_default();
    let turn: Vec<&str> = urls
        .iter()
        .copied()
        .filter(|u| u.starts_with("turn"))
        .collect();
    if turn.is_empty() {
        println!("FAIL the server hands out no TURN server (is --turn false, with no --turn-url?)");
        return Ok(ExitCode::FAILURE);
    }
    let mut failed = 0;
    for url in turn {
        match check(url, username, password, ca.as_deref(), media, media_port).await {
            Ok((relayed, Some(media))) => {
                println!("ok   {url}  relayed address {relayed}, reaches the media port {media}");
            }
            Ok((relayed, None)) => println!(
                "ok   {url}  relayed address {relayed} (not relayed: the media port is not known here; --media IP:PORT)"
            ),
            Err(e) => {
                failed += 1;
                println!("FAIL {url}  {e:#}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Allocate through one URL, relay a Binding request to the media port
/// and its answer back, then release the allocation. The relayed address,
/// and the media address reached.
async fn check(
    url: &str,
    username: &str,
    password: &str,
    ca: Option<&Path>,
    media: Option<SocketAddr>,
    media_port: u16,
) -> Result<(SocketAddr, Option<SocketAddr>)> {
    let (scheme, rest) = url.split_once(':').context("not a URL")?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let tcp = query.contains("transport=tcp");
    let default_port = if scheme == "turns" { 5349 } else { 3478 };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once("]:") {
            Some((host, port)) => (host, port.parse::<u16>().context("port")?),
            None => (v6.trim_end_matches(']'), default_port),
        },
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().context("port")?),
            None => (hostport, default_port),
        },
    };
    let addr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let transport = match (scheme, tcp) {
        ("turns", _) => Transport::Tls {
            config: tls_client(ca)?,
            server_name: host.to_owned(),
        },
        (_, true) => Transport::Tcp,
        _ => Transport::Udp,
    };
    let mut client = TurnClient::connect(addr, transport, username, password).await?;
    let relayed = client.allocate().await?;
    // The relay and the media port share the host's address (unless told
    // otherwise); a media port of 0 was picked at random by the server.
    let media =
        media.or_else(|| (media_port != 0).then(|| SocketAddr::new(relayed.ip(), media_port)));
    if let Some(media) = media {
        relay_to_media(&mut client, relayed, media)
            .await
            .with_context(|| {
                format!("relayed address {relayed}, relaying to the media port {media}")
            })?;
    }
    client.refresh(0).await?;
    Ok((relayed, media))
}

/// A Binding request through the relay to `media`; its answer must come
/// back through the relay, naming `relayed` as the sender.
async fn relay_to_media(
    client: &mut TurnClient,
    relayed: SocketAddr,
    media: SocketAddr,
) -> Result<()> {
    use salon_turn::client::Received;
    use salon_turn::stun::{Class, Message, Method, Writer, attr};
    client
        .create_permission(media)
        .await
        .context("the TURN server refused a permission for it (is it Salon's media address?)")?;
    let transaction: [u8; 12] = rand::random();
    let mut request = Vec::new();
    Writer::new(&mut request, Method::Binding, Class::Request, transaction).finish(None);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut sent = 0;
    while tokio::time::Instant::now() < deadline {
        // UDP may lose a datagram: ask up to three times.
        if sent < 3 {
            client.send_indication(media, &request).await?;
            sent += 1;
        }
        match client.recv(std::time::Duration::from_secs(1)).await {
            Ok(Received::Data(from, data)) if from == media && from_media(&data, &transaction) => {
                let answer = Message::parse(&data).ok();
                let mapped = answer.and_then(|m| m.xor_address(attr::XOR_MAPPED_ADDRESS));
                if mapped != Some(relayed) {
                    bail!("the media port saw the request come from {mapped:?}, not the relay");
                }
                return Ok(());
            }
            Ok(_) | Err(salon_turn::client::Error::Timeout(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    bail!(
        "no answer came back through the relay within 3 s (is the media port reachable from the TURN server's host?)"
    )
}

/// Whether `data` is the Binding success answering `transaction`.
fn from_media(data: &[u8], transaction: &[u8; 12]) -> bool {
    use salon_turn::stun::{Class, Message, Method};
    Message::parse(data).is_ok_and(|m| {
        m.method == Method::Binding && m.class == Class::Success && &m.transaction == transaction
    })
}

fn tls_client(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let config = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("cannot read {}", ca.display()))?
            {
                roots
                    .add(cert.with_context(|| format!("cannot read {}", ca.display()))?)
                    .context("not a usable certificate")?;
            }
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier()
                .context("the system's certificate roots")?
        }
    };
    Ok(Arc::new(config))
}

//! Connectivity: the ICE servers Salon hands to clients (in each `joined`
//! and through Twilio's Network Traversal Service route), and the built-in
//! TURN server (`salon-turn`) it starts beside the media port.
//!
//! Credentials are minted fresh per request in the TURN REST API scheme
//! (`salon_turn::credentials`), so the built-in server and an external
//! coturn with `use-auth-secret` and the same secret accept them alike.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use salon_signal::IceServer;
use salon_turn::{Network, Quotas, credentials, rustls};

use crate::AppState;
use crate::rest::error::ApiError;
use crate::rest::params::Params;

/// What the operator chose.
#[derive(Debug, Clone, Default)]
pub struct ConnectivityConfig {
    /// The secret TURN credentials are minted with (shared with coturn in
    /// external mode). Empty: no TURN credentials are handed out.
    pub secret: Vec<u8>,
    /// How long handed-out credentials allocate.
    pub credential_ttl: Duration,
    /// ICE server URLs of an external TURN server (coturn), handed out
    /// instead of the built-in one's.
    pub external_urls: Vec<String>,
    /// The built-in TURN server, if on.
    pub turn: Option<BuiltInTurn>,
}

/// The built-in TURN server's listeners.
#[derive(Debug, Clone)]
pub struct BuiltInTurn {
    /// The host clients are told for `turn:` and `stun:` URLs (an IP, or a
    /// name that resolves to one).
    pub host: String,
    /// The host for `turns:` URLs: the name on the certificate.
    pub tls_host: String,
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// Relayed addresses are given to clients with this IP (behind NAT).
    pub public_ip: Option<IpAddr>,
    /// Networks allocations may reach besides Salon's media addresses.
    pub allow_peers: Vec<Network>,
    pub quotas: Quotas,
}

/// The ICE servers handed out, resolved once the TURN server is bound.
#[derive(Clone, Default)]
pub struct IceServers {
    stun: Vec<String>,
    turn: Vec<String>,
    secret: Vec<u8>,
    ttl: Duration,
}

impl IceServers {
    /// `urls` split into STUN (no credentials) and TURN ones.
    pub fn new(urls: Vec<String>, secret: Vec<u8>, ttl: Duration) -> Self {
        let (stun, turn) = urls.into_iter().partition(|u| u.starts_with("stun"));
        IceServers {
            stun,
            turn,
            secret,
            ttl,
        }
    }

    /// Every URL handed out, STUN first.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.stun.iter().chain(&self.turn).map(String::as_str)
    }

    /// Fresh credentials for `identity`, valid `ttl` (at most the
    /// configured one).
    pub fn credential(&self, identity: &str, ttl: Option<Duration>) -> credentials::Credential {
        let ttl = ttl.unwrap_or(self.ttl);
        credentials::mint(&self.secret, identity, unix_now(), ttl.as_secs())
    }

    /// The servers for a `joined` message.
    pub fn for_identity(&self, identity: &str) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn.is_empty() && !self.secret.is_empty() {
            let c = self.credential(identity, None);
            servers.push(IceServer {
                urls: self.turn.clone(),
                username: Some(c.username),
                credential: Some(c.password),
            });
        }
        servers
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Start the built-in TURN server, relaying only to `media` (and the
/// operator's networks); returns it (dropping it stops it) and the ICE
/// servers to hand out.
pub async fn start(
    config: &ConnectivityConfig,
    relay_ip: IpAddr,
    media: Vec<SocketAddr>,
) -> std::io::Result<(Option<salon_turn::TurnServer>, IceServers)> {
    let Some(turn) = &config.turn else {
        let ice = IceServers::new(
            config.external_urls.clone(),
            config.secret.clone(),
            config.credential_ttl,
        );
        return Ok((None, ice));
    };
    // A wildcard bind relays from every interface; clients are told the
    // first media address (or the public IP).
    let advertised = turn
        .public_ip
        .or_else(|| media.iter().map(|m| m.ip()).find(|ip| !ip.is_unspecified()))
        .filter(|_| relay_ip.is_unspecified());
    let server = salon_turn::start(salon_turn::TurnConfig {
        udp: turn.udp,
        tcp: turn.tcp,
        tls: turn.tls.clone(),
        relay_ip,
        relay_public_ip: turn.public_ip.or(advertised),
        rules: salon_turn::Rules {
            realm: "salon".into(),
            secret: config.secret.clone(),
            nonce_key: rand::random(),
            policy: salon_turn::PeerPolicy {
                media,
                allowed: turn.allow_peers.clone(),
            },
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
        },
        quotas: turn.quotas,
    })
    .await?;
    let host = url_host(&turn.host);
    let mut urls = Vec::new();
    if let Some(udp) = server.udp {
        urls.push(format!("stun:{host}:{}", udp.port()));
        urls.push(format!("turn:{host}:{}?transport=udp", udp.port()));
    }
    if let Some(tcp) = server.tcp {
        urls.push(format!("turn:{host}:{}?transport=tcp", tcp.port()));
    }
    if let Some(tls) = server.tls {
        urls.push(format!(
            "turns:{}:{}?transport=tcp",
            url_host(&turn.tls_host),
            tls.port()
        ));
    }
    tracing::info!(
        udp = ?server.udp,
        tcp = ?server.tcp,
        tls = ?server.tls,
        "TURN server started"
    );
    let ice = IceServers::new(urls, config.secret.clone(), config.credential_ttl);
    Ok((Some(server), ice))
}

/// An IPv6 address goes in brackets in a URL.
fn url_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.to_owned(),
    }
}

/// The longest `Ttl` Twilio's Network Traversal Service accepts.
const MAX_NTS_TTL: u64 = 86_400;

/// `POST /2010-04-01/Accounts/{AccountSid}/Tokens.json`: Twilio's Network
/// Traversal Service, answered with Salon's ICE servers and fresh
/// credentials, in Twilio's shape (one entry per URL, `url` and `urls`,
/// `ttl` as a string, RFC 2822 dates).
pub async fn nts_token(
    State(state): State<AppState>,
    crate::rest::PathParams(account): crate::rest::PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    if account != state.account.to_string() {
        return Err(ApiError::not_found(&format!(
            "/2010-04-01/Accounts/{}/Tokens.json",
            crate::rest::params::excerpt(&account)
        )));
    }
    params.only(&["Ttl"])?;
    let ttl = params.number("Ttl", 20001)?.unwrap_or(MAX_NTS_TTL);
    if ttl == 0 || ttl > MAX_NTS_TTL {
        return Err(ApiError::invalid_parameter(
            "Ttl",
            format!("{ttl} is not from 1 to {MAX_NTS_TTL} seconds"),
        ));
    }
    let ice = &state.ice;
    let c = ice.credential(&account, Some(Duration::from_secs(ttl)));
    let servers: Vec<serde_json::Value> = ice
        .urls()
        .map(|url| {
            if url.starts_with("stun") {
                serde_json::json!({ "url": url, "urls": url })
            } else {
                serde_json::json!({
                    "url": url,
                    "urls": url,
                    "username": c.username,
                    "credential": c.password,
                })
            }
        })
        .collect();
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let body = serde_json::json!({
        "account_sid": account,
        "date_created": date,
        "date_updated": date,
        "ice_servers": servers,
        "password": c.password,
        "ttl": ttl.to_string(),
        "username": c.username,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_get_credentials_and_stun_urls_none() {
        let ice = IceServers::new(
            vec![
                "stun:192.0.2.1:3478".into(),
                "turn:192.0.2.1:3478?transport=udp".into(),
                "turns:turn.example.com:5349?transport=tcp".into(),
            ],
            b"secret".to_vec(),
            Duration::from_secs(3600),
        );
        let servers = ice.for_identity("alice");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:192.0.2.1:3478"]);
        assert!(servers[0].username.is_none());
        let username = servers[1].username.as_deref().unwrap();
        assert!(username.ends_with(":alice"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some(credentials::password(b"secret", username).as_str())
        );
        assert!(IceServers::default().for_identity("alice").is_empty());
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(url_host("2001:db8::1"), "[2001:db8::1]");
        assert_eq!(url_host("192.0.2.1"), "192.0.2.1");
        assert_eq!(url_host("turn.example.com"), "turn.example.com");
    }
}

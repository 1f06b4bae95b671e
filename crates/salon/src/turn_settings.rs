//! The connectivity settings (the built-in TURN server, or an external one):
//! flags and `SALON_TURN_*` variables, and the `[turn]` table of
//! `salon.toml`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use salon_server::connectivity::{BuiltInTurn, ConnectivityConfig};
use salon_turn::rustls::pki_types::pem::PemObject;
use salon_turn::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use salon_turn::{Network, Quotas, rustls};
use serde::Deserialize;

pub const DEFAULT_TURN_PORT: u16 = 3478;
pub const DEFAULT_TURN_TLS_PORT: u16 = 5349;
/// Twilio's Network Traversal Service hands out credentials for 24 h.
pub const DEFAULT_TURN_TTL: u64 = 86_400;

#[derive(Debug, Clone, Default, Args)]
pub struct TurnFlags {
    /// Run the built-in TURN server (UDP and TCP on --turn-port, TLS on --turn-tls-port with a certificate) [default: true, false with --turn-url]
    #[arg(long, env = "SALON_TURN", global = true, value_name = "BOOL")]
    pub turn: Option<bool>,

    /// Port of the built-in TURN server, UDP and TCP, on the --listen address's IP [default: 3478]
    #[arg(long, env = "SALON_TURN_PORT", global = true, value_name = "PORT")]
    pub turn_port: Option<u16>,

    /// Port for TURN over TLS (443 gets through most firewalls) [default: 5349, when a certificate is given]
    #[arg(long, env = "SALON_TURN_TLS_PORT", global = true, value_name = "PORT")]
    pub turn_tls_port: Option<u16>,

    /// Certificate chain (PEM) for TURN over TLS; with --turn-tls-key
    #[arg(long, env = "SALON_TURN_TLS_CERT", global = true, value_name = "FILE")]
    pub turn_tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --turn-tls-cert
    #[arg(long, env = "SALON_TURN_TLS_KEY", global = true, value_name = "FILE")]
    pub turn_tls_key: Option<PathBuf>,

    /// Host name on the TLS certificate, for the turns: URL handed to clients [default: the public URL's host]
    #[arg(long, env = "SALON_TURN_TLS_HOST", global = true, value_name = "HOST")]
    pub turn_tls_host: Option<String>,

    /// Secret TURN credentials are derived from (coturn's static-auth-secret in external mode) [default: random at each start]
    #[arg(
        long,
        env = "SALON_TURN_SECRET",
        global = true,
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub turn_secret: Option<String>,

    /// An external TURN/STUN server's URL to hand out instead of the built-in one, e.g. turn:turn.example.com:3478?transport=udp (repeat or comma-separate; needs --turn-secret)
    #[arg(
        long,
        env = "SALON_TURN_URLS",
        global = true,
        value_name = "URL",
        value_delimiter = ','
    )]
    pub turn_url: Vec<String>,

    /// A network the built-in TURN server may relay to besides Salon's media port, e.g. 203.0.113.0/24 (private, loopback and link-local addresses never) (repeat or comma-separate)
    #[arg(
        long,
        env = "SALON_TURN_ALLOW_PEERS",
        global = true,
        value_name = "NET",
        value_delimiter = ','
    )]
    pub turn_allow_peer: Vec<String>,

    /// Seconds the TURN credentials handed out with each join stay valid [default: 86400]
    #[arg(long, env = "SALON_TURN_TTL", global = true, value_name = "SECS")]
    pub turn_ttl: Option<u64>,

    /// Allocations at once per TURN credential [default: 10]
    #[arg(
        long,
        env = "SALON_TURN_MAX_PER_CREDENTIAL",
        global = true,
        value_name = "N"
    )]
    pub turn_max_per_credential: Option<u32>,

    /// Allocations at once per client IP [default: 64]
    #[arg(
        long,
        env = "SALON_TURN_MAX_PER_SOURCE",
        global = true,
        value_name = "N"
    )]
    pub turn_max_per_source: Option<u32>,

    /// Allocations at once in all [default: 4096]
    #[arg(
        long,
        env = "SALON_TURN_MAX_ALLOCATIONS",
        global = true,
        value_name = "N"
    )]
    pub turn_max_allocations: Option<u32>,

    /// Answers a second to a client IP with no allocation, bursts of twice that; 0: no limit [default: 50]
    #[arg(
        long,
        env = "SALON_TURN_REQUESTS_PER_SOURCE",
        global = true,
        value_name = "N"
    )]
    pub turn_requests_per_source: Option<u32>,
}

/// `[turn]` in `salon.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnFile {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub tls_port: Option<u16>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_host: Option<String>,
    pub secret: Option<String>,
    pub urls: Option<Vec<String>>,
    pub allow_peers: Option<Vec<String>>,
    pub ttl: Option<u64>,
    pub max_per_credential: Option<u32>,
    pub max_per_source: Option<u32>,
    pub max_allocations: Option<u32>,
    pub requests_per_source: Option<u32>,
}

/// The connectivity settings, resolved.
#[derive(Clone, Default)]
pub struct TurnSettings {
    pub enabled: bool,
    pub port: u16,
    pub tls: Option<(u16, PathBuf, PathBuf)>,
    pub tls_host: Option<String>,
    pub secret: Option<String>,
    pub urls: Vec<String>,
    pub allow_peers: Vec<Network>,
    pub ttl: Duration,
    pub quotas: Quotas,
}

impl TurnSettings {
    pub fn resolve(flags: &TurnFlags, file: Option<TurnFile>) -> Result<Self> {
        let file = file.unwrap_or_default();
        let urls = if flags.turn_url.is_empty() {
            file.urls.unwrap_or_default()
        } else {
            flags.turn_url.clone()
        };
        for url in &urls {
            if !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                bail!("TURN URL {url:?} must start with stun:, stuns:, turn: or turns:");
            }
        }
        let secret = flags
            .turn_secret
            .clone()
            .or(file.secret)
            .filter(|s| !s.is_empty());
        if !urls.is_empty() && secret.is_none() {
            bail!(
                "an external TURN server (turn urls) needs the secret it shares with Salon: set SALON_TURN_SECRET"
            );
        }
        let enabled = flags.turn.or(file.enabled).unwrap_or(urls.is_empty());
        let cert = flags.turn_tls_cert.clone().or(file.tls_cert);
        let key = flags.turn_tls_key.clone().or(file.tls_key);
        let tls_port = flags
            .turn_tls_port
            .or(file.tls_port)
            .unwrap_or(DEFAULT_TURN_TLS_PORT);
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((tls_port, cert, key)),
            (None, None) => None,
            _ => bail!(
                "TURN over TLS needs both a certificate (SALON_TURN_TLS_CERT) and its key (SALON_TURN_TLS_KEY)"
            ),
        };
        let allow_peers = if flags.turn_allow_peer.is_empty() {
            file.allow_peers.unwrap_or_default()
        } else {
            flags.turn_allow_peer.clone()
        };
        let allow_peers = allow_peers
            .iter()
            .map(|n| n.parse::<Network>().map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()
            .context("turn allow_peers")?;
        let ttl = flags.turn_ttl.or(file.ttl).unwrap_or(DEFAULT_TURN_TTL);
        if ttl == 0 || ttl > 7 * 86_400 {
            bail!("turn ttl must be from 1 to 604800 seconds");
        }
        let defaults = Quotas::default();
        let quotas = Quotas {
            per_credential: flags
                .turn_max_per_credential
                .or(file.max_per_credential)
                .unwrap_or(defaults.per_credential),
            per_source: flags
                .turn_max_per_source
                .or(file.max_per_source)
                .unwrap_or(defaults.per_source),
            total: flags
                .turn_max_allocations
                .or(file.max_allocations)
                .unwrap_or(defaults.total),
            requests_per_source: flags
                .turn_requests_per_source
                .or(file.requests_per_source)
                .unwrap_or(defaults.requests_per_source),
            ..defaults
        };
        Ok(TurnSettings {
            enabled,
            port: flags.turn_port.or(file.port).unwrap_or(DEFAULT_TURN_PORT),
            tls,
            tls_host: flags.turn_tls_host.clone().or(file.tls_host),
            secret,
            urls,
            allow_peers,
            ttl: Duration::from_secs(ttl),
            quotas,
        })
    }

    /// What the server is given: `listen_ip` is where the TURN server
    /// binds, `media_ips` the public addresses (the first is told to
    /// clients), `public_host` the public URL's host.
    pub fn connectivity(
        &self,
        listen_ip: IpAddr,
        media_ips: &[IpAddr],
        public_host: &str,
    ) -> Result<ConnectivityConfig> {
        let secret = match &self.secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let turn = if self.enabled {
            let tls = match &self.tls {
                Some((port, cert, key)) => {
                    Some((SocketAddr::new(listen_ip, *port), tls_config(cert, key)?))
                }
                None => None,
            };
            let host = match media_ips.first() {
                Some(ip) => ip.to_string(),
                None if !listen_ip.is_unspecified() => listen_ip.to_string(),
                None => public_host.to_owned(),
            };
            Some(BuiltInTurn {
                tls_host: self
                    .tls_host
                    .clone()
                    .unwrap_or_else(|| public_host.to_owned()),
                host,
                udp: Some(SocketAddr::new(listen_ip, self.port)),
                tcp: Some(SocketAddr::new(listen_ip, self.port)),
                tls,
                public_ip: media_ips.first().copied(),
                allow_peers: self.allow_peers.clone(),
                quotas: self.quotas,
            })
        } else {
            None
        };
        Ok(ConnectivityConfig {
            secret,
            credential_ttl: self.ttl,
            external_urls: self.urls.clone(),
            turn,
        })
    }
}

/// A rustls server configuration from PEM files.
pub fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the TURN certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the TURN key {}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TURN certificate and key do not go together")?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_is_on_by_default_and_off_for_an_external_server() {
        let s = TurnSettings::resolve(&TurnFlags::default(), None).unwrap();
        assert!(s.enabled);
        assert_eq!(s.port, 3478);
        assert!(s.tls.is_none());

        let external = TurnFlags {
            turn_url: vec!["turn:turn.example.com:3478?transport=udp".into()],
            ..TurnFlags::default()
        };
        assert!(TurnSettings::resolve(&external, None).is_err(), "no secret");
        let s = TurnSettings::resolve(
            &TurnFlags {
                turn_secret: Some("shared".into()),
                ..external
            },
            None,
        )
        .unwrap();
        assert!(!s.enabled);
        let c = s
            .connectivity("127.0.0.1".parse().unwrap(), &[], "localhost")
            .unwrap();
        assert_eq!(c.secret, b"shared");
        assert!(c.turn.is_none());
    }

    #[test]
    fn bad_turn_settings_are_refused_clearly() {
        let file: TurnFile =
            toml::from_str("enabled = true\nport = 3479\nallow_peers = [\"10.0.0.0/99\"]").unwrap();
        assert!(TurnSettings::resolve(&TurnFlags::default(), Some(file)).is_err());
        let half_tls = TurnFlags {
            turn_tls_cert: Some("cert.pem".into()),
            ..TurnFlags::default()
        };
        assert!(TurnSettings::resolve(&half_tls, None).is_err());
        let bad_url = TurnFlags {
            turn_url: vec!["http://x".into()],
            turn_secret: Some("s".into()),
            ..TurnFlags::default()
        };
        assert!(TurnSettings::resolve(&bad_url, None).is_err());
        assert!(toml::from_str::<TurnFile>("prot = 1").is_err());
    }
}

//! Settings: every one has a flag, an environment variable and a key in
//! `salon.toml`. Precedence, highest first: flag, `SALON_*` variable,
//! `TWILIO_*` variable (credentials only, so a Twilio app's env file works),
//! configuration file, built-in default.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use salon_room::{CallbackMethod, StatusCallback};
use salon_sid::{AccountSid, ApiKeySid};
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "./salon-data";
pub const DEFAULT_CONFIG: &str = "salon.toml";
pub const DEFAULT_MEDIA_PORT: u16 = 7882;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where each subscriber's downlink estimate comes from
/// ([`salon_media::Estimation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BandwidthEstimation {
    /// The server estimates from the client's TWCC feedback, probes, and paces.
    Twcc,
    /// The client's own estimate (REMB); no pacing, layers climb by trial steps (experimental).
    Remb,
}

impl From<BandwidthEstimation> for salon_media::Estimation {
    fn from(e: BandwidthEstimation) -> Self {
        match e {
            BandwidthEstimation::Twcc => Self::SendSide,
            BandwidthEstimation::Remb => Self::Receiver,
        }
    }
}

/// Settings given on the command line or in `SALON_*` variables.
#[derive(Debug, Clone, Default, Args)]
pub struct Flags {
    /// Configuration file [default: ./salon.toml, if it exists]
    #[arg(long, env = "SALON_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address for HTTP (REST API, signaling, demo app) [default: 127.0.0.1:3000]
    #[arg(long, env = "SALON_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Base URL for absolute URLs in REST responses [default: from --listen, e.g. http://localhost:3000]
    #[arg(long, env = "SALON_PUBLIC_URL", global = true, value_name = "URL")]
    pub public_url: Option<String>,

    /// Directory for the database [default: ./salon-data]
    #[arg(long, env = "SALON_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Directory for recording files [default: <data-dir>/recordings]
    #[arg(long, env = "SALON_RECORDINGS_DIR", global = true, value_name = "DIR")]
    pub recordings_dir: Option<PathBuf>,
    /// Shared database for several nodes, `postgres://user:password@host:port/database` (or a `sqlite:` URL) [default: salon.db in the data directory]
    #[arg(long, env = "SALON_DATABASE_URL", global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// This server's name among the nodes sharing a database (letters, digits, `.`, `_`, `-`; unique per node) [default: local]
    #[arg(long, env = "SALON_NODE_ID", global = true, value_name = "NAME")]
    pub node_id: Option<String>,

    /// Redis for several nodes, `redis://[:password@]host:port[/db]`: the node registers itself there with a lease [default: none, one node]
    #[arg(long, env = "SALON_REDIS_URL", global = true, value_name = "URL")]
    pub redis_url: Option<String>,

    /// With --redis-url, how long SIGTERM lets this node's rooms go on (no new rooms are placed here meanwhile) before it ends them and exits, in seconds [default: 300]
    #[arg(long, env = "SALON_DRAIN_TIMEOUT", global = true, value_name = "SECS")]
    pub drain_timeout: Option<u64>,

    /// Serve the tutorial routes (/create-token, /auth/token, /rooms…), which mint tokens for anyone [default: true only when listening on loopback]
    #[arg(long, env = "SALON_APP_ROUTES", global = true, value_name = "BOOL")]
    pub app_routes: Option<bool>,

    /// Another origin whose web pages may call the tutorial routes from a browser, besides the public URL's (repeat or comma-separate; `*` for any page at all)
    #[arg(
        long,
        env = "SALON_CORS_ORIGINS",
        global = true,
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origin: Vec<String>,

    /// Create a room when someone connects to a name with no room in progress [default: true]
    #[arg(long, env = "SALON_AD_HOC_ROOMS", global = true, value_name = "BOOL")]
    pub ad_hoc_rooms: Option<bool>,

    /// UDP port for all media (WebRTC), on the --listen address's IP [default: 7882]
    #[arg(long, env = "SALON_MEDIA_PORT", global = true, value_name = "PORT")]
    pub media_port: Option<u16>,

    /// Public IP to advertise to clients for media, besides the bound address (repeat or comma-separate for several)
    #[arg(
        long,
        env = "SALON_MEDIA_IP",
        global = true,
        value_name = "IP",
        value_delimiter = ','
    )]
    pub media_ip: Vec<IpAddr>,

    /// Media worker threads; rooms are spread over them [default: one per CPU core]
    #[arg(long, env = "SALON_MEDIA_WORKERS", global = true, value_name = "N")]
    pub media_workers: Option<usize>,

    /// Accept ICE over TCP on the media port number (passive TCP candidates, RFC 6544), for clients whose network drops UDP [default: true]
    #[arg(long, env = "SALON_ICE_TCP", global = true, value_name = "BOOL")]
    pub ice_tcp: Option<bool>,

    /// Where the bandwidth allocation gets each subscriber's downlink estimate: twcc (the server's send-side estimate: probes with padding, paces every forwarded packet) or remb (the client's own, experimental: a third less CPU per packet, but layers climb by trying them, which a constrained subscriber sees as short bursts of congestion) [default: twcc]
    #[arg(
        long,
        env = "SALON_BANDWIDTH_ESTIMATION",
        global = true,
        value_name = "FROM"
    )]
    pub bandwidth_estimation: Option<BandwidthEstimation>,

    /// Most HTTP and WebSocket connections open at once [default: what the open-file limit leaves room for, at most 10000]
    #[arg(long, env = "SALON_MAX_CONNECTIONS", global = true, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Failed REST authentications allowed per client address per minute before it gets 429 (0: no limit) [default: 30]
    #[arg(
        long,
        env = "SALON_AUTH_FAILURES_PER_MINUTE",
        global = true,
        value_name = "N"
    )]
    pub auth_failures_per_minute: Option<u32>,

    /// Signaling messages a session may send per second, in bursts of ten seconds' worth; more are refused with 20429 (0: no limit) [default: 50]
    #[arg(
        long,
        env = "SALON_SIGNALING_MESSAGES_PER_SECOND",
        global = true,
        value_name = "N"
    )]
    pub signaling_messages_per_second: Option<u32>,

    /// Seconds a participant whose signaling socket or media is gone (a network change, a sleeping laptop) keeps its place while its client resumes and restarts ICE; the others see it reconnecting; after it, it is disconnected (53001 or 53405) [default: 30]
    #[arg(
        long,
        env = "SALON_SESSION_TIMEOUT",
        global = true,
        value_name = "SECONDS"
    )]
    pub session_timeout: Option<u64>,

    /// Most participants a `group` room may admit [default: 50]
    #[arg(long, env = "SALON_MAX_PARTICIPANTS", global = true, value_name = "N")]
    pub max_participants: Option<u32>,

    /// Status callback URL of rooms created ad hoc, by connecting to a name (REST-created rooms use their StatusCallback) [default: none]
    #[arg(long, env = "SALON_STATUS_CALLBACK", global = true, value_name = "URL")]
    pub status_callback: Option<String>,

    /// HTTP method of --status-callback: GET or POST [default: POST]
    #[arg(
        long,
        env = "SALON_STATUS_CALLBACK_METHOD",
        global = true,
        value_name = "METHOD"
    )]
    pub status_callback_method: Option<String>,

    /// Allow status callbacks to loopback, private and link-local addresses (cloud metadata included) [default: false]
    #[arg(
        long,
        env = "SALON_CALLBACK_PRIVATE_NETWORK",
        global = true,
        value_name = "BOOL"
    )]
    pub callback_private_network: Option<bool>,

    /// Longest one status callback request may take, in seconds [default: 15]
    #[arg(
        long,
        env = "SALON_CALLBACK_TIMEOUT",
        global = true,
        value_name = "SECS"
    )]
    pub callback_timeout: Option<u64>,

    /// Attempts at a status callback before it is dropped [default: 12]
    #[arg(
        long,
        env = "SALON_CALLBACK_MAX_ATTEMPTS",
        global = true,
        value_name = "N"
    )]
    pub callback_max_attempts: Option<u32>,

    /// Age in seconds after which an undelivered status callback is dropped [default: 86400]
    #[arg(
        long,
        env = "SALON_CALLBACK_MAX_AGE",
        global = true,
        value_name = "SECS"
    )]
    pub callback_max_age: Option<u64>,

    /// Account SID (AC…) [also read from TWILIO_ACCOUNT_SID]
    #[arg(long, env = "SALON_ACCOUNT_SID", global = true, value_name = "SID")]
    pub account_sid: Option<String>,

    /// Account auth token, for REST calls as AccountSid:AuthToken [also read from TWILIO_AUTH_TOKEN]
    #[arg(
        long,
        env = "SALON_AUTH_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub auth_token: Option<String>,

    /// API key SID (SK…) that signs tokens and authenticates REST calls [also read from TWILIO_API_KEY]
    #[arg(long, env = "SALON_API_KEY", global = true, value_name = "SID")]
    pub api_key: Option<String>,

    /// Secret of --api-key [also read from TWILIO_API_SECRET]
    #[arg(
        long,
        env = "SALON_API_SECRET",
        global = true,
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub api_secret: Option<String>,

    /// Log filter, e.g. `info` or `salon_server=debug` [default: info; RUST_LOG also works]
    #[arg(long, env = "SALON_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,

    /// Log format [default: text]
    #[arg(long, env = "SALON_LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(flatten)]
    pub turn: crate::turn_settings::TurnFlags,
}

/// The same settings in `salon.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub recordings_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub node_id: Option<String>,
    pub redis_url: Option<String>,
    pub drain_timeout: Option<u64>,
    pub app_routes: Option<bool>,
    pub cors_origins: Option<Vec<String>>,
    pub ad_hoc_rooms: Option<bool>,
    pub max_participants: Option<u32>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<String>,
    pub callback_private_network: Option<bool>,
    pub callback_timeout: Option<u64>,
    pub callback_max_attempts: Option<u32>,
    pub callback_max_age: Option<u64>,
    pub max_connections: Option<usize>,
    pub auth_failures_per_minute: Option<u32>,
    pub signaling_messages_per_second: Option<u32>,
    pub session_timeout: Option<u64>,
    pub media_port: Option<u16>,
    pub media_ip: Option<Vec<IpAddr>>,
    pub media_workers: Option<usize>,
    pub ice_tcp: Option<bool>,
    pub bandwidth_estimation: Option<BandwidthEstimation>,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    /// `[turn]`: the built-in TURN server, or an external one.
    pub turn: Option<crate::turn_settings::TurnFile>,
}

/// Credentials the operator configured (any may be absent).
#[derive(Clone, Default)]
pub struct Configured {
    pub account_sid: Option<AccountSid>,
    pub auth_token: Option<String>,
    pub api_key: Option<ApiKeySid>,
    pub api_secret: Option<String>,
}

/// How status callbacks are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackSettings {
    pub private_network: bool,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub max_age: Duration,
}

/// Every setting, resolved.
#[derive(Clone)]
pub struct Settings {
    pub config_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    /// Where recording files go.
    pub recordings_dir: PathBuf,
    /// The database, when not SQLite in the data directory.
    pub database_url: Option<String>,
    /// This server's name among nodes sharing the database.
    pub node_id: String,
    /// The cluster's Redis, when this node is one of several.
    pub redis_url: Option<String>,
    /// How long a draining node (SIGTERM, in a cluster) waits for its rooms.
    pub drain_timeout: Duration,
    pub app_routes: bool,
    /// Whether `app_routes` was chosen by default (for the startup log).
    pub app_routes_defaulted: bool,
    /// Origins besides the public URL's allowed to call the tutorial routes.
    pub cors_origins: Vec<String>,
    pub ad_hoc_rooms: bool,
    pub max_participants: u32,
    /// Where rooms created ad hoc send their status callbacks.
    pub status_callback: Option<StatusCallback>,
    pub callbacks: CallbackSettings,
    /// `None`: what the open-file limit allows (known once it is raised).
    pub max_connections: Option<usize>,
    pub auth_failures_per_minute: u32,
    pub signaling_messages_per_second: u32,
    /// How long a participant whose signaling or media is gone keeps its place.
    pub session_timeout: std::time::Duration,
    /// UDP address for media.
    pub media_bind: SocketAddr,
    pub media_ips: Vec<IpAddr>,
    pub media_workers: usize,
    /// Passive ICE-TCP candidates on the media port.
    pub ice_tcp: bool,
    pub bandwidth_estimation: BandwidthEstimation,
    pub credentials: Configured,
    pub log: String,
    pub log_format: LogFormat,
    pub turn: crate::turn_settings::TurnSettings,
}

impl Settings {
    /// Resolve `flags` against the environment's `TWILIO_*` variables, the
    /// configuration file and the defaults.
    pub fn resolve(flags: &Flags) -> Result<Self> {
        let (file, config_file) = load_file(flags.config.as_deref())?;
        let twilio = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());

        let listen = match flags.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let public_url = match flags.public_url.clone().or(file.public_url) {
            Some(url) => check_public_url(&url)?,
            None => derived_public_url(listen),
        };
        let explicit_app_routes = flags.app_routes.or(file.app_routes);
        let max_participants = flags
            .max_participants
            .or(file.max_participants)
            .unwrap_or(50);
        if max_participants == 0 {
            bail!("max_participants must be at least 1");
        }
        let status_callback = flags
            .status_callback
            .clone()
            .or(file.status_callback)
            .filter(|url| !url.is_empty())
            .map(|url| check_callback_url(&url))
            .transpose()?;
        let method = flags
            .status_callback_method
            .clone()
            .or(file.status_callback_method);
        let method = match method.as_deref() {
            None => CallbackMethod::Post,
            Some(m) if m.eq_ignore_ascii_case("POST") => CallbackMethod::Post,
            Some(m) if m.eq_ignore_ascii_case("GET") => CallbackMethod::Get,
            Some(m) => bail!("status_callback_method must be GET or POST, not {m:?}"),
        };
        let status_callback = status_callback.map(|url| StatusCallback { url, method });
        let callbacks = CallbackSettings {
            private_network: flags
                .callback_private_network
                .or(file.callback_private_network)
                .unwrap_or(false),
            timeout: Duration::from_secs(
                flags
                    .callback_timeout
                    .or(file.callback_timeout)
                    .unwrap_or(15),
            ),
            max_attempts: flags
                .callback_max_attempts
                .or(file.callback_max_attempts)
                .unwrap_or(12),
            max_age: Duration::from_secs(
                flags
                    .callback_max_age
                    .or(file.callback_max_age)
                    .unwrap_or(86_400),
            ),
        };
        if callbacks.timeout.is_zero() || callbacks.timeout > Duration::from_secs(600) {
            bail!("callback_timeout must be from 1 to 600 seconds");
        }
        if callbacks.max_attempts == 0 {
            bail!("callback_max_attempts must be at least 1");
        }
        if callbacks.max_age.is_zero() {
            bail!("callback_max_age must be at least 1 second");
        }
        let cors_origins = if flags.cors_origin.is_empty() {
            file.cors_origins.unwrap_or_default()
        } else {
            flags.cors_origin.clone()
        };
        for origin in &cors_origins {
            check_origin(origin)?;
        }
        let max_connections = flags.max_connections.or(file.max_connections);
        if max_connections == Some(0) {
            bail!("max_connections must be at least 1");
        }
        let media_port = flags
            .media_port
            .or(file.media_port)
            .unwrap_or(DEFAULT_MEDIA_PORT);
        let media_ips = if flags.media_ip.is_empty() {
            file.media_ip.unwrap_or_default()
        } else {
            flags.media_ip.clone()
        };
        let session_timeout = flags.session_timeout.or(file.session_timeout).unwrap_or(30);
        if !(2..=3600).contains(&session_timeout) {
            bail!("session_timeout must be from 2 to 3600 seconds, not {session_timeout}");
        }
        let session_timeout = std::time::Duration::from_secs(session_timeout);
        let media_workers = flags
            .media_workers
            .or(file.media_workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if media_workers == 0 {
            bail!("media_workers must be at least 1");
        }

        let account_sid = flags
            .account_sid
            .clone()
            .or_else(|| twilio("TWILIO_ACCOUNT_SID"))
            .or(file.account_sid);
        let api_key = flags
            .api_key
            .clone()
            .or_else(|| twilio("TWILIO_API_KEY"))
            .or(file.api_key);
        let credentials = Configured {
            account_sid: account_sid
                .map(|s| s.trim().parse())
                .transpose()
                .context("SALON_ACCOUNT_SID / TWILIO_ACCOUNT_SID / account_sid")?,
            auth_token: flags
                .auth_token
                .clone()
                .or_else(|| twilio("TWILIO_AUTH_TOKEN"))
                .or(file.auth_token),
            api_key: api_key
                .map(|s| s.trim().parse())
                .transpose()
                .context("SALON_API_KEY / TWILIO_API_KEY / api_key")?,
            api_secret: flags
                .api_secret
                .clone()
                .or_else(|| twilio("TWILIO_API_SECRET"))
                .or(file.api_secret),
        };
        if credentials.api_key.is_some() != credentials.api_secret.is_some() {
            bail!(
                "an API key needs both its SID (SALON_API_KEY) and its secret (SALON_API_SECRET)"
            );
        }
        if credentials.api_key.is_some() && credentials.account_sid.is_none() {
            bail!("an API key needs the account it belongs to: set SALON_ACCOUNT_SID as well");
        }
        if credentials.auth_token.is_some() && credentials.account_sid.is_none() {
            bail!("an auth token needs its account: set SALON_ACCOUNT_SID as well");
        }

        let data_dir: PathBuf = flags
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let node_id = flags
            .node_id
            .clone()
            .or(file.node_id)
            .unwrap_or_else(|| salon_store::DEFAULT_NODE.to_owned());
        if node_id.is_empty()
            || node_id.len() > 64
            || !node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            bail!(
                "SALON_NODE_ID / node_id: {node_id:?} is not a node name: 1 to 64 letters, digits, '.', '_' or '-'"
            );
        }

        let drain_timeout =
            Duration::from_secs(flags.drain_timeout.or(file.drain_timeout).unwrap_or(300));
        if drain_timeout > Duration::from_secs(86_400) {
            bail!("drain_timeout must be at most 86400 seconds");
        }

        Ok(Self {
            config_file,
            listen,
            public_url,
            recordings_dir: flags
                .recordings_dir
                .clone()
                .or(file.recordings_dir)
                .unwrap_or_else(|| data_dir.join("recordings")),
            data_dir,
            database_url: flags.database_url.clone().or(file.database_url),
            node_id,
            redis_url: flags.redis_url.clone().or(file.redis_url),
            drain_timeout,
            app_routes: explicit_app_routes.unwrap_or_else(|| listen.ip().is_loopback()),
            app_routes_defaulted: explicit_app_routes.is_none(),
            cors_origins,
            ad_hoc_rooms: flags.ad_hoc_rooms.or(file.ad_hoc_rooms).unwrap_or(true),
            max_participants,
            status_callback,
            callbacks,
            max_connections,
            auth_failures_per_minute: flags
                .auth_failures_per_minute
                .or(file.auth_failures_per_minute)
                .unwrap_or(30),
            signaling_messages_per_second: flags
                .signaling_messages_per_second
                .or(file.signaling_messages_per_second)
                .unwrap_or(50),
            session_timeout,
            media_bind: SocketAddr::new(listen.ip(), media_port),
            turn: crate::turn_settings::TurnSettings::resolve(&flags.turn, file.turn)?,
            media_ips,
            media_workers,
            ice_tcp: flags.ice_tcp.or(file.ice_tcp).unwrap_or(true),
            bandwidth_estimation: flags
                .bandwidth_estimation
                .or(file.bandwidth_estimation)
                .unwrap_or(BandwidthEstimation::Twcc),
            credentials,
            log: flags
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            log_format: flags
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
        })
    }
}

fn load_file(explicit: Option<&Path>) -> Result<(FileSettings, Option<PathBuf>)> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok((FileSettings::default(), None)),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    let file = toml::from_str(&text)
        .with_context(|| format!("invalid configuration file {}", path.display()))?;
    Ok((file, Some(path)))
}

/// An absolute http(s) URL, as `StatusCallback` must be.
fn check_callback_url(url: &str) -> Result<String> {
    let parsed =
        url::Url::parse(url).with_context(|| format!("status callback {url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("status callback {url:?} must be an absolute http(s) URL");
    }
    Ok(parsed.into())
}

fn check_public_url(url: &str) -> Result<String> {
    let parsed =
        url::Url::parse(url).with_context(|| format!("public URL {url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("public URL {url:?} must be an absolute http(s) URL");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// An origin as browsers send it (`https://app.example.com`,
/// `http://localhost:5173`), or `*`.
fn check_origin(origin: &str) -> Result<()> {
    if origin == "*" {
        return Ok(());
    }
    let parsed =
        url::Url::parse(origin).with_context(|| format!("CORS origin {origin:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.path() != "/"
        || parsed.query().is_some()
        || !parsed.username().is_empty()
    {
        bail!("CORS origin {origin:?} must be scheme://host[:port], like https://app.example.com");
    }
    Ok(())
}

/// `http://localhost:PORT` for loopback and wildcard addresses, otherwise
/// the address itself.
pub fn derived_public_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_loopback() || ip.is_unspecified() => "localhost".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}", listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_follows_the_listen_address() {
        assert_eq!(
            derived_public_url("127.0.0.1:3000".parse().unwrap()),
            "http://localhost:3000"
        );
        assert_eq!(
            derived_public_url("0.0.0.0:80".parse().unwrap()),
            "http://localhost:80"
        );
        assert_eq!(
            derived_public_url("10.1.2.3:3000".parse().unwrap()),
            "http://10.1.2.3:3000"
        );
        assert_eq!(
            derived_public_url("[2001:db8::1]:3000".parse().unwrap()),
            "http://[2001:db8::1]:3000"
        );
    }

    #[test]
    fn public_urls_must_be_absolute_http() {
        assert_eq!(
            check_public_url("https://video.example.com/").unwrap(),
            "https://video.example.com"
        );
        assert!(check_public_url("video.example.com").is_err());
        assert!(check_public_url("ftp://x").is_err());
    }

    #[test]
    fn status_callbacks_must_be_absolute_http() {
        assert_eq!(
            check_callback_url("https://app.example.com/rooms?x=1").unwrap(),
            "https://app.example.com/rooms?x=1"
        );
        assert!(check_callback_url("/rooms").is_err());
        assert!(check_callback_url("ftp://app.example.com/rooms").is_err());
    }

    #[test]
    fn the_default_status_callback_takes_get_or_post() {
        let flags = |method: &str| Flags {
            status_callback: Some("https://app.example.com/rooms".into()),
            status_callback_method: Some(method.into()),
            config: Some(PathBuf::from("/dev/null")),
            ..Flags::default()
        };
        let settings = Settings::resolve(&flags("get")).unwrap();
        assert_eq!(
            settings.status_callback,
            Some(StatusCallback {
                url: "https://app.example.com/rooms".into(),
                method: CallbackMethod::Get,
            })
        );
        assert!(Settings::resolve(&flags("PUT")).is_err());
        let defaults = Settings::resolve(&Flags {
            config: Some(PathBuf::from("/dev/null")),
            ..Flags::default()
        })
        .unwrap();
        assert_eq!(defaults.status_callback, None);
        assert_eq!(
            defaults.callbacks,
            CallbackSettings {
                private_network: false,
                timeout: Duration::from_secs(15),
                max_attempts: 12,
                max_age: Duration::from_secs(86_400),
            }
        );
    }

    #[test]
    fn cors_origins_are_origins() {
        for ok in ["*", "https://app.example.com", "http://localhost:5173/"] {
            assert!(check_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app.example.com",
            "ftp://x",
            "https://x/path",
            "https://u@x",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ice_tcp_is_on_unless_switched_off() {
        let resolve = |flag: Option<bool>| {
            Settings::resolve(&Flags {
                ice_tcp: flag,
                config: Some(PathBuf::from("/dev/null")),
                ..Flags::default()
            })
            .unwrap()
            .ice_tcp
        };
        assert!(resolve(None));
        assert!(!resolve(Some(false)));
        let file: FileSettings = toml::from_str("ice_tcp = false").unwrap();
        assert_eq!(file.ice_tcp, Some(false));
    }

    #[test]
    fn bandwidth_estimation_is_twcc_unless_chosen() {
        let resolve = |flag: Option<BandwidthEstimation>| {
            Settings::resolve(&Flags {
                bandwidth_estimation: flag,
                config: Some(PathBuf::from("/dev/null")),
                ..Flags::default()
            })
            .unwrap()
            .bandwidth_estimation
        };
        assert_eq!(resolve(None), BandwidthEstimation::Twcc);
        assert_eq!(
            resolve(Some(BandwidthEstimation::Remb)),
            BandwidthEstimation::Remb
        );
        let file: FileSettings = toml::from_str("bandwidth_estimation = \"remb\"").unwrap();
        assert_eq!(file.bandwidth_estimation, Some(BandwidthEstimation::Remb));
        assert!(toml::from_str::<FileSettings>("bandwidth_estimation = \"gcc\"").is_err());
    }

    #[test]
    fn the_file_refuses_unknown_keys() {
        assert!(
            toml::from_str::<FileSettings>("listen = \"127.0.0.1:1\"\nlisten_addr = 1").is_err()
        );
        let file: FileSettings =
            toml::from_str("app_routes = false\nmax_participants = 100").unwrap();
        assert_eq!(
            (file.app_routes, file.max_participants),
            (Some(false), Some(100))
        );
    }
}

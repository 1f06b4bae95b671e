//! A real server on loopback with a real SQLite file, for integration tests.

#![allow(dead_code)] // each test binary uses a different part

pub mod receiver;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use salon_room::{Join, RoomRef};
use salon_server::{AppState, Server, ServerConfig};
use salon_sid::{AccountSid, ApiKeySid, ParticipantSid, RoomSid};
use salon_store::{Account, ApiKeyRecord, Store, Timestamp};
use serde_json::Value;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub addr: SocketAddr,
    pub account: AccountSid,
    pub auth_token: String,
    pub key: ApiKeySid,
    pub secret: String,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub app_routes: bool,
    pub rooms: salon_room::Config,
    /// A connected peer silent this long is gone: the session timeout
    /// (production: 30 s).
    pub peer_timeout: Duration,
    pub signaling: salon_server::signaling::SignalingConfig,
    /// The media port's address (production default: the listen IP).
    pub media_bind: SocketAddr,
    pub media_workers: usize,
    /// What ICE-TCP clients may cost (production: 5 s to a first frame).
    pub tcp_limits: salon_media::TcpLimits,
    pub callbacks: salon_server::callbacks::CallbackConfig,
    /// Connections and their deadlines (production: 10 s for a request
    /// head, 75 s idle).
    pub http: salon_server::http::HttpLimits,
    /// Failed REST authentications per address per minute (production: 30).
    pub auth_failures_per_minute: u32,
    pub connectivity: salon_server::connectivity::ConnectivityConfig,
    /// Extra origins whose pages may call the tutorial routes.
    pub cors_origins: Vec<String>,
    /// Where each subscriber's downlink estimate comes from (production:
    /// send-side, from TWCC).
    pub estimation: salon_media::Estimation,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            app_routes: true,
            rooms: salon_room::Config::default(),
            peer_timeout: Duration::from_secs(10),
            signaling: salon_server::signaling::SignalingConfig::default(),
            media_bind: "127.0.0.1:0".parse().unwrap(),
            media_workers: 2,
            tcp_limits: salon_media::TcpLimits::default(),
            callbacks: salon_server::callbacks::CallbackConfig::default(),
            http: salon_server::http::HttpLimits {
                max_connections: 1000,
                ..salon_server::http::HttpLimits::default()
            },
            auth_failures_per_minute: 30,
            connectivity: Default::default(),
            cors_origins: Vec::new(),
            estimation: salon_media::Estimation::default(),
        }
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::in_dir(dir, options).await
    }

    /// Start on an existing data directory (to test restarts).
    pub async fn in_dir(dir: tempfile::TempDir, options: Options) -> Self {
        let store = Store::open(dir.path()).await.expect("store");
        let account = match store.accounts().await.expect("accounts").into_iter().next() {
            Some(account) => account,
            None => {
                let account = Account {
                    sid: AccountSid::random(),
                    auth_token: "0123456789abcdef0123456789abcdef".into(),
                    friendly_name: "test".into(),
                    date_created: Timestamp::now(),
                };
                store.put_account(&account).await.expect("account");
                account
            }
        };
        let key = match store.api_keys().await.expect("keys").into_iter().next() {
            Some(key) => key,
            None => {
                let key = ApiKeyRecord {
                    sid: ApiKeySid::random(),
                    account_sid: account.sid,
                    secret: "secretsecretsecretsecretsecret12".into(),
                    friendly_name: "test".into(),
                    date_created: Timestamp::now(),
                    date_revoked: None,
                };
                store.put_api_key(&key).await.expect("key");
                key
            }
        };
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: "http://salon.test".into(),
            app_routes: options.app_routes,
            cors_origins: options.cors_origins,
            rooms: options.rooms,
            account: account.sid,
            media: salon_media::MediaConfig {
                bind: options.media_bind,
                workers: options.media_workers,
                peer_timeout: options.peer_timeout,
                tcp_limits: options.tcp_limits,
                estimation: options.estimation,
                ..salon_media::MediaConfig::default()
            },
            signaling: options.signaling,
            callbacks: options.callbacks,
            http: options.http,
            auth_failures_per_minute: options.auth_failures_per_minute,
            connectivity: options.connectivity.clone(),
            recordings: salon_server::recording::RecordingConfig {
                dir: dir.path().join("recordings"),
                media_url_ttl: std::time::Duration::from_secs(600),
            },
            node: None,
        };
        let server = Server::bind(config, store).await.expect("bind");
        let addr = server.local_addr();
        let state = server.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Self {
            dir,
            url: format!("http://{addr}"),
            addr,
            account: account.sid,
            auth_token: account.auth_token,
            key: key.sid,
            secret: key.secret,
            state,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stop gracefully and give back the data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// A REST call authenticated with the API key. `form` goes in the body
    /// for POST and in the query string otherwise.
    pub async fn rest(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        let request = request.basic_auth(self.key, Some(&self.secret));
        let request = if method == Method::POST {
            request.form(form)
        } else {
            request.query(form)
        };
        Self::send(request).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.rest(Method::GET, path, &[]).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        self.rest(Method::POST, path, form).await
    }

    pub async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// Follow a `next_page_url` (absolute, under the public URL).
    pub async fn follow(&self, url: &str) -> (StatusCode, Value) {
        let path = url
            .strip_prefix("http://salon.test")
            .expect("page URL under the public URL");
        let request = self
            .http
            .get(format!("{}{path}", self.url))
            .basic_auth(self.key, Some(&self.secret));
        Self::send(request).await
    }

    /// The signaling URL.
    pub fn signaling_url(&self) -> String {
        format!("ws://{}/v1/signaling", self.addr)
    }

    /// An access token for `identity`, optionally limited to `room`, signed
    /// with the server's key and valid for an hour from `now_offset` seconds
    /// relative to now.
    pub fn token_at(&self, identity: &str, room: Option<&str>, now_offset: i64) -> String {
        let key = self
            .state
            .credentials
            .signing_key(self.account)
            .expect("a signing key");
        let mut grant = salon_token::Grant::new(identity);
        if let Some(room) = room {
            grant = grant.in_room(room);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        salon_token::mint(
            &key,
            &grant,
            (now + now_offset) as u64,
            &salon_token::MintOptions::default(),
        )
        .expect("minted")
    }

    pub fn token(&self, identity: &str, room: Option<&str>) -> String {
        self.token_at(identity, room, 0)
    }

    /// A `salon-client` participant in `room`, publishing `tracks`.
    pub async fn client(
        &self,
        identity: &str,
        room: &str,
        tracks: &[salon_client::TrackSpec],
    ) -> salon_client::Client {
        let mut config =
            salon_client::ClientConfig::new(self.signaling_url(), self.token(identity, None), room);
        for track in tracks {
            config = config.publish(track.clone());
        }
        salon_client::Client::connect(config)
            .await
            .expect("connected")
    }

    /// Connect a participant through the room service, as signaling will.
    pub async fn join(&self, room: RoomSid, identity: &str) -> ParticipantSid {
        let participant = ParticipantSid::random();
        self.state
            .rooms
            .join(Join {
                room: RoomRef::Sid(room),
                participant,
                identity: identity.into(),
                auto_subscribe: true,
                new_room: RoomSid::random(),
            })
            .await
            .expect("joined");
        participant
    }

    pub async fn create_room(&self, name: &str) -> RoomSid {
        let (status, body) = self.post("/v1/Rooms", &[("UniqueName", name)]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["sid"].as_str().unwrap().parse().unwrap()
    }
}

/// Assert a Twilio-shaped error body with this status and code.
#[track_caller]
pub fn assert_error(response: &(StatusCode, Value), status: u16, code: u64) {
    let (got, body) = response;
    assert_eq!(got.as_u16(), status, "status; body: {body}");
    assert_eq!(body["code"], code, "code; body: {body}");
    assert_eq!(body["status"], status, "status field; body: {body}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message; body: {body}"
    );
}

//! Salon's HTTP server: the Twilio-compatible REST API, the tutorial routes,
//! health and metrics, and the room service that drives the room core.
//!
//! ```text
//!  HTTP ──▶ axum router ─┬─ /v1/…           REST (Basic auth)  ─┐ reads ──▶ Store
//!                        ├─ /create-token…  tutorial routes     │
//!                        ├─ /healthz /metrics                   │ commands
//!                        └─ /               landing page        ▼
//!                                              RoomService task ── Rooms (sans-IO core)
//!                                                     │ events
//!                                                     ▼
//!                                                   Store ── outbox ──▶ callbacks::Sender ──▶ webhooks
//! ```
//!
//! [`Server::bind`] opens the listener and starts the room service;
//! [`Server::serve`] answers requests until the shutdown future resolves,
//! then ends every room (so none is left "in progress"), stops background
//! tasks and closes the database.
//!
//! This crate does not parse configuration files or command lines (the
//! `salon` binary does) and holds no room rules (the room core does).

mod app;
mod bridge;
pub mod callbacks;
pub mod cluster;
pub mod composition;
pub mod connectivity;
mod credentials;
pub mod http;
pub mod metrics;
pub mod recorder;
pub mod recording;
pub mod rest;
pub mod service;
mod session;
pub mod signaling;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use salon_sid::AccountSid;
use salon_store::{Store, Timestamp};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use app::{Origins, TOKEN_TTL};
pub use credentials::{Credentials, RELOAD_INTERVAL};
pub use metrics::Metrics;
use rest::error::ApiError;
use rest::resources::Urls;
pub use service::{RoomService, ServiceError};

/// What the server needs to know, already resolved from flags, environment
/// and configuration file.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen for HTTP.
    pub listen: SocketAddr,
    /// Base of absolute URLs in responses, e.g. `https://video.example.com`.
    pub public_url: String,
    /// Whether to mount the tutorial routes (they mint tokens for anyone).
    pub app_routes: bool,
    /// Origins besides the public URL's whose pages may call the tutorial
    /// routes from a browser (`*`: any).
    pub cors_origins: Vec<String>,
    /// Room rules the operator chose.
    pub rooms: salon_room::Config,
    /// The account this server serves: rooms belong to it, and only its
    /// credentials authenticate.
    pub account: AccountSid,
    /// The media server (UDP port, workers, timeouts).
    pub media: salon_media::MediaConfig,
    /// Signaling's timeouts.
    pub signaling: signaling::SignalingConfig,
    /// How status callbacks are delivered.
    pub callbacks: callbacks::CallbackConfig,
    /// Connections: how many, and how long they may wait.
    pub http: http::HttpLimits,
    /// Failed REST authentications allowed per client address per minute
    /// (0: no limit).
    pub auth_failures_per_minute: u32,
    /// ICE servers for clients, and the built-in TURN server.
    pub connectivity: connectivity::ConnectivityConfig,
    /// Where recordings are written, and their download links.
    pub recordings: recording::RecordingConfig,
    /// This node's id when it is one of several: every metric then carries
    /// a `node` label.
    pub node: Option<String>,
}

/// Everything request handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub rooms: RoomService,
    pub credentials: Arc<Credentials>,
    pub metrics: Arc<Metrics>,
    pub urls: Arc<Urls>,
    pub account: AccountSid,
    pub media: salon_media::Media,
    pub signaling: Arc<signaling::Signaling>,
    pub auth_throttle: Arc<rest::throttle::AuthThrottle>,
    /// The ICE servers handed to clients.
    pub ice: Arc<connectivity::IceServers>,
    pub recordings: recording::Recordings,
    pub compositions: composition::Compositions,
    /// The other nodes, when this one is part of a cluster.
    pub cluster: Option<Arc<dyn cluster::Cluster>>,
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the TURN server")]
    Turn(#[source] std::io::Error),
    #[error("cannot start the media server on UDP {addr}")]
    Media {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] salon_store::StoreError),
    #[error("the room service stopped while starting")]
    RoomService,
    #[error("cannot set up the HTTP client for status callbacks")]
    Callbacks(#[source] reqwest::Error),
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    app_routes: Option<app::Origins>,
    http: http::HttpLimits,
    stop_watcher: tokio::sync::watch::Sender<bool>,
    watcher: tokio::task::JoinHandle<()>,
    /// Fires composition hooks; it finishes what the shutdown started.
    hooks: tokio::task::JoinHandle<()>,
    callback_sender: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    /// The built-in TURN server (stops when dropped).
    turn: Option<salon_turn::TurnServer>,
}

impl Server {
    /// Close what a previous process left in progress, load credentials,
    /// start the room service and bind the listener.
    pub async fn bind(config: ServerConfig, store: Store) -> Result<Self, StartError> {
        let abandoned = store.close_abandoned(Timestamp::now()).await?;
        if abandoned.rooms + abandoned.participants > 0 {
            tracing::warn!(
                rooms = abandoned.rooms,
                participants = abandoned.participants,
                ended_at = %abandoned.ended_at,
                "closed rooms and participants a previous process left in progress, as of when it was last seen"
            );
        }
        store.heartbeat(Timestamp::now()).await?;
        let (media_events_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
        let media =
            salon_media::Media::start(config.media.clone(), media_events_tx).map_err(|source| {
                StartError::Media {
                    addr: config.media.bind,
                    source,
                }
            })?;
        let (turn, ice) = connectivity::start(
            &config.connectivity,
            config.media.bind.ip(),
            media.candidates().to_vec(),
        )
        .await
        .map_err(StartError::Turn)?;
        let signaling = Arc::new(signaling::Signaling::new(config.signaling));
        let callback_stats = Arc::new(callbacks::CallbackStats::default());
        let mut metrics = Metrics::for_node(config.node.as_deref());
        metrics.add_media(media.clone(), signaling.clone());
        metrics.add_collector(callback_stats.clone());
        if let Some(turn) = &turn {
            metrics.add_turn(turn.stats());
        }
        let health = Arc::new(recorder::StoreHealth::default());
        metrics.add_collector(Arc::new(recorder::Shared(health.clone())));
        let metrics = Arc::new(metrics);
        let credentials =
            Arc::new(Credentials::load(&store, config.account, metrics.clone()).await?);
        let sender = callbacks::Sender::new(
            store.clone(),
            credentials.clone(),
            config.callbacks.clone(),
            callback_stats,
        )
        .map_err(StartError::Callbacks)?;
        let (stop_watcher, stop) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(credentials.clone().watch(store.clone(), stop.clone()));
        let callback_sender = tokio::spawn(sender.run(stop.clone()));
        let heartbeat = tokio::spawn(heartbeat(store.clone(), health.clone(), stop));
        let core = salon_room::Rooms::new(config.rooms.clone());
        let (rooms, _task) =
            RoomService::spawn(core, store.clone(), config.account, health, metrics.clone());
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let room_events = rooms.watch().await.map_err(|_| StartError::RoomService)?;
        tokio::spawn(bridge::room_to_media(
            media.clone(),
            signaling.clone(),
            room_events,
        ));
        let (reports_tx, reports) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(bridge::media_to_room(
            rooms.clone(),
            signaling.clone(),
            media_events,
            reports_tx,
        ));
        let recording_events = rooms.watch().await.map_err(|_| StartError::RoomService)?;
        let hook_events = rooms.watch().await.map_err(|_| StartError::RoomService)?;
        let compositions = composition::Compositions::spawn(
            store.clone(),
            config.recordings.dir.join("compositions"),
            config.recordings.dir.clone(),
        );
        let recordings = recording::Recordings::spawn(
            config.recordings.clone(),
            store.clone(),
            media.clone(),
            rooms.clone(),
            credentials.clone(),
            recording_events,
            reports,
        );
        let state = AppState {
            store,
            rooms,
            credentials,
            metrics,
            urls: Arc::new(Urls::new(&config.public_url)),
            account: config.account,
            media,
            signaling,
            auth_throttle: Arc::new(rest::throttle::AuthThrottle::new(
                config.auth_failures_per_minute,
            )),
            ice: Arc::new(ice),
            recordings,
            compositions,
            cluster: None,
        };
        let hooks = tokio::spawn(rest::composition_hooks::fire_when_rooms_end(
            state.clone(),
            hook_events,
            stop_watcher.subscribe(),
        ));
        tokio::spawn(rest::compositions::resume_unfinished(state.clone()));
        tokio::spawn(cluster::remove_media_deleted_while_away(state.clone()));
        Ok(Self {
            listener,
            state,
            app_routes: config
                .app_routes
                .then(|| app::Origins::new(&config.public_url, &config.cors_origins)),
            http: config.http,
            stop_watcher,
            watcher,
            callback_sender,
            heartbeat,
            hooks,
            turn,
        })
    }

    /// The built-in TURN server's addresses (UDP, TCP, TLS), if it runs.
    pub fn turn_addrs(&self) -> Option<[Option<SocketAddr>; 3]> {
        self.turn.as_ref().map(|t| [t.udp, t.tcp, t.tls])
    }

    /// The UDP address of the media server.
    pub fn media_addr(&self) -> SocketAddr {
        self.state.media.local_addr()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serve as one node of `cluster`: new rooms are placed, commands and
    /// joins for rooms on other nodes go there (see [`cluster`]).
    pub fn join_cluster(&mut self, cluster: Arc<dyn cluster::Cluster>) {
        self.state.cluster = Some(cluster);
    }

    /// The shared state, for tests and embedders that drive the room service.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then shut down gracefully.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router(self.state.clone(), self.app_routes.clone());
        http::serve(self.listener, app, self.http, shutdown).await;
        tracing::info!("HTTP stopped; ending rooms");
        self.state.rooms.shutdown().await;
        // The sender delivers what the shutdown made due for a few seconds
        // more; the rest waits in the outbox for the next start.
        let _ = self.stop_watcher.send(true);
        let _ = self.hooks.await;
        let _ = self.watcher.await;
        let _ = self.callback_sender.await;
        let _ = self.heartbeat.await;
        self.state.store.close().await;
        Ok(())
    }
}

/// The whole HTTP surface; the tutorial routes too, for pages of `app_routes`.
pub fn router(state: AppState, app_routes: Option<app::Origins>) -> Router {
    let mut router = Router::new()
        .merge(rest::router(state.clone()))
        .route("/v1/signaling", get(signaling::upgrade))
        .route("/signaling", get(signaling::twilio::upgrade))
        .route("/insights", get(signaling::twilio::insights))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::serve));
    if let Some(origins) = app_routes {
        router = router.merge(app::router(origins));
    }
    router
        .fallback(web::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::count_requests,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How often the server notes in the store that it is alive. After a crash,
/// the rooms it left in progress end at its last note, so their recorded
/// duration is off by at most this much (not by the downtime).
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the heartbeat's one-row write may take before the database
/// counts as away.
const HEARTBEAT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// Write [`Store::heartbeat`] every [`HEARTBEAT_INTERVAL`] until `stop`,
/// noting in `health` whether the database answers.
async fn heartbeat(
    store: Store,
    health: Arc<recorder::StoreHealth>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let written =
                    tokio::time::timeout(HEARTBEAT_PATIENCE, store.heartbeat(Timestamp::now())).await;
                match written {
                    Ok(Ok(())) => health.heartbeat_written(),
                    Ok(Err(e)) if e.is_unavailable() => health.mark_down(&e),
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot record the heartbeat"),
                    Err(_) => health.mark_down(&format_args!(
                        "the heartbeat's write took over {HEARTBEAT_PATIENCE:?}"
                    )),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ok" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

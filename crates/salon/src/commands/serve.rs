//! `salon serve`: run the server until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use salon_server::callbacks::CallbackConfig;
use salon_server::{Server, ServerConfig, http};
use salon_store::Backend;

use crate::bootstrap;
use crate::cluster;
use crate::settings::Settings;

pub async fn run(settings: &Settings) -> Result<ExitCode> {
    let store = bootstrap::open_store(settings).await?;
    let (account, generated) = bootstrap::ensure_account(&store, settings).await?;
    if let Some(generated) = &generated {
        generated.print(&mut std::io::stdout().lock(), settings)?;
    }
    if let Some(file) = &settings.config_file {
        tracing::info!(file = %file.display(), "read configuration file");
    }

    let max_connections = connection_limit(settings.max_connections);
    let public_host = url::Url::parse(&settings.public_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
        .unwrap_or_else(|| "localhost".to_owned());
    let connectivity =
        settings
            .turn
            .connectivity(settings.listen.ip(), &settings.media_ips, &public_host)?;
    let config = ServerConfig {
        listen: settings.listen,
        public_url: settings.public_url.clone(),
        app_routes: settings.app_routes,
        cors_origins: settings.cors_origins.clone(),
        rooms: salon_room::Config {
            group_max_participants: settings.max_participants,
            ad_hoc_rooms: settings.ad_hoc_rooms,
            ad_hoc_status_callback: settings.status_callback.clone(),
            ..salon_room::Config::default()
        },
        account: account.sid,
        media: salon_media::MediaConfig {
            bind: settings.media_bind,
            public_ips: settings.media_ips.clone(),
            workers: settings.media_workers,
            ice_tcp: settings.ice_tcp,
            estimation: settings.bandwidth_estimation.into(),
            peer_timeout: settings.session_timeout,
            ..salon_media::MediaConfig::default()
        },
        signaling: salon_server::signaling::SignalingConfig {
            messages_per_second: settings.signaling_messages_per_second,
            resume_grace: settings.session_timeout,
            ..salon_server::signaling::SignalingConfig::default()
        },
        http: salon_server::http::HttpLimits {
            max_connections,
            ..salon_server::http::HttpLimits::default()
        },
        auth_failures_per_minute: settings.auth_failures_per_minute,
        connectivity,
        recordings: salon_server::recording::RecordingConfig {
            dir: settings.recordings_dir.clone(),
            media_url_ttl: std::time::Duration::from_secs(600),
        },
        node: settings
            .redis_url
            .is_some()
            .then(|| settings.node_id.clone()),
        callbacks: CallbackConfig {
            allow_private_network: settings.callbacks.private_network,
            timeout: settings.callbacks.timeout,
            connect_timeout: settings
                .callbacks
                .timeout
                .min(CallbackConfig::default().connect_timeout),
            max_attempts: settings.callbacks.max_attempts,
            max_age: settings.callbacks.max_age,
            ..CallbackConfig::default()
        },
    };
    let database = match (store.backend(), &settings.database_url) {
        (Backend::Postgres, Some(url)) => format!("PostgreSQL at {}", bootstrap::redacted(url)),
        (_, Some(url)) => format!("SQLite at {}", bootstrap::redacted(url)),
        (_, None) => format!("SQLite (WAL) in {}", settings.data_dir.display()),
    };
    let sweeper_store = store.clone();
    let mut server = Server::bind(config, store).await?;
    let (keys, revoked) = server.state().credentials.key_counts();
    tracing::info!(
        account = %account.sid,
        api_keys = keys - revoked,
        revoked_keys = revoked,
        database = %database,
        "database ready"
    );
    match (settings.app_routes, settings.app_routes_defaulted) {
        (true, true) => tracing::info!(
            "tutorial routes on: listening on loopback (--app-routes false turns them off)"
        ),
        (true, false) => tracing::warn!(
            "tutorial routes on by configuration: anyone who can reach this server can mint tokens"
        ),
        (false, true) => tracing::info!(
            "tutorial routes off: not listening on loopback (--app-routes true turns them on)"
        ),
        (false, false) => tracing::info!("tutorial routes off by configuration"),
    }
    if settings.callbacks.private_network {
        tracing::warn!(
            "status callbacks may go to loopback, private and link-local addresses (--callback-private-network)"
        );
    }
    tracing::info!(
        address = %server.local_addr(),
        public_url = %settings.public_url,
        media = %server.media_addr(),
        "Salon {} listening: open {}",
        env!("CARGO_PKG_VERSION"),
        settings.public_url
    );
    let (stop_registry, registry_stop) = tokio::sync::watch::channel(false);
    let draining = Arc::new(cluster::Draining::default());
    let registry = match &settings.redis_url {
        Some(url) => {
            let mut conn = cluster::connect(url).await?;
            let record = cluster::record(
                &settings.node_id,
                &settings.public_url,
                &server.media_addr().to_string(),
            );
            cluster::register(&mut conn, &record).await?;
            tracing::info!(node = %settings.node_id, redis = %bootstrap::redacted(url), "registered in the cluster");
            let redis_cluster = Arc::new(cluster::RedisCluster::new(
                &settings.node_id,
                conn.clone(),
                sweeper_store.clone(),
                draining.clone(),
            ));
            server.join_cluster(redis_cluster.clone());
            tokio::spawn(cluster::serve_bus(
                cluster::open(url)?,
                conn.clone(),
                redis_cluster,
                server.state().clone(),
                registry_stop.clone(),
            ));
            tokio::spawn(cluster::sweep(
                conn.clone(),
                sweeper_store,
                settings.node_id.clone(),
                registry_stop.clone(),
            ));
            let metrics = server.state().metrics.clone();
            let media = server.state().media.clone();
            Some(tokio::spawn(cluster::keep_registered(
                conn,
                record,
                move || {
                    let (rooms, participants) = metrics.load();
                    cluster::Load {
                        rooms,
                        participants,
                        forwarded: media
                            .stats()
                            .rtp_forwarded
                            .load(std::sync::atomic::Ordering::Relaxed),
                    }
                },
                draining.clone(),
                registry_stop,
            )))
        }
        None => None,
    };
    let trimming = tokio::spawn(give_back_memory());
    let shutdown = {
        let clustered = settings.redis_url.is_some();
        let metrics = server.state().metrics.clone();
        let timeout = settings.drain_timeout;
        async move {
            shutdown_signal().await;
            if clustered {
                drain(&draining, &metrics, timeout).await;
            }
        }
    };
    let served = server.serve(shutdown).await;
    let _ = stop_registry.send(true);
    if let Some(registry) = registry {
        let _ = registry.await;
    }
    served?;
    trimming.abort();
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// How often freed heap memory is handed back to the system.
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Hand freed heap memory back to the system every [`TRIM_INTERVAL`].
///
/// glibc's allocator keeps what a burst of connections freed in its
/// per-thread arenas, and gives back only what sits at the top of the main
/// heap: after a thousand sessions came and went, RSS stayed where the
/// burst took it. `malloc_trim` returns the free pages of every arena
/// (`MADV_DONTNEED`), in well under a millisecond for a heap of this size.
/// See docs/performance.md (memory) for the figures.
async fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut ticks = tokio::time::interval(TRIM_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // SAFETY: malloc_trim takes a size and touches only the
            // allocator's own state, under its locks.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

/// Raise the open-file limit as far as allowed and choose the connection
/// cap: the configured one, unless the limit leaves no room for it.
fn connection_limit(configured: Option<usize>) -> usize {
    let open_files = match http::raise_open_files_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            http::open_files_limit()
        }
    };
    let room = open_files.map_or_else(http::default_max_connections, http::max_connections_for);
    let chosen = match configured {
        Some(wanted) if wanted > room => {
            tracing::warn!(
                wanted,
                open_files,
                "--max-connections is more than the open-file limit leaves room for: using {room} (raise `ulimit -n` for more)"
            );
            room
        }
        Some(wanted) => wanted,
        None => room,
    };
    tracing::info!(
        max_connections = chosen,
        open_files,
        "HTTP connection limit"
    );
    chosen
}

/// How often a draining node looks whether its rooms have ended.
const DRAIN_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Drain this node of a cluster: no new rooms are placed here (its record
/// says so at once, and joins for new rooms are sent elsewhere), and its
/// rooms go on until they end or `timeout` passes, or a second signal
/// comes. Then the server stops as it would alone, ending what is left.
async fn drain(
    draining: &cluster::Draining,
    metrics: &salon_server::Metrics,
    timeout: std::time::Duration,
) {
    draining.start();
    let (rooms, participants) = metrics.load();
    tracing::info!(
        rooms,
        participants,
        timeout_seconds = timeout.as_secs(),
        "draining: no new rooms here; waiting for this node's rooms to end"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let again = shutdown_signal();
    tokio::pin!(again);
    loop {
        let (rooms, _) = metrics.load();
        if rooms == 0 {
            tracing::info!("drained: no rooms left");
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_CHECK) => {}
            _ = &mut again => {
                tracing::warn!(rooms, "second signal while draining: ending the rooms now");
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(rooms, "drain timeout: ending the rooms still in progress");
            return;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received: shutting down"),
        _ = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}

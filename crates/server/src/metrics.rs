//! [`Metrics`]: what `/metrics` reports, in the OpenMetrics text format that
//! Prometheus scrapes.
//!
//! Each server owns its registry (no process-wide recorder), so several
//! servers in one test process keep separate counts. Counters are atomics;
//! label lookups take a short read lock, which is fine per HTTP request and
//! is kept off the media packet path.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    rooms_in_progress: Gauge,
    participants_connected: Gauge,
    http_requests: Family<RequestLabels, Counter>,
    token_verifications: Family<ResultLabels, Counter>,
    tokens_minted: Counter,
    rooms_ended: Family<ReasonLabels, Counter>,
    participants_disconnected: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::for_node(None)
    }

    /// Metrics of one node of a cluster: each carries `node="<id>"`.
    pub fn for_node(node: Option<&str>) -> Self {
        let mut registry = match node {
            None => Registry::with_prefix("salon"),
            Some(node) => Registry::with_prefix_and_labels(
                "salon",
                [(
                    std::borrow::Cow::Borrowed("node"),
                    std::borrow::Cow::Owned(node.to_owned()),
                )]
                .into_iter(),
            ),
        };
        let rooms_in_progress = Gauge::default();
        registry.register(
            "rooms_in_progress",
            "Rooms currently in progress",
            rooms_in_progress.clone(),
        );
        let participants_connected = Gauge::default();
        registry.register(
            "participants_connected",
            "Participants currently connected, across all rooms",
            participants_connected.clone(),
        );
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template and response status",
            http_requests.clone(),
        );
        let token_verifications = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_verifications",
            "Access token verifications by result: ok, or the Twilio error code",
            token_verifications.clone(),
        );
        // Show the series before the first verification, so dashboards and
        // alerts have something to select.
        let _ = token_verifications.get_or_create(&ResultLabels {
            result: "ok".into(),
        });
        let tokens_minted = Counter::default();
        registry.register(
            "tokens_minted",
            "Access tokens minted by the tutorial routes",
            tokens_minted.clone(),
        );
        let rooms_ended = Family::<ReasonLabels, Counter>::default();
        registry.register("rooms_ended", "Rooms ended, by reason", rooms_ended.clone());
        let participants_disconnected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "participants_disconnected",
            "Participants disconnected, by reason",
            participants_disconnected.clone(),
        );
        Self {
            registry,
            rooms_in_progress,
            participants_connected,
            http_requests,
            token_verifications,
            tokens_minted,
            rooms_ended,
            participants_disconnected,
        }
    }

    /// Report the media server's and signaling's figures too.
    pub fn add_media(
        &mut self,
        media: salon_media::Media,
        signaling: std::sync::Arc<crate::signaling::Signaling>,
    ) {
        self.registry
            .register_collector(Box::new(MediaCollector { media, signaling }));
    }

    /// Report the built-in TURN server's figures too.
    pub fn add_turn(&mut self, stats: std::sync::Arc<salon_turn::TurnStats>) {
        self.registry
            .register_collector(Box::new(TurnCollector(stats)));
    }

    /// Report another part's figures (read at scrape time).
    pub fn add_collector(&mut self, collector: std::sync::Arc<impl Collector + 'static>) {
        self.registry
            .register_collector(Box::new(Shared(collector)));
    }

    /// Render everything in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn set_rooms(&self, rooms: usize, participants: usize) {
        self.rooms_in_progress.set(rooms as i64);
        self.participants_connected.set(participants as i64);
    }

    /// Rooms in progress and participants connected on this node: the load
    /// a node reports to the cluster.
    pub fn load(&self) -> (u64, u64) {
        let count = |g: &Gauge| u64::try_from(g.get()).unwrap_or(0);
        (
            count(&self.rooms_in_progress),
            count(&self.participants_connected),
        )
    }

    pub fn token_verified(&self, rejection_code: Option<u32>) {
        let result = rejection_code.map_or_else(|| "ok".to_owned(), |c| c.to_string());
        self.token_verifications
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn token_minted(&self) {
        self.tokens_minted.inc();
    }

    pub fn room_ended(&self, reason: &'static str) {
        self.rooms_ended
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn participant_disconnected(&self, reason: &'static str) {
        self.participants_disconnected
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    fn http_request(&self, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }
}

/// Middleware counting every request by its route template (so
/// `/v1/Rooms/RM…` and `/v1/Rooms/RM…` count as one route).
pub async fn count_requests(
    State(metrics): State<std::sync::Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.http_request(&route, response.status().as_u16());
    response
}

/// `GET /metrics`.
pub async fn serve(State(metrics): State<std::sync::Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// A collector shared with the part that updates it.
#[derive(Debug)]
struct Shared<C>(std::sync::Arc<C>);

impl<C: Collector> Collector for Shared<C> {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }
}

/// Reads the TURN server's atomic counters at scrape time.
#[derive(Debug)]
struct TurnCollector(std::sync::Arc<salon_turn::TurnStats>);

impl Collector for TurnCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let limited = ConstCounter::new(self.0.requests_limited.load(Relaxed));
        limited.encode(encoder.encode_descriptor(
            "turn_requests_limited",
            "TURN requests from clients without an allocation left unanswered by --turn-requests-per-source (or the cap for all sources)",
            None,
            limited.metric_type(),
        )?)?;
        let allocations = ConstGauge::new(self.0.allocations.load(Relaxed) as i64);
        allocations.encode(encoder.encode_descriptor(
            "turn_allocations",
            "TURN allocations alive on the built-in server",
            None,
            allocations.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Reads the media server's atomic counters at scrape time: the packet path
/// only bumps relaxed atomics, and nothing is copied until someone asks.
struct MediaCollector {
    media: salon_media::Media,
    signaling: std::sync::Arc<crate::signaling::Signaling>,
}

impl std::fmt::Debug for MediaCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaCollector")
    }
}

impl Collector for MediaCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.media.stats();
        let demux = self.media.demux_stats();
        let counters: [(&str, &str, u64); 16] = [
            (
                "media_datagrams_received",
                "UDP datagrams received on the media port",
                stats.datagrams_in.load(Relaxed),
            ),
            (
                "media_datagrams_sent",
                "UDP datagrams sent from the media port",
                stats.datagrams_out.load(Relaxed),
            ),
            (
                "media_bytes_received",
                "Bytes received on the media port",
                stats.bytes_in.load(Relaxed),
            ),
            (
                "media_bytes_sent",
                "Bytes sent from the media port",
                stats.bytes_out.load(Relaxed),
            ),
            (
                "media_rtp_received",
                "RTP packets received from publishers",
                stats.rtp_in.load(Relaxed),
            ),
            (
                "media_rtp_forwarded",
                "RTP packets written to subscribers",
                stats.rtp_forwarded.load(Relaxed),
            ),
            (
                "media_dropped",
                "Datagrams dropped: unknown sender, full worker queue, or stale peer",
                stats.dropped.load(Relaxed),
            ),
            (
                "media_send_failures",
                "Datagrams the media port could not send (full socket buffer, unreachable)",
                stats.send_failures.load(Relaxed),
            ),
            (
                "media_handed_over",
                "Datagrams read by one media worker for a peer of another",
                demux.handed_over.load(Relaxed),
            ),
            (
                "media_unknown_senders",
                "Datagrams from unknown senders that were not STUN for a known peer",
                demux.unknown.load(Relaxed),
            ),
            (
                "media_peer_panics",
                "Peers dropped because their WebRTC session panicked",
                stats.peer_panics.load(Relaxed),
            ),
            (
                "media_interruptions",
                "Connected peers whose media went silent (kept for the session timeout)",
                stats.interruptions.load(Relaxed),
            ),
            (
                "media_ice_restarts",
                "Offers that restarted ICE (new ICE credentials)",
                stats.ice_restarts.load(Relaxed),
            ),
            (
                "media_receiver_estimates",
                "Downlink estimates (REMB) taken from subscribers, with --bandwidth-estimation remb",
                stats.receiver_estimates.load(Relaxed),
            ),
            (
                "media_stun_answers",
                "Plain STUN Binding requests (no ICE peer's) the media port answered with the sender's address",
                stats.stun_answers.load(Relaxed),
            ),
            (
                "media_tcp_rejected",
                "ICE-TCP connections closed for breaking a rule (over the cap, silent, not STUN for a known peer, oversize or non-media frame, not reading)",
                stats.tcp_rejected.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges: [(&str, &str, i64); 3] = [
            (
                "media_peers",
                "WebRTC peers on the media server",
                stats.peers.load(Relaxed) as i64,
            ),
            (
                "media_tcp_connections",
                "ICE-TCP connections open on the media port",
                stats.tcp_connections.load(Relaxed) as i64,
            ),
            (
                "signaling_sessions",
                "Signaling sessions open",
                self.signaling.len() as i64,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

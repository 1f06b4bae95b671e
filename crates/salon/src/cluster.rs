//! Several nodes on Redis: the node registry.
//!
//! Each node started with `--redis-url` announces itself under
//! `salon:node:<node id>`: a JSON record (its public URL, media address,
//! when it started, when it last renewed) with a lease of [`LEASE`], renewed
//! every [`RENEW`]. A node that stops renewing (crashed, cut off) drops out
//! of the registry when its lease runs out, so every node and `salon nodes
//! list` see only live nodes, within [`LEASE`] of a death.
//!
//! The first announcement is `SET … NX`: a second live node started with
//! the same `--node-id` is refused with a clear error instead of the two
//! silently sharing one name. Afterwards each renewal checks that the record
//! is still this process's (its `instance`), so a node whose lease ran out
//! while Redis was away takes its name back when Redis returns, and never
//! takes it from another live node.
//!
//! Every node also sweeps (every second): a node that has rooms in progress
//! in the shared database but has been missing from the registry for
//! [`GRACE`] while Redis answers is dead; one live node (the one that takes
//! `salon:failing:<node>` with `SET NX`) marks its rooms `failed`
//! ([`salon_store::Store::fail_node`]), with their status callbacks. Only
//! rooms still in progress are touched, so a dead node that comes back does
//! not bring failed rooms back in the records.
//!
//! [`RedisCluster`] is the server's [`Cluster`]: placement on the
//! least-loaded live node that is not draining (load from each node's
//! record, rooms counted in the shared database), node records for
//! redirects, and the message bus. The bus is Redis pub/sub: each node
//! listens on `salon:bus:<node id>`; a request `{"id", "from", "command"}`
//! is answered on the sender's channel with `{"id", "outcome"}`. A request
//! nobody listens to fails at once (PUBLISH counts no receiver), one not
//! answered within [`BUS_TIMEOUT`] fails then; a message that does not parse
//! is logged and dropped. Requests carry nothing a node must not lose:
//! the REST caller gets the failure and may try again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use salon_server::cluster::{BoxFuture, Cluster, ClusterError, NodeInfo, Outcome};
use serde::{Deserialize, Serialize};

/// How long a node's record outlives its last renewal.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a node renews its record: three renewals fit in a lease, so one
/// slow round trip does not make a live node look dead.
pub const RENEW: Duration = Duration::from_millis(1500);
/// How long a node with rooms must be missing from the registry, while
/// Redis answers, before it is declared dead: longer than a renewal, so a
/// Redis that restarted empty gets every live node back first. A node
/// dies at most LEASE + SWEEP + GRACE (8.5 s) before it is declared dead.
pub const GRACE: Duration = Duration::from_millis(2500);
/// How often each node looks for dead ones.
const SWEEP: Duration = Duration::from_secs(1);
/// Weight of the newest CPU measurement in the reported figure (an
/// exponential average: a sustained load shows within a few renewals).
const CPU_SMOOTHING: f64 = 0.3;
/// A round trip to Redis that takes longer than this failed.
const TIMEOUT: Duration = Duration::from_secs(2);
const KEY_PREFIX: &str = "salon:node:";

/// What a node says about itself in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// This process, among processes that used the same node id.
    pub instance: String,
    pub public_url: String,
    pub media: String,
    pub version: String,
    /// Unix milliseconds.
    pub started: i64,
    /// Unix milliseconds of the last renewal (by the node's clock).
    pub renewed: i64,
    /// Load at the last renewal: rooms in progress, participants connected.
    #[serde(default)]
    pub rooms: u64,
    #[serde(default)]
    pub participants: u64,
    /// RTP packets forwarded per second since the previous renewal.
    #[serde(default)]
    pub packets_per_second: u64,
    /// The process's CPU time as a share of all the machine's cores (0 to
    /// 1), averaged over the last few renewals.
    #[serde(default)]
    pub cpu: f64,
    /// Stopping (SIGTERM): no new rooms are placed here.
    #[serde(default)]
    pub draining: bool,
}

impl NodeRecord {
    /// How loaded a node is, for placement: a room counts 1, a
    /// participant 1/4, a thousand forwarded packets a second 1/2, and CPU
    /// only past half the machine (10 per whole machine beyond that): below
    /// it, CPU is noise (a node that just started, a burst of joins) and
    /// the counts place better; above it, the node is really busy. `rooms`
    /// is the shared database's count (exact and current), not the
    /// record's (up to a renewal old).
    pub fn load(&self, rooms: u64) -> f64 {
        rooms as f64
            + self.participants as f64 / 4.0
            + self.packets_per_second as f64 / 2000.0
            + (self.cpu - 0.5).max(0.0) * 10.0
    }
}

/// What a node measures about itself at each renewal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub rooms: u64,
    pub participants: u64,
    /// RTP packets forwarded since the start (a counter).
    pub forwarded: u64,
}

/// A connection to Redis that reconnects by itself. The first connection is
/// made here, so an unreachable Redis is an error at start.
pub async fn connect(url: &str) -> Result<ConnectionManager> {
    let shown = crate::bootstrap::redacted(url);
    let client = open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1);
    let mut conn = tokio::time::timeout(
        TIMEOUT * 2,
        ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {:?}", TIMEOUT * 2))
    .and_then(|c| c.map_err(anyhow::Error::from))
    .with_context(|| format!("cannot reach Redis at {shown}"))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .with_context(|| format!("Redis at {shown} does not answer PING"))?;
    Ok(conn)
}

/// A Redis client for `url` (no connection yet).
pub fn open(url: &str) -> Result<redis::Client> {
    let shown = crate::bootstrap::redacted(url);
    redis::Client::open(url).with_context(|| format!("{shown} is not a Redis URL"))
}

fn key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

fn now_millis() -> i64 {
    salon_store::Timestamp::now().millis()
}

/// Announce `record` for the first time. Fails when a live node already
/// holds the id.
pub async fn register(conn: &mut ConnectionManager, record: &NodeRecord) -> Result<()> {
    let value = serde_json::to_string(record)?;
    let set: Option<String> = redis::cmd("SET")
        .arg(key(&record.id))
        .arg(&value)
        .arg("NX")
        .arg("PX")
        .arg(LEASE.as_millis() as u64)
        .query_async(conn)
        .await
        .context("registering this node in Redis")?;
    if set.is_some() {
        return Ok(());
    }
    let holder = read(conn, &record.id).await?;
    match holder {
        Some(other) if other.instance != record.instance => bail!(
            "node id {:?} is already used by a live node ({}, renewed {} ms ago): give each node its own --node-id",
            record.id,
            other.public_url,
            now_millis().saturating_sub(other.renewed)
        ),
        // Its lease ran out between the two commands: try once more.
        _ => {
            let _: Option<String> = redis::cmd("SET")
                .arg(key(&record.id))
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(LEASE.as_millis() as u64)
                .query_async(conn)
                .await?;
            Ok(())
        }
    }
}

/// Renew the lease every [`RENEW`] until `stop`, then remove the record.
/// While Redis is unreachable the node goes on (its rooms are local) and
/// says so in the log; when Redis returns, the record is put back unless
/// another live node took the id meanwhile.
pub async fn keep_registered(
    mut conn: ConnectionManager,
    mut record: NodeRecord,
    load: impl Fn() -> Load,
    draining: Arc<Draining>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(RENEW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    let mut previous = (std::time::Instant::now(), load().forwarded, cpu_seconds());
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            // Say so at once when draining starts.
            _ = draining.started.notified() => {}
            _ = stop.changed() => break,
        }
        record.renewed = now_millis();
        let now = load();
        let at = std::time::Instant::now();
        let elapsed = at.duration_since(previous.0).as_secs_f64().max(0.001);
        let cpu = cpu_seconds();
        record.rooms = now.rooms;
        record.participants = now.participants;
        record.packets_per_second =
            (now.forwarded.saturating_sub(previous.1) as f64 / elapsed) as u64;
        // Smoothed over a few renewals: one busy moment (a burst of joins)
        // should not send the next rooms elsewhere.
        let share = match (cpu, previous.2) {
            (Some(cpu), Some(before)) => ((cpu - before) / elapsed / cores()).clamp(0.0, 1.0),
            _ => 0.0,
        };
        record.cpu = record.cpu * (1.0 - CPU_SMOOTHING) + share * CPU_SMOOTHING;
        record.draining = draining.is_on();
        previous = (at, now.forwarded, cpu);
        match renew(&mut conn, &record).await {
            Ok(true) => {
                if !reachable {
                    tracing::info!(node = %record.id, "Redis is back: this node is registered again");
                }
                reachable = true;
            }
            Ok(false) => {
                tracing::error!(node = %record.id, "another live node holds this node id in Redis; not renewing over it");
            }
            Err(e) => {
                if reachable {
                    tracing::warn!(node = %record.id, error = %e, "cannot renew this node's lease in Redis; rooms here go on");
                }
                reachable = false;
            }
        }
    }
    let _: Result<i64, _> = tokio::time::timeout(TIMEOUT, conn.del(key(&record.id)))
        .await
        .unwrap_or(Ok(0));
}

/// Put the record back with a fresh lease if it is this process's or
/// nobody's. `Ok(false)`: another instance holds the id.
async fn renew(conn: &mut ConnectionManager, record: &NodeRecord) -> Result<bool> {
    // Check-and-set in one step on the server: Redis runs a script alone.
    const SCRIPT: &str = r"local current = redis.call('GET', KEYS[1])
          if current and not string.find(current, ARGV[2], 1, true) then return 0 end
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
          return 1";
    let instance = format!("\"instance\":\"{}\"", record.instance);
    let done: i64 = redis::cmd("EVAL")
        .arg(SCRIPT)
        .arg(1)
        .arg(key(&record.id))
        .arg(serde_json::to_string(record)?)
        .arg(instance)
        .arg(LEASE.as_millis() as u64)
        .query_async(conn)
        .await?;
    Ok(done == 1)
}

async fn read(conn: &mut ConnectionManager, id: &str) -> Result<Option<NodeRecord>> {
    let value: Option<String> = conn.get(key(id)).await?;
    Ok(value.and_then(|v| parse(id, &v)))
}

/// A record as stored, or `None` (logged) when it does not parse: another
/// program's key, or a newer Salon's.
fn parse(id: &str, value: &str) -> Option<NodeRecord> {
    match serde_json::from_str(value) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(key = %key(id), error = %e, "ignoring a node record that does not parse");
            None
        }
    }
}

/// Every live node, by id.
pub async fn list(conn: &mut ConnectionManager) -> Result<Vec<NodeRecord>> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{KEY_PREFIX}*"))
            .arg("COUNT")
            .arg(100)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut nodes = Vec::new();
    for k in keys {
        let id = k.trim_start_matches(KEY_PREFIX);
        if let Some(record) = read(conn, id).await? {
            nodes.push(record);
        }
    }
    Ok(nodes)
}

/// A fresh record for this process.
pub fn record(id: &str, public_url: &str, media: &str) -> NodeRecord {
    let instance: [u8; 8] = rand::random();
    let now = now_millis();
    NodeRecord {
        id: id.to_owned(),
        instance: instance.iter().map(|b| format!("{b:02x}")).collect(),
        public_url: public_url.to_owned(),
        media: media.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started: now,
        renewed: now,
        rooms: 0,
        participants: 0,
        packets_per_second: 0,
        cpu: 0.0,
        draining: false,
    }
}

/// Declare nodes dead and fail their rooms, every [`SWEEP`] until `stop`.
pub async fn sweep(
    mut conn: ConnectionManager,
    store: salon_store::Store,
    me: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(SWEEP);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Since when each node with rooms has been missing from the registry.
    let mut missing: std::collections::HashMap<String, tokio::time::Instant> =
        std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        // Without an answer from Redis nobody can be declared dead.
        let live = match tokio::time::timeout(TIMEOUT, list(&mut conn)).await {
            Ok(Ok(nodes)) => nodes,
            _ => {
                missing.clear();
                continue;
            }
        };
        let with_rooms = match store.nodes_with_rooms().await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read which nodes run rooms");
                continue;
            }
        };
        let now = tokio::time::Instant::now();
        missing.retain(|node, _| with_rooms.iter().any(|(n, _)| n == node));
        for (node, rooms) in with_rooms {
            if node == me || live.iter().any(|n| n.id == node) {
                missing.remove(&node);
                continue;
            }
            let since = *missing.entry(node.clone()).or_insert(now);
            if now.duration_since(since) < GRACE {
                continue;
            }
            if !claim(&mut conn, &node, &me).await {
                continue;
            }
            match store.fail_node(&node, salon_store::Timestamp::now()).await {
                Ok(failed) => tracing::warn!(
                    node = %node,
                    rooms = failed.rooms,
                    participants = failed.participants,
                    expected_rooms = rooms,
                    "node is dead (its lease in Redis ran out): its rooms are failed"
                ),
                Err(e) => {
                    tracing::error!(node = %node, error = %e, "cannot fail a dead node's rooms")
                }
            }
            missing.remove(&node);
        }
    }
}

/// Whether this node is the one to fail `node`'s rooms now (one sweeper at
/// a time; the claim lapses by itself).
async fn claim(conn: &mut ConnectionManager, node: &str, me: &str) -> bool {
    let taken: Result<Option<String>, _> = redis::cmd("SET")
        .arg(format!("salon:failing:{node}"))
        .arg(me)
        .arg("NX")
        .arg("PX")
        .arg(LEASE.as_millis() as u64)
        .query_async(conn)
        .await;
    matches!(taken, Ok(Some(_)))
}

/// This process's CPU time (user + system) in seconds, from `/proc`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// Whether this node is draining, and a wake-up for the renewal task.
#[derive(Debug, Default)]
pub struct Draining {
    on: AtomicBool,
    started: tokio::sync::Notify,
}

impl Draining {
    pub fn start(&self) {
        self.on.store(true, Ordering::Relaxed);
        self.started.notify_one();
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

/// How long a command sent to another node may take to be answered.
pub const BUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands from other nodes run at once here, at most this many.
const BUS_CONCURRENCY: usize = 64;
const BUS_PREFIX: &str = "salon:bus:";
/// Larger bus messages are dropped: the largest command carries a REST
/// request's parameters, whose body is limited to 64 KiB.
const BUS_MAX_MESSAGE: usize = 256 * 1024;

fn bus_channel(node: &str) -> String {
    format!("{BUS_PREFIX}{node}")
}

/// A message on the bus.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Envelope {
    Request {
        id: String,
        from: String,
        command: salon_server::cluster::Command,
    },
    Reply {
        id: String,
        outcome: salon_server::cluster::Outcome,
    },
}

type Pending = Arc<Mutex<HashMap<String, tokio::sync::oneshot::Sender<Outcome>>>>;

/// The cluster on Redis, as the server uses it.
pub struct RedisCluster {
    me: String,
    conn: ConnectionManager,
    store: salon_store::Store,
    draining: Arc<Draining>,
    pending: Pending,
}

impl RedisCluster {
    pub fn new(
        me: &str,
        conn: ConnectionManager,
        store: salon_store::Store,
        draining: Arc<Draining>,
    ) -> Self {
        Self {
            me: me.to_owned(),
            conn,
            store,
            draining,
            pending: Arc::default(),
        }
    }

    async fn place_now(&self) -> Result<NodeInfo, ClusterError> {
        let mut conn = self.conn.clone();
        let nodes = tokio::time::timeout(TIMEOUT, list(&mut conn))
            .await
            .map_err(|_| ClusterError::Unreachable(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| ClusterError::Unreachable(e.to_string()))?;
        let rooms: HashMap<String, u64> = self
            .store
            .nodes_with_rooms()
            .await
            .map_err(|e| ClusterError::Database(e.to_string()))?
            .into_iter()
            .collect();
        // This node knows it drains before its record says so.
        let draining_here = self.draining.is_on().then_some(self.me.as_str());
        match choose(&nodes, &rooms, draining_here) {
            Some(node) => Ok(NodeInfo {
                id: node.id.clone(),
                public_url: node.public_url.clone(),
            }),
            None if nodes.is_empty() => Err(ClusterError::Unreachable(
                "no node is registered (Redis lost its data?)".into(),
            )),
            None => Err(ClusterError::NoNode),
        }
    }

    async fn find_now(&self, node: &str) -> Result<Option<NodeInfo>, ClusterError> {
        let mut conn = self.conn.clone();
        let record = tokio::time::timeout(TIMEOUT, read(&mut conn, node))
            .await
            .map_err(|_| ClusterError::Unreachable(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| ClusterError::Unreachable(e.to_string()))?;
        Ok(record.map(|r| NodeInfo {
            id: r.id,
            public_url: r.public_url,
        }))
    }

    async fn send_now(
        &self,
        node: &str,
        command: salon_server::cluster::Command,
    ) -> Result<Outcome, ClusterError> {
        let id = {
            let bytes: [u8; 12] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let request = Envelope::Request {
            id: id.clone(),
            from: self.me.clone(),
            command,
        };
        let text = serde_json::to_string(&request)
            .map_err(|e| ClusterError::Unreachable(format!("cannot encode a command: {e}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        let unavailable = |detail: String| ClusterError::NodeUnavailable {
            node: node.to_owned(),
            detail,
        };
        let mut conn = self.conn.clone();
        let published: Result<Result<i64, _>, _> =
            tokio::time::timeout(TIMEOUT, conn.publish(bus_channel(node), text)).await;
        let result = match published {
            Ok(Ok(0)) => Err(unavailable("it does not listen on the bus".into())),
            Ok(Ok(_)) => match tokio::time::timeout(BUS_TIMEOUT, rx).await {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(_)) => Err(unavailable("the bus closed".into())),
                Err(_) => Err(unavailable(format!("no answer within {BUS_TIMEOUT:?}"))),
            },
            Ok(Err(e)) => Err(ClusterError::Unreachable(e.to_string())),
            Err(_) => Err(ClusterError::Unreachable(format!(
                "no answer within {TIMEOUT:?}"
            ))),
        };
        lock(&self.pending).remove(&id);
        result
    }
}

/// The node for a new room: the least loaded of `nodes` (rooms counted in
/// the database, `rooms`) that is not draining, ties to the smaller id.
fn choose<'a>(
    nodes: &'a [NodeRecord],
    rooms: &HashMap<String, u64>,
    also_draining: Option<&str>,
) -> Option<&'a NodeRecord> {
    nodes
        .iter()
        .filter(|n| !(n.draining || also_draining == Some(n.id.as_str())))
        .map(|n| (n.load(rooms.get(&n.id).copied().unwrap_or(0)), n))
        .min_by(|(a, x), (b, y)| a.total_cmp(b).then_with(|| x.id.cmp(&y.id)))
        .map(|(_, n)| n)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster for RedisCluster {
    fn node(&self) -> &str {
        &self.me
    }

    fn draining(&self) -> bool {
        self.draining.is_on()
    }

    fn place(&self) -> BoxFuture<'_, Result<NodeInfo, ClusterError>> {
        Box::pin(self.place_now())
    }

    fn find<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<Option<NodeInfo>, ClusterError>> {
        Box::pin(self.find_now(node))
    }

    fn send<'a>(
        &'a self,
        node: &'a str,
        command: salon_server::cluster::Command,
    ) -> BoxFuture<'a, Result<Outcome, ClusterError>> {
        Box::pin(self.send_now(node, command))
    }

    fn keep<'a>(&'a self, key: &'a str, value: Option<String>, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = kept_key(key);
            let done: Result<Result<(), redis::RedisError>, _> = match value {
                Some(value) => {
                    let seconds = ttl.as_secs().max(1);
                    tokio::time::timeout(TIMEOUT, conn.set_ex(&key, value, seconds)).await
                }
                None => tokio::time::timeout(TIMEOUT, conn.del(&key)).await,
            };
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(key, error = %e, "cannot keep a value in Redis"),
                Err(_) => tracing::warn!(key, "cannot keep a value in Redis: no answer"),
            }
        })
    }

    fn kept<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let read: Result<Result<Option<String>, _>, _> =
                tokio::time::timeout(TIMEOUT, conn.get(kept_key(key))).await;
            read.ok().and_then(Result::ok).flatten()
        })
    }
}

/// Where [`Cluster::keep`] keeps `key`.
fn kept_key(key: &str) -> String {
    format!("salon:kept:{key}")
}

/// Listen on this node's bus channel until `stop`: run the commands other
/// nodes send (on `state`) and hand replies to the requests waiting here.
/// Reconnects by itself when Redis goes away.
pub async fn serve_bus(
    client: redis::Client,
    publisher: ConnectionManager,
    cluster: Arc<RedisCluster>,
    state: salon_server::AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use futures_util::StreamExt;
    let channel = bus_channel(&cluster.me);
    let running = Arc::new(tokio::sync::Semaphore::new(BUS_CONCURRENCY));
    let mut reachable = true;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = tokio::select! {
            s = tokio::time::timeout(TIMEOUT, subscribed) => match s {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(e)) => {
                    if reachable {
                        tracing::warn!(error = %e, "cannot listen on the cluster's bus; trying again");
                    }
                    reachable = false;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        _ = stop.changed() => return,
                    }
                }
                Err(_) => {
                    reachable = false;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if !reachable {
            tracing::info!(channel, "listening on the cluster's bus again");
        }
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                m = messages.next() => m,
                _ = stop.changed() => return,
            };
            let Some(message) = message else {
                tracing::warn!("the cluster's bus connection closed; reconnecting");
                reachable = false;
                break;
            };
            let payload: String = match message.get_payload() {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a bus message that is not text");
                    continue;
                }
            };
            if payload.len() > BUS_MAX_MESSAGE {
                tracing::warn!(
                    bytes = payload.len(),
                    "dropping a bus message over {BUS_MAX_MESSAGE} bytes"
                );
                continue;
            }
            match serde_json::from_str::<Envelope>(&payload) {
                Ok(Envelope::Reply { id, outcome }) => {
                    if let Some(waiting) = lock(&cluster.pending).remove(&id) {
                        let _ = waiting.send(outcome);
                    }
                }
                Ok(Envelope::Request { id, from, command }) => {
                    let Ok(permit) = running.clone().try_acquire_owned() else {
                        tracing::warn!(
                            from,
                            "too many commands from other nodes at once; refusing one"
                        );
                        let outcome =
                            Outcome::from(salon_server::rest::error::ApiError::unavailable(
                                "The room's node is busy; try again",
                            ));
                        reply(publisher.clone(), &from, id, outcome).await;
                        continue;
                    };
                    let state = state.clone();
                    let publisher = publisher.clone();
                    tokio::spawn(async move {
                        tracing::info!(from, command = command.kind(), "command from another node");
                        let outcome = salon_server::cluster::execute(&state, command).await;
                        reply(publisher, &from, id, outcome).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    let shown: String = payload.chars().take(120).collect();
                    tracing::warn!(error = %e, message = shown, "dropping a bus message that does not parse");
                }
            }
        }
    }
}

async fn reply(mut publisher: ConnectionManager, to: &str, id: String, outcome: Outcome) {
    let text = match serde_json::to_string(&Envelope::Reply { id, outcome }) {
        Ok(text) => text,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a reply");
            return;
        }
    };
    let sent: Result<Result<i64, _>, _> =
        tokio::time::timeout(TIMEOUT, publisher.publish(bus_channel(to), text)).await;
    if !matches!(sent, Ok(Ok(_))) {
        tracing::warn!(to, "cannot send a reply on the cluster's bus");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: u64, cpu: f64) -> NodeRecord {
        NodeRecord {
            participants,
            cpu,
            ..record(id, "http://x", "127.0.0.1:1")
        }
    }

    #[test]
    fn load_counts_rooms_first_and_a_busy_machine_too() {
        let idle = node("a", 0, 0.0);
        assert!(idle.load(1) > idle.load(0));
        // A few participants weigh less than a room…
        assert!(node("a", 3, 0.0).load(0) < idle.load(1));
        // …CPU below half the machine is noise…
        assert_eq!(node("a", 0, 0.4).load(2), idle.load(2));
        // …and a node using its whole machine weighs more than several rooms.
        assert!(node("a", 0, 1.0).load(0) > idle.load(4));
    }

    #[test]
    fn placement_takes_the_least_loaded_node_that_is_not_draining() {
        let nodes = vec![node("a", 0, 0.0), node("b", 0, 0.0), node("c", 0, 0.0)];
        let rooms: HashMap<String, u64> = [("a".to_owned(), 2), ("b".to_owned(), 1)].into();
        assert_eq!(
            choose(&nodes, &rooms, None).map(|n| n.id.as_str()),
            Some("c")
        );
        // Ties go to the smaller id.
        let even: HashMap<String, u64> = HashMap::new();
        assert_eq!(
            choose(&nodes, &even, None).map(|n| n.id.as_str()),
            Some("a")
        );
        // A draining node is skipped, by its record or by its own word.
        let mut draining = nodes.clone();
        draining[2].draining = true;
        assert_eq!(
            choose(&draining, &rooms, None).map(|n| n.id.as_str()),
            Some("b")
        );
        assert_eq!(
            choose(&nodes, &rooms, Some("c")).map(|n| n.id.as_str()),
            Some("b")
        );
        // Participants and a busy CPU count too.
        let busy = vec![node("a", 8, 0.0), node("b", 0, 0.95)];
        assert_eq!(choose(&busy, &even, None).map(|n| n.id.as_str()), Some("a"));
        let all_draining: Vec<NodeRecord> = draining.into_iter().filter(|n| n.draining).collect();
        assert!(choose(&all_draining, &even, None).is_none());
    }

    #[test]
    fn bus_messages_that_do_not_parse_are_refused() {
        for bad in [
            "",
            "{}",
            r#"{"id":"1"}"#,
            r#"{"id":"1","from":"a","command":{"type":"dance"}}"#,
        ] {
            assert!(serde_json::from_str::<Envelope>(bad).is_err(), "{bad}");
        }
        let good = r#"{"id":"1","from":"a","command":{"type":"complete_room","room":"RM0123456789abcdef0123456789abcdef"}}"#;
        assert!(matches!(
            serde_json::from_str::<Envelope>(good),
            Ok(Envelope::Request { .. })
        ));
    }
}

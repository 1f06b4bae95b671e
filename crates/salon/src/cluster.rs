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
//! Not here yet (issue #14): placement on the least-loaded node, room →
//! node records, cluster-wide unique-name claims, the message bus and
//! signaling to a room on another node.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
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
/// A round trip to Redis that takes longer than this failed.
const TIMEOUT: Duration = Duration::from_secs(2);
const KEY_PREFIX: &str = "salon:node:";

/// What a node says about itself in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// A connection to Redis that reconnects by itself. The first connection is
/// made here, so an unreachable Redis is an error at start.
pub async fn connect(url: &str) -> Result<ConnectionManager> {
    let shown = crate::bootstrap::redacted(url);
    let client = redis::Client::open(url).with_context(|| format!("{shown} is not a Redis URL"))?;
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
    load: impl Fn() -> (u64, u64),
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(RENEW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => break,
        }
        record.renewed = now_millis();
        (record.rooms, record.participants) = load();
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

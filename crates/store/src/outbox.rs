//! The outbox of status callbacks: requests to make, kept until they are
//! delivered or given up on.
//!
//! Callbacks enter in the transaction that records the event behind them
//! (see `callbacks`), so a callback exists if and only if its event was
//! recorded, even across a crash. The sender in `salon-server` reads them
//! back here and reports what became of each one.
//!
//! Callbacks form **streams** (one per room), numbered from 0 by
//! `sequence`. Only the oldest callback of a stream, its head, has a
//! `next_attempt`: the others wait behind it. So the sender delivers each
//! stream in order by taking due heads only, and a receiver that refuses
//! one callback holds back the rest of its room, not other rooms.
//!
//! Several nodes of a shared database each run a sender over the one
//! outbox. A head is taken by leasing it, which succeeds only if its
//! `next_attempt` is still what the sender read ([`Store::lease_callback`]),
//! so one node delivers it; a lease names its node, and a node starting
//! again re-arms only its own ([`Store::rearm_callbacks`]).

use salon_room::CallbackMethod;
use salon_sid::AccountSid;
use sqlx::{Any, Row, Transaction};
use tokio::sync::Notify;

use crate::{Result, Store, StoreError, Timestamp};

/// A callback waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCallback {
    /// The stream it belongs to: its room's SID.
    pub stream: String,
    /// Its place in the stream, from 0 (for rooms, the `SequenceNumber`).
    pub sequence: i64,
    /// The account whose auth token signs it.
    pub account: AccountSid,
    /// The `StatusCallbackEvent`, e.g. `participant-connected`.
    pub event: String,
    pub url: String,
    pub method: CallbackMethod,
    /// The parameters, in the order they were written.
    pub params: Vec<(String, String)>,
    /// When the event happened.
    pub created: Timestamp,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was due, as read: what [`Store::lease_callback`] compares.
    pub due: Timestamp,
}

/// How much is waiting, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    pub callbacks: u64,
    /// When the oldest waiting callback's event happened.
    pub oldest: Option<Timestamp>,
}

/// A callback to write, before it has a place in its stream.
pub(crate) struct NewCallback<'a> {
    pub stream: &'a str,
    pub account: AccountSid,
    pub event: &'a str,
    pub url: &'a str,
    pub method: CallbackMethod,
    pub params: &'a [(&'static str, String)],
}

/// Wakes the sender when callbacks were committed. One permit is kept when
/// nobody waits, so a commit made while the sender is busy is not missed.
#[derive(Debug, Default)]
pub(crate) struct Doorbell(Notify);

impl Doorbell {
    pub fn ring(&self) {
        self.0.notify_one();
    }
}

/// The next place in `stream`, creating the stream at 0.
pub(crate) async fn next_sequence(tx: &mut Transaction<'_, Any>, stream: &str) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO status_callback_streams (sid, next_sequence) VALUES ($1, 1)
         ON CONFLICT (sid) DO UPDATE SET next_sequence = status_callback_streams.next_sequence + 1
         RETURNING next_sequence - 1 AS sequence",
    )
    .bind(stream)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("sequence")?)
}

/// Append `callback` to its stream at `sequence`. It is due at once if its
/// stream was empty; otherwise it waits for the ones before it.
pub(crate) async fn push(
    tx: &mut Transaction<'_, Any>,
    callback: &NewCallback<'_>,
    sequence: i64,
    at: Timestamp,
) -> Result<()> {
    let params = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(callback.params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    sqlx::query(
        "INSERT INTO status_callbacks
         (stream, sequence, account_sid, event, url, method, params, date_created, attempts, next_attempt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0,
                 CASE WHEN EXISTS (SELECT 1 FROM status_callbacks WHERE stream = $1) THEN NULL ELSE $8 END)",
    )
    .bind(callback.stream)
    .bind(sequence)
    .bind(callback.account.as_str())
    .bind(callback.event)
    .bind(callback.url)
    .bind(callback.method.as_str())
    .bind(params)
    .bind(at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Wait until callbacks were committed since the last call (or since
    /// the store opened).
    pub async fn callbacks_enqueued(&self) {
        self.doorbell.0.notified().await;
    }

    /// Heads of streams due at `now`, longest-waiting first, at most `limit`.
    pub async fn due_callbacks(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxCallback>> {
        let rows = sqlx::query(
            "SELECT stream, sequence, account_sid, event, url, method, params, date_created,
                    attempts, last_error, next_attempt
             FROM status_callbacks
             WHERE next_attempt IS NOT NULL AND next_attempt <= $1
             ORDER BY next_attempt, stream
             LIMIT $2",
        )
        .bind(now.millis())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// When the next head is due, if any callback waits at all.
    pub async fn next_callback_due(&self) -> Result<Option<Timestamp>> {
        let (at,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(next_attempt) FROM status_callbacks WHERE next_attempt IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(at.map(Timestamp::from_millis))
    }

    /// Remove a callback that was delivered or given up on; the next one of
    /// its stream becomes due at `now`.
    pub async fn remove_callback(&self, stream: &str, sequence: i64, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let removed =
            sqlx::query("DELETE FROM status_callbacks WHERE stream = $1 AND sequence = $2")
                .bind(stream)
                .bind(sequence)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if removed == 0 {
            // Removed already (by another node's sender): its successor's
            // state, a lease perhaps, is not this call's to touch.
            return Ok(());
        }
        sqlx::query(
            "UPDATE status_callbacks SET next_attempt = $2
             WHERE stream = $1
               AND sequence = (SELECT MIN(sequence) FROM status_callbacks WHERE stream = $1)",
        )
        .bind(stream)
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Take a head for delivery by `node` until `until`: it is not due
    /// again before then, unless `node` starts again and re-arms it
    /// ([`Store::rearm_callbacks`]). Only if it is still due when it was
    /// read (`callback.due`): false when another sender took it first.
    pub async fn lease_callback(
        &self,
        callback: &OutboxCallback,
        until: Timestamp,
        node: &str,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE status_callbacks SET next_attempt = $4, lease_node = $5
             WHERE stream = $1 AND sequence = $2 AND next_attempt = $3",
        )
        .bind(&callback.stream)
        .bind(callback.sequence)
        .bind(callback.due.millis())
        .bind(until.millis())
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Count a failed attempt and schedule the next one.
    pub async fn retry_callback(
        &self,
        stream: &str,
        sequence: i64,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE status_callbacks
             SET attempts = attempts + 1, next_attempt = $3, last_error = $4, lease_node = NULL
             WHERE stream = $1 AND sequence = $2",
        )
        .bind(stream)
        .bind(sequence)
        .bind(next_attempt.millis())
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Make every waiting head due at `now` when `node` starts: whatever
    /// was backing off is tried again at once (attempts already made still
    /// count), and so is what `node` had leased before it stopped; a lease
    /// another node holds is left to it (it runs out by itself if that node
    /// is gone). Returns how many heads were moved.
    pub async fn rearm_callbacks(&self, now: Timestamp, node: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE status_callbacks SET next_attempt = $1, lease_node = NULL
             WHERE next_attempt > $1 AND (lease_node IS NULL OR lease_node = $2)",
        )
        .bind(now.millis())
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// How many callbacks wait, and since when.
    pub async fn callback_backlog(&self) -> Result<OutboxBacklog> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM status_callbacks")
            .fetch_one(&self.pool)
            .await?;
        // A stream's head is its oldest callback, so the oldest of all is
        // among the heads, which the index lists.
        let (oldest,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(date_created) FROM status_callbacks WHERE next_attempt IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxBacklog {
            callbacks: u64::try_from(count).unwrap_or(0),
            oldest: oldest.map(Timestamp::from_millis),
        })
    }
}

fn decode(row: &sqlx::any::AnyRow) -> Result<OutboxCallback> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "status_callbacks",
        detail,
    };
    let account: String = row.try_get("account_sid")?;
    let method: String = row.try_get("method")?;
    let params: String = row.try_get("params")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(OutboxCallback {
        stream: row.try_get("stream")?,
        sequence: row.try_get("sequence")?,
        account: account
            .parse()
            .map_err(|_| corrupt(format!("account_sid {account:?}")))?,
        event: row.try_get("event")?,
        url: row.try_get("url")?,
        method: match method.as_str() {
            "GET" => CallbackMethod::Get,
            "POST" => CallbackMethod::Post,
            other => return Err(corrupt(format!("method {other:?}"))),
        },
        params: url::form_urlencoded::parse(params.as_bytes())
            .into_owned()
            .collect(),
        created: Timestamp::from_millis(row.try_get("date_created")?),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
        due: Timestamp::from_millis(row.try_get::<Option<i64>, _>("next_attempt")?.unwrap_or(0)),
    })
}

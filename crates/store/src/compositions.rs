//! Compositions: the rows the composition jobs write and the REST API
//! reads, and their `composition-*` status callbacks (a stream of their
//! own in the outbox, keyed by the composition's SID).

use salon_room::CallbackMethod;
use salon_sid::{AccountSid, CompositionSid, RoomSid};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use crate::callbacks::{CallbackEvent, twilio_timestamp};
use crate::outbox::{self, NewCallback};
use crate::queries::{Order, Sql, created_between, page};
use crate::records::{decode_err, optional_timestamp, sid, timestamp};
use crate::{Cursor, Page, PageRequest, Result, Store, Timestamp};

/// A composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositionRecord {
    pub sid: CompositionSid,
    pub account_sid: AccountSid,
    pub room_sid: RoomSid,
    /// `enqueued`, `processing`, `completed`, `deleted` or `failed`.
    pub status: String,
    pub format: String,
    pub resolution: String,
    pub video_layout: String,
    pub audio_sources: String,
    pub trim: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub progress: u32,
    /// Relative to the compositions directory.
    pub path: String,
    pub size: u64,
    pub duration_ms: u64,
    pub failure: Option<String>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub date_completed: Option<Timestamp>,
}

impl FromRow<'_, AnyRow> for CompositionRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let progress: i64 = row.try_get("progress")?;
        let size: i64 = row.try_get("size")?;
        let duration: i64 = row.try_get("duration")?;
        Ok(Self {
            sid: sid(row, "sid")?,
            account_sid: sid(row, "account_sid")?,
            room_sid: sid(row, "room_sid")?,
            status: row.try_get("status")?,
            format: row.try_get("format")?,
            resolution: row.try_get("resolution")?,
            video_layout: row.try_get("video_layout")?,
            audio_sources: row.try_get("audio_sources")?,
            trim: row.try_get::<i64, _>("trim")? != 0,
            status_callback: row.try_get("status_callback")?,
            status_callback_method: row.try_get("status_callback_method")?,
            progress: u32::try_from(progress).map_err(|e| decode_err("progress", e))?,
            path: row.try_get("path")?,
            size: u64::try_from(size).unwrap_or(0),
            duration_ms: u64::try_from(duration).unwrap_or(0),
            failure: row.try_get("failure")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
            date_completed: optional_timestamp(row, "date_completed")?,
        })
    }
}

/// Filters of `GET /v1/Compositions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompositionFilter {
    pub status: Option<String>,
    pub room_sid: Option<RoomSid>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

impl Store {
    /// Write a new `enqueued` composition (and `composition-enqueued`).
    pub async fn insert_composition(&self, c: &CompositionRecord) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO compositions (sid, account_sid, room_sid, status, format, resolution,
                video_layout, audio_sources, trim, status_callback, status_callback_method,
                progress, path, size, duration, date_created, date_updated, node)
             VALUES ($1, $2, $3, 'enqueued', $4, $5, $6, $7, $8, $9, $10, 0, $11, 0, 0, $12, $12, $13)",
        )
        .bind(c.sid.as_str())
        .bind(c.account_sid.as_str())
        .bind(c.room_sid.as_str())
        .bind(&c.format)
        .bind(&c.resolution)
        .bind(&c.video_layout)
        .bind(&c.audio_sources)
        .bind(i64::from(c.trim))
        .bind(&c.status_callback)
        .bind(&c.status_callback_method)
        .bind(&c.path)
        .bind(c.date_created.millis())
        .bind(self.node())
        .execute(&mut *tx)
        .await?;
        let written = composition_callback(
            &mut tx,
            c.sid,
            CallbackEvent::CompositionEnqueued,
            None,
            c.date_created,
        )
        .await?;
        tx.commit().await?;
        if written {
            self.doorbell.ring();
        }
        Ok(())
    }

    /// Change a composition's status (and what goes with it), sending
    /// `event` if the composition has a status callback. `from` guards the
    /// change: it happens only from these statuses.
    #[allow(clippy::too_many_arguments)]
    pub async fn composition_change(
        &self,
        sid: CompositionSid,
        from: &[&str],
        status: &str,
        progress: u32,
        done: Option<(u64, u64)>,
        failure: Option<&str>,
        event: Option<CallbackEvent>,
        at: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // The pace since the last change (its progress and time), for a
        // progress callback's `SecondsRemaining`.
        let before: Option<(i64, i64)> = if event == Some(CallbackEvent::CompositionProgress) {
            sqlx::query_as("SELECT progress, date_updated FROM compositions WHERE sid = $1")
                .bind(sid.as_str())
                .fetch_optional(&mut *tx)
                .await?
        } else {
            None
        };
        let mut q = Sql::new("UPDATE compositions SET status = ");
        q.push_bind(status.to_owned())
            .push(", progress = ")
            .push_bind(i64::from(progress))
            .push(", date_updated = ")
            .push_bind(at.millis());
        if let Some((duration, size)) = done {
            q.push(", duration = ")
                .push_bind(i64::try_from(duration).unwrap_or(i64::MAX))
                .push(", size = ")
                .push_bind(i64::try_from(size).unwrap_or(i64::MAX))
                .push(", date_completed = ")
                .push_bind(at.millis());
        }
        if let Some(failure) = failure {
            q.push(", failure = ").push_bind(failure.to_owned());
        }
        q.push(" WHERE sid = ")
            .push_bind(sid.as_str().to_owned())
            .push(" AND status IN (");
        for (i, f) in from.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push_bind((*f).to_owned());
        }
        q.push(")");
        let changed = q.execute(&mut *tx).await? > 0;
        let mut written = false;
        if changed && let Some(event) = event {
            let remaining = before.and_then(|(done, since)| {
                seconds_remaining(done, since, i64::from(progress), at.millis())
            });
            written = composition_callback(&mut tx, sid, event, remaining, at).await?;
        }
        tx.commit().await?;
        if written {
            self.doorbell.ring();
        }
        Ok(changed)
    }

    pub async fn composition(&self, sid: CompositionSid) -> Result<Option<CompositionRecord>> {
        Ok(sqlx::query_as("SELECT * FROM compositions WHERE sid = $1")
            .bind(sid.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The node that runs (or ran) composition `sid`, whose disk holds its
    /// file.
    pub async fn composition_node(&self, sid: CompositionSid) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT node FROM compositions WHERE sid = $1")
                .bind(sid.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// This node's compositions a previous process left `enqueued` or
    /// `processing` (its job queue died with it), oldest first, at most
    /// `limit`.
    pub async fn unfinished_compositions(&self, limit: u32) -> Result<Vec<CompositionRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM compositions WHERE status IN ('enqueued', 'processing') AND node = $1
             ORDER BY date_created, sid LIMIT $2",
        )
        .bind(self.node())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Compositions matching `filter`, newest first (deleted ones only when
    /// asked for by status).
    pub async fn compositions(
        &self,
        filter: &CompositionFilter,
        request: &PageRequest,
    ) -> Result<Page<CompositionRecord>> {
        let mut q = Sql::new("SELECT * FROM compositions WHERE 1 = 1");
        match &filter.status {
            Some(status) => {
                q.push(" AND status = ").push_bind(status.clone());
            }
            None => {
                q.push(" AND status <> 'deleted'");
            }
        }
        if let Some(room) = filter.room_sid {
            q.push(" AND room_sid = ").push_bind(room.to_string());
        }
        created_between(&mut q, filter.created_after, filter.created_before);
        page(
            self,
            q,
            "date_created",
            "sid",
            Order::NewestFirst,
            request,
            |r: &CompositionRecord| Cursor {
                date_created: r.date_created,
                sid: r.sid.to_string(),
            },
        )
        .await
    }
}

/// How long a composition has left, in whole seconds, at the pace it went
/// from `done_before` percent at `since` to `done_now` percent at `now`
/// (milliseconds); `None` without progress to go by.
fn seconds_remaining(done_before: i64, since: i64, done_now: i64, now: i64) -> Option<u64> {
    let step = done_now - done_before;
    if step <= 0 || now < since {
        return None;
    }
    let ms = u64::try_from((now - since) * (100 - done_now).max(0) / step).ok()?;
    Some(ms.div_ceil(1000))
}

/// Write a `composition-*` callback if the composition has a status
/// callback. Its stream is the composition's SID. `remaining` is a
/// progress callback's estimate of the seconds left.
async fn composition_callback(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sid: CompositionSid,
    event: CallbackEvent,
    remaining: Option<u64>,
    at: Timestamp,
) -> Result<bool> {
    let c: CompositionRecord = sqlx::query_as("SELECT * FROM compositions WHERE sid = $1")
        .bind(sid.as_str())
        .fetch_one(&mut **tx)
        .await?;
    let Some(url) = &c.status_callback else {
        return Ok(false);
    };
    let stream = c.sid.as_str();
    let sequence = outbox::next_sequence(tx, stream).await?;
    let mut params = vec![
        ("AccountSid", c.account_sid.to_string()),
        ("CompositionSid", c.sid.to_string()),
        ("CompositionUri", format!("/v1/Compositions/{}", c.sid)),
        ("RoomSid", c.room_sid.to_string()),
        ("StatusCallbackEvent", event.as_str().to_owned()),
        ("Timestamp", twilio_timestamp(at)),
        ("SequenceNumber", sequence.to_string()),
    ];
    match event {
        CallbackEvent::CompositionProgress => {
            params.push(("PercentageDone", c.progress.to_string()));
            if let Some(seconds) = remaining {
                params.push(("SecondsRemaining", seconds.to_string()));
            }
        }
        CallbackEvent::CompositionAvailable => {
            params.push(("Duration", (c.duration_ms / 1000).to_string()));
            params.push(("Size", c.size.to_string()));
            params.push(("MediaUri", format!("/v1/Compositions/{}/Media", c.sid)));
        }
        CallbackEvent::CompositionFailed => {
            params.push(("FailedOperation", c.failure.clone().unwrap_or_default()));
        }
        _ => {}
    }
    let method = if c.status_callback_method == "GET" {
        CallbackMethod::Get
    } else {
        CallbackMethod::Post
    };
    outbox::push(
        tx,
        &NewCallback {
            stream,
            account: c.account_sid,
            event: event.as_str(),
            url,
            method,
            params: &params,
        },
        sequence,
        at,
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::seconds_remaining;

    #[test]
    fn the_time_left_follows_the_pace_of_the_last_step() {
        // 0 % to 25 % in 10 s: 75 % more takes 30 s.
        assert_eq!(seconds_remaining(0, 1_000, 25, 11_000), Some(30));
        // 25 % to 50 % in 4.1 s: rounded up.
        assert_eq!(seconds_remaining(25, 0, 50, 4_100), Some(9));
        assert_eq!(seconds_remaining(99, 0, 100, 5_000), Some(0));
        // No progress, or a clock that went back: no estimate.
        assert_eq!(seconds_remaining(50, 0, 50, 5_000), None);
        assert_eq!(seconds_remaining(25, 9_000, 50, 5_000), None);
    }
}

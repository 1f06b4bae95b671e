//! Recordings and recording rules: what the recording controller writes and
//! the REST API reads.
//!
//! A recording row is written `processing` when the media server is told to
//! record a track, and moves to `completed` or `failed` once, when the
//! media server reports. `recording-*` status callbacks go to the room's
//! `StatusCallback` in the same transaction as the change that causes them.

use salon_sid::{AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use crate::callbacks::{self, CallbackEvent};
use crate::queries::{Order, Sql, created_between, page};
use crate::records::{decode_err, optional_timestamp, sid, timestamp};
use crate::{Cursor, Page, PageRequest, Result, Store, Timestamp};

/// A recording's status, as Twilio spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordingStatus {
    Processing,
    Completed,
    Failed,
    Deleted,
}

impl RecordingStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Processing => "processing",
            RecordingStatus::Completed => "completed",
            RecordingStatus::Failed => "failed",
            RecordingStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "processing" => RecordingStatus::Processing,
            "completed" => RecordingStatus::Completed,
            "failed" => RecordingStatus::Failed,
            "deleted" => RecordingStatus::Deleted,
            _ => return None,
        })
    }
}

/// A recorded track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRecord {
    pub sid: RecordingSid,
    pub account_sid: AccountSid,
    pub room_sid: RoomSid,
    pub participant_sid: ParticipantSid,
    pub track_sid: TrackSid,
    pub track_name: String,
    /// `audio` or `video`.
    pub kind: String,
    pub status: RecordingStatus,
    pub codec: Option<String>,
    pub container_format: String,
    /// Relative to the recordings directory.
    pub path: String,
    pub size: u64,
    pub duration_ms: u64,
    /// When the first frame arrived.
    pub start_time: Option<Timestamp>,
    pub failure: Option<String>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl FromRow<'_, AnyRow> for RecordingRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let size: i64 = row.try_get("size")?;
        let duration: i64 = row.try_get("duration")?;
        Ok(Self {
            sid: sid(row, "sid")?,
            account_sid: sid(row, "account_sid")?,
            room_sid: sid(row, "room_sid")?,
            participant_sid: sid(row, "participant_sid")?,
            track_sid: sid(row, "track_sid")?,
            track_name: row.try_get("track_name")?,
            kind: row.try_get("kind")?,
            status: RecordingStatus::parse(&status)
                .ok_or_else(|| decode_err("status", status.clone()))?,
            codec: row.try_get("codec")?,
            container_format: row.try_get("container_format")?,
            path: row.try_get("path")?,
            size: u64::try_from(size).unwrap_or(0),
            duration_ms: u64::try_from(duration).unwrap_or(0),
            start_time: optional_timestamp(row, "start_time")?,
            failure: row.try_get("failure")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
        })
    }
}

/// Filters of `GET /v1/Recordings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    pub status: Option<RecordingStatus>,
    pub source_sid: Option<TrackSid>,
    /// `GroupingSid`: a room or participant SID.
    pub grouping_sid: Option<String>,
    pub room_sid: Option<RoomSid>,
    pub media_type: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

/// What the controller knows when it starts a recording.
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    pub sid: RecordingSid,
    pub account_sid: AccountSid,
    pub room_sid: RoomSid,
    pub participant_sid: ParticipantSid,
    pub track_sid: TrackSid,
    pub track_name: &'a str,
    pub kind: &'a str,
    pub container_format: &'a str,
    pub path: &'a str,
}

impl Store {
    /// Write a new `processing` recording.
    pub async fn insert_recording(&self, new: &NewRecording<'_>, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO recordings (sid, account_sid, room_sid, participant_sid, track_sid,
                track_name, kind, status, container_format, path, size, duration,
                date_created, date_updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing', $8, $9, 0, 0, $10, $10)",
        )
        .bind(new.sid.as_str())
        .bind(new.account_sid.as_str())
        .bind(new.room_sid.as_str())
        .bind(new.participant_sid.as_str())
        .bind(new.track_sid.as_str())
        .bind(new.track_name)
        .bind(new.kind)
        .bind(new.container_format)
        .bind(new.path)
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The first frame is written: note the codec and start time, and
    /// send `recording-started`.
    pub async fn recording_started(
        &self,
        sid: RecordingSid,
        codec: &str,
        start: Timestamp,
        at: Timestamp,
    ) -> Result<()> {
        self.recording_change(sid, CallbackEvent::RecordingStarted, at, |q| {
            q.push("codec = ")
                .push_bind(codec.to_owned())
                .push(", start_time = ")
                .push_bind(start.millis());
        })
        .await
    }

    /// The file is complete: `recording-completed`.
    pub async fn recording_completed(
        &self,
        sid: RecordingSid,
        duration_ms: u64,
        size: u64,
        at: Timestamp,
    ) -> Result<()> {
        self.recording_change(sid, CallbackEvent::RecordingCompleted, at, |q| {
            q.push("status = 'completed', duration = ")
                .push_bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
                .push(", size = ")
                .push_bind(i64::try_from(size).unwrap_or(i64::MAX));
        })
        .await
    }

    /// The recording stopped early: `recording-failed`.
    pub async fn recording_failed(
        &self,
        sid: RecordingSid,
        reason: &str,
        at: Timestamp,
    ) -> Result<()> {
        self.recording_change(sid, CallbackEvent::RecordingFailed, at, |q| {
            q.push("status = 'failed', failure = ")
                .push_bind(reason.to_owned());
        })
        .await
    }

    async fn recording_change(
        &self,
        sid: RecordingSid,
        event: CallbackEvent,
        at: Timestamp,
        set: impl FnOnce(&mut Sql),
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut q = Sql::new("UPDATE recordings SET ");
        set(&mut q);
        q.push(", date_updated = ")
            .push_bind(at.millis())
            .push(" WHERE status = 'processing' AND sid = ")
            .push_bind(sid.as_str().to_owned());
        let changed = q.execute(&mut *tx).await?;
        let mut written = 0;
        if changed > 0 {
            let row: RecordingRecord = sqlx::query_as("SELECT * FROM recordings WHERE sid = $1")
                .bind(sid.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let identity: Option<String> =
                sqlx::query_scalar("SELECT identity FROM participants WHERE sid = $1")
                    .bind(row.participant_sid.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let mut extra = vec![
                ("RecordingSid", row.sid.to_string()),
                ("RecordingUri", format!("/v1/Recordings/{}", row.sid)),
                ("SourceSid", row.track_sid.to_string()),
                ("TrackSid", row.track_sid.to_string()),
                ("TrackName", row.track_name.clone()),
                ("ParticipantSid", row.participant_sid.to_string()),
                ("ParticipantIdentity", identity.unwrap_or_default()),
                ("Type", row.kind.clone()),
                ("Container", row.container_format.clone()),
                ("Codec", row.codec.clone().unwrap_or_default()),
            ];
            if event == CallbackEvent::RecordingCompleted {
                extra.push(("Duration", (row.duration_ms / 1000).to_string()));
                extra.push(("Size", row.size.to_string()));
                extra.push(("MediaUri", format!("/v1/Recordings/{}/Media", row.sid)));
            }
            if let Some(start) = row.start_time {
                extra.push(("OffsetFromTwilioVectorEpoch", start.millis().to_string()));
            }
            if let Some(failure) = &row.failure {
                extra.push(("FailedOperation", failure.clone()));
            }
            written = callbacks::enqueue_recording(
                &mut tx,
                row.account_sid,
                row.room_sid,
                event,
                extra,
                at,
            )
            .await?;
        }
        tx.commit().await?;
        if written > 0 {
            self.doorbell.ring();
        }
        Ok(())
    }

    /// A recording by SID (deleted ones included: the caller decides).
    pub async fn recording(&self, sid: RecordingSid) -> Result<Option<RecordingRecord>> {
        Ok(sqlx::query_as("SELECT * FROM recordings WHERE sid = $1")
            .bind(sid.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Recordings matching `filter`, newest first (deleted ones only when
    /// asked for by status).
    pub async fn recordings(
        &self,
        filter: &RecordingFilter,
        request: &PageRequest,
    ) -> Result<Page<RecordingRecord>> {
        let mut q = Sql::new("SELECT * FROM recordings WHERE 1 = 1");
        match filter.status {
            Some(status) => {
                q.push(" AND status = ")
                    .push_bind(status.as_str().to_owned());
            }
            None => {
                q.push(" AND status <> 'deleted'");
            }
        }
        if let Some(track) = filter.source_sid {
            q.push(" AND track_sid = ").push_bind(track.to_string());
        }
        if let Some(room) = filter.room_sid {
            q.push(" AND room_sid = ").push_bind(room.to_string());
        }
        if let Some(group) = &filter.grouping_sid {
            q.push(" AND (room_sid = ")
                .push_bind(group.clone())
                .push(" OR participant_sid = ")
                .push_bind(group.clone())
                .push(")");
        }
        if let Some(kind) = &filter.media_type {
            q.push(" AND kind = ").push_bind(kind.clone());
        }
        created_between(&mut q, filter.created_after, filter.created_before);
        page(
            self,
            q,
            "date_created",
            "sid",
            Order::NewestFirst,
            request,
            |r: &RecordingRecord| Cursor {
                date_created: r.date_created,
                sid: r.sid.to_string(),
            },
        )
        .await
    }

    /// Mark a finished recording deleted (its file is removed by the
    /// caller). Returns false if it is still being written.
    pub async fn delete_recording(&self, sid: RecordingSid, at: Timestamp) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE recordings SET status = 'deleted', size = 0, date_updated = $2
             WHERE sid = $1 AND status IN ('completed', 'failed')",
        )
        .bind(sid.as_str())
        .bind(at.millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// The files of this node's deleted recordings and compositions (paths
    /// under their directories). A node that was away when one was deleted
    /// still has its file: it removes them when it starts again.
    pub async fn deleted_media(&self) -> Result<DeletedMedia> {
        // A recording is written by its room's node.
        let recordings = sqlx::query_scalar(
            "SELECT recordings.path FROM recordings JOIN rooms ON rooms.sid = recordings.room_sid
             WHERE recordings.status = 'deleted' AND rooms.node = $1",
        )
        .bind(self.node())
        .fetch_all(&self.pool)
        .await?;
        let compositions = sqlx::query_scalar(
            "SELECT path FROM compositions WHERE status = 'deleted' AND node = $1",
        )
        .bind(self.node())
        .fetch_all(&self.pool)
        .await?;
        Ok(DeletedMedia {
            recordings,
            compositions,
        })
    }

    /// Recordings still `processing` (a previous process died while writing
    /// them): they are failed at start-up.
    pub async fn fail_unfinished_recordings(&self, at: Timestamp) -> Result<u64> {
        let sids: Vec<String> =
            sqlx::query_scalar("SELECT sid FROM recordings WHERE status = 'processing'")
                .fetch_all(&self.pool)
                .await?;
        let mut failed = 0;
        for s in sids {
            if let Ok(sid) = s.parse() {
                self.recording_failed(sid, "the server stopped while recording", at)
                    .await?;
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// A room's recording rules as stored (JSON), if they were ever set.
    pub async fn recording_rules(&self, room: RoomSid) -> Result<Option<(String, Timestamp)>> {
        let row =
            sqlx::query("SELECT rules, date_updated FROM recording_rules WHERE room_sid = $1")
                .bind(room.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| -> Result<(String, Timestamp)> {
            Ok((
                r.try_get("rules")?,
                Timestamp::from_millis(r.try_get("date_updated")?),
            ))
        })
        .transpose()
    }

    /// Replace a room's recording rules.
    pub async fn set_recording_rules(
        &self,
        room: RoomSid,
        rules: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO recording_rules (room_sid, rules, date_updated) VALUES ($1, $2, $3)
             ON CONFLICT (room_sid) DO UPDATE SET rules = excluded.rules,
                 date_updated = excluded.date_updated",
        )
        .bind(room.as_str())
        .bind(rules)
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Files of deleted media ([`Store::deleted_media`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedMedia {
    /// Under the recordings directory.
    pub recordings: Vec<String>,
    /// Under the compositions directory.
    pub compositions: Vec<String>,
}

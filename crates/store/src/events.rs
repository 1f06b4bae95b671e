//! Writing the room core's events: the only way room state enters the store
//! (with the status callbacks they cause, in the same transaction).

use salon_room::{EndReason, Event, RoomSettings};
use salon_sid::{AccountSid, ParticipantSid, RoomSid};
use sqlx::{Any, Transaction};

use crate::{Result, Store, Timestamp, callbacks};

/// Where a batch of events stands in its recorder's run
/// ([`Store::record_batch`]): the run (one start of the node's process) and
/// the batch's place in it. Batches of one run are written in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMark {
    pub run: i64,
    pub seq: i64,
    /// Tried before, and the database went away meanwhile: its commit may
    /// have gone through with the answer lost.
    pub retry: bool,
}

impl Store {
    /// Record `events`, which happened at `at`, in one transaction: either
    /// all of them are stored, with the status callbacks they cause, or
    /// nothing is.
    pub async fn record<E: std::borrow::Borrow<Event> + Sync>(
        &self,
        account: AccountSid,
        events: &[E],
        at: Timestamp,
    ) -> Result<()> {
        self.write_events(account, events, at, None).await.map(drop)
    }

    /// [`Store::record`] for a recorder that tries a batch again when the
    /// database was away: the batch's `mark` goes in with it (this node's
    /// event cursor), so a retry of a batch that is in already writes
    /// nothing and answers `false`. `true`: written now.
    pub async fn record_batch<E: std::borrow::Borrow<Event> + Sync>(
        &self,
        account: AccountSid,
        events: &[E],
        at: Timestamp,
        mark: BatchMark,
    ) -> Result<bool> {
        self.write_events(account, events, at, Some(mark)).await
    }

    async fn write_events<E: std::borrow::Borrow<Event> + Sync>(
        &self,
        account: AccountSid,
        events: &[E],
        at: Timestamp,
        mark: Option<BatchMark>,
    ) -> Result<bool> {
        if events.is_empty() {
            return Ok(true);
        }
        // A writing transaction: it reads (for callbacks) before it writes
        // (see `Backend::begin_write`).
        let mut tx = self.begin_write().await?;
        if let Some(mark) = mark {
            if mark.retry {
                let cursor: Option<(i64, i64)> =
                    sqlx::query_as("SELECT run, seq FROM event_cursors WHERE node = $1")
                        .bind(self.node.as_ref())
                        .fetch_optional(&mut *tx)
                        .await?;
                if cursor.is_some_and(|(run, seq)| run == mark.run && seq >= mark.seq) {
                    return Ok(false);
                }
            }
            sqlx::query(
                "INSERT INTO event_cursors (node, run, seq) VALUES ($1, $2, $3)
                 ON CONFLICT (node) DO UPDATE SET run = excluded.run, seq = excluded.seq",
            )
            .bind(self.node.as_ref())
            .bind(mark.run)
            .bind(mark.seq)
            .execute(&mut *tx)
            .await?;
        }
        let mut callbacks = 0;
        for event in events {
            let event = event.borrow();
            callbacks += callbacks::enqueue(&mut tx, account, event, at).await?;
            apply(&mut tx, &self.node, account, event, at.millis()).await?;
        }
        tx.commit().await?;
        if callbacks > 0 {
            self.doorbell.ring();
        }
        Ok(true)
    }

    /// Note that the server is alive at `at`: the time [`Store::close_abandoned`]
    /// ends what this process leaves in progress if it dies. One row, one
    /// write: call it every few seconds while rooms run.
    pub async fn heartbeat(&self, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO heartbeats (node, seen_at) VALUES ($1, $2)
             ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(self.node.as_ref())
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// End everything a previous process left in progress: rooms become
    /// `completed` (reason `abandoned`), participants `disconnected`, tracks
    /// unpublished and subscriptions ended, and rooms with a status callback
    /// report it.
    ///
    /// They end when that process was last seen alive: the later of its
    /// last [`Store::heartbeat`] and the last change it recorded to anything
    /// still in progress (nothing ends before it started). Without any
    /// heartbeat (a database from before heartbeats) they end at `now`.
    pub async fn close_abandoned(&self, now: Timestamp) -> Result<Abandoned> {
        let mut tx = self.begin_write().await?;
        let heartbeat: Option<(i64,)> =
            sqlx::query_as("SELECT seen_at FROM heartbeats WHERE node = $1")
                .bind(self.node.as_ref())
                .fetch_optional(&mut *tx)
                .await?;
        let seen = match heartbeat {
            None => now.millis(),
            Some((heartbeat,)) => {
                let (latest,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MAX(t) FROM (
                         SELECT MAX(date_updated) AS t FROM rooms
                         WHERE status = 'in-progress' AND node = $1
                         UNION ALL
                         SELECT MAX(date_updated) AS t FROM participants
                         WHERE status = 'connected' AND room_sid IN (SELECT sid FROM rooms
                             WHERE status = 'in-progress' AND node = $1)
                     ) AS changes",
                )
                .bind(self.node.as_ref())
                .fetch_one(&mut *tx)
                .await?;
                latest.map_or(heartbeat, |latest| latest.max(heartbeat))
            }
        };
        let ended = end_rooms_of(&mut tx, &self.node, seen, "completed", "abandoned").await?;
        tx.commit().await?;
        if ended.callbacks > 0 {
            self.doorbell.ring();
        }
        Ok(Abandoned {
            rooms: ended.rooms,
            participants: ended.participants,
            ended_at: Timestamp::from_millis(seen),
        })
    }

    /// Rooms in progress per node (the nodes that run rooms, as the shared
    /// database knows them).
    pub async fn nodes_with_rooms(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT node, COUNT(*) FROM rooms WHERE status = 'in-progress' GROUP BY node ORDER BY node",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(node, n)| (node, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Another node died: its rooms in progress become `failed` (reason
    /// `node-failed`) as of `at`, their participants `disconnected`, and
    /// rooms with a status callback report it. Idempotent: a room that is
    /// no longer in progress is left alone, so a node that comes back
    /// cannot bring its rooms back to life through the records.
    pub async fn fail_node(&self, node: &str, at: Timestamp) -> Result<Abandoned> {
        let mut tx = self.begin_write().await?;
        let ended = end_rooms_of(&mut tx, node, at.millis(), "failed", "node-failed").await?;
        tx.commit().await?;
        if ended.callbacks > 0 {
            self.doorbell.ring();
        }
        Ok(Abandoned {
            rooms: ended.rooms,
            participants: ended.participants,
            ended_at: at,
        })
    }
}

struct Ended {
    rooms: u64,
    participants: u64,
    callbacks: usize,
}

/// End every room `node` has in progress at `seen` (milliseconds) with
/// `status` and `reason`, with everything in them, and write their
/// callbacks.
async fn end_rooms_of(
    tx: &mut Transaction<'_, Any>,
    node: &str,
    seen: i64,
    status: &str,
    reason: &str,
) -> Result<Ended> {
    let end = match status {
        "failed" => EndReason::NodeFailed,
        _ => EndReason::Shutdown,
    };
    let callbacks =
        callbacks::enqueue_abandoned(tx, node, Timestamp::from_millis(seen), end).await?;
    // Tracks may have been published after `seen` was written; they end
    // no earlier than their last change.
    sqlx::query(
            "UPDATE subscribed_tracks
             SET date_unsubscribed = CASE WHEN date_updated > $1 THEN date_updated ELSE $1 END,
                 date_updated = CASE WHEN date_updated > $1 THEN date_updated ELSE $1 END
             WHERE date_unsubscribed IS NULL AND room_sid IN (SELECT sid FROM rooms WHERE status = 'in-progress' AND node = $2)",
        )
        .bind(seen)
        .bind(node)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
            "UPDATE published_tracks
             SET date_unpublished = CASE WHEN date_updated > $1 THEN date_updated ELSE $1 END,
                 date_updated = CASE WHEN date_updated > $1 THEN date_updated ELSE $1 END
             WHERE date_unpublished IS NULL AND room_sid IN (SELECT sid FROM rooms WHERE status = 'in-progress' AND node = $2)",
        )
        .bind(seen)
        .bind(node)
        .execute(&mut **tx)
        .await?;
    let participants = sqlx::query(
            "UPDATE participants
             SET status = 'disconnected', end_time = $1, date_updated = $1, end_reason = $3
             WHERE status = 'connected' AND room_sid IN (SELECT sid FROM rooms WHERE status = 'in-progress' AND node = $2)",
        )
        .bind(seen)
        .bind(node)
        .bind(reason)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let rooms = sqlx::query(
        "UPDATE rooms
             SET status = $3, end_time = $1, date_updated = $1, end_reason = $4
             WHERE status = 'in-progress' AND node = $2",
    )
    .bind(seen)
    .bind(node)
    .bind(status)
    .bind(reason)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(Ended {
        rooms,
        participants,
        callbacks,
    })
}

/// What [`Store::close_abandoned`] or [`Store::fail_node`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned {
    /// Rooms ended.
    pub rooms: u64,
    /// Participants disconnected.
    pub participants: u64,
    /// When they ended (for `close_abandoned`: when the previous process
    /// was last seen).
    pub ended_at: Timestamp,
}

async fn apply(
    tx: &mut Transaction<'_, Any>,
    node: &str,
    account: AccountSid,
    event: &Event,
    at: i64,
) -> Result<()> {
    match event {
        // Recording rows are the recording controller's to write.
        Event::RecordingChanged { .. } => {}
        // Nothing of them is kept: the REST API has none of them.
        Event::DominantSpeakerChanged { .. }
        | Event::NetworkQualityChanged { .. }
        | Event::SubscriptionSwitched { .. }
        | Event::PublisherLayers { .. }
        | Event::TrackPriorityChanged { .. } => {}
        Event::RoomCreated {
            room,
            name,
            settings,
        } => {
            insert_room(tx, node, account, *room, name, settings, at).await?;
        }
        Event::RoomEnded { room, reason } => {
            sqlx::query(
                "UPDATE rooms SET status = 'completed', end_time = $1, date_updated = $1, end_reason = $2
                 WHERE sid = $3",
            )
            .bind(at)
            .bind(reason.as_str())
            .bind(room.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Event::ParticipantConnected {
            room,
            participant,
            identity,
        } => {
            sqlx::query(
                "INSERT INTO participants
                 (sid, room_sid, account_sid, identity, status, date_created, date_updated, start_time)
                 VALUES ($1, $2, $3, $4, 'connected', $5, $5, $5)",
            )
            .bind(participant.as_str())
            .bind(room.as_str())
            .bind(account.as_str())
            .bind(identity)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Event::ParticipantDisconnected {
            participant,
            reason,
            ..
        } => {
            disconnect_participant(tx, *participant, reason.as_str(), at).await?;
        }
        Event::TrackPublished {
            room,
            participant,
            track,
            name,
            kind,
            enabled,
        } => {
            sqlx::query(
                "INSERT INTO published_tracks
                 (sid, room_sid, participant_sid, name, kind, enabled, date_created, date_updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(track.as_str())
            .bind(room.as_str())
            .bind(participant.as_str())
            .bind(name)
            .bind(kind.as_str())
            .bind(enabled)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Event::TrackUnpublished { track, .. } => {
            sqlx::query(
                "UPDATE published_tracks SET date_unpublished = $1, date_updated = $1 WHERE sid = $2",
            )
            .bind(at)
            .bind(track.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Event::TrackSwitched { track, enabled, .. } => {
            sqlx::query(
                "UPDATE published_tracks SET enabled = $1, date_updated = $2 WHERE sid = $3",
            )
            .bind(enabled)
            .bind(at)
            .bind(track.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Event::Subscribed {
            room,
            subscriber,
            publisher,
            track,
        } => {
            sqlx::query(
                "INSERT INTO subscribed_tracks
                 (subscriber_sid, track_sid, publisher_sid, room_sid, date_created, date_updated)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (subscriber_sid, track_sid)
                 DO UPDATE SET date_unsubscribed = NULL, date_updated = excluded.date_updated",
            )
            .bind(subscriber.as_str())
            .bind(track.as_str())
            .bind(publisher.as_str())
            .bind(room.as_str())
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Event::Unsubscribed {
            subscriber, track, ..
        } => {
            sqlx::query(
                "UPDATE subscribed_tracks SET date_unsubscribed = $1, date_updated = $1
                 WHERE subscriber_sid = $2 AND track_sid = $3",
            )
            .bind(at)
            .bind(subscriber.as_str())
            .bind(track.as_str())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn insert_room(
    tx: &mut Transaction<'_, Any>,
    node: &str,
    account: AccountSid,
    room: RoomSid,
    name: &str,
    settings: &RoomSettings,
    at: i64,
) -> Result<()> {
    let codecs: Vec<&str> = settings.video_codecs.iter().map(|c| c.as_str()).collect();
    let (callback, method) = match &settings.status_callback {
        Some(cb) => (Some(cb.url.as_str()), cb.method.as_str()),
        None => (None, "POST"),
    };
    sqlx::query(
        "INSERT INTO rooms
         (sid, account_sid, unique_name, status, type, max_participants, max_participant_duration,
          empty_room_timeout, unused_room_timeout, status_callback, status_callback_method,
          video_codecs, audio_only, record_participants_on_connect, media_region,
          date_created, date_updated, node)
         VALUES ($1, $2, $3, 'in-progress', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)",
    )
    .bind(room.as_str())
    .bind(account.as_str())
    .bind(name)
    .bind(settings.room_type.as_str())
    .bind(i64::from(settings.max_participants))
    .bind(settings.max_participant_duration.as_secs() as i64)
    .bind((settings.empty_room_timeout.as_secs() / 60) as i64)
    .bind((settings.unused_room_timeout.as_secs() / 60) as i64)
    .bind(callback)
    .bind(method)
    .bind(codecs.join(","))
    .bind(settings.audio_only)
    .bind(settings.record_participants_on_connect)
    .bind(&settings.media_region)
    .bind(at)
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A participant's leaving implies its tracks are unpublished and every
/// subscription to or from it ended (see `Event::ParticipantDisconnected`).
async fn disconnect_participant(
    tx: &mut Transaction<'_, Any>,
    participant: ParticipantSid,
    reason: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE subscribed_tracks SET date_unsubscribed = $1, date_updated = $1
         WHERE (subscriber_sid = $2 OR publisher_sid = $2) AND date_unsubscribed IS NULL",
    )
    .bind(at)
    .bind(participant.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE published_tracks SET date_unpublished = $1, date_updated = $1
         WHERE participant_sid = $2 AND date_unpublished IS NULL",
    )
    .bind(at)
    .bind(participant.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE participants
         SET status = 'disconnected', end_time = $1, date_updated = $1, end_reason = $2
         WHERE sid = $3",
    )
    .bind(at)
    .bind(reason)
    .bind(participant.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

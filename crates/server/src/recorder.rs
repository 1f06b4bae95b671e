//! [`Recorder`]: writes the room core's events to the store, in order, in a
//! task of its own, and keeps them while the database is away.
//!
//! The room task hands each step's events over as one batch. While the
//! database answers, the room task waits for the batch's write (up to
//! [`WRITE_PATIENCE`]) before it tells anyone, so a caller that gets an
//! answer can read its effect back. When a write fails because the
//! database is away (PostgreSQL stopped or restarting, a network cut,
//! SQLite's disk full), the batch is kept, and so is every batch after it:
//! they are written in order once the database answers again, each with the
//! time its events happened. Meanwhile rooms in progress go on (the room
//! task no longer waits for writes) and new rooms are refused
//! ([`StoreHealth::accepts_new_rooms`]).
//!
//! A write can go through as the connection breaks, its answer lost. Each
//! batch therefore carries its place in this writer's run ([`BatchMark`]),
//! kept by the store in the same transaction: tried again, a batch that is
//! in already is taken as written, not applied twice.
//!
//! The backlog is bounded ([`MAX_BACKLOG`] events, a few tens of MB);
//! beyond it, batches are dropped, counted and logged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use salon_room::Event;
use salon_sid::AccountSid;
use salon_store::{BatchMark, Store, StoreError, Timestamp};
use tokio::sync::{mpsc, oneshot};

/// Events kept for the database while it is away, at most.
pub const MAX_BACKLOG: usize = 100_000;

/// How long the room task waits for a write before going on without it: a
/// write slower than this counts as the database being away.
pub const WRITE_PATIENCE: Duration = Duration::from_secs(5);

/// Pause between attempts while the database is away (each attempt itself
/// waits up to the pool's acquire timeout).
const RETRY: Duration = Duration::from_secs(1);

/// What became of a batch of events.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// In the database.
    Written,
    /// Kept, to be written when the database answers again.
    Deferred,
    /// Refused for good (a unique index, a bug): dropped.
    Failed(Arc<StoreError>),
}

/// Whether the database is taking writes, shared by the recorder, the
/// heartbeat, REST and admission, and reported on `/metrics`.
#[derive(Debug, Default)]
pub struct StoreHealth {
    down: AtomicBool,
    /// Events handed to the recorder and not yet written or dropped.
    backlog: AtomicUsize,
    /// Of those, the ones the room task is waiting for right now (it waits
    /// for one batch at a time): the rest are kept, not in flight.
    awaited: AtomicUsize,
    dropped: AtomicU64,
    /// Dropping since the database was last up (logged once).
    dropping: AtomicBool,
}

impl StoreHealth {
    /// New rooms are taken only while the database answers and nothing is
    /// kept for it: a room must be in the database before anyone is told
    /// it exists (and on a shared database, its unique index is what keeps
    /// names unique).
    pub fn accepts_new_rooms(&self) -> bool {
        !self.down.load(Relaxed) && self.kept() == 0
    }

    /// Events waiting for the database that nobody waits for.
    fn kept(&self) -> usize {
        // `awaited` is set before `backlog` grows and cleared after it
        // shrinks, so this is never above the truth.
        self.backlog
            .load(Relaxed)
            .saturating_sub(self.awaited.load(Relaxed))
    }

    /// Whether the last attempt to reach the database failed.
    pub fn is_down(&self) -> bool {
        self.down.load(Relaxed)
    }

    /// Events waiting to be written.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Relaxed)
    }

    /// The heartbeat's write succeeded: the database is back (what is kept
    /// is written next, and new rooms wait for that).
    pub fn heartbeat_written(&self) {
        self.mark_up();
    }

    /// A write failed because the database is away (`why`); even with no
    /// room writing, the heartbeat finds out this way.
    pub fn mark_down(&self, why: &dyn std::fmt::Display) {
        if !self.down.swap(true, Relaxed) {
            tracing::error!(error = %why, "the database is unavailable: rooms in progress go on, new rooms are refused, and room events are kept until it returns");
        }
    }

    fn mark_up(&self) {
        self.dropping.store(false, Relaxed);
        if self.down.swap(false, Relaxed) {
            tracing::warn!("the database is back");
        }
    }
}

impl Collector for Shared {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let health = &self.0;
        let up = ConstGauge::new(i64::from(!health.is_down()));
        up.encode(encoder.encode_descriptor(
            "store_up",
            "Whether the database takes writes (0 while it is away: new rooms are refused)",
            None,
            up.metric_type(),
        )?)?;
        let backlog = ConstGauge::new(i64::try_from(health.backlog()).unwrap_or(i64::MAX));
        backlog.encode(encoder.encode_descriptor(
            "store_backlog_events",
            "Room events waiting to be written to the database",
            None,
            backlog.metric_type(),
        )?)?;
        let dropped = ConstCounter::new(health.dropped.load(Relaxed));
        dropped.encode(encoder.encode_descriptor(
            "store_events_dropped",
            "Room events dropped because the backlog for an unavailable database was full",
            None,
            dropped.metric_type(),
        )?)?;
        Ok(())
    }
}

/// [`StoreHealth`] as a `/metrics` collector.
#[derive(Debug)]
pub struct Shared(pub Arc<StoreHealth>);

/// One step's events.
struct Batch {
    events: Vec<Arc<Event>>,
    at: Timestamp,
    /// Told what became of the batch, if someone waits.
    done: Option<oneshot::Sender<Recorded>>,
    /// Its place in the writer's run, from its first try on.
    mark: Option<BatchMark>,
}

/// The room task's end of the recorder.
pub struct Recorder {
    batches: mpsc::UnboundedSender<Batch>,
    health: Arc<StoreHealth>,
}

impl Recorder {
    /// Start the recorder task; it ends when the [`Recorder`] is dropped,
    /// after writing what it can.
    pub fn spawn(store: Store, account: AccountSid, health: Arc<StoreHealth>) -> Self {
        let (batches, inbox) = mpsc::unbounded_channel();
        tokio::spawn(
            Writer {
                store,
                account,
                health: health.clone(),
                inbox,
                kept: VecDeque::new(),
                run: rand::random(),
                seq: 0,
            }
            .run(),
        );
        Self { batches, health }
    }

    /// Record `events` (which happened `at`). Waits for the write while the
    /// database keeps up; otherwise keeps them for later and answers
    /// [`Recorded::Deferred`] at once.
    pub async fn record(&self, events: Vec<Arc<Event>>, at: Timestamp) -> Recorded {
        let count = events.len();
        if self.health.backlog() + count > MAX_BACKLOG {
            self.health.dropped.fetch_add(count as u64, Relaxed);
            if !self.health.dropping.swap(true, Relaxed) {
                tracing::error!(
                    kept = MAX_BACKLOG,
                    "the database has been away too long and the backlog of room events is full: further events are dropped until it returns"
                );
            }
            return Recorded::Deferred;
        }
        let wait = self.health.accepts_new_rooms();
        let (done, written) = if wait {
            self.health.awaited.store(count, Relaxed);
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.health.backlog.fetch_add(count, Relaxed);
        if self
            .batches
            .send(Batch {
                events,
                at,
                done,
                mark: None,
            })
            .is_err()
        {
            // Only if the recorder task died: it lives as long as this handle.
            tracing::error!(events = count, "room events after the recorder stopped");
            self.health.backlog.fetch_sub(count, Relaxed);
            self.health.awaited.store(0, Relaxed);
            return Recorded::Deferred;
        }
        let Some(written) = written else {
            return Recorded::Deferred;
        };
        let outcome = tokio::time::timeout(WRITE_PATIENCE, written).await;
        // From here the batch, if still queued, counts as kept.
        self.health.awaited.store(0, Relaxed);
        match outcome {
            Ok(Ok(recorded)) => recorded,
            // Too slow, or the recorder stopped: the batch is still queued.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    patience = ?WRITE_PATIENCE,
                    "a write of room events is taking too long: going on without waiting"
                );
                Recorded::Deferred
            }
        }
    }
}

/// The recorder task.
struct Writer {
    store: Store,
    account: AccountSid,
    health: Arc<StoreHealth>,
    inbox: mpsc::UnboundedReceiver<Batch>,
    /// Batches not yet written, oldest first (the first is being tried).
    kept: VecDeque<Batch>,
    /// This writer's run and the last batch tried in it (the store's event
    /// cursor: a retry of a batch that went in is not applied again).
    run: i64,
    seq: i64,
}

impl Writer {
    async fn run(mut self) {
        let mut open = true;
        loop {
            if self.kept.is_empty() {
                if !open {
                    break;
                }
                match self.inbox.recv().await {
                    Some(batch) => self.kept.push_back(batch),
                    None => open = false,
                }
                continue;
            }
            while let Ok(batch) = self.inbox.try_recv() {
                self.kept.push_back(batch);
            }
            if !self.write_first().await {
                if !open {
                    let left: usize = self.kept.iter().map(|b| b.events.len()).sum();
                    tracing::error!(
                        events = left,
                        "stopping with room events the database did not take; the next start closes what they leave in progress"
                    );
                    break;
                }
                // Keep collecting while waiting, so senders never block.
                let pause = tokio::time::sleep(RETRY);
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        batch = self.inbox.recv() => match batch {
                            Some(batch) => self.kept.push_back(batch),
                            None => { open = false; break; }
                        },
                        _ = &mut pause => break,
                    }
                }
            }
        }
        tracing::debug!("room event recorder stopped");
    }

    /// Try the oldest kept batch. `false`: the database is away; it stays.
    async fn write_first(&mut self) -> bool {
        let Some(batch) = self.kept.front_mut() else {
            return true;
        };
        let mark = *batch.mark.get_or_insert_with(|| {
            self.seq += 1;
            BatchMark {
                run: self.run,
                seq: self.seq,
                retry: false,
            }
        });
        let outcome = self
            .store
            .record_batch(self.account, &batch.events, batch.at, mark)
            .await;
        let recorded = match outcome {
            Ok(true) => Recorded::Written,
            Ok(false) => {
                // Its commit went through before the database went away.
                tracing::debug!(
                    events = batch.events.len(),
                    "room events were written already"
                );
                Recorded::Written
            }
            Err(e) if e.is_unavailable() => {
                batch.mark = Some(BatchMark {
                    retry: true,
                    ..mark
                });
                self.health.mark_down(&e);
                if let Some(done) = batch.done.take() {
                    let _ = done.send(Recorded::Deferred);
                }
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.events.len(), "failed to record room events");
                Recorded::Failed(Arc::new(e))
            }
        };
        if let Some(batch) = self.kept.pop_front() {
            self.health.backlog.fetch_sub(batch.events.len(), Relaxed);
            if matches!(recorded, Recorded::Written) {
                self.health.mark_up();
            }
            if let Some(done) = batch.done {
                let _ = done.send(recorded);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salon_room::{Config, Join, RoomRef, RoomRequest, Rooms};
    use salon_sid::{ParticipantSid, RoomSid};
    use salon_store::ParticipantStatus;
    use sqlx::Connection;
    use std::time::Instant;

    fn events(rooms: &mut Rooms) -> Vec<Arc<Event>> {
        std::iter::from_fn(|| rooms.poll_event().map(Arc::new)).collect()
    }

    /// Another connection holds SQLite's write lock past the store's busy
    /// timeout: the write fails as "unavailable", its batch and the next
    /// are kept, new rooms are refused, and once the lock goes both are
    /// written in order with the times they happened.
    #[tokio::test]
    async fn a_locked_database_keeps_events_in_order_and_writes_them_when_it_frees() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let health = Arc::new(StoreHealth::default());
        let recorder = Recorder::spawn(store.clone(), AccountSid::random(), health.clone());
        let mut rooms = Rooms::new(Config::default());
        let (room, alice) = (RoomSid::random(), ParticipantSid::random());
        let now = Instant::now();

        rooms.create(now, room, &RoomRequest::default()).unwrap();
        let created = events(&mut rooms);
        assert!(matches!(
            recorder
                .record(created, Timestamp::from_millis(1_000))
                .await,
            Recorded::Written
        ));
        assert!(health.accepts_new_rooms());

        let url = format!(
            "sqlite://{}",
            dir.path().join(salon_store::DATABASE_FILE).display()
        );
        let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut lock)
            .await
            .unwrap();
        rooms
            .join(
                now,
                Join {
                    room: RoomRef::Sid(room),
                    participant: alice,
                    identity: "alice".into(),
                    auto_subscribe: true,
                    new_room: RoomSid::random(),
                },
            )
            .unwrap();
        let joined = events(&mut rooms);
        assert!(matches!(
            recorder.record(joined, Timestamp::from_millis(2_000)).await,
            Recorded::Deferred
        ));
        assert!(!health.accepts_new_rooms(), "new rooms wait");
        rooms
            .disconnect(now, alice, salon_room::DisconnectReason::Left)
            .unwrap();
        let left = events(&mut rooms);
        // Not waited for: answered at once.
        assert!(matches!(
            recorder.record(left, Timestamp::from_millis(3_000)).await,
            Recorded::Deferred
        ));
        assert!(health.backlog() > 0);

        sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !health.accepts_new_rooms() {
            assert!(Instant::now() < deadline, "the backlog was not written");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!health.is_down());
        let alice = store.participant(room, alice).await.unwrap().unwrap();
        assert_eq!(alice.status, ParticipantStatus::Disconnected);
        assert_eq!(alice.start_time, Timestamp::from_millis(2_000));
        assert_eq!(alice.end_time, Some(Timestamp::from_millis(3_000)));
    }
}

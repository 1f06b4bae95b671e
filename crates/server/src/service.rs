//! [`RoomService`]: the thin async shell around the sans-IO room core.
//!
//! One task owns the [`Rooms`] state machine. Everyone else (REST handlers,
//! and later signaling) sends it jobs over a bounded channel. The task:
//!
//! 1. runs the job against the core (or fires the core's due timers),
//! 2. has the [`Recorder`] write the events the core queued to the store,
//!    in one transaction,
//! 3. only then answers the caller,
//!
//! so a caller that gets an answer can read its effect back from the store
//! (while the database is away, the recorder keeps the events and the
//! task goes on without waiting; new rooms are refused meanwhile),
//!
//! 4. and hands each event to its listeners: the signaling sessions of the
//!    event's room (bounded queues: a session that cannot keep up is cut
//!    off, never allowed to grow memory) and global watchers (the media
//!    bridge).
//!
//! The shell holds no room logic of its own; it only moves inputs in and
//! events out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use salon_room::{
    Admission, DisconnectReason, Event, Join, RoomError, RoomRequest, Rooms, TrackKind,
};
use salon_sid::{AccountSid, ParticipantSid, RoomSid, TrackSid};
use salon_store::{Store, StoreError, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::recorder::{Recorded, Recorder, StoreHealth};

/// Jobs waiting for the room task before senders have to wait.
const QUEUE: usize = 1024;

/// Why a call to the room service did not produce an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The core refused the command; nothing changed.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The core changed, but recording the change failed.
    #[error("recording room events failed: {0}")]
    Store(Arc<StoreError>),
    /// The database is away: no new rooms until it returns.
    #[error("the database is unavailable; no new rooms until it returns")]
    Unavailable,
    /// The service has shut down.
    #[error("the room service has shut down")]
    Closed,
}

type Reply = Box<dyn FnOnce(Recorded) + Send>;
type Job = Box<dyn FnOnce(&mut Rooms, &mut Listeners, Instant) -> Reply + Send>;

/// Events of one room queued for one session before it counts as stalled.
///
/// What a session legitimately receives is bounded by the room's size, not
/// its square: events about one subscription (`Subscribed`,
/// `Unsubscribed`, `SubscriptionSwitched`) go only to the subscriber's
/// session ([`addressee`]), so a join storm of Twilio's largest group room
/// (50 people publishing audio and video) brings each session about 50
/// connects, 100 publications, its own 98 subscriptions and their
/// switch-offs and switch-ons: a few hundred events. Before they were
/// addressed, every session heard every subscription of the room (50 × 49
/// × 2, about 4,900 in that storm) and a busy debug build dropped sessions
/// for a full queue.
pub const SESSION_QUEUE: usize = 1024;

/// The one participant an event concerns, when only its session needs it:
/// the other sessions drop these events (see `Session`'s `change`), so
/// they are not queued to them at all.
pub fn addressee(event: &Event) -> Option<ParticipantSid> {
    match event {
        Event::Subscribed { subscriber, .. }
        | Event::Unsubscribed { subscriber, .. }
        | Event::SubscriptionSwitched { subscriber, .. } => Some(*subscriber),
        _ => None,
    }
}

/// Where a session's events go.
type SessionSender = (ParticipantSid, mpsc::Sender<Arc<Event>>);

/// Who hears about events.
#[derive(Default)]
pub struct Listeners {
    sessions: HashMap<RoomSid, Vec<SessionSender>>,
    watchers: Vec<mpsc::UnboundedSender<Arc<Event>>>,
}

impl Listeners {
    /// Deliver the events of `room` to `participant`'s session through
    /// `events` (create it with [`SESSION_QUEUE`] capacity). The session is
    /// dropped from the list when the queue is full or closed.
    pub fn attach(
        &mut self,
        room: RoomSid,
        participant: ParticipantSid,
        events: mpsc::Sender<Arc<Event>>,
    ) {
        let sessions = self.sessions.entry(room).or_default();
        sessions.retain(|(p, _)| *p != participant);
        sessions.push((participant, events));
    }

    fn dispatch(&mut self, event: Arc<Event>) {
        let room = event.room();
        let to = addressee(&event);
        self.watchers.retain(|w| w.send(event.clone()).is_ok());
        if let Some(sessions) = self.sessions.get_mut(&room) {
            sessions.retain(|(participant, tx)| {
                if to.is_some_and(|to| to != *participant) {
                    return true;
                }
                match tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(%participant, "signaling session stalled: its event queue is full");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            if sessions.is_empty() {
                self.sessions.remove(&room);
            }
        }
    }
}

/// A handle to the room task. Cheap to clone.
#[derive(Clone)]
pub struct RoomService {
    jobs: mpsc::Sender<Job>,
    health: Arc<StoreHealth>,
}

impl RoomService {
    /// Start the room task. It runs until [`RoomService::shutdown`].
    pub fn spawn(
        rooms: Rooms,
        store: Store,
        account: AccountSid,
        health: Arc<StoreHealth>,
        metrics: Arc<Metrics>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, inbox) = mpsc::channel(QUEUE);
        let task = RoomTask {
            rooms,
            listeners: Listeners::default(),
            recorder: Recorder::spawn(store, account, health.clone()),
            metrics,
            inbox,
        };
        (Self { jobs, health }, tokio::spawn(task.run()))
    }

    /// Whether the database takes writes now (see [`StoreHealth`]).
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    /// Run `f` against the core; answer after its events are recorded.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Rooms, Instant) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.call_with_listeners(move |rooms, _, now| f(rooms, now))
            .await
    }

    /// Like [`RoomService::call`], with the listeners at hand (to attach a
    /// session in the same step that admits it, so it misses no event).
    pub async fn call_with_listeners<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Rooms, &mut Listeners, Instant) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        match self.submit(f).await? {
            (_, Recorded::Failed(e)) => Err(ServiceError::Store(e)),
            // Kept for the database: the core has changed, and rooms in
            // progress go on.
            (value, Recorded::Written | Recorded::Deferred) => Ok(value),
        }
    }

    /// Like [`RoomService::call_with_listeners`], and whether the step's
    /// events are in the database yet or only kept for it
    /// ([`Recorded::Deferred`]): a join that created a room must know.
    pub async fn call_recorded<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Rooms, &mut Listeners, Instant) -> T + Send + 'static,
    ) -> Result<(T, Recorded), ServiceError> {
        match self.submit(f).await? {
            (_, Recorded::Failed(e)) => Err(ServiceError::Store(e)),
            done => Ok(done),
        }
    }

    /// Run `f`; its value and what became of its events.
    async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Rooms, &mut Listeners, Instant) -> T + Send + 'static,
    ) -> Result<(T, Recorded), ServiceError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |rooms, listeners, now| {
            let value = f(rooms, listeners, now);
            Box::new(move |recorded| {
                let _ = tx.send((value, recorded));
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| ServiceError::Closed)?;
        rx.await.map_err(|_| ServiceError::Closed)
    }

    /// Like [`RoomService::call`] for commands that may be refused.
    async fn command<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Rooms, Instant) -> Result<T, RoomError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.call(f).await?.map_err(ServiceError::Room)
    }

    /// Create a room with a fresh SID. Refused ([`ServiceError::Unavailable`])
    /// while the database is away: a room must be recorded before anyone
    /// is told it exists.
    pub async fn create(&self, request: RoomRequest) -> Result<RoomSid, ServiceError> {
        if !self.health.accepts_new_rooms() {
            return Err(ServiceError::Unavailable);
        }
        let sid = RoomSid::random();
        let name = request.unique_name.clone();
        let created = self
            .submit(move |rooms, _, now| rooms.create(now, sid, &request).map(|room| room.sid()))
            .await?;
        match created {
            (Err(e), _) => Err(ServiceError::Room(e)),
            (Ok(sid), Recorded::Written) => Ok(sid),
            // Nodes sharing a database: another node runs a room of this
            // name, and the database's unique index refused ours. End it
            // here too (nothing of it was recorded) and answer as the core
            // would have, had it known.
            (Ok(_), Recorded::Failed(e)) if e.is_unique_violation() => {
                let _ = self
                    .command(move |rooms, now| rooms.complete(now, sid))
                    .await;
                Err(ServiceError::Room(RoomError::RoomExists(
                    name.unwrap_or_else(|| sid.to_string()),
                )))
            }
            (Ok(_), Recorded::Failed(e)) => Err(ServiceError::Store(e)),
            // The database went away during the write: end the room (it
            // and its end are written when the database returns) rather
            // than run one nobody can look up.
            (Ok(_), Recorded::Deferred) => {
                let _ = self
                    .command(move |rooms, now| rooms.complete(now, sid))
                    .await;
                Err(ServiceError::Unavailable)
            }
        }
    }

    /// Complete a room in progress, disconnecting everyone (53118).
    pub async fn complete(&self, room: RoomSid) -> Result<(), ServiceError> {
        self.command(move |rooms, now| rooms.complete(now, room))
            .await
    }

    /// Admit a participant.
    pub async fn join(&self, join: Join) -> Result<Admission, ServiceError> {
        self.command(move |rooms, now| rooms.join(now, join)).await
    }

    /// Remove a participant.
    pub async fn disconnect(
        &self,
        participant: ParticipantSid,
        reason: DisconnectReason,
    ) -> Result<(), ServiceError> {
        self.command(move |rooms, now| rooms.disconnect(now, participant, reason))
            .await
    }

    /// Publish a track for a participant.
    pub async fn publish(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
        name: String,
        kind: TrackKind,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        self.command(move |rooms, _| rooms.publish(participant, track, &name, kind, enabled))
            .await
    }

    /// Stop publishing a track.
    pub async fn unpublish(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
    ) -> Result<(), ServiceError> {
        self.command(move |rooms, _| rooms.unpublish(participant, track))
            .await
    }

    /// Enable or disable (mute) a published track.
    pub async fn set_track_enabled(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        self.command(move |rooms, _| rooms.set_track_enabled(participant, track, enabled))
            .await
    }

    /// Subscribe a participant to a track.
    pub async fn subscribe(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
    ) -> Result<(), ServiceError> {
        self.command(move |rooms, _| rooms.subscribe(participant, track))
            .await
    }

    /// Unsubscribe a participant from a track.
    pub async fn unsubscribe(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
    ) -> Result<(), ServiceError> {
        self.command(move |rooms, _| rooms.unsubscribe(participant, track))
            .await
    }

    /// Every event of every room, from now on, unbounded: for consumers that
    /// must not miss one (the media bridge).
    pub async fn watch(&self) -> Result<mpsc::UnboundedReceiver<Arc<Event>>, ServiceError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.call_with_listeners(move |_, listeners, _| listeners.watchers.push(tx))
            .await?;
        Ok(rx)
    }

    /// End every room, for a graceful shutdown. The task itself ends when
    /// the last handle is dropped.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |rooms, _, now| {
            rooms.shutdown(now);
            Box::new(move |_| {
                let _ = tx.send(());
            })
        });
        if self.jobs.send(job).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct RoomTask {
    rooms: Rooms,
    listeners: Listeners,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    inbox: mpsc::Receiver<Job>,
}

impl RoomTask {
    async fn run(mut self) {
        loop {
            let deadline = self.rooms.poll_timeout();
            let reply = tokio::select! {
                job = self.inbox.recv() => match job {
                    Some(job) => Some(job(&mut self.rooms, &mut self.listeners, now())),
                    None => break,
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    self.rooms.handle_timeout(now());
                    None
                }
            };
            let recorded = self.flush().await;
            if let Some(reply) = reply {
                reply(recorded);
            }
        }
        tracing::debug!("room service stopped");
    }

    async fn flush(&mut self) -> Recorded {
        let events: Vec<Arc<Event>> =
            std::iter::from_fn(|| self.rooms.poll_event().map(Arc::new)).collect();
        if events.is_empty() {
            return Recorded::Written;
        }
        for event in &events {
            self.observe(event);
        }
        self.metrics
            .set_rooms(self.rooms.rooms().count(), self.rooms.participant_count());
        let recorded = self.recorder.record(events.clone(), Timestamp::now()).await;
        // Listeners hear about changes even if recording failed: the core
        // has changed, and sessions must follow it.
        for event in events {
            self.listeners.dispatch(event);
        }
        recorded
    }

    fn observe(&self, event: &Event) {
        match event {
            Event::RoomCreated {
                room,
                name,
                settings,
            } => {
                tracing::info!(%room, name, room_type = %settings.room_type, "room created");
            }
            Event::RoomEnded { room, reason } => {
                tracing::info!(%room, reason = reason.as_str(), "room ended");
                self.metrics.room_ended(reason.as_str());
            }
            Event::ParticipantConnected {
                room,
                participant,
                identity,
            } => {
                tracing::info!(%room, %participant, identity, "participant connected");
            }
            Event::ParticipantDisconnected {
                room,
                participant,
                identity,
                reason,
            } => {
                tracing::info!(%room, %participant, identity, reason = reason.as_str(), "participant disconnected");
                self.metrics.participant_disconnected(reason.as_str());
            }
            _ => {}
        }
    }
}

/// The core's clock is tokio's, so tests can pause and advance it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A join storm's subscriptions reach only their subscriber: a room of
    /// 50 fills no session's queue with the others' subscriptions.
    #[test]
    fn subscription_events_go_to_their_subscriber_only_and_the_rest_to_all() {
        let room = RoomSid::from_bytes([1; 16]);
        let people: Vec<ParticipantSid> = (0..50u8)
            .map(|i| ParticipantSid::from_bytes([i; 16]))
            .collect();
        let mut listeners = Listeners::default();
        let mut queues = Vec::new();
        for p in &people {
            let (tx, rx) = mpsc::channel(SESSION_QUEUE);
            listeners.attach(room, *p, tx);
            queues.push(rx);
        }
        // Everyone publishes audio and video; everyone subscribes to the
        // others' tracks, and each video is switched off and on once.
        for (i, p) in people.iter().enumerate() {
            listeners.dispatch(Arc::new(Event::ParticipantConnected {
                room,
                participant: *p,
                identity: format!("p{i}"),
            }));
            for t in 0..2u8 {
                let track =
                    TrackSid::from_bytes([i as u8, t, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                for s in people.iter().filter(|s| *s != p) {
                    listeners.dispatch(Arc::new(Event::Subscribed {
                        room,
                        subscriber: *s,
                        publisher: *p,
                        track,
                    }));
                    for off in [Some("max-bandwidth-reached"), None] {
                        listeners.dispatch(Arc::new(Event::SubscriptionSwitched {
                            room,
                            subscriber: *s,
                            track,
                            off,
                        }));
                    }
                }
            }
        }
        assert_eq!(
            listeners.sessions.get(&room).map(Vec::len),
            Some(50),
            "no session was dropped"
        );
        for (p, rx) in people.iter().zip(&mut queues) {
            let mut connected = 0;
            let mut own = 0;
            while let Ok(event) = rx.try_recv() {
                match &*event {
                    Event::ParticipantConnected { .. } => connected += 1,
                    Event::Subscribed { subscriber, .. }
                    | Event::SubscriptionSwitched { subscriber, .. } => {
                        assert_eq!(subscriber, p);
                        own += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!((connected, own), (50, 49 * 2 * 3));
        }
    }
}

//! The status callback outbox against a real SQLite file and a real
//! PostgreSQL database, fed by the real room core: what each event says, in which order, and how the queue
//! behaves for the sender.

mod common;

use common::Db;
use std::collections::BTreeMap;
use std::time::Instant;

use salon_room::{
    CallbackMethod, Config, DisconnectReason, Event, Join, RoomRef, RoomRequest, Rooms,
    StatusCallback, TrackKind,
};
use salon_sid::{AccountSid, ParticipantSid, RoomSid, TrackSid};
use salon_store::{BatchMark, OutboxCallback, Store, Timestamp};

const CALLBACK: &str = "https://app.example.com/rooms?tenant=7";

struct Fixture {
    _db: Db,
    store: Store,
    rooms: Rooms,
    account: AccountSid,
    now: Instant,
    /// Milliseconds since the epoch of the next batch.
    clock: i64,
}

impl Fixture {
    async fn new(db: Db) -> Self {
        let store = db.open().await;
        Self {
            _db: db,
            store,
            rooms: Rooms::new(Config::default()),
            account: AccountSid::random(),
            now: Instant::now(),
            // 2023-11-14T22:13:20.000Z
            clock: 1_700_000_000_000,
        }
    }

    /// Record the core's pending events, `advance_ms` after the last batch.
    async fn flush(&mut self, advance_ms: i64) {
        let events: Vec<Event> = std::iter::from_fn(|| self.rooms.poll_event()).collect();
        self.clock += advance_ms;
        self.store
            .record(self.account, &events, Timestamp::from_millis(self.clock))
            .await
            .unwrap();
    }

    /// Write `events` as a recorder's batch `mark`: `false` if it is in
    /// already.
    async fn write(&self, events: &[Event], mark: BatchMark) -> bool {
        self.store
            .record_batch(
                self.account,
                events,
                Timestamp::from_millis(self.clock),
                mark,
            )
            .await
            .unwrap()
    }

    fn create(&mut self, name: &str, callback: Option<CallbackMethod>) -> RoomSid {
        let room = RoomSid::random();
        let request = RoomRequest {
            unique_name: Some(name.into()),
            status_callback: callback.map(|method| StatusCallback {
                url: CALLBACK.into(),
                method,
            }),
            ..RoomRequest::default()
        };
        self.rooms.create(self.now, room, &request).unwrap();
        room
    }

    fn join(&mut self, room: RoomSid, identity: &str) -> ParticipantSid {
        let participant = ParticipantSid::random();
        self.rooms
            .join(
                self.now,
                Join {
                    room: RoomRef::Sid(room),
                    participant,
                    identity: identity.into(),
                    auto_subscribe: true,
                    new_room: RoomSid::random(),
                },
            )
            .unwrap();
        participant
    }

    /// Every callback of the outbox in delivery order, emptying it the way
    /// the sender does: take the due heads, remove them, repeat.
    async fn drain(&self) -> Vec<OutboxCallback> {
        let mut all = Vec::new();
        loop {
            let due = self
                .store
                .due_callbacks(Timestamp::from_millis(i64::MAX / 2), 100)
                .await
                .unwrap();
            if due.is_empty() {
                return all;
            }
            for callback in due {
                self.store
                    .remove_callback(&callback.stream, callback.sequence, Timestamp::now())
                    .await
                    .unwrap();
                all.push(callback);
            }
        }
    }
}

fn params(callback: &OutboxCallback) -> BTreeMap<&str, &str> {
    callback
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn events(callbacks: &[OutboxCallback]) -> Vec<&str> {
    callbacks.iter().map(|c| c.event.as_str()).collect()
}

async fn a_rooms_life_is_reported_with_twilios_events_and_parameters(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = f.create("standup", Some(CallbackMethod::Post));
    f.flush(0).await;
    let alice = f.join(room, "alice");
    f.flush(1_000).await;
    let mic = TrackSid::random();
    let cam = TrackSid::random();
    f.rooms
        .publish(alice, mic, "mic", TrackKind::Audio, true)
        .unwrap();
    f.rooms
        .publish(alice, cam, "camera", TrackKind::Video, true)
        .unwrap();
    f.flush(1).await;
    let bob = f.join(room, "bob");
    f.flush(1).await;
    f.rooms.set_track_enabled(alice, mic, false).unwrap();
    f.flush(1).await;
    f.rooms.set_track_enabled(alice, mic, true).unwrap();
    f.flush(1).await;
    f.rooms.unpublish(alice, cam).unwrap();
    f.flush(1).await;
    // Alice leaves with her microphone still published, 61.5 s after joining.
    f.rooms
        .disconnect(f.now, alice, DisconnectReason::Left)
        .unwrap();
    f.flush(61_495).await;
    f.rooms.complete(f.now, room).unwrap();
    f.flush(10_000).await;

    let callbacks = f.drain().await;
    assert_eq!(
        events(&callbacks),
        [
            "room-created",
            "participant-connected",
            "track-added",
            "track-added",
            "participant-connected",
            "track-disabled",
            "track-enabled",
            "track-removed",
            "track-removed",
            "participant-disconnected",
            "participant-disconnected",
            "room-ended",
        ]
    );
    for (i, callback) in callbacks.iter().enumerate() {
        let p = params(callback);
        assert_eq!(callback.sequence, i as i64);
        assert_eq!(
            p["SequenceNumber"],
            i.to_string(),
            "counts this room's callbacks from 0"
        );
        assert_eq!(p["AccountSid"], f.account.as_str());
        assert_eq!(p["RoomSid"], room.as_str());
        assert_eq!(p["RoomName"], "standup");
        assert_eq!(p["RoomType"], "group");
        assert_eq!(p["StatusCallbackEvent"], callback.event);
        assert_eq!(callback.url, CALLBACK);
        assert_eq!(callback.method, CallbackMethod::Post);
        assert_eq!(callback.stream, room.as_str());
        assert_eq!(callback.account, f.account);
        let room_status = if callback.event == "room-ended" {
            "completed"
        } else {
            "in-progress"
        };
        assert_eq!(p["RoomStatus"], room_status, "{}", callback.event);
    }
    let p = |i: usize| params(&callbacks[i]);
    assert_eq!(p(0)["Timestamp"], "2023-11-14T22:13:20.000Z");
    assert_eq!(p(1)["Timestamp"], "2023-11-14T22:13:21.000Z");
    assert_eq!(
        p(0).keys().copied().collect::<Vec<_>>(),
        [
            "AccountSid",
            "RoomName",
            "RoomSid",
            "RoomStatus",
            "RoomType",
            "SequenceNumber",
            "StatusCallbackEvent",
            "Timestamp"
        ],
        "room-created says nothing about participants or tracks"
    );

    // participant-connected
    assert_eq!(p(1)["ParticipantSid"], alice.as_str());
    assert_eq!(p(1)["ParticipantIdentity"], "alice");
    assert_eq!(p(1)["ParticipantStatus"], "connected");
    assert!(!p(1).contains_key("ParticipantDuration"));
    // track-added, in publication order
    assert_eq!(
        (p(2)["TrackSid"], p(2)["TrackKind"], p(2)["TrackName"]),
        (mic.as_str(), "audio", "mic")
    );
    assert_eq!(
        (p(3)["TrackSid"], p(3)["TrackKind"], p(3)["TrackName"]),
        (cam.as_str(), "video", "camera")
    );
    assert_eq!(p(3)["ParticipantIdentity"], "alice");
    assert_eq!(p(4)["ParticipantIdentity"], "bob");
    // mute and unmute
    assert_eq!((p(5)["TrackSid"], p(5)["TrackName"]), (mic.as_str(), "mic"));
    assert_eq!(
        (p(6)["TrackSid"], p(6)["TrackKind"]),
        (mic.as_str(), "audio")
    );
    // unpublished, then the microphone goes with her
    assert_eq!(
        (p(7)["TrackSid"], p(7)["ParticipantStatus"]),
        (cam.as_str(), "connected")
    );
    assert_eq!(
        (p(8)["TrackSid"], p(8)["ParticipantStatus"]),
        (mic.as_str(), "disconnected")
    );
    assert_eq!(p(9)["ParticipantSid"], alice.as_str());
    assert_eq!(p(9)["ParticipantStatus"], "disconnected");
    assert_eq!(p(9)["ParticipantDuration"], "61", "whole seconds connected");
    // completing the room disconnects bob, then ends it
    assert_eq!(p(10)["ParticipantSid"], bob.as_str());
    assert_eq!(p(10)["ParticipantDuration"], "71");
    assert_eq!(p(11)["RoomDuration"], "72", "whole seconds from creation");
    assert!(!p(11).contains_key("ParticipantSid"));
}

async fn rooms_without_a_callback_and_subscriptions_write_nothing(db: Db) {
    let mut f = Fixture::new(db).await;
    let quiet = f.create("quiet", None);
    let alice = f.join(quiet, "alice");
    let _bob = f.join(quiet, "bob");
    f.rooms
        .publish(alice, TrackSid::random(), "mic", TrackKind::Audio, true)
        .unwrap();
    f.rooms.complete(f.now, quiet).unwrap();
    f.flush(1).await;
    assert_eq!(f.store.callback_backlog().await.unwrap().callbacks, 0);

    // Subscriptions (bob to alice's track) have no Twilio event.
    let loud = f.create("loud", Some(CallbackMethod::Get));
    let alice = f.join(loud, "alice");
    let bob = f.join(loud, "bob");
    let mic = TrackSid::random();
    f.rooms
        .publish(alice, mic, "mic", TrackKind::Audio, true)
        .unwrap();
    f.rooms.unsubscribe(bob, mic).unwrap();
    f.rooms.subscribe(bob, mic).unwrap();
    f.flush(1).await;
    let callbacks = f.drain().await;
    assert_eq!(
        events(&callbacks),
        [
            "room-created",
            "participant-connected",
            "participant-connected",
            "track-added"
        ]
    );
    assert!(callbacks.iter().all(|c| c.method == CallbackMethod::Get));
}

async fn each_room_is_a_queue_of_its_own_whose_head_alone_is_due(db: Db) {
    let mut f = Fixture::new(db).await;
    let a = f.create("a", Some(CallbackMethod::Post));
    let b = f.create("b", Some(CallbackMethod::Post));
    f.flush(1).await;
    f.join(a, "alice");
    f.join(b, "bob");
    f.flush(1).await;
    let backlog = f.store.callback_backlog().await.unwrap();
    assert_eq!(backlog.callbacks, 4);
    assert_eq!(
        backlog.oldest,
        Some(Timestamp::from_millis(1_700_000_000_001))
    );

    let now = Timestamp::from_millis(f.clock);
    let due = f.store.due_callbacks(now, 10).await.unwrap();
    let heads: Vec<(&str, i64)> = due
        .iter()
        .map(|c| (c.stream.as_str(), c.sequence))
        .collect();
    assert_eq!(heads.len(), 2, "one head per room: {heads:?}");
    assert!(heads.contains(&(a.as_str(), 0)) && heads.contains(&(b.as_str(), 0)));

    // Room a's head fails and backs off: room a waits, room b goes on.
    let later = Timestamp::from_millis(f.clock + 60_000);
    f.store
        .retry_callback(a.as_str(), 0, later, "HTTP 503")
        .await
        .unwrap();
    f.store.remove_callback(b.as_str(), 0, now).await.unwrap();
    let due = f.store.due_callbacks(now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].stream.as_str(), due[0].sequence), (b.as_str(), 1));
    assert_eq!(f.store.next_callback_due().await.unwrap(), Some(now));

    // Once it is due again, it is the same callback, with its history.
    let due = f.store.due_callbacks(later, 10).await.unwrap();
    let head = due.iter().find(|c| c.stream == a.as_str()).unwrap();
    assert_eq!(
        (head.sequence, head.attempts, head.last_error.as_deref()),
        (0, 1, Some("HTTP 503"))
    );

    // A restart makes what was backing off due at once, attempts kept.
    f.store.remove_callback(b.as_str(), 1, now).await.unwrap();
    assert_eq!(f.store.next_callback_due().await.unwrap(), Some(later));
    assert_eq!(
        f.store.rearm_callbacks(now, f.store.node()).await.unwrap(),
        1
    );
    let due = f.store.due_callbacks(now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].sequence, due[0].attempts), (0, 1));
}

async fn a_lease_keeps_a_head_from_being_taken_twice(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = f.create("leased", Some(CallbackMethod::Post));
    f.flush(1).await;
    let now = Timestamp::from_millis(f.clock);
    let until = Timestamp::from_millis(f.clock + 20_000);
    // Two nodes' senders read the same due head; the first lease wins.
    let (a, b) = (f.store.clone().for_node("a"), f.store.clone().for_node("b"));
    let seen_by_a = a.due_callbacks(now, 10).await.unwrap();
    let seen_by_b = b.due_callbacks(now, 10).await.unwrap();
    assert_eq!(seen_by_a, seen_by_b);
    assert!(
        a.lease_callback(&seen_by_a[0], until, a.node())
            .await
            .unwrap()
    );
    assert!(
        !b.lease_callback(&seen_by_b[0], until, b.node())
            .await
            .unwrap(),
        "taken by a meanwhile"
    );
    assert!(f.store.due_callbacks(now, 10).await.unwrap().is_empty());
    // Events keep arriving behind it meanwhile.
    f.join(room, "alice");
    f.flush(1).await;
    assert!(f.store.due_callbacks(now, 10).await.unwrap().is_empty());
    assert_eq!(f.store.callback_backlog().await.unwrap().callbacks, 2);
    // Node b starting again leaves a's lease alone; a starting again
    // re-arms it (it was delivering when it stopped).
    assert_eq!(b.rearm_callbacks(now, b.node()).await.unwrap(), 0);
    assert!(f.store.due_callbacks(now, 10).await.unwrap().is_empty());
    assert_eq!(a.rearm_callbacks(now, a.node()).await.unwrap(), 1);
    let due = f.store.due_callbacks(now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // Delivered by b now; a late removal of the same callback by a does
    // not make b's lease on the next one due again.
    assert!(b.lease_callback(&due[0], until, b.node()).await.unwrap());
    b.remove_callback(room.as_str(), 0, now).await.unwrap();
    let next = b.due_callbacks(now, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(b.lease_callback(&next[0], until, b.node()).await.unwrap());
    a.remove_callback(room.as_str(), 0, now).await.unwrap();
    assert!(f.store.due_callbacks(now, 10).await.unwrap().is_empty());
}

async fn rooms_a_dead_process_left_behind_report_their_end_at_the_next_start(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = f.create("crashed", Some(CallbackMethod::Post));
    let alice = f.join(room, "alice");
    let mic = TrackSid::random();
    f.rooms
        .publish(alice, mic, "mic", TrackKind::Audio, true)
        .unwrap();
    f.flush(1).await;
    let before = f.drain().await.len();
    assert_eq!(before, 3);

    // The process dies; the next one closes what it left.
    let restart = Timestamp::from_millis(f.clock + 30_000);
    let abandoned = f.store.close_abandoned(restart).await.unwrap();
    assert_eq!((abandoned.rooms, abandoned.participants), (1, 1));
    let callbacks = f.drain().await;
    assert_eq!(
        events(&callbacks),
        ["track-removed", "participant-disconnected", "room-ended"]
    );
    assert_eq!(
        callbacks.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [3, 4, 5],
        "the room's numbering goes on"
    );
    assert_eq!(params(&callbacks[0])["TrackSid"], mic.as_str());
    assert_eq!(params(&callbacks[1])["ParticipantDuration"], "30");
    assert_eq!(params(&callbacks[2])["RoomStatus"], "completed");
    assert_eq!(params(&callbacks[2])["RoomDuration"], "30");
}

async fn an_abandoned_room_reports_the_end_its_process_was_last_seen_at(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = f.create("crashed", Some(CallbackMethod::Post));
    f.join(room, "alice");
    f.flush(1).await;
    f.drain().await;

    // Alive 10 s after the join, dead for the 50 s before the restart.
    f.store
        .heartbeat(Timestamp::from_millis(f.clock + 10_000))
        .await
        .unwrap();
    let restart = Timestamp::from_millis(f.clock + 60_000);
    let abandoned = f.store.close_abandoned(restart).await.unwrap();
    assert_eq!(abandoned.ended_at, Timestamp::from_millis(f.clock + 10_000));
    let callbacks = f.drain().await;
    assert_eq!(
        events(&callbacks),
        ["participant-disconnected", "room-ended"]
    );
    assert_eq!(params(&callbacks[0])["ParticipantDuration"], "10");
    assert_eq!(params(&callbacks[1])["RoomDuration"], "10");
}

async fn the_rooms_of_a_dead_node_report_their_end_as_failed(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = f.create("on-a-dead-node", Some(CallbackMethod::Post));
    f.join(room, "alice");
    f.flush(1).await;
    f.drain().await;

    // Another node declares this one (`local`) dead.
    let failed = f
        .store
        .clone()
        .for_node("node-b")
        .fail_node("local", Timestamp::from_millis(f.clock + 10_000))
        .await
        .unwrap();
    assert_eq!(failed.rooms, 1);
    let callbacks = f.drain().await;
    assert_eq!(
        events(&callbacks),
        ["participant-disconnected", "room-ended"]
    );
    assert_eq!(params(&callbacks[1])["RoomStatus"], "failed");
    assert_eq!(params(&callbacks[1])["RoomDuration"], "10");
}

async fn the_doorbell_rings_after_a_commit_with_callbacks(db: Db) {
    let mut f = Fixture::new(db).await;
    f.create("quiet", None);
    f.flush(1).await;
    let rang = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        f.store.callbacks_enqueued(),
    )
    .await;
    assert!(rang.is_err(), "no callback, no ring");

    f.create("loud", Some(CallbackMethod::Post));
    f.flush(1).await;
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        f.store.callbacks_enqueued(),
    )
    .await
    .expect("the sender is woken");
}

async fn a_batch_tried_again_after_its_commit_went_through_is_not_applied_twice(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = f.create("retried", Some(CallbackMethod::Post));
    let created: Vec<Event> = std::iter::from_fn(|| f.rooms.poll_event()).collect();
    let mark = |seq, retry| BatchMark { run: 7, seq, retry };
    assert!(f.write(&created, mark(1, false)).await, "written");
    // The answer to that commit was lost: the recorder tries it again.
    assert!(
        !f.write(&created, mark(1, true)).await,
        "known to be in: not applied again (a unique index would refuse its room)"
    );
    assert_eq!(events(&f.drain().await), ["room-created"]);

    // A retry of a batch whose first try did not commit is written.
    let alice = f.join(room, "alice");
    let joined: Vec<Event> = std::iter::from_fn(|| f.rooms.poll_event()).collect();
    assert!(f.write(&joined, mark(2, true)).await);
    assert_eq!(events(&f.drain().await), ["participant-connected"]);

    // Another run of the node (a restart) starts its own count.
    f.rooms
        .disconnect(f.now, alice, DisconnectReason::Left)
        .unwrap();
    let gone: Vec<Event> = std::iter::from_fn(|| f.rooms.poll_event()).collect();
    let restarted = BatchMark {
        run: 8,
        seq: 1,
        retry: true,
    };
    assert!(f.write(&gone, restarted).await);
    assert_eq!(events(&f.drain().await), ["participant-disconnected"]);
}

on_both_databases!(
    a_rooms_life_is_reported_with_twilios_events_and_parameters,
    rooms_without_a_callback_and_subscriptions_write_nothing,
    each_room_is_a_queue_of_its_own_whose_head_alone_is_due,
    a_lease_keeps_a_head_from_being_taken_twice,
    rooms_a_dead_process_left_behind_report_their_end_at_the_next_start,
    an_abandoned_room_reports_the_end_its_process_was_last_seen_at,
    the_rooms_of_a_dead_node_report_their_end_as_failed,
    the_doorbell_rings_after_a_commit_with_callbacks,
    a_batch_tried_again_after_its_commit_went_through_is_not_applied_twice,
);

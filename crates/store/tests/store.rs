//! The store against a real SQLite file and a real PostgreSQL database, fed
//! by the real room core.

mod common;

use common::Db;
use std::time::Instant;

use salon_room::{Config, DisconnectReason, Event, Join, RoomRef, RoomRequest, Rooms, TrackKind};
use salon_sid::{AccountSid, ApiKeySid, ParticipantSid, RoomSid, TrackSid};
use salon_store::{
    Account, ApiKeyRecord, PageRequest, ParticipantFilter, ParticipantStatus, RoomFilter,
    RoomStatus, Store, Timestamp,
};

struct Fixture {
    _db: Db,
    store: Store,
    rooms: Rooms,
    account: AccountSid,
    now: Instant,
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
            clock: 1_700_000_000_000,
        }
    }

    /// Write the core's pending events, one millisecond apart per batch.
    async fn flush(&mut self) {
        let events: Vec<Event> = std::iter::from_fn(|| self.rooms.poll_event()).collect();
        self.clock += 1;
        self.store
            .record(self.account, &events, Timestamp::from_millis(self.clock))
            .await
            .unwrap();
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
}

fn named(name: &str) -> RoomRequest {
    RoomRequest {
        unique_name: Some(name.into()),
        ..RoomRequest::default()
    }
}

async fn a_room_and_its_participants_are_recorded_from_events(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = RoomSid::random();
    f.rooms.create(f.now, room, &named("standup")).unwrap();
    f.flush().await;

    let record = f.store.room(room).await.unwrap().unwrap();
    assert_eq!(record.unique_name, "standup");
    assert_eq!(record.status, RoomStatus::InProgress);
    assert_eq!(record.max_participants, 50);
    assert_eq!(record.empty_room_timeout_minutes, 5);
    assert_eq!(record.account_sid, f.account);
    assert_eq!(
        f.store
            .room_in_progress_by_name("standup")
            .await
            .unwrap()
            .unwrap()
            .sid,
        room
    );

    let alice = f.join(room, "alice");
    let bob = f.join(room, "bob");
    f.flush().await;
    let camera = TrackSid::random();
    f.rooms
        .publish(alice, camera, "camera", TrackKind::Video, true)
        .unwrap();
    f.flush().await;

    let published = f
        .store
        .published_tracks(alice, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(published.items.len(), 1);
    assert_eq!(published.items[0].name, "camera");
    assert_eq!(published.items[0].kind, TrackKind::Video);
    let subscribed = f
        .store
        .subscribed_tracks(bob, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(subscribed.items.len(), 1);
    assert_eq!(subscribed.items[0].publisher_sid, alice);
    assert_eq!(subscribed.items[0].name, "camera");

    // Muting shows through both views.
    f.rooms.set_track_enabled(alice, camera, false).unwrap();
    f.flush().await;
    assert!(
        !f.store
            .published_track(alice, camera)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert!(
        !f.store
            .subscribed_track(bob, camera)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // Alice leaves: her track and Bob's subscription to it end with her.
    f.rooms
        .disconnect(f.now, alice, DisconnectReason::Left)
        .unwrap();
    f.flush().await;
    let gone = f.store.participant(room, alice).await.unwrap().unwrap();
    assert_eq!(gone.status, ParticipantStatus::Disconnected);
    assert_eq!(gone.end_reason.as_deref(), Some("left"));
    assert!(gone.duration().is_some());
    assert!(
        f.store
            .published_tracks(alice, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        f.store
            .subscribed_tracks(bob, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        f.store
            .connected_participant_by_identity(room, "alice")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        f.store
            .connected_participant_by_identity(room, "bob")
            .await
            .unwrap()
            .unwrap()
            .sid,
        bob
    );

    // Completing ends the room and disconnects Bob.
    f.rooms.complete(f.now, room).unwrap();
    f.flush().await;
    let ended = f.store.room(room).await.unwrap().unwrap();
    assert_eq!(ended.status, RoomStatus::Completed);
    assert!(ended.end_time.is_some());
    assert_eq!(ended.end_reason.as_deref(), Some("completed"));
    assert!(
        f.store
            .room_in_progress_by_name("standup")
            .await
            .unwrap()
            .is_none()
    );
    let bob_record = f.store.participant(room, bob).await.unwrap().unwrap();
    assert_eq!(bob_record.end_reason.as_deref(), Some("room-completed"));
}

async fn a_unique_name_can_be_reused_once_its_room_has_ended(db: Db) {
    let mut f = Fixture::new(db).await;
    let first = RoomSid::random();
    f.rooms.create(f.now, first, &named("weekly")).unwrap();
    f.rooms.complete(f.now, first).unwrap();
    let second = RoomSid::random();
    f.rooms.create(f.now, second, &named("weekly")).unwrap();
    f.flush().await;
    assert_eq!(
        f.store
            .room_in_progress_by_name("weekly")
            .await
            .unwrap()
            .unwrap()
            .sid,
        second
    );
    let all = RoomFilter {
        unique_name: Some("weekly".into()),
        ..RoomFilter::default()
    };
    assert_eq!(
        f.store
            .rooms(&all, &PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

async fn room_lists_filter_and_page_by_keyset_newest_first(db: Db) {
    let mut f = Fixture::new(db).await;
    let mut sids = Vec::new();
    for i in 0..7 {
        let sid = RoomSid::random();
        f.rooms
            .create(f.now, sid, &named(&format!("r{i}")))
            .unwrap();
        f.flush().await; // each room one millisecond later
        sids.push(sid);
    }
    f.rooms.complete(f.now, sids[0]).unwrap();
    f.flush().await;

    let in_progress = RoomFilter {
        status: Some(RoomStatus::InProgress),
        ..RoomFilter::default()
    };
    let mut request = PageRequest {
        size: 4,
        ..PageRequest::default()
    };
    let first = f.store.rooms(&in_progress, &request).await.unwrap();
    assert_eq!(
        first.items.iter().map(|r| r.sid).collect::<Vec<_>>(),
        [sids[6], sids[5], sids[4], sids[3]]
    );
    request.after = first.next.clone();
    assert!(request.after.is_some());
    // A room created between pages does not shift the second page.
    f.rooms
        .create(f.now, RoomSid::random(), &named("late"))
        .unwrap();
    f.flush().await;
    let second = f.store.rooms(&in_progress, &request).await.unwrap();
    assert_eq!(
        second.items.iter().map(|r| r.sid).collect::<Vec<_>>(),
        [sids[2], sids[1]]
    );
    assert!(second.next.is_none());

    let completed = RoomFilter {
        status: Some(RoomStatus::Completed),
        ..RoomFilter::default()
    };
    let done = f
        .store
        .rooms(&completed, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(done.items.len(), 1);
    assert_eq!(done.items[0].sid, sids[0]);

    // Date filters: created at or after the 3rd room, before the 6th.
    let third = f.store.room(sids[2]).await.unwrap().unwrap().date_created;
    let sixth = f.store.room(sids[5]).await.unwrap().unwrap().date_created;
    let window = RoomFilter {
        created_after: Some(third),
        created_before: Some(sixth),
        ..RoomFilter::default()
    };
    let got = f
        .store
        .rooms(&window, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        got.items.iter().map(|r| r.sid).collect::<Vec<_>>(),
        [sids[4], sids[3], sids[2]]
    );

    // Page numbers without a token act as offsets.
    let by_number = PageRequest {
        size: 2,
        number: 1,
        after: None,
    };
    let page = f
        .store
        .rooms(&RoomFilter::default(), &by_number)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
}

async fn participant_lists_filter_by_status_and_identity(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = RoomSid::random();
    f.rooms
        .create(f.now, room, &RoomRequest::default())
        .unwrap();
    let a = f.join(room, "a");
    f.flush().await;
    let b = f.join(room, "b");
    f.flush().await;
    f.rooms
        .disconnect(f.now, a, DisconnectReason::Kicked)
        .unwrap();
    f.flush().await;

    let connected = ParticipantFilter {
        status: Some(ParticipantStatus::Connected),
        ..Default::default()
    };
    let page = f
        .store
        .participants(room, &connected, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.iter().map(|p| p.sid).collect::<Vec<_>>(), [b]);
    let everyone = f
        .store
        .participants(room, &ParticipantFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        everyone.items.iter().map(|p| p.sid).collect::<Vec<_>>(),
        [a, b],
        "join order"
    );
    let named_a = ParticipantFilter {
        identity: Some("a".into()),
        ..Default::default()
    };
    let page = f
        .store
        .participants(room, &named_a, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items[0].end_reason.as_deref(), Some("kicked"));
    // A participant of another room is not found through this one.
    assert!(
        f.store
            .participant(RoomSid::random(), b)
            .await
            .unwrap()
            .is_none()
    );
}

async fn startup_closes_what_a_previous_process_left_in_progress(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = RoomSid::random();
    f.rooms.create(f.now, room, &named("crashed")).unwrap();
    let alice = f.join(room, "alice");
    f.rooms
        .publish(alice, TrackSid::random(), "mic", TrackKind::Audio, true)
        .unwrap();
    f.flush().await;

    // A database that never saw a heartbeat: everything ends at the restart.
    let abandoned = f
        .store
        .close_abandoned(Timestamp::from_millis(f.clock + 5_000))
        .await
        .unwrap();
    assert_eq!((abandoned.rooms, abandoned.participants), (1, 1));
    assert_eq!(abandoned.ended_at, Timestamp::from_millis(f.clock + 5_000));
    let record = f.store.room(room).await.unwrap().unwrap();
    assert_eq!(record.status, RoomStatus::Completed);
    assert_eq!(record.end_reason.as_deref(), Some("abandoned"));
    assert_eq!(record.duration(), Some(5));
    assert!(
        f.store
            .published_tracks(alice, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let again = f.store.close_abandoned(Timestamp::now()).await.unwrap();
    assert_eq!((again.rooms, again.participants), (0, 0), "idempotent");
}

async fn after_a_crash_rooms_end_when_their_server_was_last_seen_not_at_the_restart(db: Db) {
    let mut f = Fixture::new(db).await;
    let started = f.clock + 1;
    let room = RoomSid::random();
    f.rooms.create(f.now, room, &named("crashed")).unwrap();
    let alice = f.join(room, "alice");
    f.rooms
        .publish(alice, TrackSid::random(), "mic", TrackKind::Audio, true)
        .unwrap();
    f.flush().await;
    // The server beats for a minute, then dies; someone joined just after
    // the last beat.
    for second in 1..=60 {
        f.store
            .heartbeat(Timestamp::from_millis(started + second * 1_000))
            .await
            .unwrap();
    }
    let last_seen = started + 60_000;
    f.clock = last_seen + 2_000;
    let bob = f.join(room, "bob");
    f.flush().await;
    let bob_joined = f.clock;

    // It restarts an hour later.
    let abandoned = f
        .store
        .close_abandoned(Timestamp::from_millis(last_seen + 3_600_000))
        .await
        .unwrap();
    assert_eq!((abandoned.rooms, abandoned.participants), (1, 2));
    assert_eq!(abandoned.ended_at, Timestamp::from_millis(bob_joined));
    let record = f.store.room(room).await.unwrap().unwrap();
    assert_eq!(record.end_time, Some(Timestamp::from_millis(bob_joined)));
    assert_eq!(record.duration(), Some(62), "not an hour and a minute");
    for participant in [alice, bob] {
        let p = f
            .store
            .participant(room, participant)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.status, ParticipantStatus::Disconnected);
        assert_eq!(p.end_time, Some(Timestamp::from_millis(bob_joined)));
        assert!(p.end_time >= Some(p.start_time));
    }
}

async fn a_node_starting_up_ends_only_the_rooms_it_left_behind(db: Db) {
    // Two nodes share the database; node B crashed and restarts while node
    // A runs a room.
    let mut f = Fixture::new(db).await;
    let a = f.store.clone().for_node("node-a");
    let b = f.store.clone().for_node("node-b");
    let mut rooms = Vec::new();
    for (store, name) in [(&a, "on-a"), (&b, "on-b")] {
        let room = RoomSid::random();
        f.rooms.create(f.now, room, &named(name)).unwrap();
        f.join(room, "alice");
        let events: Vec<Event> = std::iter::from_fn(|| f.rooms.poll_event()).collect();
        f.clock += 1;
        store
            .record(f.account, &events, Timestamp::from_millis(f.clock))
            .await
            .unwrap();
        store
            .heartbeat(Timestamp::from_millis(f.clock))
            .await
            .unwrap();
        rooms.push(room);
    }
    let abandoned = b
        .close_abandoned(Timestamp::from_millis(f.clock + 60_000))
        .await
        .unwrap();
    assert_eq!((abandoned.rooms, abandoned.participants), (1, 1));
    let on_a = f.store.room(rooms[0]).await.unwrap().unwrap();
    let on_b = f.store.room(rooms[1]).await.unwrap().unwrap();
    assert_eq!(on_a.status, RoomStatus::InProgress, "node A's room runs on");
    assert_eq!(on_b.status, RoomStatus::Completed);
    let alice_on_a = f
        .store
        .participants(
            rooms[0],
            &ParticipantFilter::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(alice_on_a.items[0].status, ParticipantStatus::Connected);
}

async fn a_dead_nodes_rooms_fail_once_and_other_nodes_rooms_run_on(db: Db) {
    let mut f = Fixture::new(db).await;
    let a = f.store.clone().for_node("node-a");
    let c = f.store.clone().for_node("node-c");
    let mut rooms = Vec::new();
    for (store, name) in [(&a, "on-a"), (&c, "on-c")] {
        let room = RoomSid::random();
        f.rooms.create(f.now, room, &named(name)).unwrap();
        f.join(room, "alice");
        let events: Vec<Event> = std::iter::from_fn(|| f.rooms.poll_event()).collect();
        f.clock += 1;
        store
            .record(f.account, &events, Timestamp::from_millis(f.clock))
            .await
            .unwrap();
        rooms.push(room);
    }
    assert_eq!(
        a.nodes_with_rooms().await.unwrap(),
        [("node-a".to_owned(), 1), ("node-c".to_owned(), 1)]
    );
    let failed_at = Timestamp::from_millis(f.clock + 10_000);
    let failed = a.fail_node("node-c", failed_at).await.unwrap();
    assert_eq!((failed.rooms, failed.participants), (1, 1));
    let on_c = f.store.room(rooms[1]).await.unwrap().unwrap();
    assert_eq!(on_c.status, RoomStatus::Failed);
    assert_eq!(on_c.end_reason.as_deref(), Some("node-failed"));
    assert_eq!(on_c.end_time, Some(failed_at));
    let on_a = f.store.room(rooms[0]).await.unwrap().unwrap();
    assert_eq!(on_a.status, RoomStatus::InProgress);
    let again = a.fail_node("node-c", Timestamp::now()).await.unwrap();
    assert_eq!((again.rooms, again.participants), (0, 0), "once");
    assert_eq!(
        a.nodes_with_rooms().await.unwrap(),
        [("node-a".to_owned(), 1)]
    );
}

async fn data_survives_reopening(db: Db) {
    let room = RoomSid::random();
    {
        let store = db.open().await;
        let mut rooms = Rooms::new(Config::default());
        rooms
            .create(Instant::now(), room, &named("durable"))
            .unwrap();
        let events: Vec<Event> = std::iter::from_fn(|| rooms.poll_event()).collect();
        store
            .record(AccountSid::random(), &events, Timestamp::now())
            .await
            .unwrap();
        store.close().await;
    }
    let store = db.open().await;
    assert_eq!(
        store.room(room).await.unwrap().unwrap().unique_name,
        "durable"
    );
    let journal = store.journal_mode().await.unwrap();
    if db.is_sqlite() {
        assert_eq!(journal.as_deref(), Some("wal"));
    } else {
        assert_eq!(journal, None);
    }
}

async fn credentials_round_trip_and_revocation_is_seen_by_other_connections(db: Db) {
    let server = db.open().await;
    let cli = db.open().await;
    let mut watcher = server.watch().await.unwrap();
    // SQLite tells whether anything changed; on PostgreSQL every check
    // answers yes (see `ChangeWatcher::changed`).
    let quiet = !db.is_sqlite();
    assert_eq!(watcher.changed().await.unwrap(), quiet);

    let account = Account {
        sid: AccountSid::random(),
        auth_token: "t".repeat(32),
        friendly_name: "Salon".into(),
        date_created: Timestamp::now(),
    };
    cli.put_account(&account).await.unwrap();
    let key = ApiKeyRecord {
        sid: ApiKeySid::random(),
        account_sid: account.sid,
        secret: "s".repeat(32),
        friendly_name: "default".into(),
        date_created: Timestamp::now(),
        date_revoked: None,
    };
    cli.put_api_key(&key).await.unwrap();
    assert!(
        watcher.changed().await.unwrap(),
        "another connection's commit is noticed"
    );
    assert_eq!(watcher.changed().await.unwrap(), quiet);

    assert_eq!(server.accounts().await.unwrap(), [account]);
    assert_eq!(server.api_keys().await.unwrap(), std::slice::from_ref(&key));
    assert!(cli.revoke_api_key(key.sid, Timestamp::now()).await.unwrap());
    assert!(
        !cli.revoke_api_key(key.sid, Timestamp::now()).await.unwrap(),
        "only once"
    );
    assert!(watcher.changed().await.unwrap());
    assert!(
        server
            .api_key(key.sid)
            .await
            .unwrap()
            .unwrap()
            .date_revoked
            .is_some()
    );
    assert!(format!("{key:?}").contains("<redacted>") && !format!("{key:?}").contains("ssss"));
}

async fn many_events_in_one_batch_are_one_transaction(db: Db) {
    let mut f = Fixture::new(db).await;
    let room = RoomSid::random();
    f.rooms
        .create(f.now, room, &RoomRequest::default())
        .unwrap();
    for i in 0..50 {
        f.join(room, &format!("p{i}"));
    }
    f.flush().await;
    let page = f
        .store
        .participants(
            room,
            &ParticipantFilter::default(),
            &PageRequest {
                size: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 50);
}

/// A write the database refuses is not "unavailable" (it would be retried
/// forever); a database that is gone is.
async fn a_refused_write_is_told_apart_from_an_absent_database(db: Db) {
    let mut f = Fixture::new(db).await;
    f.rooms
        .create(f.now, RoomSid::random(), &named("standup"))
        .unwrap();
    f.flush().await;
    // Another node's core creates the same name at the same moment.
    let mut other = Rooms::new(Config::default());
    other
        .create(f.now, RoomSid::random(), &named("standup"))
        .unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| other.poll_event()).collect();
    let refused = f
        .store
        .record(f.account, &events, Timestamp::from_millis(f.clock + 1))
        .await
        .unwrap_err();
    assert!(refused.is_unique_violation(), "{refused}");
    assert!(!refused.is_unavailable(), "{refused}");

    f.store.close().await;
    let gone = f.store.ping().await.unwrap_err();
    assert!(gone.is_unavailable(), "{gone}");
}

on_both_databases!(
    a_refused_write_is_told_apart_from_an_absent_database,
    a_room_and_its_participants_are_recorded_from_events,
    a_unique_name_can_be_reused_once_its_room_has_ended,
    room_lists_filter_and_page_by_keyset_newest_first,
    participant_lists_filter_by_status_and_identity,
    startup_closes_what_a_previous_process_left_in_progress,
    after_a_crash_rooms_end_when_their_server_was_last_seen_not_at_the_restart,
    a_node_starting_up_ends_only_the_rooms_it_left_behind,
    a_dead_nodes_rooms_fail_once_and_other_nodes_rooms_run_on,
    data_survives_reopening,
    credentials_round_trip_and_revocation_is_seen_by_other_connections,
    many_events_in_one_batch_are_one_transaction,
);

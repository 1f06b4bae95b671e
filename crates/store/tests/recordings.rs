//! Recordings, recording rules and compositions in the store, on a real
//! SQLite file and a real PostgreSQL database: every query the recording
//! controller, the composition jobs and the REST API run, with the
//! `recording-*` and `composition-*` callbacks they write.

mod common;

use common::Db;
use std::time::Instant;

use salon_room::{
    CallbackMethod, Config, Event, Join, RoomRef, RoomRequest, Rooms, StatusCallback,
};
use salon_sid::{
    AccountSid, CompositionHookSid, CompositionSid, ParticipantSid, RecordingSid, RoomSid, TrackSid,
};
use salon_store::{
    CallbackEvent, CompositionFilter, CompositionHookFilter, CompositionHookRecord,
    CompositionRecord, NewRecording, OutboxCallback, PageRequest, RecordingFilter, RecordingStatus,
    Store, Timestamp,
};

const CALLBACK: &str = "https://app.example.com/rooms";

struct Fixture {
    _db: Db,
    store: Store,
    rooms: Rooms,
    account: AccountSid,
    now: Instant,
    /// Milliseconds since the epoch, moved on by [`Fixture::at`].
    clock: std::cell::Cell<i64>,
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
            clock: std::cell::Cell::new(1_700_000_000_000),
        }
    }

    fn at(&self, advance_ms: i64) -> Timestamp {
        self.clock.set(self.clock.get() + advance_ms);
        Timestamp::from_millis(self.clock.get())
    }

    async fn flush(&mut self) {
        let events: Vec<Event> = std::iter::from_fn(|| self.rooms.poll_event()).collect();
        let at = self.at(1);
        self.store.record(self.account, &events, at).await.unwrap();
    }

    /// A room with a status callback, and a participant in it.
    async fn room_with(&mut self, name: &str, identity: &str) -> (RoomSid, ParticipantSid) {
        let room = RoomSid::random();
        let request = RoomRequest {
            unique_name: Some(name.into()),
            status_callback: Some(StatusCallback {
                url: CALLBACK.into(),
                method: CallbackMethod::Post,
            }),
            record_participants_on_connect: Some(true),
            ..RoomRequest::default()
        };
        self.rooms.create(self.now, room, &request).unwrap();
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
        self.flush().await;
        (room, participant)
    }

    /// Every callback of the outbox, in delivery order, emptying it.
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

fn param<'a>(callback: &'a OutboxCallback, name: &str) -> Option<&'a str> {
    callback
        .params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn new_recording<'a>(
    f: &Fixture,
    sid: RecordingSid,
    room: RoomSid,
    participant: ParticipantSid,
    track: TrackSid,
    kind: &'a str,
    path: &'a str,
) -> NewRecording<'a> {
    NewRecording {
        sid,
        account_sid: f.account,
        room_sid: room,
        participant_sid: participant,
        track_sid: track,
        track_name: if kind == "audio" { "mic" } else { "cam" },
        kind,
        container_format: if kind == "audio" { "mka" } else { "mkv" },
        path,
    }
}

async fn a_recordings_life_is_stored_listed_and_called_back(db: Db) {
    let mut f = Fixture::new(db).await;
    let (room, alice) = f.room_with("recorded", "alice").await;
    let (other_room, bob) = f.room_with("other", "bob").await;
    f.drain().await;

    let (mic, cam, bobs) = (
        RecordingSid::random(),
        RecordingSid::random(),
        RecordingSid::random(),
    );
    let (mic_track, cam_track) = (TrackSid::random(), TrackSid::random());
    let at = f.at(10);
    for new in [
        new_recording(&f, mic, room, alice, mic_track, "audio", "r/mic.mka"),
        new_recording(&f, cam, room, alice, cam_track, "video", "r/cam.mkv"),
        new_recording(
            &f,
            bobs,
            other_room,
            bob,
            TrackSid::random(),
            "audio",
            "o/b.mka",
        ),
    ] {
        f.store.insert_recording(&new, at).await.unwrap();
    }
    let start = f.at(100);
    f.store
        .recording_started(mic, "opus", start, start)
        .await
        .unwrap();
    f.store
        .recording_started(cam, "VP8", start, start)
        .await
        .unwrap();
    let done = f.at(6_000);
    f.store
        .recording_completed(mic, 6_020, 48_000, done)
        .await
        .unwrap();
    f.store
        .recording_failed(cam, "the disk is full", done)
        .await
        .unwrap();
    // A second report changes nothing: the row moves once.
    f.store
        .recording_completed(cam, 1, 1, f.at(1))
        .await
        .unwrap();
    f.store.fail_unfinished_recordings(f.at(1)).await.unwrap();

    let r = f.store.recording(mic).await.unwrap().unwrap();
    assert_eq!(r.status, RecordingStatus::Completed);
    assert_eq!(
        (r.codec.as_deref(), r.duration_ms, r.size, r.start_time),
        (Some("opus"), 6_020, 48_000, Some(start))
    );
    assert_eq!((r.track_name.as_str(), r.kind.as_str()), ("mic", "audio"));
    let c = f.store.recording(cam).await.unwrap().unwrap();
    assert_eq!(c.status, RecordingStatus::Failed);
    assert_eq!(c.failure.as_deref(), Some("the disk is full"));
    // Bob's was still processing: failed at start-up.
    let b = f.store.recording(bobs).await.unwrap().unwrap();
    assert_eq!(b.status, RecordingStatus::Failed);

    // Lists: by room, by grouping SID (room or participant), by kind,
    // status, source, creation time; paged newest first.
    let store = f.store.clone();
    let list = |filter: RecordingFilter| {
        let store = store.clone();
        async move {
            let page = store
                .recordings(&filter, &PageRequest::default())
                .await
                .unwrap();
            let mut sids: Vec<RecordingSid> = page.items.iter().map(|r| r.sid).collect();
            sids.sort();
            sids
        }
    };
    let sorted = |mut v: Vec<RecordingSid>| {
        v.sort();
        v
    };
    assert_eq!(
        list(RecordingFilter {
            room_sid: Some(room),
            ..Default::default()
        })
        .await,
        sorted(vec![mic, cam])
    );
    assert_eq!(
        list(RecordingFilter {
            grouping_sid: Some(alice.to_string()),
            ..Default::default()
        })
        .await,
        sorted(vec![mic, cam])
    );
    assert_eq!(
        list(RecordingFilter {
            grouping_sid: Some(other_room.to_string()),
            ..Default::default()
        })
        .await,
        vec![bobs]
    );
    assert_eq!(
        list(RecordingFilter {
            media_type: Some("video".into()),
            ..Default::default()
        })
        .await,
        vec![cam]
    );
    assert_eq!(
        list(RecordingFilter {
            status: Some(RecordingStatus::Completed),
            source_sid: Some(mic_track),
            created_after: Some(Timestamp::from_millis(at.millis() - 1)),
            created_before: Some(Timestamp::from_millis(at.millis() + 1)),
            ..Default::default()
        })
        .await,
        vec![mic]
    );
    let first = f
        .store
        .recordings(
            &RecordingFilter::default(),
            &PageRequest {
                size: 2,
                ..PageRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = f
        .store
        .recordings(
            &RecordingFilter::default(),
            &PageRequest {
                size: 2,
                after: first.next.clone(),
                ..PageRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());

    // Deleting: finished ones only, once; then only a `deleted` filter
    // lists them.
    assert!(f.store.delete_recording(mic, f.at(1)).await.unwrap());
    assert!(!f.store.delete_recording(mic, f.at(1)).await.unwrap());
    assert_eq!(
        list(RecordingFilter {
            room_sid: Some(room),
            ..Default::default()
        })
        .await,
        vec![cam]
    );
    assert_eq!(
        list(RecordingFilter {
            status: Some(RecordingStatus::Deleted),
            ..Default::default()
        })
        .await,
        vec![mic]
    );
    // Its file, for this node (its room's) to remove when it starts.
    assert_eq!(
        f.store.deleted_media().await.unwrap().recordings,
        ["r/mic.mka"]
    );

    // The callbacks, in order per room, with Twilio's parameters.
    let callbacks = f.drain().await;
    let of_room: Vec<&OutboxCallback> = callbacks
        .iter()
        .filter(|c| c.stream == room.as_str())
        .collect();
    let events: Vec<&str> = of_room.iter().map(|c| c.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "recording-started",
            "recording-started",
            "recording-completed",
            "recording-failed"
        ]
    );
    let completed = of_room[2];
    assert_eq!(param(completed, "RecordingSid"), Some(mic.as_str()));
    assert_eq!(param(completed, "ParticipantIdentity"), Some("alice"));
    assert_eq!(param(completed, "Duration"), Some("6"));
    assert_eq!(param(completed, "Size"), Some("48000"));
    assert_eq!(param(completed, "Container"), Some("mka"));
    let uri = format!("/v1/Recordings/{mic}");
    assert_eq!(param(completed, "RecordingUri"), Some(uri.as_str()));
    assert_eq!(
        param(completed, "MediaUri"),
        Some(format!("{uri}/Media").as_str())
    );
    assert_eq!(param(of_room[0], "MediaUri"), None);
    assert_eq!(
        param(of_room[3], "FailedOperation"),
        Some("the disk is full")
    );
    let sequences: Vec<i64> = of_room.iter().map(|c| c.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
}

async fn recording_rules_are_replaced_whole(db: Db) {
    let mut f = Fixture::new(db).await;
    let (room, _) = f.room_with("ruled", "alice").await;
    assert_eq!(f.store.recording_rules(room).await.unwrap(), None);
    let first = f.at(1);
    f.store
        .set_recording_rules(room, r#"[{"type":"include","all":true}]"#, first)
        .await
        .unwrap();
    let later = f.at(1_000);
    f.store
        .set_recording_rules(room, r#"[{"type":"exclude","kind":"video"}]"#, later)
        .await
        .unwrap();
    assert_eq!(
        f.store.recording_rules(room).await.unwrap(),
        Some((r#"[{"type":"exclude","kind":"video"}]"#.to_owned(), later))
    );
    assert_eq!(
        f.store.recording_rules(RoomSid::random()).await.unwrap(),
        None
    );
}

fn composition(
    f: &Fixture,
    room: RoomSid,
    callback: Option<&str>,
    at: Timestamp,
) -> CompositionRecord {
    let sid = CompositionSid::random();
    CompositionRecord {
        sid,
        account_sid: f.account,
        room_sid: room,
        status: "enqueued".into(),
        format: "mp4".into(),
        resolution: "640x480".into(),
        video_layout: r#"{"grid":{"video_sources":["*"]}}"#.into(),
        audio_sources: r#"["*"]"#.into(),
        trim: true,
        status_callback: callback.map(str::to_owned),
        status_callback_method: "POST".into(),
        progress: 0,
        path: format!("{sid}.mp4"),
        size: 0,
        duration_ms: 0,
        failure: None,
        date_created: at,
        date_updated: at,
        date_completed: None,
    }
}

async fn a_compositions_life_is_stored_listed_and_called_back(db: Db) {
    let mut f = Fixture::new(db).await;
    let (room, _) = f.room_with("composed", "alice").await;
    f.drain().await;
    let at = f.at(1);
    let good = composition(&f, room, Some("https://app.example.com/compositions"), at);
    let bad = composition(&f, room, None, f.at(1));
    let elsewhere = composition(&f, RoomSid::random(), None, f.at(1));
    for c in [&good, &bad, &elsewhere] {
        f.store.insert_composition(c).await.unwrap();
    }
    let stored = f.store.composition(good.sid).await.unwrap().unwrap();
    assert_eq!(stored, good);

    let store = f.store.clone();
    let step_at = f.at(10);
    let step = |from: &'static [&'static str], to: &'static str, progress: u32| {
        let store = store.clone();
        let sid = good.sid;
        async move {
            let event = match to {
                "processing" if progress == 0 => Some(CallbackEvent::CompositionStarted),
                "processing" => Some(CallbackEvent::CompositionProgress),
                "completed" => Some(CallbackEvent::CompositionAvailable),
                _ => None,
            };
            let done = (to == "completed").then_some((12_345, 99_999));
            store
                .composition_change(sid, from, to, progress, done, None, event, step_at)
                .await
                .unwrap()
        }
    };
    assert!(step(&["enqueued"], "processing", 0).await);
    assert!(step(&["processing"], "processing", 50).await);
    assert!(step(&["processing"], "completed", 100).await);
    // From a status it is not in: nothing changes.
    assert!(!step(&["enqueued"], "processing", 0).await);
    let done = f.store.composition(good.sid).await.unwrap().unwrap();
    assert_eq!(
        (
            done.status.as_str(),
            done.progress,
            done.duration_ms,
            done.size
        ),
        ("completed", 100, 12_345, 99_999)
    );
    assert!(done.date_completed.is_some());
    let failed = f
        .store
        .composition_change(
            bad.sid,
            &["enqueued", "processing"],
            "failed",
            0,
            None,
            Some("no source matches"),
            Some(CallbackEvent::CompositionFailed),
            f.at(1),
        )
        .await
        .unwrap();
    assert!(failed);
    assert_eq!(
        f.store
            .composition(bad.sid)
            .await
            .unwrap()
            .unwrap()
            .failure
            .as_deref(),
        Some("no source matches")
    );

    let store = f.store.clone();
    let list = |filter: CompositionFilter| {
        let store = store.clone();
        async move {
            let mut sids: Vec<CompositionSid> = store
                .compositions(&filter, &PageRequest::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| c.sid)
                .collect();
            sids.sort();
            sids
        }
    };
    let mut of_room = vec![good.sid, bad.sid];
    of_room.sort();
    assert_eq!(
        list(CompositionFilter {
            room_sid: Some(room),
            ..Default::default()
        })
        .await,
        of_room
    );
    assert_eq!(
        list(CompositionFilter {
            status: Some("completed".into()),
            created_after: Some(Timestamp::from_millis(at.millis() - 1)),
            created_before: Some(Timestamp::from_millis(at.millis() + 1)),
            ..Default::default()
        })
        .await,
        vec![good.sid]
    );
    assert!(
        f.store
            .composition_change(
                good.sid,
                &["completed", "failed"],
                "deleted",
                100,
                None,
                None,
                None,
                f.at(1)
            )
            .await
            .unwrap()
    );
    assert_eq!(list(CompositionFilter::default()).await.len(), 2);
    assert_eq!(
        f.store.deleted_media().await.unwrap().compositions,
        std::slice::from_ref(&good.path)
    );

    // What a restart of this node resumes: its own compositions not
    // finished, never another node's.
    let unfinished: Vec<CompositionSid> = f
        .store
        .unfinished_compositions(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sid)
        .collect();
    assert_eq!(unfinished, [elsewhere.sid]);
    let other_node = f.store.clone().for_node("other-node");
    assert!(
        other_node
            .unfinished_compositions(10)
            .await
            .unwrap()
            .is_empty()
    );

    // Only the composition with a callback calls back, in order.
    let callbacks = f.drain().await;
    let events: Vec<&str> = callbacks.iter().map(|c| c.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "composition-enqueued",
            "composition-started",
            "composition-progress",
            "composition-available"
        ]
    );
    assert!(callbacks.iter().all(|c| c.stream == good.sid.as_str()));
    assert_eq!(param(&callbacks[2], "PercentageDone"), Some("50"));
    // Every step at the same instant: nothing left at that pace.
    assert_eq!(param(&callbacks[2], "SecondsRemaining"), Some("0"));
    assert_eq!(param(&callbacks[3], "Duration"), Some("12"));
    assert_eq!(param(&callbacks[3], "Size"), Some("99999"));
    let uri = format!("/v1/Compositions/{}", good.sid);
    assert!(
        callbacks
            .iter()
            .all(|c| param(c, "CompositionUri") == Some(uri.as_str()))
    );
    assert_eq!(
        param(&callbacks[3], "MediaUri"),
        Some(format!("{uri}/Media").as_str())
    );
}

async fn composition_hooks_are_stored_unique_by_name_listed_and_updated(db: Db) {
    let f = Fixture::new(db).await;
    let hook = |name: &str, enabled: bool, at: Timestamp| CompositionHookRecord {
        sid: CompositionHookSid::random(),
        account_sid: f.account,
        friendly_name: name.into(),
        enabled,
        video_layout: "{}".into(),
        audio_sources: r#"["*"]"#.into(),
        format: "webm".into(),
        resolution: "640x480".into(),
        trim: true,
        status_callback: None,
        status_callback_method: "POST".into(),
        date_created: at,
        date_updated: at,
    };
    let on = hook("on", true, f.at(1));
    let off = hook("off", false, f.at(1));
    f.store.insert_composition_hook(&on).await.unwrap();
    f.store.insert_composition_hook(&off).await.unwrap();
    let twin = hook("on", true, f.at(1));
    let refused = f.store.insert_composition_hook(&twin).await.unwrap_err();
    assert!(refused.is_unique_violation(), "{refused}");
    // Another account may use the name.
    let mut elsewhere = hook("on", true, f.at(1));
    elsewhere.account_sid = AccountSid::random();
    f.store.insert_composition_hook(&elsewhere).await.unwrap();

    assert_eq!(
        f.store.composition_hook(on.sid).await.unwrap(),
        Some(on.clone())
    );
    let enabled: Vec<CompositionHookSid> = f
        .store
        .enabled_composition_hooks(f.account)
        .await
        .unwrap()
        .iter()
        .map(|h| h.sid)
        .collect();
    assert_eq!(enabled, [on.sid]);
    let listed = f
        .store
        .composition_hooks(
            f.account,
            &CompositionHookFilter {
                enabled: Some(false),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&off));
    let by_name = f
        .store
        .composition_hooks(
            f.account,
            &CompositionHookFilter {
                friendly_name: Some("on".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    let mut changed = off.clone();
    changed.enabled = true;
    changed.format = "mp4".into();
    changed.date_updated = f.at(1);
    assert!(f.store.update_composition_hook(&changed).await.unwrap());
    assert_eq!(
        f.store.composition_hook(off.sid).await.unwrap(),
        Some(changed)
    );
    let mut renamed = on.clone();
    renamed.friendly_name = "off".into();
    assert!(
        f.store
            .update_composition_hook(&renamed)
            .await
            .unwrap_err()
            .is_unique_violation()
    );
    assert!(f.store.delete_composition_hook(on.sid).await.unwrap());
    assert!(!f.store.delete_composition_hook(on.sid).await.unwrap());
    assert_eq!(
        f.store
            .enabled_composition_hooks(f.account)
            .await
            .unwrap()
            .len(),
        1
    );
}

on_both_databases!(
    composition_hooks_are_stored_unique_by_name_listed_and_updated,
    a_recordings_life_is_stored_listed_and_called_back,
    recording_rules_are_replaced_whole,
    a_compositions_life_is_stored_listed_and_called_back,
);

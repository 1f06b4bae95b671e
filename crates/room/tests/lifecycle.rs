//! Room lifecycle scenarios, driven faster than real time: the clock is an
//! `Instant` the test advances by hand.

use std::time::{Duration, Instant};

use salon_room::{
    CallbackMethod, Config, DisconnectReason, EndReason, Event, Join, MediaQuality,
    NetworkQualityDetail, RoomRef, RoomRequest, RoomType, Rooms, StatusCallback, TrackKind,
};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};

const MINUTE: Duration = Duration::from_secs(60);

struct World {
    rooms: Rooms,
    now: Instant,
}

impl World {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Self {
            rooms: Rooms::new(config),
            now: Instant::now(),
        }
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        // Fire timers in order, as a real driver would, stopping at `target`.
        while let Some(at) = self.rooms.poll_timeout().filter(|at| *at <= target) {
            self.now = at;
            self.rooms.handle_timeout(at);
        }
        self.now = target;
        self.rooms.assert_consistent();
    }

    fn create(&mut self, request: RoomRequest) -> RoomSid {
        let sid = RoomSid::random();
        self.rooms
            .create(self.now, sid, &request)
            .expect("room created");
        sid
    }

    fn join(&mut self, room: RoomRef, identity: &str) -> Result<ParticipantSid, u32> {
        let participant = ParticipantSid::random();
        let join = Join {
            room,
            participant,
            identity: identity.to_owned(),
            auto_subscribe: true,
            new_room: RoomSid::random(),
        };
        let result = self
            .rooms
            .join(self.now, join)
            .map(|_| participant)
            .map_err(|e| e.code());
        self.rooms.assert_consistent();
        result
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.rooms.poll_event()).collect()
    }
}

fn named(name: &str) -> RoomRequest {
    RoomRequest {
        unique_name: Some(name.to_owned()),
        ..RoomRequest::default()
    }
}

#[test]
fn a_room_nobody_joins_ends_after_its_unused_room_timeout() {
    let mut w = World::new();
    let room = w.create(RoomRequest {
        unused_room_timeout: Some(2 * MINUTE),
        ..named("lonely")
    });
    w.events();

    w.advance(2 * MINUTE - Duration::from_millis(1));
    assert!(
        w.rooms.room(room).is_some(),
        "still open just before the timeout"
    );
    w.advance(Duration::from_millis(1));
    assert!(w.rooms.room(room).is_none());
    assert_eq!(
        w.events(),
        [Event::RoomEnded {
            room,
            reason: EndReason::UnusedRoomTimeout
        }]
    );
    assert!(
        w.rooms.room_by_name("lonely").is_none(),
        "the name is free again"
    );
    w.create(named("lonely"));
}

#[test]
fn a_room_everyone_left_ends_after_its_empty_room_timeout_unless_someone_returns() {
    let mut w = World::new();
    let room = w.create(RoomRequest {
        empty_room_timeout: Some(3 * MINUTE),
        ..named("standup")
    });
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();

    // Occupied rooms never time out, however long.
    w.advance(90 * MINUTE);
    assert!(w.rooms.room(room).is_some());

    w.rooms
        .disconnect(w.now, alice, DisconnectReason::Left)
        .unwrap();
    w.advance(2 * MINUTE);
    // Coming back within the timeout keeps the room alive and disarms the timer.
    let bob = w.join(RoomRef::Name("standup".into()), "bob").unwrap();
    w.advance(10 * MINUTE);
    assert!(w.rooms.room(room).is_some());

    w.rooms
        .disconnect(w.now, bob, DisconnectReason::Left)
        .unwrap();
    w.events();
    w.advance(3 * MINUTE);
    assert_eq!(
        w.events(),
        [Event::RoomEnded {
            room,
            reason: EndReason::EmptyRoomTimeout
        }]
    );
}

#[test]
fn each_room_type_admits_only_its_limit_and_refuses_the_next_with_53105() {
    for (room_type, limit) in [
        (RoomType::Go, 2),
        (RoomType::GroupSmall, 4),
        (RoomType::PeerToPeer, 10),
        (RoomType::Group, 50),
    ] {
        let mut w = World::new();
        let room = w.create(RoomRequest {
            room_type: Some(room_type),
            ..RoomRequest::default()
        });
        for i in 0..limit {
            w.join(RoomRef::Sid(room), &format!("user-{i}")).unwrap();
        }
        assert_eq!(
            w.join(RoomRef::Sid(room), "one-too-many"),
            Err(53105),
            "{room_type}"
        );
        assert_eq!(w.rooms.room(room).unwrap().participants().len(), limit);
    }
}

#[test]
fn max_participants_below_the_type_limit_is_enforced() {
    let mut w = World::new();
    let room = w.create(RoomRequest {
        max_participants: Some(3),
        ..RoomRequest::default()
    });
    for name in ["a", "b", "c"] {
        w.join(RoomRef::Sid(room), name).unwrap();
    }
    assert_eq!(w.join(RoomRef::Sid(room), "d"), Err(53105));
}

#[test]
fn the_operator_can_raise_the_group_ceiling() {
    let mut w = World::with(Config {
        group_max_participants: 200,
        ..Config::default()
    });
    let room = w.create(RoomRequest {
        max_participants: Some(200),
        ..RoomRequest::default()
    });
    for i in 0..200 {
        w.join(RoomRef::Sid(room), &format!("u{i}")).unwrap();
    }
    assert_eq!(w.join(RoomRef::Sid(room), "u200"), Err(53105));
}

#[test]
fn a_second_connection_with_the_same_identity_replaces_the_first_even_in_a_full_room() {
    let mut w = World::new();
    let room = w.create(RoomRequest {
        room_type: Some(RoomType::Go),
        ..RoomRequest::default()
    });
    let first = w.join(RoomRef::Sid(room), "alice").unwrap();
    w.join(RoomRef::Sid(room), "bob").unwrap();
    w.events();

    let second = w.join(RoomRef::Sid(room), "alice").unwrap();
    let events = w.events();
    assert_eq!(
        events[0],
        Event::ParticipantDisconnected {
            room,
            participant: first,
            identity: "alice".into(),
            reason: DisconnectReason::DuplicateIdentity,
        }
    );
    assert_eq!(DisconnectReason::DuplicateIdentity.code(), Some(53205));
    assert!(
        matches!(events[1], Event::ParticipantConnected { participant, .. } if participant == second)
    );
    assert_eq!(w.rooms.room(room).unwrap().participants().len(), 2);
}

#[test]
fn unique_names_are_unique_among_rooms_in_progress_only() {
    let mut w = World::new();
    let first = w.create(named("weekly"));
    let again = w
        .rooms
        .create(w.now, RoomSid::random(), &named("weekly"))
        .unwrap_err();
    assert_eq!(again.code(), 53113);

    w.rooms.complete(w.now, first).unwrap();
    let second = w.create(named("weekly"));
    assert_ne!(first, second);
    assert_eq!(w.rooms.room_by_name("weekly").unwrap().sid(), second);
}

#[test]
fn a_room_without_a_unique_name_is_named_by_its_sid() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    assert_eq!(w.rooms.room(room).unwrap().name(), room.as_str());
    let empty = w.create(named(""));
    assert_eq!(w.rooms.room(empty).unwrap().name(), empty.as_str());
}

#[test]
fn bad_names_are_refused_with_their_codes() {
    let mut w = World::new();
    let code = |w: &mut World, name: String| {
        w.rooms
            .create(w.now, RoomSid::random(), &named(&name))
            .unwrap_err()
            .code()
    };
    assert_eq!(code(&mut w, "x".repeat(129)), 53101);
    assert_eq!(code(&mut w, "tab\there".into()), 53102);
    assert_eq!(code(&mut w, RoomSid::random().to_string()), 53100);
    assert!(
        w.rooms
            .create(w.now, RoomSid::random(), &named(&"ü".repeat(128)))
            .is_ok()
    );

    let room = w.create(RoomRequest::default());
    assert_eq!(w.join(RoomRef::Sid(room), &"i".repeat(129)), Err(53201));
    assert_eq!(w.join(RoomRef::Sid(room), ""), Err(53200));
    assert_eq!(w.join(RoomRef::Sid(room), "bell\u{7}"), Err(53202));
}

#[test]
fn joining_by_name_creates_the_room_ad_hoc_unless_switched_off() {
    let mut w = World::new();
    w.join(RoomRef::Name("drop-in".into()), "alice").unwrap();
    let events = w.events();
    assert!(matches!(&events[0], Event::RoomCreated { name, .. } if name == "drop-in"));

    let mut strict = World::with(Config {
        ad_hoc_rooms: false,
        ..Config::default()
    });
    assert_eq!(
        strict.join(RoomRef::Name("drop-in".into()), "alice"),
        Err(53106)
    );
    assert!(strict.events().is_empty(), "a refused join changes nothing");
}

#[test]
fn a_room_created_ad_hoc_reports_to_the_configured_status_callback() {
    let callback = StatusCallback {
        url: "https://app.example.com/rooms".into(),
        method: CallbackMethod::Get,
    };
    let mut w = World::with(Config {
        ad_hoc_status_callback: Some(callback.clone()),
        ..Config::default()
    });
    w.join(RoomRef::Name("drop-in".into()), "alice").unwrap();
    let created = w.rooms.room_by_name("drop-in").unwrap();
    assert_eq!(created.settings().status_callback, Some(callback));

    // A room created through the REST API keeps what its creator asked for.
    let room = w.create(named("planned"));
    assert_eq!(w.rooms.room(room).unwrap().settings().status_callback, None);
}

#[test]
fn joining_a_completed_room_by_sid_is_refused() {
    let mut w = World::new();
    let room = w.create(named("done"));
    w.rooms.complete(w.now, room).unwrap();
    assert_eq!(w.join(RoomRef::Sid(room), "alice"), Err(53106));
    // By name, the name is free again, so a new room is made.
    w.join(RoomRef::Name("done".into()), "alice").unwrap();
    assert_ne!(w.rooms.room_by_name("done").unwrap().sid(), room);
}

#[test]
fn completing_a_room_disconnects_everyone_with_53118_then_ends_it() {
    let mut w = World::new();
    let room = w.create(named("allhands"));
    let a = w.join(RoomRef::Sid(room), "a").unwrap();
    let b = w.join(RoomRef::Sid(room), "b").unwrap();
    w.events();

    w.rooms.complete(w.now, room).unwrap();
    let events = w.events();
    let disconnected: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ParticipantDisconnected {
                participant,
                reason,
                ..
            } => Some((*participant, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        disconnected,
        [
            (a, DisconnectReason::RoomCompleted),
            (b, DisconnectReason::RoomCompleted)
        ]
    );
    assert_eq!(DisconnectReason::RoomCompleted.code(), Some(53118));
    assert_eq!(
        events.last(),
        Some(&Event::RoomEnded {
            room,
            reason: EndReason::Completed
        })
    );
    assert_eq!(w.rooms.participant_count(), 0);
    assert_eq!(w.rooms.complete(w.now, room).unwrap_err().code(), 53106);
    w.rooms.assert_consistent();
}

#[test]
fn a_participant_is_disconnected_when_its_maximum_duration_runs_out() {
    let mut w = World::new();
    let room = w.create(RoomRequest {
        max_participant_duration: Some(Duration::from_secs(600)),
        ..RoomRequest::default()
    });
    let early = w.join(RoomRef::Sid(room), "early").unwrap();
    w.advance(5 * MINUTE);
    let late = w.join(RoomRef::Sid(room), "late").unwrap();
    w.events();

    w.advance(5 * MINUTE);
    assert_eq!(
        w.events(),
        [Event::ParticipantDisconnected {
            room,
            participant: early,
            identity: "early".into(),
            reason: DisconnectReason::MaxDurationExceeded,
        }]
    );
    assert!(
        w.rooms.participant(late).is_some(),
        "the clock is per participant"
    );
    w.advance(5 * MINUTE);
    assert!(w.rooms.participant(late).is_none());
    // Once empty, the empty-room timeout (default 5 min) takes over.
    w.advance(5 * MINUTE);
    assert!(w.rooms.room(room).is_none());
}

#[test]
fn a_full_day_of_timeouts_runs_in_an_instant() {
    // 24 h of simulated time with a room churning every few minutes.
    let mut w = World::new();
    let started = std::time::Instant::now();
    for hour in 0..24 {
        let room = w.create(named(&format!("h{hour}")));
        let p = w.join(RoomRef::Sid(room), "worker").unwrap();
        w.advance(20 * MINUTE);
        w.rooms
            .disconnect(w.now, p, DisconnectReason::Left)
            .unwrap();
        w.advance(40 * MINUTE);
        assert!(
            w.rooms.room(room).is_none(),
            "hour {hour}: empty room closed"
        );
    }
    assert_eq!(w.rooms.rooms().count(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "simulated, not slept"
    );
}

#[test]
fn published_tracks_reach_auto_subscribers_and_late_joiners() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();
    let bob = w.join(RoomRef::Sid(room), "bob").unwrap();
    w.events();

    let camera = TrackSid::random();
    w.rooms
        .publish(alice, camera, "camera", TrackKind::Video, true)
        .unwrap();
    assert_eq!(
        w.events(),
        [
            Event::TrackPublished {
                room,
                participant: alice,
                track: camera,
                name: "camera".into(),
                kind: TrackKind::Video,
                enabled: true,
            },
            Event::Subscribed {
                room,
                subscriber: bob,
                publisher: alice,
                track: camera
            },
        ]
    );

    let carol = w.join(RoomRef::Sid(room), "carol").unwrap();
    let events = w.events();
    assert!(events.contains(&Event::Subscribed {
        room,
        subscriber: carol,
        publisher: alice,
        track: camera
    }));
    assert!(
        !w.rooms.participant(alice).unwrap().1.is_subscribed(camera),
        "not to oneself"
    );

    w.rooms.unpublish(alice, camera).unwrap();
    let events = w.events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[2],
        Event::TrackUnpublished {
            room,
            participant: alice,
            track: camera
        }
    );
    w.rooms.assert_consistent();
}

#[test]
fn track_rules_are_enforced_with_their_codes() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();
    let bob = w.join(RoomRef::Sid(room), "bob").unwrap();
    let mic = TrackSid::random();
    w.rooms
        .publish(alice, mic, "mic", TrackKind::Audio, true)
        .unwrap();

    let code = |r: Result<(), salon_room::RoomError>| r.unwrap_err().code();
    assert_eq!(
        code(
            w.rooms
                .publish(alice, TrackSid::random(), "mic", TrackKind::Audio, true)
        ),
        53304
    );
    assert_eq!(
        code(w.rooms.publish(bob, mic, "mine", TrackKind::Audio, true)),
        53300
    );
    assert_eq!(
        code(
            w.rooms
                .publish(alice, TrackSid::random(), "", TrackKind::Data, true)
        ),
        53301
    );
    let long = "t".repeat(129);
    assert_eq!(
        code(
            w.rooms
                .publish(alice, TrackSid::random(), &long, TrackKind::Data, true)
        ),
        53302
    );
    assert_eq!(
        code(w.rooms.unpublish(bob, mic)),
        53300,
        "only the publisher unpublishes"
    );
    assert_eq!(
        code(w.rooms.publish(
            ParticipantSid::random(),
            TrackSid::random(),
            "x",
            TrackKind::Data,
            true
        )),
        53204
    );
    // Another participant may use the same name.
    w.rooms
        .publish(bob, TrackSid::random(), "mic", TrackKind::Audio, true)
        .unwrap();
}

#[test]
fn muting_a_track_is_reported_once() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();
    let camera = TrackSid::random();
    w.rooms
        .publish(alice, camera, "camera", TrackKind::Video, true)
        .unwrap();
    w.events();
    w.rooms.set_track_enabled(alice, camera, false).unwrap();
    w.rooms.set_track_enabled(alice, camera, false).unwrap();
    assert_eq!(
        w.events(),
        [Event::TrackSwitched {
            room,
            participant: alice,
            track: camera,
            enabled: false
        }]
    );
    assert!(
        !w.rooms
            .participant(alice)
            .unwrap()
            .1
            .track(camera)
            .unwrap()
            .enabled()
    );
}

#[test]
fn a_participants_network_quality_level_is_kept_for_joiners() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();
    let level = |w: &World| w.rooms.participant(alice).unwrap().1.network_quality();
    assert_eq!(level(&w), None);
    w.events();
    let detail = NetworkQualityDetail {
        audio: Some(MediaQuality {
            send: 4,
            recv: 5,
            send_stats: None,
            recv_stats: None,
        }),
        video: None,
    };
    w.rooms.set_network_quality(alice, 4, Box::new(detail));
    assert_eq!(
        w.events(),
        [Event::NetworkQualityChanged {
            room,
            participant: alice,
            level: 4,
            detail: Box::new(detail),
        }]
    );
    assert_eq!(level(&w), Some((4, detail)));
}

#[test]
fn manual_subscription_for_participants_without_auto_subscribe() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();
    let viewer = ParticipantSid::random();
    w.rooms
        .join(
            w.now,
            Join {
                room: RoomRef::Sid(room),
                participant: viewer,
                identity: "viewer".into(),
                auto_subscribe: false,
                new_room: RoomSid::random(),
            },
        )
        .unwrap();
    let screen = TrackSid::random();
    w.rooms
        .publish(alice, screen, "screen", TrackKind::Video, true)
        .unwrap();
    assert!(!w.rooms.participant(viewer).unwrap().1.is_subscribed(screen));

    w.rooms.subscribe(viewer, screen).unwrap();
    w.rooms.subscribe(viewer, screen).unwrap();
    assert!(w.rooms.participant(viewer).unwrap().1.is_subscribed(screen));
    assert_eq!(
        w.rooms.subscribe(alice, screen).unwrap_err().code(),
        53300,
        "not to one's own track"
    );
    w.rooms.unsubscribe(viewer, screen).unwrap();
    assert!(!w.rooms.participant(viewer).unwrap().1.is_subscribed(screen));
    w.rooms.assert_consistent();
}

#[test]
fn leaving_ends_the_subscriptions_others_held_to_the_leavers_tracks() {
    let mut w = World::new();
    let room = w.create(RoomRequest::default());
    let alice = w.join(RoomRef::Sid(room), "alice").unwrap();
    let bob = w.join(RoomRef::Sid(room), "bob").unwrap();
    let camera = TrackSid::random();
    w.rooms
        .publish(alice, camera, "camera", TrackKind::Video, true)
        .unwrap();
    assert!(w.rooms.participant(bob).unwrap().1.is_subscribed(camera));

    w.rooms
        .disconnect(w.now, alice, DisconnectReason::Left)
        .unwrap();
    assert!(!w.rooms.participant(bob).unwrap().1.is_subscribed(camera));
    assert_eq!(
        w.rooms
            .disconnect(w.now, alice, DisconnectReason::Left)
            .unwrap_err()
            .code(),
        53204
    );
    w.rooms.assert_consistent();
}

#[test]
fn shutdown_ends_every_room_and_disconnects_everyone() {
    let mut w = World::new();
    for name in ["a", "b", "c"] {
        let room = w.create(named(name));
        w.join(RoomRef::Sid(room), "x").unwrap();
        w.join(RoomRef::Sid(room), "y").unwrap();
    }
    w.events();
    w.rooms.shutdown(w.now);
    let events = w.events();
    let ended = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::RoomEnded {
                    reason: EndReason::Shutdown,
                    ..
                }
            )
        })
        .count();
    let left = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ParticipantDisconnected {
                    reason: DisconnectReason::Shutdown,
                    ..
                }
            )
        })
        .count();
    assert_eq!((ended, left), (3, 6));
    assert_eq!(w.rooms.poll_timeout(), None, "no timers left");
    w.rooms.assert_consistent();
}

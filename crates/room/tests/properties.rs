//! Random sequences of commands and clock jumps never panic and never leave
//! the core's indexes disagreeing with its rooms.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use salon_room::{
    Config, DisconnectReason, Event, Join, RoomRef, RoomRequest, RoomType, Rooms, TrackKind,
};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};

#[derive(Debug, Clone)]
enum Op {
    Create { name: u8, room_type: u8, max: u8 },
    Complete { room: u8 },
    Join { name: u8, identity: u8, auto: bool },
    Leave { who: u8 },
    Publish { who: u8, name: u8, kind: u8 },
    Unpublish { who: u8, track: u8 },
    Mute { who: u8, track: u8, enabled: bool },
    Subscribe { who: u8, track: u8 },
    Unsubscribe { who: u8, track: u8 },
    Advance { secs: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..6u8, 0..5u8, 0..8u8).prop_map(|(name, room_type, max)| Op::Create {
            name,
            room_type,
            max
        }),
        (0..12u8).prop_map(|room| Op::Complete { room }),
        (0..6u8, 0..6u8, any::<bool>()).prop_map(|(name, identity, auto)| Op::Join {
            name,
            identity,
            auto
        }),
        (0..40u8).prop_map(|who| Op::Leave { who }),
        (0..40u8, 0..3u8, 0..3u8).prop_map(|(who, name, kind)| Op::Publish { who, name, kind }),
        (0..40u8, 0..60u8).prop_map(|(who, track)| Op::Unpublish { who, track }),
        (0..40u8, 0..60u8, any::<bool>()).prop_map(|(who, track, enabled)| Op::Mute {
            who,
            track,
            enabled
        }),
        (0..40u8, 0..60u8).prop_map(|(who, track)| Op::Subscribe { who, track }),
        (0..40u8, 0..60u8).prop_map(|(who, track)| Op::Unsubscribe { who, track }),
        (0..4000u16).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(i) % items.len()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_sequence_keeps_the_core_consistent(ops in prop::collection::vec(op(), 1..120)) {
        let mut rooms = Rooms::new(Config::default());
        let mut now = Instant::now();
        let mut room_sids = Vec::new();
        let mut participants = Vec::new();
        let mut tracks = Vec::new();
        for op in ops {
            match op {
                Op::Create { name, room_type, max } => {
                    let room_type = [RoomType::Go, RoomType::PeerToPeer, RoomType::GroupSmall, RoomType::Group]
                        .get(usize::from(room_type)).copied();
                    let request = RoomRequest {
                        unique_name: Some(format!("room-{name}")),
                        room_type,
                        max_participants: (max > 0).then_some(u32::from(max)),
                        empty_room_timeout: Some(Duration::from_secs(60)),
                        unused_room_timeout: Some(Duration::from_secs(120)),
                        max_participant_duration: Some(Duration::from_secs(900)),
                        ..RoomRequest::default()
                    };
                    let sid = RoomSid::random();
                    if rooms.create(now, sid, &request).is_ok() {
                        room_sids.push(sid);
                    }
                }
                Op::Complete { room } => {
                    if let Some(sid) = pick(&room_sids, room) {
                        let _ = rooms.complete(now, sid);
                    }
                }
                Op::Join { name, identity, auto } => {
                    let participant = ParticipantSid::random();
                    let join = Join {
                        room: RoomRef::Name(format!("room-{name}")),
                        participant,
                        identity: format!("user-{identity}"),
                        auto_subscribe: auto,
                        new_room: RoomSid::random(),
                    };
                    if let Ok(admission) = rooms.join(now, join) {
                        participants.push(participant);
                        room_sids.push(admission.room);
                    }
                }
                Op::Leave { who } => {
                    if let Some(p) = pick(&participants, who) {
                        let _ = rooms.disconnect(now, p, DisconnectReason::Left);
                    }
                }
                Op::Publish { who, name, kind } => {
                    if let Some(p) = pick(&participants, who) {
                        let track = TrackSid::random();
                        let kind = [TrackKind::Audio, TrackKind::Video, TrackKind::Data][usize::from(kind)];
                        if rooms.publish(p, track, &format!("t{name}"), kind, true).is_ok() {
                            tracks.push(track);
                        }
                    }
                }
                Op::Unpublish { who, track } => {
                    if let (Some(p), Some(t)) = (pick(&participants, who), pick(&tracks, track)) {
                        let _ = rooms.unpublish(p, t);
                    }
                }
                Op::Mute { who, track, enabled } => {
                    if let (Some(p), Some(t)) = (pick(&participants, who), pick(&tracks, track)) {
                        let _ = rooms.set_track_enabled(p, t, enabled);
                    }
                }
                Op::Subscribe { who, track } => {
                    if let (Some(p), Some(t)) = (pick(&participants, who), pick(&tracks, track)) {
                        let _ = rooms.subscribe(p, t);
                    }
                }
                Op::Unsubscribe { who, track } => {
                    if let (Some(p), Some(t)) = (pick(&participants, who), pick(&tracks, track)) {
                        let _ = rooms.unsubscribe(p, t);
                    }
                }
                Op::Advance { secs } => {
                    now += Duration::from_secs(u64::from(secs));
                    rooms.handle_timeout(now);
                    if let Some(next) = rooms.poll_timeout() {
                        prop_assert!(next > now, "every due timer fired");
                    }
                }
            }
            rooms.assert_consistent();
        }
        // Every participant that connected is either still connected or was
        // reported disconnected exactly once, in order.
        let mut connected = std::collections::HashSet::new();
        while let Some(event) = rooms.poll_event() {
            match event {
                Event::ParticipantConnected { participant, .. } => prop_assert!(connected.insert(participant)),
                Event::ParticipantDisconnected { participant, .. } => prop_assert!(connected.remove(&participant)),
                _ => {}
            }
        }
        prop_assert_eq!(connected.len(), rooms.participant_count());
    }
}

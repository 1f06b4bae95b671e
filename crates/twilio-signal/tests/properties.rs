//! Whatever a client sends, reading it answers a message or a 53004
//! refusal, never a panic; and every message the types can express survives
//! printing and reading unchanged.

use proptest::prelude::*;
use salon_sid::TrackSid;
use salon_twilio_signal::rsp::{
    ClientBody, Connect, Description, DescriptionType, Disconnect, LocalParticipantState,
    LocalTrack, MediaSignalingRequest, PeerConnection, Priority, Sync, TrackKind, Update,
};
use salon_twilio_signal::tcmp::{ClientFrame, Hello};
use salon_twilio_signal::{MAX_MESSAGE_BYTES, msp};

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9-]{1,40}"
}

fn track() -> impl Strategy<Value = LocalTrack> {
    (
        id(),
        prop_oneof![
            Just(TrackKind::Audio),
            Just(TrackKind::Video),
            Just(TrackKind::Data)
        ],
        ".{0,40}",
        any::<bool>(),
        proptest::option::of(prop_oneof![
            Just(Priority::Low),
            Just(Priority::Standard),
            Just(Priority::High)
        ]),
    )
        .prop_map(|(id, kind, name, enabled, priority)| LocalTrack {
            id,
            kind,
            name,
            enabled,
            priority,
            audio_processor: None,
        })
}

fn participant() -> impl Strategy<Value = LocalParticipantState> {
    (any::<u64>(), prop::collection::vec(track(), 0..5)).prop_map(|(revision, tracks)| {
        LocalParticipantState {
            revision,
            tracks,
            media_warnings: Vec::new(),
        }
    })
}

fn peer_connection() -> impl Strategy<Value = PeerConnection> {
    (
        id(),
        any::<u64>(),
        ".{0,200}",
        prop_oneof![Just(DescriptionType::Offer), Just(DescriptionType::Answer)],
    )
        .prop_map(|(id, revision, sdp, kind)| PeerConnection {
            id,
            description: Some(Description {
                kind,
                revision,
                sdp: Some(sdp),
            }),
            ice: None,
        })
}

fn body() -> impl Strategy<Value = ClientBody> {
    prop_oneof![
        (
            ".{0,64}",
            proptest::option::of(".{0,64}"),
            participant(),
            prop::collection::vec(peer_connection(), 0..2)
        )
            .prop_map(|(token, name, participant, peer_connections)| {
                ClientBody::Connect(Box::new(Connect {
                    version: 2,
                    token,
                    name,
                    participant,
                    peer_connections,
                    media_signaling: MediaSignalingRequest::default(),
                    subscribe: None,
                    bandwidth_profile: None,
                    ice_servers: None,
                    publisher: None,
                    format: None,
                }))
            }),
        (
            id(),
            proptest::option::of(participant()),
            proptest::option::of(prop::collection::vec(peer_connection(), 0..2))
        )
            .prop_map(|(session, participant, peer_connections)| {
                ClientBody::Update(Box::new(Update {
                    version: 2,
                    session,
                    participant,
                    peer_connections,
                    bandwidth_profile: None,
                    subscribe: None,
                }))
            }),
        (id(), ".{0,64}", participant()).prop_map(|(session, token, participant)| {
            ClientBody::Sync(Box::new(Sync {
                version: 3,
                session,
                token,
                name: None,
                participant,
                peer_connections: Vec::new(),
            }))
        }),
        id().prop_map(|session| ClientBody::Disconnect(Disconnect {
            version: 2,
            session
        })),
    ]
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = ClientFrame::parse(&text);
        let _ = ClientBody::parse(&text);
        let _ = msp::ClientMessage::parse(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(3)) {
        let text = value.to_string();
        let _ = ClientFrame::parse(&text);
        let _ = ClientBody::from_json(value);
        let _ = msp::ClientMessage::parse(&text);
    }

    #[test]
    fn bodies_survive_a_round_trip_in_a_hello(body in body(), hello_id in id()) {
        let frame = ClientFrame::Hello(Hello {
            id: hello_id,
            version: 2,
            timeout: Some(5000),
            body: Some(body.to_json_value()),
            cookie: None,
        });
        let ClientFrame::Hello(hello) = ClientFrame::parse(&frame.to_json()).unwrap() else {
            panic!("not a hello");
        };
        let back = ClientBody::from_json(hello.body.unwrap()).unwrap();
        prop_assert_eq!(back, body);
    }

    #[test]
    fn a_track_id_the_sdp_could_not_carry_is_refused(
        participant in participant(),
        bad in "[ \t\n]{1,3}",
    ) {
        let mut participant = participant;
        participant.tracks.push(LocalTrack {
            id: format!("a{bad}b"),
            kind: TrackKind::Video,
            name: "x".into(),
            enabled: true,
            priority: None,
            audio_processor: None,
        });
        let body = ClientBody::Update(Box::new(Update {
            version: 2,
            session: "s".into(),
            participant: Some(participant),
            peer_connections: None,
            bandwidth_profile: None,
            subscribe: None,
        }));
        let err = ClientBody::from_json(body.to_json_value()).unwrap_err();
        prop_assert_eq!(err.code(), 53004);
    }

    #[test]
    fn msp_track_sids_survive_a_round_trip(bytes in any::<[u8; 16]>(), id in any::<u64>()) {
        let message = msp::ClientMessage::ClientReset { track: TrackSid::from_bytes(bytes), id };
        prop_assert_eq!(msp::ClientMessage::parse(&message.to_json()).unwrap(), message);
    }
}

#[test]
fn a_frame_over_the_limit_is_refused_before_it_is_parsed() {
    let big = format!(
        r#"{{"type":"msg","body":{{"pad":"{}"}}}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    assert!(matches!(
        ClientFrame::parse(&big),
        Err(salon_twilio_signal::ProtocolError::TooLarge { .. })
    ));
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("hello"),
            Just("msg"),
            Just("connect"),
            Just("update"),
            Just("sync"),
            Just("render_hints"),
            Just("offer"),
            Just("MT00000000000000000000000000000000"),
        ]
        .prop_map(serde_json::Value::from),
        ".{0,10}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("version".to_owned()),
                    Just("body".to_owned()),
                    Just("id".to_owned()),
                    Just("participant".to_owned()),
                    Just("tracks".to_owned()),
                    Just("session".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Found by the `twilio_signal` fuzz target: a number too long for an
/// integer is read as a float, and must print back to the same float
/// (serde_json's `float_roundtrip`; without it the second reading could
/// differ in the last digit, e.g. 9.99999997e27 against
/// 9.999999969999999e27).
#[test]
fn a_long_number_in_a_body_prints_back_to_the_same_frame() {
    let text = r#"{"type": "msg", "body": {"type": "update", "participant": {"revision": 9999999969999999999999999993}}}"#;
    let frame = ClientFrame::parse(text).expect("a msg frame");
    let again = ClientFrame::parse(&frame.to_json()).expect("printed frames parse");
    assert_eq!(again, frame);
}

//! Whatever a client sends, parsing answers a message or a 53004 refusal,
//! never a panic; every message the types can express survives printing
//! and parsing unchanged; and fields a peer does not know change nothing.

use proptest::prelude::*;
use salon_sid::TrackSid;
use salon_signal::{
    ClientMessage, ProtocolError, PublishMedia, SubscribeMedia, TrackKind, VERSION,
};

fn track() -> impl Strategy<Value = TrackSid> {
    any::<[u8; 16]>().prop_map(TrackSid::from_bytes)
}

fn kind() -> impl Strategy<Value = TrackKind> {
    prop_oneof![
        Just(TrackKind::Audio),
        Just(TrackKind::Video),
        Just(TrackKind::Data)
    ]
}

fn message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (
            ".{0,64}",
            proptest::option::of(".{0,64}"),
            any::<bool>(),
            proptest::option::of(".{0,20}")
        )
            .prop_map(|(token, room, auto_subscribe, client)| {
                ClientMessage::Join {
                    version: VERSION,
                    token,
                    room,
                    auto_subscribe,
                    client,
                }
            }),
        (".{0,64}", "[0-9a-f]{0,32}").prop_map(|(token, session)| ClientMessage::Resume {
            version: VERSION,
            token,
            session
        }),
        (
            any::<u32>(),
            ".{0,200}",
            prop::collection::vec(("[0-9]{1,3}", ".{1,20}", kind(), any::<bool>()), 0..4),
            prop::collection::vec(("[0-9]{1,3}", track()), 0..4),
        )
            .prop_map(|(revision, sdp, publish, subscribe)| ClientMessage::Offer {
                revision,
                sdp,
                publish: publish
                    .into_iter()
                    .map(|(mid, name, kind, enabled)| PublishMedia {
                        mid,
                        name,
                        kind,
                        enabled
                    })
                    .collect(),
                subscribe: subscribe
                    .into_iter()
                    .map(|(mid, track)| SubscribeMedia { mid, track })
                    .collect(),
            }),
        (".{0,30}", ".{0,30}").prop_map(|(name, label)| ClientMessage::PublishData { name, label }),
        track().prop_map(|track| ClientMessage::Unpublish { track }),
        (track(), any::<bool>())
            .prop_map(|(track, enabled)| ClientMessage::SetTrackEnabled { track, enabled }),
        track().prop_map(|track| ClientMessage::Subscribe { track }),
        track().prop_map(|track| ClientMessage::Unsubscribe { track }),
        any::<u64>().prop_map(|id| ClientMessage::Ping { id }),
        Just(ClientMessage::Leave {}),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_parses_or_is_refused_with_53004(text in ".{0,300}") {
        if let Err(e) = ClientMessage::parse(&text) {
            prop_assert_eq!(e.code(), 53004);
        }
    }

    #[test]
    fn json_shaped_noise_parses_or_is_refused_with_53004(
        kind in prop_oneof![
            Just("join".to_owned()),
            Just("offer".to_owned()),
            Just("ping".to_owned()),
            Just("leave".to_owned()),
            Just("subscribe".to_owned()),
            ".{0,10}",
        ],
        fields in prop::collection::vec(("[a-z_]{1,12}", prop_oneof![Just("1".to_owned()), Just("\"x\"".to_owned()), Just("null".to_owned()), Just("[]".to_owned()), Just("{}".to_owned())]), 0..6),
    ) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let text = format!("{{\"type\":{},{}}}", serde_json::to_string(&kind).unwrap(), body.join(","));
        if let Err(e) = ClientMessage::parse(&text) {
            prop_assert_eq!(e.code(), 53004);
        }
    }

    #[test]
    fn every_message_round_trips(message in message()) {
        let text = message.to_json();
        prop_assert_eq!(ClientMessage::parse(&text).unwrap(), message);
    }

    /// A newer client's extra fields: the same message to this server.
    #[test]
    fn unknown_fields_change_nothing(
        message in message(),
        extra in prop::collection::vec(("x_[a-z_]{1,12}", json_value()), 1..4),
    ) {
        let mut value: serde_json::Value = serde_json::from_str(&message.to_json()).unwrap();
        let object = value.as_object_mut().unwrap();
        for (name, field) in extra {
            object.insert(name, field);
        }
        prop_assert_eq!(ClientMessage::parse(&value.to_string()).unwrap(), message);
    }

    /// A type this server does not know is refused as exactly that.
    #[test]
    fn unknown_types_are_named(kind in "[a-z_]{1,20}") {
        prop_assume!(!salon_signal::CLIENT_TYPES.contains(&kind.as_str()));
        let text = format!(r#"{{"type":"{kind}","id":1}}"#);
        let refused = matches!(
            ClientMessage::parse(&text),
            Err(ProtocolError::UnknownType { found, .. }) if found == kind
        );
        prop_assert!(refused);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,20}".prop_map(|s| json!(s)),
        Just(json!([1, "two", {"three": 3}])),
        Just(json!({"nested": {"deeper": []}})),
    ]
}

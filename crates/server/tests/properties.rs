//! Property tests for REST parameter parsing: whatever a client sends, the
//! parser answers with parameters or a Twilio-coded 400, never a panic, and a
//! live server never answers 5xx.

mod common;

use proptest::prelude::*;
use salon_server::rest::params::Params;
use salon_server::rest::rooms::room_request;

const ROOM_PARAMETERS: &[&str] = &[
    "UniqueName",
    "Type",
    "MaxParticipants",
    "EmptyRoomTimeout",
    "UnusedRoomTimeout",
    "MaxParticipantDuration",
    "StatusCallback",
    "StatusCallbackMethod",
    "VideoCodecs",
    "AudioOnly",
    "RecordParticipantsOnConnect",
    "MediaRegion",
    "Status",
    "PageSize",
    "Page",
    "PageToken",
    "DateCreatedAfter",
];

/// Values near the edges of what each parameter takes, plus noise.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("group-small".to_owned()),
        Just("https://example.com/cb".to_owned()),
        Just("POST".to_owned()),
        Just("VP8,H264".to_owned()),
        Just("true".to_owned()),
        Just("2024-01-01T00:00:00Z".to_owned()),
        (0u64..100_000).prop_map(|n| n.to_string()),
        "\\PC{0,40}",
        ".{0,200}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_form_bytes_parse_or_are_refused_with_20001(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        match Params::from_form(&bytes) {
            Ok(_) => {}
            Err(e) => prop_assert_eq!((e.status.as_u16(), e.code), (400, 20001)),
        }
    }

    #[test]
    fn any_json_bytes_parse_or_are_refused_with_20001(text in ".{0,200}") {
        if let Err(e) = Params::from_json(text.as_bytes()) {
            prop_assert_eq!((e.status.as_u16(), e.code), (400, 20001));
        }
    }

    #[test]
    fn room_parameters_are_accepted_or_refused_with_a_known_code(
        pairs in prop::collection::vec((prop::sample::select(ROOM_PARAMETERS), value()), 0..8)
    ) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let params = Params::from_form(body.as_bytes()).expect("encoded forms parse");
        let results = [
            room_request(&params).map(|_| ()),
            params.page().map(|_| ()),
            params.datetime("DateCreatedAfter").map(|_| ()),
        ];
        for result in results {
            if let Err(e) = result {
                prop_assert_eq!(e.status.as_u16(), 400);
                prop_assert!(
                    [20001, 53107, 53108, 53109, 53110, 53111, 53114, 53115].contains(&e.code),
                    "unexpected code {} ({})", e.code, e.message
                );
            }
        }
    }
}

proptest! {
    // Each case is a real HTTP request; keep the count modest.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_live_server_never_answers_5xx_to_random_room_creations(
        pairs in prop::collection::vec((prop::sample::select(ROOM_PARAMETERS), value()), 0..6),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let s = server().await;
            let form: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = s.post("/v1/Rooms", &form).await;
            assert!(status.as_u16() < 500, "{status}: {body}");
            let request = s.http.post(format!("{}/v1/Rooms", s.url)).basic_auth(s.key, Some(&s.secret)).body(raw.clone());
            let (status, body) = common::TestServer::send(request).await;
            assert!(status.as_u16() < 500, "{status}: {body}");
            s.stop().await;
        });
    }
}

async fn server() -> common::TestServer {
    common::TestServer::start().await
}

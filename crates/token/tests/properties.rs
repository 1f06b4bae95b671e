//! Properties over arbitrary input: verification never panics and always
//! answers with one of the seven token codes; any identity and room a person
//! could type survive minting and verification unchanged.

mod common;

use common::*;
use proptest::prelude::*;
use salon_token::{Algorithm, Grant, MintOptions, Rejection, Verifier, mint};
use serde_json::Value;

fn valid_token() -> String {
    mint(
        &key(),
        &Grant::new("alice").in_room("cool room"),
        NOW,
        &MintOptions::default(),
    )
    .unwrap()
}

#[track_caller]
fn assert_token_code(rejection: &Rejection) {
    let code = rejection.code();
    assert!(
        (20101..=20107).contains(&code),
        "{rejection:?} has code {code}"
    );
    // Every rejection explains itself and has Twilio's message.
    assert!(!rejection.to_string().is_empty());
    assert!(rejection.message().contains("Access Token"));
}

/// Strings that look like tokens: base64url characters, dots and a few
/// troublemakers, so generated input gets past the first checks.
fn tokenish() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.=+/ -]{0,200}"
}

/// One edit of a token's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Remove),
    ];
    proptest::collection::vec(edit, 1..6)
}

fn apply(token: &str, edits: &[Edit]) -> String {
    let mut bytes = token.as_bytes().to_vec();
    for edit in edits {
        match *edit {
            Edit::Replace(at, byte) if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            Edit::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Edit::Remove(at) if !bytes.is_empty() => _ = bytes.remove(at % bytes.len()),
            _ => {}
        }
    }
    // Tokens arrive as text; invalid UTF-8 becomes U+FFFD on the way in.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An identity or room: 1 to 128 arbitrary Unicode scalar values, control
/// characters, quotes and astral planes included.
fn grant_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 1..=128).prop_map(String::from_iter)
}

/// Where to put an arbitrary value: a header field or a claim.
fn claim_path() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        Just(vec!["header", "alg"]),
        Just(vec!["header", "typ"]),
        Just(vec!["header", "cty"]),
        Just(vec!["header", "crit"]),
        Just(vec!["jti"]),
        Just(vec!["iss"]),
        Just(vec!["sub"]),
        Just(vec!["iat"]),
        Just(vec!["nbf"]),
        Just(vec!["exp"]),
        Just(vec!["grants"]),
        Just(vec!["grants", "identity"]),
        Just(vec!["grants", "video"]),
        Just(vec!["grants", "video", "room"]),
    ]
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (NOW - 100_000..NOW + 100_000).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(Value::from(KEY)),
        Just(Value::from(ACCOUNT)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::HS256),
        Just(Algorithm::HS384),
        Just(Algorithm::HS512)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_are_rejected_with_a_token_code(text in any::<String>(), now in any::<u64>()) {
        let rejection = Verifier::default().verify(&text, &keyring(), now).unwrap_err();
        assert_token_code(&rejection);
    }

    #[test]
    fn tokenish_strings_are_rejected_with_a_token_code(text in tokenish()) {
        let rejection = Verifier::default().verify(&text, &keyring(), NOW).unwrap_err();
        assert_token_code(&rejection);
    }

    #[test]
    fn edited_tokens_are_rejected_with_a_token_code(edits in edits(), now in NOW - 100..NOW + 4000) {
        let original = valid_token();
        let edited = apply(&original, &edits);
        match Verifier::default().verify(&edited, &keyring(), now) {
            // Only an edit that changed nothing (e.g. a byte replaced by
            // itself) may leave a valid token.
            Ok(_) => prop_assert_eq!(&edited, &original),
            Err(rejection) => assert_token_code(&rejection),
        }
    }

    #[test]
    fn correctly_signed_tokens_with_arbitrary_claim_values_never_panic(
        path in claim_path(),
        value in proptest::option::of(json_value()),
    ) {
        // Signed with the right secret, so every check after the signature is
        // exercised with values of every JSON type, or with the claim removed.
        let token = forge(|header, claims| {
            let (target, path) = match path.split_first() {
                Some((&"header", rest)) => (header, rest),
                _ => (claims, &path[..]),
            };
            let Some((last, parents)) = path.split_last() else { return };
            let mut object = target;
            for parent in parents {
                object = &mut object[*parent];
            }
            match (&value, object.as_object_mut()) {
                (Some(value), Some(object)) => _ = object.insert((*last).into(), value.clone()),
                (None, Some(object)) => _ = object.remove(*last),
                (_, None) => {}
            }
        });
        if let Err(rejection) = Verifier::default().verify(&token, &keyring(), NOW) {
            assert_token_code(&rejection);
        }
    }

    #[test]
    fn signed_garbage_never_panics(header in "\\PC{0,80}", payload in "\\PC{0,200}") {
        let token = sign_text(&header, &payload, SECRET);
        if let Err(rejection) = Verifier::default().verify(&token, &keyring(), NOW) {
            assert_token_code(&rejection);
        }
    }

    #[test]
    fn any_identity_and_room_round_trip(
        identity in grant_text(),
        room in proptest::option::of(grant_text()),
        algorithm in algorithm(),
        ttl in 1u64..=86_400,
        elapsed in 0u64..=86_400,
    ) {
        let grant = Grant { identity: identity.clone(), room: room.clone() };
        let options = MintOptions { ttl: std::time::Duration::from_secs(ttl), algorithm, ..MintOptions::default() };
        let token = mint(&key(), &grant, NOW, &options).unwrap();
        let now = NOW + elapsed.min(ttl - 1);
        let verified = Verifier::default().verify(&token, &keyring(), now).unwrap();
        prop_assert_eq!(verified.identity, identity);
        prop_assert_eq!(verified.room, room);
        prop_assert_eq!(verified.algorithm, algorithm);
        prop_assert_eq!(verified.expires_at, NOW + ttl);
    }
}

//! Tokens made by Twilio's own helper libraries verify, and Salon mints the
//! same bytes from the same inputs.
//!
//! The vectors were produced once with the libraries themselves, clock pinned
//! to 2026-01-01T00:00:00Z (plus a fraction of a second, which they floor),
//! key `SKfedcba…3210`, account `AC0123…cdef`, secret `salon-fixture-secret-0123456789ab`:
//!
//! ```js
//! // npm twilio@6.2.0, Date.now = () => 1767225600123
//! const t = new AccessToken(ACCOUNT, KEY, SECRET, { identity: 'alice' });
//! t.addGrant(new VideoGrant({ room: 'cool room' }));
//! t.toJwt();            // NODE_BASIC; toJwt('HS384'), toJwt('HS512') likewise
//! ```
//!
//! ```python
//! # PyPI twilio 9.13.0, time.time = lambda: 1767225600.5
//! t = AccessToken(ACCOUNT, KEY, SECRET, identity='erin', ttl=14400)
//! t.add_grant(VideoGrant(room='cool room')); t.to_jwt()   # PYTHON
//! ```
//!
//! An independent Rust implementation (`jsonwebtoken`) checks the other way:
//! what it signs Salon verifies, and what Salon signs it decodes.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use salon_token::{Algorithm, Grant, MintOptions, Verifier, mint};

const NODE_BASIC: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJhbGljZSIsInZpZGVvIjp7InJvb20iOiJjb29sIHJvb20ifX0sImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI5MjAwLCJpc3MiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwIiwic3ViIjoiQUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZiJ9.1MPAPry7_yExCcTLejZrxphr31ubsvwFsbqQGqk-KmA";
const NODE_HS384: &str = "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJhbGljZSIsInZpZGVvIjp7InJvb20iOiJjb29sIHJvb20ifX0sImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI5MjAwLCJpc3MiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwIiwic3ViIjoiQUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZiJ9.6sIj6zZ4yu0bj0siMFA-OWrDD_LhhC_nA67PmU4Eapl3-tK8EJWkYYfiR6xrlG1G";
const NODE_HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJhbGljZSIsInZpZGVvIjp7InJvb20iOiJjb29sIHJvb20ifX0sImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI5MjAwLCJpc3MiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwIiwic3ViIjoiQUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZiJ9.SzvsDpdxRvInYd7QkLWmWVF-FeGj3mSiAgHGy_QYa-pIkx95LIpxaD-HmSfGc3IxGBsiJD7jr5yfks3Zj7blkw";
/// `{ identity: 'bob', ttl: 14400 }`, `new VideoGrant()` (no room).
const NODE_ANY_ROOM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJib2IiLCJ2aWRlbyI6e319LCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzI0MDAwMCwiaXNzIjoiU0tmZWRjYmE5ODc2NTQzMjEwZmVkY2JhOTg3NjU0MzIxMCIsInN1YiI6IkFDMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYifQ.bPMFVVvaPAoqwutqmV2zwsPAbyHfOzv_R5LetcJAdgY";
/// `{ identity: 'carol', nbf: 1767225500 }`, room given by SID.
const NODE_NBF: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJjYXJvbCIsInZpZGVvIjp7InJvb20iOiJSTTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIn19LCJuYmYiOjE3NjcyMjU1MDAsImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI5MjAwLCJpc3MiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwIiwic3ViIjoiQUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZiJ9.gk3YfwFrIrEUHBfcSD3nowLQr3DuijP3yPHZGLMdh3U";
/// `{ identity: 'dave', region: 'ie1' }`: a `twr` header.
const NODE_REGION: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIiwidHdyIjoiaWUxIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJkYXZlIiwidmlkZW8iOnsicm9vbSI6ImNvb2wgcm9vbSJ9fSwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjkyMDAsImlzcyI6IlNLZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTAiLCJzdWIiOiJBQzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIn0.73D3aIoedSaL5JUAE3FjOEwxGYH2yJ9CDFlZDT0F_No";
/// An identity that needs every kind of JSON escape, and a non-ASCII room.
const NODE_ESCAPES: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJ6b8OrIFwidGhlIFxcIHF1b3RlXCJcdTAwMDFcdDwvc2NyaXB0PuKAqPCfmIAiLCJ2aWRlbyI6eyJyb29tIjoic2FsbGUgw6l0w6kifX0sImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI5MjAwLCJpc3MiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwIiwic3ViIjoiQUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZiJ9.9UZ7bGrTcGP68A0LljO-f0dxM4RIRmvcX_IAaYRawbE";
const ESCAPED_IDENTITY: &str = "zoë \"the \\ quote\"\u{1}\t</script>\u{2028}😀";
/// twilio-python: header keys sorted, no `iat`, `nbf` = now, grants in another order.
const PYTHON: &str = "eyJhbGciOiJIUzI1NiIsImN0eSI6InR3aWxpby1mcGE7dj0xIiwidHlwIjoiSldUIn0.eyJqdGkiOiJTS2ZlZGNiYTk4NzY1NDMyMTBmZWRjYmE5ODc2NTQzMjEwLTE3NjcyMjU2MDAiLCJncmFudHMiOnsidmlkZW8iOnsicm9vbSI6ImNvb2wgcm9vbSJ9LCJpZGVudGl0eSI6ImVyaW4ifSwiaXNzIjoiU0tmZWRjYmE5ODc2NTQzMjEwZmVkY2JhOTg3NjU0MzIxMCIsImV4cCI6MTc2NzI0MDAwMCwibmJmIjoxNzY3MjI1NjAwLCJzdWIiOiJBQzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIn0.yZvQTbQ2RMq8ULxuhCH-r1qALpVT2kOInAAEKkOv0L0";

fn decoded(token: &str, part: usize) -> String {
    let text = token.split('.').nth(part).unwrap();
    String::from_utf8(URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

fn mint_at_now(grant: Grant, options: MintOptions) -> String {
    mint(&key(), &grant, NOW, &options).unwrap()
}

/// What twilio-node signs for alice in "cool room" at `NOW`, written out by hand.
const NODE_BASIC_HEADER: &str = r#"{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}"#;
const NODE_BASIC_PAYLOAD: &str = concat!(
    r#"{"jti":"SKfedcba9876543210fedcba9876543210-1767225600","#,
    r#""grants":{"identity":"alice","video":{"room":"cool room"}},"#,
    r#""iat":1767225600,"exp":1767229200,"#,
    r#""iss":"SKfedcba9876543210fedcba9876543210","sub":"AC0123456789abcdef0123456789abcdef"}"#,
);

#[test]
fn a_token_built_by_hand_is_byte_for_byte_twilio_nodes() {
    assert_eq!(decoded(NODE_BASIC, 0), NODE_BASIC_HEADER);
    assert_eq!(decoded(NODE_BASIC, 1), NODE_BASIC_PAYLOAD);
    // Signed with the test's own HMAC, not the crate's.
    let by_hand = sign_text(NODE_BASIC_HEADER, NODE_BASIC_PAYLOAD, SECRET);
    assert_eq!(by_hand, NODE_BASIC);
    let verified = Verifier::default()
        .verify(&by_hand, &keyring(), NOW)
        .unwrap();
    assert_eq!(verified.identity, "alice");
}

#[test]
fn twilio_node_tokens_verify() {
    let verifier = Verifier::default();
    for (token, algorithm) in [
        (NODE_BASIC, Algorithm::HS256),
        (NODE_HS384, Algorithm::HS384),
        (NODE_HS512, Algorithm::HS512),
    ] {
        let verified = verifier.verify(token, &keyring(), NOW + 1).unwrap();
        assert_eq!(verified.algorithm, algorithm);
        assert_eq!(verified.identity, "alice");
        assert_eq!(verified.room.as_deref(), Some("cool room"));
        assert_eq!(verified.jti, format!("{KEY}-{NOW}"));
        assert_eq!(
            (verified.issued_at, verified.expires_at),
            (Some(NOW), NOW + 3600)
        );
    }
    let any = verifier.verify(NODE_ANY_ROOM, &keyring(), NOW).unwrap();
    assert_eq!(
        (any.identity.as_str(), any.room, any.expires_at),
        ("bob", None, NOW + 14_400)
    );
    let nbf = verifier.verify(NODE_NBF, &keyring(), NOW).unwrap();
    assert_eq!(nbf.not_before, Some(NOW - 100));
    assert!(
        nbf.allows_room("any name", "RM0123456789abcdef0123456789abcdef")
            .is_ok()
    );
    let region = verifier.verify(NODE_REGION, &keyring(), NOW).unwrap();
    assert_eq!(region.identity, "dave");
    let escapes = verifier.verify(NODE_ESCAPES, &keyring(), NOW).unwrap();
    assert_eq!(escapes.identity, ESCAPED_IDENTITY);
    assert_eq!(escapes.room.as_deref(), Some("salle été"));
}

#[test]
fn salon_mints_the_same_bytes_as_twilio_node() {
    let alice = || Grant::new("alice").in_room("cool room");
    let with = |algorithm| MintOptions {
        algorithm,
        ..MintOptions::default()
    };
    assert_eq!(mint_at_now(alice(), MintOptions::default()), NODE_BASIC);
    assert_eq!(mint_at_now(alice(), with(Algorithm::HS384)), NODE_HS384);
    assert_eq!(mint_at_now(alice(), with(Algorithm::HS512)), NODE_HS512);
    let tutorial = MintOptions {
        ttl: Duration::from_secs(14_400),
        ..MintOptions::default()
    };
    assert_eq!(mint_at_now(Grant::new("bob"), tutorial), NODE_ANY_ROOM);
    let nbf = MintOptions {
        not_before: Some(NOW - 100),
        ..MintOptions::default()
    };
    let carol = Grant::new("carol").in_room("RM0123456789abcdef0123456789abcdef");
    assert_eq!(mint_at_now(carol, nbf), NODE_NBF);
    let escapes = Grant::new(ESCAPED_IDENTITY).in_room("salle été");
    assert_eq!(mint_at_now(escapes, MintOptions::default()), NODE_ESCAPES);
}

#[test]
fn a_twilio_python_token_verifies() {
    assert_eq!(
        decoded(PYTHON, 0),
        r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#
    );
    let verified = Verifier::default()
        .verify(PYTHON, &keyring(), NOW + 5)
        .unwrap();
    assert_eq!(verified.identity, "erin");
    assert_eq!(verified.room.as_deref(), Some("cool room"));
    assert_eq!(verified.issued_at, None);
    assert_eq!(verified.not_before, Some(NOW));
    assert_eq!(verified.expires_at, NOW + 14_400);
}

#[test]
fn what_jsonwebtoken_signs_salon_verifies() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    for (alg, algorithm) in [
        (jsonwebtoken::Algorithm::HS256, Algorithm::HS256),
        (jsonwebtoken::Algorithm::HS384, Algorithm::HS384),
        (jsonwebtoken::Algorithm::HS512, Algorithm::HS512),
    ] {
        let mut header = Header::new(alg);
        header.cty = Some("twilio-fpa;v=1".into());
        let token = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let verified = Verifier::default().verify(&token, &keyring(), NOW).unwrap();
        assert_eq!(
            (verified.identity.as_str(), verified.algorithm),
            ("alice", algorithm)
        );
    }
}

#[test]
fn what_salon_mints_jsonwebtoken_decodes() {
    use jsonwebtoken::{DecodingKey, Validation, decode};
    let token = mint_at_now(
        Grant::new("alice").in_room("cool room"),
        MintOptions::default(),
    );
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    // It reads the system clock; the fixture time is fixed.
    validation.validate_exp = false;
    validation.set_issuer(&[KEY]);
    validation.sub = Some(ACCOUNT.into());
    let data = decode::<serde_json::Value>(
        &token,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .unwrap();
    assert_eq!(data.claims, claims());
    assert_eq!(data.header.cty.as_deref(), Some("twilio-fpa;v=1"));
    assert!(
        decode::<serde_json::Value>(&token, &DecodingKey::from_secret(b"wrong"), &validation)
            .is_err()
    );
}

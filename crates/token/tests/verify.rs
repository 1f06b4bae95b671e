//! Scenarios: what Salon accepts, what it refuses, with which code and why.

mod common;

use common::*;
use salon_token::{
    Algorithm, Claim, Found, Grant, JsonType, MintError, MintOptions, Part, Rejection,
    VerifiedToken, Verifier, decode_unverified, mint,
};
use serde_json::{Value, json};
use std::time::Duration;

fn verify(token: &str) -> Result<VerifiedToken, Rejection> {
    Verifier::default().verify(token, &keyring(), NOW)
}

fn verify_at(token: &str, now: u64) -> Result<VerifiedToken, Rejection> {
    Verifier::default().verify(token, &keyring(), now)
}

/// The rejection of `token`, checking it has `code`.
#[track_caller]
fn rejected(token: &str, code: u32) -> Rejection {
    rejected_at(token, NOW, code)
}

#[track_caller]
fn rejected_at(token: &str, now: u64, code: u32) -> Rejection {
    let rejection = verify_at(token, now).expect_err("token was accepted");
    assert_eq!(rejection.code(), code, "{rejection:?}: {rejection}");
    rejection
}

fn alice() -> Grant {
    Grant::new("alice").in_room("cool room")
}

fn minted(grant: &Grant, options: &MintOptions) -> String {
    mint(&key(), grant, NOW, options).unwrap()
}

// ---------------------------------------------------------------- accepted

#[test]
fn a_minted_token_verifies_with_every_algorithm() {
    for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let options = MintOptions {
            algorithm,
            ..MintOptions::default()
        };
        let token = minted(&alice(), &options);
        let verified = verify_at(&token, NOW + 10).unwrap();
        assert_eq!(
            verified,
            VerifiedToken {
                identity: "alice".into(),
                room: Some("cool room".into()),
                key: sid(KEY),
                account: account(),
                issued_at: Some(NOW),
                not_before: None,
                expires_at: NOW + 3600,
                jti: format!("{KEY}-{NOW}"),
                algorithm,
            }
        );
    }
}

#[test]
fn a_token_without_a_room_allows_every_room() {
    let verified = verify(&minted(&Grant::new("bob"), &MintOptions::default())).unwrap();
    assert_eq!(verified.room, None);
    assert!(
        verified
            .allows_room("anything", "RM0123456789abcdef0123456789abcdef")
            .is_ok()
    );
}

#[test]
fn a_room_grant_allows_its_room_by_name_or_by_sid() {
    let room_sid = "RM0123456789abcdef0123456789abcdef";
    let by_name = verify(&minted(&alice(), &MintOptions::default())).unwrap();
    assert!(by_name.allows_room("cool room", room_sid).is_ok());

    let by_sid = verify(&minted(
        &Grant::new("alice").in_room(room_sid),
        &MintOptions::default(),
    ))
    .unwrap();
    assert!(by_sid.allows_room("cool room", room_sid).is_ok());
    // Twilio SIDs may be written with either case of hex digit.
    let upper_hex = format!("RM{}", room_sid[2..].to_uppercase());
    assert!(by_sid.allows_room("another name", &upper_hex).is_ok());
}

#[test]
fn a_room_grant_refuses_another_room_by_name_and_by_sid() {
    let by_name = verify(&minted(&alice(), &MintOptions::default())).unwrap();
    let refused = by_name
        .allows_room("Cool Room", "RM00000000000000000000000000000001")
        .unwrap_err();
    assert_eq!(refused.code(), 20106);
    assert_eq!(
        refused,
        Rejection::RoomNotGranted {
            granted: "cool room".into(),
            name: "Cool Room".into(),
            sid: "RM00000000000000000000000000000001".into(),
        }
    );
    assert!(
        refused
            .to_string()
            .contains("grants room \"cool room\", not room \"Cool Room\"")
    );

    let sid_grant = Grant::new("alice").in_room("RM0123456789abcdef0123456789abcdef");
    let by_sid = verify(&minted(&sid_grant, &MintOptions::default())).unwrap();
    let refused = by_sid
        .allows_room("cool room", "RM0123456789abcdef0123456789abcde0")
        .unwrap_err();
    assert_eq!(refused.code(), 20106);
}

#[test]
fn the_twr_region_header_is_ignored() {
    let token = forge(|header, _| header["twr"] = json!("ie1"));
    assert_eq!(verify(&token).unwrap().identity, "alice");
}

#[test]
fn a_python_style_token_without_iat_verifies() {
    // twilio-python sets nbf = now and no iat.
    let token = forge(|_, claims| {
        let claims = claims.as_object_mut().unwrap();
        claims.remove("iat");
        claims.insert("nbf".into(), json!(NOW));
    });
    let verified = verify(&token).unwrap();
    assert_eq!((verified.issued_at, verified.not_before), (None, Some(NOW)));

    let bare = forge(|_, claims| _ = claims.as_object_mut().unwrap().remove("iat"));
    assert_eq!(verify(&bare).unwrap().issued_at, None);
}

#[test]
fn unknown_claims_and_other_products_grants_are_ignored() {
    let token = forge(|header, claims| {
        header["kid"] = json!("whatever");
        claims["aud"] = json!(["x"]);
        claims["grants"]["chat"] = json!({"service_sid": "IS0123"});
        claims["grants"]["video"]["extra"] = json!(null);
    });
    assert!(verify(&token).is_ok());
}

#[test]
fn typ_may_be_absent() {
    let token = forge(|header, _| _ = header.as_object_mut().unwrap().remove("typ"));
    assert!(verify(&token).is_ok());
}

// ---------------------------------------------------------------- 20101

#[test]
fn a_token_over_8_kib_is_refused_before_decoding() {
    let garbage = "!".repeat(8 * 1024 + 1);
    assert_eq!(
        rejected(&garbage, 20101),
        Rejection::TokenTooLong { bytes: 8193 }
    );

    // A well-formed token just over the limit is refused the same way…
    let padding = "x".repeat(8 * 1024);
    let big = forge(|_, claims| claims["padding"] = json!(padding));
    assert!(matches!(
        rejected(&big, 20101),
        Rejection::TokenTooLong { .. }
    ));
    // …and one just under it is decoded and accepted.
    let padding = "x".repeat(5 * 1024);
    let under = forge(|_, claims| claims["padding"] = json!(padding));
    assert!(under.len() <= 8 * 1024 && verify(&under).is_ok());
}

#[test]
fn a_token_needs_exactly_three_parts() {
    let token = minted(&alice(), &MintOptions::default());
    let (signed, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        rejected(signed, 20101),
        Rejection::NotThreeParts { parts: 2 }
    );
    assert_eq!(
        rejected(&format!("{token}.x"), 20101),
        Rejection::NotThreeParts { parts: 4 }
    );
    assert_eq!(rejected("", 20101), Rejection::NotThreeParts { parts: 1 });
    assert!(
        rejected("abc", 20101)
            .to_string()
            .contains("1 dot-separated part;")
    );
}

#[test]
fn header_and_payload_must_be_unpadded_base64url() {
    let token = minted(&alice(), &MintOptions::default());
    let (header, rest) = token.split_once('.').unwrap();
    let bad_header = format!("{}*.{rest}", &header[..header.len() - 1]);
    assert_eq!(
        rejected(&bad_header, 20101),
        Rejection::BadBase64 { part: Part::Header }
    );
    let padded = format!("{header}==.{rest}");
    assert_eq!(
        rejected(&padded, 20101),
        Rejection::BadBase64 { part: Part::Header }
    );
    let (payload, signature) = rest.split_once('.').unwrap();
    let standard_alphabet = format!("{header}.{}+/.{signature}", &payload[..payload.len() - 2]);
    assert_eq!(
        rejected(&standard_alphabet, 20101),
        Rejection::BadBase64 {
            part: Part::Payload
        }
    );
}

#[test]
fn the_payload_must_be_a_json_object() {
    let header = header().to_string();
    let token = sign_text(&header, "not json", SECRET);
    assert!(matches!(
        rejected(&token, 20101),
        Rejection::PayloadNotJson { .. }
    ));
    let token = sign_text(&header, "[1,2]", SECRET);
    assert_eq!(
        rejected(&token, 20101),
        Rejection::PayloadNotObject {
            found: JsonType::Array
        }
    );
    let token = sign_text(&header, r#"{"exp":1} trailing"#, SECRET);
    assert!(matches!(
        rejected(&token, 20101),
        Rejection::PayloadNotJson { .. }
    ));
}

#[test]
fn a_claim_salon_ignores_must_still_be_text() {
    // A correctly signed token whose payload is JSON in shape but holds bytes
    // that are not UTF-8 in a claim nothing reads: not JSON text, so not a
    // token (RFC 8259 §8.1).
    let mut payload = claims().to_string().into_bytes();
    payload.pop(); // the closing brace
    payload.extend_from_slice(b",\"note\":\"caf\xe9 \xff\xfe\"}");
    let token = sign_bytes(header().to_string().as_bytes(), &payload, SECRET);
    let rejection = rejected(&token, 20101);
    assert!(
        matches!(&rejection, Rejection::PayloadNotJson { error } if error.contains("UTF-8")),
        "{rejection:?}"
    );
    // The same in a header field nobody reads (`kid`): a bad header.
    let mut header = header().to_string().into_bytes();
    header.pop();
    header.extend_from_slice(b",\"kid\":\"\xc3\x28\"}");
    let token = sign_bytes(&header, claims().to_string().as_bytes(), SECRET);
    assert!(matches!(
        rejected(&token, 20102),
        Rejection::HeaderNotJson { .. }
    ));
    // With the same claim as text, the token verifies.
    let token = forge(|_, claims| claims["note"] = json!("café"));
    assert!(verify(&token).is_ok());
}

#[test]
fn a_repeated_claim_is_refused() {
    let payload = claims()
        .to_string()
        .replacen('{', &format!("{{\"iss\":\"{OTHER_KEY}\","), 1);
    let token = sign_text(&header().to_string(), &payload, SECRET);
    let rejection = rejected(&token, 20101);
    assert!(
        rejection.to_string().contains("duplicate member `iss`"),
        "{rejection}"
    );
}

#[test]
fn jti_iat_and_nbf_must_have_their_types() {
    let no_jti = forge(|_, c| _ = c.as_object_mut().unwrap().remove("jti"));
    assert_eq!(
        rejected(&no_jti, 20101),
        Rejection::MissingClaim { claim: Claim::Jti }
    );
    let numeric_jti = forge(|_, c| c["jti"] = json!(7));
    assert_eq!(
        rejected(&numeric_jti, 20101),
        Rejection::WrongClaimType {
            claim: Claim::Jti,
            found: JsonType::Integer
        }
    );
    let text_iat = forge(|_, c| c["iat"] = json!("1767225600"));
    assert_eq!(
        rejected(&text_iat, 20101),
        Rejection::WrongClaimType {
            claim: Claim::Iat,
            found: JsonType::String
        }
    );
    let fractional_nbf = forge(|_, c| c["nbf"] = json!(1767225600.5));
    assert_eq!(
        rejected(&fractional_nbf, 20101),
        Rejection::WrongClaimType {
            claim: Claim::Nbf,
            found: JsonType::Number
        }
    );
}

// ---------------------------------------------------------------- 20102

#[test]
fn alg_none_is_refused() {
    let header = r#"{"alg":"none","typ":"JWT","cty":"twilio-fpa;v=1"}"#;
    let unsigned = sign_text(header, &claims().to_string(), SECRET);
    let (signed, _) = unsigned.rsplit_once('.').unwrap();
    let rejection = rejected(&format!("{signed}."), 20102);
    assert_eq!(
        rejection,
        Rejection::UnsupportedAlgorithm {
            alg: Found::Text("none".into())
        }
    );
    assert_eq!(rejection.message(), "Invalid Access Token header");
}

#[test]
fn rs256_and_other_algorithms_are_refused() {
    for alg in [json!("RS256"), json!("ES256"), json!("hs256"), json!(256)] {
        let token = forge(|h, _| h["alg"] = alg.clone());
        let rejection = rejected(&token, 20102);
        assert!(
            matches!(rejection, Rejection::UnsupportedAlgorithm { .. }),
            "{rejection:?}"
        );
    }
    let missing = forge(|h, _| _ = h.as_object_mut().unwrap().remove("alg"));
    assert_eq!(
        rejected(&missing, 20102),
        Rejection::UnsupportedAlgorithm {
            alg: Found::Missing
        }
    );
}

#[test]
fn cty_must_be_twilio_fpa_v1() {
    let missing = forge(|h, _| _ = h.as_object_mut().unwrap().remove("cty"));
    assert_eq!(
        rejected(&missing, 20102),
        Rejection::WrongContentType {
            cty: Found::Missing
        }
    );
    let wrong = forge(|h, _| h["cty"] = json!("twilio-fpa;v=2"));
    let rejection = rejected(&wrong, 20102);
    assert_eq!(
        rejection,
        Rejection::WrongContentType {
            cty: Found::Text("twilio-fpa;v=2".into())
        }
    );
    assert_eq!(
        rejection.to_string(),
        "header `cty` is \"twilio-fpa;v=2\"; a Twilio access token has \"twilio-fpa;v=1\""
    );
}

#[test]
fn typ_when_present_must_be_jwt() {
    let token = forge(|h, _| h["typ"] = json!("JOSE"));
    assert_eq!(
        rejected(&token, 20102),
        Rejection::WrongTokenType {
            typ: Found::Text("JOSE".into())
        }
    );
}

#[test]
fn critical_extensions_are_refused() {
    let token = forge(|h, _| h["crit"] = json!(["b64"]));
    assert_eq!(rejected(&token, 20102), Rejection::CriticalExtensions);
}

#[test]
fn the_header_must_be_a_json_object() {
    let token = sign_text("[]", &claims().to_string(), SECRET);
    assert_eq!(
        rejected(&token, 20102),
        Rejection::HeaderNotObject {
            found: JsonType::Array
        }
    );
    let token = sign_text("{\"alg\":", &claims().to_string(), SECRET);
    assert!(matches!(
        rejected(&token, 20102),
        Rejection::HeaderNotJson { .. }
    ));
}

// ---------------------------------------------------------------- 20103

#[test]
fn an_unknown_key_is_refused() {
    let stranger = "SK99999999999999999999999999999999";
    let token = forge(|_, c| c["iss"] = json!(stranger));
    let rejection = rejected(&token, 20103);
    assert_eq!(rejection, Rejection::UnknownKey { key: sid(stranger) });
    assert!(
        rejection
            .to_string()
            .contains("API key SK99999999999999999999999999999999")
    );
}

#[test]
fn a_revoked_key_is_refused_as_revoked() {
    let token = forge(|_, c| c["iss"] = json!(REVOKED_KEY));
    let rejection = rejected(&token, 20103);
    assert_eq!(
        rejection,
        Rejection::RevokedKey {
            key: sid(REVOKED_KEY),
            revoked_at: NOW - 86_400
        }
    );
    assert_eq!(
        rejection.to_string(),
        format!(
            "API key {REVOKED_KEY} was revoked at 2025-12-31T00:00:00Z; sign with a current key"
        )
    );
}

#[test]
fn a_key_revoked_after_minting_stops_verifying() {
    let token = minted(&alice(), &MintOptions::default());
    let mut keys = keyring();
    assert!(keys.revoke(&sid(KEY), NOW + 1));
    let rejection = Verifier::default()
        .verify(&token, &keys, NOW + 2)
        .unwrap_err();
    assert!(
        matches!(rejection, Rejection::RevokedKey { .. }),
        "{rejection:?}"
    );
}

#[test]
fn iss_must_be_an_api_key_sid() {
    let missing = forge(|_, c| _ = c.as_object_mut().unwrap().remove("iss"));
    assert_eq!(
        rejected(&missing, 20103),
        Rejection::MissingClaim { claim: Claim::Iss }
    );
    let account_sid = forge(|_, c| c["iss"] = json!(ACCOUNT));
    assert_eq!(
        rejected(&account_sid, 20103),
        Rejection::MalformedIssuer {
            iss: ACCOUNT.into()
        }
    );
    let number = forge(|_, c| c["iss"] = json!(1));
    assert_eq!(
        rejected(&number, 20103),
        Rejection::WrongClaimType {
            claim: Claim::Iss,
            found: JsonType::Integer
        }
    );
}

#[test]
fn sub_must_be_the_keys_account() {
    let token = forge(|_, c| c["sub"] = json!(OTHER_ACCOUNT));
    let rejection = rejected(&token, 20103);
    assert_eq!(
        rejection,
        Rejection::AccountMismatch {
            key: sid(KEY),
            key_account: account(),
            sub: OTHER_ACCOUNT.parse().unwrap()
        }
    );
    assert_eq!(
        rejection.to_string(),
        format!(
            "`sub` names account {OTHER_ACCOUNT}, but API key {KEY} belongs to account {ACCOUNT}"
        )
    );
    let missing = forge(|_, c| _ = c.as_object_mut().unwrap().remove("sub"));
    assert_eq!(
        rejected(&missing, 20103),
        Rejection::MissingClaim { claim: Claim::Sub }
    );
    let malformed = forge(|_, c| c["sub"] = json!("ACme"));
    assert_eq!(
        rejected(&malformed, 20103),
        Rejection::MalformedSubject { sub: "ACme".into() }
    );
}

// ---------------------------------------------------------------- 20107

fn bad_signature() -> Rejection {
    Rejection::BadSignature {
        key: sid(KEY),
        algorithm: Algorithm::HS256,
    }
}

#[test]
fn a_signature_truncated_by_one_character_is_refused() {
    let token = minted(&alice(), &MintOptions::default());
    assert_eq!(rejected(&token[..token.len() - 1], 20107), bad_signature());
}

#[test]
fn a_signature_padded_with_a_character_is_refused() {
    let token = minted(&alice(), &MintOptions::default());
    assert_eq!(rejected(&format!("{token}A"), 20107), bad_signature());
    assert_eq!(rejected(&format!("{token}="), 20107), bad_signature());
    let (signed, _) = token.rsplit_once('.').unwrap();
    assert_eq!(rejected(&format!("{signed}."), 20107), bad_signature());
}

#[test]
fn a_token_signed_by_another_secret_is_refused() {
    // Same `iss`, someone else's secret.
    let forged = sign_text(
        &header().to_string(),
        &claims().to_string(),
        "not the secret",
    );
    let rejection = rejected(&forged, 20107);
    assert_eq!(rejection, bad_signature());
    assert_eq!(rejection.message(), "Invalid Access Token signature");

    // A genuine token of another key with `iss` rewritten to ours.
    let other = keyring().get(&sid(OTHER_KEY)).unwrap().clone();
    let theirs = mint(&other, &alice(), NOW, &MintOptions::default()).unwrap();
    let (_, their_signature) = theirs.rsplit_once('.').unwrap();
    let ours = minted(&alice(), &MintOptions::default());
    let (our_signed, _) = ours.rsplit_once('.').unwrap();
    assert_eq!(
        rejected(&format!("{our_signed}.{their_signature}"), 20107),
        bad_signature()
    );
}

#[test]
fn an_altered_claim_breaks_the_signature() {
    let token = minted(&alice(), &MintOptions::default());
    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let (_, claims) = decode_unverified(&token).unwrap();
    let mut claims = claims;
    claims["grants"]["identity"] = json!("mallory");
    let payload = base64_url(&claims.to_string());
    assert_eq!(
        rejected(&format!("{header}.{payload}.{signature}"), 20107),
        bad_signature()
    );
}

#[test]
fn an_hs512_token_relabelled_hs256_is_refused() {
    let token = minted(
        &alice(),
        &MintOptions {
            algorithm: Algorithm::HS512,
            ..Default::default()
        },
    );
    let (_, rest) = token.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", base64_url(&header().to_string()));
    assert_eq!(rejected(&relabelled, 20107), bad_signature());
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

// ---------------------------------------------------------------- 20104 / 20105

#[test]
fn an_expired_token_is_refused_with_the_times() {
    let token = minted(&alice(), &MintOptions::default());
    let rejection = rejected_at(&token, NOW + 7200, 20104);
    assert_eq!(
        rejection,
        Rejection::Expired {
            expired_at: NOW + 3600,
            now: NOW + 7200,
            leeway: 30
        }
    );
    assert_eq!(
        rejection.to_string(),
        "token expired at 2026-01-01T01:00:00Z, 3600 s before now (2026-01-01T02:00:00Z); \
         30 s of clock skew is allowed"
    );
}

#[test]
fn expiry_allows_30_seconds_of_clock_skew_and_no_more() {
    let token = minted(&alice(), &MintOptions::default());
    let exp = NOW + 3600;
    assert!(
        verify_at(&token, exp + 29).is_ok(),
        "exp = now - 29 is within the leeway"
    );
    rejected_at(&token, exp + 30, 20104);
    rejected_at(&token, exp + 31, 20104);
    let strict = Verifier {
        leeway: Duration::ZERO,
        ..Verifier::default()
    };
    assert!(strict.verify(&token, &keyring(), exp - 1).is_ok());
    assert!(strict.verify(&token, &keyring(), exp).is_err());
}

#[test]
fn a_token_from_the_future_is_refused_until_its_nbf() {
    let options = MintOptions {
        not_before: Some(NOW + 600),
        ..MintOptions::default()
    };
    let token = minted(&alice(), &options);
    let rejection = rejected_at(&token, NOW, 20105);
    assert_eq!(
        rejection,
        Rejection::NotYetValid {
            not_before: NOW + 600,
            now: NOW,
            leeway: 30
        }
    );
    assert_eq!(rejection.message(), "Access Token not yet valid");
    assert!(
        rejection.to_string().contains("600 s after now"),
        "{rejection}"
    );
    rejected_at(&token, NOW + 569, 20105);
    assert!(
        verify_at(&token, NOW + 570).is_ok(),
        "nbf = now + 30 is within the leeway"
    );
}

#[test]
fn a_token_issued_in_the_future_is_not_yet_valid() {
    let token = forge(|_, c| c["iat"] = json!(NOW + 31));
    assert_eq!(
        rejected(&token, 20105),
        Rejection::IssuedInFuture {
            issued_at: NOW + 31,
            now: NOW,
            leeway: 30
        }
    );
    let token = forge(|_, c| c["iat"] = json!(NOW + 30));
    assert!(verify(&token).is_ok());
}

#[test]
fn a_lifetime_over_24_hours_is_refused() {
    let day = 86_400;
    let exactly = forge(|_, c| c["exp"] = json!(NOW + day));
    assert!(verify(&exactly).is_ok());
    let over = forge(|_, c| c["exp"] = json!(NOW + day + 1));
    assert_eq!(
        rejected(&over, 20104),
        Rejection::LifetimeTooLong {
            lifetime: day + 1,
            max: day,
            from: Some(Claim::Iat)
        }
    );
    // Counted from nbf when there is one, even if iat is later.
    let from_nbf = forge(|_, c| {
        c["nbf"] = json!(NOW - 100);
        c["exp"] = json!(NOW + day - 50);
    });
    assert!(matches!(
        rejected(&from_nbf, 20104),
        Rejection::LifetimeTooLong {
            lifetime: 86_450,
            from: Some(Claim::Nbf),
            ..
        }
    ));
    // And from now when the token has neither.
    let bare = forge(|_, c| {
        c.as_object_mut().unwrap().remove("iat");
        c["exp"] = json!(NOW + day + 1);
    });
    let rejection = rejected(&bare, 20104);
    assert!(matches!(
        rejection,
        Rejection::LifetimeTooLong { from: None, .. }
    ));
    assert!(
        rejection.to_string().contains("from now to `exp`"),
        "{rejection}"
    );
}

#[test]
fn a_token_that_expires_before_it_starts_is_refused() {
    let token = forge(|_, c| {
        c["nbf"] = json!(NOW + 20);
        c["exp"] = json!(NOW + 10);
    });
    assert_eq!(
        rejected(&token, 20104),
        Rejection::ExpiresBeforeStart {
            expires_at: NOW + 10,
            starts_at: NOW + 20,
            start: Claim::Nbf
        }
    );
}

#[test]
fn exp_must_be_an_integer() {
    let missing = forge(|_, c| _ = c.as_object_mut().unwrap().remove("exp"));
    assert_eq!(
        rejected(&missing, 20104),
        Rejection::MissingClaim { claim: Claim::Exp }
    );
    for (exp, found) in [
        (json!("1767229200"), JsonType::String),
        (json!(1767229200.0), JsonType::Number),
        (json!(-1), JsonType::Number),
        (json!(null), JsonType::Null),
    ] {
        let token = forge(|_, c| c["exp"] = exp);
        assert_eq!(
            rejected(&token, 20104),
            Rejection::WrongClaimType {
                claim: Claim::Exp,
                found
            }
        );
    }
}

// ---------------------------------------------------------------- 20106

#[test]
fn identities_of_128_characters_pass_and_129_do_not() {
    // Multi-byte characters count once each: 128 × 4 bytes is fine.
    for unit in ["a", "é", "😀"] {
        let ok = Grant::new(unit.repeat(128)).in_room(unit.repeat(128));
        let verified = verify(&minted(&ok, &MintOptions::default())).unwrap();
        assert_eq!(verified.identity, unit.repeat(128));

        let long = unit.repeat(129);
        let identity = forge(|_, c| c["grants"]["identity"] = json!(long));
        assert_eq!(
            rejected(&identity, 20106),
            Rejection::GrantTooLong {
                claim: Claim::Identity,
                chars: 129
            }
        );
        let room = forge(|_, c| c["grants"]["video"]["room"] = json!(long));
        assert_eq!(
            rejected(&room, 20106),
            Rejection::GrantTooLong {
                claim: Claim::Room,
                chars: 129
            }
        );
        assert_eq!(
            mint(
                &key(),
                &Grant::new(long.clone()),
                NOW,
                &MintOptions::default()
            ),
            Err(MintError::IdentityTooLong { chars: 129 })
        );
    }
}

#[test]
fn the_identity_must_be_a_non_empty_string() {
    let missing = forge(|_, c| _ = c["grants"].as_object_mut().unwrap().remove("identity"));
    let rejection = rejected(&missing, 20106);
    assert_eq!(
        rejection,
        Rejection::MissingClaim {
            claim: Claim::Identity
        }
    );
    assert_eq!(rejection.message(), "Invalid Access Token grants");
    let empty = forge(|_, c| c["grants"]["identity"] = json!(""));
    assert_eq!(
        rejected(&empty, 20106),
        Rejection::EmptyGrant {
            claim: Claim::Identity
        }
    );
    let number = forge(|_, c| c["grants"]["identity"] = json!(42));
    assert_eq!(
        rejected(&number, 20106),
        Rejection::WrongClaimType {
            claim: Claim::Identity,
            found: JsonType::Integer
        }
    );
}

#[test]
fn a_token_without_a_video_grant_is_refused() {
    let token = forge(|_, c| _ = c["grants"].as_object_mut().unwrap().remove("video"));
    let rejection = rejected(&token, 20106);
    assert_eq!(
        rejection,
        Rejection::MissingClaim {
            claim: Claim::Video
        }
    );
    assert!(
        rejection.to_string().contains("no video grant"),
        "{rejection}"
    );
    let not_object = forge(|_, c| c["grants"]["video"] = json!(true));
    assert_eq!(
        rejected(&not_object, 20106),
        Rejection::WrongClaimType {
            claim: Claim::Video,
            found: JsonType::Boolean
        }
    );
    let no_grants = forge(|_, c| _ = c.as_object_mut().unwrap().remove("grants"));
    assert_eq!(
        rejected(&no_grants, 20106),
        Rejection::MissingClaim {
            claim: Claim::Grants
        }
    );
}

#[test]
fn the_room_must_be_a_non_empty_string() {
    let empty = forge(|_, c| c["grants"]["video"]["room"] = json!(""));
    assert_eq!(
        rejected(&empty, 20106),
        Rejection::EmptyGrant { claim: Claim::Room }
    );
    let list = forge(|_, c| c["grants"]["video"]["room"] = json!(["a", "b"]));
    assert_eq!(
        rejected(&list, 20106),
        Rejection::WrongClaimType {
            claim: Claim::Room,
            found: JsonType::Array
        }
    );
}

// ---------------------------------------------------------------- order

#[test]
fn checks_run_in_the_documented_order() {
    // Header before issuer: an RS256 token from an unknown key is a header problem.
    let token = forge(|h, c| {
        h["alg"] = json!("RS256");
        c["iss"] = json!("SK99999999999999999999999999999999");
    });
    rejected(&token, 20102);
    // Payload shape before issuer.
    let token = forge(|_, c| {
        c["iat"] = json!("yesterday");
        c["iss"] = json!("SK99999999999999999999999999999999");
    });
    rejected(&token, 20101);
    // Signature before time, subject and grants: a forger learns nothing else.
    let forged = |edit: fn(&mut Value)| {
        let mut claims = claims();
        edit(&mut claims);
        sign_text(&header().to_string(), &claims.to_string(), "not the secret")
    };
    rejected_at(&forged(|_| {}), NOW + 86_400, 20107);
    rejected(&forged(|c| c["sub"] = json!(OTHER_ACCOUNT)), 20107);
    rejected(&forged(|c| c["grants"] = json!({})), 20107);
    // Time before grants.
    let token = forge(|_, c| c["grants"] = json!({}));
    rejected_at(&token, NOW + 86_400, 20104);
}

// ---------------------------------------------------------------- decode_unverified

#[test]
fn decode_unverified_shows_what_an_expired_or_forged_token_holds() {
    let forged = sign_text(
        &header().to_string(),
        &claims().to_string(),
        "not the secret",
    );
    let (header, payload) = decode_unverified(&forged).unwrap();
    assert_eq!(header, self::header());
    assert_eq!(payload, claims());

    assert_eq!(decode_unverified("a.b").unwrap_err().code(), 20101);
    assert_eq!(
        decode_unverified(&"a".repeat(9000)).unwrap_err().code(),
        20101
    );
    let not_json = sign_text("{", "{}", SECRET);
    assert_eq!(decode_unverified(&not_json).unwrap_err().code(), 20102);
}

// ---------------------------------------------------------------- minting

#[test]
fn minting_puts_nbf_where_twilio_node_does() {
    let options = MintOptions {
        not_before: Some(NOW - 5),
        ttl: Duration::from_secs(60),
        ..Default::default()
    };
    let token = minted(&alice(), &options);
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        format!(
            r#"{{"jti":"{KEY}-{NOW}","grants":{{"identity":"alice","video":{{"room":"cool room"}}}},"nbf":{},"iat":{NOW},"exp":{},"iss":"{KEY}","sub":"{ACCOUNT}"}}"#,
            NOW - 5,
            NOW + 60
        )
    );
}

#[test]
fn minting_refuses_grants_and_times_no_verifier_would_accept() {
    let mint_with = |grant: &Grant, options: &MintOptions| mint(&key(), grant, NOW, options);
    let default = MintOptions::default();
    assert_eq!(
        mint_with(&Grant::new(""), &default),
        Err(MintError::EmptyIdentity)
    );
    assert_eq!(
        mint_with(&Grant::new("a").in_room(""), &default),
        Err(MintError::EmptyRoom)
    );
    assert_eq!(
        mint_with(&Grant::new("a").in_room("r".repeat(129)), &default),
        Err(MintError::RoomTooLong { chars: 129 })
    );
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_secs(86_401),
    ] {
        let options = MintOptions {
            ttl,
            ..MintOptions::default()
        };
        assert_eq!(
            mint_with(&alice(), &options),
            Err(MintError::InvalidTtl { ttl })
        );
    }
    let day = MintOptions {
        ttl: Duration::from_secs(86_400),
        ..MintOptions::default()
    };
    assert!(verify(&mint_with(&alice(), &day).unwrap()).is_ok());
    for not_before in [NOW + 3600, NOW + 4000, NOW - 86_400] {
        let options = MintOptions {
            not_before: Some(not_before),
            ..MintOptions::default()
        };
        assert_eq!(
            mint_with(&alice(), &options),
            Err(MintError::InvalidNotBefore {
                not_before,
                expires_at: NOW + 3600
            })
        );
    }
    assert_eq!(
        mint(&key(), &alice(), u64::MAX - 10, &default),
        Err(MintError::TimeOutOfRange { now: u64::MAX - 10 })
    );
    let mut revoked = key();
    revoked.revoked_at = Some(NOW);
    assert_eq!(
        mint(&revoked, &alice(), NOW, &default),
        Err(MintError::RevokedKey { key: sid(KEY) })
    );
}

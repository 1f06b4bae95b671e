//! Any header and payload, correctly signed with a key the server trusts:
//! the checks after the signature (subject, times, grants) see every shape
//! of JSON, which random tokens never reach (`access_token` stops at the
//! signature).
//!
//! The input is the header's JSON text, a newline, and the payload's JSON
//! text; both are base64url-encoded and signed with HS512 if the header
//! mentions it, HS384 likewise, else HS256. Must hold: no panic; refusals
//! carry 20101–20107 and print; an accepted token's header and payload are
//! JSON objects to an independent parser, and what verification returns is
//! what they say: the key and account, `exp` within the leeway and the
//! lifetime, an identity and room of 1–128 characters as in the grant.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use salon_sid::{AccountSid, ApiKeySid};
use salon_token::{ApiKey, Keyring, MAX_GRANT_CHARS, Verifier};
use serde::de::IgnoredAny;
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

const SECRET: &str = "fuzzing secret";
const NOW: u64 = 1_767_225_600;

fn sign<M: Mac + hmac::digest::KeyInit>(message: &[u8]) -> Vec<u8> {
    <M as Mac>::new_from_slice(SECRET.as_bytes())
        .expect("HMAC takes any key length")
        .chain_update(message)
        .finalize()
        .into_bytes()
        .to_vec()
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, payload) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let contains = |needle: &[u8]| header.windows(needle.len()).any(|w| w == needle);
    let signature = if contains(b"HS512") {
        sign::<Hmac<Sha512>>(signed.as_bytes())
    } else if contains(b"HS384") {
        sign::<Hmac<Sha384>>(signed.as_bytes())
    } else {
        sign::<Hmac<Sha256>>(signed.as_bytes())
    };
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));

    let key_sid = ApiKeySid::from_bytes([1; 16]);
    let account = AccountSid::from_bytes([2; 16]);
    let keys = Keyring::from_iter([ApiKey::new(key_sid, account, SECRET)]);
    let verifier = Verifier::default();
    let verified = match verifier.verify(&token, &keys, NOW) {
        Ok(verified) => verified,
        Err(rejection) => {
            assert!((20101..=20107).contains(&rejection.code()), "{rejection}");
            assert!(!rejection.to_string().is_empty() && !rejection.message().is_empty());
            return;
        }
    };

    // JSON text to an independent parser. RFC 8259 puts no limit on a
    // number's magnitude (JavaScript's JSON.parse reads 1e999 as Infinity,
    // and Salon ignores claims it does not use), while serde_json's `Value`
    // refuses what an f64 cannot hold: check the syntax with `IgnoredAny`,
    // and compare claims only when a `Value` can hold the whole payload.
    for (what, json) in [("header", header), ("payload", payload)] {
        if let Err(e) = serde_json::from_slice::<IgnoredAny>(json) {
            panic!("an accepted {what} is not JSON text: {e}");
        }
    }
    let (Ok(header), Ok(payload)) = (
        serde_json::from_slice::<Value>(header),
        serde_json::from_slice::<Value>(payload),
    ) else {
        return;
    };
    assert!(header.is_object() && payload.is_object());
    assert_eq!(verified.key, key_sid);
    assert_eq!(verified.account, account);
    assert_eq!(payload["iss"], key_sid.to_string());
    assert_eq!(payload["sub"], account.to_string());
    assert_eq!(payload["exp"], verified.expires_at);
    let leeway = verifier.leeway.as_secs();
    assert!(verified.expires_at > NOW - leeway);
    let start = verified
        .not_before
        .or(verified.issued_at)
        .unwrap_or(NOW.min(verified.expires_at));
    assert!(verified.expires_at - start <= verifier.max_lifetime.as_secs());
    let grant = |text: &str| (1..=MAX_GRANT_CHARS).contains(&text.chars().count());
    assert!(grant(&verified.identity));
    assert_eq!(payload["grants"]["identity"], verified.identity.as_str());
    match &verified.room {
        Some(room) => {
            assert!(grant(room));
            assert_eq!(payload["grants"]["video"]["room"], room.as_str());
            assert!(
                verified
                    .allows_room(room, "RM00000000000000000000000000000000")
                    .is_ok()
            );
        }
        None => assert!(payload["grants"]["video"].is_object()),
    }
});

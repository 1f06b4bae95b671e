//! Keys, times and a token forge shared by the integration tests.
#![allow(dead_code)] // each test file uses its own subset

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use salon_sid::{AccountSid, ApiKeySid};
use salon_token::{ApiKey, Keyring};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

/// The account, key and secret the twilio-node and twilio-python fixtures
/// were made with.
pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const KEY: &str = "SKfedcba9876543210fedcba9876543210";
pub const SECRET: &str = "salon-fixture-secret-0123456789ab";
/// 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;

/// A second key of the same account, and a key of another account.
pub const OTHER_KEY: &str = "SK00000000000000000000000000000002";
pub const OTHER_ACCOUNT: &str = "AC00000000000000000000000000000003";
pub const FOREIGN_KEY: &str = "SK00000000000000000000000000000004";
pub const REVOKED_KEY: &str = "SK00000000000000000000000000000005";

pub fn account() -> AccountSid {
    ACCOUNT.parse().unwrap()
}

pub fn sid(text: &str) -> ApiKeySid {
    text.parse().unwrap()
}

pub fn key() -> ApiKey {
    ApiKey::new(sid(KEY), account(), SECRET)
}

/// The fixture key, another key of its account, a key of another account,
/// and a revoked key.
pub fn keyring() -> Keyring {
    let mut revoked = ApiKey::new(sid(REVOKED_KEY), account(), "revoked secret");
    revoked.revoked_at = Some(NOW - 86_400);
    Keyring::from_iter([
        key(),
        ApiKey::new(sid(OTHER_KEY), account(), "other secret"),
        ApiKey::new(
            sid(FOREIGN_KEY),
            OTHER_ACCOUNT.parse().unwrap(),
            "foreign secret",
        ),
        revoked,
    ])
}

/// The header twilio-node writes.
pub fn header() -> Value {
    json!({"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"})
}

/// The claims twilio-node writes for alice in "cool room", issued at `NOW`.
pub fn claims() -> Value {
    json!({
        "jti": format!("{KEY}-{NOW}"),
        "grants": {"identity": "alice", "video": {"room": "cool room"}},
        "iat": NOW,
        "exp": NOW + 3600,
        "iss": KEY,
        "sub": ACCOUNT,
    })
}

/// Signs raw header and payload text with `secret`, using the hash the
/// header's `alg` names (HS256 for anything that is not HMAC), without any
/// of the crate's code: a forge for tokens no helper library would make.
pub fn sign_text(header: &str, payload: &str, secret: &str) -> String {
    sign_bytes(header.as_bytes(), payload.as_bytes(), secret)
}

/// Like [`sign_text`], for header and payload bytes that need not be text.
pub fn sign_bytes(header: &[u8], payload: &[u8], secret: &str) -> String {
    // A header that is not text still names its algorithm for the forge.
    let alg = serde_json::from_str::<Value>(&String::from_utf8_lossy(header))
        .ok()
        .and_then(|h| h["alg"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = match alg.as_str() {
        "HS384" => mac::<Hmac<Sha384>>(secret, &signed),
        "HS512" => mac::<Hmac<Sha512>>(secret, &signed),
        _ => mac::<Hmac<Sha256>>(secret, &signed),
    };
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &str, message: &str) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A token with the fixture header and claims as changed by `edit`, signed
/// with the fixture secret.
pub fn forge(edit: impl FnOnce(&mut Value, &mut Value)) -> String {
    let (mut header, mut claims) = (header(), claims());
    edit(&mut header, &mut claims);
    sign_text(&header.to_string(), &claims.to_string(), SECRET)
}

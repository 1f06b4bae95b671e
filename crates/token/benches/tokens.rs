//! How fast tokens are minted and verified.
//!
//! `verify_hs256` is the number that matters: every signaling connection pays
//! it, and the target is at least 200,000 per second per core (5 µs each).
//! `jsonwebtoken_crypto_verify_hs256` measures only the signature check done
//! the way `jsonwebtoken::crypto::verify` does it (a boxed HMAC keyed per
//! call, a decoded signature `Vec`), to show why Salon keeps a keyed HMAC per
//! API key instead.
//!
//! Run: `cargo bench -p salon-token -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use salon_sid::{AccountSid, ApiKeySid};
use salon_token::{ApiKey, Grant, Keyring, MintOptions, Verifier, mint};

const NOW: u64 = 1_767_225_600;
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A keyring of a few dozen keys, as a server with some rotation history has,
/// and the key typical tokens are signed with.
fn keys() -> (Keyring, ApiKey) {
    let account = AccountSid::from_bytes([7; 16]);
    let mut ring: Keyring = (0..32u8)
        .map(|i| {
            ApiKey::new(
                ApiKeySid::from_bytes([i; 16]),
                account,
                format!("secret {i}"),
            )
        })
        .collect();
    let key = ApiKey::new(ApiKeySid::from_bytes([0xab; 16]), account, SECRET);
    ring.insert(key.clone());
    (ring, key)
}

/// A tutorial token: an identity, one room, four hours.
fn typical_grant() -> Grant {
    Grant::new("alice@example.com").in_room("daily standup")
}

fn tutorial_options() -> MintOptions {
    MintOptions {
        ttl: std::time::Duration::from_secs(14_400),
        ..MintOptions::default()
    }
}

fn verify_hs256(c: &mut Criterion) {
    let (ring, key) = keys();
    let token = mint(&key, &typical_grant(), NOW, &tutorial_options()).unwrap();
    let verifier = Verifier::default();
    c.bench_function("verify_hs256", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&token), &ring, black_box(NOW + 60))
                .unwrap()
        })
    });
}

fn mint_hs256(c: &mut Criterion) {
    let (_, key) = keys();
    let grant = typical_grant();
    let options = tutorial_options();
    c.bench_function("mint_hs256", |b| {
        b.iter(|| mint(&key, black_box(&grant), black_box(NOW), &options).unwrap())
    });
}

fn jsonwebtoken_crypto_verify_hs256(c: &mut Criterion) {
    let (_, key) = keys();
    let token = mint(&key, &typical_grant(), NOW, &tutorial_options()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let decoding_key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    c.bench_function("jsonwebtoken_crypto_verify_hs256 (signature only)", |b| {
        b.iter(|| {
            let ok = jsonwebtoken::crypto::verify(
                black_box(signature),
                black_box(signed.as_bytes()),
                &decoding_key,
                jsonwebtoken::Algorithm::HS256,
            );
            assert!(matches!(ok, Ok(true)));
        })
    });
}

/// The same signature check the way `ApiKey` does it: HMAC keyed once,
/// cloned per check, signature decoded into a stack buffer.
fn keyed_hmac_verify_hs256(c: &mut Criterion) {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let (_, key) = keys();
    let token = mint(&key, &typical_grant(), NOW, &tutorial_options()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let keyed = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    c.bench_function("keyed_hmac_verify_hs256 (signature only)", |b| {
        b.iter(|| {
            let mut raw = [0u8; 64];
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let len = engine.decode_slice(black_box(signature), &mut raw).unwrap();
            let mac = keyed.clone().chain_update(black_box(signed.as_bytes()));
            assert!(mac.verify_slice(&raw[..len]).is_ok());
        })
    });
}

criterion_group!(
    benches,
    verify_hs256,
    mint_hs256,
    jsonwebtoken_crypto_verify_hs256,
    keyed_hmac_verify_hs256
);
criterion_main!(benches);

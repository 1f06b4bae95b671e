//! API keys: the secrets tokens are signed with, and the ring of them a
//! verifier trusts.
//!
//! An API key is a SID (`SK…`), the account it belongs to, and a secret. Twilio's
//! helper libraries sign with the secret's UTF-8 bytes as the HMAC key, so that
//! is what this module does too. Each key keeps its HMAC state ready for all
//! three algorithms (the key already mixed into the inner and outer pads), so
//! checking a signature is one copy of that state and one pass over the token.
//!
//! This module never prints a secret: `Debug` shows `<redacted>`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use salon_sid::{AccountSid, ApiKeySid};
use sha2::{Sha256, Sha384, Sha512};

/// A JWT signature algorithm Twilio access tokens may use: HMAC with SHA-2.
///
/// Anything else (`none`, `RS256`, …) is refused, which also rules out the
/// classic algorithm-confusion attacks on JWT verifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA256, what every helper library uses unless told otherwise.
    #[default]
    HS256,
    /// HMAC-SHA384.
    HS384,
    /// HMAC-SHA512.
    HS512,
}

impl Algorithm {
    /// The JWT `alg` header value, e.g. `"HS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// Length of the signature in bytes.
    pub fn signature_len(self) -> usize {
        match self {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not an [`Algorithm`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm {alg:?}: Twilio access tokens use HS256, HS384 or HS512")]
pub struct ParseAlgorithmError {
    /// The text that was given.
    pub alg: String,
}

impl FromStr for Algorithm {
    type Err = ParseAlgorithmError;

    /// Parses a JWT `alg` value. Exact and case-sensitive, as RFC 7518 spells
    /// them: `"hs256"` is not an algorithm.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HS256" => Ok(Algorithm::HS256),
            "HS384" => Ok(Algorithm::HS384),
            "HS512" => Ok(Algorithm::HS512),
            _ => Err(ParseAlgorithmError { alg: s.to_owned() }),
        }
    }
}

/// An API key's secret, with its HMAC state prepared for each algorithm.
#[derive(Clone)]
struct Secret {
    text: String,
    hs256: Hmac<Sha256>,
    hs384: Hmac<Sha384>,
    hs512: Hmac<Sha512>,
}

/// HMAC (RFC 2104) takes keys of any length: long ones are hashed, short ones
/// padded. The `hmac` crate's `new_from_slice` therefore never fails for it;
/// the `Result` only exists because the `Mac` trait also covers fixed-key MACs.
fn keyed<M: Mac + hmac::digest::KeyInit>(secret: &[u8]) -> M {
    <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

impl Secret {
    fn new(text: String) -> Self {
        let bytes = text.as_bytes();
        Self {
            hs256: keyed(bytes),
            hs384: keyed(bytes),
            hs512: keyed(bytes),
            text,
        }
    }

    /// Appends the unpadded base64url signature of `message` to `out`.
    fn sign(&self, algorithm: Algorithm, message: &[u8], out: &mut String) {
        match algorithm {
            Algorithm::HS256 => sign_with(&self.hs256, message, out),
            Algorithm::HS384 => sign_with(&self.hs384, message, out),
            Algorithm::HS512 => sign_with(&self.hs512, message, out),
        }
    }

    /// Whether `signature` (raw bytes) is the MAC of `message`.
    fn verifies(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match algorithm {
            Algorithm::HS256 => verify_with(&self.hs256, message, signature),
            Algorithm::HS384 => verify_with(&self.hs384, message, signature),
            Algorithm::HS512 => verify_with(&self.hs512, message, signature),
        }
    }
}

/// Copies the keyed state (cheap: a few hundred bytes, no key schedule) and
/// runs the message through it.
fn sign_with<M: Mac + Clone>(keyed: &M, message: &[u8], out: &mut String) {
    let tag = keyed.clone().chain_update(message).finalize().into_bytes();
    URL_SAFE_NO_PAD.encode_string(tag, out);
}

/// `verify_slice` checks the length, then compares in constant time (with
/// `subtle`), so response timing does not tell a forger how many leading
/// bytes of a guess were right.
fn verify_with<M: Mac + Clone>(keyed: &M, message: &[u8], signature: &[u8]) -> bool {
    keyed
        .clone()
        .chain_update(message)
        .verify_slice(signature)
        .is_ok()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An API key: signs access tokens for one account.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// The key's SID, which tokens name in `iss`.
    pub sid: ApiKeySid,
    /// The account the key belongs to, which tokens name in `sub`.
    pub account_sid: AccountSid,
    secret: Secret,
    /// When the key was revoked (unix seconds), if it was. A revoked key stays
    /// in its [`Keyring`] so that rejections can say "revoked" rather than
    /// "unknown", but no token signed with it verifies, whatever its `iat`.
    pub revoked_at: Option<u64>,
}

impl ApiKey {
    /// A key that is not revoked.
    pub fn new(sid: ApiKeySid, account_sid: AccountSid, secret: impl Into<String>) -> Self {
        Self {
            sid,
            account_sid,
            secret: Secret::new(secret.into()),
            revoked_at: None,
        }
    }

    /// The secret, e.g. to show once when the key is created. Handle with care.
    pub fn secret(&self) -> &str {
        &self.secret.text
    }

    /// Whether the key has been revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub(crate) fn sign(&self, algorithm: Algorithm, message: &[u8], out: &mut String) {
        self.secret.sign(algorithm, message, out);
    }

    pub(crate) fn verifies(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.secret.verifies(algorithm, message, signature)
    }
}

/// The API keys a verifier trusts, by SID.
///
/// Iterates in SID order, so listings are stable.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<ApiKeySid, ApiKey>,
}

impl Keyring {
    /// An empty keyring: every token is signed by an unknown key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key`, returning the key it replaces (same SID), if any.
    pub fn insert(&mut self, key: ApiKey) -> Option<ApiKey> {
        self.keys.insert(key.sid, key)
    }

    /// Removes a key entirely; its tokens are then rejected as signed by an
    /// unknown key. To keep saying "revoked", use [`Keyring::revoke`].
    pub fn remove(&mut self, sid: &ApiKeySid) -> Option<ApiKey> {
        self.keys.remove(sid)
    }

    /// Marks a key revoked at `at` (unix seconds). Returns false if the key is
    /// unknown. A key already revoked keeps its first revocation time.
    pub fn revoke(&mut self, sid: &ApiKeySid, at: u64) -> bool {
        match self.keys.get_mut(sid) {
            Some(key) => {
                key.revoked_at.get_or_insert(at);
                true
            }
            None => false,
        }
    }

    /// The key with this SID, revoked or not.
    pub fn get(&self, sid: &ApiKeySid) -> Option<&ApiKey> {
        self.keys.get(sid)
    }

    /// Every key, in SID order.
    pub fn iter(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.values()
    }

    /// How many keys, revoked ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<ApiKey> for Keyring {
    fn from_iter<I: IntoIterator<Item = ApiKey>>(iter: I) -> Self {
        let mut ring = Keyring::new();
        ring.extend(iter);
        ring
    }
}

impl Extend<ApiKey> for Keyring {
    fn extend<I: IntoIterator<Item = ApiKey>>(&mut self, iter: I) {
        for key in iter {
            self.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> ApiKey {
        ApiKey::new(
            ApiKeySid::from_bytes([1; 16]),
            AccountSid::from_bytes([2; 16]),
            secret,
        )
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = key("hunter2-very-secret");
        let shown = format!("{key:?} {:#?}", Keyring::from_iter([key.clone()]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(key.secret(), "hunter2-very-secret");
    }

    #[test]
    fn algorithms_parse_from_and_print_to_their_jwt_names() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            assert_eq!(alg.as_str().parse(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for bad in ["none", "RS256", "hs256", "HS256 ", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signatures_have_the_algorithms_length_and_verify() {
        let key = key("s");
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut sig = String::new();
            key.sign(alg, b"message", &mut sig);
            let raw = URL_SAFE_NO_PAD.decode(&sig).unwrap();
            assert_eq!(raw.len(), alg.signature_len());
            assert!(key.verifies(alg, b"message", &raw));
            assert!(!key.verifies(alg, b"messagE", &raw));
            assert!(!key.verifies(alg, b"message", &raw[1..]));
        }
    }

    #[test]
    fn a_revoked_key_stays_in_the_ring_with_its_first_revocation_time() {
        let mut ring = Keyring::from_iter([key("s")]);
        let sid = ApiKeySid::from_bytes([1; 16]);
        assert!(!ring.get(&sid).unwrap().is_revoked());
        assert!(ring.revoke(&sid, 100));
        assert!(ring.revoke(&sid, 200));
        assert_eq!(ring.get(&sid).unwrap().revoked_at, Some(100));
        assert_eq!(ring.len(), 1);
        assert!(!ring.revoke(&ApiKeySid::from_bytes([9; 16]), 100));
        assert!(ring.remove(&sid).is_some());
        assert!(ring.is_empty());
    }
}

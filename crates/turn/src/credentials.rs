//! Short-lived TURN credentials in the TURN REST API scheme
//! (draft-uberti-behave-turn-rest, what coturn's `use-auth-secret` checks):
//! `username = "<expiry unix seconds>:<identity>"`, `password =
//! base64(HMAC-SHA1(secret, username))`. Salon mints them for each join and
//! for Twilio's Network Traversal Service route; its TURN server (or a
//! coturn sharing the secret) checks them with no state of its own.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A minted credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// Unix seconds after which it no longer allocates.
    pub expires: u64,
}

/// The password for `username` under `secret`.
pub fn password(secret: &[u8], username: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A credential for `identity` valid `ttl` seconds from `now` (Unix
/// seconds). Colons in the identity are kept (the expiry is what precedes
/// the first one).
pub fn mint(secret: &[u8], identity: &str, now: u64, ttl: u64) -> Credential {
    let expires = now.saturating_add(ttl);
    let username = format!("{expires}:{identity}");
    Credential {
        password: password(secret, &username),
        username,
        expires,
    }
}

/// Why a username does not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the username is not <expiry>:<identity>")]
    Malformed,
    #[error("the credential has expired")]
    Expired,
}

/// The expiry of a REST-scheme username, if it is well-formed and not past
/// `now`. The password is then `password(secret, username)`.
pub fn check(username: &str, now: u64) -> Result<u64, Refusal> {
    let expiry = username.split(':').next().unwrap_or_default();
    let expiry: u64 = expiry.parse().map_err(|_| Refusal::Malformed)?;
    if expiry < now {
        return Err(Refusal::Expired);
    }
    Ok(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_coturns() {
        // The same HMAC-SHA1 and base64 coturn's use-auth-secret computes
        // (checked against Python's hmac module).
        assert_eq!(
            password(b"north", "1700000000:alice"),
            "Cd/49soE35ICqcJF/bCTn8Z4OyE="
        );
    }

    #[test]
    fn a_minted_credential_checks_until_it_expires() {
        let c = mint(b"s", "bob:the:builder", 1000, 60);
        assert_eq!(c.username, "1060:bob:the:builder");
        assert_eq!(check(&c.username, 1060), Ok(1060));
        assert_eq!(check(&c.username, 1061), Err(Refusal::Expired));
        assert_eq!(check("alice", 0), Err(Refusal::Malformed));
        assert_eq!(check(":alice", 0), Err(Refusal::Malformed));
    }
}

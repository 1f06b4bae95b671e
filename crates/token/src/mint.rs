//! Minting: the token a Twilio helper library would make, byte for byte.
//!
//! twilio-node's `AccessToken.toJwt()` hands `{jti, grants[, nbf]}` to
//! `jsonwebtoken.sign()` with `issuer`, `subject` and `expiresIn` options;
//! that library then appends `iat`, `exp`, `iss`, `sub` in that order and
//! builds the header as `{alg, typ}` followed by twilio's `{cty}`. JSON
//! object members keep insertion order, so the bytes are:
//!
//! ```text
//! {"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}
//! {"jti":"SK…-1767225600","grants":{"identity":"alice","video":{"room":"cool room"}},
//!  "iat":1767225600,"exp":1767229200,"iss":"SK…","sub":"AC…"}
//! ```
//!
//! with `"nbf":…` between `grants` and `iat` when a not-before time is set.
//! `serde_json` escapes strings exactly as `JSON.stringify` does (`\"`, `\\`,
//! `\n`-style short escapes, `\u00xx` for other control characters, everything
//! else raw UTF-8), so the same inputs at the same second give the same token.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use salon_sid::ApiKeySid;
use serde::Serialize;

use crate::rejection::MAX_GRANT_CHARS;
use crate::{Algorithm, ApiKey};

/// The longest lifetime Twilio accepts for an access token: 24 hours.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a token allows its bearer: to be `identity`, in one room or any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Who the bearer is in rooms (1 to 128 characters).
    pub identity: String,
    /// The one room the token may join (its unique name or `RM` SID); `None`
    /// allows any room.
    pub room: Option<String>,
}

impl Grant {
    /// A grant for `identity` in any room.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            room: None,
        }
    }

    /// The same grant, restricted to one room (a unique name or an `RM` SID).
    pub fn in_room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }
}

/// How to mint: lifetime, not-before time, algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintOptions {
    /// How long the token lives from `now` (`exp - iat`); whole seconds, from
    /// 1 s to 24 h. Twilio's default is one hour; the video tutorial uses 4 h.
    pub ttl: Duration,
    /// `nbf`, unix seconds, if the token should not be valid before then.
    pub not_before: Option<u64>,
    /// The signature algorithm.
    pub algorithm: Algorithm,
}

impl Default for MintOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            not_before: None,
            algorithm: Algorithm::HS256,
        }
    }
}

/// Why no token was minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// The grant has no identity.
    #[error("the identity is empty; every access token needs one")]
    EmptyIdentity,
    /// The identity is too long.
    #[error("the identity is {chars} characters long; the limit is {MAX_GRANT_CHARS}")]
    IdentityTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// The room is the empty string. (twilio-node would silently drop it and
    /// allow every room; Salon makes the caller say `None` if it means that.)
    #[error("the room is empty; leave it out to allow any room")]
    EmptyRoom,
    /// The room name is too long.
    #[error("the room is {chars} characters long; the limit is {MAX_GRANT_CHARS}")]
    RoomTooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// The TTL is under a second or over 24 hours.
    #[error("the ttl is {ttl:?}; it must be from 1 s to 24 h")]
    InvalidTtl {
        /// The TTL asked for.
        ttl: Duration,
    },
    /// `not_before` is not before the expiry, or so far before it that the
    /// token would live more than 24 hours: verifiers would refuse it.
    #[error(
        "not_before {not_before} and expiry {expires_at} (unix seconds) do not make a \
         validity window of 1 s to 24 h"
    )]
    InvalidNotBefore {
        /// The `nbf` asked for.
        not_before: u64,
        /// The `exp` the TTL gives.
        expires_at: u64,
    },
    /// The key is revoked, so no verifier would accept its tokens.
    #[error("API key {key} is revoked; mint with a current key")]
    RevokedKey {
        /// The revoked key.
        key: ApiKeySid,
    },
    /// `now + ttl` does not fit in 64 bits.
    #[error("now ({now}) plus the ttl overflows")]
    TimeOutOfRange {
        /// The `now` given.
        now: u64,
    },
}

#[derive(Serialize)]
struct Header {
    alg: &'static str,
    typ: &'static str,
    cty: &'static str,
}

// Field order is wire order; see the module docs.
#[derive(Serialize)]
struct Payload<'a> {
    jti: String,
    grants: Grants<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    iat: u64,
    exp: u64,
    iss: &'a str,
    sub: &'a str,
}

#[derive(Serialize)]
struct Grants<'a> {
    identity: &'a str,
    video: Video<'a>,
}

#[derive(Serialize)]
struct Video<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
}

/// Mints an access token for `grant`, signed with `key`, issued at `now`
/// (unix seconds).
///
/// ```
/// use salon_token::{mint, ApiKey, Grant, MintOptions};
/// # let key = ApiKey::new(salon_sid::ApiKeySid::random(), salon_sid::AccountSid::random(), "secret");
/// let token = mint(&key, &Grant::new("alice").in_room("cool room"), 1_767_225_600, &MintOptions::default())?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), salon_token::MintError>(())
/// ```
pub fn mint(
    key: &ApiKey,
    grant: &Grant,
    now: u64,
    options: &MintOptions,
) -> Result<String, MintError> {
    if key.is_revoked() {
        return Err(MintError::RevokedKey { key: key.sid });
    }
    let identity_chars = grant.identity.chars().count();
    if identity_chars == 0 {
        return Err(MintError::EmptyIdentity);
    }
    if identity_chars > MAX_GRANT_CHARS {
        return Err(MintError::IdentityTooLong {
            chars: identity_chars,
        });
    }
    if let Some(room) = &grant.room {
        match room.chars().count() {
            0 => return Err(MintError::EmptyRoom),
            chars if chars > MAX_GRANT_CHARS => return Err(MintError::RoomTooLong { chars }),
            _ => {}
        }
    }
    let ttl = options.ttl.as_secs();
    if ttl == 0 || options.ttl > MAX_TTL {
        return Err(MintError::InvalidTtl { ttl: options.ttl });
    }
    let expires_at = now
        .checked_add(ttl)
        .ok_or(MintError::TimeOutOfRange { now })?;
    if let Some(not_before) = options.not_before {
        // The verifier counts the lifetime from `nbf` when there is one.
        let window = expires_at.saturating_sub(not_before);
        if window == 0 || window > MAX_TTL.as_secs() {
            return Err(MintError::InvalidNotBefore {
                not_before,
                expires_at,
            });
        }
    }

    let header = Header {
        alg: options.algorithm.as_str(),
        typ: "JWT",
        cty: "twilio-fpa;v=1",
    };
    let payload = Payload {
        jti: format!("{}-{now}", key.sid),
        grants: Grants {
            identity: &grant.identity,
            video: Video {
                room: grant.room.as_deref(),
            },
        },
        nbf: options.not_before,
        iat: now,
        exp: expires_at,
        iss: key.sid.as_str(),
        sub: key.account_sid.as_str(),
    };
    let header = serde_json::to_vec(&header).expect(SERIALIZES);
    let payload = serde_json::to_vec(&payload).expect(SERIALIZES);

    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 96);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signed = token.len();
    token.push('.');
    // `sign` appends to a second buffer: the message must not alias the output.
    let mut signature = String::with_capacity(88);
    key.sign(
        options.algorithm,
        &token.as_bytes()[..signed],
        &mut signature,
    );
    token.push_str(&signature);
    Ok(token)
}

/// serde_json only fails on maps with non-string keys and on `Serialize`
/// impls that report errors; these structs hold only strings and integers.
const SERIALIZES: &str = "token JSON of strings and integers always serializes";

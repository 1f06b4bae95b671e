//! Why a token was refused, as values with Twilio's error codes.
//!
//! Every variant of [`Rejection`] carries what a person needs to fix the
//! token (which key, which claim, `exp` against `now`…), maps to one Twilio
//! code with [`Rejection::code`], and explains itself in English through
//! `Display`. [`Rejection::message`] gives Twilio's canonical text for the
//! code, for wire formats that echo it (`{"code": 20104, "message": …}`).

use std::fmt;

use salon_sid::{AccountSid, ApiKeySid};

use crate::Algorithm;
use crate::verify::MAX_TOKEN_LEN;

/// How long an identity or a room name may be, in characters (not bytes).
pub const MAX_GRANT_CHARS: usize = 128;

/// A claim of the token payload, named by its JSON path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Claim {
    /// `jti`, the token's unique id.
    Jti,
    /// `iss`, the SID of the signing API key.
    Iss,
    /// `sub`, the SID of the key's account.
    Sub,
    /// `iat`, when the token was issued.
    Iat,
    /// `nbf`, when the token becomes valid.
    Nbf,
    /// `exp`, when the token expires.
    Exp,
    /// `grants`, what the token allows.
    Grants,
    /// `grants.identity`, who the bearer is.
    Identity,
    /// `grants.video`, the video grant.
    Video,
    /// `grants.video.room`, the one room the token may join.
    Room,
}

impl Claim {
    /// The claim's JSON path, e.g. `grants.video.room`.
    pub fn path(self) -> &'static str {
        match self {
            Claim::Jti => "jti",
            Claim::Iss => "iss",
            Claim::Sub => "sub",
            Claim::Iat => "iat",
            Claim::Nbf => "nbf",
            Claim::Exp => "exp",
            Claim::Grants => "grants",
            Claim::Identity => "grants.identity",
            Claim::Video => "grants.video",
            Claim::Room => "grants.video.room",
        }
    }

    /// The JSON type the claim must have.
    pub fn expected(self) -> JsonType {
        match self {
            Claim::Jti | Claim::Iss | Claim::Sub | Claim::Identity | Claim::Room => {
                JsonType::String
            }
            Claim::Iat | Claim::Nbf | Claim::Exp => JsonType::Integer,
            Claim::Grants | Claim::Video => JsonType::Object,
        }
    }

    /// The code a missing or mistyped claim is rejected with: the code of the
    /// check the claim feeds (`iss`/`sub` → issuer, `exp` → expiry, grants →
    /// grants); the rest are plain malformed tokens.
    fn code(self) -> u32 {
        match self {
            Claim::Jti | Claim::Iat | Claim::Nbf => 20101,
            Claim::Iss | Claim::Sub => 20103,
            Claim::Exp => 20104,
            Claim::Grants | Claim::Identity | Claim::Video | Claim::Room => 20106,
        }
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// The type of a JSON value, as far as token checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A whole number from 0 to 2⁶⁴−1: how times are written.
    Integer,
    /// Any other number: negative, fractional or too large.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonType::Null => "null",
            JsonType::Boolean => "a boolean",
            JsonType::Integer => "an integer",
            JsonType::Number => "a negative, fractional or huge number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        })
    }
}

/// Which part of the token, for base64 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The first part, the JOSE header.
    Header,
    /// The second part, the claims.
    Payload,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
        })
    }
}

/// What a header field held, for header rejections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Found {
    /// The field is absent.
    Missing,
    /// A string (cut to 64 characters).
    Text(String),
    /// A value that is not a string.
    Other(JsonType),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Missing => f.write_str("missing"),
            Found::Text(text) => write!(f, "{text:?}"),
            Found::Other(kind) => write!(f, "{kind}, not a string"),
        }
    }
}

/// At most 64 characters of untrusted text, so a rejection of an 8 KiB token
/// does not carry (or print) all of it.
pub(crate) fn excerpt(text: &str) -> String {
    const KEEP: usize = 64;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Why a token was refused. See [`Rejection::code`] for the Twilio code of
/// each variant, and `Display` for the explanation given to people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    // 20101 Invalid Access Token
    /// The token is longer than 8 KiB (checked before decoding anything).
    TokenTooLong {
        /// The token's length in bytes.
        bytes: usize,
    },
    /// The token is not `header.payload.signature`.
    NotThreeParts {
        /// How many dot-separated parts it has.
        parts: usize,
    },
    /// A part is not unpadded base64url.
    BadBase64 {
        /// Which part.
        part: Part,
    },
    /// The payload is not JSON (or not UTF-8, or has duplicate claims).
    PayloadNotJson {
        /// What the JSON parser said.
        error: String,
    },
    /// The payload is JSON but not an object.
    PayloadNotObject {
        /// What it is instead.
        found: JsonType,
    },

    // 20102 Invalid Access Token header
    /// The header is not JSON (or not UTF-8, or has duplicate fields).
    HeaderNotJson {
        /// What the JSON parser said.
        error: String,
    },
    /// The header is JSON but not an object.
    HeaderNotObject {
        /// What it is instead.
        found: JsonType,
    },
    /// `alg` is not HS256, HS384 or HS512 (`none`, `RS256`, missing…).
    UnsupportedAlgorithm {
        /// The `alg` the header has.
        alg: Found,
    },
    /// `cty` is not `twilio-fpa;v=1`.
    WrongContentType {
        /// The `cty` the header has.
        cty: Found,
    },
    /// `typ` is present and not `JWT`.
    WrongTokenType {
        /// The `typ` the header has.
        typ: Found,
    },
    /// The header lists critical extensions (`crit`, RFC 7515 §4.1.11), which
    /// a verifier must refuse when it does not implement them. Salon
    /// implements none.
    CriticalExtensions,

    // 20103 Invalid Access Token issuer/subject
    /// `iss` is not an API key SID.
    MalformedIssuer {
        /// The `iss` the token has (cut to 64 characters).
        iss: String,
    },
    /// No key in the keyring has the SID `iss` names.
    UnknownKey {
        /// The SID from `iss`.
        key: ApiKeySid,
    },
    /// The key `iss` names has been revoked.
    RevokedKey {
        /// The revoked key.
        key: ApiKeySid,
        /// When it was revoked, unix seconds.
        revoked_at: u64,
    },
    /// `sub` is not an account SID.
    MalformedSubject {
        /// The `sub` the token has (cut to 64 characters).
        sub: String,
    },
    /// `sub` names an account other than the key's.
    AccountMismatch {
        /// The signing key.
        key: ApiKeySid,
        /// The account the key belongs to.
        key_account: AccountSid,
        /// The account `sub` names.
        sub: AccountSid,
    },

    // 20104 Access Token expired or expiration date invalid
    /// `exp` has passed (allowing for the verifier's leeway).
    Expired {
        /// `exp`, unix seconds.
        expired_at: u64,
        /// The verifier's clock, unix seconds.
        now: u64,
        /// The clock skew allowed, seconds.
        leeway: u64,
    },
    /// `exp` is not after `nbf` or `iat`: the token is never valid.
    ExpiresBeforeStart {
        /// `exp`, unix seconds.
        expires_at: u64,
        /// `nbf` or `iat`, unix seconds.
        starts_at: u64,
        /// Which of the two.
        start: Claim,
    },
    /// `exp` is more than the verifier's maximum lifetime after the token's
    /// start (`nbf`, else `iat`, else now).
    LifetimeTooLong {
        /// `exp` minus the start, seconds.
        lifetime: u64,
        /// The most the verifier accepts, seconds.
        max: u64,
        /// What the lifetime was counted from: `Some(Nbf)`, `Some(Iat)`, or
        /// `None` for the verifier's clock.
        from: Option<Claim>,
    },

    // 20105 Access Token not yet valid
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid {
        /// `nbf`, unix seconds.
        not_before: u64,
        /// The verifier's clock, unix seconds.
        now: u64,
        /// The clock skew allowed, seconds.
        leeway: u64,
    },
    /// `iat` is in the future (beyond the leeway): the token server's clock
    /// is ahead of ours.
    IssuedInFuture {
        /// `iat`, unix seconds.
        issued_at: u64,
        /// The verifier's clock, unix seconds.
        now: u64,
        /// The clock skew allowed, seconds.
        leeway: u64,
    },

    // 20106 Invalid Access Token grants
    /// `grants.identity` or `grants.video.room` is the empty string.
    EmptyGrant {
        /// Which one.
        claim: Claim,
    },
    /// `grants.identity` or `grants.video.room` is over 128 characters.
    GrantTooLong {
        /// Which one.
        claim: Claim,
        /// Its length in characters.
        chars: usize,
    },
    /// The token grants one room and the bearer asked for another.
    RoomNotGranted {
        /// The room the token grants (a name or an `RM` SID).
        granted: String,
        /// The unique name of the room asked for.
        name: String,
        /// The SID of the room asked for.
        sid: String,
    },

    // 20107 Invalid Access Token signature
    /// The signature is not the HMAC of the token under the key's secret:
    /// altered, truncated, padded, or made with another secret.
    BadSignature {
        /// The key the token claims to be signed with.
        key: ApiKeySid,
        /// The algorithm the header names.
        algorithm: Algorithm,
    },

    // Code depends on the claim: see `Claim::code`.
    /// A required claim is absent.
    MissingClaim {
        /// Which claim.
        claim: Claim,
    },
    /// A claim has the wrong JSON type.
    WrongClaimType {
        /// Which claim.
        claim: Claim,
        /// The type it has.
        found: JsonType,
    },
}

impl Rejection {
    /// The Twilio error code: 20101 to 20107.
    pub fn code(&self) -> u32 {
        use Rejection::*;
        match self {
            TokenTooLong { .. }
            | NotThreeParts { .. }
            | BadBase64 { .. }
            | PayloadNotJson { .. }
            | PayloadNotObject { .. } => 20101,
            HeaderNotJson { .. }
            | HeaderNotObject { .. }
            | UnsupportedAlgorithm { .. }
            | WrongContentType { .. }
            | WrongTokenType { .. }
            | CriticalExtensions => 20102,
            MalformedIssuer { .. }
            | UnknownKey { .. }
            | RevokedKey { .. }
            | MalformedSubject { .. }
            | AccountMismatch { .. } => 20103,
            Expired { .. } | ExpiresBeforeStart { .. } | LifetimeTooLong { .. } => 20104,
            NotYetValid { .. } | IssuedInFuture { .. } => 20105,
            EmptyGrant { .. } | GrantTooLong { .. } | RoomNotGranted { .. } => 20106,
            BadSignature { .. } => 20107,
            MissingClaim { claim } | WrongClaimType { claim, .. } => claim.code(),
        }
    }

    /// Twilio's canonical message for [`Rejection::code`].
    pub fn message(&self) -> &'static str {
        match self.code() {
            20101 => "Invalid Access Token",
            20102 => "Invalid Access Token header",
            20103 => "Invalid Access Token issuer/subject",
            20104 => "Access Token expired or expiration date invalid",
            20105 => "Access Token not yet valid",
            20106 => "Invalid Access Token grants",
            _ => "Invalid Access Token signature",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Rejection::*;
        match self {
            TokenTooLong { bytes } => write!(
                f,
                "token is {bytes} bytes long; access tokens are limited to {MAX_TOKEN_LEN} bytes"
            ),
            NotThreeParts { parts } => write!(
                f,
                "token has {parts} dot-separated part{}; a JWT has three: header.payload.signature",
                if *parts == 1 { "" } else { "s" }
            ),
            BadBase64 { part } => write!(
                f,
                "the {part} is not valid base64url (URL-safe alphabet, no '=' padding)"
            ),
            PayloadNotJson { error } => write!(f, "the payload is not valid JSON: {error}"),
            PayloadNotObject { found } => {
                write!(
                    f,
                    "the payload is {found}; it must be a JSON object of claims"
                )
            }
            HeaderNotJson { error } => write!(f, "the header is not valid JSON: {error}"),
            HeaderNotObject { found } => {
                write!(f, "the header is {found}; it must be a JSON object")
            }
            UnsupportedAlgorithm { alg } => write!(
                f,
                "header `alg` is {alg}; Twilio access tokens are signed with HS256, HS384 or HS512"
            ),
            WrongContentType { cty } => write!(
                f,
                "header `cty` is {cty}; a Twilio access token has \"twilio-fpa;v=1\""
            ),
            WrongTokenType { typ } => {
                write!(f, "header `typ` is {typ}; it must be \"JWT\" or absent")
            }
            CriticalExtensions => f.write_str(
                "header has `crit`: it demands JWS extensions that Salon does not implement",
            ),
            MalformedIssuer { iss } => write!(
                f,
                "`iss` is {iss:?}, not an API key SID ('SK' followed by 32 hexadecimal digits)"
            ),
            UnknownKey { key } => write!(
                f,
                "API key {key} (from `iss`) is not known to this server; \
                 sign with a key that exists here"
            ),
            RevokedKey { key, revoked_at } => write!(
                f,
                "API key {key} was revoked at {}; sign with a current key",
                UnixTime(*revoked_at)
            ),
            MalformedSubject { sub } => write!(
                f,
                "`sub` is {sub:?}, not an account SID ('AC' followed by 32 hexadecimal digits)"
            ),
            AccountMismatch {
                key,
                key_account,
                sub,
            } => write!(
                f,
                "`sub` names account {sub}, but API key {key} belongs to account {key_account}"
            ),
            Expired {
                expired_at,
                now,
                leeway,
            } => write!(
                f,
                "token expired at {}, {} s before now ({}); {leeway} s of clock skew is allowed",
                UnixTime(*expired_at),
                now.saturating_sub(*expired_at),
                UnixTime(*now),
            ),
            ExpiresBeforeStart {
                expires_at,
                starts_at,
                start,
            } => write!(
                f,
                "token expires at {} (`exp`) but starts at {} (`{start}`): it is never valid",
                UnixTime(*expires_at),
                UnixTime(*starts_at),
            ),
            LifetimeTooLong {
                lifetime,
                max,
                from,
            } => write!(
                f,
                "token is valid for {lifetime} s (from {} to `exp`); the limit is {max} s",
                match from {
                    Some(claim) => format!("`{claim}`"),
                    None => "now".to_owned(),
                }
            ),
            NotYetValid {
                not_before,
                now,
                leeway,
            } => write!(
                f,
                "token is not valid before {} (`nbf`), {} s after now ({}); \
                 {leeway} s of clock skew is allowed",
                UnixTime(*not_before),
                not_before.saturating_sub(*now),
                UnixTime(*now),
            ),
            IssuedInFuture {
                issued_at,
                now,
                leeway,
            } => write!(
                f,
                "token was issued at {} (`iat`), {} s after now ({}); the token server's clock \
                 is ahead of this one by more than the {leeway} s of skew allowed",
                UnixTime(*issued_at),
                issued_at.saturating_sub(*now),
                UnixTime(*now),
            ),
            EmptyGrant { claim } => write!(f, "`{claim}` is empty"),
            GrantTooLong { claim, chars } => write!(
                f,
                "`{claim}` is {chars} characters long; the limit is {MAX_GRANT_CHARS}"
            ),
            RoomNotGranted { granted, name, sid } => write!(
                f,
                "token grants room {granted:?}, not room {name:?} ({sid}); mint a token for \
                 this room, or one without a room to allow any"
            ),
            BadSignature { key, algorithm } => write!(
                f,
                "the {algorithm} signature does not verify with the secret of API key {key}: \
                 the token was altered, truncated, or signed with another secret"
            ),
            MissingClaim {
                claim: Claim::Video,
            } => f.write_str(
                "the token has no video grant (`grants.video`); add a VideoGrant when minting",
            ),
            MissingClaim {
                claim: Claim::Identity,
            } => f.write_str("the token has no identity (`grants.identity`); set one when minting"),
            MissingClaim { claim } => write!(f, "the `{claim}` claim is missing"),
            WrongClaimType { claim, found } => {
                let expected = match claim.expected() {
                    JsonType::Integer => "a whole number of unix seconds",
                    JsonType::Object => "an object",
                    _ => "a string",
                };
                write!(f, "`{claim}` is {found}; it must be {expected}")
            }
        }
    }
}

impl std::error::Error for Rejection {}

/// A unix time shown as an RFC 3339 UTC date, e.g. `2026-01-01T00:00:00Z`,
/// or as `unix N` when it is beyond what a calendar date can say.
pub(crate) struct UnixTime(pub(crate) u64);

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = i64::try_from(self.0)
            .ok()
            .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
            .and_then(|date| {
                date.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        match date {
            Some(date) => f.write_str(&date),
            None => write!(f, "unix {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc_and_fall_back_to_unix_seconds() {
        assert_eq!(UnixTime(1_767_225_600).to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(UnixTime(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime(u64::MAX).to_string(), format!("unix {}", u64::MAX));
    }

    #[test]
    fn excerpts_cut_long_text_at_a_character_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn every_code_has_twilios_message() {
        let cases = [
            (
                Rejection::TokenTooLong { bytes: 9000 },
                20101,
                "Invalid Access Token",
            ),
            (
                Rejection::CriticalExtensions,
                20102,
                "Invalid Access Token header",
            ),
            (
                Rejection::MissingClaim { claim: Claim::Sub },
                20103,
                "Invalid Access Token issuer/subject",
            ),
            (
                Rejection::WrongClaimType {
                    claim: Claim::Exp,
                    found: JsonType::String,
                },
                20104,
                "Access Token expired or expiration date invalid",
            ),
            (
                Rejection::NotYetValid {
                    not_before: 10,
                    now: 0,
                    leeway: 0,
                },
                20105,
                "Access Token not yet valid",
            ),
            (
                Rejection::MissingClaim {
                    claim: Claim::Video,
                },
                20106,
                "Invalid Access Token grants",
            ),
            (
                Rejection::BadSignature {
                    key: ApiKeySid::from_bytes([0; 16]),
                    algorithm: Algorithm::HS256,
                },
                20107,
                "Invalid Access Token signature",
            ),
            (
                Rejection::MissingClaim { claim: Claim::Jti },
                20101,
                "Invalid Access Token",
            ),
        ];
        for (rejection, code, message) in cases {
            assert_eq!(rejection.code(), code, "{rejection:?}");
            assert_eq!(rejection.message(), message, "{rejection:?}");
        }
    }

    #[test]
    fn explanations_name_the_detail_that_matters() {
        let expired = Rejection::Expired {
            expired_at: 1_767_225_600,
            now: 1_767_229_200,
            leeway: 30,
        };
        assert_eq!(
            expired.to_string(),
            "token expired at 2026-01-01T00:00:00Z, 3600 s before now (2026-01-01T01:00:00Z); \
             30 s of clock skew is allowed"
        );
        let wrong = Rejection::WrongClaimType {
            claim: Claim::Room,
            found: JsonType::Integer,
        };
        assert_eq!(
            wrong.to_string(),
            "`grants.video.room` is an integer; it must be a string"
        );
        let alg = Rejection::UnsupportedAlgorithm {
            alg: Found::Text("none".into()),
        };
        assert_eq!(
            alg.to_string(),
            "header `alg` is \"none\"; Twilio access tokens are signed with HS256, HS384 or HS512"
        );
    }
}

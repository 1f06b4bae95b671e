//! Verification: from untrusted text to a [`VerifiedToken`] or the one
//! [`Rejection`] that explains the first thing wrong with it.
//!
//! The checks run in a fixed order (size → structure and base64 → header →
//! payload JSON → issuer and key → signature → subject → times → grants), so
//! a token always gets the same verdict. Before the signature holds, only the
//! token's shape and its key are judged: someone probing with unsigned tokens
//! learns nothing about which account a key belongs to or what it accepts.
//!
//! Verifying borrows everything it can: the header and payload are decoded
//! into one stack buffer, claims are read as `&str` slices of it, and the
//! HMAC state comes ready from the key. The only allocations of an accepted
//! token are the three strings the [`VerifiedToken`] owns.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use salon_sid::{AccountSid, ApiKeySid, RoomSid};

use crate::claims::{Grants, Header, Json, Payload};
use crate::rejection::{Claim, Found, MAX_GRANT_CHARS, Part, excerpt};
use crate::{Algorithm, Keyring, Rejection};

/// The longest token accepted, in bytes. Real tokens are under 1 KiB; the
/// limit is checked before anything is decoded, which bounds every buffer
/// and every loop below.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The most the header and payload of a token within [`MAX_TOKEN_LEN`] can
/// decode to: base64 packs 3 bytes in 4 characters.
const MAX_DECODED_LEN: usize = MAX_TOKEN_LEN / 4 * 3;

/// The longest signature any accepted algorithm makes (HS512, 64 bytes).
const MAX_SIGNATURE_LEN: usize = 64;

/// The content type of every Twilio access token, version 1 of its format.
const CONTENT_TYPE: &str = "twilio-fpa;v=1";

/// Checks access tokens: signature, issuer, times and grants.
///
/// The verifier holds only policy; the keys come from the [`Keyring`] and the
/// time from the caller, so one verifier serves every thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// Clock skew tolerated between the token server and this one, applied to
    /// `exp`, `nbf` and `iat`. Default 30 s; keep it small, since it extends
    /// every token's life.
    pub leeway: Duration,
    /// The longest validity accepted, counted from `nbf`, else `iat`, else
    /// now, to `exp`. Default 24 h, Twilio's limit.
    pub max_lifetime: Duration,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(30),
            max_lifetime: crate::MAX_TTL,
        }
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Who the bearer is (`grants.identity`).
    pub identity: String,
    /// The one room the bearer may join (`grants.video.room`: a unique name
    /// or an `RM` SID), or `None` for any room.
    pub room: Option<String>,
    /// The API key that signed it (`iss`).
    pub key: ApiKeySid,
    /// The key's account (`sub`).
    pub account: AccountSid,
    /// `iat`, unix seconds; twilio-python does not set it.
    pub issued_at: Option<u64>,
    /// `nbf`, unix seconds.
    pub not_before: Option<u64>,
    /// `exp`, unix seconds.
    pub expires_at: u64,
    /// `jti`, the token's id (`<key SID>-<issue time>` from the helper libraries).
    pub jti: String,
    /// The signature algorithm.
    pub algorithm: Algorithm,
}

impl VerifiedToken {
    /// Whether the token lets its bearer into the room with unique name
    /// `name` and SID `sid`. A room grant may name either. Names compare
    /// exactly; SIDs by value, so `RM…ABC` and `RM…abc` are the same room.
    pub fn allows_room(&self, name: &str, sid: &str) -> Result<(), Rejection> {
        let Some(granted) = &self.room else {
            return Ok(());
        };
        let same_sid = || match (granted.parse::<RoomSid>(), sid.parse::<RoomSid>()) {
            (Ok(granted), Ok(sid)) => granted == sid,
            _ => false,
        };
        if granted == name || same_sid() {
            Ok(())
        } else {
            Err(Rejection::RoomNotGranted {
                granted: granted.clone(),
                name: excerpt(name),
                sid: excerpt(sid),
            })
        }
    }
}

impl Verifier {
    /// Verifies `token` against the keys in `keys` at time `now` (unix
    /// seconds). See the crate docs for the order of the checks and the code
    /// each failure maps to.
    pub fn verify(
        &self,
        token: &str,
        keys: &Keyring,
        now: u64,
    ) -> Result<VerifiedToken, Rejection> {
        let parts = split(token)?;
        let mut scratch = [0u8; MAX_DECODED_LEN];
        let (header, payload) = decode_parts(&parts, &mut scratch)?;

        let algorithm = check_header(header)?;
        let claims = read_payload(payload)?;
        let jti = required_text(claims.jti.as_ref(), Claim::Jti)?;
        let issued_at = optional_time(claims.iat.as_ref(), Claim::Iat)?;
        let not_before = optional_time(claims.nbf.as_ref(), Claim::Nbf)?;

        // Issuer: which key, and is it one we trust?
        let iss = required_text(claims.iss.as_ref(), Claim::Iss)?;
        let key_sid: ApiKeySid = iss
            .parse()
            .map_err(|_| Rejection::MalformedIssuer { iss: excerpt(iss) })?;
        let key = keys
            .get(&key_sid)
            .ok_or(Rejection::UnknownKey { key: key_sid })?;
        if let Some(revoked_at) = key.revoked_at {
            return Err(Rejection::RevokedKey {
                key: key.sid,
                revoked_at,
            });
        }

        // Signature, over the text of `header.payload` exactly as sent.
        let mut signature = [0u8; MAX_SIGNATURE_LEN];
        let signature = decode_signature(parts.signature, &mut signature);
        if !signature.is_some_and(|sig| key.verifies(algorithm, parts.signed.as_bytes(), sig)) {
            return Err(Rejection::BadSignature {
                key: key.sid,
                algorithm,
            });
        }

        // Subject: only judged once the signature holds, so that an unsigned
        // probe cannot learn which account a key belongs to.
        let sub = required_text(claims.sub.as_ref(), Claim::Sub)?;
        let account: AccountSid = sub
            .parse()
            .map_err(|_| Rejection::MalformedSubject { sub: excerpt(sub) })?;
        if account != key.account_sid {
            return Err(Rejection::AccountMismatch {
                key: key.sid,
                key_account: key.account_sid,
                sub: account,
            });
        }

        let expires_at = self.check_times(claims.exp.as_ref(), issued_at, not_before, now)?;
        let (identity, room) = check_grants(claims.grants.as_ref())?;

        Ok(VerifiedToken {
            identity: identity.to_owned(),
            room: room.map(str::to_owned),
            key: key.sid,
            account,
            issued_at,
            not_before,
            expires_at,
            jti: jti.to_owned(),
            algorithm,
        })
    }

    /// Checks `exp`, `nbf` and `iat` against `now`; returns `exp`.
    fn check_times(
        &self,
        exp: Option<&Json<'_>>,
        issued_at: Option<u64>,
        not_before: Option<u64>,
        now: u64,
    ) -> Result<u64, Rejection> {
        let leeway = self.leeway.as_secs();
        let expires_at = match exp {
            None => return Err(Rejection::MissingClaim { claim: Claim::Exp }),
            Some(Json::Integer(exp)) => *exp,
            Some(other) => {
                return Err(Rejection::WrongClaimType {
                    claim: Claim::Exp,
                    found: other.json_type(),
                });
            }
        };
        if expires_at <= now.saturating_sub(leeway) {
            return Err(Rejection::Expired {
                expired_at: expires_at,
                now,
                leeway,
            });
        }
        let latest_start = now.saturating_add(leeway);
        if let Some(nbf) = not_before.filter(|&nbf| nbf > latest_start) {
            return Err(Rejection::NotYetValid {
                not_before: nbf,
                now,
                leeway,
            });
        }
        if let Some(iat) = issued_at.filter(|&iat| iat > latest_start) {
            return Err(Rejection::IssuedInFuture {
                issued_at: iat,
                now,
                leeway,
            });
        }
        let (starts_at, from) = match (not_before, issued_at) {
            (Some(nbf), _) => (nbf, Some(Claim::Nbf)),
            (None, Some(iat)) => (iat, Some(Claim::Iat)),
            // Without either, the token's life is what remains of it; `exp`
            // may be a little in the past here, within the leeway.
            (None, None) => (now.min(expires_at), None),
        };
        if let Some(start) = from.filter(|_| expires_at <= starts_at) {
            return Err(Rejection::ExpiresBeforeStart {
                expires_at,
                starts_at,
                start,
            });
        }
        let lifetime = expires_at - starts_at;
        let max = self.max_lifetime.as_secs();
        if lifetime > max {
            return Err(Rejection::LifetimeTooLong {
                lifetime,
                max,
                from,
            });
        }
        Ok(expires_at)
    }
}

/// Decodes a token's header and payload without checking anything but their
/// encoding, for tools that show a token before explaining the verdict
/// (`salon token inspect`). The values may be any JSON, not just objects.
/// Never use what this returns to let anyone in.
pub fn decode_unverified(token: &str) -> Result<(serde_json::Value, serde_json::Value), Rejection> {
    let parts = split(token)?;
    let mut scratch = [0u8; MAX_DECODED_LEN];
    let (header, payload) = decode_parts(&parts, &mut scratch)?;
    let header = serde_json::from_slice(header).map_err(|e| Rejection::HeaderNotJson {
        error: e.to_string(),
    })?;
    let payload = serde_json::from_slice(payload).map_err(|e| Rejection::PayloadNotJson {
        error: e.to_string(),
    })?;
    Ok((header, payload))
}

/// The three parts of a token, as text.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`, the text the signature covers.
    signed: &'a str,
}

/// Checks the size, then splits on the two dots.
fn split(token: &str) -> Result<Parts<'_>, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::TokenTooLong { bytes: token.len() });
    }
    let mut dots = token.match_indices('.').map(|(at, _)| at);
    match (dots.next(), dots.next(), dots.next()) {
        (Some(first), Some(second), None) => Ok(Parts {
            header: &token[..first],
            payload: &token[first + 1..second],
            signature: &token[second + 1..],
            signed: &token[..second],
        }),
        _ => Err(Rejection::NotThreeParts {
            parts: token.split('.').count(),
        }),
    }
}

/// Decodes header and payload into `scratch`, which [`MAX_TOKEN_LEN`] makes
/// large enough for both.
fn decode_parts<'s>(
    parts: &Parts<'_>,
    scratch: &'s mut [u8; MAX_DECODED_LEN],
) -> Result<(&'s [u8], &'s [u8]), Rejection> {
    let header_len = URL_SAFE_NO_PAD
        .decode_slice(parts.header, scratch)
        .map_err(|_| Rejection::BadBase64 { part: Part::Header })?;
    let (header, rest) = scratch.split_at_mut(header_len);
    let payload_len = URL_SAFE_NO_PAD
        .decode_slice(parts.payload, rest)
        .map_err(|_| Rejection::BadBase64 {
            part: Part::Payload,
        })?;
    Ok((header, &rest[..payload_len]))
}

/// Decodes the signature, or `None` if it cannot be any algorithm's: too long,
/// or not canonical base64url. Either way the token is rejected as badly
/// signed (20107), like a signature of the right shape that does not match:
/// a truncated or padded signature is a wrong signature, not a malformed token.
fn decode_signature<'s>(text: &str, out: &'s mut [u8; MAX_SIGNATURE_LEN]) -> Option<&'s [u8]> {
    let len = URL_SAFE_NO_PAD.decode_slice(text, out).ok()?;
    Some(&out[..len])
}

/// Checks `alg`, `typ`, `cty` and `crit`; returns the algorithm.
fn check_header(bytes: &[u8]) -> Result<Algorithm, Rejection> {
    let text = json_text(bytes).map_err(|error| Rejection::HeaderNotJson { error })?;
    let header = match serde_json::from_str::<Json<'_, Header<'_>>>(text) {
        Ok(Json::Object(header)) => header,
        Ok(other) => {
            return Err(Rejection::HeaderNotObject {
                found: other.json_type(),
            });
        }
        Err(e) => {
            return Err(Rejection::HeaderNotJson {
                error: e.to_string(),
            });
        }
    };
    let algorithm = match &header.alg {
        Some(Json::Text(alg)) => alg.parse::<Algorithm>().ok(),
        _ => None,
    }
    .ok_or_else(|| Rejection::UnsupportedAlgorithm {
        alg: found(header.alg.as_ref()),
    })?;
    match &header.typ {
        None => {}
        Some(Json::Text(typ)) if typ == "JWT" => {}
        typ => {
            return Err(Rejection::WrongTokenType {
                typ: found(typ.as_ref()),
            });
        }
    }
    match &header.cty {
        Some(Json::Text(cty)) if cty == CONTENT_TYPE => {}
        cty => {
            return Err(Rejection::WrongContentType {
                cty: found(cty.as_ref()),
            });
        }
    }
    if header.crit {
        return Err(Rejection::CriticalExtensions);
    }
    Ok(algorithm)
}

/// The decoded bytes as JSON text, which is UTF-8 throughout (RFC 8259
/// §8.1; RFC 7519 §7.2 asks verifiers to check it). `serde_json` checks
/// the strings it reads but skips ignored ones unchecked, so a member Salon
/// does not look at could otherwise carry bytes that are not text at all.
fn json_text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text: invalid byte at offset {}", e.valid_up_to()))
}

/// What a header field held, for a rejection.
fn found(value: Option<&Json<'_>>) -> Found {
    match value {
        None => Found::Missing,
        Some(Json::Text(text)) => Found::Text(excerpt(text)),
        Some(other) => Found::Other(other.json_type()),
    }
}

fn read_payload(bytes: &[u8]) -> Result<Payload<'_>, Rejection> {
    let text = json_text(bytes).map_err(|error| Rejection::PayloadNotJson { error })?;
    match serde_json::from_str::<Json<'_, Payload<'_>>>(text) {
        Ok(Json::Object(payload)) => Ok(payload),
        Ok(other) => Err(Rejection::PayloadNotObject {
            found: other.json_type(),
        }),
        Err(e) => Err(Rejection::PayloadNotJson {
            error: e.to_string(),
        }),
    }
}

fn required_text<'j>(value: Option<&'j Json<'_>>, claim: Claim) -> Result<&'j str, Rejection> {
    match value {
        None => Err(Rejection::MissingClaim { claim }),
        Some(Json::Text(text)) => Ok(text),
        Some(other) => Err(Rejection::WrongClaimType {
            claim,
            found: other.json_type(),
        }),
    }
}

fn optional_time(value: Option<&Json<'_>>, claim: Claim) -> Result<Option<u64>, Rejection> {
    match value {
        None => Ok(None),
        Some(Json::Integer(secs)) => Ok(Some(*secs)),
        Some(other) => Err(Rejection::WrongClaimType {
            claim,
            found: other.json_type(),
        }),
    }
}

/// Checks the identity and the video grant; returns the identity and room.
fn check_grants<'j>(
    grants: Option<&'j Json<'_, Grants<'_>>>,
) -> Result<(&'j str, Option<&'j str>), Rejection> {
    let grants = match grants {
        None => {
            return Err(Rejection::MissingClaim {
                claim: Claim::Grants,
            });
        }
        Some(Json::Object(grants)) => grants,
        Some(other) => {
            return Err(Rejection::WrongClaimType {
                claim: Claim::Grants,
                found: other.json_type(),
            });
        }
    };
    let identity = grant_text(
        required_text(grants.identity.as_ref(), Claim::Identity)?,
        Claim::Identity,
    )?;
    let video = match &grants.video {
        None => {
            return Err(Rejection::MissingClaim {
                claim: Claim::Video,
            });
        }
        Some(Json::Object(video)) => video,
        Some(other) => {
            return Err(Rejection::WrongClaimType {
                claim: Claim::Video,
                found: other.json_type(),
            });
        }
    };
    let room = match &video.room {
        None => None,
        room => Some(grant_text(
            required_text(room.as_ref(), Claim::Room)?,
            Claim::Room,
        )?),
    };
    Ok((identity, room))
}

/// An identity or room: 1 to 128 characters, counted as Unicode scalar
/// values (`char`s), not UTF-8 bytes.
fn grant_text(text: &str, claim: Claim) -> Result<&str, Rejection> {
    match text.chars().count() {
        0 => Err(Rejection::EmptyGrant { claim }),
        chars if chars > MAX_GRANT_CHARS => Err(Rejection::GrantTooLong { claim, chars }),
        _ => Ok(text),
    }
}

//! Twilio-compatible access tokens: minting and verification.
//!
//! An access token is a JWT signed with an API key's secret. An app's token
//! server mints one, with [`mint`] or with Twilio's own helper libraries
//! (`twilio.jwt.AccessToken` + `VideoGrant`: the bytes are the same); the
//! browser hands it to Salon when it connects; Salon checks it with
//! [`Verifier::verify`] against the [`Keyring`] of API keys it trusts, and
//! asks the [`VerifiedToken`] whether it allows the room being joined.
//!
//! This crate owns the token format and its error codes. It does no I/O and
//! reads no clock: callers pass `now` in unix seconds, so tests can be exact
//! about time. It knows rooms only by name and SID, and keys only as values
//! handed to it; where keys are stored is someone else's business.
//!
//! # The token
//!
//! ```text
//! header   {"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}            (+ "twr", ignored)
//! payload  {"jti":"SK…-1767225600",
//!           "grants":{"identity":"alice","video":{"room":"cool room"}},
//!           "iat":1767225600,"exp":1767229200,                           ("nbf" optional)
//!           "iss":"SK…","sub":"AC…"}
//! ```
//!
//! `alg` is HS256, HS384 or HS512, with the key's secret (its UTF-8 bytes)
//! as the HMAC key. `iss` names the API key, `sub` its account. twilio-python
//! leaves out `iat`. A video grant without `room` allows every room; `room`
//! may be a room's unique name or its `RM` SID.
//!
//! # Verification
//!
//! Checks run in this order and the first failure is the verdict, a
//! [`Rejection`] carrying Twilio's code:
//!
//! | step | rejected when | code |
//! |------|---------------|------|
//! | size | longer than 8 KiB (before decoding anything) | 20101 |
//! | structure | not three dot-separated parts; header or payload not unpadded base64url | 20101 |
//! | header | not a JSON object (or not UTF-8, even in a field Salon ignores); `alg` not HS256/384/512 (`none`, `RS256`…); `typ` present and not `JWT`; `cty` not `twilio-fpa;v=1`; `crit` present | 20102 |
//! | payload | not a JSON object (or not UTF-8, even in a claim Salon ignores, or a claim repeated); `jti` missing or not a string; `iat`/`nbf` not integers | 20101 |
//! | issuer | `iss` missing or not an `SK` SID; key unknown; key revoked | 20103 |
//! | signature | not the key's HMAC of `header.payload` (constant-time compare): altered, truncated, padded, other key | 20107 |
//! | subject | `sub` missing, not an `AC` SID, or not the key's account | 20103 |
//! | time | `exp` missing or not an integer; `exp` ≤ now − leeway; `exp` not after `nbf`/`iat`; lifetime (`exp` − (`nbf` or `iat` or now)) over 24 h | 20104 |
//! | time | `nbf` or `iat` later than now + leeway | 20105 |
//! | grants | no `grants` object; `grants.identity` missing, empty, not a string or over 128 characters; no `grants.video` object; `room` not a string, empty or over 128 characters | 20106 |
//! | room | [`VerifiedToken::allows_room`]: the grant names another room | 20106 |
//!
//! The leeway ([`Verifier::leeway`]) tolerates clock skew between the token
//! server and Salon: 30 s by default, applied to `exp`, `nbf` and `iat`.
//! Lengths are counted in characters, not bytes. Unknown header fields and
//! claims (and other products' grants) are ignored.
//!
//! Verification never panics, whatever the input. It decodes into a stack
//! buffer and reads claims in place, so it allocates only the accepted
//! token's strings, a rejection's detail, and any JSON string that had to be
//! unescaped; a typical token takes about 2 µs (see `benches/tokens.rs`).
//!
//! # Example
//!
//! ```
//! use salon_sid::{AccountSid, ApiKeySid};
//! use salon_token::{mint, ApiKey, Grant, Keyring, MintOptions, Verifier};
//!
//! let account: AccountSid = "AC0123456789abcdef0123456789abcdef".parse().unwrap();
//! let sid: ApiKeySid = "SKfedcba9876543210fedcba9876543210".parse().unwrap();
//! let keys = Keyring::from_iter([ApiKey::new(sid, account, "the key's secret")]);
//! let now = 1_767_225_600; // 2026-01-01T00:00:00Z
//!
//! let grant = Grant::new("alice").in_room("cool room");
//! let token = mint(keys.get(&sid).unwrap(), &grant, now, &MintOptions::default()).unwrap();
//!
//! let verified = Verifier::default().verify(&token, &keys, now + 60).unwrap();
//! assert_eq!(verified.identity, "alice");
//! assert!(verified.allows_room("cool room", "RM00000000000000000000000000000000").is_ok());
//!
//! let refused = verified.allows_room("other room", "RM11111111111111111111111111111111").unwrap_err();
//! assert_eq!(refused.code(), 20106);
//! assert_eq!(refused.message(), "Invalid Access Token grants");
//!
//! let late = Verifier::default().verify(&token, &keys, now + 7200).unwrap_err();
//! assert_eq!(late.code(), 20104);
//! assert_eq!(
//!     late.to_string(),
//!     "token expired at 2026-01-01T01:00:00Z, 3600 s before now (2026-01-01T02:00:00Z); \
//!      30 s of clock skew is allowed"
//! );
//! ```

mod claims;
mod key;
mod mint;
mod rejection;
mod verify;

pub use key::{Algorithm, ApiKey, Keyring, ParseAlgorithmError};
pub use mint::{Grant, MAX_TTL, MintError, MintOptions, mint};
pub use rejection::{Claim, Found, JsonType, MAX_GRANT_CHARS, Part, Rejection};
pub use verify::{MAX_TOKEN_LEN, VerifiedToken, Verifier, decode_unverified};

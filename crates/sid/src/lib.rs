//! Twilio-style resource identifiers.
//!
//! Every resource Salon exposes is named the way Twilio names it: a two-letter
//! prefix that says what kind of thing it is, then 32 hexadecimal digits.
//!
//! | type            | prefix | what it names                      |
//! |-----------------|--------|------------------------------------|
//! | [`AccountSid`]  | `AC`   | an account (owner of keys, rooms)  |
//! | [`ApiKeySid`]   | `SK`   | an API key (signs tokens, REST auth)|
//! | [`RoomSid`]     | `RM`   | a room                             |
//! | [`ParticipantSid`] | `PA` | one connection of one identity    |
//! | [`TrackSid`]    | `MT`   | a published media or data track    |
//! | [`RecordingSid`] | `RT`  | a recording of one track           |
//! | [`CompositionSid`] | `CJ` | a composition of a room's recordings |
//! | [`CompositionHookSid`] | `HK` | a hook that composes rooms as they end |
//!
//! A SID is `Copy` and compares by value. Parsing accepts either case of hex
//! digit (Twilio's documented pattern is `^RM[0-9a-fA-F]{32}$`) and stores the
//! lowercase form, so the same resource always has one spelling inside Salon.
//!
//! ```
//! use salon_sid::RoomSid;
//! let sid: RoomSid = "RM0123456789ABCDEF0123456789abcdef".parse().unwrap();
//! assert_eq!(sid.as_str(), "RM0123456789abcdef0123456789abcdef");
//! assert!("PA0123456789abcdef0123456789abcdef".parse::<RoomSid>().is_err());
//! ```
//!
//! This crate knows nothing about rooms or tokens; it only spells names.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

/// Length of every SID: two prefix letters and 32 hex digits.
pub const SID_LEN: usize = 34;

/// A kind of resource, fixing the two-letter prefix of its SIDs.
pub trait Kind: 'static {
    /// The two ASCII uppercase letters every SID of this kind starts with.
    const PREFIX: &'static str;
    /// Human name used in error messages, e.g. "room".
    const NAME: &'static str;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident / $alias:ident = $prefix:literal, $name:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $kind {}
        impl Kind for $kind {
            const PREFIX: &'static str = $prefix;
            const NAME: &'static str = $name;
        }
        $(#[$doc])*
        pub type $alias = Sid<$kind>;
    )*};
}

kinds! {
    /// An account: the owner of API keys and rooms.
    Account / AccountSid = "AC", "account";
    /// An API key: signs access tokens and authenticates REST calls.
    ApiKey / ApiKeySid = "SK", "API key";
    /// A room.
    Room / RoomSid = "RM", "room";
    /// One connection of one identity to one room.
    Participant / ParticipantSid = "PA", "participant";
    /// A track a participant publishes.
    Track / TrackSid = "MT", "track";
    /// A recording of one published track.
    Recording / RecordingSid = "RT", "recording";
    /// A composition: a room's recordings mixed into one file.
    Composition / CompositionSid = "CJ", "composition";
    /// A composition hook: composes every room that ends.
    CompositionHook / CompositionHookSid = "HK", "composition hook";
}

/// A resource identifier of kind `K`, stored as its 34 ASCII bytes.
pub struct Sid<K: Kind> {
    ascii: [u8; SID_LEN],
    kind: PhantomData<K>,
}

impl<K: Kind> Sid<K> {
    /// A SID whose 32 hex digits spell `bytes`. Deterministic: tests and
    /// sans-IO cores use this; the I/O shell feeds it random bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut ascii = [0u8; SID_LEN];
        ascii[..2].copy_from_slice(K::PREFIX.as_bytes());
        for (i, b) in bytes.iter().enumerate() {
            ascii[2 + 2 * i] = HEX[usize::from(b >> 4)];
            ascii[3 + 2 * i] = HEX[usize::from(b & 0xf)];
        }
        Self {
            ascii,
            kind: PhantomData,
        }
    }

    /// A fresh SID from the operating system's cryptographic random source.
    pub fn random() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The SID as text, e.g. `RM0123…`.
    pub fn as_str(&self) -> &str {
        // Every constructor writes only ASCII letters and hex digits.
        std::str::from_utf8(&self.ascii).unwrap_or_default()
    }

    /// The 16 bytes the hex digits encode.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (hex_value(self.ascii[2 + 2 * i]) << 4) | hex_value(self.ascii[3 + 2 * i]);
        }
        out
    }

    /// Whether `s` has this kind's prefix (a cheap check before parsing, for
    /// routes that take "a SID or a unique name").
    pub fn has_prefix(s: &str) -> bool {
        s.starts_with(K::PREFIX)
    }
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Why a string is not a SID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSidError {
    expected: &'static str,
    name: &'static str,
}

impl fmt::Display for ParseSidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a valid {} SID: expected '{}' followed by 32 hexadecimal digits",
            self.name, self.expected
        )
    }
}

impl std::error::Error for ParseSidError {}

impl<K: Kind> FromStr for Sid<K> {
    type Err = ParseSidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = ParseSidError {
            expected: K::PREFIX,
            name: K::NAME,
        };
        let bytes = s.as_bytes();
        if bytes.len() != SID_LEN
            || !s.starts_with(K::PREFIX)
            || !bytes[2..].iter().all(u8::is_ascii_hexdigit)
        {
            return Err(err);
        }
        let mut ascii = [0u8; SID_LEN];
        ascii.copy_from_slice(bytes);
        ascii[2..].make_ascii_lowercase();
        Ok(Self {
            ascii,
            kind: PhantomData,
        })
    }
}

// Manual impls: derives would demand `K: Clone`, `K: Eq`… of the marker type.
impl<K: Kind> Clone for Sid<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Kind> Copy for Sid<K> {}
impl<K: Kind> PartialEq for Sid<K> {
    fn eq(&self, other: &Self) -> bool {
        self.ascii == other.ascii
    }
}
impl<K: Kind> Eq for Sid<K> {}
impl<K: Kind> PartialOrd for Sid<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Kind> Ord for Sid<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ascii.cmp(&other.ascii)
    }
}
impl<K: Kind> Hash for Sid<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ascii.hash(state);
    }
}
impl<K: Kind> fmt::Display for Sid<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl<K: Kind> fmt::Debug for Sid<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl<K: Kind> AsRef<str> for Sid<K> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<K: Kind> serde::Serialize for Sid<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, K: Kind> serde::Deserialize<'de> for Sid<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<K>(PhantomData<K>);
        impl<K: Kind> serde::de::Visitor<'_> for Visitor<K> {
            type Value = Sid<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a {} SID ('{}' + 32 hex digits)", K::NAME, K::PREFIX)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sids_parse_back_to_themselves() {
        for _ in 0..100 {
            let sid = RoomSid::random();
            assert_eq!(sid.as_str().parse::<RoomSid>(), Ok(sid));
            assert_eq!(RoomSid::from_bytes(sid.to_bytes()), sid);
        }
    }

    #[test]
    fn parsing_rejects_wrong_prefix_length_and_digits() {
        let good = "PA0123456789abcdef0123456789abcdef";
        assert!(good.parse::<ParticipantSid>().is_ok());
        assert!(good.parse::<RoomSid>().is_err(), "wrong prefix");
        assert!(good[..33].parse::<ParticipantSid>().is_err(), "too short");
        assert!(
            format!("{good}0").parse::<ParticipantSid>().is_err(),
            "too long"
        );
        assert!(
            "PA0123456789abcdef0123456789abcdeg"
                .parse::<ParticipantSid>()
                .is_err()
        );
        assert!(
            "pa0123456789abcdef0123456789abcdef"
                .parse::<ParticipantSid>()
                .is_err()
        );
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert!(
            "PA0123456789abcdef0123456789abcdé"
                .parse::<ParticipantSid>()
                .is_err()
        );
        assert!("".parse::<ParticipantSid>().is_err());
    }

    #[test]
    fn uppercase_hex_is_normalised_to_lowercase() {
        let sid: AccountSid = "ACABCDEF0123456789ABCDEF0123456789".parse().unwrap();
        assert_eq!(sid.as_str(), "ACabcdef0123456789abcdef0123456789");
    }

    #[test]
    fn serde_round_trips_and_rejects_other_kinds() {
        let sid = TrackSid::random();
        let json = serde_json::to_string(&sid).unwrap();
        assert_eq!(serde_json::from_str::<TrackSid>(&json).unwrap(), sid);
        assert!(serde_json::from_str::<RoomSid>(&json).is_err());
    }

    #[test]
    fn error_message_names_the_expected_shape() {
        let err = "nope".parse::<ApiKeySid>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a valid API key SID: expected 'SK' followed by 32 hexadecimal digits"
        );
    }
}

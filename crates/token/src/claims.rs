//! Reading a token's JSON header and payload without trusting them.
//!
//! The verifier needs a handful of members at known paths and must say
//! precisely what is wrong with each (missing, or which JSON type it has
//! instead). Deserializing straight into typed structs would lose that
//! ("invalid type" from serde), and building a `serde_json::Value` tree would
//! allocate for every member. So this module reads a value as a [`Json`]:
//! a string (borrowed from the decoded token when it has no escapes), a
//! non-negative integer, an object whose interesting members are picked out by
//! a [`Members`] type, or just the type of anything else, skipped without
//! being stored.
//!
//! Duplicate members are errors: a token whose `iss` says one thing to one
//! JSON parser and another to the next must not verify anywhere.
//! Depth is bounded by `serde_json`'s recursion limit, size by the token's.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::rejection::JsonType;

/// A JSON value as the token checks see it. `T` picks members out of objects;
/// the default, [`Skipped`], keeps none of them.
pub(crate) enum Json<'a, T = Skipped> {
    Text(Cow<'a, str>),
    Integer(u64),
    Object(T),
    Other(JsonType),
}

impl<T> Json<'_, T> {
    pub(crate) fn json_type(&self) -> JsonType {
        match self {
            Json::Text(_) => JsonType::String,
            Json::Integer(_) => JsonType::Integer,
            Json::Object(_) => JsonType::Object,
            Json::Other(kind) => *kind,
        }
    }
}

/// Picks the members an object reader cares about.
pub(crate) trait Members<'de>: Default {
    /// Reads the value of the member called `name` from `map`, or skips it.
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
}

/// The members of an object nobody looks inside.
#[derive(Default)]
pub(crate) struct Skipped;

impl<'de> Members<'de> for Skipped {
    fn member<A: MapAccess<'de>>(&mut self, _: &str, map: &mut A) -> Result<(), A::Error> {
        map.next_value::<IgnoredAny>().map(drop)
    }
}

/// Stores the value of member `name` in `slot`, refusing a second occurrence.
fn once<'de, A, V>(slot: &mut Option<V>, name: &str, map: &mut A) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    V: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(de::Error::custom(format_args!("duplicate member `{name}`")));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The JOSE header members Twilio tokens use. Others (`twr`, `kid`) are
/// ignored; `crit` is only noted, because its presence alone is refused.
#[derive(Default)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Option<Json<'a>>,
    pub(crate) typ: Option<Json<'a>>,
    pub(crate) cty: Option<Json<'a>>,
    pub(crate) crit: bool,
}

impl<'de> Members<'de> for Header<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "alg" => once(&mut self.alg, name, map),
            "typ" => once(&mut self.typ, name, map),
            "cty" => once(&mut self.cty, name, map),
            "crit" => {
                self.crit = true;
                map.next_value::<IgnoredAny>().map(drop)
            }
            _ => map.next_value::<IgnoredAny>().map(drop),
        }
    }
}

/// The payload claims Salon reads. Others (`aud`, custom claims) are ignored.
#[derive(Default)]
pub(crate) struct Payload<'a> {
    pub(crate) jti: Option<Json<'a>>,
    pub(crate) iss: Option<Json<'a>>,
    pub(crate) sub: Option<Json<'a>>,
    pub(crate) iat: Option<Json<'a>>,
    pub(crate) nbf: Option<Json<'a>>,
    pub(crate) exp: Option<Json<'a>>,
    pub(crate) grants: Option<Json<'a, Grants<'a>>>,
}

impl<'de> Members<'de> for Payload<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "jti" => once(&mut self.jti, name, map),
            "iss" => once(&mut self.iss, name, map),
            "sub" => once(&mut self.sub, name, map),
            "iat" => once(&mut self.iat, name, map),
            "nbf" => once(&mut self.nbf, name, map),
            "exp" => once(&mut self.exp, name, map),
            "grants" => once(&mut self.grants, name, map),
            _ => map.next_value::<IgnoredAny>().map(drop),
        }
    }
}

/// `grants`: the identity and the video grant. Other products' grants
/// (`chat`, `voice`…) are ignored.
#[derive(Default)]
pub(crate) struct Grants<'a> {
    pub(crate) identity: Option<Json<'a>>,
    pub(crate) video: Option<Json<'a, Video<'a>>>,
}

impl<'de> Members<'de> for Grants<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "identity" => once(&mut self.identity, name, map),
            "video" => once(&mut self.video, name, map),
            _ => map.next_value::<IgnoredAny>().map(drop),
        }
    }
}

/// `grants.video`: at most a room.
#[derive(Default)]
pub(crate) struct Video<'a> {
    pub(crate) room: Option<Json<'a>>,
}

impl<'de> Members<'de> for Video<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "room" => once(&mut self.room, name, map),
            _ => map.next_value::<IgnoredAny>().map(drop),
        }
    }
}

impl<'de, T: Members<'de>> Deserialize<'de> for Json<'de, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor(PhantomData))
    }
}

struct JsonVisitor<T>(PhantomData<T>);

impl<'de, T: Members<'de>> Visitor<'de> for JsonVisitor<T> {
    type Value = Json<'de, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Json::Other(JsonType::Boolean))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        // serde_json only calls this for negative integers.
        Ok(u64::try_from(v).map_or(Json::Other(JsonType::Number), Json::Integer))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Json::Integer(v))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Json::Other(JsonType::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        // Only strings with escapes get here: they had to be unescaped.
        Ok(Json::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Json::Text(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Other(JsonType::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Other(JsonType::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Json::Other(JsonType::Array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = T::default();
        while let Some(name) = map.next_key::<Name<'de>>()? {
            members.member(&name.0, &mut map)?;
        }
        Ok(Json::Object(members))
    }
}

/// An object member's name, borrowed unless it had escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: &str) -> Result<Json<'_, Payload<'_>>, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn strings_without_escapes_are_borrowed_and_escaped_ones_unescaped() {
        let Ok(Json::Object(p)) = payload(r#"{"jti":"plain","iss":"t\u0061b\tbed"}"#) else {
            panic!("not an object")
        };
        assert!(matches!(p.jti, Some(Json::Text(Cow::Borrowed("plain")))));
        assert!(matches!(p.iss, Some(Json::Text(Cow::Owned(ref s))) if s == "tab\tbed"));
    }

    #[test]
    fn values_report_their_json_type() {
        let Ok(Json::Object(p)) = payload(
            r#"{"jti":null,"iss":true,"sub":-1,"iat":1.5,"nbf":[1,{"a":2}],"exp":18446744073709551615,
                "grants":{"identity":{"x":1},"video":"room","chat":{"service_sid":"IS"}}}"#,
        ) else {
            panic!("not an object")
        };
        let kind = |j: &Option<Json<'_>>| j.as_ref().map(Json::json_type);
        assert_eq!(kind(&p.jti), Some(JsonType::Null));
        assert_eq!(kind(&p.iss), Some(JsonType::Boolean));
        assert_eq!(kind(&p.sub), Some(JsonType::Number));
        assert_eq!(kind(&p.iat), Some(JsonType::Number));
        assert_eq!(kind(&p.nbf), Some(JsonType::Array));
        assert!(matches!(p.exp, Some(Json::Integer(u64::MAX))));
        let Some(Json::Object(grants)) = p.grants else {
            panic!("grants not an object")
        };
        assert_eq!(kind(&grants.identity), Some(JsonType::Object));
        assert_eq!(grants.video.map(|v| v.json_type()), Some(JsonType::String));
    }

    #[test]
    fn duplicate_members_are_refused_even_when_spelled_with_escapes() {
        assert!(payload(r#"{"iss":"a","iss":"b"}"#).is_err());
        assert!(payload(r#"{"iss":"a","\u0069ss":"b"}"#).is_err());
        assert!(payload(r#"{"grants":{"video":{"room":"a","room":"b"}}}"#).is_err());
        // Unknown members may repeat: nobody reads them.
        assert!(payload(r#"{"x":1,"x":2}"#).is_ok());
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // serde_json skips ignored values iteratively; depth costs only heap
        // proportional to the (size-limited) input.
        let deep = format!("{{\"nbf\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let Ok(Json::Object(p)) = payload(&deep) else {
            panic!("balanced nesting is JSON")
        };
        assert_eq!(p.nbf.map(|n| n.json_type()), Some(JsonType::Array));
        assert!(payload(&deep[..deep.len() - 2]).is_err());
    }
}

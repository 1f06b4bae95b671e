//! [`Params`]: request parameters, the way Twilio's API takes them.
//!
//! The helper libraries send `application/x-www-form-urlencoded` bodies with
//! PascalCase names (`UniqueName=standup&Type=group`) and repeat a name for
//! lists (`VideoCodecs=VP8&VideoCodecs=H264`). Salon also takes JSON objects
//! (`{"UniqueName": "standup"}`, arrays for lists) and, on GETs, the query
//! string. Names match case-insensitively and ignoring underscores, so
//! `UniqueName`, `uniqueName` and `unique_name` are the same parameter.
//!
//! Bodies over [`BODY_LIMIT`] are refused with 413 before being read in full;
//! bytes that are not UTF-8 after percent-decoding are refused with 400, not
//! silently replaced; a body of another type (XML, multipart…) is refused
//! with 400 rather than read as no parameters. Endpoints that change things
//! refuse parameter names they do not know ([`Params::only`]), so a typo or
//! a Twilio feature Salon lacks is an error, not a silent default.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use percent_encoding::percent_decode;
use salon_store::{Cursor, PageRequest, Timestamp};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Parameters of one request, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    /// The name as matched: lowercase, without underscores.
    key: String,
    /// The name as sent, for error messages.
    name: String,
    value: String,
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

impl Params {
    /// Parse an `application/x-www-form-urlencoded` string.
    pub fn from_form(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for piece in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &[][..]),
            };
            let name = decode(name)?;
            pairs.push(Param {
                key: normalise(&name),
                value: decode(value)?,
                name,
            });
        }
        Ok(Self { pairs })
    }

    /// Parameters given as (name, value) pairs, in order: those another
    /// node forwarded ([`Params::pairs`]).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self {
            pairs: pairs
                .into_iter()
                .map(|(name, value)| Param {
                    key: normalise(&name),
                    name,
                    value,
                })
                .collect(),
        }
    }

    /// The parameters as (name as sent, value) pairs, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect()
    }

    /// Take the members of a JSON object. Scalars become strings, arrays
    /// repeat the name, `null` is absent; nested objects are refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(20001, format!("Invalid JSON body: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::bad_request(
                20001,
                "Invalid JSON body: expected an object",
            ));
        };
        let mut pairs = Vec::new();
        for (name, value) in map {
            let key = normalise(&name);
            let values = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for value in values {
                let text = match value {
                    Value::Null => continue,
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(ApiError::bad_request(
                            20001,
                            format!(
                                "Invalid JSON body: {name} must be a string, number or boolean"
                            ),
                        ));
                    }
                };
                pairs.push(Param {
                    key: key.clone(),
                    name: name.clone(),
                    value: text,
                });
            }
        }
        Ok(Self { pairs })
    }

    /// The first value of `name`, if given. Empty values count as given.
    pub fn get(&self, name: &str) -> Option<&str> {
        let key = normalise(name);
        self.pairs
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let key = normalise(name);
        self.pairs
            .iter()
            .filter(|p| p.key == key)
            .map(|p| p.value.as_str())
            .collect()
    }

    /// Refuse (400, 20001) any parameter not named in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        let unknown = self
            .pairs
            .iter()
            .find(|p| !known.iter().any(|k| normalise(k) == p.key));
        match unknown {
            None => Ok(()),
            Some(p) => Err(ApiError::bad_request(
                20001,
                format!(
                    "Invalid parameter {}: not a parameter of this resource (it takes {})",
                    excerpt(&p.name),
                    known.join(", ")
                ),
            )),
        }
    }

    /// A non-empty string value.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// An unsigned integer; a malformed one is refused with `code`.
    pub fn number(&self, name: &str, code: u32) -> Result<Option<u64>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(
                    code,
                    format!(
                        "Invalid parameter {name}: '{}' is not a whole number",
                        excerpt(v)
                    ),
                )
            }),
        }
    }

    /// `true` or `false`, in any case.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid_parameter(
                name,
                format!("'{}' is not true or false", excerpt(v)),
            )),
        }
    }

    /// An ISO 8601 date-time (`2024-05-01T12:00:00Z`) or date (`2024-05-01`,
    /// meaning its midnight UTC).
    pub fn datetime(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        let Some(v) = self.text(name) else {
            return Ok(None);
        };
        if let Ok(at) = OffsetDateTime::parse(v, &Rfc3339) {
            return Ok(Some(Timestamp::from_datetime(at)));
        }
        let date_format = time::macros::format_description!("[year]-[month]-[day]");
        match time::Date::parse(v, &date_format) {
            Ok(date) => Ok(Some(Timestamp::from_datetime(date.midnight().assume_utc()))),
            Err(_) => Err(ApiError::invalid_parameter(
                name,
                format!(
                    "'{}' is not an ISO 8601 date such as 2024-05-01T12:00:00Z",
                    excerpt(v)
                ),
            )),
        }
    }

    /// `PageSize` (1–1000, default 50), `Page` and `PageToken`.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let size = match self.number("PageSize", 20001)? {
            None => 50,
            Some(n @ 1..=1000) => n as u32,
            Some(n) => {
                return Err(ApiError::invalid_parameter(
                    "PageSize",
                    format!("{n} is not between 1 and 1000"),
                ));
            }
        };
        let number = match self.number("Page", 20001)? {
            None => 0,
            Some(n) => {
                u32::try_from(n).map_err(|_| ApiError::invalid_parameter("Page", "too large"))?
            }
        };
        let after = match self.text("PageToken") {
            None => None,
            Some(token) => Some(token.parse::<Cursor>().map_err(|_| {
                ApiError::invalid_parameter(
                    "PageToken",
                    "not a token from a previous page's next_page_url",
                )
            })?),
        };
        Ok(PageRequest {
            size,
            number,
            after,
        })
    }
}

fn decode(raw: &[u8]) -> Result<String, ApiError> {
    // '+' is a space in form encoding; percent-decoding happens after.
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request(20001, "Invalid request: parameters must be UTF-8 text"))
}

/// A short rendering of client text for error messages.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(40).flat_map(char::escape_debug).collect();
    if text.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// What a request body holds, by its `Content-Type`.
enum BodyKind {
    /// `application/x-www-form-urlencoded`, or no type (what `curl -d` and
    /// most form clients send is the former; some send none).
    Form,
    Json,
    Other(String),
}

fn body_kind(content_type: Option<&axum::http::HeaderValue>) -> BodyKind {
    let Some(value) = content_type else {
        return BodyKind::Form;
    };
    let essence = value
        .to_str()
        .unwrap_or("?")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/x-www-form-urlencoded" => BodyKind::Form,
        "application/json" => BodyKind::Json,
        _ => BodyKind::Other(essence),
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, ApiError> {
        let query = request
            .uri()
            .query()
            .map(str::as_bytes)
            .map(Params::from_form)
            .transpose()?;
        if request.method() == Method::GET || request.method() == Method::HEAD {
            return Ok(query.unwrap_or_default());
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT) {
            return Err(ApiError::too_large(BODY_LIMIT));
        }
        let kind = body_kind(request.headers().get(header::CONTENT_TYPE));
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::too_large(BODY_LIMIT))?;
        let mut params = if bytes.iter().all(u8::is_ascii_whitespace) {
            Params::default()
        } else {
            match kind {
                BodyKind::Form => Params::from_form(&bytes)?,
                BodyKind::Json => Params::from_json(&bytes)?,
                BodyKind::Other(kind) => {
                    return Err(ApiError::bad_request(
                        20001,
                        format!(
                            "Invalid request: a body of type {} cannot be read; send application/x-www-form-urlencoded (or application/json)",
                            excerpt(&kind)
                        ),
                    ));
                }
            }
        };
        // Query parameters count too, after the body's.
        if let Some(query) = query {
            params.pairs.extend(query.pairs);
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_percent_and_repeated_names() {
        let p = Params::from_form(
            b"UniqueName=Daily+stand%2Dup&VideoCodecs=VP8&VideoCodecs=H264&Empty=",
        )
        .unwrap();
        assert_eq!(p.get("UniqueName"), Some("Daily stand-up"));
        assert_eq!(p.get("unique_name"), Some("Daily stand-up"));
        assert_eq!(p.all("VideoCodecs"), ["VP8", "H264"]);
        assert_eq!(p.get("Empty"), Some(""));
        assert_eq!(p.text("Empty"), None);
    }

    #[test]
    fn only_known_names_pass_and_the_refusal_names_the_parameter_as_sent() {
        let p = Params::from_form(b"unique_name=a&Type=group").unwrap();
        assert!(p.only(&["UniqueName", "Type"]).is_ok());
        let p = Params::from_form(b"UniqueName=a&LargeRooms=true").unwrap();
        let err = p.only(&["UniqueName", "LargeRoom"]).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, 20001));
        assert!(err.message.contains("LargeRooms"), "{}", err.message);
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        let err = Params::from_form(b"UniqueName=%FF%FE").unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, 20001));
    }

    #[test]
    fn json_scalars_and_arrays() {
        let p = Params::from_json(br#"{"uniqueName":"x","MaxParticipants":4,"AudioOnly":true,"VideoCodecs":["VP8"],"Gone":null}"#).unwrap();
        assert_eq!(p.get("UniqueName"), Some("x"));
        assert_eq!(p.number("MaxParticipants", 53107).unwrap(), Some(4));
        assert_eq!(p.boolean("AudioOnly").unwrap(), Some(true));
        assert_eq!(p.all("VideoCodecs"), ["VP8"]);
        assert_eq!(p.get("Gone"), None);
        assert_eq!(Params::from_json(b"[1]").unwrap_err().code, 20001);
        assert_eq!(
            Params::from_json(br#"{"a":{"b":1}}"#).unwrap_err().code,
            20001
        );
        assert_eq!(Params::from_json(b"{").unwrap_err().code, 20001);
    }

    #[test]
    fn typed_values_report_the_code_they_are_given() {
        let p =
            Params::from_form(b"MaxParticipants=lots&AudioOnly=maybe&DateCreatedAfter=yesterday")
                .unwrap();
        assert_eq!(p.number("MaxParticipants", 53107).unwrap_err().code, 53107);
        assert_eq!(p.boolean("AudioOnly").unwrap_err().code, 20001);
        assert_eq!(p.datetime("DateCreatedAfter").unwrap_err().code, 20001);
        let p = Params::from_form(b"A=2024-05-01T12:00:00Z&B=2024-05-01").unwrap();
        assert_eq!(
            p.datetime("A").unwrap().unwrap().to_string(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            p.datetime("B").unwrap().unwrap().to_string(),
            "2024-05-01T00:00:00Z"
        );
    }

    #[test]
    fn paging_parameters_are_bounded() {
        assert_eq!(Params::default().page().unwrap(), PageRequest::default());
        for bad in [
            "PageSize=0",
            "PageSize=1001",
            "PageSize=-1",
            "Page=x",
            "PageToken=nope",
        ] {
            assert_eq!(
                Params::from_form(bad.as_bytes())
                    .unwrap()
                    .page()
                    .unwrap_err()
                    .code,
                20001,
                "{bad}"
            );
        }
    }
}

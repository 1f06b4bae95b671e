//! The JSON bodies of the REST API: Twilio's field names and formats, with
//! absolute URLs built from the configured public base URL.

use salon_store::{
    Cursor, Page, ParticipantRecord, PublishedTrackRecord, RoomRecord, SubscribedTrackRecord,
};
use serde::Serialize;
use serde_json::{Map, Value};

/// Builds absolute resource URLs from the public base URL.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// `base` like `https://video.example.com` (a trailing slash is dropped).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn rooms(&self) -> String {
        format!("{}/v1/Rooms", self.base)
    }

    pub fn room(&self, room: &str) -> String {
        format!("{}/v1/Rooms/{room}", self.base)
    }

    pub fn participants(&self, room: &str) -> String {
        format!("{}/v1/Rooms/{room}/Participants", self.base)
    }

    pub fn participant(&self, room: &str, participant: &str) -> String {
        format!("{}/v1/Rooms/{room}/Participants/{participant}", self.base)
    }
}

/// A room's `links`, as Twilio's.
#[derive(Serialize)]
pub struct RoomLinks {
    pub participants: String,
    pub recordings: String,
    pub recording_rules: String,
}

/// A Room resource.
#[derive(Serialize)]
pub struct RoomJson<'a> {
    pub sid: &'a str,
    pub status: &'static str,
    pub date_created: String,
    pub date_updated: String,
    pub account_sid: &'a str,
    /// Deprecated by Twilio and always true.
    pub enable_turn: bool,
    pub unique_name: &'a str,
    pub status_callback: Option<&'a str>,
    pub status_callback_method: &'a str,
    pub end_time: Option<String>,
    pub duration: Option<u64>,
    #[serde(rename = "type")]
    pub room_type: &'static str,
    pub max_participants: u32,
    pub max_participant_duration: u64,
    pub max_concurrent_published_tracks: Option<u32>,
    pub record_participants_on_connect: bool,
    pub video_codecs: Option<&'a [String]>,
    pub media_region: &'a str,
    pub audio_only: bool,
    pub empty_room_timeout: u32,
    pub unused_room_timeout: u32,
    pub large_room: bool,
    pub url: String,
    pub links: RoomLinks,
}

impl<'a> RoomJson<'a> {
    pub fn new(room: &'a RoomRecord, urls: &Urls) -> Self {
        let sid = room.sid.as_str();
        Self {
            sid,
            status: room.status.as_str(),
            date_created: room.date_created.to_string(),
            date_updated: room.date_updated.to_string(),
            account_sid: room.account_sid.as_str(),
            enable_turn: true,
            unique_name: &room.unique_name,
            status_callback: room.status_callback.as_deref(),
            status_callback_method: &room.status_callback_method,
            end_time: room.end_time.map(|t| t.to_string()),
            duration: room.duration(),
            room_type: room.room_type.as_str(),
            max_participants: room.max_participants,
            max_participant_duration: room.max_participant_duration.as_secs(),
            max_concurrent_published_tracks: None,
            record_participants_on_connect: room.record_participants_on_connect,
            video_codecs: (!room.video_codecs.is_empty()).then_some(room.video_codecs.as_slice()),
            media_region: &room.media_region,
            audio_only: room.audio_only,
            empty_room_timeout: room.empty_room_timeout_minutes,
            unused_room_timeout: room.unused_room_timeout_minutes,
            large_room: false,
            url: urls.room(sid),
            links: RoomLinks {
                participants: urls.participants(sid),
                recordings: format!("{}/Recordings", urls.room(sid)),
                recording_rules: format!("{}/RecordingRules", urls.room(sid)),
            },
        }
    }
}

#[derive(Serialize)]
pub struct ParticipantLinks {
    pub published_tracks: String,
    pub subscribed_tracks: String,
}

/// A Participant resource.
#[derive(Serialize)]
pub struct ParticipantJson<'a> {
    pub sid: &'a str,
    pub room_sid: &'a str,
    pub account_sid: &'a str,
    pub status: &'static str,
    pub identity: &'a str,
    pub date_created: String,
    pub date_updated: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub duration: Option<u64>,
    pub url: String,
    pub links: ParticipantLinks,
}

impl<'a> ParticipantJson<'a> {
    pub fn new(p: &'a ParticipantRecord, urls: &Urls) -> Self {
        let url = urls.participant(p.room_sid.as_str(), p.sid.as_str());
        Self {
            sid: p.sid.as_str(),
            room_sid: p.room_sid.as_str(),
            account_sid: p.account_sid.as_str(),
            status: p.status.as_str(),
            identity: &p.identity,
            date_created: p.date_created.to_string(),
            date_updated: p.date_updated.to_string(),
            start_time: p.start_time.to_string(),
            end_time: p.end_time.map(|t| t.to_string()),
            duration: p.duration(),
            links: ParticipantLinks {
                published_tracks: format!("{url}/PublishedTracks"),
                subscribed_tracks: format!("{url}/SubscribedTracks"),
            },
            url,
        }
    }
}

/// A PublishedTrack resource.
#[derive(Serialize)]
pub struct PublishedTrackJson<'a> {
    pub sid: &'a str,
    pub participant_sid: &'a str,
    pub room_sid: &'a str,
    pub name: &'a str,
    pub date_created: String,
    pub date_updated: String,
    pub enabled: bool,
    pub kind: &'static str,
    pub url: String,
}

impl<'a> PublishedTrackJson<'a> {
    pub fn new(t: &'a PublishedTrackRecord, urls: &Urls) -> Self {
        Self {
            sid: t.sid.as_str(),
            participant_sid: t.participant_sid.as_str(),
            room_sid: t.room_sid.as_str(),
            name: &t.name,
            date_created: t.date_created.to_string(),
            date_updated: t.date_updated.to_string(),
            enabled: t.enabled,
            kind: t.kind.as_str(),
            url: format!(
                "{}/PublishedTracks/{}",
                urls.participant(t.room_sid.as_str(), t.participant_sid.as_str()),
                t.sid
            ),
        }
    }
}

/// A SubscribedTrack resource.
#[derive(Serialize)]
pub struct SubscribedTrackJson<'a> {
    pub sid: &'a str,
    pub participant_sid: &'a str,
    pub publisher_sid: &'a str,
    pub room_sid: &'a str,
    pub name: &'a str,
    pub date_created: String,
    pub date_updated: String,
    pub enabled: bool,
    pub kind: &'static str,
    pub url: String,
}

impl<'a> SubscribedTrackJson<'a> {
    pub fn new(t: &'a SubscribedTrackRecord, urls: &Urls) -> Self {
        Self {
            sid: t.sid.as_str(),
            participant_sid: t.participant_sid.as_str(),
            publisher_sid: t.publisher_sid.as_str(),
            room_sid: t.room_sid.as_str(),
            name: &t.name,
            date_created: t.date_created.to_string(),
            date_updated: t.date_updated.to_string(),
            enabled: t.enabled,
            kind: t.kind.as_str(),
            url: format!(
                "{}/SubscribedTracks/{}",
                urls.participant(t.room_sid.as_str(), t.participant_sid.as_str()),
                t.sid
            ),
        }
    }
}

/// A list response: `{"<key>": [...], "meta": {...}}`, with page URLs that
/// repeat the filters the client gave, so following `next_page_url` (as the
/// helper libraries do) continues the same query.
pub struct Listing<'a> {
    /// Absolute URL of the collection, e.g. `https://…/v1/Rooms`.
    pub collection: String,
    /// The list's name in the body: `rooms`, `participants`, …
    pub key: &'static str,
    /// Filter parameters in canonical order, as they appear in page URLs.
    pub filters: Vec<(&'static str, String)>,
    pub page_size: u32,
    pub page_number: u32,
    pub page_token: Option<&'a Cursor>,
}

impl Listing<'_> {
    fn url(&self, page: u32, token: Option<&Cursor>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.filters {
            query.append_pair(name, value);
        }
        query.append_pair("PageSize", &self.page_size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", &token.to_string());
        }
        format!("{}?{}", self.collection, query.finish())
    }

    /// The response body for `page`, each item rendered by `render`.
    pub fn body<T>(&self, page: &Page<T>, render: impl Fn(&T) -> Value) -> Value {
        let items: Vec<Value> = page.items.iter().map(render).collect();
        let meta = serde_json::json!({
            "page": self.page_number,
            "page_size": self.page_size,
            "first_page_url": self.url(0, None),
            // Keyset paging runs forwards only; clients follow next_page_url.
            "previous_page_url": Value::Null,
            "url": self.url(self.page_number, self.page_token),
            "next_page_url": page.next.as_ref().map(|next| self.url(self.page_number + 1, Some(next))),
            "key": self.key,
        });
        let mut body = Map::new();
        body.insert(self.key.to_owned(), Value::Array(items));
        body.insert("meta".to_owned(), meta);
        Value::Object(body)
    }
}

/// A resource as a JSON value (serialising these structs cannot fail).
pub fn to_json(resource: impl Serialize) -> Value {
    serde_json::to_value(resource).unwrap_or(Value::Null)
}

/// Convert snake_case keys to camelCase, recursively: the shape twilio-node
/// gives its resources when an app serialises them (`uniqueName`,
/// `dateCreated`…), which the tutorial routes return.
pub fn camel_case(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let mut out = String::with_capacity(key.len());
                    let mut upper = false;
                    for c in key.chars() {
                        if c == '_' {
                            upper = true;
                        } else if upper {
                            out.extend(c.to_uppercase());
                            upper = false;
                        } else {
                            out.push(c);
                        }
                    }
                    (out, camel_case(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_converts_nested_keys_only() {
        let v = serde_json::json!({"unique_name": "a_b", "links": {"published_tracks": 1}, "list": [{"end_time": null}]});
        assert_eq!(
            camel_case(v),
            serde_json::json!({"uniqueName": "a_b", "links": {"publishedTracks": 1}, "list": [{"endTime": null}]})
        );
    }

    #[test]
    fn listing_urls_repeat_filters_and_carry_the_token() {
        let cursor: Cursor = "PT1700000000000_RM00000000000000000000000000000001"
            .parse()
            .unwrap();
        let listing = Listing {
            collection: "http://localhost:3000/v1/Rooms".into(),
            key: "rooms",
            filters: vec![
                ("Status", "in-progress".into()),
                ("UniqueName", "a b&c".into()),
            ],
            page_size: 2,
            page_number: 0,
            page_token: None,
        };
        let page = Page::<u8> {
            items: vec![1, 2],
            next: Some(cursor),
        };
        let body = listing.body(&page, |n| Value::from(*n));
        assert_eq!(body["rooms"], serde_json::json!([1, 2]));
        let meta = &body["meta"];
        assert_eq!(
            meta["first_page_url"],
            "http://localhost:3000/v1/Rooms?Status=in-progress&UniqueName=a+b%26c&PageSize=2&Page=0"
        );
        assert_eq!(
            meta["next_page_url"],
            "http://localhost:3000/v1/Rooms?Status=in-progress&UniqueName=a+b%26c&PageSize=2&Page=1&PageToken=PT1700000000000_RM00000000000000000000000000000001"
        );
        assert_eq!(meta["key"], "rooms");
        assert_eq!(meta["previous_page_url"], Value::Null);
    }
}

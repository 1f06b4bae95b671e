//! The Janus API over its WebSocket transport: one connection per
//! participant, requests with transactions, and the messages of the core and
//! of the VideoRoom plugin this tool reads.
//!
//! Janus answers a core request (`create`, `attach`, `destroy`) with
//! `success` or `error` under the request's transaction. A plugin request
//! (`message`) is first acknowledged (`ack`); the plugin's reply follows as
//! an `event` under the same transaction (asynchronous requests: `join`,
//! `publish`, `start`, `subscribe`) or at once as `success` (synchronous
//! ones: `create` a room). Everything else — other publishers joining,
//! renegotiation offers, `webrtcup`, `hangup` — arrives as events with the
//! handle they concern in `sender`, and no transaction of ours.
//!
//! [`Connection::call`] sends a request and waits for its reply, keeping
//! whatever else arrives meanwhile for [`Connection::next`], so nothing is
//! lost while a participant sets up. Nothing here trusts the server: an
//! unreadable message is skipped, a missing field is `None`.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::target::TargetError;

/// The WebSocket subprotocol of the Janus API.
pub const SUBPROTOCOL: &str = "janus-protocol";
/// The plugin every handle attaches to.
pub const VIDEOROOM: &str = "janus.plugin.videoroom";
/// VideoRoom error: a room with this id exists already.
pub const ROOM_EXISTS: u32 = 427;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One message from Janus, as far as this tool reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Message {
    /// `success`, `error`, `ack`, `event`, `webrtcup`, `media`, `hangup`,
    /// `slowlink`, `detached`, `timeout`, `server_info`…
    pub janus: String,
    pub transaction: Option<String>,
    /// The handle an event concerns.
    pub sender: Option<u64>,
    /// `success` of `create` and `attach`: the new session or handle.
    pub data: Option<Created>,
    pub error: Option<ApiError>,
    pub plugindata: Option<PluginData>,
    pub jsep: Option<Jsep>,
    /// `hangup`: why.
    pub reason: Option<String>,
    /// `server_info`: the plugins loaded, by package name.
    pub plugins: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Created {
    pub id: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiError {
    pub code: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PluginData {
    pub plugin: String,
    pub data: VideoRoom,
}

/// An SDP offer or answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Jsep {
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// What the VideoRoom plugin says: a reply or an event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VideoRoom {
    /// `created`, `joined`, `event`, `attached`, `updated`, `updating`…
    pub videoroom: String,
    /// `joined`: this participant's id in the room (its feed, once it
    /// publishes).
    pub id: Option<u64>,
    /// Active publishers: all of them in `joined`, the new one in an `event`.
    pub publishers: Vec<Feed>,
    /// A subscription's m-lines (`attached`, `updated`).
    pub streams: Vec<SubscriberStream>,
    /// A publisher that stopped publishing (`unpublished`) or left
    /// (`leaving`); both are `"ok"` in replies to our own requests.
    pub unpublished: Option<Value>,
    pub leaving: Option<Value>,
    pub error_code: Option<u32>,
    pub error: Option<String>,
}

impl VideoRoom {
    /// The feed an `unpublished` or `leaving` event names.
    pub fn gone(&self) -> Option<u64> {
        self.unpublished
            .as_ref()
            .and_then(Value::as_u64)
            .or_else(|| self.leaving.as_ref().and_then(Value::as_u64))
    }
}

/// An active publisher.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Feed {
    pub id: u64,
    pub display: Option<String>,
    pub streams: Vec<FeedStream>,
}

/// One stream a publisher sends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FeedStream {
    /// `audio`, `video` or `data`.
    #[serde(rename = "type")]
    pub kind: String,
    pub mid: String,
    pub disabled: bool,
}

/// One m-line of a subscription.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubscriberStream {
    /// The m-line's mid in Janus's offer.
    pub mid: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// False once its publisher is gone.
    pub active: bool,
    pub feed_id: Option<u64>,
    /// The publisher's mid of the stream this m-line carries.
    pub feed_mid: Option<String>,
}

impl Message {
    /// The VideoRoom part of a plugin reply or event.
    pub fn videoroom(&self) -> Option<&VideoRoom> {
        self.plugindata.as_ref().map(|p| &p.data)
    }

    /// An error in this reply, from the core or from the plugin.
    pub fn failure(&self) -> Option<TargetError> {
        if let Some(e) = &self.error {
            return Some(TargetError {
                code: Some(e.code),
                message: format!("Janus: {}", e.reason),
            });
        }
        let room = self.videoroom()?;
        room.error_code.map(|code| TargetError {
            code: Some(code),
            message: format!(
                "Janus VideoRoom: {}",
                room.error.as_deref().unwrap_or("error")
            ),
        })
    }
}

/// A WebSocket connection to Janus's API.
pub struct Connection {
    socket: Socket,
    next_transaction: u64,
    /// Messages that arrived while [`Connection::call`] waited for a reply.
    backlog: VecDeque<Message>,
    session: Option<u64>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

/// A request that failed on the way: the socket, or a timeout.
fn transport(message: impl Into<String>) -> TargetError {
    TargetError {
        code: None,
        message: message.into(),
    }
}

impl Connection {
    /// Open the WebSocket (subprotocol `janus-protocol`).
    pub async fn open(url: &str) -> Result<Self, TargetError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| transport(format!("bad Janus URL {url:?}: {e}")))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| transport(format!("cannot reach Janus at {url}: {e}")))?;
        Ok(Self {
            socket,
            next_transaction: 0,
            backlog: VecDeque::new(),
            session: None,
        })
    }

    /// The Janus session, once created.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    /// Send `request` with a new transaction and the session (when there is
    /// one); returns the transaction.
    pub async fn send(&mut self, mut request: Value) -> Result<String, TargetError> {
        self.next_transaction += 1;
        let transaction = format!("t{}", self.next_transaction);
        if let Some(object) = request.as_object_mut() {
            object.insert("transaction".into(), json!(transaction));
            if let Some(session) = self.session {
                object.insert("session_id".into(), json!(session));
            }
        }
        self.socket
            .send(Frame::text(request.to_string()))
            .await
            .map_err(|e| transport(format!("Janus connection lost: {e}")))?;
        Ok(transaction)
    }

    /// Send a plugin request on `handle`, with an SDP when there is one.
    pub async fn message(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<(&str, &str)>,
    ) -> Result<String, TargetError> {
        let mut request = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some((kind, sdp)) = jsep {
            // `trickle: false`: our candidates are in the SDP, none follow.
            request["jsep"] = json!({"type": kind, "sdp": sdp, "trickle": false});
        }
        self.send(request).await
    }

    /// Send `request` and wait up to `timeout` for its reply (not the
    /// `ack`). A reply that says the request failed is an error.
    pub async fn call(
        &mut self,
        request: Value,
        timeout: Duration,
    ) -> Result<Message, TargetError> {
        let transaction = self.send(request).await?;
        self.reply(&transaction, timeout).await
    }

    /// Wait up to `timeout` for the reply to `transaction`.
    pub async fn reply(
        &mut self,
        transaction: &str,
        timeout: Duration,
    ) -> Result<Message, TargetError> {
        let wait = async {
            loop {
                let message = self.receive().await?;
                if message.transaction.as_deref() == Some(transaction) && message.janus != "ack" {
                    return match message.failure() {
                        Some(e) => Err(e),
                        None => Ok(message),
                    };
                }
                self.backlog.push_back(message);
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| transport(format!("Janus did not answer within {timeout:?}")))?
    }

    /// Create the session every later request runs in.
    pub async fn create_session(&mut self, timeout: Duration) -> Result<u64, TargetError> {
        let reply = self.call(json!({"janus": "create"}), timeout).await?;
        let id = reply
            .data
            .map(|d| d.id)
            .filter(|&id| id != 0)
            .ok_or_else(|| transport("Janus created a session without an id"))?;
        self.session = Some(id);
        Ok(id)
    }

    /// Attach a new handle to the VideoRoom plugin.
    pub async fn attach(&mut self, timeout: Duration) -> Result<u64, TargetError> {
        let reply = self
            .call(json!({"janus": "attach", "plugin": VIDEOROOM}), timeout)
            .await?;
        reply
            .data
            .map(|d| d.id)
            .filter(|&id| id != 0)
            .ok_or_else(|| transport("Janus attached a handle without an id"))
    }

    /// The next message: first those kept while waiting for replies, then
    /// the socket's. `None` once the connection is closed. Cancel-safe.
    pub async fn next(&mut self) -> Option<Message> {
        if let Some(message) = self.backlog.pop_front() {
            return Some(message);
        }
        self.receive().await.ok()
    }

    /// Close the WebSocket.
    pub async fn close(&mut self) {
        let _ = self.socket.close(None).await;
    }

    /// The next readable message from the socket.
    async fn receive(&mut self) -> Result<Message, TargetError> {
        loop {
            let frame = match self.socket.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Err(transport(format!("Janus connection lost: {e}"))),
                None => return Err(transport("Janus closed the connection")),
            };
            let text = match &frame {
                Frame::Text(text) => text.as_str(),
                Frame::Close(_) => return Err(transport("Janus closed the connection")),
                _ => continue,
            };
            match serde_json::from_str(text) {
                Ok(message) => return Ok(message),
                Err(e) => tracing::debug!("unreadable message from Janus ({e}): {text:.200}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_event_names_the_participant_and_the_publishers() {
        // The shape VideoRoom's documentation gives for `joined`.
        let text = r#"{"janus":"event","session_id":1,"transaction":"t3","sender":7,
            "plugindata":{"plugin":"janus.plugin.videoroom","data":{
              "videoroom":"joined","room":1234,"description":"lt-0","id":55,"private_id":99,
              "publishers":[{"id":56,"display":"lt-0-p1","streams":[
                {"type":"audio","mindex":0,"mid":"a1b","codec":"opus"},
                {"type":"video","mindex":1,"mid":"c2d","codec":"vp8"},
                {"type":"video","mindex":2,"mid":"e3f","disabled":true}]}]}}}"#;
        let m: Message = serde_json::from_str(text).unwrap();
        assert_eq!((m.janus.as_str(), m.sender), ("event", Some(7)));
        assert!(m.failure().is_none());
        let room = m.videoroom().unwrap();
        assert_eq!((room.videoroom.as_str(), room.id), ("joined", Some(55)));
        let feed = &room.publishers[0];
        assert_eq!(feed.id, 56);
        let kinds: Vec<_> = feed
            .streams
            .iter()
            .map(|s| (s.kind.as_str(), s.mid.as_str(), s.disabled))
            .collect();
        assert_eq!(
            kinds,
            [
                ("audio", "a1b", false),
                ("video", "c2d", false),
                ("video", "e3f", true)
            ]
        );
    }

    #[test]
    fn a_subscription_offer_maps_m_lines_to_feeds() {
        let text = r#"{"janus":"event","sender":8,"transaction":"t9",
            "plugindata":{"plugin":"janus.plugin.videoroom","data":{
              "videoroom":"updated","room":1234,"streams":[
                {"type":"audio","active":true,"mindex":0,"mid":"0","ready":false,"send":true,
                 "feed_id":56,"feed_display":"lt-0-p1","feed_mid":"a1b","codec":"opus"},
                {"type":"video","active":false,"mindex":1,"mid":"1","ready":false,"send":true}]}},
            "jsep":{"type":"offer","sdp":"v=0\r\n"}}"#;
        let m: Message = serde_json::from_str(text).unwrap();
        let room = m.videoroom().unwrap();
        assert_eq!(room.streams.len(), 2);
        let s = &room.streams[0];
        assert!(s.active);
        assert_eq!(
            (s.mid.as_str(), s.feed_id, s.feed_mid.as_deref()),
            ("0", Some(56), Some("a1b"))
        );
        assert!(!room.streams[1].active);
        assert_eq!(room.streams[1].feed_id, None);
        let jsep = m.jsep.unwrap();
        assert_eq!(jsep.kind, "offer");
    }

    #[test]
    fn errors_come_from_the_core_or_the_plugin() {
        let core: Message = serde_json::from_str(
            r#"{"janus":"error","transaction":"t1","error":{"code":458,"reason":"No such session 5"}}"#,
        )
        .unwrap();
        let e = core.failure().unwrap();
        assert_eq!(e.code, Some(458));
        assert!(e.message.contains("No such session"), "{e}");

        let plugin: Message = serde_json::from_str(
            r#"{"janus":"success","transaction":"t2","plugindata":{"plugin":"janus.plugin.videoroom",
                "data":{"videoroom":"event","error_code":427,"error":"Room 1234 already exists"}}}"#,
        )
        .unwrap();
        assert_eq!(plugin.failure().unwrap().code, Some(ROOM_EXISTS));
    }

    #[test]
    fn departures_name_the_feed_and_replies_say_ok() {
        let gone = |data: &str| {
            let text = format!(
                r#"{{"janus":"event","plugindata":{{"plugin":"janus.plugin.videoroom","data":{data}}}}}"#
            );
            serde_json::from_str::<Message>(&text)
                .unwrap()
                .videoroom()
                .unwrap()
                .gone()
        };
        assert_eq!(gone(r#"{"videoroom":"event","unpublished":56}"#), Some(56));
        assert_eq!(gone(r#"{"videoroom":"event","leaving":57}"#), Some(57));
        assert_eq!(gone(r#"{"videoroom":"event","leaving":"ok"}"#), None);
    }

    #[test]
    fn strange_messages_still_parse() {
        // Unknown fields, missing fields, wrong types where we read nothing.
        let m: Message =
            serde_json::from_str(r#"{"janus":"webrtcup","sender":9,"whatever":[1,2]}"#).unwrap();
        assert_eq!((m.janus.as_str(), m.sender), ("webrtcup", Some(9)));
        assert!(serde_json::from_str::<Message>(r#"{"janus":"event","sender":"x"}"#).is_err());
    }
}

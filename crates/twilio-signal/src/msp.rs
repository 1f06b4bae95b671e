//! MSP, the Media Signaling Protocol: JSON messages on data channels the
//! server creates and announces in `media_signaling` (see
//! [`crate::rsp::Channel`]).
//!
//! When a channel opens the client sends `{"type": "ready"}`; the server then
//! sends the channel's current state (a change sent before the channel was
//! open is lost). Each channel carries its own message type:
//!
//! | channel | server → client | client → server |
//! |---|---|---|
//! | `active_speaker` | [`ServerMessage::ActiveSpeaker`] | `ready` |
//! | `network_quality` | [`ServerMessage::NetworkQuality`] (a reply to each input) | [`ClientMessage::NetworkQuality`] about every second |
//! | `track_priority` | — | [`ClientMessage::TrackPriority`] |
//! | `track_switch_off` | [`ServerMessage::TrackSwitchOff`] | `ready` |
//! | `render_hints` | [`ServerMessage::RenderHints`] (an ack) | [`ClientMessage::RenderHints`] |
//! | `publisher_hints` | [`ServerMessage::PublisherHints`] | [`ClientMessage::PublisherHints`] (results), [`ClientMessage::ClientReset`] |

use salon_sid::{ParticipantSid, TrackSid};
use serde::{Deserialize, Serialize};

use crate::rsp::{Dimensions, Priority};
use crate::{MAX_HINTS, ProtocolError, check_len};

/// What a client sends on an MSP channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The channel is open: send the current state.
    Ready,
    /// The client's view of its connection, for its network quality level.
    NetworkQuality(Box<NetworkQualityInputs>),
    /// The subscriber's priority for a track (`null`: back to the publisher's).
    TrackPriority {
        track: TrackSid,
        #[serde(default)]
        subscribe: Option<Priority>,
    },
    /// What the subscriber renders: enable/disable and render dimensions.
    RenderHints { subscriber: RenderHintsRequest },
    /// Results of applying publisher hints.
    PublisherHints {
        id: u64,
        #[serde(default)]
        hints: Vec<HintResult>,
    },
    /// The client replaced a track's source: hints for it start over.
    ClientReset { track: TrackSid, id: u64 },
}

/// Network quality inputs: the client's summary of its peer connection
/// statistics (`PeerConnectionReport.summarize()` in the SDK). Every number
/// may be missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkQualityInputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice: Option<IceReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<RecvReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaReports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaReports>,
    /// Verbosity wanted for the local level (0-3).
    #[serde(
        rename = "reportLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub report_level: Option<u8>,
    /// Verbosity wanted for remote levels (0 means no `remotes`).
    #[serde(
        rename = "remoteReportLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_report_level: Option<u8>,
}

/// The selected ICE candidate pair: bits per second both ways, the
/// available outgoing bitrate, and the round-trip time in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IceReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<f64>,
    #[serde(
        rename = "availableSend",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_send: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
}

/// What the client sends: bits per second and round-trip time (seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
}

/// What the client receives: bits per second, the fraction of packets lost
/// (0-1) and jitter (seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecvReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<f64>,
    #[serde(
        rename = "fractionLost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fraction_lost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
}

/// Per-kind send and receive summaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaReports {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<RecvReport>,
}

/// A batch of render hints, acknowledged by its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderHintsRequest {
    pub id: u64,
    #[serde(default)]
    pub hints: Vec<RenderHint>,
}

/// What the subscriber does with one track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderHint {
    pub track: TrackSid,
    /// False: the track is not rendered (switch it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_dimensions: Option<Dimensions>,
}

/// The result of one hint: `"OK"`, or a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HintResult {
    pub track: TrackSid,
    pub result: String,
}

/// What the server sends on an MSP channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The dominant speaker (null or an unknown sid: none).
    ActiveSpeaker { participant: Option<ParticipantSid> },
    /// The local level, and remote participants' levels if asked for.
    NetworkQuality {
        local: LocalLevel,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remotes: Vec<RemoteLevel>,
    },
    /// Tracks the server stopped (`off`) or resumed (`on`) sending.
    TrackSwitchOff {
        #[serde(default)]
        off: Vec<TrackSid>,
        #[serde(default)]
        on: Vec<TrackSid>,
    },
    /// The acknowledgement of a render-hints batch.
    RenderHints { subscriber: RenderHintsResults },
    /// Which simulcast encodings a publisher should send.
    PublisherHints { publisher: PublisherHintsRequest },
}

/// A network quality level alone, or with its parts (verbosity 2 and 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LocalLevel {
    Level(u8),
    Detailed(Box<Levels>),
}

/// A level with its audio and video parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    pub level: u8,
    pub audio: MediaLevels,
    pub video: MediaLevels,
}

/// Send and receive levels of one kind, with their statistics at
/// verbosity 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaLevels {
    pub send: u8,
    pub recv: u8,
    #[serde(rename = "sendStats", default, skip_serializing_if = "Option::is_none")]
    pub send_stats: Option<DirectionStats>,
    #[serde(rename = "recvStats", default, skip_serializing_if = "Option::is_none")]
    pub recv_stats: Option<DirectionStats>,
}

/// twilio-video's `NetworkQualitySendOrRecvStats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectionStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthStats>,
    #[serde(
        rename = "fractionLost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fraction_lost: Option<FractionLostStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BandwidthStats {
    pub actual: Option<f64>,
    pub available: Option<f64>,
    pub level: Option<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FractionLostStats {
    #[serde(rename = "fractionLost")]
    pub fraction_lost: Option<f64>,
    pub level: Option<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub jitter: Option<f64>,
    pub rtt: Option<f64>,
    pub level: Option<u8>,
}

/// A remote participant's level (applied by the client only when it
/// changes, and only for participants it already knows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteLevel {
    pub sid: ParticipantSid,
    pub level: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaLevels>,
}

/// Results of a render-hints batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderHintsResults {
    pub id: u64,
    pub hints: Vec<HintResult>,
}

/// Encodings a publisher should enable or disable, per track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherHintsRequest {
    pub id: u64,
    pub hints: Vec<PublisherHint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherHint {
    pub track: TrackSid,
    pub encodings: Vec<EncodingHint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodingHint {
    pub enabled: bool,
    pub layer_index: u8,
}

impl ClientMessage {
    /// Read one message from a channel, enforcing the size limit and the
    /// number of hints.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let message: ClientMessage = crate::parse_json(
            text,
            &[
                "ready",
                "network_quality",
                "track_priority",
                "render_hints",
                "publisher_hints",
                "client_reset",
            ],
        )?;
        match &message {
            ClientMessage::RenderHints { subscriber } => {
                check_len("render hints", subscriber.hints.len(), MAX_HINTS)?
            }
            ClientMessage::PublisherHints { hints, .. } => {
                check_len("publisher hint results", hints.len(), MAX_HINTS)?
            }
            _ => {}
        }
        Ok(message)
    }

    /// The message as JSON text (for clients and tests).
    pub fn to_json(&self) -> String {
        crate::to_json(self)
    }
}

impl ServerMessage {
    /// Read one server message (for clients and tests).
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        crate::parse_json(
            text,
            &[
                "active_speaker",
                "network_quality",
                "track_switch_off",
                "render_hints",
                "publisher_hints",
            ],
        )
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        crate::to_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(byte: u8) -> TrackSid {
        TrackSid::from_bytes([byte; 16])
    }

    #[test]
    fn network_quality_inputs_read_with_missing_numbers() {
        let text = r#"{"type":"network_quality","ice":{"send":100000,"recv":50000,"rtt":0.02},
            "send":{"bitrate":90000,"rtt":0.02},"recv":{"bitrate":48000,"fractionLost":0.1,"jitter":0.004},
            "audio":{"send":{"bitrate":40000},"recv":{}},"video":{"send":{},"recv":{}},
            "reportLevel":1,"remoteReportLevel":0}"#;
        let ClientMessage::NetworkQuality(inputs) = ClientMessage::parse(text).unwrap() else {
            panic!("not network quality");
        };
        assert_eq!(inputs.recv.unwrap().fraction_lost, Some(0.1));
        assert_eq!(inputs.audio.unwrap().recv.unwrap().bitrate, None);
        assert_eq!(inputs.remote_report_level, Some(0));
    }

    #[test]
    fn publisher_hints_have_the_sdks_shape_and_its_replies_read() {
        // What twilio-video's publisherhintsignaling.js reads:
        // message.publisher.{id, hints[{track, encodings[{enabled, layer_index}]}]}.
        let hint = ServerMessage::PublisherHints {
            publisher: PublisherHintsRequest {
                id: 3,
                hints: vec![PublisherHint {
                    track: sid(1),
                    encodings: vec![
                        EncodingHint {
                            enabled: true,
                            layer_index: 0,
                        },
                        EncodingHint {
                            enabled: false,
                            layer_index: 1,
                        },
                    ],
                }],
            },
        };
        let json: serde_json::Value = serde_json::from_str(&hint.to_json()).unwrap();
        assert_eq!(json["type"], "publisher_hints");
        assert_eq!(json["publisher"]["id"], 3);
        assert_eq!(json["publisher"]["hints"][0]["track"], sid(1).to_string());
        assert_eq!(
            json["publisher"]["hints"][0]["encodings"][1],
            serde_json::json!({"enabled": false, "layer_index": 1})
        );
        // What it sends back: results, and client_reset after replaceTrack.
        let reply = format!(
            r#"{{"type":"publisher_hints","id":3,"hints":[{{"track":"{}","result":"OK"}}]}}"#,
            sid(1)
        );
        let ClientMessage::PublisherHints { id, hints } = ClientMessage::parse(&reply).unwrap()
        else {
            panic!("not publisher hint results");
        };
        assert_eq!((id, hints[0].result.as_str()), (3, "OK"));
        let reset = format!(r#"{{"type":"client_reset","track":"{}","id":9}}"#, sid(1));
        assert_eq!(
            ClientMessage::parse(&reset).unwrap(),
            ClientMessage::ClientReset {
                track: sid(1),
                id: 9
            }
        );
    }

    #[test]
    fn render_hints_and_priorities_read() {
        let text = format!(
            r#"{{"type":"render_hints","subscriber":{{"id":7,"hints":[
                {{"track":"{}","enabled":false}},
                {{"track":"{}","render_dimensions":{{"width":160,"height":90}}}}]}}}}"#,
            sid(1),
            sid(2)
        );
        let ClientMessage::RenderHints { subscriber } = ClientMessage::parse(&text).unwrap() else {
            panic!("not render hints");
        };
        assert_eq!(subscriber.id, 7);
        assert_eq!(subscriber.hints[0].enabled, Some(false));
        assert_eq!(
            subscriber.hints[1].render_dimensions,
            Some(Dimensions {
                width: 160,
                height: 90
            })
        );
        let text = format!(
            r#"{{"type":"track_priority","track":"{}","subscribe":null}}"#,
            sid(3)
        );
        assert_eq!(
            ClientMessage::parse(&text).unwrap(),
            ClientMessage::TrackPriority {
                track: sid(3),
                subscribe: None
            }
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        for text in [
            r#"{"type":"track_priority","track":"nope"}"#,
            r#"{"type":"render_hints","subscriber":{"id":-1,"hints":[]}}"#,
            r#"{"type":"network_quality","recv":{"fractionLost":"lots"}}"#,
            "{}",
        ] {
            assert!(ClientMessage::parse(text).is_err(), "{text}");
        }
        assert_eq!(
            ClientMessage::parse(r#"{"type":"extension_transcriptions"}"#),
            Err(ProtocolError::UnknownType(
                "extension_transcriptions".into()
            ))
        );
    }

    #[test]
    fn server_messages_print_as_the_sdk_reads_them() {
        let speaker = ServerMessage::ActiveSpeaker {
            participant: Some(ParticipantSid::from_bytes([9; 16])),
        };
        assert!(
            speaker
                .to_json()
                .starts_with(r#"{"type":"active_speaker","participant":"PA"#)
        );
        let nobody = ServerMessage::ActiveSpeaker { participant: None };
        assert_eq!(
            nobody.to_json(),
            r#"{"type":"active_speaker","participant":null}"#
        );
        let level = ServerMessage::NetworkQuality {
            local: LocalLevel::Level(4),
            remotes: Vec::new(),
        };
        assert_eq!(level.to_json(), r#"{"type":"network_quality","local":4}"#);
        let off = ServerMessage::TrackSwitchOff {
            off: vec![sid(1)],
            on: Vec::new(),
        };
        let json: serde_json::Value = serde_json::from_str(&off.to_json()).unwrap();
        assert_eq!(json["on"], serde_json::json!([]));
        assert_eq!(ServerMessage::parse(&off.to_json()).unwrap(), off);
    }
}

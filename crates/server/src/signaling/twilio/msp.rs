//! MSP, Twilio's media signaling, on the data channels the server opens to
//! the client (`salon_twilio_signal::msp`; twilio-signaling.md §7).
//!
//! At `connected` the session announces, among the channels the client
//! asked for in `connect.media_signaling`, the ones Salon serves, each
//! labelled with the channel's own name (labels share the client's
//! namespace with subscription ids, which are MT sids, so they cannot
//! collide). Once the media session exists, the media server opens them
//! ([`salon_media::Media::open_signaling`]) and passes on what the client
//! sends on them, and only on them: a channel the client opens itself, with
//! any label, never reaches this module.
//!
//! | channel | the server sends | the client sends | wired to |
//! |---|---|---|---|
//! | `active_speaker` | the room's dominant speaker, on every change and on `ready` | `ready` | [`Change::DominantSpeaker`] (the media server's [`salon_media::speaker`]) |
//! | `network_quality` | a reply to each input: the local level, and the known remotes' levels when asked | inputs about every second | [`Change::NetworkQuality`] (the media server's [`salon_media::quality`]) |
//! | `track_priority` | — | a subscriber's priority for a track | the allocator ([`Member::set_subscribe_priority`]) |
//! | `track_switch_off` | tracks switched off and on, on every change and on `ready` | `ready` | [`Change::Switched`] (the allocator's decisions) |
//! | `render_hints` | an acknowledgement of each batch | `enabled` and render dimensions per track | `enabled` switches the track ([`Member::switch`]); render dimensions go to the allocator, which picks the simulcast layer by them ([`Member::set_render_dimensions`]) |
//! | `publisher_hints` | every encoding of a published simulcast track, `enabled` or not, on every change, on `ready` and after `client_reset` | results per track; `client_reset` after `replaceTrack` | [`Change::Layers`] (the media server's [`salon_media::pausing`]) |
//!
//! Announcing `publisher_hints` keeps the SDK's adaptive simulcast
//! (`preferredVideoCodecs: 'auto'`) on: in Chromium it publishes VP8 in an
//! `a=ssrc-group:SIM` of three SSRCs scaled ¼, ½ and full (only the lower
//! one or two active below 960×540 and 480×270), and sets
//! `RTCRtpEncodingParameters.active` of encoding `layer_index` (the
//! group's order, lowest first) as the hints say — though never past its
//! own default for the camera's size. A result other than `OK` is logged;
//! `COULD_NOT_APPLY_HINT` for a track's latest hint has it sent once more
//! (`REQUEST_SKIPPED` means a newer hint replaced it). `client_reset`
//! means the SDK put the track's encodings back to its defaults after
//! `replaceTrack`: the track's current hint is sent again.
//! `extension_transcriptions` is not served.
//!
//! A message that does not parse, or names a track the client does not
//! receive, changes nothing: MSP has no error reply, and an RSP `error`
//! would end the whole session for what the SDK treats as advisory.
//! A client that floods its channels has its messages dropped: the media
//! server keeps at most [`INBOX`] for the session, which handles at most
//! [`PER_SECOND`] a second (in bursts of [`BURST`]).
//!
//! Network quality levels come from what the server measures of the
//! client's media (not from the client's own inputs, which are read for
//! their verbosity only): the level at verbosity 1, the audio and video
//! send and receive levels at 2 (`moderate`), and the measurements behind
//! them at 3 (`detailed`). A kind not measured yet (nothing sent or
//! received) has the participant's level in both directions.

use std::collections::BTreeMap;
use std::time::Instant;

use salon_media::SignalingMessage;
use salon_media::allocation::Priority as MediaPriority;
use salon_room::{MediaQuality, NetworkQualityDetail, PathQuality};
use salon_sid::{ParticipantSid, TrackSid};
use salon_twilio_signal::msp::{
    BandwidthStats, ClientMessage, DirectionStats, EncodingHint, FractionLostStats, HintResult,
    LatencyStats, Levels, LocalLevel, MediaLevels, PublisherHint as WireHint,
    PublisherHintsRequest, RemoteLevel, RenderHintsResults, ServerMessage,
};
use salon_twilio_signal::rsp::{Announcement, Channel, MediaSignalingRequest, Priority};
use salon_twilio_signal::rsp::{ServerBody, ServerUpdate};
use salon_twilio_signal::{ProtocolError, rsp};

use super::Session;
use crate::session::adaptive::check_render_dimensions;

/// Messages from the client's MSP channels kept for the session; more are
/// dropped by the media server (the client repeats what matters).
pub(super) const INBOX: usize = 64;
/// MSP messages handled per second, in bursts of up to [`BURST`]; more are
/// dropped. The SDK sends about one a second per channel (network quality
/// inputs, render hints in batches), a few more when tracks come and go.
const PER_SECOND: f64 = 20.0;
const BURST: f64 = 60.0;

/// The channels Salon serves, in the order they are announced.
const SERVED: [Channel; 6] = [
    Channel::ActiveSpeaker,
    Channel::NetworkQuality,
    Channel::TrackPriority,
    Channel::TrackSwitchOff,
    Channel::RenderHints,
    Channel::PublisherHints,
];

/// The hint last sent for one of the client's published tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PublisherHint {
    /// Each encoding's `enabled`, by `layer_index`.
    pub layers: Vec<bool>,
    /// The message that carried it.
    pub id: u64,
    /// Sent once more after `COULD_NOT_APPLY_HINT`.
    pub retried: bool,
}

/// What the session keeps for MSP.
pub(super) struct Msp {
    /// The channels announced to the client.
    pub announced: Vec<Channel>,
    /// Whether the media server was asked to open them.
    pub opened: bool,
    /// Announce them again once they are opened: an adopted session's
    /// client set its MSP up on the lost node's peer connection, tears it
    /// down when that connection closes (after `synced`, whose
    /// announcements it skipped while still set up), and sets it up again
    /// only from a later announcement.
    pub announce_again: bool,
    pub inbox: tokio::sync::mpsc::Receiver<SignalingMessage>,
    outbox: tokio::sync::mpsc::Sender<SignalingMessage>,
    /// The room's dominant speaker as last heard.
    pub dominant: Option<ParticipantSid>,
    /// Network quality levels and their detail as last heard (this
    /// participant's and the others').
    pub levels: BTreeMap<ParticipantSid, (u8, NetworkQualityDetail)>,
    /// The verbosities of a network quality input not answered yet (no
    /// level was known): answered when the first level comes.
    pub owed: Option<(u8, u8)>,
    /// Received tracks switched off now.
    pub switched_off: Vec<TrackSid>,
    /// The last `enabled` render hint per received track: the same hint
    /// again (the SDK repeats all of them when an ack is late) switches
    /// nothing.
    pub hinted: BTreeMap<TrackSid, bool>,
    /// The publisher hint last sent per published simulcast track.
    pub publisher: BTreeMap<TrackSid, PublisherHint>,
    /// The id of the next `publisher_hints` message.
    next_hint: u64,
    /// Messages that may still be handled now, and when that was counted.
    budget: (f64, Instant),
}

impl Msp {
    pub fn new(requested: &MediaSignalingRequest, dominant: Option<ParticipantSid>) -> Self {
        let requested = requested.requested();
        let (outbox, inbox) = tokio::sync::mpsc::channel(INBOX);
        Self {
            announced: SERVED
                .into_iter()
                .filter(|c| requested.contains(c))
                .collect(),
            opened: false,
            announce_again: false,
            inbox,
            outbox,
            dominant,
            levels: BTreeMap::new(),
            owed: None,
            switched_off: Vec::new(),
            hinted: BTreeMap::new(),
            publisher: BTreeMap::new(),
            next_hint: 1,
            budget: (BURST, Instant::now()),
        }
    }

    /// Whether one more message may be handled at `now`.
    fn admit(&mut self, now: Instant) -> bool {
        let (tokens, at) = self.budget;
        let tokens =
            (tokens + now.saturating_duration_since(at).as_secs_f64() * PER_SECOND).min(BURST);
        let admitted = tokens >= 1.0;
        self.budget = (if admitted { tokens - 1.0 } else { tokens }, now);
        admitted
    }

    /// `media_signaling` for `connected` and `synced`.
    pub fn announcements(&self) -> BTreeMap<Channel, Announcement> {
        self.announced
            .iter()
            .map(|c| (*c, Announcement::data_channel(c.name().to_owned())))
            .collect()
    }
}

fn channel_named(label: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| c.name() == label)
}

impl Session {
    /// Ask the media server for the announced channels, once the media
    /// session exists.
    pub(super) fn open_msp(&mut self) {
        if self.msp.opened || self.msp.announced.is_empty() || !self.member.negotiated() {
            return;
        }
        self.msp.opened = true;
        let labels = self
            .msp
            .announced
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let (room, me) = (self.member.room, self.member.me);
        let outbox = self.msp.outbox.clone();
        self.member
            .state
            .media
            .open_signaling(room, me, labels, outbox);
        if std::mem::take(&mut self.msp.announce_again) {
            let mut update = ServerUpdate::new();
            update.media_signaling = self.msp.announcements();
            self.send(ServerBody::Update(update));
        }
    }

    /// Send `message` on `channel`, if it was announced.
    fn msp_send(&self, channel: Channel, message: &ServerMessage) {
        if !self.msp.announced.contains(&channel) {
            return;
        }
        let (room, me) = (self.member.room, self.member.me);
        self.member
            .state
            .media
            .signal(room, me, channel.name().to_owned(), message.to_json());
    }

    /// One message from one of the client's MSP channels.
    pub(super) fn on_msp(&mut self, message: SignalingMessage) {
        let Some(channel) = channel_named(&message.label) else {
            return;
        };
        if !self.msp.admit(Instant::now()) {
            tracing::debug!(participant = %self.member.me, "MSP message over the rate; dropped");
            return;
        }
        let parsed = match ClientMessage::parse(&message.text) {
            Ok(parsed) => parsed,
            Err(ProtocolError::UnknownType(_)) => return,
            Err(e) => {
                tracing::debug!(participant = %self.member.me, channel = channel.name(), error = %e, "MSP message ignored");
                return;
            }
        };
        match (channel, parsed) {
            (Channel::ActiveSpeaker, ClientMessage::Ready) => self.send_dominant_speaker(),
            (Channel::TrackSwitchOff, ClientMessage::Ready) => {
                if !self.msp.switched_off.is_empty() {
                    let off = self.msp.switched_off.clone();
                    self.msp_send(
                        Channel::TrackSwitchOff,
                        &ServerMessage::TrackSwitchOff {
                            off,
                            on: Vec::new(),
                        },
                    );
                }
            }
            (Channel::NetworkQuality, ClientMessage::NetworkQuality(inputs)) => {
                let local = inputs.report_level.unwrap_or(1).min(3);
                let remote = inputs.remote_report_level.unwrap_or(0).min(3);
                self.msp.owed = Some((local, remote));
                self.answer_network_quality();
            }
            (Channel::TrackPriority, ClientMessage::TrackPriority { track, subscribe }) => {
                let priority = subscribe.map(media_priority);
                if let Err(e) = self.member.set_subscribe_priority(track, priority) {
                    tracing::debug!(participant = %self.member.me, error = e, "track_priority ignored");
                }
            }
            (Channel::RenderHints, ClientMessage::RenderHints { subscriber }) => {
                let hints = subscriber
                    .hints
                    .into_iter()
                    .map(|hint| {
                        let result = self.apply_render_hint(
                            hint.track,
                            hint.enabled,
                            hint.render_dimensions,
                        );
                        HintResult {
                            track: hint.track,
                            result: result.map_or_else(|e| e, |()| "OK".to_owned()),
                        }
                    })
                    .collect();
                self.msp_send(
                    Channel::RenderHints,
                    &ServerMessage::RenderHints {
                        subscriber: RenderHintsResults {
                            id: subscriber.id,
                            hints,
                        },
                    },
                );
            }
            (Channel::PublisherHints, ClientMessage::Ready) => {
                let tracks: Vec<TrackSid> = self.msp.publisher.keys().copied().collect();
                for track in tracks {
                    self.send_publisher_hint(track);
                }
            }
            (Channel::PublisherHints, ClientMessage::PublisherHints { id, hints }) => {
                for hint in hints {
                    self.publisher_hint_result(id, hint);
                }
            }
            (Channel::PublisherHints, ClientMessage::ClientReset { track, .. }) => {
                // The SDK put the track's encodings back to its defaults.
                let track = self.room_sid(track);
                if self.msp.publisher.contains_key(&track) {
                    self.send_publisher_hint(track);
                }
            }
            // `ready` elsewhere and messages on the wrong channel need
            // nothing.
            (channel, other) => {
                tracing::trace!(participant = %self.member.me, channel = channel.name(), ?other, "MSP message needs nothing");
            }
        }
    }

    fn apply_render_hint(
        &mut self,
        track: TrackSid,
        enabled: Option<bool>,
        dimensions: Option<rsp::Dimensions>,
    ) -> Result<(), String> {
        if let Some(d) = dimensions {
            check_render_dimensions(d.width, d.height)?;
            self.member
                .set_render_dimensions("render_hints", track, Some((d.width, d.height)))?;
        }
        if let Some(on) = enabled
            && self.msp.hinted.get(&track) != Some(&on)
        {
            self.member.switch("render_hints", track, on)?;
            self.msp.hinted.insert(track, on);
        }
        Ok(())
    }

    /// The media server decided which layers of published `track` anyone
    /// receives: hint the client.
    pub(super) fn publisher_layers(&mut self, track: TrackSid, layers: Vec<bool>) {
        if !self.msp.announced.contains(&Channel::PublisherHints) {
            return;
        }
        self.msp.publisher.insert(
            track,
            PublisherHint {
                layers,
                id: 0,
                retried: false,
            },
        );
        self.send_publisher_hint(track);
    }

    /// Send `track`'s current hint in a message of its own.
    fn send_publisher_hint(&mut self, track: TrackSid) {
        let id = self.msp.next_hint;
        let Some(hint) = self.msp.publisher.get_mut(&track) else {
            return;
        };
        self.msp.next_hint += 1;
        hint.id = id;
        let encodings = hint
            .layers
            .iter()
            .enumerate()
            .map(|(i, enabled)| EncodingHint {
                enabled: *enabled,
                layer_index: i as u8,
            })
            .collect();
        self.msp_send(
            Channel::PublisherHints,
            &ServerMessage::PublisherHints {
                publisher: PublisherHintsRequest {
                    id,
                    hints: vec![WireHint {
                        track: self.client_sid(track),
                        encodings,
                    }],
                },
            },
        );
    }

    /// The client's result for one track of hint `id`.
    fn publisher_hint_result(&mut self, id: u64, result: HintResult) {
        let me = self.member.me;
        let track = self.room_sid(result.track);
        match result.result.as_str() {
            "OK" | "REQUEST_SKIPPED" => {
                tracing::trace!(participant = %me, %track, id, result = result.result, "publisher hint");
            }
            "COULD_NOT_APPLY_HINT" => {
                let latest = self.msp.publisher.get_mut(&track).filter(|h| h.id == id);
                match latest {
                    Some(hint) if !hint.retried => {
                        hint.retried = true;
                        tracing::debug!(participant = %me, %track, id, "publisher hint not applied; sent again");
                        self.send_publisher_hint(track);
                    }
                    _ => {
                        tracing::info!(participant = %me, %track, id, "publisher hint not applied");
                    }
                }
            }
            other => {
                tracing::info!(participant = %me, %track, id, result = other, "publisher hint refused");
            }
        }
    }

    pub(super) fn send_dominant_speaker(&self) {
        self.msp_send(
            Channel::ActiveSpeaker,
            &ServerMessage::ActiveSpeaker {
                participant: self.msp.dominant,
            },
        );
    }

    /// Answer the last network quality input, if there is one to answer
    /// and the client's level is known.
    pub(super) fn answer_network_quality(&mut self) {
        let Some((local, remote)) = self.msp.owed else {
            return;
        };
        let Some(&(level, detail)) = self.msp.levels.get(&self.member.me) else {
            return;
        };
        self.msp.owed = None;
        let local = if local >= 2 {
            let (audio, video) = kinds(level, &detail, local);
            LocalLevel::Detailed(Box::new(Levels {
                level,
                audio,
                video,
            }))
        } else {
            LocalLevel::Level(level)
        };
        // Only participants the client has been told about: it drops
        // levels of others.
        let remotes = if remote == 0 {
            Vec::new()
        } else {
            self.msp
                .levels
                .iter()
                .filter(|(sid, _)| self.remotes.contains_key(sid))
                .map(|(sid, (level, detail))| {
                    let (audio, video) = kinds(*level, detail, remote);
                    RemoteLevel {
                        sid: *sid,
                        level: *level,
                        audio: (remote >= 2).then_some(audio),
                        video: (remote >= 2).then_some(video),
                    }
                })
                .collect()
        };
        self.msp_send(
            Channel::NetworkQuality,
            &ServerMessage::NetworkQuality { local, remotes },
        );
    }

    /// A received track was switched off (or on again).
    pub(super) fn track_switched(&mut self, track: TrackSid, off: bool) {
        let was_off = self.msp.switched_off.contains(&track);
        if off == was_off {
            return;
        }
        let (mut on_list, mut off_list) = (Vec::new(), Vec::new());
        if off {
            self.msp.switched_off.push(track);
            off_list.push(track);
        } else {
            self.msp.switched_off.retain(|t| *t != track);
            on_list.push(track);
        }
        self.msp_send(
            Channel::TrackSwitchOff,
            &ServerMessage::TrackSwitchOff {
                off: off_list,
                on: on_list,
            },
        );
    }
}

/// The audio and video parts of a level at `verbosity` (2 or 3): send and
/// receive levels, and at 3 the measurements behind them.
fn kinds(level: u8, detail: &NetworkQualityDetail, verbosity: u8) -> (MediaLevels, MediaLevels) {
    let path = |p: &PathQuality| DirectionStats {
        bandwidth: Some(BandwidthStats {
            actual: p.bandwidth_actual.map(|b| b as f64),
            available: p.bandwidth_available.map(|b| b as f64),
            level: p.bandwidth_level,
        }),
        fraction_lost: Some(FractionLostStats {
            fraction_lost: p.fraction_lost_ppm.map(|ppm| f64::from(ppm) / 1e6),
            level: p.fraction_lost_level,
        }),
        latency: Some(LatencyStats {
            jitter: p.jitter.map(|d| d.as_secs_f64()),
            rtt: p.rtt.map(|d| d.as_secs_f64()),
            level: p.latency_level,
        }),
    };
    let media = |m: Option<&MediaQuality>| match m {
        Some(m) => MediaLevels {
            send: m.send,
            recv: m.recv,
            send_stats: (verbosity >= 3)
                .then(|| m.send_stats.as_ref().map(path))
                .flatten(),
            recv_stats: (verbosity >= 3)
                .then(|| m.recv_stats.as_ref().map(path))
                .flatten(),
        },
        None => MediaLevels {
            send: level,
            recv: level,
            send_stats: None,
            recv_stats: None,
        },
    };
    (media(detail.audio.as_ref()), media(detail.video.as_ref()))
}

pub(super) fn media_priority(priority: Priority) -> MediaPriority {
    match priority {
        Priority::Low => MediaPriority::Low,
        Priority::Standard => MediaPriority::Standard,
        Priority::High => MediaPriority::High,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salon_twilio_signal::rsp::{TransportKind, Transports};

    #[test]
    fn only_requested_channels_salon_serves_are_announced() {
        let data_channel = || {
            Some(Transports {
                transports: vec![TransportKind {
                    kind: "data-channel".into(),
                }],
            })
        };
        let request = MediaSignalingRequest {
            active_speaker: data_channel(),
            render_hints: data_channel(),
            publisher_hints: data_channel(),
            extension_transcriptions: data_channel(),
            ..Default::default()
        };
        let msp = Msp::new(&request, None);
        assert_eq!(
            msp.announced,
            vec![
                Channel::ActiveSpeaker,
                Channel::RenderHints,
                Channel::PublisherHints
            ]
        );
        let announced = msp.announcements();
        assert_eq!(
            announced[&Channel::ActiveSpeaker].transport.label,
            "active_speaker"
        );
        assert_eq!(channel_named("render_hints"), Some(Channel::RenderHints));
        assert_eq!(channel_named("MT0123"), None);
        assert!(
            Msp::new(&MediaSignalingRequest::default(), None)
                .announced
                .is_empty()
        );
    }

    #[test]
    fn a_flood_of_messages_is_cut_to_the_rate() {
        let mut msp = Msp::new(&MediaSignalingRequest::default(), None);
        let t0 = msp.budget.1;
        let burst = (0..1000).take_while(|_| msp.admit(t0)).count();
        assert_eq!(burst, BURST as usize);
        assert!(!msp.admit(t0));
        // A second later, a second's worth.
        let t1 = t0 + std::time::Duration::from_secs(1);
        let more = (0..1000).take_while(|_| msp.admit(t1)).count();
        assert_eq!(more, PER_SECOND as usize);
    }
}

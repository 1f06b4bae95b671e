//! The Salon target: participants are `salon-client` sessions.
//!
//! Each participant mints its own access token (the API key is the one the
//! server trusts; the grant names the participant's room), joins with
//! auto-subscribe on, and publishes the plan's tracks as `microphone`
//! (Opus-shaped) and `camera` (VP8-shaped; with simulcast, three RID layers,
//! [`crate::VideoShape::layers`]). With a bandwidth profile in the plan, it
//! sets it (`set_bandwidth_profile`) right after joining; with render
//! dimensions, it reports them for each video track it comes to receive
//! (`set_render_dimensions`). With named speakers, a speaker's audio
//! carries a speaking audio level and the others publish DTX silence
//! ([`crate::plan::Voice`]). Its [`Meter`]
//! reads the client's shared statistics; the server's `track_switched_off`
//! and `track_switched_on` become [`ParticipantEvent::TrackSwitched`].
//!
//! With [`SalonTarget::record_rooms`], each room is created through the
//! REST API with `RecordParticipantsOnConnect=true` before its first
//! participant joins, so the server records every published track (to
//! measure what recording costs).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use salon_client::{
    Client, ClientConfig, ClientEvent, ClientStats, MediaTransport, StatsHandle, TrackKind,
    TrackSid, TrackSpec,
};
use salon_signal::{ClientMessage, Dimensions, ServerMessage};
use salon_token::{ApiKey, Grant, MintOptions};

use crate::histogram;
use crate::plan::{AudioShape, BandwidthMode, ParticipantPlan, Voice};
use crate::target::{
    Counters, MediaKind, Meter, Participant, ParticipantEvent, ReceivedTrack, SentTrack, Target,
    TargetError,
};

/// Name of the audio track each publisher publishes.
pub const AUDIO_TRACK: &str = "microphone";
/// Name of the video track each publisher publishes.
pub const VIDEO_TRACK: &str = "camera";

/// A Salon server, reached at its signaling URL.
#[derive(Debug)]
pub struct SalonTarget {
    url: String,
    key: ApiKey,
    token_ttl: Duration,
    transport: MediaTransport,
    /// Rooms are created recorded through this REST API base URL.
    recorded: Option<RecordedRooms>,
}

/// Creates each room once, recorded, through the REST API.
#[derive(Debug)]
struct RecordedRooms {
    rest: String,
    http: reqwest::Client,
    created: tokio::sync::Mutex<HashSet<String>>,
}

impl SalonTarget {
    /// `url` is the signaling endpoint (`ws://127.0.0.1:3000/v1/signaling`);
    /// `key` an API key of the server's account, which signs the tokens.
    /// Tokens live `token_ttl` (at least a minute, at most 24 h), which
    /// should cover the whole run.
    pub fn new(url: impl Into<String>, key: ApiKey, token_ttl: Duration) -> Self {
        Self {
            url: url.into(),
            key,
            token_ttl: token_ttl.clamp(Duration::from_secs(60), salon_token::MAX_TTL),
            transport: MediaTransport::Udp,
            recorded: None,
        }
    }

    /// How every participant's media travels: UDP (the default), ICE-TCP,
    /// or relayed through the TURN server each `joined` names.
    pub fn transport(mut self, transport: MediaTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Create each room through the REST API at `rest` (the server's
    /// base URL, `http://127.0.0.1:3000`) with `RecordParticipantsOnConnect`
    /// before its first participant joins: every track is recorded.
    pub fn record_rooms(mut self, rest: impl Into<String>) -> Self {
        self.recorded = Some(RecordedRooms {
            rest: rest.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            created: tokio::sync::Mutex::new(HashSet::new()),
        });
        self
    }

    /// Create `room`, recorded, unless this run already did.
    async fn create_recorded(&self, room: &str) -> Result<(), TargetError> {
        let Some(recorded) = &self.recorded else {
            return Ok(());
        };
        let mut created = recorded.created.lock().await;
        if created.contains(room) {
            return Ok(());
        }
        let failed = |message: String| TargetError {
            code: None,
            message: format!("cannot create the recorded room {room}: {message}"),
        };
        let response = recorded
            .http
            .post(format!("{}/v1/Rooms", recorded.rest))
            .basic_auth(self.key.sid.as_str(), Some(self.key.secret()))
            .form(&[
                ("UniqueName", room),
                ("Type", "group"),
                ("RecordParticipantsOnConnect", "true"),
            ])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(failed(format!("{status}: {body}")));
        }
        created.insert(room.to_owned());
        Ok(())
    }

    fn token(&self, plan: &ParticipantPlan) -> Result<String, TargetError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let options = MintOptions {
            ttl: Duration::from_secs(self.token_ttl.as_secs()),
            ..MintOptions::default()
        };
        let grant = Grant::new(plan.identity.clone()).in_room(plan.room.clone());
        salon_token::mint(&self.key, &grant, now, &options).map_err(|e| TargetError {
            code: None,
            message: format!("cannot mint a token for {}: {e}", plan.identity),
        })
    }
}

impl Target for SalonTarget {
    type Participant = SalonParticipant;

    fn kind(&self) -> &'static str {
        match self.transport {
            MediaTransport::Udp => "salon",
            MediaTransport::Tcp => "salon-ice-tcp",
            MediaTransport::Relay => "salon-relay",
        }
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn join(&self, plan: &ParticipantPlan) -> Result<SalonParticipant, TargetError> {
        self.create_recorded(&plan.room).await?;
        let mut config = ClientConfig::new(self.url.clone(), self.token(plan)?, plan.room.clone())
            .auto_subscribe(true)
            .transport(self.transport)
            .remb(plan.remb);
        if let Some(microphone) = audio_track(plan) {
            config = config.publish(microphone);
        }
        if let Some(video) = plan.video {
            let mut camera = TrackSpec::video(VIDEO_TRACK)
                .bitrate(video.bitrate_bps)
                .fps(video.fps);
            if video.simulcast {
                let layers: Vec<(&str, u16, u16, u32)> = video
                    .layers()
                    .iter()
                    .map(|l| (l.rid, l.width, l.height, l.bitrate_bps))
                    .collect();
                camera = camera.simulcast(&layers);
            }
            config = config.publish(camera);
        }
        let failed = |e: salon_client::ClientError| TargetError {
            code: Some(e.code),
            message: e.message,
        };
        let client = Client::connect(config).await.map_err(failed)?;
        if let Some(profile) = plan.bandwidth_profile {
            let mode = profile.mode.map(|m| match m {
                BandwidthMode::Grid => salon_signal::BandwidthMode::Grid,
                BandwidthMode::Collaboration => salon_signal::BandwidthMode::Collaboration,
                BandwidthMode::Presentation => salon_signal::BandwidthMode::Presentation,
            });
            client
                .adaptive(ClientMessage::SetBandwidthProfile {
                    mode,
                    max_subscription_bitrate: profile.max_subscription_bitrate_bps,
                    dominant_speaker_priority: None,
                    track_switch_off_mode: None,
                    max_tracks: None,
                })
                .await
                .map_err(failed)?;
        }
        Ok(SalonParticipant {
            client,
            render: plan.render,
        })
    }
}

/// The microphone a publisher of `plan` publishes: Opus-shaped at the
/// plan's bitrate, carrying a speaking audio level when it speaks, and DTX
/// silence when it does not ([`Voice`]).
pub(crate) fn audio_track(plan: &ParticipantPlan) -> Option<TrackSpec> {
    let audio = plan.audio?;
    let track = TrackSpec::audio(AUDIO_TRACK).bitrate(audio.bitrate_bps);
    Some(match plan.voice {
        None => track,
        Some(Voice::Speaking) => track.audio_level(AudioShape::SPEAKING_LEVEL),
        Some(Voice::Silent) => track
            .fps(AudioShape::DTX_PACKETS_PER_SECOND)
            .bitrate(AudioShape::DTX_PACKET_BYTES * 8 * AudioShape::DTX_PACKETS_PER_SECOND)
            .audio_level(127),
    })
}

/// A joined `salon-client` session.
#[derive(Debug)]
pub struct SalonParticipant {
    client: Client,
    /// Reported for every video track it comes to receive.
    render: Option<(u32, u32)>,
}

impl Participant for SalonParticipant {
    fn meter(&self) -> Arc<dyn Meter> {
        Arc::new(SalonMeter(self.client.stats_handle()))
    }

    async fn next_event(&mut self) -> Option<ParticipantEvent> {
        let event = self.client.next_event().await?;
        if let (ClientEvent::Subscribed { track, .. }, Some((width, height))) =
            (&event, self.render)
            && track.kind == TrackKind::Video
        {
            let report = ClientMessage::SetRenderDimensions {
                track: track.sid,
                dimensions: Some(Dimensions { width, height }),
            };
            if let Err(e) = self.client.adaptive(report).await {
                return Some(ParticipantEvent::Error {
                    code: e.code,
                    message: e.message,
                });
            }
        }
        Some(match event {
            ClientEvent::MediaConnected => ParticipantEvent::MediaConnected,
            ClientEvent::Error { code, message } => ParticipantEvent::Error { code, message },
            ClientEvent::Disconnected { code, message, .. } => {
                ParticipantEvent::Disconnected { code, message }
            }
            ClientEvent::Adaptive(ServerMessage::TrackSwitchedOff { track, reason }) => {
                ParticipantEvent::TrackSwitched {
                    track: track.to_string(),
                    off: true,
                    reason: Some(reason),
                }
            }
            ClientEvent::Adaptive(ServerMessage::TrackSwitchedOn { track }) => {
                ParticipantEvent::TrackSwitched {
                    track: track.to_string(),
                    off: false,
                    reason: None,
                }
            }
            _ => ParticipantEvent::Other,
        })
    }

    async fn leave(self) {
        self.client.leave().await;
    }
}

/// Reads a client's statistics.
struct SalonMeter(StatsHandle);

impl Meter for SalonMeter {
    fn sample(&self) -> Counters {
        let stats = self.0.snapshot();
        counters(Some(&stats), &stats, |t| t.to_string())
    }
}

/// Counters from `salon-client` statistics: the tracks `published` sent and
/// those `subscribed` received (one session's two halves for Salon, two
/// sessions for Janus), each received track named by `label`.
pub(crate) fn counters(
    published: Option<&ClientStats>,
    subscribed: &ClientStats,
    label: fn(&TrackSid) -> String,
) -> Counters {
    let kind = |k: TrackKind| match k {
        TrackKind::Audio => Some(MediaKind::Audio),
        TrackKind::Video => Some(MediaKind::Video),
        _ => None,
    };
    let sent = published
        .iter()
        .flat_map(|s| &s.published)
        .filter_map(|(name, p)| {
            Some(SentTrack {
                name: name.clone(),
                track: p.track.as_ref().map(label),
                kind: kind(p.kind)?,
                packets: p.packets,
                bytes: p.bytes,
            })
        })
        .collect();
    let received = subscribed
        .subscribed
        .iter()
        .filter_map(|(track, r)| {
            Some(ReceivedTrack {
                track: label(track),
                kind: kind(r.kind)?,
                packets: r.packets,
                bytes: r.bytes,
                expected: r.expected(),
                lost: r.lost(),
                foreign: r.foreign,
                latency: histogram::from_client(&r.latency),
                first_packet_after: r.time_to_first_packet(),
                width: r.width,
                height: r.height,
                last_packet_at: r.last_packet_at,
            })
        })
        .collect();
    Counters { sent, received }
}

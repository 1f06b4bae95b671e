//! The recording controller: which tracks are recorded, and the records of
//! their recordings.
//!
//! One task follows the room events (tracks published and unpublished,
//! participants leaving, rooms ending), each room's recording rules
//! (Twilio's RecordingRules: `RecordParticipantsOnConnect` makes the
//! default "include all"; `POST /v1/Rooms/{Sid}/RecordingRules` replaces
//! them at any time) and the media server's recording reports. It tells
//! the media server to start and stop recordings, writes each recording's
//! row (`processing`, then `completed` or `failed`, with its
//! `recording-*` status callback) and never blocks the room service: it
//! hears events on the same unbounded watcher queue as the media bridge.
//!
//! A rule matches a track when every filter it names matches (`all`,
//! `publisher` identity, `kind`, `track` name); a track is recorded when
//! some `include` rule matches it and no `exclude` rule does. A track
//! stopped and started again by rule changes gets a new recording, as in
//! Twilio.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use salon_media::{Media, MediaKind, RecordSpec, RecordingEvent};
use salon_room::{Event, TrackKind};
use salon_sid::{AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid};
use salon_store::{NewRecording, Store, Timestamp};

use crate::credentials::Credentials;
use crate::service::RoomService;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use tokio::sync::{mpsc, oneshot};

/// Where recordings go and how their download links are signed.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// Directory of recording files (`<room>/<recording>.mka|mkv`).
    pub dir: PathBuf,
    /// How long a `/Media` download link stays valid.
    pub media_url_ttl: Duration,
}

/// One recording rule, in Twilio's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(rename = "type")]
    pub kind: RuleType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(rename = "kind", skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    Include,
    Exclude,
}

impl Rule {
    /// Whether the rule names at least one filter, each of a known value.
    pub fn is_valid(&self) -> bool {
        let named = self.all.is_some()
            || self.publisher.is_some()
            || self.media.is_some()
            || self.track.is_some();
        let kind_ok = self
            .media
            .as_deref()
            .is_none_or(|k| matches!(k, "audio" | "video" | "data"));
        named && kind_ok && self.all != Some(false)
    }

    fn matches(&self, track: &LiveTrack) -> bool {
        self.all.is_none_or(|all| all)
            && self
                .publisher
                .as_deref()
                .is_none_or(|p| p == track.identity)
            && self
                .media
                .as_deref()
                .is_none_or(|k| k == track.kind.as_str())
            && self.track.as_deref().is_none_or(|t| t == track.name)
    }
}

/// Whether `rules` record `track`.
fn records(rules: &[Rule], track: &LiveTrack) -> bool {
    track.kind != TrackKind::Data
        && rules
            .iter()
            .any(|r| r.kind == RuleType::Include && r.matches(track))
        && !rules
            .iter()
            .any(|r| r.kind == RuleType::Exclude && r.matches(track))
}

/// The rules a room starts with.
pub fn default_rules(record_participants_on_connect: bool) -> Vec<Rule> {
    if record_participants_on_connect {
        vec![Rule {
            kind: RuleType::Include,
            all: Some(true),
            publisher: None,
            media: None,
            track: None,
        }]
    } else {
        Vec::new()
    }
}

struct LiveTrack {
    participant: ParticipantSid,
    identity: String,
    name: String,
    kind: TrackKind,
    /// Not muted: a muted track's media is left out of its recording.
    enabled: bool,
    recording: Option<RecordingSid>,
}

#[derive(Default)]
struct LiveRoom {
    rules: Vec<Rule>,
    /// What the room's participants were last told: whether some track is
    /// being recorded.
    announced: bool,
    identities: HashMap<ParticipantSid, String>,
    tracks: HashMap<TrackSid, LiveTrack>,
}

enum Input {
    Rules {
        room: RoomSid,
        rules: Vec<Rule>,
        done: oneshot::Sender<()>,
    },
}

/// The handle REST uses. Cheap to clone.
#[derive(Clone)]
pub struct Recordings {
    inputs: mpsc::Sender<Input>,
    config: Arc<RecordingConfig>,
    /// The account's auth token signs download links (through a key
    /// derived from it), so links outlive a restart until they expire,
    /// and a new auth token voids them all.
    credentials: Arc<Credentials>,
    account: AccountSid,
}

impl Recordings {
    /// Start the controller.
    pub fn spawn(
        config: RecordingConfig,
        store: Store,
        media: Media,
        rooms: RoomService,
        credentials: Arc<Credentials>,
        room_events: mpsc::UnboundedReceiver<Arc<Event>>,
        reports: mpsc::UnboundedReceiver<RecordingEvent>,
    ) -> Self {
        let (inputs, input_rx) = mpsc::channel(64);
        let config = Arc::new(config);
        let account = credentials.account();
        let controller = Controller {
            store,
            media,
            room_service: rooms,
            account,
            dir: config.dir.clone(),
            rooms: HashMap::new(),
            recording_track: HashMap::new(),
        };
        tokio::spawn(controller.run(room_events, reports, input_rx));
        Self {
            inputs,
            config,
            credentials,
            account,
        }
    }

    /// Replace a room's rules now (the caller has stored them).
    pub async fn set_rules(&self, room: RoomSid, rules: Vec<Rule>) {
        let (done, wait) = oneshot::channel();
        if self
            .inputs
            .send(Input::Rules { room, rules, done })
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.config.dir
    }

    /// The query string of a download link of `sid` valid until `expires`
    /// (Unix seconds).
    pub fn sign(&self, sid: &str, expires: u64) -> String {
        let auth_token = self.credentials.auth_token(self.account);
        let key = link_key(auth_token.as_deref().unwrap_or_default());
        let mut mac = Hmac::<Sha1>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("{sid}:{expires}").as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        format!("Expires={expires}&Signature={signature}")
    }

    /// A download link's query, for `sid`, valid for the configured time.
    pub fn signed_query(&self, sid: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign(sid, now + self.config.media_url_ttl.as_secs())
    }

    /// Whether a download link's `expires` and `signature` are good now.
    pub fn verify(&self, sid: &str, expires: u64, signature: &str) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if expires < now {
            return false;
        }
        let expected = self.sign(sid, expires);
        let given = format!("Expires={expires}&Signature={signature}");
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
    }
}

/// The key that signs download links, derived from the account's auth
/// token (its HMAC of a fixed label), so the token itself never signs
/// anything but what Twilio signs with it (status callbacks).
fn link_key(auth_token: &str) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"salon media download links v1");
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Controller {
    store: Store,
    media: Media,
    room_service: RoomService,
    account: AccountSid,
    dir: PathBuf,
    rooms: HashMap<RoomSid, LiveRoom>,
    /// Recordings in progress and the room and track they record.
    recording_track: HashMap<RecordingSid, (RoomSid, TrackSid)>,
}

impl Controller {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Arc<Event>>,
        mut reports: mpsc::UnboundedReceiver<RecordingEvent>,
        mut inputs: mpsc::Receiver<Input>,
    ) {
        if let Err(e) = self
            .store
            .fail_unfinished_recordings(Timestamp::now())
            .await
        {
            tracing::error!(error = %e, "could not close recordings a previous process left");
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(&event).await,
                    None => break,
                },
                Some(report) = reports.recv() => self.on_report(report).await,
                Some(input) = inputs.recv() => match input {
                    Input::Rules { room, rules, done } => {
                        if let Some(live) = self.rooms.get_mut(&room) {
                            live.rules = rules;
                            self.apply_rules(room).await;
                        }
                        let _ = done.send(());
                    }
                },
            }
        }
        // The room service stopped: wait for the last reports a little.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.recording_track.is_empty() {
            match tokio::time::timeout_at(deadline, reports.recv()).await {
                Ok(Some(report)) => self.on_report(report).await,
                _ => break,
            }
        }
    }

    async fn on_event(&mut self, event: &Event) {
        match event {
            Event::RoomCreated { room, settings, .. } => {
                let rules = match self.store.recording_rules(*room).await {
                    Ok(Some((json, _))) => serde_json::from_str(&json).unwrap_or_default(),
                    _ => default_rules(settings.record_participants_on_connect),
                };
                self.rooms.insert(
                    *room,
                    LiveRoom {
                        rules,
                        ..LiveRoom::default()
                    },
                );
            }
            Event::ParticipantConnected {
                room,
                participant,
                identity,
            } => {
                if let Some(live) = self.rooms.get_mut(room) {
                    live.identities.insert(*participant, identity.clone());
                }
            }
            Event::TrackPublished {
                room,
                participant,
                track,
                name,
                kind,
                enabled,
            } => {
                let Some(live) = self.rooms.get_mut(room) else {
                    return;
                };
                let identity = live
                    .identities
                    .get(participant)
                    .cloned()
                    .unwrap_or_default();
                live.tracks.insert(
                    *track,
                    LiveTrack {
                        participant: *participant,
                        identity,
                        name: name.clone(),
                        kind: *kind,
                        enabled: *enabled,
                        recording: None,
                    },
                );
                self.apply_rules(*room).await;
            }
            Event::TrackSwitched {
                room,
                track,
                enabled,
                ..
            } => {
                if let Some(t) = self
                    .rooms
                    .get_mut(room)
                    .and_then(|live| live.tracks.get_mut(track))
                {
                    t.enabled = *enabled;
                    if t.recording.is_some() {
                        self.media.pause_recording(*room, *track, !*enabled);
                    }
                }
            }
            Event::TrackUnpublished { room, track, .. } => {
                self.stop(*room, *track, true);
                self.announce(*room).await;
            }
            Event::ParticipantDisconnected {
                room, participant, ..
            } => {
                let tracks: Vec<TrackSid> = self
                    .rooms
                    .get(room)
                    .map(|live| {
                        live.tracks
                            .iter()
                            .filter(|(_, t)| t.participant == *participant)
                            .map(|(sid, _)| *sid)
                            .collect()
                    })
                    .unwrap_or_default();
                for track in tracks {
                    self.stop(*room, track, true);
                }
                self.announce(*room).await;
            }
            Event::RoomEnded { room, .. } => {
                let tracks: Vec<TrackSid> = self
                    .rooms
                    .get(room)
                    .map(|live| live.tracks.keys().copied().collect())
                    .unwrap_or_default();
                for track in tracks {
                    self.stop(*room, track, true);
                }
                self.rooms.remove(room);
            }
            _ => {}
        }
    }

    /// Start and stop recordings so the room's tracks follow its rules.
    async fn apply_rules(&mut self, room: RoomSid) {
        let Some(live) = self.rooms.get(&room) else {
            return;
        };
        let mut start = Vec::new();
        let mut stop = Vec::new();
        for (sid, track) in &live.tracks {
            match (records(&live.rules, track), track.recording.is_some()) {
                (true, false) => start.push(*sid),
                (false, true) => stop.push(*sid),
                _ => {}
            }
        }
        for track in stop {
            self.stop(room, track, false);
        }
        for track in start {
            self.start(room, track).await;
        }
        self.announce(room).await;
    }

    /// Tell the room (its participants, through the room core) when it
    /// starts or stops being recorded.
    async fn announce(&mut self, room: RoomSid) {
        let Some(live) = self.rooms.get_mut(&room) else {
            return;
        };
        let recording = live.tracks.values().any(|t| t.recording.is_some());
        if recording == live.announced {
            return;
        }
        live.announced = recording;
        let _ = self
            .room_service
            .call(move |core, _| core.set_recording(room, recording))
            .await;
    }

    async fn start(&mut self, room: RoomSid, track: TrackSid) {
        let Some(live) = self.rooms.get_mut(&room) else {
            return;
        };
        let Some(t) = live.tracks.get_mut(&track) else {
            return;
        };
        let recording = RecordingSid::random();
        let (kind, container) = match t.kind {
            TrackKind::Audio => (MediaKind::Audio, "mka"),
            _ => (MediaKind::Video, "mkv"),
        };
        let relative = format!("{room}/{recording}.{container}");
        let new = NewRecording {
            sid: recording,
            account_sid: self.account,
            room_sid: room,
            participant_sid: t.participant,
            track_sid: track,
            track_name: &t.name,
            kind: t.kind.as_str(),
            container_format: container,
            path: &relative,
        };
        if let Err(e) = self.store.insert_recording(&new, Timestamp::now()).await {
            tracing::error!(%room, %track, error = %e, "could not record a new recording; not recording");
            return;
        }
        t.recording = Some(recording);
        self.recording_track.insert(recording, (room, track));
        tracing::info!(%room, %track, %recording, "recording started");
        let muted = !t.enabled;
        self.media.record(RecordSpec {
            recording,
            room,
            track,
            kind,
            path: self.dir.join(&relative),
        });
        if muted {
            self.media.pause_recording(room, track, true);
        }
    }

    /// Stop recording `track`; `gone`: the track left the room too.
    fn stop(&mut self, room: RoomSid, track: TrackSid, gone: bool) {
        let Some(live) = self.rooms.get_mut(&room) else {
            return;
        };
        let recording = if gone {
            live.tracks.remove(&track).and_then(|t| t.recording)
        } else {
            live.tracks.get_mut(&track).and_then(|t| t.recording.take())
        };
        if recording.is_some() {
            self.media.stop_recording(room, track);
        }
    }

    async fn on_report(&mut self, report: RecordingEvent) {
        let now = Timestamp::now();
        let outcome = match &report {
            RecordingEvent::Started {
                recording,
                codec,
                at,
            } => {
                let start = at
                    .duration_since(UNIX_EPOCH)
                    .map_or(now, |d| Timestamp::from_millis(d.as_millis() as i64));
                self.store
                    .recording_started(*recording, codec.as_str(), start, now)
                    .await
            }
            RecordingEvent::Completed {
                recording,
                duration,
                size,
            } => {
                self.finished(*recording).await;
                self.store
                    .recording_completed(*recording, duration.as_millis() as u64, *size, now)
                    .await
            }
            RecordingEvent::Failed { recording, reason } => {
                tracing::warn!(%recording, reason, "recording failed");
                self.finished(*recording).await;
                self.store.recording_failed(*recording, reason, now).await
            }
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, ?report, "could not record a recording's progress");
        }
    }

    async fn finished(&mut self, recording: RecordingSid) {
        let Some((room, track)) = self.recording_track.remove(&recording) else {
            return;
        };
        if let Some(t) = self
            .rooms
            .get_mut(&room)
            .and_then(|live| live.tracks.get_mut(&track))
            && t.recording == Some(recording)
        {
            t.recording = None;
        }
        self.announce(room).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(identity: &str, name: &str, kind: TrackKind) -> LiveTrack {
        LiveTrack {
            participant: ParticipantSid::from_bytes([1; 16]),
            identity: identity.into(),
            name: name.into(),
            kind,
            enabled: true,
            recording: None,
        }
    }

    fn rules(json: &str) -> Vec<Rule> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn include_all_records_media_tracks_but_not_data() {
        let r = default_rules(true);
        assert!(records(&r, &track("alice", "mic", TrackKind::Audio)));
        assert!(!records(&r, &track("alice", "chat", TrackKind::Data)));
        assert!(!records(&[], &track("alice", "mic", TrackKind::Audio)));
    }

    #[test]
    fn an_exclude_rule_wins_and_filters_of_one_rule_combine() {
        let r = rules(
            r#"[{"type":"include","all":true},{"type":"exclude","publisher":"bob","kind":"video"}]"#,
        );
        assert!(records(&r, &track("bob", "mic", TrackKind::Audio)));
        assert!(!records(&r, &track("bob", "cam", TrackKind::Video)));
        assert!(records(&r, &track("alice", "cam", TrackKind::Video)));
        let r = rules(r#"[{"type":"include","track":"cam"}]"#);
        assert!(records(&r, &track("bob", "cam", TrackKind::Video)));
        assert!(!records(&r, &track("bob", "mic", TrackKind::Audio)));
    }

    #[test]
    fn a_rule_without_a_filter_or_with_an_unknown_kind_is_invalid() {
        assert!(!rules(r#"[{"type":"include"}]"#)[0].is_valid());
        assert!(!rules(r#"[{"type":"include","kind":"smell"}]"#)[0].is_valid());
        assert!(serde_json::from_str::<Vec<Rule>>(r#"[{"type":"maybe","all":true}]"#).is_err());
    }
}

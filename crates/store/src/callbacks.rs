//! What a status callback says: Twilio's parameters for each room event.
//!
//! A room created with a `StatusCallback` gets one callback per event that
//! Twilio reports (`room-created`, `room-ended`, `participant-connected`,
//! `participant-disconnected`, `track-added`, `track-removed`,
//! `track-enabled`, `track-disabled`), written to the outbox in the same
//! transaction as the event, just before the event's own rows change. The
//! parameters come from the event and from the records as they stand at
//! that moment, so each callback is complete without looking anything up
//! later, when the room may be long gone.
//!
//! Every callback carries `AccountSid`, `RoomName`, `RoomSid`,
//! `RoomStatus`, `RoomType`, `StatusCallbackEvent`, `Timestamp` (ISO 8601
//! UTC with milliseconds, as Twilio writes it) and `SequenceNumber` (the
//! callback's place among its room's callbacks, from 0 for `room-created`).
//! Participant and track events add `ParticipantSid`,
//! `ParticipantIdentity` and `ParticipantStatus`;
//! `participant-disconnected` adds `ParticipantDuration` and `room-ended`
//! `RoomDuration` (whole seconds); track events add `TrackSid`,
//! `TrackKind` and `TrackName`.
//!
//! The core reports a participant's leaving as one event that implies its
//! tracks are gone; a callback receiver hears it as Twilio tells it: a
//! `track-removed` for each track still published, then
//! `participant-disconnected`.
//!
//! This module decides *what* is said; `salon-server`'s sender decides how
//! it is delivered (HTTP, signature, retries).
//!
//! Recordings and compositions will add their events here: `recording-*`
//! go to the room's callback and take the room's next `SequenceNumber`
//! (a `Writer` with their own parameters); `composition-*` go to the
//! composition's own `StatusCallback`, as a stream of their own in the
//! outbox (keyed by the composition's SID).

use salon_room::{CallbackMethod, DisconnectReason, EndReason, Event, RoomType, TrackKind};
use salon_sid::{AccountSid, ParticipantSid, RoomSid, TrackSid};
use sqlx::{Any, Row, Transaction};

use crate::outbox::{self, NewCallback};
use crate::{Result, StoreError, Timestamp};

/// Twilio's `StatusCallbackEvent` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackEvent {
    RoomCreated,
    RoomEnded,
    ParticipantConnected,
    ParticipantDisconnected,
    TrackAdded,
    TrackRemoved,
    TrackEnabled,
    TrackDisabled,
    RecordingStarted,
    RecordingCompleted,
    RecordingFailed,
    CompositionEnqueued,
    CompositionHookFailed,
    CompositionStarted,
    CompositionAvailable,
    CompositionProgress,
    CompositionFailed,
}

impl CallbackEvent {
    pub const fn as_str(self) -> &'static str {
        match self {
            CallbackEvent::RoomCreated => "room-created",
            CallbackEvent::RoomEnded => "room-ended",
            CallbackEvent::ParticipantConnected => "participant-connected",
            CallbackEvent::ParticipantDisconnected => "participant-disconnected",
            CallbackEvent::TrackAdded => "track-added",
            CallbackEvent::TrackRemoved => "track-removed",
            CallbackEvent::TrackEnabled => "track-enabled",
            CallbackEvent::TrackDisabled => "track-disabled",
            CallbackEvent::RecordingStarted => "recording-started",
            CallbackEvent::RecordingCompleted => "recording-completed",
            CallbackEvent::RecordingFailed => "recording-failed",
            CallbackEvent::CompositionEnqueued => "composition-enqueued",
            CallbackEvent::CompositionHookFailed => "composition-hook-failed",
            CallbackEvent::CompositionStarted => "composition-started",
            CallbackEvent::CompositionAvailable => "composition-available",
            CallbackEvent::CompositionProgress => "composition-progress",
            CallbackEvent::CompositionFailed => "composition-failed",
        }
    }
}

/// Where a room's callbacks go, and what every one of them repeats.
struct RoomTarget {
    url: String,
    method: CallbackMethod,
    name: String,
    room_type: String,
    created: Timestamp,
}

/// Write the callbacks `event` causes, if its room has a status callback.
/// Call before the event's own rows are written. Returns how many.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    account: AccountSid,
    event: &Event,
    at: Timestamp,
) -> Result<usize> {
    let target = match event {
        // Twilio has no callbacks for subscriptions, dominant speakers,
        // network quality, switched-off tracks or priorities; recording
        // callbacks come from the recordings themselves.
        Event::Subscribed { .. }
        | Event::Unsubscribed { .. }
        | Event::RecordingChanged { .. }
        | Event::DominantSpeakerChanged { .. }
        | Event::NetworkQualityChanged { .. }
        | Event::SubscriptionSwitched { .. }
        | Event::PublisherLayers { .. }
        | Event::TrackPriorityChanged { .. } => return Ok(0),
        Event::RoomCreated { name, settings, .. } => match &settings.status_callback {
            None => return Ok(0),
            Some(callback) => RoomTarget {
                url: callback.url.clone(),
                method: callback.method,
                name: name.clone(),
                room_type: settings.room_type.as_str().to_owned(),
                created: at,
            },
        },
        _ => match room_target(tx, event.room()).await? {
            None => return Ok(0),
            Some(target) => target,
        },
    };
    let room = Writer {
        account,
        room: event.room(),
        target,
        at,
    };
    match event {
        Event::Subscribed { .. }
        | Event::Unsubscribed { .. }
        | Event::RecordingChanged { .. }
        | Event::DominantSpeakerChanged { .. }
        | Event::NetworkQualityChanged { .. }
        | Event::SubscriptionSwitched { .. }
        | Event::PublisherLayers { .. }
        | Event::TrackPriorityChanged { .. } => Ok(0),
        Event::RoomCreated { .. } => {
            room.write(tx, CallbackEvent::RoomCreated, "in-progress", Vec::new())
                .await?;
            Ok(1)
        }
        Event::RoomEnded { reason, .. } => {
            let duration = room.target.created.seconds_until(at);
            let status = match reason {
                EndReason::NodeFailed => "failed",
                _ => "completed",
            };
            room.write(
                tx,
                CallbackEvent::RoomEnded,
                status,
                vec![("RoomDuration", duration.to_string())],
            )
            .await?;
            Ok(1)
        }
        Event::ParticipantConnected {
            participant,
            identity,
            ..
        } => {
            room.write(
                tx,
                CallbackEvent::ParticipantConnected,
                "in-progress",
                participant_params(*participant, identity, "connected"),
            )
            .await?;
            Ok(1)
        }
        Event::ParticipantDisconnected {
            participant,
            identity,
            ..
        } => {
            let mut written = 0;
            for track in published_tracks(tx, *participant).await? {
                let mut params = participant_params(*participant, identity, "disconnected");
                params.extend(track_params(&track));
                room.write(tx, CallbackEvent::TrackRemoved, "in-progress", params)
                    .await?;
                written += 1;
            }
            let start = participant_start(tx, *participant).await?;
            let mut params = participant_params(*participant, identity, "disconnected");
            params.push((
                "ParticipantDuration",
                start.map_or(0, |s| s.seconds_until(at)).to_string(),
            ));
            room.write(
                tx,
                CallbackEvent::ParticipantDisconnected,
                "in-progress",
                params,
            )
            .await?;
            Ok(written + 1)
        }
        Event::TrackPublished {
            participant,
            track,
            name,
            kind,
            ..
        } => {
            let identity = participant_identity(tx, *participant).await?;
            let mut params = participant_params(*participant, &identity, "connected");
            params.extend(track_params(&PublishedTrack {
                sid: *track,
                name: name.clone(),
                kind: kind.as_str().to_owned(),
            }));
            room.write(tx, CallbackEvent::TrackAdded, "in-progress", params)
                .await?;
            Ok(1)
        }
        Event::TrackUnpublished {
            participant, track, ..
        }
        | Event::TrackSwitched {
            participant, track, ..
        } => {
            let name = match event {
                Event::TrackSwitched { enabled: true, .. } => CallbackEvent::TrackEnabled,
                Event::TrackSwitched { enabled: false, .. } => CallbackEvent::TrackDisabled,
                _ => CallbackEvent::TrackRemoved,
            };
            let identity = participant_identity(tx, *participant).await?;
            let Some(track) = published_track(tx, *track).await? else {
                return Ok(0);
            };
            let mut params = participant_params(*participant, &identity, "connected");
            params.extend(track_params(&track));
            room.write(tx, name, "in-progress", params).await?;
            Ok(1)
        }
    }
}

/// Write the callbacks of rooms a previous process of `node` left in progress, as
/// if they ended now: each participant disconnected (with its tracks
/// removed), then the room ended for `reason` (`NodeFailed`: a `failed`
/// room, as another node declared `node` dead). Call before the rows
/// change. Returns how many.
pub(crate) async fn enqueue_abandoned(
    tx: &mut Transaction<'_, Any>,
    node: &str,
    at: Timestamp,
    reason: EndReason,
) -> Result<usize> {
    let rooms = sqlx::query(
        "SELECT sid, account_sid FROM rooms
         WHERE status = 'in-progress' AND node = $1 AND status_callback IS NOT NULL
         ORDER BY date_created, sid",
    )
    .bind(node)
    .fetch_all(&mut **tx)
    .await?;
    let mut written = 0;
    for row in rooms {
        let room: RoomSid = parse(&row, "rooms", "sid")?;
        let account: AccountSid = parse(&row, "rooms", "account_sid")?;
        let participants = sqlx::query(
            "SELECT sid, identity FROM participants
             WHERE room_sid = $1 AND status = 'connected'
             ORDER BY start_time, sid",
        )
        .bind(room.as_str())
        .fetch_all(&mut **tx)
        .await?;
        for participant in participants {
            let event = Event::ParticipantDisconnected {
                room,
                participant: parse(&participant, "participants", "sid")?,
                identity: participant.try_get("identity")?,
                reason: DisconnectReason::Shutdown,
            };
            written += enqueue(tx, account, &event, at).await?;
        }
        let event = Event::RoomEnded { room, reason };
        written += enqueue(tx, account, &event, at).await?;
    }
    Ok(written)
}

/// One room's callbacks at one moment.
struct Writer {
    account: AccountSid,
    room: RoomSid,
    target: RoomTarget,
    at: Timestamp,
}

impl Writer {
    async fn write(
        &self,
        tx: &mut Transaction<'_, Any>,
        event: CallbackEvent,
        room_status: &str,
        extra: Vec<(&'static str, String)>,
    ) -> Result<()> {
        let stream = self.room.as_str();
        let sequence = outbox::next_sequence(tx, stream).await?;
        let mut params = vec![
            ("AccountSid", self.account.to_string()),
            ("RoomName", self.target.name.clone()),
            ("RoomSid", stream.to_owned()),
            ("RoomStatus", room_status.to_owned()),
            ("RoomType", self.target.room_type.clone()),
            ("StatusCallbackEvent", event.as_str().to_owned()),
            ("Timestamp", twilio_timestamp(self.at)),
            ("SequenceNumber", sequence.to_string()),
        ];
        params.extend(extra);
        let callback = NewCallback {
            stream,
            account: self.account,
            event: event.as_str(),
            url: &self.target.url,
            method: self.target.method,
            params: &params,
        };
        outbox::push(tx, &callback, sequence, self.at).await
    }
}

fn participant_params(
    participant: ParticipantSid,
    identity: &str,
    status: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("ParticipantSid", participant.to_string()),
        ("ParticipantIdentity", identity.to_owned()),
        ("ParticipantStatus", status.to_owned()),
    ]
}

struct PublishedTrack {
    sid: TrackSid,
    name: String,
    kind: String,
}

fn track_params(track: &PublishedTrack) -> [(&'static str, String); 3] {
    [
        ("TrackSid", track.sid.to_string()),
        ("TrackKind", track.kind.clone()),
        ("TrackName", track.name.clone()),
    ]
}

/// Twilio's callback timestamps: ISO 8601 in UTC with milliseconds,
/// e.g. `2020-08-19T17:40:05.273Z`.
pub fn twilio_timestamp(at: Timestamp) -> String {
    let t = at.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

async fn room_target(tx: &mut Transaction<'_, Any>, room: RoomSid) -> Result<Option<RoomTarget>> {
    let Some(row) = sqlx::query(
        "SELECT unique_name, type, status_callback, status_callback_method, date_created
         FROM rooms WHERE sid = $1 AND status_callback IS NOT NULL",
    )
    .bind(room.as_str())
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let room_type: String = row.try_get("type")?;
    let method: String = row.try_get("status_callback_method")?;
    Ok(Some(RoomTarget {
        url: row.try_get("status_callback")?,
        method: match method.as_str() {
            "GET" => CallbackMethod::Get,
            _ => CallbackMethod::Post,
        },
        name: row.try_get("unique_name")?,
        room_type: room_type
            .parse::<RoomType>()
            .map_err(|_| corrupt("rooms", format!("type {room_type:?}")))?
            .as_str()
            .to_owned(),
        created: Timestamp::from_millis(row.try_get("date_created")?),
    }))
}

async fn participant_identity(
    tx: &mut Transaction<'_, Any>,
    participant: ParticipantSid,
) -> Result<String> {
    let identity: Option<String> =
        sqlx::query_scalar("SELECT identity FROM participants WHERE sid = $1")
            .bind(participant.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(identity.unwrap_or_default())
}

async fn participant_start(
    tx: &mut Transaction<'_, Any>,
    participant: ParticipantSid,
) -> Result<Option<Timestamp>> {
    let start: Option<i64> =
        sqlx::query_scalar("SELECT start_time FROM participants WHERE sid = $1")
            .bind(participant.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(start.map(Timestamp::from_millis))
}

async fn published_track(
    tx: &mut Transaction<'_, Any>,
    track: TrackSid,
) -> Result<Option<PublishedTrack>> {
    let row = sqlx::query("SELECT sid, name, kind FROM published_tracks WHERE sid = $1")
        .bind(track.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(track_row).transpose()
}

/// The tracks `participant` still publishes, in publication order.
async fn published_tracks(
    tx: &mut Transaction<'_, Any>,
    participant: ParticipantSid,
) -> Result<Vec<PublishedTrack>> {
    let rows = sqlx::query(
        "SELECT sid, name, kind FROM published_tracks
         WHERE participant_sid = $1 AND date_unpublished IS NULL
         ORDER BY date_created, sid",
    )
    .bind(participant.as_str())
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(track_row).collect()
}

fn track_row(row: &sqlx::any::AnyRow) -> Result<PublishedTrack> {
    let kind: String = row.try_get("kind")?;
    Ok(PublishedTrack {
        sid: parse(row, "published_tracks", "sid")?,
        name: row.try_get("name")?,
        kind: TrackKind::parse(&kind)
            .ok_or_else(|| corrupt("published_tracks", format!("kind {kind:?}")))?
            .as_str()
            .to_owned(),
    })
}

fn parse<T: std::str::FromStr>(
    row: &sqlx::any::AnyRow,
    table: &'static str,
    column: &str,
) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| corrupt(table, format!("{column} {text:?}")))
}

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

/// Write a `recording-*` callback of `room` (if it has a status callback),
/// with the room's next `SequenceNumber`. Returns how many (0 or 1).
pub(crate) async fn enqueue_recording(
    tx: &mut Transaction<'_, Any>,
    account: AccountSid,
    room: RoomSid,
    event: CallbackEvent,
    extra: Vec<(&'static str, String)>,
    at: Timestamp,
) -> Result<usize> {
    let Some(target) = room_target(tx, room).await? else {
        return Ok(0);
    };
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM rooms WHERE sid = $1")
        .bind(room.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let writer = Writer {
        account,
        room,
        target,
        at,
    };
    let status = status.unwrap_or_else(|| "in-progress".into());
    writer.write(tx, event, &status, extra).await?;
    Ok(1)
}

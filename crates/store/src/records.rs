//! The rows the REST API reads, as typed records.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use salon_room::{RoomType, TrackKind};
use salon_sid::{AccountSid, ParticipantSid, RoomSid, Sid, TrackSid};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;

/// A moment in UTC, stored as milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        Self(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whole seconds from `self` to `later` (zero if `later` is earlier).
    pub fn seconds_until(self, later: Timestamp) -> u64 {
        u64::try_from((later.0 - self.0).max(0) / 1000).unwrap_or(0)
    }
}

/// Twilio's date format: ISO 8601 in UTC, whole seconds, `Z` suffix.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// A room's status, as Twilio spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomStatus {
    InProgress,
    Completed,
    Failed,
}

impl RoomStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RoomStatus::InProgress => "in-progress",
            RoomStatus::Completed => "completed",
            RoomStatus::Failed => "failed",
        }
    }
}

impl FromStr for RoomStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "in-progress" => Ok(RoomStatus::InProgress),
            "completed" => Ok(RoomStatus::Completed),
            "failed" => Ok(RoomStatus::Failed),
            _ => Err(()),
        }
    }
}

/// A participant's status, as Twilio spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantStatus {
    Connected,
    Disconnected,
}

impl ParticipantStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ParticipantStatus::Connected => "connected",
            ParticipantStatus::Disconnected => "disconnected",
        }
    }
}

impl FromStr for ParticipantStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "connected" => Ok(ParticipantStatus::Connected),
            "disconnected" => Ok(ParticipantStatus::Disconnected),
            _ => Err(()),
        }
    }
}

/// A room, in progress or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub sid: RoomSid,
    pub account_sid: AccountSid,
    pub unique_name: String,
    pub status: RoomStatus,
    pub room_type: RoomType,
    pub max_participants: u32,
    pub max_participant_duration: Duration,
    /// Whole minutes, as Twilio reports it.
    pub empty_room_timeout_minutes: u32,
    pub unused_room_timeout_minutes: u32,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub video_codecs: Vec<String>,
    pub audio_only: bool,
    pub record_participants_on_connect: bool,
    pub media_region: String,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub end_time: Option<Timestamp>,
    pub end_reason: Option<String>,
}

impl RoomRecord {
    /// Seconds the room was in progress, once it has ended.
    pub fn duration(&self) -> Option<u64> {
        self.end_time
            .map(|end| self.date_created.seconds_until(end))
    }
}

/// A participant, connected or gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRecord {
    pub sid: ParticipantSid,
    pub room_sid: RoomSid,
    pub account_sid: AccountSid,
    pub identity: String,
    pub status: ParticipantStatus,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub start_time: Timestamp,
    pub end_time: Option<Timestamp>,
    pub end_reason: Option<String>,
}

impl ParticipantRecord {
    /// Seconds the participant was connected, once it has left.
    pub fn duration(&self) -> Option<u64> {
        self.end_time.map(|end| self.start_time.seconds_until(end))
    }
}

/// A track a participant publishes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTrackRecord {
    pub sid: TrackSid,
    pub room_sid: RoomSid,
    pub participant_sid: ParticipantSid,
    pub name: String,
    pub kind: TrackKind,
    pub enabled: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// A track a participant receives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedTrackRecord {
    pub sid: TrackSid,
    pub room_sid: RoomSid,
    /// The subscriber.
    pub participant_sid: ParticipantSid,
    pub publisher_sid: ParticipantSid,
    pub name: String,
    pub kind: TrackKind,
    pub enabled: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

// ---- decoding rows -------------------------------------------------------

fn decode_err(column: &str, detail: impl fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: detail.to_string().into(),
    }
}

fn sid<K: salon_sid::Kind>(row: &AnyRow, column: &str) -> Result<Sid<K>, sqlx::Error> {
    let text: &str = row.try_get(column)?;
    text.parse().map_err(|e| decode_err(column, e))
}

fn parsed<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let text: &str = row.try_get(column)?;
    text.parse()
        .map_err(|_| decode_err(column, format!("unexpected value {text:?}")))
}

fn timestamp(row: &AnyRow, column: &str) -> Result<Timestamp, sqlx::Error> {
    Ok(Timestamp(row.try_get(column)?))
}

fn optional_timestamp(row: &AnyRow, column: &str) -> Result<Option<Timestamp>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
}

fn unsigned(row: &AnyRow, column: &str) -> Result<u32, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|e| decode_err(column, e))
}

/// A `BOOLEAN` column, selected as `CAST(column AS INTEGER)`: sqlx's `Any`
/// driver cannot read a column SQLite declares BOOLEAN, and both databases
/// cast a boolean to 0 or 1.
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

fn track_kind(row: &AnyRow, column: &str) -> Result<TrackKind, sqlx::Error> {
    let text: &str = row.try_get(column)?;
    TrackKind::parse(text).ok_or_else(|| decode_err(column, format!("unexpected kind {text:?}")))
}

impl FromRow<'_, AnyRow> for RoomRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let codecs: &str = row.try_get("video_codecs")?;
        let room_type: &str = row.try_get("type")?;
        Ok(Self {
            sid: sid(row, "sid")?,
            account_sid: sid(row, "account_sid")?,
            unique_name: row.try_get("unique_name")?,
            status: parsed(row, "status")?,
            room_type: room_type.parse().map_err(|e| decode_err("type", e))?,
            max_participants: unsigned(row, "max_participants")?,
            max_participant_duration: Duration::from_secs(
                unsigned(row, "max_participant_duration")?.into(),
            ),
            empty_room_timeout_minutes: unsigned(row, "empty_room_timeout")?,
            unused_room_timeout_minutes: unsigned(row, "unused_room_timeout")?,
            status_callback: row.try_get("status_callback")?,
            status_callback_method: row.try_get("status_callback_method")?,
            video_codecs: codecs
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            audio_only: flag(row, "audio_only")?,
            record_participants_on_connect: flag(row, "record_participants_on_connect")?,
            media_region: row.try_get("media_region")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
            end_time: optional_timestamp(row, "end_time")?,
            end_reason: row.try_get("end_reason")?,
        })
    }
}

impl FromRow<'_, AnyRow> for ParticipantRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sid: sid(row, "sid")?,
            room_sid: sid(row, "room_sid")?,
            account_sid: sid(row, "account_sid")?,
            identity: row.try_get("identity")?,
            status: parsed(row, "status")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
            start_time: timestamp(row, "start_time")?,
            end_time: optional_timestamp(row, "end_time")?,
            end_reason: row.try_get("end_reason")?,
        })
    }
}

impl FromRow<'_, AnyRow> for PublishedTrackRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sid: sid(row, "sid")?,
            room_sid: sid(row, "room_sid")?,
            participant_sid: sid(row, "participant_sid")?,
            name: row.try_get("name")?,
            kind: track_kind(row, "kind")?,
            enabled: flag(row, "enabled")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
        })
    }
}

impl FromRow<'_, AnyRow> for SubscribedTrackRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sid: sid(row, "track_sid")?,
            room_sid: sid(row, "room_sid")?,
            participant_sid: sid(row, "subscriber_sid")?,
            publisher_sid: sid(row, "publisher_sid")?,
            name: row.try_get("name")?,
            kind: track_kind(row, "kind")?,
            enabled: flag(row, "enabled")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_in_twilios_format() {
        let t = Timestamp::from_millis(1_438_286_400_999);
        assert_eq!(t.to_string(), "2015-07-30T20:00:00Z");
        assert_eq!(t.unix_seconds(), 1_438_286_400);
        assert_eq!(
            Timestamp::from_millis(0).seconds_until(Timestamp::from_millis(61_500)),
            61
        );
        assert_eq!(
            Timestamp::from_millis(5_000).seconds_until(Timestamp::from_millis(0)),
            0
        );
    }
}

//! Reads for the REST API: lookups and keyset-paged lists.

use std::fmt;
use std::str::FromStr;

use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use sqlx::Arguments;
use sqlx::any::{AnyArguments, AnyRow};

use crate::records::{
    ParticipantRecord, ParticipantStatus, PublishedTrackRecord, RoomRecord, RoomStatus,
    SubscribedTrackRecord, Timestamp,
};
use crate::{Result, Store};

/// Where a page starts: just past the row with this creation time and SID.
/// Rendered as Twilio-style opaque `PageToken`s (`PT…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub date_created: Timestamp,
    pub sid: String,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PT{}_{}", self.date_created.millis(), self.sid)
    }
}

impl FromStr for Cursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let rest = s.strip_prefix("PT").ok_or(())?;
        let (millis, sid) = rest.split_once('_').ok_or(())?;
        let millis: i64 = millis.parse().map_err(|_| ())?;
        if sid.len() != salon_sid::SID_LEN || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(());
        }
        Ok(Cursor {
            date_created: Timestamp::from_millis(millis),
            sid: sid.to_owned(),
        })
    }
}

/// Which page of a list to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page, 1 to 1000.
    pub size: u32,
    /// Page number, used only without a cursor (as a plain offset).
    pub number: u32,
    /// Continue after this row.
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            size: 50,
            number: 0,
            after: None,
        }
    }
}

/// One page of a list, and where the next one starts if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Filters of `GET /v1/Rooms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomFilter {
    pub status: Option<RoomStatus>,
    pub unique_name: Option<String>,
    /// Rooms created at or after this moment.
    pub created_after: Option<Timestamp>,
    /// Rooms created before this moment.
    pub created_before: Option<Timestamp>,
}

/// Filters of `GET /v1/Rooms/{RoomSid}/Participants`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantFilter {
    pub status: Option<ParticipantStatus>,
    pub identity: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

/// A statement built from pieces, with numbered placeholders (`$1`, `$2`…)
/// that both SQLite and PostgreSQL read. (sqlx's `QueryBuilder` writes `?`
/// for its `Any` driver, which PostgreSQL does not accept.)
pub(crate) struct Sql {
    text: String,
    args: AnyArguments,
    count: usize,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: AnyArguments::default(),
            count: 0,
        }
    }

    pub(crate) fn push(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.text.push_str(text.as_ref());
        self
    }

    pub(crate) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        self.count += 1;
        self.text.push_str(&format!("${}", self.count));
        // Encoding an integer or a string into Any's arguments cannot fail;
        // if it ever did, the statement would fail on a missing parameter.
        let _ = self.args.add(value);
        self
    }

    /// Run the statement (no rows back); how many rows it changed.
    pub(crate) async fn execute<'c, E>(self, executor: E) -> Result<u64>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)
            .execute(executor)
            .await?
            .rows_affected())
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Order {
    NewestFirst,
    OldestFirst,
}

/// Append keyset paging to a query whose rows have `{prefix}date_created`
/// and `{prefix}{sid_column}` columns, then run it, reading one extra row to
/// learn whether another page follows.
pub(crate) async fn page<T, F>(
    store: &Store,
    mut query: Sql,
    date_column: &str,
    sid_column: &str,
    order: Order,
    request: &PageRequest,
    cursor_of: F,
) -> Result<Page<T>>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
    F: Fn(&T) -> Cursor,
{
    let (cmp, dir) = match order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    if let Some(after) = &request.after {
        query
            .push(format!(" AND ({date_column}, {sid_column}) {cmp} ("))
            .push_bind(after.date_created.millis())
            .push(", ")
            .push_bind(after.sid.clone())
            .push(")");
    }
    let size = request.size.clamp(1, 1000);
    query.push(format!(
        " ORDER BY {date_column} {dir}, {sid_column} {dir} LIMIT "
    ));
    query.push_bind(i64::from(size) + 1);
    if request.after.is_none() && request.number > 0 {
        query
            .push(" OFFSET ")
            .push_bind(i64::from(request.number) * i64::from(size));
    }
    let mut items: Vec<T> = sqlx::query_as_with(sqlx::AssertSqlSafe(query.text), query.args)
        .fetch_all(&store.pool)
        .await?;
    let next = if items.len() > size as usize {
        items.truncate(size as usize);
        items.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page { items, next })
}

/// `AND date_created >= after AND date_created < before`, for the bounds given.
pub(crate) fn created_between(q: &mut Sql, after: Option<Timestamp>, before: Option<Timestamp>) {
    if let Some(after) = after {
        q.push(" AND date_created >= ").push_bind(after.millis());
    }
    if let Some(before) = before {
        q.push(" AND date_created < ").push_bind(before.millis());
    }
}

// Columns are named, not `*`: sqlx's `Any` driver refuses a column SQLite
// declares BOOLEAN, so booleans are read as integers (`records::flag`), which
// both databases can cast them to.
const ROOMS: &str = "SELECT sid, account_sid, unique_name, status, type, max_participants,
        max_participant_duration, empty_room_timeout, unused_room_timeout, status_callback,
        status_callback_method, video_codecs, CAST(audio_only AS INTEGER) AS audio_only,
        CAST(record_participants_on_connect AS INTEGER) AS record_participants_on_connect,
        media_region, date_created, date_updated, end_time, end_reason
     FROM rooms";

const PUBLISHED_TRACKS: &str = "SELECT sid, room_sid, participant_sid, name, kind,
        CAST(enabled AS INTEGER) AS enabled, date_created, date_updated, date_unpublished
     FROM published_tracks";

const SUBSCRIBED_COLUMNS: &str =
    "SELECT s.subscriber_sid, s.track_sid, s.publisher_sid, s.room_sid,
        s.date_created, s.date_updated, t.name, t.kind, CAST(t.enabled AS INTEGER) AS enabled
     FROM subscribed_tracks s JOIN published_tracks t ON t.sid = s.track_sid";

impl Store {
    /// A room by SID, whatever its status.
    pub async fn room(&self, sid: RoomSid) -> Result<Option<RoomRecord>> {
        Ok(
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{ROOMS} WHERE sid = $1")))
                .bind(sid.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The node that runs (or ran) a room: its row's `node`.
    pub async fn room_node(&self, sid: RoomSid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT node FROM rooms WHERE sid = $1")
            .bind(sid.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The room in progress with this unique name.
    pub async fn room_in_progress_by_name(&self, name: &str) -> Result<Option<RoomRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ROOMS} WHERE unique_name = $1 AND status = 'in-progress'"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Rooms matching `filter`, newest first.
    pub async fn rooms(
        &self,
        filter: &RoomFilter,
        request: &PageRequest,
    ) -> Result<Page<RoomRecord>> {
        let mut q = Sql::new(&format!("{ROOMS} WHERE 1 = 1"));
        if let Some(status) = filter.status {
            q.push(" AND status = ")
                .push_bind(status.as_str().to_owned());
        }
        if let Some(name) = &filter.unique_name {
            q.push(" AND unique_name = ").push_bind(name.clone());
        }
        created_between(&mut q, filter.created_after, filter.created_before);
        page(
            self,
            q,
            "date_created",
            "sid",
            Order::NewestFirst,
            request,
            |r: &RoomRecord| Cursor {
                date_created: r.date_created,
                sid: r.sid.to_string(),
            },
        )
        .await
    }

    /// A participant of `room` by SID.
    pub async fn participant(
        &self,
        room: RoomSid,
        sid: ParticipantSid,
    ) -> Result<Option<ParticipantRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM participants WHERE sid = $1 AND room_sid = $2")
                .bind(sid.as_str())
                .bind(room.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The connected participant of `room` with this identity.
    pub async fn connected_participant_by_identity(
        &self,
        room: RoomSid,
        identity: &str,
    ) -> Result<Option<ParticipantRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM participants WHERE room_sid = $1 AND identity = $2 AND status = 'connected'",
        )
        .bind(room.as_str())
        .bind(identity)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Participants of `room` matching `filter`, in the order they joined
    /// (joins within the same millisecond are ordered by sid).
    pub async fn participants(
        &self,
        room: RoomSid,
        filter: &ParticipantFilter,
        request: &PageRequest,
    ) -> Result<Page<ParticipantRecord>> {
        let mut q = Sql::new("SELECT * FROM participants WHERE room_sid = ");
        q.push_bind(room.to_string());
        if let Some(status) = filter.status {
            q.push(" AND status = ")
                .push_bind(status.as_str().to_owned());
        }
        if let Some(identity) = &filter.identity {
            q.push(" AND identity = ").push_bind(identity.clone());
        }
        created_between(&mut q, filter.created_after, filter.created_before);
        page(
            self,
            q,
            "date_created",
            "sid",
            Order::OldestFirst,
            request,
            |p: &ParticipantRecord| Cursor {
                date_created: p.date_created,
                sid: p.sid.to_string(),
            },
        )
        .await
    }

    /// Tracks `participant` publishes now, oldest first.
    pub async fn published_tracks(
        &self,
        participant: ParticipantSid,
        request: &PageRequest,
    ) -> Result<Page<PublishedTrackRecord>> {
        let mut q = Sql::new(&format!(
            "{PUBLISHED_TRACKS} WHERE date_unpublished IS NULL AND participant_sid = "
        ));
        q.push_bind(participant.to_string());
        page(
            self,
            q,
            "date_created",
            "sid",
            Order::OldestFirst,
            request,
            |t: &PublishedTrackRecord| Cursor {
                date_created: t.date_created,
                sid: t.sid.to_string(),
            },
        )
        .await
    }

    /// The last track of each name `identity` published in `room`, now or
    /// before (name and SID, oldest first).
    pub async fn tracks_published_in(
        &self,
        room: RoomSid,
        identity: &str,
    ) -> Result<Vec<(String, TrackSid)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT t.name, t.sid FROM published_tracks t
             JOIN participants p ON p.sid = t.participant_sid
             WHERE t.room_sid = $1 AND p.identity = $2
             ORDER BY t.date_created, t.sid",
        )
        .bind(room.to_string())
        .bind(identity)
        .fetch_all(&self.pool)
        .await?;
        let mut last: Vec<(String, TrackSid)> = Vec::new();
        for (name, sid) in rows {
            let sid = sid.parse().map_err(|_| crate::StoreError::Corrupt {
                table: "published_tracks",
                detail: format!("sid {sid:?}"),
            })?;
            last.retain(|(n, _)| *n != name);
            last.push((name, sid));
        }
        Ok(last)
    }

    /// One track `participant` publishes now.
    pub async fn published_track(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
    ) -> Result<Option<PublishedTrackRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PUBLISHED_TRACKS}
             WHERE sid = $1 AND participant_sid = $2 AND date_unpublished IS NULL"
        )))
        .bind(track.as_str())
        .bind(participant.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Tracks `participant` receives now, oldest first.
    pub async fn subscribed_tracks(
        &self,
        participant: ParticipantSid,
        request: &PageRequest,
    ) -> Result<Page<SubscribedTrackRecord>> {
        let mut q = Sql::new(SUBSCRIBED_COLUMNS);
        q.push(" WHERE s.date_unsubscribed IS NULL AND s.subscriber_sid = ");
        q.push_bind(participant.to_string());
        page(
            self,
            q,
            "s.date_created",
            "s.track_sid",
            Order::OldestFirst,
            request,
            |t: &SubscribedTrackRecord| Cursor {
                date_created: t.date_created,
                sid: t.sid.to_string(),
            },
        )
        .await
    }

    /// One track `participant` receives now.
    pub async fn subscribed_track(
        &self,
        participant: ParticipantSid,
        track: TrackSid,
    ) -> Result<Option<SubscribedTrackRecord>> {
        let sql = format!(
            "{SUBSCRIBED_COLUMNS} WHERE s.subscriber_sid = $1 AND s.track_sid = $2
             AND s.date_unsubscribed IS NULL"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(participant.as_str())
            .bind(track.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            date_created: Timestamp::from_millis(1_700_000_000_123),
            sid: RoomSid::from_bytes([7; 16]).to_string(),
        };
        let text = cursor.to_string();
        assert_eq!(text.parse::<Cursor>(), Ok(cursor));
        for bad in [
            "",
            "PT",
            "PTx_RM",
            "PT12_short",
            "XX1_RM07070707070707070707070707070707",
            "PT1_RM0707070707070707070707070707070'",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}

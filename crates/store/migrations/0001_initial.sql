-- Salon's records. Times are integer milliseconds since the Unix epoch (UTC).
-- The schema uses only what SQLite and PostgreSQL share (partial indexes,
-- row-value comparisons), so the same statements serve both.

CREATE TABLE accounts (
    sid           TEXT    NOT NULL PRIMARY KEY,
    auth_token    TEXT    NOT NULL,
    friendly_name TEXT    NOT NULL,
    date_created  BIGINT  NOT NULL,
    date_updated  BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    sid           TEXT    NOT NULL PRIMARY KEY,
    account_sid   TEXT    NOT NULL REFERENCES accounts (sid),
    secret        TEXT    NOT NULL,
    friendly_name TEXT    NOT NULL,
    date_created  BIGINT  NOT NULL,
    date_updated  BIGINT  NOT NULL,
    date_revoked  BIGINT
);

CREATE TABLE rooms (
    sid                            TEXT    NOT NULL PRIMARY KEY,
    account_sid                    TEXT    NOT NULL,
    unique_name                    TEXT    NOT NULL,
    status                         TEXT    NOT NULL CHECK (status IN ('in-progress', 'completed', 'failed')),
    type                           TEXT    NOT NULL,
    max_participants               INTEGER NOT NULL,
    max_participant_duration       INTEGER NOT NULL, -- seconds
    empty_room_timeout             INTEGER NOT NULL, -- minutes, as Twilio reports it
    unused_room_timeout            INTEGER NOT NULL, -- minutes
    status_callback                TEXT,
    status_callback_method         TEXT    NOT NULL,
    video_codecs                   TEXT    NOT NULL, -- comma-separated, e.g. 'VP8,H264'
    audio_only                     BOOLEAN NOT NULL,
    record_participants_on_connect BOOLEAN NOT NULL,
    media_region                   TEXT    NOT NULL,
    date_created                   BIGINT  NOT NULL,
    date_updated                   BIGINT  NOT NULL,
    end_time                       BIGINT,
    end_reason                     TEXT
);
-- A unique name belongs to at most one room in progress.
CREATE UNIQUE INDEX rooms_unique_name_in_progress ON rooms (unique_name) WHERE status = 'in-progress';
CREATE INDEX rooms_by_status ON rooms (status, date_created, sid);
CREATE INDEX rooms_by_name ON rooms (unique_name, date_created);

CREATE TABLE participants (
    sid          TEXT   NOT NULL PRIMARY KEY,
    room_sid     TEXT   NOT NULL REFERENCES rooms (sid),
    account_sid  TEXT   NOT NULL,
    identity     TEXT   NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('connected', 'disconnected')),
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    start_time   BIGINT NOT NULL,
    end_time     BIGINT,
    end_reason   TEXT
);
CREATE INDEX participants_by_room ON participants (room_sid, date_created, sid);
CREATE INDEX participants_connected ON participants (status) WHERE status = 'connected';

CREATE TABLE published_tracks (
    sid              TEXT    NOT NULL PRIMARY KEY,
    room_sid         TEXT    NOT NULL REFERENCES rooms (sid),
    participant_sid  TEXT    NOT NULL REFERENCES participants (sid),
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('audio', 'video', 'data')),
    enabled          BOOLEAN NOT NULL,
    date_created     BIGINT  NOT NULL,
    date_updated     BIGINT  NOT NULL,
    date_unpublished BIGINT
);
CREATE INDEX published_tracks_by_participant ON published_tracks (participant_sid, date_created, sid);

CREATE TABLE subscribed_tracks (
    subscriber_sid    TEXT   NOT NULL REFERENCES participants (sid),
    track_sid         TEXT   NOT NULL REFERENCES published_tracks (sid),
    publisher_sid     TEXT   NOT NULL REFERENCES participants (sid),
    room_sid          TEXT   NOT NULL REFERENCES rooms (sid),
    date_created      BIGINT NOT NULL,
    date_updated      BIGINT NOT NULL,
    date_unsubscribed BIGINT,
    PRIMARY KEY (subscriber_sid, track_sid)
);
CREATE INDEX subscribed_tracks_by_publisher ON subscribed_tracks (publisher_sid);
CREATE INDEX subscribed_tracks_by_track ON subscribed_tracks (track_sid);

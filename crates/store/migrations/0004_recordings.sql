-- Recordings: one row per recorded track. The file lives under the data
-- directory (path relative to the recordings directory); the row keeps
-- what Twilio's Recording resource reports. Same SQL for SQLite and
-- PostgreSQL.
CREATE TABLE recordings (
    sid              TEXT    NOT NULL PRIMARY KEY,
    account_sid      TEXT    NOT NULL,
    room_sid         TEXT    NOT NULL,
    participant_sid  TEXT    NOT NULL,
    track_sid        TEXT    NOT NULL,
    track_name       TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('audio', 'video')),
    status           TEXT    NOT NULL CHECK (status IN ('processing', 'completed', 'failed', 'deleted')),
    codec            TEXT,              -- 'opus', 'VP8', 'H264' once known
    container_format TEXT    NOT NULL,  -- 'mka' or 'mkv'
    path             TEXT    NOT NULL,
    size             BIGINT  NOT NULL,  -- bytes
    duration         BIGINT  NOT NULL,  -- milliseconds
    start_time       BIGINT,            -- ms since the epoch of the first frame
    failure          TEXT,
    date_created     BIGINT  NOT NULL,
    date_updated     BIGINT  NOT NULL
);
CREATE INDEX recordings_by_date ON recordings (date_created, sid);
CREATE INDEX recordings_by_room ON recordings (room_sid, date_created, sid);

-- A room's recording rules (Twilio's RecordingRules resource), as JSON:
-- [{"type": "include", "all": true}, ...]. No row: the room's default
-- (everything when RecordParticipantsOnConnect, nothing otherwise).
CREATE TABLE recording_rules (
    room_sid     TEXT   NOT NULL PRIMARY KEY,
    rules        TEXT   NOT NULL,
    date_updated BIGINT NOT NULL
);

-- Compositions: a room's recordings mixed into one file by a background
-- job (ffmpeg). Layout and audio sources are kept as given (JSON).
CREATE TABLE compositions (
    sid                    TEXT    NOT NULL PRIMARY KEY,
    account_sid            TEXT    NOT NULL,
    room_sid               TEXT    NOT NULL,
    status                 TEXT    NOT NULL CHECK (status IN ('enqueued', 'processing', 'completed', 'deleted', 'failed')),
    format                 TEXT    NOT NULL CHECK (format IN ('mp4', 'webm')),
    resolution             TEXT    NOT NULL, -- e.g. '1280x720'
    video_layout           TEXT    NOT NULL, -- JSON
    audio_sources          TEXT    NOT NULL, -- JSON array
    trim                   BIGINT  NOT NULL, -- 0 or 1 (read through sqlx's Any driver)
    status_callback        TEXT,
    status_callback_method TEXT    NOT NULL,
    progress               BIGINT  NOT NULL, -- percent
    path                   TEXT    NOT NULL,
    size                   BIGINT  NOT NULL,
    duration               BIGINT  NOT NULL, -- milliseconds
    failure                TEXT,
    date_created           BIGINT  NOT NULL,
    date_updated           BIGINT  NOT NULL,
    date_completed         BIGINT
);
CREATE INDEX compositions_by_date ON compositions (date_created, sid);

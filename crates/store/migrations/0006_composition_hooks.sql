-- Composition hooks (Twilio's CompositionHooks): each enabled hook makes a
-- composition of every room that ends with recordings. What a composition
-- is made of is kept as given (JSON), as for compositions. Same SQL for
-- SQLite and PostgreSQL.
CREATE TABLE composition_hooks (
    sid                    TEXT    NOT NULL PRIMARY KEY,
    account_sid            TEXT    NOT NULL,
    friendly_name          TEXT    NOT NULL,
    enabled                BIGINT  NOT NULL, -- 0 or 1
    video_layout           TEXT    NOT NULL, -- JSON
    audio_sources          TEXT    NOT NULL, -- JSON array
    format                 TEXT    NOT NULL CHECK (format IN ('mp4', 'webm')),
    resolution             TEXT    NOT NULL,
    trim                   BIGINT  NOT NULL, -- 0 or 1
    status_callback        TEXT,
    status_callback_method TEXT    NOT NULL,
    date_created           BIGINT  NOT NULL,
    date_updated           BIGINT  NOT NULL
);
CREATE UNIQUE INDEX composition_hooks_by_name ON composition_hooks (account_sid, friendly_name);
CREATE INDEX composition_hooks_by_date ON composition_hooks (date_created, sid);

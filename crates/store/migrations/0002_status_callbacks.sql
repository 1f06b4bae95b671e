-- Status callbacks: an outbox. Each callback is written in the same
-- transaction as the room event that caused it, and deleted once the
-- sender has delivered it (or given up on it). Same SQL for SQLite and
-- PostgreSQL.

-- One ordered stream of callbacks per source (a room's SID today; a
-- composition's later): the next SequenceNumber to hand out. A row stays
-- after its room ends, because recording events still follow.
CREATE TABLE status_callback_streams (
    sid           TEXT   NOT NULL PRIMARY KEY,
    next_sequence BIGINT NOT NULL
);

CREATE TABLE status_callbacks (
    stream       TEXT    NOT NULL,          -- status_callback_streams.sid
    sequence     BIGINT  NOT NULL,          -- order within the stream, from 0
    account_sid  TEXT    NOT NULL,          -- whose auth token signs it
    event        TEXT    NOT NULL,          -- StatusCallbackEvent, for logs and metrics
    url          TEXT    NOT NULL,
    method       TEXT    NOT NULL CHECK (method IN ('GET', 'POST')),
    params       TEXT    NOT NULL,          -- application/x-www-form-urlencoded
    date_created BIGINT  NOT NULL,
    attempts     INTEGER NOT NULL,
    -- When to try next. Only the oldest callback of a stream (its head) has
    -- one: the others wait behind it, so delivery stays in order and the
    -- sender finds every due head with one range scan of the index below.
    next_attempt BIGINT,
    last_error   TEXT,
    PRIMARY KEY (stream, sequence)
);
CREATE INDEX status_callbacks_due ON status_callbacks (next_attempt) WHERE next_attempt IS NOT NULL;

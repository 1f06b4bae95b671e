-- When the server running the rooms in progress was last seen alive. It
-- writes the time every few seconds, so that after a crash the next start
-- ends what was left in progress at that time, not at the restart.
CREATE TABLE heartbeats (
    node    TEXT   NOT NULL PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

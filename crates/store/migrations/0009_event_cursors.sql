-- How far each node's recorder got in its run of room-event batches,
-- written in the same transaction as each batch. A batch whose commit
-- succeeded but whose answer was lost (the connection broke at that
-- moment) is tried again; the cursor tells that it is already in, so it is
-- neither applied twice (its status callbacks sent twice) nor refused by a
-- unique index and counted as dropped. `run` names one start of the node's
-- process, `seq` its batches in order.
CREATE TABLE event_cursors (
    node TEXT   NOT NULL PRIMARY KEY,
    run  BIGINT NOT NULL,
    seq  BIGINT NOT NULL
);

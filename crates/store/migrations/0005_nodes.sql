-- Several nodes may share one database (PostgreSQL): each room belongs to
-- the node that runs it, so that a node starting after a crash ends only
-- what *it* left in progress, not rooms other nodes are running. Rooms from
-- before this migration belong to the single node there was ('local').
-- (0004 is left to the recordings migration on another branch.)
ALTER TABLE rooms ADD COLUMN node TEXT NOT NULL DEFAULT 'local';
CREATE INDEX rooms_in_progress_by_node ON rooms (node) WHERE status = 'in-progress';

-- A composition runs on the node that queued it (its job queue is in that
-- process): a node starting again resumes its own unfinished compositions,
-- never one another node of a shared database is running. Compositions from
-- before this migration belong to the single node there was ('local').
ALTER TABLE compositions ADD COLUMN node TEXT NOT NULL DEFAULT 'local';
CREATE INDEX compositions_unfinished_by_node ON compositions (node)
    WHERE status IN ('enqueued', 'processing');

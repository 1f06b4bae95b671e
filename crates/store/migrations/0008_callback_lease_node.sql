-- Which node holds a callback's lease while it delivers it. Every node of
-- a shared database runs a sender over the one outbox: a head is leased
-- only if nobody took it meanwhile (the lease compares `next_attempt`),
-- and a node starting again re-arms its own leases, never one another live
-- node is delivering. NULL: not leased (waiting, or backing off).
ALTER TABLE status_callbacks ADD COLUMN lease_node TEXT;

-- 002_usage_version: a per-subject version on every usage row, so the ledger
-- can go down as well as up. The limit store gives each change of a
-- subject's counters a version that only grows (see lua/consume.lua); the
-- flusher writes it with the counts, and a row is replaced only by a newer
-- version (or, for an equal version, a higher count: rows written before
-- this migration, and the memory store before its first hydration). A stale
-- flush, whatever its count, changes nothing.
ALTER TABLE usage ADD COLUMN version bigint NOT NULL DEFAULT 0 CHECK (version >= 0);

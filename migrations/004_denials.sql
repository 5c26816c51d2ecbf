-- 004_denials: denials per subject and minute, and an index on the usage
-- ledger's periods, for the operator views (GET /admin/views/*).
--
-- Denials are not charged, so the ledger never sees them. Each gateway
-- counts its own per subject and minute in memory (on the denial path
-- only) and adds the counts here every second, additively: rows of one
-- subject and minute from several instances sum up. Rows older than a day
-- are deleted by the same flusher; the view reads at most the last 24 hours.
CREATE TABLE denials (
  subject_id text        COLLATE "C" NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 256),
  -- Start of the minute (UTC, whole minute) on the counting gateway's clock.
  minute     timestamptz NOT NULL,
  count      bigint      NOT NULL CHECK (count > 0),
  PRIMARY KEY (subject_id, minute)
);

-- The views scan a window of minutes across subjects.
CREATE INDEX denials_minute_idx ON denials (minute);

-- The near-limits and top-consumers views read the rows of one period
-- across every subject: without this, every such read scans the whole
-- ledger (the primary key leads with subject_id).
CREATE INDEX usage_period_counter_idx ON usage (period_start, counter_id);

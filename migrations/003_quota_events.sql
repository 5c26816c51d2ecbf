-- 003_quota_events: every quota event the deliverer took from the outbox
-- (src/core/quota-events.ts), and its delivery to each webhook endpoint
-- subscribed to its type (docs/events.md). A delivery is a small state
-- machine: pending (next_attempt_at is when it is due; a deliverer that
-- takes it pushes next_attempt_at past its attempt, a lease that a crash
-- lets run out) → delivered, or → dead_lettered after the last attempt;
-- the admin API's redeliver puts it back to pending.
CREATE TABLE quota_events (
  id          text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 100),
  type        text        NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
  -- data.subject, when the event has one, for the admin API's filter.
  subject_id  text,
  occurred_at timestamptz NOT NULL,
  data        jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
  recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Newest first, all or by subject; (occurred_at, id) is the page cursor.
CREATE INDEX quota_events_occurred_idx ON quota_events (occurred_at DESC, id DESC);
CREATE INDEX quota_events_subject_idx ON quota_events (subject_id, occurred_at DESC, id DESC) WHERE subject_id IS NOT NULL;

CREATE TABLE webhook_deliveries (
  event_id        text        NOT NULL REFERENCES quota_events (id) ON DELETE CASCADE,
  -- The endpoint's name (events.webhooks[].name, else its index): never its URL.
  endpoint        text        NOT NULL CHECK (length(endpoint) BETWEEN 1 AND 64),
  status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead_lettered')),
  -- Attempts started, the one in flight included; an attempt's outcome is
  -- written only while this is still its number (a fence against a late one).
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_status     integer,
  last_error      text        CHECK (length(last_error) <= 200),
  delivered_at    timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, endpoint)
);

-- The due pending deliveries of an endpoint, oldest first; and the dead letters.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_dead_idx ON webhook_deliveries (endpoint) WHERE status = 'dead_lettered';

-- 001_initial: subjects, API keys, the usage ledger, credit grants, the audit log.
--
-- Runs on PostgreSQL 14+ and on PGlite, inside one transaction (see
-- src/db/migrations.ts). Times are timestamptz; counts and amounts are bigint
-- in cost units. Subjects of usage rows, credit grants and audit rows need not
-- exist in `subjects`: JWT callers, keys from gateway.yaml and anonymous
-- clients have usage too, so those tables carry no foreign key to it.

-- A caller that limits are counted against, with its plan (a plan name from
-- gateway.yaml; not checked here, since plans live in the config).
CREATE TABLE subjects (
  -- Byte order ("C"), so listings page alike on every server and on PGlite.
  id           text        COLLATE "C" PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 256),
  plan         text        NOT NULL CHECK (length(plan) BETWEEN 1 AND 64),
  -- Per-subject limit overrides, shaped like a plan's limits and quotas; NULL: none.
  overrides    jsonb       CHECK (overrides IS NULL OR jsonb_typeof(overrides) = 'object'),
  metadata     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  -- Set while suspended: the subject's keys are refused.
  suspended_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- API keys by the SHA-256 of the key; the key itself is never stored.
CREATE TABLE api_keys (
  id              text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  subject_id      text        COLLATE "C" NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
  -- The first characters of the key (`qg_AbC…`), for people to recognise it.
  display_prefix  text        NOT NULL CHECK (length(display_prefix) BETWEEN 1 AND 32),
  key_hash        text        NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  name            text        CHECK (length(name) <= 200),
  scopes          text[]      NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- Refused at and after this instant; a rotated key gets its grace deadline here.
  expires_at      timestamptz,
  revoked_at      timestamptz,
  -- Written in batches, never once per request: may lag by one flush.
  last_used_at    timestamptz,
  -- The key this one replaced by rotation; a key is replaced at most once.
  replaces_key_id text        UNIQUE REFERENCES api_keys (id) ON DELETE SET NULL
);

CREATE INDEX api_keys_subject_idx ON api_keys (subject_id, created_at, id);

-- The usage ledger: absolute counts copied from the limit store, per subject,
-- counter (`w:hour`, `q:search:month`) and calendar period. Written with a
-- monotonic upsert, so a retried or duplicated flush never lowers or
-- double-counts. The primary key serves the reads by subject and period.
CREATE TABLE usage (
  subject_id   text        NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 256),
  counter_id   text        NOT NULL CHECK (length(counter_id) BETWEEN 1 AND 200),
  period_start timestamptz NOT NULL,
  count        bigint      NOT NULL CHECK (count >= 0),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subject_id, counter_id, period_start)
);

-- Prepaid credits of a subject for one metered metric.
CREATE TABLE credit_grants (
  id         bigserial   PRIMARY KEY,
  subject_id text        NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 256),
  metric     text        NOT NULL CHECK (length(metric) BETWEEN 1 AND 64),
  amount     bigint      NOT NULL CHECK (amount > 0),
  granted_at timestamptz NOT NULL,
  expires_at timestamptz,
  reason     text        CHECK (length(reason) <= 500)
);

CREATE INDEX credit_grants_subject_metric_idx ON credit_grants (subject_id, metric);

-- Every change made through the admin API or the CLI, written in the same
-- transaction as the change. `target` is what was acted on (`subject:acme`,
-- `key:k_…`); `subject_id` the subject it belongs to, when there is one.
CREATE TABLE audit_log (
  id         bigserial   PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 256),
  action     text        NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
  target     text        NOT NULL CHECK (length(target) BETWEEN 1 AND 512),
  subject_id text,
  details    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);

-- Newest first, by target, by subject, or all; (at, id) is the page cursor.
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target, at DESC, id DESC);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_id, at DESC, id DESC) WHERE subject_id IS NOT NULL;

-- The jetworker outbox schema. Every statement is idempotent, and the
-- whole script runs as one transaction serialised by an advisory lock,
-- so concurrent migrations of several service instances are safe.
-- The names in double braces are replaced by validated, quoted identifiers.

SELECT pg_advisory_xact_lock({{lock}});

CREATE SCHEMA IF NOT EXISTS {{schema}};

-- Rows waiting for the relay. id orders rows (per key: commit order);
-- msg_id is the Nats-Msg-Id the relay publishes with.
CREATE TABLE IF NOT EXISTS {{table}} (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id       text NOT NULL DEFAULT gen_random_uuid()::text,
    subject      text NOT NULL,
    payload      bytea NOT NULL DEFAULT ''::bytea,
    headers      jsonb,
    order_key    text,
    available_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    stream       text,
    stream_seq   bigint
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01);

-- The relay's claims: due, unpublished rows in available_at order,
-- rows without a key and rows with one apart, so that neither claim
-- reads past the other's rows.
CREATE INDEX IF NOT EXISTS {{due_idx}} ON {{table}} (available_at, id) WHERE published_at IS NULL AND order_key IS NULL;
CREATE INDEX IF NOT EXISTS {{key_due_idx}} ON {{table}} (available_at, id) WHERE published_at IS NULL AND order_key IS NOT NULL;
-- Per-key ordering: is there an earlier unpublished row of this key, and
-- which rows follow a key's first one?
CREATE INDEX IF NOT EXISTS {{key_idx}} ON {{table}} (order_key, id) WHERE order_key IS NOT NULL AND published_at IS NULL;
-- Pruning of rows the relay marked published (RelayConfig.KeepPublished).
CREATE INDEX IF NOT EXISTS {{published_idx}} ON {{table}} (published_at) WHERE published_at IS NOT NULL;

-- Rows the server refused for good, moved aside with the reason.
CREATE TABLE IF NOT EXISTS {{dead}} (
    id           bigint PRIMARY KEY,
    msg_id       text NOT NULL,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    headers      jsonb,
    order_key    text,
    available_at timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    reason       text NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {{dead_idx}} ON {{dead}} (failed_at, id);

-- One notification per inserting transaction (the server folds equal
-- notifications of a transaction into one) wakes the relays at commit,
-- whoever inserted: Enqueue, COPY, or another service's plain INSERT.
CREATE OR REPLACE FUNCTION {{notify_fn}}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify({{channel}}, '');
    RETURN NULL;
END
$$;

-- Config.DisableNotify leaves it out (and drops it).
DO $$
DECLARE
    present boolean := EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {{table_literal}}::regclass AND tgname = {{trigger_literal}});
BEGIN
    IF {{notify}} AND NOT present THEN
        CREATE TRIGGER {{trigger}} AFTER INSERT ON {{table}} FOR EACH STATEMENT EXECUTE FUNCTION {{notify_fn}}();
    ELSIF NOT {{notify}} AND present THEN
        DROP TRIGGER {{trigger}} ON {{table}};
    END IF;
END
$$;

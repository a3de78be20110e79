-- Up Migration
-- ha-signer's additions. Every added column has a default so that Aztec's statements, which do not name them,
-- keep working unchanged. The invariants that can live inside PostgreSQL live here, so every client (ours or
-- Aztec's published package) is held to them.

-- lease_expires_at: the database-time lease of an in-progress duty held by an ha-signer node; NULL means the holder
-- is a client without leases (Aztec's package), whose duty may never be taken over with a different message hash
-- (it returns its signature even when its record fails). checkpoint_number is not added here: it is Aztec's column,
-- created only by Aztec's migration 2_add-checkpoint-number (`ha-signer migrate up --aztec-schema 2`, or Aztec's own
-- runner). Releases before 0.2 added it here; see docs/migrations.md for how such databases are settled.
-- ALTER TABLE also takes validator_duties' exclusive lock: no client writes a duty until this migration commits,
-- so the adoption check below sees every row.
ALTER TABLE validator_duties
  ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMPTZ DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS takeovers INTEGER NOT NULL DEFAULT 0;

-- One database per rollup: the rollup this database protects, bound at first use.
CREATE TABLE IF NOT EXISTS ha_signer_rollup_binding (
  singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
  rollup_address VARCHAR(42) NOT NULL CHECK (rollup_address ~ '^0x[0-9a-f]{40}$'),
  bound_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  previous_rollup_addresses VARCHAR(42)[] NOT NULL DEFAULT '{}'
);

-- Adoption is explicit: `ha-signer migrate up --rollup-address 0x..` passes the rollup in the session setting
-- ha_signer.bind_rollup, bound here in the same transaction that creates the guards. A database that already holds
-- duties (an existing Aztec HA database) is not adopted without it: binding "at first use" would bind it to whichever
-- node writes first, possibly an old rollup's node still running during an upgrade.
INSERT INTO ha_signer_rollup_binding (rollup_address)
  SELECT lower(current_setting('ha_signer.bind_rollup'))
  WHERE coalesce(current_setting('ha_signer.bind_rollup', true), '') <> ''
  ON CONFLICT DO NOTHING;
DO $$
DECLARE
  found TEXT;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ha_signer_rollup_binding) AND EXISTS (SELECT 1 FROM validator_duties) THEN
    SELECT string_agg(format('%s (newest slot %s, %s duties)', rollup_address, newest, n), ', ' ORDER BY newest DESC)
      INTO found
      FROM (SELECT rollup_address, max(slot) AS newest, count(*) AS n FROM validator_duties GROUP BY rollup_address) r;
    RAISE EXCEPTION USING ERRCODE = 'HA007',
      MESSAGE = format('this database already holds duties and is bound to no rollup; found: %s', found),
      HINT = 'adopt it with `ha-signer migrate up --rollup-address <the rollup your validators sign for>` (docs/migrations.md)';
  END IF;
END
$$;

-- Pruning never reopens a slot: signed duties are deleted only at or below this per-validator low watermark,
-- and no duty at or below it may be inserted again.
CREATE TABLE IF NOT EXISTS ha_signer_watermarks (
  rollup_address VARCHAR(42) NOT NULL,
  validator_address VARCHAR(42) NOT NULL,
  low_slot BIGINT NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (rollup_address, validator_address)
);

CREATE OR REPLACE FUNCTION ha_signer_bound_rollup() RETURNS VARCHAR(42) LANGUAGE sql STABLE AS $$
  SELECT rollup_address FROM ha_signer_rollup_binding WHERE singleton
$$;

CREATE OR REPLACE FUNCTION ha_signer_duties_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bound VARCHAR(42);
  low BIGINT;
BEGIN
  bound := ha_signer_bound_rollup();
  IF bound IS NULL THEN
    INSERT INTO ha_signer_rollup_binding (rollup_address) VALUES (lower(NEW.rollup_address)) ON CONFLICT DO NOTHING;
    bound := ha_signer_bound_rollup();
  END IF;
  IF lower(NEW.rollup_address) <> bound THEN
    RAISE EXCEPTION USING ERRCODE = 'HA001',
      MESSAGE = format('this database is bound to rollup %s and refuses duties for rollup %s', bound, NEW.rollup_address),
      HINT = 'use one database per rollup version; after a rollup upgrade run `ha-signer rebind-rollup`';
  END IF;
  SELECT w.low_slot INTO low FROM ha_signer_watermarks w
    WHERE w.rollup_address = NEW.rollup_address AND w.validator_address = NEW.validator_address;
  IF low IS NOT NULL AND NEW.slot <= low THEN
    RAISE EXCEPTION USING ERRCODE = 'HA002',
      MESSAGE = format('slot %s of validator %s is at or below its low watermark %s (pruned history); refusing the duty', NEW.slot, NEW.validator_address, low);
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ha_signer_duties_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'signed' THEN
    RAISE EXCEPTION USING ERRCODE = 'HA003',
      MESSAGE = format('duty %s slot %s of validator %s is signed and immutable', OLD.duty_type, OLD.slot, OLD.validator_address);
  END IF;
  IF (NEW.rollup_address, NEW.validator_address, NEW.slot, NEW.duty_type, NEW.block_index_within_checkpoint)
     IS DISTINCT FROM (OLD.rollup_address, OLD.validator_address, OLD.slot, OLD.duty_type, OLD.block_index_within_checkpoint) THEN
    RAISE EXCEPTION USING ERRCODE = 'HA003', MESSAGE = 'the key of a duty cannot change';
  END IF;
  IF NEW.message_hash <> OLD.message_hash AND OLD.lease_expires_at IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'HA004',
      MESSAGE = format('duty %s slot %s of validator %s is held by a client without a lease (node %s); it may only be taken over with the same message hash',
                       OLD.duty_type, OLD.slot, OLD.validator_address, OLD.node_id);
  END IF;
  IF NEW.status = 'signed' AND NEW.signature IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'HA003', MESSAGE = 'a signed duty needs its signature';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ha_signer_duties_before_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bound VARCHAR(42);
  low BIGINT;
BEGIN
  IF OLD.status <> 'signed' THEN
    RETURN OLD;
  END IF;
  bound := ha_signer_bound_rollup();
  IF bound IS NOT NULL AND lower(OLD.rollup_address) <> bound THEN
    -- History of a previous rollup is kept, silently: Aztec's startup deletes other rollups' duties.
    RETURN NULL;
  END IF;
  SELECT w.low_slot INTO low FROM ha_signer_watermarks w
    WHERE w.rollup_address = OLD.rollup_address AND w.validator_address = OLD.validator_address;
  IF low IS NULL OR OLD.slot > low THEN
    RAISE EXCEPTION USING ERRCODE = 'HA005',
      MESSAGE = format('refusing to delete signed duty %s slot %s of validator %s above its low watermark %s', OLD.duty_type, OLD.slot, OLD.validator_address, coalesce(low::text, '(none)')),
      HINT = 'signed duties are pruned only by ha-signer, which raises the watermark first; leave old-duty cleanup of other clients off';
  END IF;
  RETURN OLD;
END
$$;

-- Wakes nodes waiting for an in-progress duty (LISTEN ha_signer_duty), whoever completes or releases it.
CREATE OR REPLACE FUNCTION ha_signer_duties_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r validator_duties%ROWTYPE;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  PERFORM pg_notify('ha_signer_duty', concat_ws('/', lower(r.rollup_address), lower(r.validator_address), r.slot, r.duty_type, r.block_index_within_checkpoint));
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS ha_signer_before_insert ON validator_duties;
CREATE TRIGGER ha_signer_before_insert BEFORE INSERT ON validator_duties
  FOR EACH ROW EXECUTE FUNCTION ha_signer_duties_before_insert();
DROP TRIGGER IF EXISTS ha_signer_before_update ON validator_duties;
CREATE TRIGGER ha_signer_before_update BEFORE UPDATE ON validator_duties
  FOR EACH ROW EXECUTE FUNCTION ha_signer_duties_before_update();
DROP TRIGGER IF EXISTS ha_signer_before_delete ON validator_duties;
CREATE TRIGGER ha_signer_before_delete BEFORE DELETE ON validator_duties
  FOR EACH ROW EXECUTE FUNCTION ha_signer_duties_before_delete();
DROP TRIGGER IF EXISTS ha_signer_after_change ON validator_duties;
CREATE TRIGGER ha_signer_after_change AFTER UPDATE OR DELETE ON validator_duties
  FOR EACH ROW EXECUTE FUNCTION ha_signer_duties_notify();

-- Down Migration
-- Removes ha-signer's guards and nothing else: every row stays (validator_duties, ha_signer_watermarks,
-- ha_signer_rollup_binding) and so do the columns lease_expires_at and takeovers, so `migrate up` restores the same
-- protection. Without these triggers the database no longer refuses a pruned slot, so while any watermark exists
-- this is refused unless the session says ha_signer.force_down = 'on' (`ha-signer migrate down --force`).
DO $$
DECLARE
  pruned TEXT;
BEGIN
  IF to_regclass('ha_signer_watermarks') IS NOT NULL AND EXISTS (SELECT 1 FROM ha_signer_watermarks)
     AND coalesce(current_setting('ha_signer.force_down', true), '') <> 'on' THEN
    SELECT format('%s validator(s) have pruned history (highest low watermark: slot %s)', count(*), max(low_slot))
      INTO pruned FROM ha_signer_watermarks;
    RAISE EXCEPTION USING ERRCODE = 'HA006',
      MESSAGE = format('refusing to remove the protection triggers: %s, and without the triggers a pruned slot could be signed again with another hash', pruned),
      HINT = 'keep the protection; if you must, `ha-signer migrate down --force` removes it and prints what is lost until `migrate up`';
  END IF;
END
$$;
DROP TRIGGER IF EXISTS ha_signer_after_change ON validator_duties;
DROP TRIGGER IF EXISTS ha_signer_before_delete ON validator_duties;
DROP TRIGGER IF EXISTS ha_signer_before_update ON validator_duties;
DROP TRIGGER IF EXISTS ha_signer_before_insert ON validator_duties;
DROP FUNCTION IF EXISTS ha_signer_duties_notify();
DROP FUNCTION IF EXISTS ha_signer_duties_before_delete();
DROP FUNCTION IF EXISTS ha_signer_duties_before_update();
DROP FUNCTION IF EXISTS ha_signer_duties_before_insert();
DROP FUNCTION IF EXISTS ha_signer_bound_rollup();

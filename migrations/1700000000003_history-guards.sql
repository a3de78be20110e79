-- Up Migration
-- Guards of the signed history against statements that row triggers never see.

-- DROP TABLE validator_duties / schema_version is refused while this view depends on them: Aztec's
-- `migrate-ha-db down` (its migration 1 drops both tables, without CASCADE) and ha-signer releases before 0.2
-- (whose down did the same) fail instead of destroying the history. The view reads no column, so Aztec's own
-- column changes (ADD/DROP/ALTER COLUMN in its later migrations) are not blocked by it.
CREATE OR REPLACE VIEW ha_signer_history_guard AS
  SELECT true AS guards_validator_duties_and_schema_version
  FROM validator_duties, schema_version
  WHERE false;
COMMENT ON VIEW ha_signer_history_guard IS
  'Exists so that DROP TABLE validator_duties or schema_version fails: the signed history is dropped only with an explicit CASCADE';

-- TRUNCATE fires no row trigger, so the pruning guard (HA005) would not see it.
CREATE OR REPLACE FUNCTION ha_signer_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'HA005',
    MESSAGE = format('refusing to truncate %s: it holds signed history (or pruning watermarks) that keeps validators from being slashed', TG_TABLE_NAME),
    HINT = 'signed duties are pruned only by ha-signer, which raises the watermark first';
END
$$;
DROP TRIGGER IF EXISTS ha_signer_before_truncate ON validator_duties;
CREATE TRIGGER ha_signer_before_truncate BEFORE TRUNCATE ON validator_duties
  FOR EACH STATEMENT EXECUTE FUNCTION ha_signer_refuse_truncate();

-- A watermark only ever rises: deleting or lowering one would reopen pruned slots.
CREATE OR REPLACE FUNCTION ha_signer_watermarks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.low_slot < OLD.low_slot
     OR (NEW.rollup_address, NEW.validator_address) IS DISTINCT FROM (OLD.rollup_address, OLD.validator_address) THEN
    RAISE EXCEPTION USING ERRCODE = 'HA002',
      MESSAGE = format('refusing to lower or remove the low watermark %s of validator %s: slots at or below it were pruned', OLD.low_slot, OLD.validator_address);
  END IF;
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS ha_signer_watermarks_guard ON ha_signer_watermarks;
CREATE TRIGGER ha_signer_watermarks_guard BEFORE UPDATE OR DELETE ON ha_signer_watermarks
  FOR EACH ROW EXECUTE FUNCTION ha_signer_watermarks_guard();
DROP TRIGGER IF EXISTS ha_signer_watermarks_before_truncate ON ha_signer_watermarks;
CREATE TRIGGER ha_signer_watermarks_before_truncate BEFORE TRUNCATE ON ha_signer_watermarks
  FOR EACH STATEMENT EXECUTE FUNCTION ha_signer_refuse_truncate();

-- Down Migration
-- Removes the TRUNCATE and watermark guards; no row of any table is touched. The view ha_signer_history_guard stays:
-- after a full `ha-signer migrate down` it still keeps Aztec's `migrate-ha-db down` from dropping the signed history.
-- To drop Aztec's tables on purpose, `DROP VIEW ha_signer_history_guard` by hand first.
DROP TRIGGER IF EXISTS ha_signer_watermarks_before_truncate ON ha_signer_watermarks;
DROP TRIGGER IF EXISTS ha_signer_watermarks_guard ON ha_signer_watermarks;
DROP FUNCTION IF EXISTS ha_signer_watermarks_guard();
DROP TRIGGER IF EXISTS ha_signer_before_truncate ON validator_duties;
DROP FUNCTION IF EXISTS ha_signer_refuse_truncate();

-- Up Migration
-- Aztec's `2_add-checkpoint-number` (AztecProtocol/aztec-packages, yarn-project/validator-ha-signer/src/db/migrations):
-- adds validator_duties.checkpoint_number BIGINT NOT NULL DEFAULT 0 and moves schema_version from 1 to 2. Recorded in
-- `pgmigrations` under that name, so Aztec's runner sees it applied. Two states left by ha-signer releases before
-- 0.2, which added the column themselves while reporting version 1, are settled without losing a value:
--   - the column exists (same definition as Aztec's): kept as it is;
--   - `migrate up` at schema 1 renamed it to ha_signer_checkpoint_number: renamed back, values and all.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = 'validator_duties' AND column_name = 'checkpoint_number') THEN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'validator_duties' AND column_name = 'ha_signer_checkpoint_number') THEN
      ALTER TABLE validator_duties RENAME COLUMN ha_signer_checkpoint_number TO checkpoint_number;
    ELSE
      ALTER TABLE validator_duties ADD COLUMN checkpoint_number BIGINT NOT NULL DEFAULT 0;
    END IF;
  END IF;
END
$$;
UPDATE schema_version SET version = 2 WHERE version = 1 AND NOT EXISTS (SELECT 1 FROM schema_version WHERE version = 2);

-- Down Migration
-- Never run by ha-signer: Aztec schema versions only move up here (Aztec's own down drops checkpoint_number).
SELECT 1;

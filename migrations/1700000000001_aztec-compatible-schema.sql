-- Up Migration
-- The schema of the published @aztec/validator-ha-signer (schema_version 1), statement for statement, so that a
-- database migrated by `ha-signer migrate up` also serves Aztec's own HA signer, and one migrated by Aztec's
-- `migrate-ha-db up` can be taken over by ours (every statement is IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS schema_version (
  version INTEGER PRIMARY KEY,
  applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS validator_duties (
  rollup_address VARCHAR(42) NOT NULL,
  validator_address VARCHAR(42) NOT NULL,
  slot BIGINT NOT NULL,
  block_number BIGINT NOT NULL,
  block_index_within_checkpoint INTEGER NOT NULL DEFAULT 0,
  duty_type VARCHAR(30) NOT NULL CHECK (duty_type IN ('BLOCK_PROPOSAL', 'CHECKPOINT_PROPOSAL', 'ATTESTATION', 'ATTESTATIONS_AND_SIGNERS', 'GOVERNANCE_VOTE', 'SLASHING_VOTE')),
  status VARCHAR(20) NOT NULL CHECK (status IN ('signing', 'signed')),
  message_hash VARCHAR(66) NOT NULL,
  signature VARCHAR(132),
  node_id VARCHAR(255) NOT NULL,
  lock_token VARCHAR(64) NOT NULL,
  started_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  completed_at TIMESTAMP,
  error_message TEXT,

  PRIMARY KEY (rollup_address, validator_address, slot, duty_type, block_index_within_checkpoint),
  CHECK (completed_at IS NULL OR completed_at >= started_at)
);

CREATE INDEX IF NOT EXISTS idx_validator_duties_status ON validator_duties(status, started_at);
CREATE INDEX IF NOT EXISTS idx_validator_duties_node ON validator_duties(node_id, started_at);

-- Aztec's schema version goes only into an empty schema_version (a new database gets 1, what the published `latest`
-- package accepts). An existing database keeps its version (1 or 2): inserting 1 beside Aztec's 2 would make the
-- table say both. `ha-signer migrate up --aztec-schema 2` moves a database to 2 the way Aztec's migration 2 does.
INSERT INTO schema_version (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_version);

-- Down Migration
-- Deliberately touches nothing. validator_duties and schema_version are Aztec's tables (they may have been created
-- by Aztec's `migrate-ha-db up`, not by us) and validator_duties is the signed history that keeps validators from
-- being slashed: no ha-signer down migration drops, truncates or alters them. Reverting this migration only
-- removes its entry from ha_signer_migrations.
SELECT 1;

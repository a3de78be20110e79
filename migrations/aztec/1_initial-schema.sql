-- Up Migration
-- Aztec's migration track, recorded in Aztec's own node-pg-migrate table `pgmigrations` under Aztec's migration
-- names, so that Aztec's `migrate-ha-db up` finds them applied and runs nothing. ha-signer runs this track only
-- after its own migrations/, whose 1700000000001 creates exactly Aztec's `1_initial-schema` tables, so this step
-- only records the name.
SELECT 1;

-- Down Migration
-- Never run by ha-signer (its `migrate down` reverts only migrations/); touches nothing.
SELECT 1;

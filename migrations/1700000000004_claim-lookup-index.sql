-- Up Migration
-- Created the index idx_validator_duties_claim_lookup (validator_address, message_hash) for the JSON-RPC claim lookup.
-- Superseded by 1700000000005_cheaper-writes, which drops it (the lookup now uses the primary key): building it
-- here only for 0005 to drop it would hold writes for the length of a full-table index build on a large history.
-- Databases that ran the old text keep the index until 0005 runs.
SELECT 1;

-- Down Migration
DROP INDEX IF EXISTS idx_validator_duties_claim_lookup;

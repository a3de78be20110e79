-- Up Migration
-- The JSON-RPC claim lookup (src/protection/claims-lookup.ts) now searches the validator's newest slots through the
-- primary key. The (validator_address, message_hash) index of 1700000000004 put every new duty on a random leaf page
-- of an index as large as the history (message hashes are digests): at 1 million stored duties, 1.2 full-page
-- images and 9 KiB of WAL per signed duty instead of 0.1 and 2.3 KiB, on every signing commit of every client.
DROP INDEX IF EXISTS idx_validator_duties_claim_lookup;

-- Down Migration
-- Restores the index 1700000000004 expects (a build over the whole table: writes wait for it).
CREATE INDEX IF NOT EXISTS idx_validator_duties_claim_lookup ON validator_duties (validator_address, message_hash);

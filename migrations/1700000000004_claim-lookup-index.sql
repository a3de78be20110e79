-- Up Migration
-- The signer's protected Web3Signer JSON-RPC signs a stock Aztec node's consensus digest only when a claim for
-- (rollup, validator, message hash) exists (src/protection/claims-lookup.ts). The primary key starts with rollup and
-- validator but not the hash, so without this index each lookup scans every duty of the validator.
CREATE INDEX IF NOT EXISTS idx_validator_duties_claim_lookup ON validator_duties (validator_address, message_hash);

-- Down Migration
DROP INDEX IF EXISTS idx_validator_duties_claim_lookup;

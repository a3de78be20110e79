-- Up Migration
-- Two costs every signing commit and every prune paid for nothing:
-- 1. The JSON-RPC claim lookup (src/protection/claims-lookup.ts) now searches the validator's newest slots through
--    the primary key. The (validator_address, message_hash) index of 1700000000004 put every new duty on a random
--    leaf page of an index as large as the history (message hashes are digests): at 1 million stored duties, 1.2
--    full-page images and 9 KiB of WAL per signed duty instead of 0.1 and 2.3 KiB.
DROP INDEX IF EXISTS idx_validator_duties_claim_lookup;
-- 2. Notifications wake waiters of an in-progress duty; a signed row never changes again except to be pruned, and
--    nobody waits on it. Notifying for those deletes sent one message per pruned row to every signer's LISTEN
--    connection (10,000 per prune round at 10 million stored duties), parsed on the signing event loop.
DROP TRIGGER IF EXISTS ha_signer_after_change ON validator_duties;
CREATE TRIGGER ha_signer_after_change AFTER UPDATE OR DELETE ON validator_duties
  FOR EACH ROW WHEN (OLD.status = 'signing') EXECUTE FUNCTION ha_signer_duties_notify();

-- Down Migration
-- Restores what 1700000000004 and 1700000000002 left: the index (a build over the whole table: writes wait for
-- it) and a notification for every update and delete.
DROP TRIGGER IF EXISTS ha_signer_after_change ON validator_duties;
CREATE TRIGGER ha_signer_after_change AFTER UPDATE OR DELETE ON validator_duties
  FOR EACH ROW EXECUTE FUNCTION ha_signer_duties_notify();
CREATE INDEX IF NOT EXISTS idx_validator_duties_claim_lookup ON validator_duties (validator_address, message_hash);

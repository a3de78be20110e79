/** What `migrate up|down` did and did not touch, in words an operator can act on. */
import type { AztecSchemaVersion } from './schema.js';

export interface TableCounts {
  validatorDuties: number;
  signedDuties: number;
  watermarks: number;
}

export interface MigrationReport {
  direction: 'up' | 'down';
  /** Migrations applied (up; Aztec's track prefixed `aztec:`) or reverted (down). */
  applied: string[];
  /** Aztec's schema_version after the run. */
  aztecSchemaVersion?: AztecSchemaVersion;
  /** Which Aztec releases accept the database now (up). */
  acceptedBy?: string;
  counts: TableCounts;
  boundRollup?: string;
  /** Down: what was removed. */
  removed?: string[];
  /** Down: what was left exactly as it was. */
  untouched?: string[];
  /** Down with --force: the protection that is gone until `migrate up`. */
  protectionLost?: string;
  notes: string[];
}

/** The releases that accept a database at each Aztec schema version (npm, as of 4.3.0-nightly.20260417). */
export function describeSchema(version: AztecSchemaVersion): string {
  return version === 1
    ? 'Aztec schema 1: accepted by @aztec/validator-ha-signer 4.1.x (npm `latest`, 4.1.2) and 4.3.0-nightly.20260417, and by ' +
        'ha-signer; Aztec releases that include migration 2_add-checkpoint-number refuse it until `ha-signer migrate up --aztec-schema 2` ' +
        '(or their own `migrate-ha-db up`)'
    : 'Aztec schema 2: accepted by Aztec releases that include migration 2_add-checkpoint-number (none published on npm as of ' +
        '4.3.0-nightly.20260417) and by ha-signer; @aztec/validator-ha-signer 4.1.x and 4.3.0-nightly.20260417 refuse it ' +
        '("schema version 2 is newer than expected")';
}

const REMOVED_BY: Record<string, string> = {
  '1700000000005_cheaper-writes':
    'nothing: its down rebuilds the index idx_validator_duties_claim_lookup and notifies again on deletes of signed duties',
  '1700000000004_claim-lookup-index': "the index idx_validator_duties_claim_lookup if present (ha-signer's own; no row touched)",
  '1700000000003_history-guards':
    'the TRUNCATE refusal on validator_duties and the watermark guard triggers (the view ha_signer_history_guard, which keeps ' +
    "Aztec's `migrate-ha-db down` from dropping the history, stays)",
  '1700000000002_ha-signer-protection':
    'the protection triggers on validator_duties (rollup binding HA001, watermark HA002, immutability HA003, foreign holder HA004, ' +
    'pruning HA005, notifications) and their functions',
  '1700000000001_aztec-compatible-schema': "only its entry in ha_signer_migrations (Aztec's tables stay, with every row)",
};

export function describeDown(
  reverted: string[],
  before: TableCounts,
  after: TableCounts,
  protectionLost: string | undefined,
): Pick<MigrationReport, 'removed' | 'untouched' | 'protectionLost' | 'notes'> {
  const removed = reverted.map((name) => `${name}: ${REMOVED_BY[name] ?? 'its own objects'}`);
  const untouched = [
    `validator_duties: every row (${after.validatorDuties}, of which ${after.signedDuties} signed) and every column`,
    "schema_version and Aztec's pgmigrations: unchanged; view ha_signer_history_guard (refuses DROP TABLE of the history): kept",
    `ha_signer_watermarks: every row (${after.watermarks}); ha_signer_rollup_binding: kept`,
    'columns lease_expires_at and takeovers: kept (`migrate up` restores the same protection)',
  ];
  const notes: string[] = [];
  if (after.validatorDuties < before.validatorDuties || after.watermarks < before.watermarks) {
    // These migrations delete nothing; said loudly if another client deleted rows meanwhile.
    notes.push(
      `fewer rows after the run (duties ${before.validatorDuties} -> ${after.validatorDuties}, watermarks ` +
        `${before.watermarks} -> ${after.watermarks}): another client deleted rows meanwhile`,
    );
  }
  if (reverted.length === 0) notes.push('nothing to revert: no ha-signer migration is applied');
  return {
    removed,
    untouched,
    ...(protectionLost !== undefined
      ? {
          protectionLost:
            `${protectionLost}; until \`ha-signer migrate up\` the database no longer refuses those pruned slots, so a node ` +
            "without ha-signer (Aztec's package) could sign them again with another hash",
        }
      : {}),
    notes,
  };
}

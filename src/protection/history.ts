/**
 * Slashing-protection history in and out of a protection database (`ha-signer history export|import`,
 * `ha-signer watermark raise`). The rules:
 *  - Export reads one consistent snapshot: every signed duty of the bound rollup, and every low watermark.
 *  - Import only adds: a signed duty the database lacks is inserted as signed; a low watermark is raised, never
 *    lowered. A duty the database already holds signed with the same hash is left alone; one it holds with another
 *    hash, or still in progress, is a conflict: reported, never applied (no signed duty is ever overwritten, and the
 *    database's triggers would refuse it anyway). Duties at or below the database's watermark are skipped: the
 *    watermark already refuses every duty there. All of it commits in one transaction, or nothing does.
 *  - Writes go through the normal INSERT path, so the database's guards (HA001 rollup binding, HA002 watermark,
 *    HA003 immutability) hold for them exactly as for any client.
 * Imports, watermark raises and pruning serialize on a SHARE ROW EXCLUSIVE lock of ha_signer_watermarks, so the
 * watermark an import checks against cannot rise under it; signing (which only reads watermarks) is not blocked.
 */
import {
  HISTORY_FORMAT,
  HISTORY_FORMAT_VERSION,
  type HistoryDocument,
  type HistoryDuty,
  type HistoryValidator,
} from './history-document.js';
import { type Db, HistoryRefusedError, LOCK_WATERMARKS, boundRollup, inTransaction } from './history-db.js';
import { raiseLocked } from './watermarks.js';

export { HistoryRefusedError } from './history-db.js';
export { type WatermarkResult, raiseWatermark } from './watermarks.js';

const IMPORT_CHUNK = 5_000;

export interface ExportResult {
  document: HistoryDocument;
  /** Duties in progress when the snapshot was taken (no signature yet): not history, not exported. */
  inProgress: number;
}

export async function exportHistory(db: Db, source: string): Promise<ExportResult> {
  return inTransaction(db, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async () => {
    const rollup = await boundRollup(db);
    const duties = await db.query<{
      validator: string;
      slot: string;
      duty_type: HistoryDuty['dutyType'];
      block_index: number;
      block_number: string;
      message_hash: string;
      signature: string;
      signed_at: string | null;
      node_id: string;
    }>(
      `SELECT lower(validator_address) AS validator, slot::text, duty_type, block_index_within_checkpoint AS block_index, block_number::text,
              lower(message_hash) AS message_hash, lower(signature) AS signature, node_id,
              to_char((completed_at AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS signed_at
         FROM validator_duties WHERE lower(rollup_address) = $1 AND status = 'signed'
        ORDER BY 1, slot, duty_type, block_index_within_checkpoint`,
      [rollup],
    );
    const watermarks = await db.query<{ validator: string; low_slot: string }>(
      'SELECT lower(validator_address) AS validator, low_slot::text FROM ha_signer_watermarks WHERE lower(rollup_address) = $1',
      [rollup],
    );
    const inProgress = Number(
      (
        await db.query<{ n: string }>(
          "SELECT count(*) AS n FROM validator_duties WHERE lower(rollup_address) = $1 AND status = 'signing'",
          [rollup],
        )
      ).rows[0]?.n ?? 0,
    );
    const byValidator = new Map<string, HistoryValidator>();
    const entry = (validator: string): HistoryValidator => {
      let found = byValidator.get(validator);
      if (!found) byValidator.set(validator, (found = { validator, lowWatermarkSlot: null, signedDuties: [] }));
      return found;
    };
    for (const w of watermarks.rows) entry(w.validator).lowWatermarkSlot = w.low_slot;
    for (const d of duties.rows) {
      entry(d.validator).signedDuties.push({
        slot: d.slot,
        dutyType: d.duty_type,
        blockIndexWithinCheckpoint: d.block_index,
        blockNumber: d.block_number,
        messageHash: d.message_hash,
        signature: d.signature,
        ...(d.signed_at ? { signedAt: d.signed_at } : {}),
        nodeId: d.node_id,
      });
    }
    const data = [...byValidator.values()].sort((a, b) => a.validator.localeCompare(b.validator));
    const document: HistoryDocument = {
      metadata: {
        format: HISTORY_FORMAT,
        interchangeFormatVersion: HISTORY_FORMAT_VERSION,
        rollupAddress: rollup,
        exportedAt: new Date().toISOString(),
        source,
      },
      data,
    };
    return { document, inProgress };
  });
}

export interface HistoryConflict {
  validator: string;
  slot: string;
  dutyType: string;
  blockIndexWithinCheckpoint: number;
  importedMessageHash: string;
  existingMessageHash: string;
  existingStatus: 'signed' | 'signing';
  reason: string;
}

export interface ImportReport {
  rollupAddress: string;
  dryRun: boolean;
  inserted: number;
  alreadyPresent: number;
  /** At or below the database's low watermark: already refused there, nothing to add. */
  belowWatermark: number;
  watermarksRaised: { validator: string; from: string | null; to: string }[];
  conflicts: HistoryConflict[];
}

/** Merges a validated document (parseHistoryDocument) into the database; see the rules at the top of this file. */
export async function importHistory(db: Db, document: HistoryDocument, options: { dryRun?: boolean } = {}): Promise<ImportReport> {
  const dryRun = options.dryRun === true;
  return inTransaction(
    db,
    'BEGIN',
    async () => {
      await db.query(LOCK_WATERMARKS);
      const rollup = await boundRollup(db);
      if (rollup !== document.metadata.rollupAddress) {
        throw new HistoryRefusedError(
          `this database is bound to rollup ${rollup} and the document holds the history of rollup ${document.metadata.rollupAddress}: ` +
            "import it into that rollup's database (one database per rollup; nothing was imported)",
        );
      }
      await refuseMixedCaseKeys(db);
      const report: ImportReport = {
        rollupAddress: rollup,
        dryRun,
        inserted: 0,
        alreadyPresent: 0,
        belowWatermark: 0,
        watermarksRaised: [],
        conflicts: [],
      };
      for (const v of document.data) {
        if (v.lowWatermarkSlot === null) continue;
        const raised = await raiseLocked(db, rollup, v.validator, v.lowWatermarkSlot);
        if (raised.raised) report.watermarksRaised.push({ validator: v.validator, from: raised.previous, to: raised.lowWatermarkSlot });
      }
      const duties = document.data.flatMap((v) => v.signedDuties.map((d) => ({ ...d, validator: v.validator })));
      for (let i = 0; i < duties.length; i += IMPORT_CHUNK) await importChunk(db, rollup, duties.slice(i, i + IMPORT_CHUNK), report);
      return report;
    },
    !dryRun,
  );
}

/**
 * Import matches existing duties by their key as stored. Both ha-signer and Aztec's package store addresses in lower
 * case; a row written otherwise would not be matched, and the import could add a second row for the same duty.
 * Such a database is refused rather than guessed about.
 */
async function refuseMixedCaseKeys(db: Db): Promise<void> {
  const found = await db.query(
    `SELECT 1 FROM validator_duties WHERE rollup_address <> lower(rollup_address) OR validator_address <> lower(validator_address) LIMIT 1`,
  );
  if (found.rowCount)
    throw new HistoryRefusedError(
      'this database holds duties whose addresses are not in lower case; history import cannot match them safely (nothing was imported)',
    );
}

type ImportDuty = HistoryDuty & { validator: string };

async function importChunk(db: Db, rollup: string, duties: ImportDuty[], report: ImportReport): Promise<void> {
  const column = <T>(pick: (d: ImportDuty) => T): T[] => duties.map(pick);
  const params = [
    rollup,
    column((d) => d.validator),
    column((d) => d.slot),
    column((d) => d.dutyType),
    column((d) => d.blockIndexWithinCheckpoint),
    column((d) => d.blockNumber),
    column((d) => d.messageHash),
    column((d) => d.signature),
    column((d) => d.nodeId ?? 'history-import'),
    column((d) => d.signedAt ?? null),
  ];
  const input = `SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])
                   AS u(validator, slot, duty_type, block_index, block_number, message_hash, signature, node_id, signed_at)`;
  // Rows go in key order (as the core's batches do) so a concurrent batch cannot deadlock with us. ON CONFLICT DO
  // NOTHING leaves every existing row as it is; those are classified below from what the database holds.
  const inserted = await db.query<{ key: string }>(
    `WITH input AS (${input})
     INSERT INTO validator_duties AS d (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type, status,
                                        message_hash, signature, node_id, lock_token, started_at, completed_at)
     SELECT $1::text, i.validator, i.slot, i.block_number, i.block_index, i.duty_type, 'signed', i.message_hash, i.signature, i.node_id, 'history-import',
            coalesce(i.signed_at, now()), coalesce(i.signed_at, now())
       FROM input i
      WHERE NOT EXISTS (SELECT 1 FROM ha_signer_watermarks w WHERE w.rollup_address = $1::text AND w.validator_address = i.validator AND i.slot <= w.low_slot)
      ORDER BY i.validator, i.slot, i.duty_type, i.block_index
     ON CONFLICT DO NOTHING
     RETURNING concat_ws('/', d.validator_address, d.slot, d.duty_type, d.block_index_within_checkpoint) AS key`,
    params,
  );
  const insertedKeys = new Set(inserted.rows.map((r) => r.key));
  report.inserted += insertedKeys.size;
  const existing = await db.query<{ key: string; status: 'signed' | 'signing'; message_hash: string; below: boolean }>(
    `WITH input AS (${input})
     SELECT concat_ws('/', i.validator, i.slot, i.duty_type, i.block_index) AS key, d.status, lower(d.message_hash) AS message_hash,
            EXISTS (SELECT 1 FROM ha_signer_watermarks w WHERE w.rollup_address = $1::text AND w.validator_address = i.validator AND i.slot <= w.low_slot) AS below
       FROM input i
       LEFT JOIN validator_duties d ON d.rollup_address = $1::text AND d.validator_address = i.validator AND d.slot = i.slot
                                   AND d.duty_type = i.duty_type AND d.block_index_within_checkpoint = i.block_index`,
    params,
  );
  const byKey = new Map(existing.rows.map((r) => [r.key, r]));
  for (const duty of duties) {
    const key = `${duty.validator}/${duty.slot}/${duty.dutyType}/${duty.blockIndexWithinCheckpoint}`;
    if (insertedKeys.has(key)) continue;
    const row = byKey.get(key);
    if (!row?.status) {
      if (row?.below) report.belowWatermark++;
      else throw new Error(`history import: duty ${key} was neither inserted nor found`); // cannot happen; fail closed
      continue;
    }
    if (row.status === 'signed' && row.message_hash === duty.messageHash) {
      report.alreadyPresent++;
      continue;
    }
    report.conflicts.push({
      validator: duty.validator,
      slot: duty.slot,
      dutyType: duty.dutyType,
      blockIndexWithinCheckpoint: duty.blockIndexWithinCheckpoint,
      importedMessageHash: duty.messageHash,
      existingMessageHash: row.message_hash,
      existingStatus: row.status,
      reason:
        row.status === 'signed'
          ? 'this database holds the duty signed over another message hash: the two histories disagree (a slashable event, if both were released)'
          : row.message_hash === duty.messageHash
            ? 'the duty is being signed on this database right now; import again once it completes'
            : 'the duty is being signed on this database right now over another message hash',
    });
  }
}

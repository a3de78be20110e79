/** The demo's final check: every requested duty recorded once, signed by its validator, handed out identically. */
import type pg from 'pg';
import { type Hex, recoverAddress, recoverMessageAddress } from 'viem';
import { type Duty, ROLLUP, dutyKey } from './duties.js';

interface DutyRow {
  validator_address: string;
  slot: string;
  duty_type: string;
  block_index_within_checkpoint: number;
  status: string;
  message_hash: string;
  signature: string | null;
  takeovers: number;
}

export interface Verdict {
  rows: number;
  takeovers: number;
  problems: string[];
}

/** Checks the rows of the demo's slots [firstSlot, lastSlot] against what was requested and what nodes received. */
export async function verifyRun(
  db: pg.Client,
  slots: { first: number; last: number },
  requested: Map<string, Duty>,
  received: Map<string, Set<string>>,
): Promise<Verdict> {
  const rows = (
    await db.query<DutyRow>(
      `SELECT validator_address, slot::text, duty_type, block_index_within_checkpoint, status, message_hash, signature, takeovers
         FROM validator_duties WHERE rollup_address = $1 AND slot BETWEEN $2 AND $3`,
      [ROLLUP, slots.first, slots.last],
    )
  ).rows;
  const problems: string[] = [];
  const byKey = new Map<string, DutyRow[]>();
  for (const row of rows) {
    const key = dutyKey(row.validator_address, row.slot, row.duty_type, row.block_index_within_checkpoint);
    byKey.set(key, [...(byKey.get(key) ?? []), row]);
  }
  let takeovers = 0;
  for (const [key, duty] of requested) {
    const recorded = byKey.get(key) ?? [];
    if (recorded.length !== 1) {
      problems.push(`${key}: ${recorded.length} rows`);
      continue;
    }
    takeovers += recorded[0]!.takeovers;
    problems.push(...(await checkDuty(key, duty, recorded[0]!, received.get(key) ?? new Set<string>())));
  }
  for (const key of byKey.keys()) if (!requested.has(key)) problems.push(`${key}: recorded but never requested`);
  return { rows: rows.length, takeovers, problems };
}

/** One requested duty against its row: signed, by its validator over the recorded hash, and handed out unchanged. */
async function checkDuty(key: string, duty: Duty, row: DutyRow, given: Set<string>): Promise<string[]> {
  if (row.status !== 'signed' || !row.signature) return [`${key}: status ${row.status}, no signature`];
  const problems: string[] = [];
  const signer = duty.vote
    ? await recoverAddress({ hash: row.message_hash as Hex, signature: row.signature as Hex })
    : await recoverMessageAddress({ message: { raw: row.message_hash as Hex }, signature: row.signature as Hex });
  if (signer.toLowerCase() !== duty.validator)
    problems.push(`${key}: recorded signature is not by ${duty.validator} over the recorded hash`);
  if (given.size !== 1) problems.push(`${key}: nodes received ${given.size} distinct signatures`);
  for (const signature of given) {
    if (signature !== row.signature.toLowerCase()) problems.push(`${key}: a node received a signature that is not the recorded one`);
  }
  return problems;
}

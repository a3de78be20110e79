/**
 * The checks of a chaos run, from the clients' logs and the database:
 * - never two released signatures over different hashes for one duty;
 * - every released signature recovers to the validator over its hash, and is the one recorded (status signed, same
 *   hash, same signature);
 * - no recorded duty lost or changed: signed rows snapshotted before each fault are still there, unchanged;
 * - liveness: after each fault a signature is returned again within a generous bound.
 */
import { recoverMessageAddress, type Hex } from 'viem';
import type { ChaosEnvironment } from './environment.js';
import type { FaultKind, FaultRecord } from './faults.js';
import { type Attempt, dutyKey } from './workload.js';

export interface Violation {
  check: string;
  detail: string;
}

export interface SignedRow {
  key: string;
  messageHash: string;
  signature: string;
  status: string;
}

export async function readRows(environment: ChaosEnvironment): Promise<Map<string, SignedRow>> {
  const rows = await environment.queryChaosDatabase<{
    validator_address: string;
    slot: string;
    duty_type: string;
    block_index_within_checkpoint: number;
    message_hash: string;
    signature: string | null;
    status: string;
  }>(
    `SELECT validator_address, slot::text, duty_type, block_index_within_checkpoint, message_hash, signature, status FROM validator_duties`,
  );
  const result = new Map<string, SignedRow>();
  for (const row of rows) {
    const key = dutyKey({
      validator: row.validator_address.toLowerCase(),
      slot: row.slot,
      dutyType: row.duty_type,
      blockIndex: row.block_index_within_checkpoint,
    });
    result.set(key, {
      key,
      messageHash: row.message_hash.toLowerCase(),
      signature: (row.signature ?? '').toLowerCase(),
      status: row.status,
    });
  }
  return result;
}

/** Signed rows only: those must never change or disappear. */
export async function snapshotSigned(environment: ChaosEnvironment): Promise<Map<string, SignedRow>> {
  const rows = await readRows(environment);
  for (const [key, row] of rows) if (row.status !== 'signed') rows.delete(key);
  return rows;
}

export function compareSnapshot(before: Map<string, SignedRow>, after: Map<string, SignedRow>, when: string): Violation[] {
  const violations: Violation[] = [];
  for (const [key, row] of before) {
    const now = after.get(key);
    if (!now) violations.push({ check: 'recorded duty lost', detail: `${key} (${when})` });
    else if (now.status !== 'signed' || now.messageHash !== row.messageHash || now.signature !== row.signature)
      violations.push({ check: 'recorded duty changed', detail: `${key} (${when}): ${JSON.stringify(row)} -> ${JSON.stringify(now)}` });
  }
  return violations;
}

/** Safety over every released signature (200s and 409s that carried one). */
export async function checkReleased(attempts: Attempt[], rows: Map<string, SignedRow>): Promise<Violation[]> {
  const violations: Violation[] = [];
  const hashesByDuty = new Map<string, Set<string>>();
  for (const attempt of attempts) {
    if (!attempt.signature) continue;
    const hash = attempt.messageHash.toLowerCase();
    const hashes = hashesByDuty.get(attempt.key) ?? new Set<string>();
    hashes.add(hash);
    hashesByDuty.set(attempt.key, hashes);
    const signer = await recoverMessageAddress({ message: { raw: hash as Hex }, signature: attempt.signature as Hex }).catch(() => '');
    if (signer.toLowerCase() !== attempt.duty.validator)
      violations.push({ check: 'released signature does not recover to the validator', detail: `${attempt.key} by ${attempt.client}` });
    const row = rows.get(attempt.key);
    if (!row || row.status !== 'signed' || row.messageHash !== hash || row.signature !== attempt.signature)
      violations.push({
        check: 'released signature not recorded as signed with that signature',
        detail: `${attempt.key} released to ${attempt.client} via ${attempt.replica} (${attempt.outcome}); row ${JSON.stringify(row ?? null)}`,
      });
  }
  for (const [key, hashes] of hashesByDuty)
    if (hashes.size > 1)
      violations.push({ check: 'two released signatures over different hashes', detail: `${key}: ${[...hashes].join(', ')}` });
  return violations;
}

/**
 * Truthful refusals: a DutyAlreadySigned answer means the duty is signed over the caller's hash (a duty signed over
 * another hash is a SlashingProtection answer, not a 409 that hides it); a SlashingProtection answer means it is
 * signed over another hash. Signed rows never change, so the final row decides.
 */
export function checkRefusals(attempts: Attempt[], rows: Map<string, SignedRow>): Violation[] {
  const violations: Violation[] = [];
  for (const attempt of attempts) {
    if (attempt.outcome !== 'already-signed' && attempt.outcome !== 'slashing-protection') continue;
    const row = rows.get(attempt.key);
    const hash = attempt.messageHash.toLowerCase();
    const where = `${attempt.key} to ${attempt.client} via ${attempt.replica}; row ${JSON.stringify(row ?? null)}`;
    if (!row || row.status !== 'signed')
      violations.push({ check: `${attempt.outcome} answered for a duty that is not signed`, detail: where });
    else if (attempt.outcome === 'already-signed' && row.messageHash !== hash)
      violations.push({ check: 'DutyAlreadySigned hides a slashing-protection event (signed over another hash)', detail: where });
    else if (attempt.outcome === 'slashing-protection' && row.messageHash === hash)
      violations.push({ check: 'SlashingProtection answered for the hash that was signed', detail: where });
  }
  return violations;
}

export interface RecoveryStats {
  kind: FaultKind;
  count: number;
  /** ms from the fault's end to the next signature returned to any client. */
  p50: number;
  max: number;
  unrecovered: number;
  /** ms from the fault's end to the next signature returned by the replica it hit (its restart included). */
  replicaP50: number | null;
  replicaMax: number | null;
}

/** Recovery per fault: the first 200 with a signature that completed after the fault ended. */
export function recoveryTimes(
  faults: FaultRecord[],
  attempts: Attempt[],
  boundMs: number,
  replicaOf: (endpoint: string) => string | undefined = () => undefined,
): { perFault: (number | undefined)[]; replicaPerFault: (number | undefined)[]; stats: RecoveryStats[] } {
  const signed = attempts.filter((a) => a.outcome === 'signed').sort((a, b) => a.end - b.end);
  const nextAfter = (fault: FaultRecord, replica?: string): number | undefined => {
    const next = signed.find((a) => a.end >= fault.end && (replica === undefined || replicaOf(a.replica) === replica));
    return next !== undefined && next.end - fault.end <= boundMs ? next.end - fault.end : undefined;
  };
  const perFault = faults.map((fault) => nextAfter(fault));
  const replicaPerFault = faults.map((fault) => (fault.replica ? nextAfter(fault, fault.replica) : undefined));
  const median = (sorted: number[]): number | null => sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
  const kinds = [...new Set(faults.map((f) => f.kind))];
  const stats = kinds.map((kind) => {
    const of = (list: (number | undefined)[]): number[] =>
      faults.flatMap((f, i) => (f.kind === kind && list[i] !== undefined ? [list[i]] : [])).sort((a, b) => a - b);
    const times = of(perFault);
    const replicaTimes = of(replicaPerFault);
    return {
      kind,
      count: faults.filter((f) => f.kind === kind).length,
      p50: median(times) ?? NaN,
      max: times[times.length - 1] ?? NaN,
      unrecovered: faults.filter((f, i) => f.kind === kind && perFault[i] === undefined).length,
      replicaP50: median(replicaTimes),
      replicaMax: replicaTimes[replicaTimes.length - 1] ?? null,
    };
  });
  return { perFault, replicaPerFault, stats };
}

/**
 * One seeded chaos run: starts the environment, drives the workload slot by slot, injects faults one after another
 * (kinds in a seeded order, every kind before any repeats), snapshots the signed rows before each fault and compares
 * after it, then runs a final probe (fresh duties must all be signed) and checks everything. The seed fixes every
 * choice (fault order and parameters, replicas, hashes, conflicts, aborts); process timing is the machine's, so a
 * replay runs the same schedule, not the same interleaving.
 */
import { RemoteHASigner } from '../../src/client/index.js';
import {
  type Violation,
  checkRefusals,
  checkReleased,
  compareSnapshot,
  readRows,
  recoveryTimes,
  snapshotSigned,
  type RecoveryStats,
} from './checks.js';
import { DriftSampler, type ReplicaDrift } from './drift.js';
import { ChaosEnvironment, KEYS, TOKEN, sleep } from './environment.js';
import { FAULT_KINDS, type FaultKind, type FaultRecord, injectFault } from './faults.js';
import { Random } from './random.js';
import { type Outcome, Workload } from './workload.js';

export interface ChaosOptions {
  seed: number;
  durationS: number;
  /** Long form: more duties per slot and longer gaps (the bounded form keeps the 2-core CI machine responsive). */
  long?: boolean;
  kinds?: readonly FaultKind[];
  log?: (line: string) => void;
}

export interface ChaosSummary {
  seed: number;
  durationS: number;
  duties: number;
  conflictingDuties: number;
  conflictShare: number;
  requests: number;
  outcomes: Partial<Record<Outcome, number>>;
  releasedSignatures: number;
  signedRows: number;
  faults: Partial<Record<FaultKind, number>>;
  faultLog: (FaultRecord & { recoveryMs: number | null; replicaRecoveryMs: number | null })[];
  recovery: RecoveryStats[];
  violations: Violation[];
  /** Replicas that exited without being killed by a fault (each restarted). */
  unexpectedExits: string[];
  /** Memory and latency drift per replica (soak figures). */
  drift: ReplicaDrift[];
  logsDir?: string;
}

const RECOVERY_BOUND_MS = 45_000;
const PROBE_TIMEOUT_MS = 60_000;

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const log = options.log ?? (() => {});
  const root = new Random(options.seed);
  const scheduleRandom = root.fork(1);
  const faultRandom = root.fork(2);
  const conflictShare = 0.15 + root.fork(3).next() * 0.2;
  const environment = await ChaosEnvironment.start(3);
  const clients = [
    { name: 'ha-1', kind: 'ha' as const },
    { name: 'ha-2', kind: 'ha' as const },
    { name: 'ha-3', kind: 'ha' as const },
    { name: 'direct-1', kind: 'direct' as const },
  ];
  const workload = new Workload(root.fork(4), () => environment.slots.map((s) => s.url), clients, conflictShare);
  const faults: FaultRecord[] = [];
  const violations: Violation[] = [];
  const unexpectedExits: string[] = [];
  let failed = true;
  const sampler = new DriftSampler(environment);
  sampler.start(options.long ? 10_000 : 5_000);
  try {
    log(
      `chaos seed ${options.seed}: ${options.durationS} s, conflict share ${(conflictShare * 100).toFixed(0)}%, logs in ${environment.dir}`,
    );
    const deadline = Date.now() + options.durationS * 1_000;
    const pending: Promise<void>[] = [];
    let slot = 1_000;
    let running = true;
    const slotMs = options.long ? 300 : 400;
    const dutiesPerSlot = options.long ? 4 : 3;
    const driver = (async () => {
      while (running) {
        pending.push(...workload.issueSlot(slot++, dutiesPerSlot));
        await sleep(slotMs);
      }
    })();
    const order = scheduleRandom.shuffle(options.kinds ?? FAULT_KINDS);
    await sleep(2_000); // a warm-up with every part healthy
    let next = 0;
    while (Date.now() < deadline) {
      const kind = order[next++ % order.length]!;
      const before = await snapshotSigned(environment);
      log(`fault ${faults.length + 1}: ${kind}`);
      const fault = await injectFault(kind, { environment, workload, random: faultRandom, log });
      faults.push(fault);
      log(`  ${fault.detail} (${fault.end - fault.start} ms)`);
      await recoverReplicas(environment, unexpectedExits);
      violations.push(...compareSnapshot(before, await snapshotSigned(environment), `after ${kind}`));
      await sleep(scheduleRandom.int(options.long ? 1_000 : 500, options.long ? 4_000 : 1_500));
    }
    await sleep(3_000); // traffic after the last fault, for its recovery time
    running = false;
    await driver;
    await Promise.all(pending);
    sampler.stop();
    await recoverReplicas(environment, unexpectedExits);
    violations.push(...(await finalProbe(environment, slot + 10)));
    await recoverReplicas(environment, unexpectedExits);
    const rows = await readRows(environment);
    violations.push(...(await checkReleased(workload.attempts, rows)));
    violations.push(...checkRefusals(workload.attempts, rows));
    const replicaOf = new Map(environment.slots.map((slot) => [slot.url, `r${slot.index + 1}`]));
    const { perFault, replicaPerFault, stats } = recoveryTimes(faults, workload.attempts, RECOVERY_BOUND_MS, (url) => replicaOf.get(url));
    faults.forEach((fault, i) => {
      if (perFault[i] === undefined)
        violations.push({
          check: 'no signature within 45 s after a fault',
          detail: `${fault.kind} ending at +${fault.end - faults[0]!.start} ms`,
        });
    });
    for (const attempt of workload.attempts)
      if (attempt.outcome === 'unexpected')
        violations.push({ check: 'undocumented answer', detail: `${attempt.client} ${attempt.key}: ${attempt.detail ?? ''}` });
    const outcomes: Partial<Record<Outcome, number>> = {};
    for (const attempt of workload.attempts) outcomes[attempt.outcome] = (outcomes[attempt.outcome] ?? 0) + 1;
    const faultCounts: Partial<Record<FaultKind, number>> = {};
    for (const fault of faults) faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
    failed = violations.length > 0 || unexpectedExits.length > 0;
    return {
      seed: options.seed,
      durationS: options.durationS,
      duties: workload.duties.size,
      conflictingDuties: workload.conflicting,
      conflictShare,
      requests: workload.attempts.length,
      outcomes,
      releasedSignatures: workload.attempts.filter((a) => a.signature).length,
      signedRows: [...rows.values()].filter((r) => r.status === 'signed').length,
      faults: faultCounts,
      faultLog: faults.map((fault, i) => ({ ...fault, recoveryMs: perFault[i] ?? null, replicaRecoveryMs: replicaPerFault[i] ?? null })),
      recovery: stats,
      violations,
      unexpectedExits,
      drift: sampler.report(workload.attempts, replicaOf),
      ...(failed ? { logsDir: environment.dir } : {}),
    };
  } finally {
    sampler.stop();
    await environment.close(failed);
  }
}

/** A replica that exited although no fault killed it is a finding; it is restarted so the run goes on. */
async function recoverReplicas(environment: ChaosEnvironment, unexpectedExits: string[]): Promise<void> {
  for (let round = 0; ; round++) {
    for (const slot of environment.slots) {
      if (slot.replica.running) continue;
      // The crash itself, not the end of its stack: the non-JSON lines of the output.
      const output = slot.replica.output();
      const start = Math.max(
        0,
        output.findIndex((line) => /Unhandled|^\s*\^$|^\w*Error\b|^error:/.test(line)),
      );
      unexpectedExits.push(
        `${slot.replica.nodeId} (exit ${slot.replica.child.exitCode ?? slot.replica.child.signalCode}): ${output
          .slice(start, start + 8)
          .join(' | ')
          .slice(0, 800)}`,
      );
      await environment.restart(slot);
    }
    try {
      return await environment.waitAllReady();
    } catch (error) {
      // A replica that exits while we wait is recorded (above, next round) and restarted; anything else is fatal.
      if (round >= 3 || environment.slots.every((slot) => slot.replica.running)) throw error;
    }
  }
}

/** Liveness after all faults: fresh duties through RemoteHASigner must all be signed. */
async function finalProbe(environment: ChaosEnvironment, firstSlot: number): Promise<Violation[]> {
  const signer = new RemoteHASigner({ endpoints: environment.slots.map((s) => s.url), token: TOKEN, timeoutMs: 10_000, maxRounds: 5 });
  const violations: Violation[] = [];
  const deadline = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  await Promise.all(
    KEYS.map(async (key, i) => {
      const context = { dutyType: 'ATTESTATION' as const, slot: BigInt(firstSlot + i), blockNumber: 1n };
      try {
        await signer.sign(key.address, `0x${(i + 1).toString(16).padStart(64, '0')}`, context, { signal: deadline });
      } catch (error) {
        violations.push({ check: 'final probe: a fresh duty was not signed', detail: `${key.address}: ${(error as Error).message}` });
      }
    }),
  );
  return violations;
}

export function formatSummary(summary: ChaosSummary): string {
  const lines = [
    `seed ${summary.seed}: ${summary.durationS} s, duties ${summary.duties} (${summary.conflictingDuties} conflicting, ${(summary.conflictShare * 100).toFixed(0)}%), requests ${summary.requests}, released signatures ${summary.releasedSignatures}, signed rows ${summary.signedRows}`,
    `  outcomes: ${Object.entries(summary.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `  faults: ${Object.entries(summary.faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `  recovery p50/max ms (fault end -> next signature of the service | of the replica it hit): ${summary.recovery
      .map(
        (r) =>
          `${r.kind} ${r.p50}/${r.max}${r.replicaP50 !== null ? ` | ${r.replicaP50}/${r.replicaMax}` : ''}${r.unrecovered ? ` (${r.unrecovered} unrecovered)` : ''}`,
      )
      .join(', ')}`,
    `  violations: ${summary.violations.length}${summary.unexpectedExits.length ? `, unexpected replica exits: ${summary.unexpectedExits.length}` : ''}`,
  ];
  for (const d of summary.drift)
    lines.push(
      `  ${d.replica}: RSS ${d.rssFirstMiB} -> ${d.rssLastMiB} MiB (max ${d.rssMaxMiB}), signed p50 ${d.p50FirstQuarterMs} ms (first quarter) -> ${d.p50LastQuarterMs} ms (last quarter)`,
    );
  for (const violation of summary.violations.slice(0, 20)) lines.push(`    ${violation.check}: ${violation.detail}`);
  for (const exit of summary.unexpectedExits) lines.push(`    unexpected exit: ${exit}`);
  if (summary.logsDir) lines.push(`  replica logs kept in ${summary.logsDir}`);
  return lines.join('\n');
}

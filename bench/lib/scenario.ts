/**
 * One measured run: `concurrency` workers each sign fresh duties back to back for a fixed time, after a warm-up;
 * with nodes = 3 every duty is requested by all three nodes at the same moment. Latency is request to the winner's
 * answer; "losers learn" is the winner's answer to each loser's rejection (DutyAlreadySignedError).
 */
import { createHash } from 'node:crypto';
import { type BenchPostgres, waitForNoSessions, xactCommits, adminQuery } from './postgres.ts';
import { type Impl, makeNode } from './nodes.ts';
import { percentile } from './stats.ts';

export interface RunSpec {
  impl: Impl;
  nodes: number;
  concurrency: number;
  /** Distinct validator addresses the duties rotate over (default 1). */
  validators?: number;
  warmupMs: number;
  measureMs: number;
}

export interface RunResult {
  impl: Impl;
  nodes: number;
  concurrency: number;
  validators: number;
  duties: number;
  dutiesPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  loserP50: number;
  loserP99: number;
  /** pool.query() calls per signed duty, over all nodes, warm-up included. */
  roundTripsPerDuty: number;
  /** Committed transactions per signed duty (pg_stat_database.xact_commit delta, set-up included). */
  commitsPerDuty: number;
}

export function validatorAddress(index: number): string {
  return `0x${(0xbe000000 + index).toString(16).padStart(40, '0')}`;
}

/**
 * A duty's message hash: a digest, so hashes are spread like real ones (keccak digests) and land on random leaf
 * pages of any index that includes the hash (a counter would append to one hot page and hide that cost).
 */
export function messageHash(slot: number): string {
  return `0x${createHash('sha256').update(String(slot)).digest('hex')}`;
}

export interface LoopOptions {
  nodes: { sign(validator: string, hash: string, slot: number): Promise<unknown> }[];
  concurrency: number;
  validators: number;
  firstSlot: number;
  warmupMs: number;
  measureMs: number;
}

export interface LoopResult {
  duties: number;
  signedTotal: number;
  seconds: number;
  latencies: number[];
  learn: number[];
}

/** The load loop itself, on nodes that already run (also used by the scale scenarios on a pre-filled table). */
export async function signingLoop(options: LoopOptions): Promise<LoopResult> {
  let slot = options.firstSlot;
  let signedTotal = 0;
  const latencies: number[] = [];
  const learn: number[] = [];
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  const endAt = measureFrom + options.measureMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < endAt) {
      const s = slot++;
      const validator = validatorAddress(s % options.validators);
      const hash = messageHash(s);
      const begin = performance.now();
      const settled = await Promise.all(
        options.nodes.map((node) =>
          node.sign(validator, hash, s).then(
            () => ({ won: true, at: performance.now() }),
            () => ({ won: false, at: performance.now() }),
          ),
        ),
      );
      const winner = settled.find((r) => r.won);
      if (!winner) continue;
      signedTotal++;
      if (begin < measureFrom) continue;
      latencies.push(winner.at - begin);
      for (const r of settled) if (!r.won) learn.push(Math.max(0, r.at - winner.at));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - Math.max(measureFrom, start)) / 1000;
  latencies.sort((a, b) => a - b);
  learn.sort((a, b) => a - b);
  return { duties: latencies.length, signedTotal, seconds, latencies, learn };
}

/** A run on its own fresh database, so the commit counter and the table belong to it alone. */
export async function runScenario(server: BenchPostgres, spec: RunSpec): Promise<RunResult> {
  const db = await server.freshDatabase(`${spec.impl}_${spec.nodes}_${spec.concurrency}`);
  await waitForNoSessions(server.adminUrl, db.name);
  const commitsBefore = await xactCommits(server.adminUrl, db.name);
  const group = await Promise.all(
    Array.from({ length: spec.nodes }, (_, i) => makeNode(spec.impl, { url: db.url, nodeId: `${spec.impl}-${i}`, poolMax: 10 })),
  );
  let loop: LoopResult;
  try {
    loop = await signingLoop({
      nodes: group,
      concurrency: spec.concurrency,
      validators: spec.validators ?? 1,
      firstSlot: 1,
      warmupMs: spec.warmupMs,
      measureMs: spec.measureMs,
    });
  } finally {
    await Promise.all(group.map((n) => n.stop()));
  }
  const queries = group.reduce((sum, n) => sum + n.queries, 0);
  await waitForNoSessions(server.adminUrl, db.name);
  const commits = (await xactCommits(server.adminUrl, db.name)) - commitsBefore;
  const [signedRow] = await adminQuery<{ n: string }>(db.url, `SELECT count(*) AS n FROM validator_duties WHERE status = 'signed'`);
  const signed = Number(signedRow?.n ?? loop.signedTotal);
  await server.dropDatabase(db.name);
  return {
    impl: spec.impl,
    nodes: spec.nodes,
    concurrency: spec.concurrency,
    validators: spec.validators ?? 1,
    duties: loop.duties,
    dutiesPerSecond: loop.duties / loop.seconds,
    p50: percentile(loop.latencies, 50),
    p90: percentile(loop.latencies, 90),
    p99: percentile(loop.latencies, 99),
    loserP50: percentile(loop.learn, 50),
    loserP99: percentile(loop.learn, 99),
    roundTripsPerDuty: queries / Math.max(1, signed),
    commitsPerDuty: commits / Math.max(1, signed),
  };
}

/**
 * Protection-core benchmark on a real PostgreSQL (embedded, fsync on): duties per second, p50/p99 latency, and how
 * long losing nodes take to learn the outcome, for 1 node and for 3 nodes racing per duty. The published
 * @aztec/validator-ha-signer runs the same scenarios on the same server in the same run, so ratios compare like
 * with like. Usage: npm run bench  [-- --quick]
 */
import { createHASigner as createAztecHASigner } from '@aztec/validator-ha-signer/factory';
import { privateKeyToAccount } from 'viem/accounts';
import { startEmbeddedPostgres } from '../dist/dev/embedded-postgres.js';
import { createHASigner, runMigrations } from '../dist/protection/index.js';

const quick = process.argv.includes('--quick');
const DURATION_MS = quick ? 1_000 : 3_000;
const ROLLUP = `0x${'a1'.repeat(20)}`;
const account = privateKeyToAccount(`0x${'42'.repeat(32)}`);

type SignFn = (hash: { toString(): string }) => Promise<string>;
const noopSign: SignFn = async (h) => `0x${h.toString().slice(2)}${'00'.repeat(32)}1b`;
const secpSign: SignFn = async (h) => await account.signMessage({ message: { raw: h.toString() as `0x${string}` } });

interface Node {
  sign(validator: string, hash: string, slot: number, signFn: SignFn): Promise<unknown>;
  stop(): Promise<void>;
}

async function ourNode(url: string, nodeId: string): Promise<Node> {
  const { signer } = await createHASigner({ databaseUrl: url, nodeId, rollupAddress: ROLLUP, pollingIntervalMs: 100, signingTimeoutMs: 3_000, poolMaxCount: 10 });
  await signer.start();
  return {
    sign: (validator, hash, slot, signFn) => signer.signWithProtection(validator, hash, { dutyType: 'ATTESTATION', slot: BigInt(slot), blockNumber: 1n }, signFn),
    stop: () => signer.stop(),
  };
}

async function aztecNode(url: string, nodeId: string): Promise<Node> {
  const { signer } = await createAztecHASigner({
    databaseUrl: url,
    haSigningEnabled: true,
    nodeId,
    pollingIntervalMs: 100,
    signingTimeoutMs: 3_000,
    maxStuckDutiesAgeMs: 144_000,
    poolMaxCount: 10,
    l1Contracts: { rollupAddress: { toString: () => ROLLUP } },
  } as never);
  await signer.start();
  return {
    sign: (validator, hash, slot, signFn) =>
      signer.signWithProtection({ toString: () => validator } as never, { toString: () => hash } as never, { dutyType: 'ATTESTATION', slot: BigInt(slot), blockNumber: 1n } as never, signFn as never),
    stop: () => signer.stop(),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmt = (ms: number): string => (Number.isNaN(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

let dbCounter = 0;
async function freshDatabase(server: Awaited<ReturnType<typeof startEmbeddedPostgres>>): Promise<string> {
  const url = await server.createDatabase(`bench_${dbCounter++}`);
  await runMigrations({ databaseUrl: url, direction: 'up' });
  return url;
}

interface Result {
  impl: string;
  nodes: number;
  concurrency: number;
  signer: string;
  dutiesPerSecond: number;
  p50: number;
  p99: number;
  loserP50: number;
  loserP99: number;
}

/**
 * `concurrency` workers each sign fresh duties in a loop; with nodes = 3 every duty is requested by all three
 * nodes at the same moment. Latency: request to outcome for the winner. Loser learn time: winner's release to
 * the loser's DutyAlreadySignedError.
 */
async function scenario(impl: 'ha-signer' | 'aztec', url: string, nodes: number, concurrency: number, signerName: string, signFn: SignFn): Promise<Result> {
  const make = impl === 'ha-signer' ? ourNode : aztecNode;
  const group = await Promise.all(Array.from({ length: nodes }, (_, i) => make(url, `${impl}-${i}`)));
  const latencies: number[] = [];
  const learn: number[] = [];
  let nextSlot = 1;
  let done = 0;
  const validator = `0x${(dbCounter * 7919 + nodes * 31 + concurrency).toString(16).padStart(40, '0')}`;
  const endAt = performance.now() + DURATION_MS;
  const startedAt = performance.now();
  // Each node's settle time is recorded, so losers' learn time is measured from the winner's release.
  const worker = async (): Promise<void> => {
    while (performance.now() < endAt) {
      const slot = nextSlot++;
      const hash = `0x${slot.toString(16).padStart(64, '0')}`;
      const begin = performance.now();
      const settled: { won: boolean; at: number }[] = await Promise.all(
        group.map((node) =>
          node.sign(validator, hash, slot, signFn).then(
            () => ({ won: true, at: performance.now() }),
            () => ({ won: false, at: performance.now() }),
          ),
        ),
      );
      const winner = settled.find((s) => s.won);
      if (!winner) continue;
      latencies.push(winner.at - begin);
      for (const s of settled) if (!s.won) learn.push(Math.max(0, s.at - winner.at));
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - startedAt;
  await Promise.all(group.map((n) => n.stop()));
  latencies.sort((a, b) => a - b);
  learn.sort((a, b) => a - b);
  return {
    impl,
    nodes,
    concurrency,
    signer: signerName,
    dutiesPerSecond: (done / elapsed) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    loserP50: percentile(learn, 50),
    loserP99: percentile(learn, 99),
  };
}

const server = await startEmbeddedPostgres();
const results: Result[] = [];
try {
  const plan: [('ha-signer' | 'aztec'), number, number, string, SignFn][] = [
    ['ha-signer', 1, 1, 'no-op', noopSign],
    ['aztec', 1, 1, 'no-op', noopSign],
    ['ha-signer', 1, 32, 'no-op', noopSign],
    ['aztec', 1, 32, 'no-op', noopSign],
    ['ha-signer', 3, 1, 'no-op', noopSign],
    ['aztec', 3, 1, 'no-op', noopSign],
    ['ha-signer', 3, 32, 'no-op', noopSign],
    ['aztec', 3, 32, 'no-op', noopSign],
    ['ha-signer', 1, 1, 'secp256k1', secpSign],
    ['ha-signer', 1, 32, 'secp256k1', secpSign],
    ['ha-signer', 3, 1, 'secp256k1', secpSign],
    ['ha-signer', 3, 32, 'secp256k1', secpSign],
  ];
  console.log(`protection benchmark: ${DURATION_MS} ms per scenario, embedded PostgreSQL with fsync on`);
  console.log('impl       nodes conc signFn      duties/s   p50 ms   p99 ms  losers learn p50/p99 ms');
  for (const [impl, nodes, concurrency, name, fn] of plan) {
    const url = await freshDatabase(server);
    const r = await scenario(impl, url, nodes, concurrency, name, fn);
    results.push(r);
    console.log(
      `${r.impl.padEnd(10)} ${String(r.nodes).padStart(5)} ${String(r.concurrency).padStart(4)} ${r.signer.padEnd(10)} ${r.dutiesPerSecond.toFixed(0).padStart(10)} ${fmt(r.p50).padStart(8)} ${fmt(r.p99).padStart(8)}  ${r.nodes > 1 ? `${fmt(r.loserP50)} / ${fmt(r.loserP99)}` : '-'}`,
    );
  }
  const pick = (impl: string, nodes: number, concurrency: number) => results.find((r) => r.impl === impl && r.nodes === nodes && r.concurrency === concurrency && r.signer === 'no-op')!;
  console.log('\nratios (ha-signer vs the published package, same run):');
  console.log(`  uncontested p50 at concurrency 1, package / ha-signer: ${(pick('aztec', 1, 1).p50 / pick('ha-signer', 1, 1).p50).toFixed(2)} (above 1: ha-signer faster)`);
  console.log(`  throughput at concurrency 32, ha-signer / package:    ${(pick('ha-signer', 1, 32).dutiesPerSecond / pick('aztec', 1, 32).dutiesPerSecond).toFixed(2)}`);
  console.log(`  losers learn p99 (3 nodes, c=1), package / ha-signer: ${(pick('aztec', 3, 1).loserP99 / pick('ha-signer', 3, 1).loserP99).toFixed(1)}`);
} finally {
  await server.stop();
}

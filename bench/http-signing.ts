/**
 * HTTP signing benchmark: three `ha-signer serve` replicas (separate processes) on one real PostgreSQL (embedded,
 * fsync on, or VALIDATOR_HA_DATABASE_URL), called through RemoteHASigner with bearer-token auth and local keys.
 *   - uncontested: each duty requested once, at concurrency 1, 8 and 32 (requests spread over the replicas);
 *   - contested: each duty requested by 3 validator nodes at once, each through a different replica; the figure that
 *     matters is when the LAST of the three callers has its answer (signature, or 409 with the stored signature).
 * Usage: npm run build && node bench/http-signing.ts [--quick]     (or npm run bench:http)
 */
import { keccak256, stringToHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { RemoteHASigner } from '../dist/client/index.js';
import { freePort } from '../dist/dev/embedded-postgres.js';
import { startReplica, type SignerReplica } from '../dist/demo/replicas.js';
import { DutyAlreadySignedError } from '../dist/protection/index.js';
import { withSignerFixture } from './lib/network.ts';
import { latencyStats, ms, runRequests, statsRow, warmUp, type RequestStats } from './lib/request-loop.ts';

const quick = process.argv.includes('--quick');
const ROLLUP = `0x${'b5'.repeat(20)}`;
const KEYS = ['11', '22', '33', '44'].map((b) => `0x${b.repeat(32)}` as `0x${string}`);
const VALIDATORS = KEYS.map((k) => privateKeyToAccount(k).address.toLowerCase());
const TOKEN = 'bench-token-0123456789abcdef';
const LOG_LEVEL = process.env.HA_SIGNER_LOG_LEVEL ?? 'warn';

let nextSlot = 1_000;
const hashOf = (label: string): `0x${string}` => keccak256(stringToHex(label));

/** One signing request for a fresh duty (an attestation of a new slot, rotating validators). */
function freshDuty(): { validator: string; slot: number; hash: `0x${string}` } {
  const slot = nextSlot++;
  return { validator: VALIDATORS[slot % VALIDATORS.length]!, slot, hash: hashOf(`bench/${slot}`) };
}

async function signOnce(
  client: RemoteHASigner,
  duty: { validator: string; slot: number; hash: `0x${string}` },
): Promise<'signed' | 'already'> {
  try {
    await client.signWithProtection(duty.validator, duty.hash, {
      dutyType: 'ATTESTATION',
      slot: BigInt(duty.slot),
      blockNumber: BigInt(duty.slot),
    });
    return 'signed';
  } catch (error) {
    if (error instanceof DutyAlreadySignedError && error.signature) return 'already';
    throw error;
  }
}

/** Request n of a worker: a fresh duty, signed through replica worker + n. */
const signFreshDuty =
  (clients: RemoteHASigner[]) =>
  async (n: number, worker: number): Promise<void> => {
    const outcome = await signOnce(clients[(worker + n) % clients.length]!, freshDuty());
    if (outcome !== 'signed') throw new Error('uncontested duty was already signed');
  };

/** Each duty requested by 3 nodes at once (node i through replica i); `concurrency` duties in flight. */
async function contested(
  clients: RemoteHASigner[],
  concurrency: number,
  duties: number,
): Promise<{ allResolved: RequestStats; perCaller: RequestStats; signedOnce: boolean }> {
  const perCaller: number[] = [];
  let signedOnce = true;
  // A request here is one duty: its latency is when the last of its callers has an answer.
  const allResolved = await runRequests({
    concurrency,
    total: duties,
    prepare: () => freshDuty(),
    request: async (_n, _worker, duty) => {
      const t0 = performance.now();
      const outcomes = await Promise.all(
        clients.map(async (client) => {
          const outcome = await signOnce(client, duty);
          perCaller.push(performance.now() - t0);
          return outcome;
        }),
      );
      if (outcomes.filter((o) => o === 'signed').length !== 1) signedOnce = false;
    },
  });
  return { allResolved, perCaller: latencyStats(perCaller, allResolved.seconds), signedOnce };
}

async function main(): Promise<void> {
  await withSignerFixture({ name: 'http', rollup: ROLLUP, keys: KEYS, token: TOKEN }, async ({ embedded, replicaEnv }) => {
    const replicas: SignerReplica[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        replicas.push(
          startReplica({ nodeId: `bench-${i}`, port: await freePort(), env: { ...replicaEnv, HA_SIGNER_LOG_LEVEL: LOG_LEVEL } }),
        );
      }
      await Promise.all(replicas.map((r) => r.waitReady()));
      // One client per replica: node i talks to replica i (failover endpoints behind it are not exercised here).
      const clients = replicas.map(
        (r, i) => new RemoteHASigner({ endpoints: [r.url, ...replicas.filter((_, k) => k !== i).map((o) => o.url)], token: TOKEN }),
      );

      const scale = quick ? 0.25 : 1;
      const n = (count: number): number => Math.max(20, Math.round(count * scale));
      await warmUp(n(300), signFreshDuty(clients));

      const results: Record<string, unknown> = {};
      const lines: string[] = [];
      for (const concurrency of [1, 8, 32]) {
        const s = await runRequests({ concurrency, total: n(concurrency === 1 ? 1000 : 3000), request: signFreshDuty(clients) });
        results[`uncontested_c${concurrency}`] = s;
        lines.push(statsRow('uncontested', concurrency, s, { max: true }));
      }
      for (const concurrency of [1, 8]) {
        const c = await contested(clients, concurrency, n(concurrency === 1 ? 500 : 1500));
        results[`contested_c${concurrency}`] = c;
        if (!c.signedOnce) throw new Error('a contested duty was signed more than once');
        const duties = `${concurrency} duties`;
        lines.push(
          statsRow('contested ×3 (all callers answered)', duties, c.allResolved, { counted: 'duties', rate: 'duties/s', max: true }),
        );
        lines.push(statsRow('contested ×3 (each caller)', duties, c.perCaller, { counted: 'calls', max: true }));
      }
      console.log(
        `\nHTTP signing, 3 replicas, PostgreSQL ${embedded ? 'embedded (fsync on)' : 'external'}, log level ${LOG_LEVEL}, Node ${process.version}${quick ? ', --quick' : ''}`,
      );
      console.log('| scenario | concurrency | n | throughput | p50 | p99 | max |');
      console.log('|---|---|---|---|---|---|---|');
      for (const line of lines) console.log(line);
      const c1 = results.uncontested_c1 as RequestStats;
      const k1 = (results.contested_c1 as { allResolved: RequestStats }).allResolved;
      console.log(
        `\ntargets: p50 at concurrency 1 < 5 ms: ${c1.p50 < 5 ? 'met' : 'MISSED'} (${ms(c1.p50)}); contested duties resolved for all callers p99 < 20 ms: ${k1.p99 < 20 ? 'met' : 'MISSED'} (${ms(k1.p99)})`,
      );
      console.log(JSON.stringify(results));
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
    }
  });
}

await main();

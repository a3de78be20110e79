/**
 * HTTP signing benchmark: three `ha-signer serve` replicas (separate processes) on one real PostgreSQL (embedded,
 * fsync on, or VALIDATOR_HA_DATABASE_URL), called through RemoteHASigner with bearer-token auth and local keys.
 *   - uncontested: each duty requested once, at concurrency 1, 8 and 32 (requests spread over the replicas);
 *   - contested: each duty requested by 3 validator nodes at once, each through a different replica; the figure that
 *     matters is when the LAST of the three callers has its answer (signature, or 409 with the stored signature).
 * Usage: npm run build && node bench/http-signing.ts [--quick]     (or npm run bench:http)
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keccak256, stringToHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { RemoteHASigner } from '../dist/client/index.js';
import { externalPostgres, freePort, startEmbeddedPostgres, type RunningPostgres } from '../dist/dev/embedded-postgres.js';
import { startReplica, type SignerReplica } from '../dist/demo/replicas.js';
import { DutyAlreadySignedError, runMigrations } from '../dist/protection/index.js';

const quick = process.argv.includes('--quick');
const ROLLUP = `0x${'b5'.repeat(20)}`;
const KEYS = ['11', '22', '33', '44'].map((b) => `0x${b.repeat(32)}` as `0x${string}`);
const VALIDATORS = KEYS.map((k) => privateKeyToAccount(k).address.toLowerCase());
const TOKEN = 'bench-token-0123456789abcdef';
const LOG_LEVEL = process.env.HA_SIGNER_LOG_LEVEL ?? 'warn';

let nextSlot = 1_000;
const hashOf = (label: string): `0x${string}` => keccak256(stringToHex(label));

interface Stats {
  count: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
}

function stats(latencies: number[], seconds: number): Stats {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, seconds, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

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

/** `concurrency` workers, each signing fresh duties back to back, for `total` requests. */
async function uncontested(clients: RemoteHASigner[], concurrency: number, total: number): Promise<Stats> {
  const latencies: number[] = [];
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (;;) {
        const n = issued++;
        if (n >= total) return;
        const client = clients[(worker + n) % clients.length]!;
        const t0 = performance.now();
        const outcome = await signOnce(client, freshDuty());
        if (outcome !== 'signed') throw new Error('uncontested duty was already signed');
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return stats(latencies, (performance.now() - started) / 1000);
}

/** Each duty requested by 3 nodes at once (node i through replica i); `concurrency` duties in flight. */
async function contested(
  clients: RemoteHASigner[],
  concurrency: number,
  duties: number,
): Promise<{ allResolved: Stats; perCaller: Stats; signedOnce: boolean }> {
  const all: number[] = [];
  const perCaller: number[] = [];
  let issued = 0;
  let signedOnce = true;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        if (issued++ >= duties) return;
        const duty = freshDuty();
        const t0 = performance.now();
        const outcomes = await Promise.all(
          clients.map(async (client) => {
            const outcome = await signOnce(client, duty);
            perCaller.push(performance.now() - t0);
            return outcome;
          }),
        );
        all.push(performance.now() - t0);
        if (outcomes.filter((o) => o === 'signed').length !== 1) signedOnce = false;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { allResolved: stats(all, seconds), perCaller: stats(perCaller, seconds), signedOnce };
}

const ms = (value: number): string => `${value.toFixed(2)} ms`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ha-signer-bench-'));
  let postgres: RunningPostgres | undefined;
  const replicas: SignerReplica[] = [];
  try {
    let databaseUrl = process.env.VALIDATOR_HA_DATABASE_URL;
    if (!databaseUrl) {
      postgres = await startEmbeddedPostgres();
      databaseUrl = await externalPostgres(postgres.adminUrl).createDatabase('ha_signer_http_bench');
    }
    await runMigrations({ databaseUrl, direction: 'up', rollupAddress: ROLLUP });
    await mkdir(join(dir, 'keys'));
    for (const [i, key] of KEYS.entries()) await writeFile(join(dir, 'keys', `k${i}`), key);
    await writeFile(join(dir, 'tokens.json'), JSON.stringify([{ name: 'bench', token: TOKEN, validators: ['*'] }]));
    for (let i = 0; i < 3; i++) {
      replicas.push(
        startReplica({
          nodeId: `bench-${i}`,
          port: await freePort(),
          env: {
            VALIDATOR_HA_DATABASE_URL: databaseUrl,
            VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
            HA_SIGNER_KEYS_DIR: join(dir, 'keys'),
            HA_SIGNER_AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
            HA_SIGNER_LOG_LEVEL: LOG_LEVEL,
          },
        }),
      );
    }
    await Promise.all(replicas.map((r) => r.waitReady()));
    // One client per replica: node i talks to replica i (failover endpoints behind it are not exercised here).
    const clients = replicas.map(
      (r, i) => new RemoteHASigner({ endpoints: [r.url, ...replicas.filter((_, k) => k !== i).map((o) => o.url)], token: TOKEN }),
    );

    const scale = quick ? 0.25 : 1;
    const n = (count: number): number => Math.max(20, Math.round(count * scale));
    await uncontested(clients, 4, n(300)); // warm-up: JIT, pools, prepared statements

    const results: Record<string, unknown> = {};
    const lines: string[] = [];
    for (const concurrency of [1, 8, 32]) {
      const s = await uncontested(clients, concurrency, n(concurrency === 1 ? 1000 : 3000));
      results[`uncontested_c${concurrency}`] = s;
      lines.push(
        `| uncontested | ${concurrency} | ${s.count} | ${(s.count / s.seconds).toFixed(0)} req/s | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)} |`,
      );
    }
    for (const concurrency of [1, 8]) {
      const c = await contested(clients, concurrency, n(concurrency === 1 ? 500 : 1500));
      results[`contested_c${concurrency}`] = c;
      if (!c.signedOnce) throw new Error('a contested duty was signed more than once');
      lines.push(
        `| contested ×3 (all callers answered) | ${concurrency} duties | ${c.allResolved.count} duties | ${(c.allResolved.count / c.allResolved.seconds).toFixed(0)} duties/s | ${ms(c.allResolved.p50)} | ${ms(c.allResolved.p99)} | ${ms(c.allResolved.max)} |`,
      );
      lines.push(
        `| contested ×3 (each caller) | ${concurrency} duties | ${c.perCaller.count} calls | ${(c.perCaller.count / c.perCaller.seconds).toFixed(0)} req/s | ${ms(c.perCaller.p50)} | ${ms(c.perCaller.p99)} | ${ms(c.perCaller.max)} |`,
      );
    }
    console.log(
      `\nHTTP signing, 3 replicas, PostgreSQL ${postgres ? 'embedded (fsync on)' : 'external'}, log level ${LOG_LEVEL}, Node ${process.version}${quick ? ', --quick' : ''}`,
    );
    console.log('| scenario | concurrency | n | throughput | p50 | p99 | max |');
    console.log('|---|---|---|---|---|---|---|');
    for (const line of lines) console.log(line);
    const c1 = results.uncontested_c1 as Stats;
    const k1 = (results.contested_c1 as { allResolved: Stats }).allResolved;
    console.log(
      `\ntargets: p50 at concurrency 1 < 5 ms: ${c1.p50 < 5 ? 'met' : 'MISSED'} (${ms(c1.p50)}); contested duties resolved for all callers p99 < 20 ms: ${k1.p99 < 20 ? 'met' : 'MISSED'} (${ms(k1.p99)})`,
    );
    console.log(JSON.stringify(results));
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();

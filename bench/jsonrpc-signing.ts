/**
 * JSON-RPC benchmark: what the protected JSON-RPC's claim check costs a stock Aztec node. One `ha-signer serve`
 * replica on a real PostgreSQL (embedded, fsync on, or VALIDATOR_HA_DATABASE_URL), local keys, keep-alive HTTP on
 * 127.0.0.1, at concurrency 1 and 32:
 *   - /v1 sign (claim, sign, record) through RemoteHASigner: the reference, and what creates the claims;
 *   - JSON-RPC eth_sign of a claimed 32-byte digest: the claim lookup (indexed read) plus the signature;
 *   - JSON-RPC eth_sign of 33 bytes by an opted-in client: the same path and signature without any lookup (baseline),
 *     so "claimed minus baseline" is what the check adds.
 * Usage: npm run build && node bench/jsonrpc-signing.ts [--quick]
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keccak256, stringToHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { RemoteHASigner } from '../dist/client/index.js';
import { CLAIM_LOOKBACK_SLOTS } from '../dist/protection/claims-lookup.js';
import { freePort } from '../dist/dev/embedded-postgres.js';
import { startReplica } from '../dist/demo/replicas.js';
import { withSignerFixture } from './lib/network.ts';
import { ms, runRequests, statsRow, warmUp, type RequestStats } from './lib/request-loop.ts';

const quick = process.argv.includes('--quick');
const ROLLUP = `0x${'b6'.repeat(20)}`;
const KEYS = ['11', '22', '33', '44'].map((b) => `0x${b.repeat(32)}` as `0x${string}`);
const VALIDATORS = KEYS.map((k) => privateKeyToAccount(k).address.toLowerCase());
const TOKEN = 'bench-token-0123456789abcdef';
const SECRET = 'bench-secret-0123456789abcdefghijklmnop';

/** `concurrency` workers sending `total` requests back to back (request n: `one(n)`). */
const run = (concurrency: number, total: number, one: (n: number) => Promise<void>): Promise<RequestStats> =>
  runRequests({ concurrency, total, request: one });

async function ethSign(url: string, address: string, data: string): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_sign', params: [address, data] }),
  });
  const body = (await response.json()) as { result?: string; error?: { message: string } };
  if (!body.result) throw new Error(`eth_sign failed: ${body.error?.message ?? response.status}`);
}

async function main(): Promise<void> {
  await withSignerFixture({ name: 'jsonrpc', rollup: ROLLUP, keys: KEYS, token: TOKEN }, async ({ dir, embedded, replicaEnv }) => {
    await writeFile(
      join(dir, 'clients.json'),
      JSON.stringify([{ name: 'bench-node', secret: SECRET, validators: ['*'], allowUnclaimedDigests: true }]),
    );
    const replica = startReplica({
      nodeId: 'bench-0',
      port: await freePort(),
      env: { ...replicaEnv, HA_SIGNER_JSONRPC_CLIENTS_FILE: join(dir, 'clients.json'), HA_SIGNER_LOG_LEVEL: 'warn' },
    });
    try {
      await replica.waitReady();
      const client = new RemoteHASigner({ endpoints: [replica.url], token: TOKEN });
      const rpcUrl = `${replica.url}/jsonrpc/${SECRET}`;
      const n = (count: number): number => Math.max(50, Math.round(count * (quick ? 0.25 : 1)));

      // Claims to look up: duties signed through /v1 (their rows hold the hashes the JSON-RPC is then asked to sign).
      let slot = 1_000;
      const claimed: { validator: string; hash: `0x${string}` }[] = [];
      const sign = async (): Promise<void> => {
        const s = slot++;
        const duty = { validator: VALIDATORS[s % VALIDATORS.length]!, hash: keccak256(stringToHex(`jsonrpc-bench/${s}`)) };
        await client.signWithProtection(duty.validator, duty.hash, { dutyType: 'ATTESTATION', slot: BigInt(s), blockNumber: BigInt(s) });
        claimed.push(duty);
      };
      await warmUp(n(300), sign);
      const rows: string[] = [];
      const figures: Record<string, RequestStats> = {};
      for (const concurrency of [1, 32]) {
        const total = n(concurrency === 1 ? 1000 : 3000);
        const v1 = await run(concurrency, total, sign);
        // The newest claims: the lookup searches each validator's newest CLAIM_LOOKBACK_SLOTS slots, as a live
        // node's claims are (older ones would measure the refusal path).
        const recent = claimed.slice(-Math.min(claimed.length, CLAIM_LOOKBACK_SLOTS));
        const lookup = await run(concurrency, total, async (i) => {
          const duty = recent[i % recent.length]!;
          await ethSign(rpcUrl, duty.validator, duty.hash);
        });
        const baseline = await run(concurrency, total, async (i) => {
          const duty = claimed[i % claimed.length]!;
          await ethSign(rpcUrl, duty.validator, `${duty.hash}00`);
        });
        figures[`v1_c${concurrency}`] = v1;
        figures[`claimed_c${concurrency}`] = lookup;
        figures[`baseline_c${concurrency}`] = baseline;
        for (const [name, s] of [
          ['/v1 sign (claim, sign, record)', v1],
          ['JSON-RPC eth_sign, claim check', lookup],
          ['JSON-RPC eth_sign, no lookup (baseline)', baseline],
        ] as const) {
          rows.push(statsRow(name, concurrency, s));
        }
        rows.push(`| claim check adds (p50) | ${concurrency} | | | ${ms(lookup.p50 - baseline.p50)} | |`);
      }
      console.log(
        `\nJSON-RPC through the claim check, 1 replica, PostgreSQL ${embedded ? 'embedded (fsync on)' : 'external'}, Node ${process.version}${quick ? ', --quick' : ''}`,
      );
      console.log('| path | concurrency | n | throughput | p50 | p99 |');
      console.log('|---|---|---|---|---|---|');
      for (const row of rows) console.log(row);
      console.log(JSON.stringify(figures));
    } finally {
      await replica.stop();
    }
  });
}

await main();

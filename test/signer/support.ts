/** Shared setup of the signer integration tests: keys, tokens, a migrated database and `serve` replica processes. */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Hex, keccak256, stringToHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { CLI_PATH, type SignerReplica, startReplica } from '../../src/demo/replicas.js';
import { runMigrations } from '../../src/protection/index.js';

export const ROLLUP = '0x00000000000000000000000000000000000a11ce';

/** Fixed test keys (never real funds). */
export const KEYS: { privateKey: Hex; address: string }[] = ['01', '02', '03', '04'].map((byte) => {
  const privateKey = `0x${byte.repeat(32)}` as Hex;
  return { privateKey, address: privateKeyToAccount(privateKey).address.toLowerCase() };
});

export const TOKENS = {
  /** May use every validator. */
  all: 'token-all-validators-0123456789',
  /** May use KEYS[0] only. */
  first: 'token-first-validator-0123456789',
};

export function assertBuilt(): void {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first (npm test does)`);
}

export async function migratedDatabase(url: string): Promise<string> {
  await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
  return url;
}

export interface SignerFixture {
  dir: string;
  keysDir: string;
  tokensFile: string;
  /** Environment every replica gets. */
  baseEnv: Record<string, string>;
  replicas: SignerReplica[];
  start(nodeId: string, extraEnv?: Record<string, string>): Promise<SignerReplica>;
  stopAll(): Promise<void>;
}

export async function signerFixture(databaseUrl: string, env: Record<string, string> = {}): Promise<SignerFixture> {
  assertBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'ha-signer-test-'));
  const keysDir = join(dir, 'keys');
  await mkdir(keysDir);
  for (const [i, key] of KEYS.entries()) await writeFile(join(keysDir, `validator-${i}.key`), `${key.privateKey}\n`, { mode: 0o600 });
  const tokensFile = join(dir, 'tokens.json');
  await writeFile(
    tokensFile,
    JSON.stringify([
      { name: 'node-all', token: TOKENS.all, validators: ['*'] },
      { name: 'node-first', token: TOKENS.first, validators: [KEYS[0]!.address] },
    ]),
  );
  const baseEnv: Record<string, string> = {
    VALIDATOR_HA_DATABASE_URL: databaseUrl,
    VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
    HA_SIGNER_KEYS_DIR: keysDir,
    HA_SIGNER_AUTH_TOKENS_FILE: tokensFile,
    HA_SIGNER_LOG_LEVEL: 'warn',
    ...env,
  };
  const replicas: SignerReplica[] = [];
  return {
    dir,
    keysDir,
    tokensFile,
    baseEnv,
    replicas,
    async start(nodeId, extraEnv = {}) {
      const replica = startReplica({
        nodeId,
        port: await freePort(),
        env: { ...baseEnv, ...extraEnv },
        logFile: join(dir, `${nodeId}.log`),
      });
      replicas.push(replica);
      await replica.waitReady();
      return replica;
    },
    async stopAll() {
      await Promise.all(replicas.map((replica) => replica.stop(5_000)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

export async function call(
  url: string,
  path: string,
  init: { method?: string; token?: string | undefined; body?: unknown; rawBody?: string; contentType?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const body = init.rawBody ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
  if (body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
  const response = await fetch(`${url}${path}`, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed };
}

export function signBody(
  slot: number | string,
  messageHash: string,
  dutyType = 'ATTESTATION',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    messageHash,
    context: {
      dutyType,
      slot: String(slot),
      ...(dutyType === 'BLOCK_PROPOSAL' ? { blockIndexWithinCheckpoint: 0, blockNumber: '1' } : {}),
      ...extra,
    },
  };
}

/** A distinct 32-byte message hash per label. */
export function hash(label: number | string): Hex {
  return keccak256(stringToHex(String(label)));
}

export async function dutyRows(
  databaseUrl: string,
  validatorAddress?: string,
): Promise<
  {
    slot: string;
    duty_type: string;
    status: string;
    message_hash: string;
    signature: string | null;
    node_id: string;
    takeovers: number;
    block_index_within_checkpoint: number;
  }[]
> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query(
      `SELECT slot::text, duty_type, status, message_hash, signature, node_id, takeovers, block_index_within_checkpoint FROM validator_duties ${validatorAddress ? 'WHERE validator_address = $1' : ''} ORDER BY slot, duty_type`,
      validatorAddress ? [validatorAddress] : [],
    );
    return result.rows;
  } finally {
    await client.end();
  }
}

export async function metricValue(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(' ').pop());
  }
  return total;
}

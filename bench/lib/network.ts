/**
 * Over the network: bench/http-signing.ts (/v1 through 3 `serve` replicas) and bench/jsonrpc-signing.ts (the
 * JSON-RPC path of a stock node), each in its own process with its own embedded PostgreSQL; their last output line
 * is their figures as JSON (bench/lib/request-loop.ts measures them). withSignerFixture is what those two scripts
 * set up for their `ha-signer serve` replicas.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { externalPostgres, startEmbeddedPostgres, type RunningPostgres } from '../../dist/dev/embedded-postgres.js';
import { runMigrations } from '../../dist/protection/index.js';
import type { RequestStats } from './request-loop.ts';

/** One run's figures as the scripts print them; max is optional because JSON-RPC figures written before it was shared lack it. */
export type HttpStats = Omit<RequestStats, 'max'> & { max?: number };

export type NetworkFigures = Record<string, HttpStats | { allResolved: HttpStats; perCaller: HttpStats; signedOnce: boolean }>;

export async function runNetworkBench(script: 'http-signing.ts' | 'jsonrpc-signing.ts', quick: boolean): Promise<NetworkFigures> {
  const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
  const child = spawn(process.execPath, [path, ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const line = out
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (code !== 0 || !line) throw new Error(`${script} failed (exit ${code}): ${out.slice(-2000)}`);
  return JSON.parse(line) as NetworkFigures;
}

export interface SignerFixture {
  /** Temporary directory of the run (keys/, tokens.json; a script may add its own files). */
  dir: string;
  /** True when this run started its own embedded PostgreSQL (fsync on); false with VALIDATOR_HA_DATABASE_URL. */
  embedded: boolean;
  /** Environment every replica of the run gets: database, rollup, key directory, bearer-token file. */
  replicaEnv: Record<string, string>;
}

/**
 * For the length of `body`: a migrated database `ha_signer_<name>_bench` (on VALIDATOR_HA_DATABASE_URL's server, else
 * on an embedded PostgreSQL), the keys as files and a bearer-token file for `token`; all removed afterwards.
 */
export async function withSignerFixture<T>(
  setup: { name: string; rollup: string; keys: readonly string[]; token: string },
  body: (fixture: SignerFixture) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `ha-signer-${setup.name}-bench-`));
  let postgres: RunningPostgres | undefined;
  try {
    let databaseUrl = process.env.VALIDATOR_HA_DATABASE_URL;
    if (!databaseUrl) {
      postgres = await startEmbeddedPostgres();
      databaseUrl = await externalPostgres(postgres.adminUrl).createDatabase(`ha_signer_${setup.name}_bench`);
    }
    await runMigrations({ databaseUrl, direction: 'up', rollupAddress: setup.rollup });
    await mkdir(join(dir, 'keys'));
    for (const [i, key] of setup.keys.entries()) await writeFile(join(dir, 'keys', `k${i}`), key);
    await writeFile(join(dir, 'tokens.json'), JSON.stringify([{ name: 'bench', token: setup.token, validators: ['*'] }]));
    return await body({
      dir,
      embedded: postgres !== undefined,
      replicaEnv: {
        VALIDATOR_HA_DATABASE_URL: databaseUrl,
        VALIDATOR_HA_ROLLUP_ADDRESS: setup.rollup,
        HA_SIGNER_KEYS_DIR: join(dir, 'keys'),
        HA_SIGNER_AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
      },
    });
  } finally {
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What a chaos run drives: its own PostgreSQL (restartable: the run stops it fast and immediately), a migrated
 * database bound to a rollup, three `ha-signer serve` replicas on fixed ports (a restarted replica comes back on its
 * port under a new node id, as a Deployment's pod would) and a key backend that can hang or fail behind replica 1.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { createEmbeddedCluster, type EmbeddedCluster, freePort } from '../../src/dev/embedded-postgres.js';
import { type SignerReplica, startReplica } from '../../src/demo/replicas.js';
import { runMigrations } from '../../src/protection/index.js';
import { type FaultyKeyBackend, startFaultyKeyBackend } from './key-backend.js';

export const ROLLUP = `0x${'c4'.repeat(20)}`;
export const TOKEN = 'chaos-token-0123456789abcdef';
/** Fixed test keys (never real funds). */
export const KEYS: { privateKey: Hex; address: string }[] = ['21', '22', '23', '24'].map((byte) => {
  const privateKey = `0x${byte.repeat(32)}` as Hex;
  return { privateKey, address: privateKeyToAccount(privateKey).address.toLowerCase() };
});
/** Short lease, so a stopped replica's duties are taken over within the run. */
export const LEASE_MS = 2_000;
const DATABASE = 'chaos';

export interface ReplicaSlot {
  index: number;
  port: number;
  url: string;
  incarnation: number;
  replica: SignerReplica;
  /** Replica 1 signs through the faulty key backend; the others hold the keys. */
  remoteKeys: boolean;
}

export class ChaosEnvironment {
  readonly slots: ReplicaSlot[] = [];

  private constructor(
    readonly dir: string,
    readonly cluster: EmbeddedCluster,
    readonly databaseUrl: string,
    readonly keyBackend: FaultyKeyBackend,
    private readonly baseEnv: Record<string, string>,
  ) {}

  static async start(replicaCount = 3): Promise<ChaosEnvironment> {
    const dir = await mkdtemp(join(tmpdir(), 'ha-signer-chaos-'));
    const cluster = await createEmbeddedCluster({ maxConnections: 200 });
    await cluster.start();
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.end();
    const url = new URL(cluster.adminUrl);
    url.pathname = `/${DATABASE}`;
    const databaseUrl = url.toString();
    await runMigrations({ databaseUrl, direction: 'up', rollupAddress: ROLLUP });
    const keysDir = join(dir, 'keys');
    await mkdir(keysDir);
    for (const [i, key] of KEYS.entries()) await writeFile(join(keysDir, `validator-${i}.key`), `${key.privateKey}\n`, { mode: 0o600 });
    const tokensFile = join(dir, 'tokens.json');
    await writeFile(tokensFile, JSON.stringify([{ name: 'chaos-clients', token: TOKEN, validators: ['*'] }]));
    const keyBackend = await startFaultyKeyBackend(KEYS.map((k) => k.privateKey));
    const baseEnv = {
      VALIDATOR_HA_DATABASE_URL: databaseUrl,
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
      VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: String(LEASE_MS),
      HA_SIGNER_KEYS_DIR: keysDir,
      HA_SIGNER_AUTH_TOKENS_FILE: tokensFile,
      HA_SIGNER_LOG_LEVEL: 'warn',
    };
    const environment = new ChaosEnvironment(dir, cluster, databaseUrl, keyBackend, baseEnv);
    for (let index = 0; index < replicaCount; index++) {
      const port = await freePort();
      const slot: ReplicaSlot = {
        index,
        port,
        url: `http://127.0.0.1:${port}`,
        incarnation: 0,
        remoteKeys: index === 0,
        replica: undefined as unknown as SignerReplica,
      };
      environment.slots.push(slot);
      slot.replica = environment.spawn(slot);
    }
    await Promise.all(environment.slots.map((slot) => slot.replica.waitReady(60_000)));
    return environment;
  }

  private spawn(slot: ReplicaSlot): SignerReplica {
    const nodeId = `r${slot.index + 1}-${slot.incarnation}`;
    return startReplica({
      nodeId,
      port: slot.port,
      env: { ...this.baseEnv, ...(slot.remoteKeys ? { HA_SIGNER_WEB3SIGNER_URL: this.keyBackend.url } : {}) },
      logFile: join(this.dir, `${nodeId}.log`),
    });
  }

  /** Starts a new incarnation of a replica that exited (same port); waits until it is ready. */
  async restart(slot: ReplicaSlot): Promise<void> {
    if (slot.replica.running) {
      slot.replica.kill('SIGKILL');
      await slot.replica.exited;
    }
    slot.incarnation++;
    slot.replica = this.spawn(slot);
    await slot.replica.waitReady(90_000);
  }

  async waitAllReady(timeoutMs = 90_000): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.replica.waitReady(timeoutMs)));
  }

  /** The postmaster's pid, from its postmaster.pid (read through the server's data_directory setting). */
  async postmasterPid(): Promise<number> {
    const rows = await this.adminQuery<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'data_directory'`);
    const text = await readFile(join(rows[0]!.setting, 'postmaster.pid'), 'utf8');
    return Number(text.split('\n')[0]);
  }

  /** Immediate shutdown (SIGQUIT: no checkpoint, crash recovery at the next start). */
  async stopPostgresImmediately(): Promise<void> {
    const pid = await this.postmasterPid();
    process.kill(pid, 'SIGQUIT');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && alive(pid)) await sleep(20);
    await this.cluster.stop(); // forgets the exited server so start() launches a new one
  }

  /** Backends of the chaos database (or of one replica, by its pool's application_name). */
  async backends(applicationPrefix?: string): Promise<number[]> {
    const rows = await this.adminQuery<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name LIKE $2 || '%')`,
      [DATABASE, applicationPrefix ?? null],
    );
    return rows.map((row) => row.pid);
  }

  async terminateBackends(): Promise<number> {
    const rows = await this.adminQuery<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [DATABASE],
    );
    return rows.filter((row) => row.ok).length;
  }

  async adminQuery<T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const url = new URL(this.cluster.adminUrl);
    url.pathname = `/${database}`;
    const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 10_000, application_name: 'chaos-admin' });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  async queryChaosDatabase<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.adminQuery<T>(sql, params, DATABASE);
  }

  /** Stops everything; keeps the replicas' logs when asked (a failing run). */
  async close(keepLogs: boolean): Promise<void> {
    for (const slot of this.slots) if (slot.replica.running) slot.replica.child.kill('SIGCONT');
    await Promise.all(this.slots.map((slot) => slot.replica.stop(5_000)));
    await this.keyBackend.close();
    await this.cluster.remove();
    if (!keepLogs) await rm(this.dir, { recursive: true, force: true });
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

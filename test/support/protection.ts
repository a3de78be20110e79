/** Helpers for protection-core integration tests: migrated databases and signers on the run's real PostgreSQL. */
import pg from 'pg';
import { createHASigner, type CreateHASignerConfig, runMigrations, type ValidatorHASigner } from '../../src/protection/index.js';
import type { PostgresSlashingProtectionDatabase } from '../../src/protection/db.js';
import { createTestDatabase } from './postgres.js';

export const ROLLUP = `0x${'a1'.repeat(20)}`;
export const OTHER_ROLLUP = `0x${'b2'.repeat(20)}`;
export const VALIDATOR = `0x${'c3'.repeat(20)}`;

export const hash = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;
/** A well-formed 65-byte signature derived from n (content is irrelevant to the protection core). */
export const fakeSignature = (n: number): string => `0x${n.toString(16).padStart(128, '0')}1b`;

/** A new database after `ha-signer migrate up` (Aztec schema 1 unless asked for 2, which adds checkpoint_number). */
export async function migratedDatabase(prefix = 'p', aztecSchema?: 1 | 2): Promise<string> {
  const url = await createTestDatabase(prefix);
  await runMigrations({ databaseUrl: url, direction: 'up', ...(aztecSchema ? { aztecSchema } : {}) });
  return url;
}

export interface TestSigner {
  signer: ValidatorHASigner;
  db: PostgresSlashingProtectionDatabase;
}

const open: TestSigner[] = [];

export async function startSigner(databaseUrl: string, overrides: Partial<CreateHASignerConfig> = {}): Promise<TestSigner> {
  const { signer, db } = await createHASigner({
    databaseUrl,
    nodeId: `node-${open.length}`,
    rollupAddress: ROLLUP,
    pollingIntervalMs: 100,
    signingTimeoutMs: 3_000,
    ...overrides,
  });
  await signer.start();
  const handle = { signer, db };
  open.push(handle);
  return handle;
}

export async function stopAllSigners(): Promise<void> {
  const all = open.splice(0);
  await Promise.allSettled(all.map(({ signer }) => signer.stop()));
}

export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  databaseUrl: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export const blockProposal = (slot: number | bigint, index = 0) =>
  ({ dutyType: 'BLOCK_PROPOSAL', slot: BigInt(slot), blockNumber: BigInt(slot) * 2n, blockIndexWithinCheckpoint: index }) as const;
export const attestation = (slot: number | bigint) => ({ dutyType: 'ATTESTATION', slot: BigInt(slot), blockNumber: 7n }) as const;

/**
 * A signFn that blocks inside the signing step until released: `entered` resolves once signing has started,
 * `release()` lets it finish with `outcome()` (return a signature, or throw).
 */
export function gatedSignFn<T>(outcome: () => T | Promise<T>): { signFn: () => Promise<T>; entered: Promise<void>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let enter!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  return {
    signFn: async () => {
      enter();
      await gate;
      return await outcome();
    },
    entered,
    release,
  };
}

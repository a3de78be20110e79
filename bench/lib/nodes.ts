/**
 * The three things measured on the same server: ha-signer's protection core through its library API, the published
 * @aztec/validator-ha-signer, and the floor: the same SQL work (one claim and one record statement per duty,
 * batched as the core batches them) issued directly with `pg`, with no engine around it. Every pool counts its
 * query() calls, so round trips per duty come from the client side (commits come from pg_stat_database).
 */
import pg from 'pg';
import { RECORD_SIGNED, claimDuties } from '../../dist/protection/db/statements.js';
import type { PruneOptions } from '../../dist/protection/db/maintenance.js';
import { createHASigner, createPool } from '../../dist/protection/index.js';
import { ROLLUP } from './postgres.ts';

export type Impl = 'ha-signer' | 'aztec' | 'floor';
export const IMPLS: readonly Impl[] = ['ha-signer', 'aztec', 'floor'];

export type SignFn = (hash: { toString(): string }) => Promise<string>;
export const noopSign: SignFn = async (h) => `0x${h.toString().slice(2)}${'00'.repeat(32)}1b`;

export interface BenchNode {
  /** Resolves when this node signed the duty; rejects when another node did (or on error). */
  sign(validator: string, hash: string, slot: number): Promise<unknown>;
  /** query() calls made on this node's pool so far. */
  readonly queries: number;
  stop(): Promise<void>;
}

export interface NodeOptions {
  url: string;
  nodeId: string;
  poolMax?: number;
  /** ha-signer only: prune signed duties older than this (hours); undefined: pruning off. */
  pruneAfterHours?: number;
}

/**
 * Counts the queries sent on a pg.Pool's connections: every client the pool opens has its query() wrapped, so
 * pool.query() and queries on clients taken with pool.connect() both count, once each (LISTEN uses its own client).
 */
function countQueries(pool: pg.Pool): { pool: pg.Pool; count: () => number } {
  let count = 0;
  pool.on('connect', (client) => {
    const original = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      count++;
      return original(...args);
    };
  });
  return { pool, count: () => count };
}

export async function ourNode(
  options: NodeOptions,
): Promise<BenchNode & { prune(maxAgeMs: number, options?: PruneOptions): Promise<number> }> {
  const config = {
    databaseUrl: options.url,
    nodeId: options.nodeId,
    rollupAddress: ROLLUP,
    pollingIntervalMs: 100,
    signingTimeoutMs: 3_000,
    poolMaxCount: options.poolMax ?? 10,
    ...(options.pruneAfterHours !== undefined ? { cleanupOldDutiesAfterHours: options.pruneAfterHours } : {}),
  };
  const counted = countQueries(createPool(config));
  const { signer, db } = await createHASigner(config, { pool: counted.pool });
  await signer.start();
  return {
    sign: (validator, hash, slot) =>
      signer.signWithProtection(validator, hash, { dutyType: 'ATTESTATION', slot: BigInt(slot), blockNumber: 1n }, noopSign),
    get queries() {
      return counted.count();
    },
    prune: (maxAgeMs, options) => db.cleanupOldDuties(maxAgeMs, options),
    stop: async () => {
      await signer.stop();
    },
  };
}

export async function aztecNode(options: NodeOptions): Promise<BenchNode> {
  // Imported on first use: its logger setup is not part of what the profiled process measures.
  const { createHASigner: createAztecHASigner } = await import('@aztec/validator-ha-signer/factory');
  const counted = countQueries(new pg.Pool({ connectionString: options.url, max: options.poolMax ?? 10 }));
  const { signer } = await createAztecHASigner(
    {
      databaseUrl: options.url,
      haSigningEnabled: true,
      nodeId: options.nodeId,
      pollingIntervalMs: 100,
      signingTimeoutMs: 3_000,
      maxStuckDutiesAgeMs: 144_000,
      l1Contracts: { rollupAddress: { toString: () => ROLLUP } },
    } as never,
    { pool: counted.pool } as never,
  );
  await signer.start();
  return {
    sign: (validator, hash, slot) =>
      signer.signWithProtection(
        { toString: () => validator } as never,
        { toString: () => hash } as never,
        { dutyType: 'ATTESTATION', slot: BigInt(slot), blockNumber: 1n } as never,
        noopSign as never,
      ),
    get queries() {
      return counted.count();
    },
    stop: async () => {
      await signer.stop();
      await counted.pool.end().catch(() => {});
    },
  };
}

/** Natural batching as the core does it: one statement in flight, everything that arrived meanwhile goes next. */
class Batcher<In, Out> {
  private queue: { item: In; resolve: (v: Out) => void; reject: (e: unknown) => void }[] = [];
  private busy = false;
  private readonly run: (items: In[]) => Promise<Out[]>;
  private readonly maxBatch: number;
  constructor(run: (items: In[]) => Promise<Out[]>, maxBatch = 256) {
    this.run = run;
    this.maxBatch = maxBatch;
  }

  submit(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const batch = this.queue.splice(0, this.maxBatch);
    this.run(batch.map((b) => b.item))
      .then(
        (out) => batch.forEach((b, i) => b.resolve(out[i]!)),
        (error: unknown) => batch.forEach((b) => b.reject(error)),
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }
}

interface FloorDuty {
  validator: string;
  slot: number;
  hash: string;
  token: string;
}

/**
 * The floor: claim (the core's claim statement, asynchronous commit) then record (synchronous commit), each
 * batched, on a plain pg.Pool. No validation, timeouts, notifications, retries or result mapping.
 */
export async function floorNode(options: NodeOptions): Promise<BenchNode> {
  const counted = countQueries(new pg.Pool({ connectionString: options.url, max: options.poolMax ?? 10 }));
  const columns = await counted.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'validator_duties' AND column_name = 'checkpoint_number'`,
  );
  const withCheckpoint = Number(columns.rows[0]?.n ?? 0) > 0;
  const claim = claimDuties(withCheckpoint);
  let tokens = 0;
  const claims = new Batcher<FloorDuty, boolean>(async (batch) => {
    const col = <T>(f: (d: FloorDuty) => T): T[] => batch.map(f);
    const values: unknown[] = [
      col(() => ROLLUP),
      col((d) => d.validator),
      col((d) => String(d.slot)),
      col(() => '1'),
      col(() => 0),
      col(() => 'ATTESTATION'),
      col((d) => d.hash),
      col(() => options.nodeId),
      col((d) => d.token),
      ...(withCheckpoint ? [col(() => '0')] : []),
      144_000,
    ];
    const result = await counted.pool.query<{ ord: string; is_new: boolean }>({ name: claim.name, text: claim.text, values });
    const isNew = new Map(result.rows.map((r) => [Number(r.ord), r.is_new]));
    return batch.map((_, i) => isNew.get(i + 1) === true);
  });
  const records = new Batcher<FloorDuty & { signature: string }, boolean>(async (batch) => {
    const col = <T>(f: (d: FloorDuty & { signature: string }) => T): T[] => batch.map(f);
    const values = [
      col(() => ROLLUP),
      col((d) => d.validator),
      col((d) => String(d.slot)),
      col(() => 'ATTESTATION'),
      col(() => 0),
      col((d) => d.token),
      col((d) => d.signature),
    ];
    const result = await counted.pool.query<{ lock_token: string }>({ name: RECORD_SIGNED.name, text: RECORD_SIGNED.text, values });
    const recorded = new Set(result.rows.map((r) => r.lock_token));
    return batch.map((d) => recorded.has(d.token));
  });
  return {
    sign: async (validator, hash, slot) => {
      const duty = { validator, slot, hash, token: `${options.nodeId}-${tokens++}` };
      if (!(await claims.submit(duty))) throw new Error('duty already claimed');
      const signature = await noopSign(hash);
      if (!(await records.submit({ ...duty, signature }))) throw new Error('record failed');
      return signature;
    },
    get queries() {
      return counted.count();
    },
    stop: () => counted.pool.end(),
  };
}

export function makeNode(impl: Impl, options: NodeOptions): Promise<BenchNode> {
  return impl === 'ha-signer' ? ourNode(options) : impl === 'aztec' ? aztecNode(options) : floorNode(options);
}

/** Unit tests of the failover-safety pieces: replication evaluation, the file mark store, the history guard's rules. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DatabaseRegressedError,
  FileHighWaterMarkStore,
  HistoryGuard,
  evaluateReplication,
  requiredSynchronousStandbys,
} from '../../src/protection/index.js';
import type { HistoryTop } from '../../src/protection/history-guard.js';
import { DutyType } from '../../src/protection/types.js';

const ROLLUP = `0x${'a1'.repeat(20)}`;
const V = `0x${'c3'.repeat(20)}`;
const row = (over: Partial<Parameters<typeof evaluateReplication>[0]> = {}) => ({
  standby_names: 'FIRST 1 (s1)',
  synchronous_commit: 'on',
  in_recovery: false,
  privileged: true,
  standbys: [{ name: 's1', state: 'streaming', syncState: 'sync', replyAgeMs: 100 }],
  ...over,
});

describe('replication evaluation', () => {
  it('parses how many standbys must confirm', () => {
    expect(requiredSynchronousStandbys('')).toBe(0);
    expect(requiredSynchronousStandbys('s1, s2')).toBe(1);
    expect(requiredSynchronousStandbys('*')).toBe(1);
    expect(requiredSynchronousStandbys('FIRST 2 (a, b, c)')).toBe(2);
    expect(requiredSynchronousStandbys('ANY 2 ("a", b)')).toBe(2);
    expect(requiredSynchronousStandbys('3 (a, b, c)')).toBe(3);
  });

  it('is synchronous only with enough fresh sync/quorum standbys and a waiting commit level', () => {
    expect(evaluateReplication(row()).synchronous).toBe(true);
    expect(evaluateReplication(row({ synchronous_commit: 'remote_apply' })).synchronous).toBe(true);
    for (const level of ['local', 'off']) expect(evaluateReplication(row({ synchronous_commit: level })).synchronous).toBe(false);
    expect(evaluateReplication(row({ standby_names: '' })).reasons.join()).toMatch(/synchronous_standby_names is empty/);
    expect(evaluateReplication(row({ standbys: [] })).reasons.join()).toMatch(/0 of 1 required/);
    const potential = [{ name: 's1', state: 'streaming', syncState: 'potential', replyAgeMs: 1 }];
    expect(evaluateReplication(row({ standbys: potential })).synchronous).toBe(false);
    const stale = [{ name: 's1', state: 'streaming', syncState: 'sync', replyAgeMs: 20_000 }];
    expect(evaluateReplication(row({ standbys: stale })).synchronous).toBe(false);
    const quorum = [
      { name: 'a', state: 'streaming', syncState: 'quorum', replyAgeMs: 1 },
      { name: 'b', state: 'catchup', syncState: 'quorum', replyAgeMs: 1 },
    ];
    expect(evaluateReplication(row({ standby_names: 'ANY 2 (a, b)', standbys: quorum })).synchronous).toBe(false);
    expect(evaluateReplication(row({ in_recovery: true })).reasons.join()).toMatch(/standby \(in recovery\)/);
    const hidden = [{ name: 's1', state: null, syncState: null, replyAgeMs: null }];
    expect(evaluateReplication(row({ privileged: false, standbys: hidden })).reasons.join()).toMatch(/pg_read_all_stats/);
  });
});

describe('FileHighWaterMarkStore', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('merges by max, never lowers, keeps rollups apart, refuses a corrupt file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'marks-unit-'));
    dirs.push(dir);
    const store = new FileHighWaterMarkStore(join(dir, 'sub', 'marks.json'));
    expect((await store.read(ROLLUP)).size).toBe(0);
    await store.raise(ROLLUP, new Map([[`${V}/ATTESTATION`, 10n]]));
    await Promise.all([
      store.raise(ROLLUP, new Map([[`${V}/ATTESTATION`, 7n]])),
      store.raise(ROLLUP, new Map([[`${V}/BLOCK_PROPOSAL`, 12n]])),
    ]);
    expect(await store.read(ROLLUP)).toEqual(
      new Map([
        [`${V}/ATTESTATION`, 10n],
        [`${V}/BLOCK_PROPOSAL`, 12n],
      ]),
    );
    expect((await store.read(`0x${'b2'.repeat(20)}`)).size).toBe(0);
    expect(JSON.parse(await readFile(store.path, 'utf8'))).toMatchObject({ format: 'ha-signer-high-water-marks' });
    await writeFile(
      store.path,
      '{"format": "ha-signer-high-water-marks", "rollups": {"' + ROLLUP + '": {"' + V + '": {"ATTESTATION": 5}}}}',
    );
    await expect(store.read(ROLLUP)).rejects.toThrow(ConfigError);
    await writeFile(store.path, 'not json');
    await expect(store.read(ROLLUP)).rejects.toThrow(/not JSON/);
  });
});

describe('HistoryGuard rules', () => {
  /** A database view: signed slots per kind and a low watermark. */
  const database =
    (signed: Record<string, number[]>, low?: number) =>
    async (_rollup: string, asked: { validatorAddress: string; dutyType: string; slot: bigint }[]): Promise<HistoryTop[]> =>
      asked.map((a) => {
        const slots = (signed[a.dutyType] ?? []).map(BigInt);
        return {
          ...a,
          holdsSlot: slots.includes(a.slot),
          topSlot: slots.length ? slots.reduce((x, y) => (x > y ? x : y)) : undefined,
          lowWatermarkSlot: low === undefined ? undefined : BigInt(low),
        };
      });
  const key = (slot: number, dutyType = DutyType.ATTESTATION) => ({
    rollupAddress: ROLLUP,
    validatorAddress: V,
    slot: BigInt(slot),
    dutyType,
    blockIndexWithinCheckpoint: -1,
  });

  it('flags a database without the duty at the mark, refuses up to the highest mark, stays refused after signing above it', async () => {
    const marks = new Map([
      [`${V}/ATTESTATION`, 10n],
      [`${V}/BLOCK_PROPOSAL`, 12n],
    ]);
    let view = database({ ATTESTATION: [1, 2, 3], BLOCK_PROPOSAL: [12] });
    const guard = new HistoryGuard({ read: async () => new Map(marks), raise: async () => {} }, (r, a) => view(r, a), ROLLUP);
    expect(await guard.check()).toHaveLength(1);
    expect(() => guard.assertAllowed(key(12, DutyType.BLOCK_PROPOSAL))).toThrow(DatabaseRegressedError);
    expect(() => guard.assertAllowed(key(13))).not.toThrow();
    guard.noteSigned(key(13));
    view = database({ ATTESTATION: [1, 2, 3, 13], BLOCK_PROPOSAL: [12] });
    await guard.check();
    expect(() => guard.assertAllowed(key(9))).toThrow(DatabaseRegressedError);
    // A watermark covering the lost kind's mark ends it; a lower one does not.
    view = database({ ATTESTATION: [1, 2, 3, 13], BLOCK_PROPOSAL: [12] }, 9);
    expect(await guard.check()).toHaveLength(1);
    view = database({ ATTESTATION: [1, 2, 3, 13], BLOCK_PROPOSAL: [12] }, 10);
    expect(await guard.check()).toHaveLength(0);
    expect(() => guard.assertAllowed(key(9))).not.toThrow();
    await guard.stop();
  });

  it('a healthy database (holds every marked duty, or pruned under the watermark) is never flagged', async () => {
    const marks = new Map([[`${V}/ATTESTATION`, 10n]]);
    const store = { read: async () => new Map(marks), raise: async () => {} };
    expect(await new HistoryGuard(store, database({ ATTESTATION: [10] }), ROLLUP).check()).toEqual([]);
    expect(await new HistoryGuard(store, database({}, 10), ROLLUP).check()).toEqual([]);
  });

  it('fails its start when the store cannot be read (fail closed)', async () => {
    const guard = new HistoryGuard(
      { read: async () => Promise.reject(new Error('store down')), raise: async () => {} },
      database({}),
      ROLLUP,
    );
    await expect(guard.start()).rejects.toThrow('store down');
  });
});

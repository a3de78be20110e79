/**
 * The JSON-RPC claim lookup by message hash: served by the primary key over the validator's newest slots, with no
 * index on the hash (which put every signed duty on a random page of a history-sized index: ~4x the WAL per duty).
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { CLAIM_LOOKBACK_SLOTS, CLAIMS_FOR_HASH_SQL, ClaimsLookup, findClaimsForHash } from '../../src/protection/claims-lookup.js';
import {
  ROLLUP,
  VALIDATOR,
  attestation,
  fakeSignature,
  hash,
  migratedDatabase,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';

afterEach(stopAllSigners);

const OTHER_VALIDATOR = `0x${'dd'.repeat(20)}`;

async function withPool<T>(url: string, body: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    return await body(pool);
  } finally {
    await pool.end();
  }
}

describe('claim lookup by message hash', () => {
  it('no index on validator_duties includes message_hash (migration 0005 drops the one 0004 made)', async () => {
    const url = await migratedDatabase();
    const indexes = await sql<{ indexdef: string }>(url, `SELECT indexdef FROM pg_indexes WHERE tablename = 'validator_duties'`);
    expect(indexes.length).toBeGreaterThan(0);
    expect(indexes.filter((i) => i.indexdef.includes('message_hash'))).toEqual([]);
  });

  it('finds signed and in-progress claims within the lookback, single and batched, and nothing for another validator or hash', async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    for (const slot of [100, 150])
      await signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
    // An in-progress claim (as a stock node's HA signer leaves it while it asks for the signature).
    await sql(
      url,
      `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, duty_type, status, message_hash, node_id, lock_token)
       VALUES ($1, $2, 151, 7, 'ATTESTATION', 'signing', $3, 'stock-node', 'token')`,
      [ROLLUP, VALIDATOR, hash(151)],
    );
    await withPool(url, async (pool) => {
      expect(await findClaimsForHash(pool, ROLLUP, VALIDATOR, hash(150))).toMatchObject([{ slot: 150n, status: 'signed' }]);
      expect(await findClaimsForHash(pool, ROLLUP, VALIDATOR, hash(151))).toMatchObject([
        { slot: 151n, status: 'signing', nodeId: 'stock-node' },
      ]);
      // Slot 100 is within CLAIM_LOOKBACK_SLOTS of the newest (151).
      expect(await findClaimsForHash(pool, ROLLUP, VALIDATOR, hash(100))).toMatchObject([{ slot: 100n }]);
      expect(await findClaimsForHash(pool, ROLLUP, OTHER_VALIDATOR, hash(150))).toEqual([]);
      expect(await findClaimsForHash(pool, ROLLUP, VALIDATOR, hash(999))).toEqual([]);

      const lookup = new ClaimsLookup(pool, ROLLUP, 1);
      const [a, b, c] = await Promise.all([
        lookup.find(VALIDATOR, hash(150)),
        lookup.find(VALIDATOR, hash(151)),
        lookup.find(OTHER_VALIDATOR, hash(151)),
      ]);
      expect(a).toMatchObject([{ slot: 150n, status: 'signed' }]);
      expect(b).toMatchObject([{ slot: 151n, status: 'signing' }]);
      expect(c).toEqual([]);
    });
  });

  it(`refuses (finds nothing for) a claim more than ${CLAIM_LOOKBACK_SLOTS} slots below the validator's newest duty`, async () => {
    const url = await migratedDatabase();
    const { signer } = await startSigner(url);
    const old = 10;
    const newest = old + CLAIM_LOOKBACK_SLOTS + 1;
    for (const slot of [old, newest])
      await signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
    await withPool(url, async (pool) => {
      expect(await findClaimsForHash(pool, ROLLUP, VALIDATOR, hash(old))).toEqual([]);
      expect(await new ClaimsLookup(pool, ROLLUP).find(VALIDATOR, hash(old))).toEqual([]);
      expect(await findClaimsForHash(pool, ROLLUP, VALIDATOR, hash(newest))).toHaveLength(1);
    });
  });

  it('is an index range scan of the primary key on a large history, never a sequential scan', async () => {
    const url = await migratedDatabase();
    // 50,000 signed duties of 50 validators (a bulk fixture: the triggers are skipped for the load).
    await sql(
      url,
      `SET session_replication_role = replica;
       INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, duty_type, status, message_hash, signature, node_id, lock_token)
       SELECT '${ROLLUP}', '0x' || lpad(to_hex(i % 50), 40, '0'), i / 50, 1, 'ATTESTATION', 'signed', '0x' || md5(i::text) || md5((-i)::text),
              '0x' || repeat('ab', 65), 'loader', md5(i::text)
       FROM generate_series(1, 50000) AS i;
       ANALYZE validator_duties;`,
    );
    const [plan] = await sql<{ 'QUERY PLAN': unknown }>(url, `EXPLAIN (FORMAT JSON) ${CLAIMS_FOR_HASH_SQL}`, [
      ROLLUP,
      `0x${'0'.repeat(38)}07`,
      `0x${'ab'.repeat(32)}`,
    ]);
    const text = JSON.stringify(plan?.['QUERY PLAN']);
    expect(text).toContain('validator_duties_pkey');
    expect(text).not.toContain('Seq Scan');
  });
});

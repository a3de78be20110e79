/**
 * The claim is a named prepared statement: PostgreSQL caches its generic plan per connection, possibly built while
 * validator_duties is empty, and keeps it until an ANALYZE. That plan must still probe the primary key per duty; a
 * sequential scan there would read the whole table on every claim as the table grows.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { claimDuties } from '../../src/protection/db/statements.js';
import { ROLLUP, migratedDatabase } from '../support/protection.js';

/** The generic plan of the claim statement, prepared in a fresh session on the (still empty) table. */
async function genericClaimPlan(url: string, withCheckpoint: boolean): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`PREPARE claim AS ${claimDuties(withCheckpoint).text}`);
    await client.query('SET plan_cache_mode = force_generic_plan');
    const array = (value: string): string => `'{${value}}'`;
    const args = [
      array(ROLLUP),
      array(`0x${'be'.repeat(20)}`),
      array('7'),
      array('1'),
      array('0'),
      array('ATTESTATION'),
      array(`0x${'ab'.repeat(32)}`),
      array('node'),
      array('token'),
      ...(withCheckpoint ? [array('3')] : []),
      '60000',
    ];
    const result = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) EXECUTE claim(${args.join(', ')})`);
    return result.rows.map((row) => row['QUERY PLAN']).join('\n');
  } finally {
    await client.end();
  }
}

describe('claim statement plan', () => {
  for (const withCheckpoint of [false, true]) {
    it(`probes the primary key even in a generic plan built on an empty table (${withCheckpoint ? 'Aztec schema 2' : 'Aztec schema 1'})`, async () => {
      const url = await migratedDatabase('plan', withCheckpoint ? 2 : 1);
      const plan = await genericClaimPlan(url, withCheckpoint);
      expect(plan).toContain('validator_duties_pkey on validator_duties d');
      expect(plan).not.toMatch(/Seq Scan on validator_duties/);
    });
  }
});

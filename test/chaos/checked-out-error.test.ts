/**
 * Found by the chaos suite (seed 42, --long, backends terminated): a replica exited on an unhandled 'error' event of
 * a pg Client. The record statement runs on a checked-out pool client (runWithNotices), which has no pool error
 * listener; when its backend is terminated right after answering and both messages are read at once, pg emits
 * 'error' with no query active, and with no listener that ends the process. This drives that sequence on a real
 * connection: the client emits 'error' right after the statement's answer, before it is released.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { StatementRunner } from '../../src/protection/db/runner.js';
import { createTestDatabase } from '../support/postgres.js';

let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: await createTestDatabase('chaos_checked_out'), max: 2 });
  pool.on('error', () => {});
});

afterAll(async () => {
  await pool?.end();
});

it('an error event on a checked-out client between answer and release neither escapes nor keeps the connection', async () => {
  const terminatedAfterAnswer = {
    query: pool.query.bind(pool),
    end: () => pool.end(),
    async connect(): Promise<pg.PoolClient> {
      const client = await pool.connect();
      const query = client.query.bind(client) as (config: pg.QueryConfig) => Promise<pg.QueryResult>;
      (client as { query: unknown }).query = async (config: pg.QueryConfig) => {
        const result = await query(config);
        // What pg does when a FATAL arrives with no query active: emit 'error' on the client.
        client.emit('error', new Error('terminating connection due to administrator command'));
        return result;
      };
      return client;
    },
  };
  const runner = new StatementRunner(terminatedAfterAnswer, 2_000);
  const { result } = await runner.runWithNotices<{ answer: number }>('SELECT 42 AS answer', []);
  expect(result.rows).toEqual([{ answer: 42 }]);
  // The connection that failed is discarded, not handed to the next statement.
  expect(pool.totalCount).toBe(0);
});

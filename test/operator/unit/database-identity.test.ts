/** The database identity the migration Job reports, read from the real test PostgreSQL by an unprivileged role. */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readDatabaseIdentity } from '../../../src/protection/identity.js';
import { createTestDatabase, postgresAdminUrl } from '../../support/postgres.js';

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('database identity from the server', () => {
  it('is the same for every spelling of one database, differs between databases, and needs no privileges', async () => {
    const a = await createTestDatabase('ident_a');
    const b = await createTestDatabase('ident_b');
    const viaLocalhost = new URL(a);
    viaLocalhost.hostname = 'localhost';
    viaLocalhost.searchParams.set('application_name', 'other-spelling');
    const idA = await withClient(a, readDatabaseIdentity);
    expect(idA.systemIdentifier).toMatch(/^\d{10,}$/);
    expect(idA.database).toBe(new URL(a).pathname.slice(1));
    expect(idA.oid).toMatch(/^\d+$/);
    expect(await withClient(viaLocalhost.toString(), readDatabaseIdentity)).toEqual(idA);
    const idB = await withClient(b, readDatabaseIdentity);
    expect(idB.systemIdentifier).toBe(idA.systemIdentifier);
    expect(idB.oid).not.toBe(idA.oid);

    // An ordinary login role (no superuser, no grants) can read it.
    const role = `ident_role_${process.pid}`;
    await withClient(postgresAdminUrl(), async (c) => {
      await c.query(`DROP ROLE IF EXISTS ${role}`);
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw' NOSUPERUSER`);
    });
    const asRole = new URL(a);
    asRole.username = role;
    asRole.password = 'pw';
    expect(await withClient(asRole.toString(), readDatabaseIdentity)).toEqual(idA);
  });
});

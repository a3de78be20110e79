/**
 * The `helm test` pod's check, `ha-signer check ready`, run as the built CLI (what the image's entrypoint runs) against
 * the operator's real health server: passes when /readyz answers 200, fails with the reason when it keeps answering
 * 503 or nothing answers; flags are validated with errors naming the flag. The chart's `--service` form (ready
 * endpoints from EndpointSlices) runs under `helm test` on the test control plane (test/chart/k8s).
 */
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OperatorMetrics, startHealthServer } from '../../src/operator/metrics.js';
import { freePort } from '../harness/controlPlane.js';
import { assertBuilt, cleanEnv, runCli } from '../cli/support.js';

async function check(args: string[], env: Record<string, string> = {}) {
  const run = runCli(['check', 'ready', ...args], cleanEnv({ HA_SIGNER_LOG_FORMAT: 'json', ...env }));
  const { code, ms } = await run.exited;
  return { code, ms, out: [...run.stdout, ...run.stderr].join('\n') };
}

describe('ha-signer check ready (the helm test pod)', () => {
  let server: http.Server;
  let url: string;
  let ready = false;
  let calls = 0;
  // When set, the server turns ready after this many unready answers (independent of how fast the CLI starts).
  let readyAfterCalls: number | undefined;
  beforeAll(async () => {
    assertBuilt();
    server = await startHealthServer('127.0.0.1', 0, new OperatorMetrics(), {
      healthy: () => ({ ok: true, detail: 'ok' }),
      ready: () => {
        calls++;
        if (readyAfterCalls !== undefined && calls > readyAfterCalls) ready = true;
        return ready ? { ok: true, detail: 'leader, caches synced' } : { ok: false, detail: 'informers not synced' };
      },
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
  });
  beforeEach(() => {
    calls = 0;
    readyAfterCalls = undefined;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('passes when the operator answers ready', async () => {
    ready = true;
    const r = await check(['--url', url, '--timeout', '5s']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`ready: ${url} answered leader, caches synced`);
    expect(calls).toBe(1);
  });

  it('fails with the reason when the operator stays unready', async () => {
    ready = false;
    const r = await check(['--url', url, '--timeout', '1s', '--interval', '200ms']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('HTTP 503: informers not synced');
    expect(r.out).toContain('not ready within 1s');
    expect(calls).toBeGreaterThanOrEqual(3);
  });

  it('waits for an operator that becomes ready', async () => {
    ready = false;
    readyAfterCalls = 3;
    const r = await check(['--url', url, '--timeout', '20s', '--interval', '250ms']);
    expect(r.code).toBe(0);
    expect(calls).toBe(4);
    expect(r.ms).toBeGreaterThan(700);
    expect(r.out).toContain('not ready yet');
  });

  it('fails when nothing answers', async () => {
    const r = await check(['--url', `http://127.0.0.1:${await freePort()}/readyz`, '--timeout', '1s', '--interval', '300ms']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('ECONNREFUSED');
  });

  it.each([
    [[], 'exactly one of --url URL or --service NAME'],
    [['--url', 'http://a/readyz', '--service', 'x'], 'exactly one of --url URL or --service NAME'],
    [['--url', 'not a url'], '--url: "not a url" is not a URL'],
    [['--url', 'ftp://a/readyz'], '--url: expected http:// or https://'],
    [['--url', 'http://a/readyz', '--port', 'metrics'], '--port goes with --service'],
    [['--url', 'http://a/readyz', '--timeout', '10'], '--timeout: expected a duration'],
    [['--url', 'http://a/readyz', '--interval', '0s'], '--interval: expected a duration'],
    [['--service', 'Bad_Name', '--namespace', 'ops'], '--service: "Bad_Name" is not a Service name'],
    [['--service', 'svc', '--namespace', 'ops', '--port', 'a b'], '--port: expected a port name or number'],
    [['--service', 'svc', '--namespace', 'ops', '--path', 'readyz'], '--path: expected a path starting with /'],
    [['--service', 'svc', '--namespace', 'Ops'], '--namespace: "Ops" is not a namespace name'],
    [['--service', 'svc'], '--namespace is required outside a pod'],
    [['--url', 'http://a/readyz', '--bogus'], "check ready: Unknown option '--bogus'"],
    [['extra', '--url', 'http://a/readyz'], 'check ready takes no arguments, got extra'],
  ])('usage error, exit 2: %j', async (args, message) => {
    const r = await check(args);
    expect(r.code).toBe(2);
    expect(r.out).toContain(message);
  });

  it('check without a known subcommand is a usage error', async () => {
    const run = runCli(['check', 'live'], cleanEnv());
    expect((await run.exited).code).toBe(2);
    expect(run.stderr.join('\n')).toContain('check needs a subcommand: ready');
  });
});

describe('ha-signer operator-stop (the pre-delete hook): flags', () => {
  it.each([
    [[], 'operator-stop needs --deployment NAME'],
    [['--deployment', 'Bad_Name', '--namespace', 'ops'], '--deployment: "Bad_Name" is not a Deployment name'],
    [['--deployment', 'op'], '--namespace is required outside a pod'],
    [['--deployment', 'op', '--namespace', 'ops', '--timeout', 'soon'], '--timeout: expected a duration'],
    [['--deployment', 'op', '--namespace', 'ops'], 'no Kubernetes configuration'],
  ])('usage error, exit 2: %j', async (args, message) => {
    const run = runCli(['operator-stop', ...args], cleanEnv());
    expect((await run.exited).code).toBe(2);
    expect(run.stderr.join('\n')).toContain(message);
  });
});

/**
 * The `helm test` pod's check, run exactly as rendered (its node command) against the operator's real health
 * server: passes when /readyz answers 200, fails with the reason when it keeps answering 503.
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorMetrics, startHealthServer } from '../../src/operator/metrics.js';
import { freePort } from '../harness/controlPlane.js';
import { find, helm, template } from './support.js';

function runContainer(c: k8s.V1Container, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [exe, ...args] = c.command!;
  expect(exe).toBe('node');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...args, ...(c.args ?? [])], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!helm)('helm test pod', () => {
  let server: http.Server;
  let url: string;
  let ready = false;
  let container: k8s.V1Container;
  beforeAll(async () => {
    server = await startHealthServer('127.0.0.1', 0, new OperatorMetrics(), {
      healthy: () => ({ ok: true, detail: 'ok' }),
      ready: () => (ready ? { ok: true, detail: 'leader, caches synced' } : { ok: false, detail: 'informers not synced' }),
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
    const pod = find(template(), 'Pod') as k8s.V1Pod;
    container = pod.spec!.containers[0]!;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('passes when the operator answers ready', async () => {
    ready = true;
    const r = await runContainer(container, { OPERATOR_READYZ_URL: url, TIMEOUT_SECONDS: '5' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('operator ready');
    expect(r.stdout).toContain('leader, caches synced');
  });

  it('fails with the reason when the operator stays unready', async () => {
    ready = false;
    const r = await runContainer(container, { OPERATOR_READYZ_URL: url, TIMEOUT_SECONDS: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('HTTP 503: informers not synced');
    expect(r.stderr).toContain('operator not ready within 1s');
  });

  it('waits for an operator that becomes ready', async () => {
    ready = false;
    setTimeout(() => (ready = true), 1000);
    const r = await runContainer(container, { OPERATOR_READYZ_URL: url, TIMEOUT_SECONDS: '20' });
    expect(r.code).toBe(0);
  });

  it('fails when nothing answers', async () => {
    const r = await runContainer(container, { OPERATOR_READYZ_URL: `http://127.0.0.1:${await freePort()}/readyz`, TIMEOUT_SECONDS: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ECONNREFUSED');
  });
});

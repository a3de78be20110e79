import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlagError, parseDuration, parseOperatorArgs } from '../../../src/operator/main.js';

const kubeconfig = path.join(mkdtempSync(path.join(os.tmpdir(), 'op-flags-')), 'kubeconfig');
writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\n');
const base = ['--kubeconfig', kubeconfig, '--leader-election-namespace', 'ops', '--image', 'img:1'];

describe('operator flags', () => {
  it('defaults: client-go lease timings, port 8081, all namespaces', () => {
    const cfg = parseOperatorArgs(base, {});
    expect(cfg).toMatchObject({
      leaseDurationMs: 15000,
      renewDeadlineMs: 10000,
      retryPeriodMs: 2000,
      port: 8081,
      claimsNamespace: 'ops',
      leaderElect: true,
      workers: 4,
      image: 'img:1',
    });
    expect((cfg as { namespace?: string }).namespace).toBeUndefined();
  });

  it('environment: image, port, namespace', () => {
    const cfg = parseOperatorArgs(['--kubeconfig', kubeconfig], {
      HA_SIGNER_OPERATOR_IMAGE: 'op:2',
      HA_SIGNER_OPERATOR_PORT: '9000',
      POD_NAMESPACE: 'sys',
      WATCH_NAMESPACE: 'apps',
      HA_SIGNER_LISTEN_HOST: '127.0.1.5',
    });
    expect(cfg).toMatchObject({ image: 'op:2', port: 9000, leaderElectionNamespace: 'sys', namespace: 'apps', listenHost: '127.0.1.5' });
  });

  it.each([
    [['--lease-duration', 'soon'], '--lease-duration'],
    [['--renew-deadline', '20s'], '--lease-duration must be greater than --renew-deadline'],
    [['--retry-period', '9s'], '--renew-deadline must be greater than 1.2'],
    [['--workers', '0'], '--workers'],
    [['--port', '70000'], '--port'],
    [['--namespace', 'Bad_NS'], '--namespace'],
    [['--leader-elect', 'maybe'], '--leader-elect'],
    [['--image', ''], '--image'],
    [['--resync-period=0s'], '--resync-period'],
  ])('%j is rejected naming the flag', (extra, message) => {
    expect(() => parseOperatorArgs([...base, ...extra], {})).toThrow(FlagError);
    expect(() => parseOperatorArgs([...base, ...extra], {})).toThrow(message);
  });

  it('--namespaced needs --namespace; default cluster-scoped', () => {
    expect(parseOperatorArgs(base, {})).toMatchObject({ namespaced: false });
    expect(parseOperatorArgs([...base, '--namespace', 'apps', '--namespaced'], {})).toMatchObject({ namespaced: true, namespace: 'apps' });
    expect(parseOperatorArgs([...base, '--namespace', 'apps'], { HA_SIGNER_OPERATOR_NAMESPACED: 'true' })).toMatchObject({
      namespaced: true,
    });
    expect(() => parseOperatorArgs([...base, '--namespaced'], {})).toThrow('--namespaced needs --namespace');
  });

  it('needs an image, a namespace for the lease, an existing kubeconfig', () => {
    expect(() => parseOperatorArgs(['--kubeconfig', kubeconfig, '--leader-election-namespace', 'ops'], {})).toThrow('--image is required');
    expect(() => parseOperatorArgs(['--kubeconfig', kubeconfig, '--image', 'x'], { HA_SIGNER_FS_ROOT: '/nonexistent' })).toThrow(
      '--leader-election-namespace is required',
    );
    expect(() => parseOperatorArgs(['--kubeconfig', '/nope', '--image', 'x', '--leader-election-namespace', 'a'], {})).toThrow(
      '--kubeconfig: file /nope not found',
    );
  });

  it('parses durations', () => {
    expect(parseDuration('--x', '500ms')).toBe(500);
    expect(parseDuration('--x', '1.5s')).toBe(1500);
    expect(parseDuration('--x', '5m')).toBe(300000);
    expect(() => parseDuration('--x', '0s')).toThrow('--x');
  });

  it('FlagError makes the CLI exit 2 (usage error code)', () => {
    expect(new FlagError('x').code).toMatch(/^ERR_PARSE_ARGS/);
  });
});

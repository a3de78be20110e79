/** Runs `node dist/cli.js operator` as a child process against the test control plane (one per test file). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, REPO_ROOT } from '../../harness/controlPlane.js';
import { k8sEnv, PROJECT_IMAGE } from '../../harness/k8s.js';

export interface OperatorProcess {
  child: ChildProcess;
  port: number;
  identity: string;
  logFile: string;
  metrics(): Promise<string>;
  metric(name: string): Promise<number | undefined>;
  logs(): string;
  /** SIGTERM and wait (SIGKILL after 15 s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export async function startOperatorProcess(opts: {
  /** Watched namespace; also the Lease's unless leaderElectionNamespace is given. */
  namespace: string;
  /** Watch every namespace (the Lease stays in `namespace`). */
  clusterWide?: boolean;
  identity?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
}): Promise<OperatorProcess> {
  // HA_SIGNER_TEST_OPERATOR_CLI runs another build of the operator (e.g. an older commit's, to show a test fails there).
  const cli = process.env.HA_SIGNER_TEST_OPERATOR_CLI ?? path.join(REPO_ROOT, 'dist/cli.js');
  if (!existsSync(cli)) throw new Error('dist/cli.js not found: run `npm run build`');
  const port = await freePort();
  const identity = opts.identity ?? `op-${port}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ha-signer-operator-'));
  const logFile = path.join(dir, `${identity}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    [
      cli,
      'operator',
      '--kubeconfig',
      k8sEnv().kubeconfigPath!,
      ...(opts.clusterWide ? [] : ['--namespace', opts.namespace]),
      '--leader-election-namespace',
      opts.namespace,
      '--identity',
      identity,
      '--image',
      PROJECT_IMAGE,
      '--port',
      String(port),
      '--listen-host',
      '127.0.0.1',
      '--lease-duration',
      '6s',
      '--renew-deadline',
      '4s',
      '--retry-period',
      '1s',
      '--resync-period',
      '30s',
      ...(opts.extraArgs ?? []),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } },
  );
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  process.once('exit', () => child.kill('SIGKILL'));
  const get = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5000) });
    return res.text();
  };
  const op: OperatorProcess = {
    child,
    port,
    identity,
    logFile,
    exited,
    metrics: () => get('/metrics'),
    async metric(name) {
      const text = await get('/metrics');
      const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line ? Number(line.split(' ').at(-1)) : undefined;
    },
    logs: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  // Wait for the health server.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`operator exited with ${child.exitCode}:\n${op.logs()}`);
    try {
      await get('/healthz');
      return op;
    } catch {
      if (Date.now() > deadline) throw new Error(`operator health server not up:\n${op.logs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A real Kubernetes control plane for tests: embedded etcd, kube-apiserver and kube-controller-manager, each a
 * process of the multi-call binary built by `bash test/control-plane/build.sh` into `.cache/control-plane/<version>/`.
 *
 * Everything listens on 127.0.0.1 on free ports, lives in one temp dir and is killed/removed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CONTROL_PLANE_BUILD_HINT = 'bash test/control-plane/build.sh';

/** Controllers run by kube-controller-manager (names as in cmd/kube-controller-manager/names). */
export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'job-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'endpointslice-controller',
  'disruption-controller',
  'serviceaccount-token-controller',
  'ttl-after-finished-controller',
  // Default ServiceAccount per namespace and the kube-root-ca.crt ConfigMap: the ServiceAccount admission plugin
  // (enabled, as in a real cluster) needs the former, the projected service-account volume the latter.
  'serviceaccount-controller',
  'root-ca-certificate-publisher-controller',
  // Fills the built-in view/edit/admin ClusterRoles from aggregated ones (the chart's ValidatorHASigner roles).
  'clusterrole-aggregation-controller',
];

export interface ControlPlaneBinaries {
  version: string;
  kcp: string;
  kubectl: string;
  helm: string;
}

/** Locates the built binaries for the version in test/control-plane/versions.env, or undefined if not built. */
export function findControlPlaneBinaries(root = REPO_ROOT): ControlPlaneBinaries | undefined {
  const envFile = path.join(root, 'test/control-plane/versions.env');
  if (!existsSync(envFile)) return undefined;
  const version = /^K8S_VERSION=(\S+)/m.exec(readFileSync(envFile, 'utf8'))?.[1];
  if (!version) return undefined;
  const bin = path.join(root, '.cache/control-plane', version, 'bin');
  const b = { version, kcp: path.join(bin, 'kcp'), kubectl: path.join(bin, 'kubectl'), helm: path.join(bin, 'helm') };
  return existsSync(b.kcp) ? b : undefined;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
}

export interface ControlPlaneOptions {
  binaries?: ControlPlaneBinaries;
  /** Apply every crds/*.yaml of this directory after start (skipped when the folder does not exist). */
  crdDir?: string;
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  log?: (msg: string) => void;
}

export class ControlPlane {
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly caFile: string;
  private constructor(
    readonly dir: string,
    readonly binaries: ControlPlaneBinaries,
    readonly apiserverPort: number,
    readonly adminToken: string,
    private readonly procs: Proc[],
    readonly startMillis: number,
  ) {
    this.kubeconfigPath = path.join(dir, 'kubeconfig');
    this.server = `https://127.0.0.1:${apiserverPort}`;
    this.caFile = path.join(dir, 'apiserver-certs', 'apiserver.crt');
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const t0 = Date.now();
    const log = opts.log ?? ((m: string) => console.log(m));
    const binaries = opts.binaries ?? findControlPlaneBinaries();
    if (!binaries) throw new Error(`control plane binaries not built: run \`${CONTROL_PLANE_BUILD_HINT}\``);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ha-signer-kcp-'));
    const procs: Proc[] = [];
    const cp = { dir, procs };
    try {
      const [etcdPort, peerPort, apiPort, kcmPort] = (await distinctFreePorts(4)) as [number, number, number, number];
      const token = randomBytes(24).toString('hex');
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const saKey = path.join(dir, 'sa.key');
      const saPub = path.join(dir, 'sa.pub');
      await writeFile(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      await writeFile(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
      const tokenFile = path.join(dir, 'tokens.csv');
      await writeFile(tokenFile, `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
      const certDir = path.join(dir, 'apiserver-certs');
      await mkdir(certDir);

      procs.push(
        spawnProc(binaries.kcp, 'etcd', dir, [
          '--data-dir',
          path.join(dir, 'etcd'),
          '--listen-client-url',
          `http://127.0.0.1:${etcdPort}`,
          '--listen-peer-url',
          `http://127.0.0.1:${peerPort}`,
        ]),
      );
      await waitTcp(etcdPort, procs[0]!, 30_000);

      procs.push(
        spawnProc(binaries.kcp, 'apiserver', dir, [
          `--etcd-servers=http://127.0.0.1:${etcdPort}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          `--cert-dir=${certDir}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--authorization-mode=RBAC',
          '--allow-privileged=true',
          `--token-auth-file=${tokenFile}`,
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${saPub}`,
          `--service-account-signing-key-file=${saKey}`,
          '--profiling=false',
          ...(opts.apiserverArgs ?? []),
        ]),
      );
      const caFile = path.join(certDir, 'apiserver.crt');
      await waitReady(`https://127.0.0.1:${apiPort}/readyz`, token, procs[1]!, 120_000);
      const ca = await readFile(caFile);

      const kubeconfigPath = path.join(dir, 'kubeconfig');
      await writeFile(kubeconfigPath, kubeconfigYaml(`https://127.0.0.1:${apiPort}`, ca, token), { mode: 0o600 });

      procs.push(
        spawnProc(binaries.kcp, 'controller-manager', dir, [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          '--leader-elect=false',
          `--controllers=${CONTROLLERS.join(',')}`,
          `--service-account-private-key-file=${saKey}`,
          `--root-ca-file=${caFile}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${kcmPort}`,
          `--cert-dir=${path.join(dir, 'kcm-certs')}`,
          '--profiling=false',
        ]),
      );
      const plane = new ControlPlane(dir, binaries, apiPort, token, procs, 0);
      await plane.waitForControllerManager(60_000);
      if (opts.crdDir !== undefined) await plane.applyCrds(opts.crdDir, log);
      (plane as { startMillis: number }).startMillis = Date.now() - t0;
      return plane;
    } catch (err) {
      await stopProcs(cp.procs);
      const logs = cp.procs.map((p) => `--- ${p.name} (${p.logFile}) ---\n${tail(p.logFile, 30)}`).join('\n');
      await rm(dir, { recursive: true, force: true });
      if (err instanceof CrdApplyError) throw err;
      throw new Error(`control plane failed to start: ${(err as Error).message}\n${logs}`, { cause: err });
    }
  }

  kubeConfig(): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** The controller-manager is up once it has created the default ServiceAccount in `default`. */
  private async waitForControllerManager(timeoutMs: number): Promise<void> {
    const core = this.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const kcm = this.procs[2]!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (kcm.child.exitCode !== null) throw new Error(`kube-controller-manager exited with ${kcm.child.exitCode}`);
      try {
        await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
        return;
      } catch {
        if (Date.now() > deadline) throw new Error('kube-controller-manager did not create the default ServiceAccount');
        await sleep(200);
      }
    }
  }

  /** Applies every *.yaml / *.yml file in `dir` (server-side apply) and waits for CRDs to be Established. */
  async applyCrds(dir: string, log: (m: string) => void = console.log): Promise<string[]> {
    if (!existsSync(dir)) return [];
    const files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    if (files.length === 0) return [];
    const client = k8s.KubernetesObjectApi.makeApiClient(this.kubeConfig());
    const ext = this.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
    const names: string[] = [];
    for (const f of files) {
      for (const obj of k8s.loadAllYaml(await readFile(path.join(dir, f), 'utf8')) as k8s.KubernetesObject[]) {
        if (!obj?.kind) continue;
        try {
          await client.patch(obj, undefined, undefined, 'ha-signer-test-harness', true, k8s.PatchStrategy.ServerSideApply);
        } catch (e) {
          const body = (e as k8s.ApiException<unknown>).body;
          let reason = typeof body === 'string' ? body : JSON.stringify(body);
          try {
            reason = (JSON.parse(reason) as { message?: string }).message ?? reason;
          } catch {
            /* not JSON */
          }
          throw new CrdApplyError(
            `applying ${obj.kind} ${obj.metadata?.name} from ${path.join(path.relative(REPO_ROOT, dir), f)} failed: ${reason || (e as Error).message}`,
          );
        }
        if (obj.kind === 'CustomResourceDefinition') names.push(obj.metadata!.name!);
      }
    }
    const deadline = Date.now() + 30_000;
    for (const name of names) {
      for (;;) {
        const crd = await ext.readCustomResourceDefinition({ name });
        if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (Date.now() > deadline) throw new Error(`CRD ${name} not Established`);
        await sleep(100);
      }
    }
    log(`control plane: applied ${names.length} CRD(s) from ${path.relative(REPO_ROOT, dir) || dir}`);
    return names;
  }

  /** Log file of a component: etcd, apiserver or controller-manager. */
  logFile(component: 'etcd' | 'apiserver' | 'controller-manager'): string {
    return path.join(this.dir, `${component}.log`);
  }

  /** Stops all components and removes the temp dir; `keepLogsIn` copies the component logs there first. */
  async stop(opts: { keepLogsIn?: string } = {}): Promise<void> {
    await stopProcs(this.procs);
    if (opts.keepLogsIn) {
      await mkdir(opts.keepLogsIn, { recursive: true });
      for (const p of this.procs) await copyFile(p.logFile, path.join(opts.keepLogsIn, path.basename(p.logFile))).catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A manifest from the CRD folder was rejected by the apiserver (its message says why). */
export class CrdApplyError extends Error {}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function spawnProc(kcp: string, name: string, dir: string, args: string[]): Proc {
  const logFile = path.join(dir, `${name}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(kcp, [name, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GOMAXPROCS: '2' } });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  liveChildren.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve(code ?? (signal ? 128 : null));
    }),
  );
  child.on('close', () => out.end());
  return { name, child, logFile, exited };
}

/** Children still running: killed synchronously if the host process exits without teardown. */
const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

async function stopProcs(procs: Proc[]): Promise<void> {
  // Reverse order: controller-manager, apiserver, then etcd.
  for (const p of [...procs].reverse()) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    p.child.kill('SIGTERM');
    const done = await Promise.race([p.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
}

async function waitTcp(port: number, proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${proc.name} not listening on ${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function waitReady(url: string, token: string, proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.child.exitCode}`);
    const res = await httpsGet(url, token).catch((e: Error) => ({ status: 0, body: e.message }));
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms: ${res.status} ${res.body.slice(0, 500)}`);
    await sleep(250);
  }
}

function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function kubeconfigYaml(server: string, ca: Buffer, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca.toString('base64')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    '    user: admin',
    'current-context: test',
    '',
  ].join('\n');
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * A local kubelet for tests. It registers a fake Ready Node, binds unscheduled Pods to it (playing the scheduler),
 * and runs each container of the project's image as a local process `node <repo>/dist/cli.js <args>`:
 *
 * - env resolved as the kubelet does (`value` with $(VAR) expansion, secretKeyRef, configMapKeyRef, fieldRef,
 *   envFrom), plus KUBERNETES_SERVICE_HOST/PORT, HA_SIGNER_LISTEN_HOST=<pod IP> and HA_SIGNER_FS_ROOT=<container root>;
 * - secret, configMap, projected (serviceAccountToken via the TokenRequest API, configMap, secret, downwardAPI),
 *   downwardAPI and emptyDir volumes materialized under HA_SIGNER_FS_ROOT at their mount paths;
 * - every Pod gets its own loopback address 127.0.1.N as Pod IP, so all replicas bind the same port;
 * - real status: Running, Ready from readiness probes, liveness/startup probes restart the container,
 *   Succeeded/Failed from exit codes, restartPolicy with back-off and restartCount, termination messages;
 * - deleting a Pod sends SIGTERM, then SIGKILL after the grace period, then removes the Pod (grace 0).
 *
 * Pods with containers of any other image stay Pending (one log line per Pod).
 *
 * Per-pod state lives under `<dir>/pods/<namespace>/<pod>/<uid>/` (`state/<container>.json` with the OS pid,
 * `logs/<container>.log` with stdout+stderr of every run), so test workers in other processes can find processes
 * and logs with {@link readContainerState} and {@link readContainerLog}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, readdirSync, statSync, type WriteStream } from 'node:fs';
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { REPO_ROOT } from './controlPlane.js';
import type { ImageContainers } from './kubelet-image.js';

/** Image names the local kubelet runs: `ha-signer`, `ha-signer:<tag>`, `<registry>/<org>/ha-signer[:tag|@digest]`. */
export const PROJECT_IMAGE_PATTERN = /^(?:[^\s/]+\/)*ha-signer(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$/;
/** The image's entrypoint: a container `command` naming it (or none) runs the CLI. */
export const PROJECT_ENTRYPOINT = 'ha-signer';
export const DEFAULT_NODE_NAME = 'local-kubelet';

export function isProjectImage(image: string | undefined): boolean {
  return image !== undefined && PROJECT_IMAGE_PATTERN.test(image);
}

export interface LocalKubeletOptions {
  kubeConfig: k8s.KubeConfig;
  /** Directory for per-pod roots, logs and state (created; removed by stop() unless keepDir). */
  dir: string;
  apiserverHost: string;
  apiserverPort: number;
  nodeName?: string;
  /** The CLI to run for the project's image. */
  cliPath?: string;
  /** Upper bound of the restart back-off (the real kubelet: 5 min). */
  maxBackoffMs?: number;
  /** Image mode: containers of this built image run inside it (./kubelet-image.ts); other project images: checkout. */
  imageContainers?: ImageContainers;
  log?: (msg: string) => void;
}

type Probe = k8s.V1Probe;

interface ProbeState {
  nextAt: number;
  successes: number;
  failures: number;
  inflight: boolean;
}

interface Terminated {
  exitCode: number;
  signal?: string;
  reason: string;
  message?: string;
  startedAt: Date;
  finishedAt: Date;
}

interface ContainerRt {
  name: string;
  spec: k8s.V1Container;
  init: boolean;
  root: string;
  logFile: string;
  stateFile: string;
  proc?: ChildProcess;
  /** startContainer in progress (resolving env): the loop must not start it twice. */
  starting?: boolean;
  logStream?: WriteStream;
  pid?: number;
  startedAt?: Date;
  running: boolean;
  waiting?: { reason: string; message?: string };
  terminated?: Terminated;
  lastTerminated?: Terminated;
  restartCount: number;
  ready: boolean;
  started: boolean;
  backoffMs: number;
  restartAt?: number;
  stderrTail: string;
  killReason?: string;
  probes: { readiness?: ProbeState; liveness?: ProbeState; startup?: ProbeState };
  exited?: Promise<void>;
}

interface PodRt {
  uid: string;
  namespace: string;
  name: string;
  pod: k8s.V1Pod;
  dir: string;
  ip: string;
  startTime: Date;
  containers: ContainerRt[];
  initContainers: ContainerRt[];
  prepared: boolean;
  prepareError?: { reason: string; message: string };
  nextPrepareAt: number;
  unsupported?: string;
  terminating: boolean;
  deleted: boolean;
  conditionTimes: Map<string, { status: string; time: string }>;
  dirty: boolean;
  writing: boolean;
  lastStatusJson?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TAIL_BYTES = 4096;

/** Process groups of running containers: killed synchronously if the host process exits without stop(). */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
});

export class LocalKubelet {
  readonly nodeName: string;
  private readonly core: k8s.CoreV1Api;
  private readonly cliPath: string;
  private readonly log: (m: string) => void;
  private readonly pods = new Map<string, PodRt>();
  private readonly queues = new Map<string, Promise<void>>();
  private informer?: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private timers: NodeJS.Timeout[] = [];
  private ipCounter = 0;
  private stopped = false;
  private readonly maxBackoffMs: number;

  constructor(private readonly opts: LocalKubeletOptions) {
    this.nodeName = opts.nodeName ?? DEFAULT_NODE_NAME;
    this.core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.cliPath = opts.cliPath ?? path.join(REPO_ROOT, 'dist', 'cli.js');
    this.log = opts.log ?? ((m) => console.log(`kubelet: ${m}`));
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
  }

  get dir(): string {
    return this.opts.dir;
  }

  async start(): Promise<void> {
    await mkdir(path.join(this.opts.dir, 'pods'), { recursive: true });
    await this.registerNode();
    const informer = k8s.makeInformer<k8s.V1Pod>(this.opts.kubeConfig, '/api/v1/pods', () => this.core.listPodForAllNamespaces());
    informer.on('add', (p) => this.enqueue(p));
    informer.on('update', (p) => this.enqueue(p));
    informer.on('delete', (p) => this.enqueueDelete(p));
    informer.on('error', (err) => {
      if (this.stopped) return;
      this.log(`pod watch error: ${(err as Error)?.message ?? err}; restarting in 1s`);
      setTimeout(() => void (this.stopped ? undefined : informer.start().catch(() => undefined)), 1000);
    });
    await informer.start();
    this.informer = informer;
    this.timers.push(setInterval(() => this.tick(), 250));
    this.timers.push(setInterval(() => void this.heartbeat().catch(() => undefined), 10_000));
    // Periodic resync: re-examine every cached pod (covers missed events and pods waiting on config).
    this.timers.push(
      setInterval(() => {
        for (const p of this.informer?.list() ?? []) this.enqueue(p);
      }, 5_000),
    );
  }

  /** Kills every container process (SIGTERM, SIGKILL after 5 s), stops watching and removes the work dir. */
  async stop(opts: { keepDir?: boolean; deleteNode?: boolean } = {}): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.informer?.stop().catch(() => undefined);
    await Promise.all([...this.pods.values()].map((rt) => this.killPod(rt, 5, 'KubeletStopped')));
    await Promise.allSettled([...this.queues.values()]);
    if (opts.deleteNode) await this.core.deleteNode({ name: this.nodeName }).catch(() => undefined);
    if (!opts.keepDir) await rm(this.opts.dir, { recursive: true, force: true });
  }

  /** OS pids of all running container processes (for tests asserting nothing is left behind). */
  runningPids(): number[] {
    const pids: number[] = [];
    for (const rt of this.pods.values()) for (const c of [...rt.initContainers, ...rt.containers]) if (c.running && c.pid) pids.push(c.pid);
    return pids;
  }

  // ---------------------------------------------------------------- node

  private nodeStatus(): k8s.V1NodeStatus {
    const now = new Date();
    const cond = (type: string, status: string, reason: string, message: string): k8s.V1NodeCondition => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: this.nodeSince,
    });
    const resources = { cpu: '16', memory: '64Gi', pods: '250', 'ephemeral-storage': '100Gi' };
    return {
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'local test kubelet'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'local test kubelet'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'local test kubelet'),
        cond('Ready', 'True', 'KubeletReady', 'local test kubelet is posting ready status'),
      ],
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: this.nodeName },
      ],
      capacity: resources,
      allocatable: resources,
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: 'local',
        systemUUID: 'local',
        bootID: this.bootId,
        kernelVersion: os.release(),
        osImage: 'local test kubelet',
        containerRuntimeVersion: `node://${process.versions.node}`,
        kubeletVersion: 'v0.0.0-local',
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    };
  }
  private readonly nodeSince = new Date();
  private readonly bootId = randomUUID();

  private async registerNode(): Promise<void> {
    const body: k8s.V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.nodeName,
        labels: {
          'kubernetes.io/hostname': this.nodeName,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'topology.kubernetes.io/zone': 'local',
        },
      },
      spec: {},
    };
    await this.core.createNode({ body }).catch((e: k8s.ApiException<unknown>) => {
      if (e.code !== 409) throw e;
    });
    await this.heartbeat();
  }

  private async heartbeat(): Promise<void> {
    await this.core.patchNodeStatus(
      { name: this.nodeName, body: { status: this.nodeStatus() } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  // ---------------------------------------------------------------- pod events

  private enqueue(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid || this.stopped) return;
    this.serial(uid, () => this.syncPod(pod));
  }

  private enqueueDelete(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    this.serial(uid, async () => {
      const rt = this.pods.get(uid);
      if (!rt) return;
      rt.deleted = true;
      await this.killPod(rt, 0, 'PodDeleted');
      this.pods.delete(uid);
      await rm(path.join(rt.dir, 'root'), { recursive: true, force: true }).catch(() => undefined);
      await rm(path.join(rt.dir, 'volumes'), { recursive: true, force: true }).catch(() => undefined);
    });
  }

  private serial(key: string, fn: () => Promise<void>): void {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev
      .then(fn)
      .catch((err: Error) => this.log(`pod ${key}: ${err?.message ?? err}`))
      .finally(() => {
        if (this.queues.get(key) === next) this.queues.delete(key);
      });
    this.queues.set(key, next);
  }

  private async syncPod(pod: k8s.V1Pod): Promise<void> {
    const meta = pod.metadata!;
    const uid = meta.uid!;
    if (!pod.spec?.nodeName) {
      if (meta.deletionTimestamp || (pod.spec?.schedulingGates?.length ?? 0) > 0) return;
      if (this.pods.has(uid)) return;
      await this.core
        .createNamespacedPodBinding({
          name: meta.name!,
          namespace: meta.namespace!,
          body: {
            apiVersion: 'v1',
            kind: 'Binding',
            metadata: { name: meta.name!, namespace: meta.namespace! },
            target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName },
          },
        })
        .catch((e: k8s.ApiException<unknown>) => {
          if (e.code !== 409 && e.code !== 404) throw e;
        });
      return;
    }
    if (pod.spec.nodeName !== this.nodeName) return;
    let rt = this.pods.get(uid);
    if (!rt) {
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') {
        // Finished before we knew it (e.g. a previous kubelet): only handle deletion.
        if (meta.deletionTimestamp) await this.deletePodObject(pod);
        return;
      }
      rt = await this.admit(pod);
    }
    rt.pod = pod;
    if (meta.deletionTimestamp) {
      if (!rt.terminating) {
        rt.terminating = true;
        const grace = meta.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
        await this.killPod(rt, grace, 'PodDeleted');
        rt.dirty = true;
        await this.flushStatus(rt).catch(() => undefined);
        await this.deletePodObject(pod);
      }
      return;
    }
  }

  private async deletePodObject(pod: k8s.V1Pod): Promise<void> {
    await this.core
      .deleteNamespacedPod({
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid! } },
      })
      .catch((e: k8s.ApiException<unknown>) => {
        if (e.code !== 404 && e.code !== 409) throw e;
      });
  }

  private async admit(pod: k8s.V1Pod): Promise<PodRt> {
    const meta = pod.metadata!;
    const dir = path.join(this.opts.dir, 'pods', meta.namespace!, meta.name!, meta.uid!);
    await mkdir(path.join(dir, 'logs'), { recursive: true });
    await mkdir(path.join(dir, 'state'), { recursive: true });
    const n = ++this.ipCounter;
    const ip = `127.0.${1 + Math.floor((n - 1) / 254)}.${1 + ((n - 1) % 254)}`;
    const mk = (spec: k8s.V1Container, init: boolean): ContainerRt => ({
      name: spec.name,
      spec,
      init,
      root: path.join(dir, 'root', spec.name),
      logFile: path.join(dir, 'logs', `${spec.name}.log`),
      stateFile: path.join(dir, 'state', `${spec.name}.json`),
      running: false,
      restartCount: 0,
      ready: false,
      started: false,
      backoffMs: 0,
      stderrTail: '',
      probes: {},
      waiting: { reason: 'ContainerCreating' },
    });
    const rt: PodRt = {
      uid: meta.uid!,
      namespace: meta.namespace!,
      name: meta.name!,
      pod,
      dir,
      ip,
      startTime: new Date(),
      initContainers: (pod.spec!.initContainers ?? []).map((c) => mk(c, true)),
      containers: pod.spec!.containers.map((c) => mk(c, false)),
      prepared: false,
      nextPrepareAt: 0,
      terminating: false,
      deleted: false,
      conditionTimes: new Map(),
      dirty: true,
      writing: false,
    };
    const others = [...rt.initContainers, ...rt.containers].filter((c) => !isProjectImage(c.spec.image));
    if (others.length > 0) {
      rt.unsupported = others.map((c) => `${c.name}=${c.spec.image ?? '<none>'}`).join(', ');
      for (const c of others)
        c.waiting = { reason: 'ImageNotSupported', message: `local test kubelet runs only images matching ${PROJECT_IMAGE_PATTERN}` };
      this.log(
        `pod ${rt.namespace}/${rt.name} stays Pending: container image(s) ${rt.unsupported} are not the project image (${PROJECT_IMAGE_PATTERN})`,
      );
    }
    this.pods.set(rt.uid, rt);
    return rt;
  }

  // ---------------------------------------------------------------- main loop

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const rt of this.pods.values()) {
      if (rt.terminating || rt.deleted || rt.unsupported) {
        if (rt.dirty && !rt.deleted) void this.flushStatus(rt).catch(() => undefined);
        continue;
      }
      if (!rt.prepared) {
        if (now >= rt.nextPrepareAt && !this.queues.has(`prepare:${rt.uid}`)) {
          rt.nextPrepareAt = now + 2000;
          this.serial(`prepare:${rt.uid}`, () => this.prepare(rt));
        }
      } else {
        this.advance(rt, now);
      }
      if (rt.dirty) void this.flushStatus(rt).catch((e: Error) => this.log(`status ${rt.namespace}/${rt.name}: ${e.message}`));
    }
  }

  /** Starts/restarts containers as the pod's state allows and runs due probes. */
  private advance(rt: PodRt, now: number): void {
    const policy = rt.pod.spec!.restartPolicy ?? 'Always';
    // Init containers, one at a time, in order.
    for (const c of rt.initContainers) {
      if (c.terminated?.exitCode === 0 && !c.running) continue;
      if (c.running) return;
      if (c.terminated && policy === 'Never') return; // failed for good: pod Failed
      if (c.restartAt !== undefined && now < c.restartAt) return;
      void this.startContainer(rt, c);
      return;
    }
    for (const c of rt.containers) {
      if (c.running) {
        this.runProbes(rt, c, now);
        continue;
      }
      if (c.proc) continue; // exiting
      if (c.terminated) {
        const restart = policy === 'Always' || (policy === 'OnFailure' && c.terminated.exitCode !== 0);
        if (!restart) continue;
        if (c.restartAt !== undefined && now < c.restartAt) continue;
      } else if (c.restartAt !== undefined && now < c.restartAt) continue;
      void this.startContainer(rt, c);
    }
  }

  // ---------------------------------------------------------------- volumes

  private async prepare(rt: PodRt): Promise<void> {
    if (rt.prepared || rt.terminating || rt.deleted) return;
    try {
      await this.materializeVolumes(rt);
      rt.prepared = true;
      rt.prepareError = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (rt.prepareError?.message !== message) this.log(`pod ${rt.namespace}/${rt.name}: ${message}`);
      rt.prepareError = { reason: 'CreateContainerConfigError', message };
      for (const c of [...rt.initContainers, ...rt.containers]) c.waiting = { reason: 'ContainerCreating', message };
    }
    rt.dirty = true;
  }

  private async materializeVolumes(rt: PodRt): Promise<void> {
    const pod = rt.pod;
    const spec = pod.spec!;
    const volDir = path.join(rt.dir, 'volumes');
    await rm(volDir, { recursive: true, force: true });
    await mkdir(volDir, { recursive: true });
    const used = new Set<string>();
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) for (const m of c.volumeMounts ?? []) used.add(m.name);
    for (const vol of spec.volumes ?? []) {
      if (!used.has(vol.name)) continue;
      const dir = path.join(volDir, vol.name);
      await mkdir(dir, { recursive: true });
      if (vol.secret) {
        const s = await this.getSecret(rt.namespace, vol.secret.secretName!, vol.secret.optional);
        await writeKeys(dir, s ? decodeSecret(s) : {}, vol.secret.items, vol.secret.defaultMode ?? 0o644, vol.secret.optional);
      } else if (vol.configMap) {
        const cm = await this.getConfigMap(rt.namespace, vol.configMap.name!, vol.configMap.optional);
        await writeKeys(dir, cm ? configMapData(cm) : {}, vol.configMap.items, vol.configMap.defaultMode ?? 0o644, vol.configMap.optional);
      } else if (vol.projected) {
        const mode = vol.projected.defaultMode ?? 0o644;
        for (const src of vol.projected.sources ?? []) {
          if (src.secret) {
            const s = await this.getSecret(rt.namespace, src.secret.name!, src.secret.optional);
            await writeKeys(dir, s ? decodeSecret(s) : {}, src.secret.items, mode, src.secret.optional);
          } else if (src.configMap) {
            const cm = await this.getConfigMap(rt.namespace, src.configMap.name!, src.configMap.optional);
            await writeKeys(dir, cm ? configMapData(cm) : {}, src.configMap.items, mode, src.configMap.optional);
          } else if (src.serviceAccountToken) {
            const token = await this.requestToken(pod, src.serviceAccountToken.audience, src.serviceAccountToken.expirationSeconds);
            await writeFileAt(dir, src.serviceAccountToken.path, token, 0o600);
          } else if (src.downwardAPI) {
            for (const item of src.downwardAPI.items ?? []) await writeFileAt(dir, item.path, this.downward(rt, item), item.mode ?? mode);
          } else {
            throw new Error(`projected volume ${vol.name}: unsupported source ${Object.keys(src).join(',')}`);
          }
        }
      } else if (vol.downwardAPI) {
        for (const item of vol.downwardAPI.items ?? [])
          await writeFileAt(dir, item.path, this.downward(rt, item), item.mode ?? vol.downwardAPI.defaultMode ?? 0o644);
      } else if (vol.emptyDir) {
        // the directory itself
      } else {
        throw new Error(
          `volume ${vol.name}: unsupported type ${Object.keys(vol)
            .filter((k) => k !== 'name')
            .join(',')}`,
        );
      }
    }
    // Service account token when the pod has none mounted (admission plugin off) and automount is not disabled.
    const saPath = '/var/run/secrets/kubernetes.io/serviceaccount';
    const saDir = path.join(volDir, '.serviceaccount');
    let autoSa = false;
    if (!spec.containers.some((c) => (c.volumeMounts ?? []).some((m) => path.posix.normalize(m.mountPath) === saPath))) {
      let automount = spec.automountServiceAccountToken;
      if (automount === undefined) {
        const sa = await this.core
          .readNamespacedServiceAccount({ name: spec.serviceAccountName ?? 'default', namespace: rt.namespace })
          .catch(() => undefined);
        automount = sa?.automountServiceAccountToken ?? true;
      }
      if (automount) {
        autoSa = true;
        await mkdir(saDir, { recursive: true });
        await writeFileAt(saDir, 'token', await this.requestToken(pod, undefined, 3607), 0o600);
        const ca = await this.getConfigMap(rt.namespace, 'kube-root-ca.crt', true);
        await writeFileAt(saDir, 'ca.crt', ca?.data?.['ca.crt'] ?? '', 0o644);
        await writeFileAt(saDir, 'namespace', rt.namespace, 0o644);
      }
    }
    // Per-container roots with the mounts as symlinks into the volume dirs.
    for (const c of [...rt.initContainers, ...rt.containers]) {
      await rm(c.root, { recursive: true, force: true });
      await mkdir(c.root, { recursive: true });
      for (const m of c.spec.volumeMounts ?? []) {
        if (!(spec.volumes ?? []).some((v) => v.name === m.name)) throw new Error(`container ${c.name}: volume ${m.name} not found`);
        const target = m.subPath ? path.join(volDir, m.name, m.subPath) : path.join(volDir, m.name);
        await linkAt(c.root, m.mountPath, target);
      }
      if (autoSa) await linkAt(c.root, saPath, saDir);
    }
  }

  private downward(rt: PodRt, item: k8s.V1DownwardAPIVolumeFile): string {
    if (item.fieldRef) return this.fieldRef(rt, item.fieldRef.fieldPath);
    if (item.resourceFieldRef) return resourceValue(rt.pod, item.resourceFieldRef);
    throw new Error(`downwardAPI ${item.path}: unsupported item`);
  }

  private fieldRef(rt: PodRt, fieldPath: string): string {
    const m = rt.pod.metadata!;
    const sub = /^metadata\.(labels|annotations)\[['"]?(.+?)['"]?\]$/.exec(fieldPath);
    if (sub) return (sub[1] === 'labels' ? m.labels : m.annotations)?.[sub[2]!] ?? '';
    switch (fieldPath) {
      case 'metadata.name':
        return m.name!;
      case 'metadata.namespace':
        return m.namespace!;
      case 'metadata.uid':
        return m.uid!;
      case 'metadata.labels':
        return Object.entries(m.labels ?? {})
          .map(([k, v]) => `${k}="${v}"`)
          .join('\n');
      case 'metadata.annotations':
        return Object.entries(m.annotations ?? {})
          .map(([k, v]) => `${k}="${v}"`)
          .join('\n');
      case 'spec.nodeName':
        return this.nodeName;
      case 'spec.serviceAccountName':
        return rt.pod.spec!.serviceAccountName ?? 'default';
      case 'status.podIP':
      case 'status.podIPs':
        return rt.ip;
      case 'status.hostIP':
      case 'status.hostIPs':
        return '127.0.0.1';
      default:
        throw new Error(`fieldRef ${fieldPath} is not supported by the local kubelet`);
    }
  }

  private async requestToken(pod: k8s.V1Pod, audience?: string, expirationSeconds?: number): Promise<string> {
    const res = await this.core.createNamespacedServiceAccountToken({
      name: pod.spec!.serviceAccountName ?? 'default',
      namespace: pod.metadata!.namespace!,
      body: {
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds: expirationSeconds ?? 3607,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! },
        },
      },
    });
    const token = res.status?.token;
    if (!token)
      throw new Error(`TokenRequest for ${pod.metadata!.namespace}/${pod.spec!.serviceAccountName ?? 'default'} returned no token`);
    return token;
  }

  private async getSecret(namespace: string, name: string, optional?: boolean): Promise<k8s.V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name, namespace });
    } catch (e) {
      if ((e as k8s.ApiException<unknown>).code === 404 && optional) return undefined;
      if ((e as k8s.ApiException<unknown>).code === 404) throw new Error(`secret "${name}" not found`, { cause: e });
      throw e;
    }
  }

  private async getConfigMap(namespace: string, name: string, optional?: boolean): Promise<k8s.V1ConfigMap | undefined> {
    try {
      return await this.core.readNamespacedConfigMap({ name, namespace });
    } catch (e) {
      if ((e as k8s.ApiException<unknown>).code === 404 && optional) return undefined;
      if ((e as k8s.ApiException<unknown>).code === 404) throw new Error(`configmap "${name}" not found`, { cause: e });
      throw e;
    }
  }

  // ---------------------------------------------------------------- env and processes

  private async resolveEnv(rt: PodRt, c: k8s.V1Container): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const src of c.envFrom ?? []) {
      const prefix = src.prefix ?? '';
      if (src.secretRef) {
        const s = await this.getSecret(rt.namespace, src.secretRef.name!, src.secretRef.optional);
        for (const [k, v] of Object.entries(s ? decodeSecret(s) : {})) env[prefix + k] = v.toString('utf8');
      } else if (src.configMapRef) {
        const cm = await this.getConfigMap(rt.namespace, src.configMapRef.name!, src.configMapRef.optional);
        for (const [k, v] of Object.entries(cm ? configMapData(cm) : {})) env[prefix + k] = v.toString('utf8');
      }
    }
    for (const e of c.env ?? []) {
      if (e.valueFrom) {
        const vf = e.valueFrom;
        if (vf.fieldRef) env[e.name] = this.fieldRef(rt, vf.fieldRef.fieldPath);
        else if (vf.secretKeyRef) {
          const s = await this.getSecret(rt.namespace, vf.secretKeyRef.name!, vf.secretKeyRef.optional);
          const v = s ? decodeSecret(s)[vf.secretKeyRef.key] : undefined;
          if (v === undefined && !vf.secretKeyRef.optional)
            throw new Error(`couldn't find key ${vf.secretKeyRef.key} in Secret ${rt.namespace}/${vf.secretKeyRef.name}`);
          if (v !== undefined) env[e.name] = v.toString('utf8');
        } else if (vf.configMapKeyRef) {
          const cm = await this.getConfigMap(rt.namespace, vf.configMapKeyRef.name!, vf.configMapKeyRef.optional);
          const v = cm ? configMapData(cm)[vf.configMapKeyRef.key] : undefined;
          if (v === undefined && !vf.configMapKeyRef.optional)
            throw new Error(`couldn't find key ${vf.configMapKeyRef.key} in ConfigMap ${rt.namespace}/${vf.configMapKeyRef.name}`);
          if (v !== undefined) env[e.name] = v.toString('utf8');
        } else if (vf.resourceFieldRef) env[e.name] = resourceValue(rt.pod, vf.resourceFieldRef, c);
        else throw new Error(`env ${e.name}: unsupported valueFrom`);
      } else {
        env[e.name] = expandVars(e.value ?? '', env);
      }
    }
    return env;
  }

  /** Maps the container's command/args onto the CLI (the image's entrypoint is `ha-signer`). */
  private cliArgs(c: k8s.V1Container, env: Record<string, string>): string[] {
    const command = (c.command ?? []).map((s) => expandVars(s, env));
    const args = (c.args ?? []).map((s) => expandVars(s, env));
    if (command.length === 0) return args;
    const exe = path.posix.basename(command[0]!);
    if (exe === PROJECT_ENTRYPOINT) return [...command.slice(1), ...args];
    if ((exe === 'node' || exe === 'nodejs') && command[1] && /(^|\/)(dist\/)?cli\.js$/.test(command[1]))
      return [...command.slice(2), ...args];
    throw new Error(
      `command ${JSON.stringify(c.command)} is not supported by the local kubelet (use the ${PROJECT_ENTRYPOINT} entrypoint)`,
    );
  }

  private async startContainer(rt: PodRt, c: ContainerRt): Promise<void> {
    if (c.starting || c.running || c.proc || rt.terminating || this.stopped) return;
    c.starting = true;
    try {
      await this.doStartContainer(rt, c);
    } finally {
      c.starting = false;
    }
  }

  private async doStartContainer(rt: PodRt, c: ContainerRt): Promise<void> {
    c.restartAt = undefined;
    let env: Record<string, string>;
    let args: string[];
    const inImage = this.opts.imageContainers?.handles(c.spec.image) ? this.opts.imageContainers : undefined;
    try {
      if (!inImage && !existsSync(this.cliPath))
        throw new Error(`${path.relative(REPO_ROOT, this.cliPath)} not found: run \`npm run build\``);
      env = await this.resolveEnv(rt, c.spec);
      args = inImage ? [] : this.cliArgs(c.spec, env);
      // As the real kubelet does: a fresh, empty termination message file per container start.
      await writeFileAt(
        path.join(c.root, path.dirname(c.spec.terminationMessagePath ?? '/dev/termination-log')),
        path.basename(c.spec.terminationMessagePath ?? '/dev/termination-log'),
        '',
        0o666,
      );
    } catch (err) {
      const message = (err as Error).message;
      if (c.waiting?.message !== message) this.log(`pod ${rt.namespace}/${rt.name} container ${c.name}: ${message}`);
      c.waiting = { reason: 'CreateContainerConfigError', message };
      c.restartAt = Date.now() + 2000;
      rt.dirty = true;
      return;
    }
    if (c.running || c.proc || rt.terminating || this.stopped) return;
    const fullEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: c.root,
      HOSTNAME: rt.pod.spec!.hostname ?? rt.name,
      KUBERNETES_SERVICE_HOST: this.opts.apiserverHost,
      KUBERNETES_SERVICE_PORT: String(this.opts.apiserverPort),
      KUBERNETES_SERVICE_PORT_HTTPS: String(this.opts.apiserverPort),
      KUBERNETES_PORT: `tcp://${this.opts.apiserverHost}:${this.opts.apiserverPort}`,
      ...env,
      HA_SIGNER_FS_ROOT: c.root,
      HA_SIGNER_LISTEN_HOST: rt.ip,
    };
    const logStream = createWriteStream(c.logFile, { flags: 'a' });
    const startedAt = new Date();
    let child: ChildProcess;
    if (inImage) {
      const expand = (xs: string[] | undefined) => xs?.map((x) => expandVars(x, env));
      try {
        const started = await inImage.start({
          pod: rt.pod,
          container: c.spec,
          containerRoot: c.root,
          volumesDir: path.join(rt.dir, 'volumes'),
          env,
          command: expand(c.spec.command),
          args: expand(c.spec.args),
          podIP: rt.ip,
          apiserverHost: this.opts.apiserverHost,
          apiserverPort: this.opts.apiserverPort,
        });
        child = started.child;
        if ((rt.terminating || this.stopped) && child.pid !== undefined) signalGroup(child.pid, 'SIGKILL'); // deleted while starting
        logStream.write(
          `--- ${startedAt.toISOString()} start #${c.restartCount} on ${rt.ip} in image ${inImage.image.ref}: ${started.argv.join(' ')}\n`,
        );
      } catch (err) {
        const message = (err as Error).message;
        logStream.end(`--- ${message}\n`);
        if (c.waiting?.message !== message) this.log(`pod ${rt.namespace}/${rt.name} container ${c.name}: ${message}`);
        c.waiting = { reason: 'CreateContainerError', message };
        c.restartAt = Date.now() + 2000;
        rt.dirty = true;
        return;
      }
    } else {
      logStream.write(`--- ${startedAt.toISOString()} start #${c.restartCount} on ${rt.ip}: ${PROJECT_ENTRYPOINT} ${args.join(' ')}\n`);
      child = spawn(process.execPath, [this.cliPath, ...args], {
        cwd: c.root,
        env: fullEnv,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    c.proc = child;
    if (child.pid !== undefined) liveGroups.add(child.pid);
    c.logStream = logStream;
    c.pid = child.pid;
    c.running = child.pid !== undefined;
    c.startedAt = startedAt;
    c.waiting = undefined;
    c.terminated = undefined;
    c.killReason = undefined;
    c.stderrTail = '';
    c.ready = false;
    c.started = false;
    const now = Date.now();
    const initial = (p?: Probe): ProbeState | undefined =>
      p ? { nextAt: now + (p.initialDelaySeconds ?? 0) * 1000, successes: 0, failures: 0, inflight: false } : undefined;
    c.probes = {
      readiness: initial(c.spec.readinessProbe),
      liveness: initial(c.spec.livenessProbe),
      startup: initial(c.spec.startupProbe),
    };
    if (!c.spec.startupProbe) c.started = true;
    if (!c.spec.readinessProbe && c.started && !c.init) c.ready = true;
    child.stdout!.on('data', (d: Buffer) => logStream.write(d));
    child.stderr!.on('data', (d: Buffer) => {
      logStream.write(d);
      c.stderrTail = (c.stderrTail + d.toString('utf8')).slice(-TAIL_BYTES);
    });
    let resolveExit!: () => void;
    c.exited = new Promise<void>((r) => (resolveExit = r));
    child.on('error', (err) => {
      logStream.write(`--- spawn error: ${err.message}\n`);
      c.stderrTail += err.message;
    });
    child.on('close', (code, signal) => {
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      this.onExit(rt, c, code, signal);
      resolveExit();
    });
    await this.writeState(rt, c);
    rt.dirty = true;
  }

  private onExit(rt: PodRt, c: ContainerRt, code: number | null, signal: NodeJS.Signals | null): void {
    const finishedAt = new Date();
    const exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1);
    let message: string | undefined;
    const msgPath = c.spec.terminationMessagePath ?? '/dev/termination-log';
    try {
      const f = path.join(c.root, msgPath);
      if (existsSync(f) && statSync(f).isFile()) message = readFileSync(f, 'utf8').slice(-TAIL_BYTES) || undefined;
    } catch {
      /* ignore */
    }
    if (!message && exitCode !== 0 && c.stderrTail) message = c.stderrTail.split('\n').slice(-80).join('\n').trim() || undefined;
    const term: Terminated = {
      exitCode,
      reason: c.killReason ?? (exitCode === 0 ? 'Completed' : 'Error'),
      startedAt: c.startedAt ?? finishedAt,
      finishedAt,
      ...(signal ? { signal } : {}),
      ...(message ? { message } : {}),
    };
    c.logStream?.end(`--- ${finishedAt.toISOString()} exited: code ${code} signal ${signal}\n`);
    c.logStream = undefined;
    c.proc = undefined;
    c.running = false;
    c.ready = false;
    c.terminated = term;
    c.lastTerminated = term;
    const policy = rt.pod.spec!.restartPolicy ?? 'Always';
    const willRestart =
      !rt.terminating &&
      !rt.deleted &&
      !this.stopped &&
      (policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0) || (c.init && exitCode !== 0 && policy !== 'Never'));
    if (willRestart && !(c.init && exitCode === 0)) {
      const ranMs = finishedAt.getTime() - term.startedAt.getTime();
      c.backoffMs = ranMs > 60_000 ? 1000 : Math.min(Math.max(1000, c.backoffMs * 2), this.maxBackoffMs);
      c.restartAt = Date.now() + c.backoffMs;
      c.restartCount++;
      c.terminated = undefined;
      c.waiting = {
        reason: exitCode === 0 ? 'Completed' : 'CrashLoopBackOff',
        message: `back-off ${Math.round(c.backoffMs / 1000)}s restarting container ${c.name}`,
      };
    }
    void this.writeState(rt, c);
    rt.dirty = true;
    if (!rt.terminating && !this.stopped) this.tick();
  }

  private async writeState(rt: PodRt, c: ContainerRt): Promise<void> {
    const state: ContainerProcessState = {
      namespace: rt.namespace,
      pod: rt.name,
      uid: rt.uid,
      container: c.name,
      podIP: rt.ip,
      pid: c.pid,
      running: c.running,
      restartCount: c.restartCount,
      logFile: c.logFile,
      root: c.root,
      lastExitCode: c.lastTerminated?.exitCode,
      mode: this.opts.imageContainers?.handles(c.spec.image) ? 'image' : 'checkout',
    };
    await writeFile(c.stateFile, JSON.stringify(state, null, 2)).catch(() => undefined);
  }

  private async killContainer(c: ContainerRt, graceSeconds: number, reason: string): Promise<void> {
    const child = c.proc;
    if (!child || child.pid === undefined || !c.running) return;
    c.killReason ??= reason;
    const exited = c.exited ?? Promise.resolve();
    signalGroup(child.pid, 'SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(Math.max(0, graceSeconds) * 1000).then(() => false)]);
    if (!done) {
      signalGroup(child.pid, 'SIGKILL');
      await Promise.race([exited, sleep(5000)]);
    }
  }

  private async killPod(rt: PodRt, graceSeconds: number, reason: string): Promise<void> {
    await Promise.all([...rt.initContainers, ...rt.containers].map((c) => this.killContainer(c, graceSeconds, reason)));
  }

  // ---------------------------------------------------------------- probes

  private runProbes(rt: PodRt, c: ContainerRt, now: number): void {
    const { startup, readiness, liveness } = c.probes;
    if (!c.started && startup && c.spec.startupProbe) {
      this.runProbe(rt, c, 'startup', c.spec.startupProbe, startup, now);
      return;
    }
    if (readiness && c.spec.readinessProbe) this.runProbe(rt, c, 'readiness', c.spec.readinessProbe, readiness, now);
    if (liveness && c.spec.livenessProbe) this.runProbe(rt, c, 'liveness', c.spec.livenessProbe, liveness, now);
  }

  private runProbe(rt: PodRt, c: ContainerRt, kind: 'startup' | 'readiness' | 'liveness', probe: Probe, st: ProbeState, now: number): void {
    if (st.inflight || now < st.nextAt) return;
    st.inflight = true;
    st.nextAt = now + (probe.periodSeconds ?? 10) * 1000;
    const pid = c.pid;
    void this.probeOnce(rt, c, probe).then((ok) => {
      st.inflight = false;
      if (!c.running || c.pid !== pid) return;
      const successThreshold = kind === 'readiness' ? (probe.successThreshold ?? 1) : 1;
      const failureThreshold = probe.failureThreshold ?? 3;
      if (ok) {
        st.successes++;
        st.failures = 0;
      } else {
        st.failures++;
        st.successes = 0;
      }
      if (kind === 'readiness') {
        const ready = c.ready ? st.failures < failureThreshold : st.successes >= successThreshold;
        if (ready !== c.ready) {
          c.ready = ready;
          rt.dirty = true;
        }
      } else if (kind === 'startup') {
        if (ok) {
          c.started = true;
          if (!c.spec.readinessProbe) c.ready = true;
          rt.dirty = true;
        } else if (st.failures >= failureThreshold) {
          this.log(`pod ${rt.namespace}/${rt.name} container ${c.name} failed startup probe, will be restarted`);
          void this.killContainer(c, probe.terminationGracePeriodSeconds ?? rt.pod.spec!.terminationGracePeriodSeconds ?? 30, 'Error');
        }
      } else if (st.failures >= failureThreshold) {
        this.log(`pod ${rt.namespace}/${rt.name} container ${c.name} failed liveness probe, will be restarted`);
        st.failures = 0;
        void this.killContainer(c, probe.terminationGracePeriodSeconds ?? rt.pod.spec!.terminationGracePeriodSeconds ?? 30, 'Error');
      }
    });
  }

  private async probeOnce(rt: PodRt, c: ContainerRt, probe: Probe): Promise<boolean> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    const port = (p: number | string | undefined): number => {
      if (typeof p === 'number') return p;
      if (p !== undefined && /^\d+$/.test(p)) return Number(p);
      const named = c.spec.ports?.find((cp) => cp.name === p);
      if (!named) throw new Error(`probe port ${p} not found`);
      return named.containerPort;
    };
    try {
      if (probe.httpGet) {
        const g = probe.httpGet;
        const headers: Record<string, string> = { 'User-Agent': 'kube-probe/local' };
        for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
        return await new Promise<boolean>((resolve) => {
          const req = http.get({ host: g.host || rt.ip, port: port(g.port), path: g.path ?? '/', headers, timeout: timeoutMs }, (res) => {
            res.resume();
            resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
          });
          req.on('timeout', () => req.destroy());
          req.on('error', () => resolve(false));
        });
      }
      if (probe.tcpSocket) {
        const t = probe.tcpSocket;
        return await new Promise<boolean>((resolve) => {
          const s = net.connect({ host: t.host || rt.ip, port: port(t.port), timeout: timeoutMs }, () => {
            s.destroy();
            resolve(true);
          });
          s.on('timeout', () => {
            s.destroy();
            resolve(false);
          });
          s.on('error', () => resolve(false));
        });
      }
      // exec / grpc probes are not supported: treat as success.
      return true;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- status

  private async flushStatus(rt: PodRt): Promise<void> {
    if (rt.writing || rt.deleted) return;
    rt.writing = true;
    rt.dirty = false;
    try {
      const status = this.computeStatus(rt);
      const json = JSON.stringify(status);
      if (json === rt.lastStatusJson) return;
      await this.core.patchNamespacedPodStatus(
        { name: rt.name, namespace: rt.namespace, body: { metadata: { uid: rt.uid }, status } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      );
      rt.lastStatusJson = json;
    } catch (err) {
      const code = (err as k8s.ApiException<unknown>).code;
      if (code === 404 || code === 409) return; // pod gone (or replaced by a new one with the same name)
      rt.dirty = true;
      throw err;
    } finally {
      rt.writing = false;
    }
  }

  private computeStatus(rt: PodRt): k8s.V1PodStatus {
    const policy = rt.pod.spec!.restartPolicy ?? 'Always';
    const initFailed = rt.initContainers.some((c) => c.terminated && c.terminated.exitCode !== 0 && policy === 'Never');
    const initDone = rt.initContainers.every((c) => c.terminated?.exitCode === 0);
    const main = rt.containers;
    const allTerminated = main.every((c) => c.terminated && !c.running && c.restartAt === undefined);
    const anyStarted = main.some((c) => c.running || c.terminated || c.restartCount > 0);
    let phase: string;
    if (initFailed) phase = 'Failed';
    else if (!initDone || rt.unsupported || !rt.prepared) phase = 'Pending';
    else if (allTerminated && policy !== 'Always') phase = main.some((c) => c.terminated!.exitCode !== 0) ? 'Failed' : 'Succeeded';
    else if (rt.terminating && allTerminated) phase = main.some((c) => c.terminated!.exitCode !== 0) ? 'Failed' : 'Succeeded';
    else if (anyStarted) phase = 'Running';
    else phase = 'Pending';

    const containersReady = initDone && main.every((c) => c.ready);
    const gates = (rt.pod.spec!.readinessGates ?? []).every((g) =>
      rt.pod.status?.conditions?.some((x) => x.type === g.conditionType && x.status === 'True'),
    );
    const cond = (type: string, ok: boolean, reason?: string): k8s.V1PodCondition => {
      const status = ok ? 'True' : 'False';
      let t = rt.conditionTimes.get(type);
      if (!t || t.status !== status) {
        t = { status, time: new Date().toISOString() };
        rt.conditionTimes.set(type, t);
      }
      return {
        type,
        status,
        lastTransitionTime: new Date(t.time),
        lastProbeTime: null as unknown as undefined,
        ...(ok || !reason ? {} : { reason }),
      };
    };
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const conditions: k8s.V1PodCondition[] = [
      cond('PodReadyToStartContainers', rt.prepared && !terminal),
      cond('Initialized', initDone, 'ContainersNotInitialized'),
      cond('Ready', containersReady && gates && !terminal, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      cond('ContainersReady', containersReady && !terminal, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      cond('PodScheduled', true),
    ];
    const stateOf = (c: ContainerRt): k8s.V1ContainerState => {
      if (c.running) return { running: { startedAt: c.startedAt } };
      if (c.terminated) return { terminated: termJson(c.terminated, c) };
      return {
        waiting: {
          reason: c.waiting?.reason ?? (rt.prepareError ? 'ContainerCreating' : 'ContainerCreating'),
          ...(c.waiting?.message ? { message: c.waiting.message } : {}),
        },
      };
    };
    const cs = (c: ContainerRt): k8s.V1ContainerStatus => ({
      name: c.name,
      image: c.spec.image!,
      imageID: `local://${c.spec.image}`,
      ...(c.pid !== undefined ? { containerID: `local://${rt.uid}/${c.name}/${c.pid}` } : {}),
      ready: c.ready,
      started: c.running && c.started,
      restartCount: c.restartCount,
      state: stateOf(c),
      lastState: c.lastTerminated && (c.running || c.restartAt !== undefined) ? { terminated: termJson(c.lastTerminated, c) } : {},
    });
    return {
      phase,
      conditions,
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: rt.ip,
      podIPs: [{ ip: rt.ip }],
      startTime: rt.startTime,
      ...(rt.initContainers.length ? { initContainerStatuses: rt.initContainers.map(cs) } : {}),
      containerStatuses: main.map(cs),
    };
  }
}

function termJson(t: Terminated, c: ContainerRt): k8s.V1ContainerStateTerminated {
  return {
    exitCode: t.exitCode,
    reason: t.reason,
    startedAt: t.startedAt,
    finishedAt: t.finishedAt,
    ...(t.message ? { message: t.message } : {}),
    ...(t.signal ? { signal: os.constants.signals[t.signal as NodeJS.Signals] } : {}),
    ...(c.pid !== undefined ? { containerID: `local://${c.name}/${c.pid}` } : {}),
  };
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** $(VAR) expansion as the kubelet does it: unknown references stay as they are, $$ escapes. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : m;
  });
}

function decodeSecret(s: k8s.V1Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
  for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v, 'utf8');
  return out;
}

function configMapData(cm: k8s.V1ConfigMap): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(cm.data ?? {})) out[k] = Buffer.from(v, 'utf8');
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

function resourceValue(pod: k8s.V1Pod, ref: k8s.V1ResourceFieldSelector, container?: k8s.V1Container): string {
  const c = pod.spec!.containers.find((x) => x.name === (ref.containerName || container?.name)) ?? container;
  const [kind, res] = ref.resource.split('.') as [string, string];
  const v = (kind === 'limits' ? c?.resources?.limits : c?.resources?.requests)?.[res];
  if (v !== undefined) return String(v);
  return res === 'cpu' ? '16' : res === 'memory' ? String(64 * 1024 ** 3) : '0';
}

async function writeKeys(
  dir: string,
  data: Record<string, Buffer>,
  items: k8s.V1KeyToPath[] | undefined,
  mode: number,
  optional?: boolean,
): Promise<void> {
  if (items?.length) {
    for (const it of items) {
      const v = data[it.key];
      if (v === undefined) {
        if (optional) continue;
        throw new Error(`key ${it.key} not found`);
      }
      await writeFileAt(dir, it.path, v, it.mode ?? mode);
    }
  } else {
    for (const [k, v] of Object.entries(data)) await writeFileAt(dir, k, v, mode);
  }
}

async function writeFileAt(dir: string, rel: string, data: string | Buffer, mode: number): Promise<void> {
  const f = safeJoin(dir, rel);
  await mkdir(path.dirname(f), { recursive: true });
  await writeFile(f, data);
  await chmod(f, mode & 0o777);
}

async function linkAt(root: string, mountPath: string, target: string): Promise<void> {
  const at = safeJoin(root, mountPath);
  await mkdir(path.dirname(at), { recursive: true });
  await rm(at, { recursive: true, force: true });
  await symlink(target, at);
}

function safeJoin(dir: string, rel: string): string {
  const f = path.join(dir, path.posix.normalize('/' + rel));
  if (!f.startsWith(dir + path.sep) && f !== dir) throw new Error(`path ${rel} escapes ${dir}`);
  return f;
}

// ---------------------------------------------------------------- cross-process helpers

export interface ContainerProcessState {
  namespace: string;
  pod: string;
  uid: string;
  container: string;
  podIP: string;
  pid?: number;
  running: boolean;
  restartCount: number;
  logFile: string;
  root: string;
  lastExitCode?: number;
  /** image: ran inside the built image (kubelet-image.ts); checkout: `node dist/cli.js` from the repository. */
  mode?: 'image' | 'checkout';
}

function podDir(kubeletDir: string, namespace: string, pod: string): string | undefined {
  const base = path.join(kubeletDir, 'pods', namespace, pod);
  if (!existsSync(base)) return undefined;
  const uids = readdirSync(base)
    .map((u) => ({ u, t: statSync(path.join(base, u)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  return uids[0] ? path.join(base, uids[0].u) : undefined;
}

function containerName(dir: string, container?: string): string | undefined {
  if (container) return container;
  const files = readdirSync(path.join(dir, 'state')).filter((f) => f.endsWith('.json'));
  return files[0]?.replace(/\.json$/, '');
}

/** The process of a pod's container as the local kubelet last recorded it (works from any process). */
export function readContainerState(
  kubeletDir: string,
  namespace: string,
  pod: string,
  container?: string,
): ContainerProcessState | undefined {
  const dir = podDir(kubeletDir, namespace, pod);
  if (!dir) return undefined;
  const name = containerName(dir, container);
  if (!name) return undefined;
  try {
    return JSON.parse(readFileSync(path.join(dir, 'state', `${name}.json`), 'utf8')) as ContainerProcessState;
  } catch {
    return undefined;
  }
}

/** stdout+stderr of every run of a pod's container ('' when none yet). */
export async function readContainerLog(kubeletDir: string, namespace: string, pod: string, container?: string): Promise<string> {
  const dir = podDir(kubeletDir, namespace, pod);
  if (!dir) return '';
  const name = containerName(dir, container) ?? readdirSync(path.join(dir, 'logs'))[0]?.replace(/\.log$/, '');
  if (!name) return '';
  return await readFile(path.join(dir, 'logs', `${name}.log`), 'utf8').catch(() => '');
}

/** True when an OS process with this pid exists (and is not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true;
  }
}

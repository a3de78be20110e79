/**
 * Helpers for Kubernetes test files (run in vitest workers). The control plane and the local kubelet run in the
 * vitest main process (./globalSetup.ts); everything here reaches them through the kubeconfig and the kubelet's
 * state directory.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { describe, inject } from 'vitest';
import type { K8sTestEnv } from './globalSetup.js';
import { processAlive, readContainerLog, readContainerState, type ContainerProcessState } from './kubelet.js';

export { PROJECT_IMAGE_PATTERN, isProjectImage, processAlive } from './kubelet.js';
/** An image name the local kubelet runs as the project's CLI. */
export const PROJECT_IMAGE = 'ghcr.io/ha-signer/ha-signer:test';

export function k8sEnv(): K8sTestEnv {
  try {
    return inject('k8s') ?? { available: false, skipReason: 'k8s globalSetup (test/harness/globalSetup.ts) is not configured' };
  } catch {
    return { available: false, skipReason: 'k8s globalSetup (test/harness/globalSetup.ts) is not configured' };
  }
}

/** `describe` that skips (silently: globalSetup printed the reason once) when no control plane is available. */
export const describeK8s = ((name: string, fn: () => void) => describe.skipIf(!k8sEnv().available)(name, fn)) as (
  name: string,
  fn: () => void,
) => void;

function env(): Required<Pick<K8sTestEnv, 'kubeconfigPath' | 'kubeletDir'>> & K8sTestEnv {
  const e = k8sEnv();
  if (!e.available || !e.kubeconfigPath || !e.kubeletDir) throw new Error(e.skipReason ?? 'no control plane');
  return e as Required<Pick<K8sTestEnv, 'kubeconfigPath' | 'kubeletDir'>> & K8sTestEnv;
}

export function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(env().kubeconfigPath);
  return kc;
}

export function clients(kc = kubeConfig()) {
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
    rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
  };
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  opts: { timeoutMs?: number; intervalMs?: number; message?: string | (() => string | Promise<string>) } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false && v !== null) return v as T;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const m = typeof opts.message === 'function' ? await opts.message() : (opts.message ?? 'condition');
      throw new Error(`timed out waiting for ${m}${lastErr ? `: ${(lastErr as Error).message ?? lastErr}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace (does not wait for it to be gone unless wait is set). */
  delete(opts?: { wait?: boolean }): Promise<void>;
}

/** Creates a fresh namespace and waits until its default ServiceAccount exists (pods need it to be admitted). */
export async function createTestNamespace(prefix = 'test'): Promise<TestNamespace> {
  const { core } = clients();
  const name = `${prefix}-${randomBytes(4).toString('hex')}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63);
  await core.createNamespace({ body: { metadata: { name, labels: { 'ha-signer.test/namespace': 'true' } } } });
  await waitFor(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name }), {
    timeoutMs: 30_000,
    message: `default ServiceAccount in ${name}`,
  });
  return {
    name,
    async delete(opts = {}) {
      await core.deleteNamespace({ name }).catch(() => undefined);
      if (opts.wait) {
        await waitFor(
          async () => {
            try {
              await core.readNamespace({ name });
              return false;
            } catch (e) {
              return (e as k8s.ApiException<unknown>).code === 404;
            }
          },
          { timeoutMs: 120_000, message: `namespace ${name} to be deleted` },
        );
      }
    },
  };
}

export interface Endpoint {
  ip: string;
  port: number;
  podName?: string;
}

/** Ready endpoints of a Service from its EndpointSlices (the named or first port of each slice). */
export async function serviceEndpoints(namespace: string, service: string, portName?: string): Promise<Endpoint[]> {
  const { discovery } = clients();
  const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  const out: Endpoint[] = [];
  for (const s of slices.items) {
    // Without a name, the port named http (signer Services also have a metrics port; slice port order is not the Service's).
    const port = (portName ? s.ports?.find((p) => p.name === portName) : (s.ports?.find((p) => p.name === 'http') ?? s.ports?.[0]))?.port;
    if (port === undefined || port === null) continue;
    for (const ep of s.endpoints ?? []) {
      if (ep.conditions?.ready !== true) continue;
      for (const ip of ep.addresses) out.push({ ip, port, ...(ep.targetRef?.name ? { podName: ep.targetRef.name } : {}) });
    }
  }
  return out.sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true }));
}

export interface ServiceResponse {
  endpoint: Endpoint;
  status: number;
  body: string;
}

/** Calls `path` on every ready endpoint of the Service (as a client inside the cluster would, one by one). */
export async function callService(
  namespace: string,
  service: string,
  path: string,
  init: RequestInit & { portName?: string } = {},
): Promise<ServiceResponse[]> {
  const eps = await serviceEndpoints(namespace, service, init.portName);
  return await Promise.all(
    eps.map(async (endpoint) => {
      const res = await fetch(`http://${endpoint.ip}:${endpoint.port}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
      return { endpoint, status: res.status, body: await res.text() };
    }),
  );
}

/** The OS process of a pod's container run by the local kubelet. */
export function podProcess(namespace: string, pod: string, container?: string): ContainerProcessState | undefined {
  return readContainerState(env().kubeletDir, namespace, pod, container);
}

/** stdout+stderr of every run of a pod's container. */
export async function podLogs(namespace: string, pod: string, container?: string): Promise<string> {
  return await readContainerLog(env().kubeletDir, namespace, pod, container);
}

/** Pods of a namespace matching a label selector. */
export async function listPods(namespace: string, labelSelector?: string): Promise<k8s.V1Pod[]> {
  const { core } = clients();
  return (await core.listNamespacedPod({ namespace, ...(labelSelector ? { labelSelector } : {}) })).items;
}

/** Explains a pod for failure messages: phase, container states and the tail of its logs. */
export async function describePod(namespace: string, pod: k8s.V1Pod | string): Promise<string> {
  const { core } = clients();
  const p = typeof pod === 'string' ? await core.readNamespacedPod({ name: pod, namespace }).catch(() => undefined) : pod;
  if (!p) return `pod ${String(pod)} not found`;
  const name = p.metadata!.name!;
  const states = (p.status?.containerStatuses ?? []).map(
    (c) => `${c.name}: ready=${c.ready} restarts=${c.restartCount} ${JSON.stringify(c.state)}`,
  );
  const logs = (await podLogs(namespace, name)).split('\n').slice(-20).join('\n');
  return `pod ${namespace}/${name} phase=${p.status?.phase} ip=${p.status?.podIP}\n${states.join('\n')}\nlogs:\n${logs}`;
}

export function isProcessAlive(pid: number | undefined): boolean {
  return pid !== undefined && processAlive(pid);
}

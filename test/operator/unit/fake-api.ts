/** In-memory fakes of the API-server slices the reconcile phases use (src/operator/reconcile/api.ts). */
import type * as k8s from '@kubernetes/client-node';
import type {
  MigrationApi,
  OwnershipApi,
  ReconcilerCaches,
  SecretsApi,
  StatusApi,
  WorkloadApi,
} from '../../../src/operator/reconcile/api.js';
import type { ValidatorHASignerResource, ValidatorHASignerStatus } from '../../../src/operator/types.js';

const key = (ns: string | undefined, name: string) => `${ns ?? ''}/${name}`;

export class FakeSecrets implements SecretsApi {
  readonly items = new Map<string, k8s.V1Secret>();
  reads = 0;
  put(namespace: string, name: string, stringData: Record<string, string>): void {
    const data = Object.fromEntries(Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
    this.items.set(key(namespace, name), { metadata: { namespace, name }, data });
  }
  async readSecret(namespace: string, name: string) {
    this.reads++;
    return this.items.get(key(namespace, name));
  }
}

/** ConfigMaps with resourceVersion/uid preconditions, plus resources and Deployments, as the API server keeps them. */
export class FakeOwnershipApi implements OwnershipApi {
  readonly configMaps = new Map<string, k8s.V1ConfigMap>();
  readonly resources = new Map<string, ValidatorHASignerResource>();
  readonly deployments = new Map<string, k8s.V1Deployment>();
  readonly deleted: string[] = [];
  private rv = 1;
  async readConfigMap(namespace: string, name: string) {
    return this.configMaps.get(key(namespace, name));
  }
  async createConfigMapIfAbsent(cm: k8s.V1ConfigMap) {
    const k = key(cm.metadata!.namespace, cm.metadata!.name!);
    if (this.configMaps.has(k)) return false;
    this.configMaps.set(k, { ...cm, metadata: { ...cm.metadata, uid: `cm-${this.rv}`, resourceVersion: String(this.rv++) } });
    return true;
  }
  async replaceConfigMapAt(cm: k8s.V1ConfigMap, resourceVersion: string) {
    const k = key(cm.metadata!.namespace, cm.metadata!.name!);
    const cur = this.configMaps.get(k);
    if (!cur || cur.metadata!.resourceVersion !== resourceVersion) return false;
    this.configMaps.set(k, { ...cm, metadata: { ...cm.metadata, uid: cur.metadata!.uid!, resourceVersion: String(this.rv++) } });
    return true;
  }
  async deleteConfigMapIf(namespace: string, name: string, uid: string, resourceVersion?: string) {
    const cur = this.configMaps.get(key(namespace, name));
    if (!cur || cur.metadata!.uid !== uid || (resourceVersion && cur.metadata!.resourceVersion !== resourceVersion)) return false;
    this.configMaps.delete(key(namespace, name));
    return true;
  }
  async listConfigMaps(namespace: string, labelSelector: string) {
    return [...this.configMaps.values()].filter(
      (c) =>
        c.metadata!.namespace === namespace &&
        labelSelector.split(',').every((l) => (c.metadata!.labels ?? {})[l.split('=')[0]!] !== undefined),
    );
  }
  async readValidatorHASigner(namespace: string, name: string) {
    return this.resources.get(key(namespace, name));
  }
  async readDeployment(namespace: string, name: string) {
    return this.deployments.get(key(namespace, name));
  }
  async deleteObject(_apiVersion: string, kind: string, namespace: string | undefined, name: string) {
    this.deleted.push(`${kind} ${key(namespace, name)}`);
    if (kind === 'Deployment') return this.deployments.delete(key(namespace, name));
    return true;
  }
}

/** Records applies and deletions; Jobs and pod termination messages are set by the test. */
export class FakeWorkloadApi implements WorkloadApi, MigrationApi {
  readonly applied: k8s.KubernetesObject[] = [];
  readonly deleted: string[] = [];
  readonly jobs = new Map<string, k8s.V1Job>();
  /** Terminated migrate containers, newest first. */
  terminations: { exitCode: number; message: string }[] = [];
  serviceMonitorsServed = false;
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    this.applied.push(obj);
    return obj;
  }
  async deleteObject(_apiVersion: string, kind: string, namespace: string | undefined, name: string) {
    this.deleted.push(`${kind} ${key(namespace, name)}`);
    return true;
  }
  async deleteClusterRoleBinding(name: string) {
    this.deleted.push(`ClusterRoleBinding ${name}`);
  }
  async servesGroupVersion() {
    return this.serviceMonitorsServed;
  }
  async readJob(namespace: string, name: string) {
    return this.jobs.get(key(namespace, name));
  }
  async jobPodTerminations() {
    return this.terminations;
  }
}

export class FakeStatusApi implements StatusApi {
  readonly patches: ValidatorHASignerStatus[] = [];
  readonly events: { type: string; reason: string; note: string }[] = [];
  async patchStatus(_vhs: ValidatorHASignerResource, status: ValidatorHASignerStatus) {
    this.patches.push(status);
  }
  async createEvent(_vhs: ValidatorHASignerResource, type: 'Normal' | 'Warning', reason: string, _action: string, note: string) {
    this.events.push({ type, reason, note });
  }
}

/** Caches backed by plain maps. */
export function fakeCaches(
  init: { resources?: ValidatorHASignerResource[]; jobs?: k8s.V1Job[]; deployments?: k8s.V1Deployment[]; secrets?: k8s.V1Secret[] } = {},
): ReconcilerCaches {
  const index = <T extends k8s.KubernetesObject>(items: T[] = []) =>
    new Map(items.map((o) => [key(o.metadata!.namespace, o.metadata!.name!), o]));
  const vhs = index(init.resources);
  const jobs = index(init.jobs);
  const deployments = index(init.deployments);
  const secrets = index(init.secrets);
  return {
    vhs: { get: (ns, n) => vhs.get(key(ns, n)), list: () => [...vhs.values()] },
    jobs: { get: (ns, n) => jobs.get(key(ns, n)) },
    deployments: { get: (ns, n) => deployments.get(key(ns, n)) },
    secrets: { get: (ns, n) => secrets.get(key(ns, n)) },
  };
}

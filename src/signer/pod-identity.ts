/**
 * In-cluster identity of a stock Aztec node that can send no credential: the connection's peer address resolved to
 * a Pod through an informer, and that Pod's ServiceAccount checked against the client list. Only Running pods with
 * their own IP count (hostNetwork pods share the node's address and are never matched), and an address two live pods
 * claim (an IP reused while the old pod is still in the cache) matches nobody: fail closed. The NetworkPolicy is the
 * fence that keeps other workloads from reaching the signer at all.
 */
import type * as k8s from '@kubernetes/client-node';

export interface PodIdentity {
  namespace: string;
  pod: string;
  serviceAccount: string;
}

export interface PodIdentitySource {
  /** The pod that owns this peer address, or undefined when none or more than one does. */
  identityOf(address: string): PodIdentity | undefined;
  /** True once the first list of pods completed. */
  synced(): boolean;
  stop(): Promise<void>;
}

/** `::ffff:10.1.2.3` (an IPv4 peer on a dual-stack socket) is 10.1.2.3. */
export function normalizePeerAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Pods by IP, kept from informer events. */
export class PodIpIndex {
  private readonly byUid = new Map<string, { ips: string[]; identity: PodIdentity }>();
  private readonly byIp = new Map<string, Set<string>>();

  upsert(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    this.remove(pod);
    const ips = (pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : [])).filter((ip): ip is string => !!ip);
    const live = pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp && pod.spec?.hostNetwork !== true;
    if (!live || ips.length === 0 || !pod.metadata?.namespace || !pod.metadata.name) return;
    const identity = {
      namespace: pod.metadata.namespace,
      pod: pod.metadata.name,
      serviceAccount: pod.spec?.serviceAccountName ?? 'default',
    };
    this.byUid.set(uid, { ips, identity });
    for (const ip of ips) {
      const uids = this.byIp.get(ip) ?? new Set<string>();
      uids.add(uid);
      this.byIp.set(ip, uids);
    }
  }

  remove(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    const entry = uid ? this.byUid.get(uid) : undefined;
    if (!uid || !entry) return;
    this.byUid.delete(uid);
    for (const ip of entry.ips) {
      const uids = this.byIp.get(ip);
      uids?.delete(uid);
      if (uids?.size === 0) this.byIp.delete(ip);
    }
  }

  identityOf(address: string): PodIdentity | undefined {
    const uids = this.byIp.get(address);
    if (!uids || uids.size !== 1) return undefined;
    return this.byUid.get([...uids][0]!)?.identity;
  }
}

/**
 * A pods informer on the API server (in-cluster config under HA_SIGNER_FS_ROOT, else KUBECONFIG). Needs RBAC `list`
 * and `watch` on pods in the clients' namespaces (cluster-wide here).
 */
export async function kubernetesPodIdentity(fsRoot: string, log: { warn(obj: object, msg: string): void }): Promise<PodIdentitySource> {
  const k8sClient = await import('@kubernetes/client-node');
  const kubeConfig = new k8sClient.KubeConfig();
  if (process.env.KUBERNETES_SERVICE_HOST) kubeConfig.loadFromCluster(fsRoot === '/' ? '' : fsRoot);
  else kubeConfig.loadFromDefault();
  const api = kubeConfig.makeApiClient(k8sClient.CoreV1Api);
  const index = new PodIpIndex();
  let synced = false;
  let stopped = false;
  const informer = k8sClient.makeInformer<k8s.V1Pod>(kubeConfig, '/api/v1/pods', async () => {
    const list = await api.listPodForAllNamespaces();
    synced = true;
    return list;
  });
  informer.on('add', (pod) => index.upsert(pod));
  informer.on('update', (pod) => index.upsert(pod));
  informer.on('delete', (pod) => index.remove(pod));
  informer.on('error', (error) => {
    if (stopped) return;
    log.warn({ err: (error as Error)?.message ?? String(error) }, 'pods informer failed; restarting in 1 s');
    setTimeout(() => {
      if (!stopped) informer.start().catch(() => undefined);
    }, 1_000).unref();
  });
  await informer.start();
  return {
    identityOf: (address) => index.identityOf(address),
    synced: () => synced,
    stop: async () => {
      stopped = true;
      await informer.stop();
    },
  };
}

/**
 * External high-water marks in a Kubernetes ConfigMap (one per ValidatorHASigner resource), so they survive a
 * database restore or failover. Every signer pod merges its marks by max at most every few seconds (the history
 * guard throttles), with optimistic concurrency (resourceVersion): concurrent pods never lower each other's marks.
 *
 * The pod needs get, create and update on that ConfigMap (RBAC: resourceNames cannot restrict create, so create
 * the ConfigMap up front, or grant create on configmaps in the namespace).
 */
import * as k8s from '@kubernetes/client-node';
import { ConfigError } from '../protection/errors.js';
import {
  type HighWaterMarkStore,
  type HighWaterMarks,
  MARKS_FORMAT,
  documentWithMarks,
  marksFromDocument,
} from '../protection/high-water-mark.js';

/** The ConfigMap key holding the marks document (`{"format": …, "rollups": {…}}`). */
export const MARKS_KEY = 'high-water-marks.json';
const MAX_CONFLICT_RETRIES = 10;

const statusCode = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
};

export class ConfigMapHighWaterMarkStore implements HighWaterMarkStore {
  constructor(
    private readonly core: k8s.CoreV1Api,
    readonly namespace: string,
    readonly name: string,
  ) {}

  /**
   * From the pod's ServiceAccount (in cluster: its token under `fsRoot`, HA_SIGNER_FS_ROOT, as auth.ts reads it) or
   * KUBECONFIG, as the Kubernetes client finds it.
   */
  static fromDefaultConfig(namespace: string, name: string, fsRoot = ''): ConfigMapHighWaterMarkStore {
    const kc = new k8s.KubeConfig();
    if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster(fsRoot === '/' ? '' : fsRoot);
    else kc.loadFromDefault();
    return new ConfigMapHighWaterMarkStore(kc.makeApiClient(k8s.CoreV1Api), namespace, name);
  }

  private get where(): string {
    return `ConfigMap ${this.namespace}/${this.name} key ${MARKS_KEY}`;
  }

  private async load(): Promise<{ map: k8s.V1ConfigMap | undefined; rollups: Record<string, Record<string, Record<string, string>>> }> {
    let map: k8s.V1ConfigMap;
    try {
      map = await this.core.readNamespacedConfigMap({ namespace: this.namespace, name: this.name });
    } catch (error) {
      if (statusCode(error) === 404) return { map: undefined, rollups: {} };
      throw error;
    }
    const text = map.data?.[MARKS_KEY];
    if (text === undefined) return { map, rollups: {} };
    let parsed: { format?: unknown; rollups?: unknown };
    try {
      parsed = JSON.parse(text) as { format?: unknown; rollups?: unknown };
    } catch (error) {
      throw new ConfigError(this.where, `not JSON (${(error as Error).message}); restore it or remove it knowingly`);
    }
    if (parsed.format !== MARKS_FORMAT) throw new ConfigError(this.where, `expected "format": "${MARKS_FORMAT}"`);
    return { map, rollups: (parsed.rollups ?? {}) as Record<string, Record<string, Record<string, string>>> };
  }

  async read(rollupAddress: string): Promise<HighWaterMarks> {
    return marksFromDocument((await this.load()).rollups, rollupAddress, this.where);
  }

  async raise(rollupAddress: string, marks: HighWaterMarks): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { map, rollups } = await this.load();
      const text = JSON.stringify({ format: MARKS_FORMAT, rollups: documentWithMarks(rollups, rollupAddress, marks) });
      try {
        if (!map) {
          const metadata = { name: this.name, namespace: this.namespace, labels: { 'app.kubernetes.io/component': 'high-water-marks' } };
          await this.core.createNamespacedConfigMap({ namespace: this.namespace, body: { metadata, data: { [MARKS_KEY]: text } } });
        } else {
          if (map.data?.[MARKS_KEY] === text) return;
          await this.core.replaceNamespacedConfigMap({
            namespace: this.namespace,
            name: this.name,
            body: { ...map, data: { ...map.data, [MARKS_KEY]: text } }, // carries metadata.resourceVersion: a race is a 409
          });
        }
        return;
      } catch (error) {
        // Another pod wrote first (409 conflict or already exists): merge with its marks and try again.
        if (statusCode(error) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }
}

/** prometheus-operator ServiceMonitor for the signer's /metrics (only when requested and its CRD exists). Pure. */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource } from '../types.js';
import { names, ownedMeta, selectorLabels } from './names.js';
import { METRICS_PORT_NAME } from './tls.js';

export const SERVICE_MONITOR_GROUP_VERSION = 'monitoring.coreos.com/v1';

export function serviceMonitorRequested(vhs: ValidatorHASignerResource): boolean {
  return vhs.spec.serviceMonitor?.enabled === true;
}

export function buildServiceMonitor(vhs: ValidatorHASignerResource): k8s.KubernetesObject & { spec: unknown } {
  const sm = vhs.spec.serviceMonitor ?? {};
  return {
    apiVersion: SERVICE_MONITOR_GROUP_VERSION,
    kind: 'ServiceMonitor',
    metadata: ownedMeta(vhs, names.serviceMonitor(vhs), 'signer', { labels: sm.labels ?? {} }),
    spec: {
      selector: { matchLabels: selectorLabels(vhs) },
      endpoints: [{ port: METRICS_PORT_NAME, path: '/metrics', interval: sm.interval ?? '30s' }],
    },
  };
}

/**
 * Phase 4, workload: the owned objects by server-side apply (field manager ha-signer-operator, force), then pruning
 * of the ones the spec no longer asks for. Returns the applied Deployment (its status feeds phase 5).
 */
import type * as k8s from '@kubernetes/client-node';
import {
  AZTEC_NODE_SECRET_KEY,
  aztecNodeSecretName,
  aztecNodesOf,
  buildTokenReviewBinding,
  generateAztecNodeSecret,
  secretValue,
  clientsConfigMapNeeded,
  desiredWorkload,
  names,
  needsApiToken,
  networkPolicyEnabled,
  secretsChecksum,
  SERVICE_MONITOR_GROUP_VERSION,
  serviceMonitorRequested,
  CERT_MANAGER_GROUP_VERSION,
  certificateName,
  certificateRequested,
  highWaterMarksEnabled,
} from '../desired/index.js';
import type { BuildContext, ValidatorHASignerResource } from '../types.js';
import type { WorkloadApi } from './api.js';

export interface WorkloadResult {
  deployment: k8s.V1Deployment | undefined;
  /** ServiceMonitor asked for while its CRD is not served (worth one Warning Event). */
  serviceMonitorCrdMissing: boolean;
}

export async function applyWorkload(
  vhs: ValidatorHASignerResource,
  api: WorkloadApi,
  build: BuildContext,
  secrets: Map<string, k8s.V1Secret | undefined>,
  lookup: (namespace: string, name: string) => Promise<k8s.V1Secret | undefined> = async () => undefined,
  opts: { clusterScoped?: boolean } = {},
): Promise<WorkloadResult> {
  const ns = vhs.metadata.namespace;
  const serves = () => api.servesGroupVersion(SERVICE_MONITOR_GROUP_VERSION).catch(() => false);
  const serviceMonitorCrd = serviceMonitorRequested(vhs) ? await serves() : false;
  const aztecNodeSecrets = await aztecNodeUrlSecrets(vhs, lookup);
  const servesCertificates = () => api.servesGroupVersion(CERT_MANAGER_GROUP_VERSION).catch(() => false);
  const certManagerCrd = certificateRequested(vhs) ? await servesCertificates() : false;
  let deployment: k8s.V1Deployment | undefined;
  for (const obj of desiredWorkload(vhs, build, {
    secretsChecksum: secretsChecksum(vhs, secrets),
    serviceMonitorCrd,
    certManagerCrd,
    aztecNodeSecrets,
  })) {
    const result = await api.apply(obj);
    if (obj.kind === 'Deployment') deployment = result as k8s.V1Deployment;
  }
  // Prune what the spec no longer asks for.
  // The cluster-scoped TokenReview binding only with cluster-scoped RBAC (a namespaced operator refuses
  // ServiceAccount clients before this phase, and touches no cluster-scoped object).
  if (opts.clusterScoped !== false) {
    if (needsApiToken(vhs)) await api.apply(buildTokenReviewBinding(vhs));
    else await api.deleteClusterRoleBinding(names.tokenReviewBinding(ns, vhs.metadata.name));
  }
  if (!networkPolicyEnabled(vhs)) await api.deleteObject('networking.k8s.io/v1', 'NetworkPolicy', ns, names.networkPolicy(vhs));
  // Off: the signers lose access; the ConfigMap itself (the marks) is kept, as on deletion.
  if (!highWaterMarksEnabled(vhs)) {
    await api.deleteObject('rbac.authorization.k8s.io/v1', 'RoleBinding', ns, names.highWaterMarks(vhs));
    await api.deleteObject('rbac.authorization.k8s.io/v1', 'Role', ns, names.highWaterMarks(vhs));
  }
  if (!clientsConfigMapNeeded(vhs)) await api.deleteObject('v1', 'ConfigMap', ns, names.clientsConfigMap(vhs));
  if (!serviceMonitorRequested(vhs) && (await serves()))
    await api.deleteObject(SERVICE_MONITOR_GROUP_VERSION, 'ServiceMonitor', ns, names.serviceMonitor(vhs));
  // A Certificate exists only if TLS was on (status.endpoint https); best effort, so RBAC without Certificates never blocks.
  if (!certificateRequested(vhs) && vhs.status?.endpoint?.startsWith('https://') && (await servesCertificates()))
    await api.deleteObject(CERT_MANAGER_GROUP_VERSION, 'Certificate', ns, certificateName(vhs)).catch(() => false);
  const nodes = aztecNodesOf(vhs);
  for (const gone of vhs.status?.aztecNodes ?? []) {
    if (!nodes.some((n) => n.name === gone.name)) await api.deleteObject('v1', 'Secret', ns, aztecNodeSecretName(vhs, gone));
  }
  if (nodes.length === 0 && (vhs.status?.aztecNodes?.length ?? 0) > 0)
    await api.deleteObject('v1', 'Secret', ns, names.jsonRpcClientsSecret(vhs));
  return { deployment, serviceMonitorCrdMissing: serviceMonitorRequested(vhs) && !serviceMonitorCrd };
}

/** Each node's URL secret: kept from its Secret when there is one (a rotation is deleting that Secret), else new. */
async function aztecNodeUrlSecrets(
  vhs: ValidatorHASignerResource,
  lookup: (namespace: string, name: string) => Promise<k8s.V1Secret | undefined>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const node of aztecNodesOf(vhs)) {
    const existing = secretValue(await lookup(vhs.metadata.namespace, aztecNodeSecretName(vhs, node)), AZTEC_NODE_SECRET_KEY);
    out.set(node.name, existing && /^[A-Za-z0-9_-]{32,256}$/.test(existing) ? existing : generateAztecNodeSecret());
  }
  return out;
}

/** Resource → the owned objects that should exist once the database is claimed and migrated. Pure. */
import type * as k8s from '@kubernetes/client-node';
import type { BuildContext, ValidatorHASignerResource } from '../types.js';
import { buildClientsConfigMap, clientsConfigMapNeeded } from './configmap.js';
import { buildDeployment } from './deployment.js';
import { buildNetworkPolicy, networkPolicyEnabled } from './networkpolicy.js';
import { buildPodDisruptionBudget } from './pdb.js';
import { buildService } from './service.js';
import { buildServiceAccount } from './serviceaccount.js';
import { buildServiceMonitor, serviceMonitorRequested } from './servicemonitor.js';

export * from './ownership.js';
export * from './conditions.js';
export * from './configmap.js';
export * from './database.js';
export * from './deployment.js';
export * from './job.js';
export * from './names.js';
export * from './networkpolicy.js';
export * from './pdb.js';
export * from './rollout.js';
export * from './secrets.js';
export * from './security.js';
export * from './service.js';
export * from './serviceaccount.js';
export * from './servicemonitor.js';

export interface WorkloadInputs {
  secretsChecksum: string;
  /** Whether the ServiceMonitor CRD (monitoring.coreos.com/v1) is served. */
  serviceMonitorCrd: boolean;
}

/** Objects in apply order (the ServiceAccount and ConfigMap before the pods that use them). */
export function desiredWorkload(vhs: ValidatorHASignerResource, ctx: BuildContext, inputs: WorkloadInputs): k8s.KubernetesObject[] {
  const out: k8s.KubernetesObject[] = [buildServiceAccount(vhs)];
  if (clientsConfigMapNeeded(vhs)) out.push(buildClientsConfigMap(vhs));
  out.push(buildService(vhs), buildPodDisruptionBudget(vhs));
  if (networkPolicyEnabled(vhs)) out.push(buildNetworkPolicy(vhs));
  if (serviceMonitorRequested(vhs) && inputs.serviceMonitorCrd) out.push(buildServiceMonitor(vhs));
  out.push(buildDeployment(vhs, ctx, { secretsChecksum: inputs.secretsChecksum }));
  return out;
}

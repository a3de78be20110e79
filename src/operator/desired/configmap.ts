/** ConfigMap with the ServiceAccount allow-list the signer checks with TokenReview (contract: service-accounts.json). Pure. */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource } from '../types.js';
import { names, ownedMeta } from './names.js';

export function serviceAccountAllowList(vhs: ValidatorHASignerResource): { namespace: string; name: string; validators: string[] }[] {
  return (vhs.spec.clients?.serviceAccounts ?? []).map((sa) => ({
    namespace: sa.namespace ?? vhs.metadata.namespace,
    name: sa.name,
    validators: sa.validators.map((v) => (v === '*' ? v : v.toLowerCase())),
  }));
}

export function clientsConfigMapNeeded(vhs: ValidatorHASignerResource): boolean {
  return !vhs.spec.clients?.disableAuthentication && (vhs.spec.clients?.serviceAccounts?.length ?? 0) > 0;
}

export function buildClientsConfigMap(vhs: ValidatorHASignerResource): k8s.V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMeta(vhs, names.clientsConfigMap(vhs), 'signer'),
    data: { 'service-accounts.json': `${JSON.stringify(serviceAccountAllowList(vhs), null, 2)}\n` },
  };
}

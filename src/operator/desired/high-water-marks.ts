/**
 * The Kubernetes high-water-mark store of the signers (src/signer/kube-high-water-marks.ts): one ConfigMap per
 * resource, and a Role + RoleBinding that let the signer pods' ServiceAccount read and update exactly that ConfigMap.
 * Pure.
 *
 * The ConfigMap has no owner reference on purpose: the marks protect against a database that went back in time
 * (restored, failed over to a lagging standby, recreated), and deleting and recreating the resource is one way that
 * happens. A resource created again under the same name finds its marks. Delete the ConfigMap by hand to forget them.
 */
import type * as k8s from '@kubernetes/client-node';
import { SAFETY_ENV } from '../../contract.js';
import type { ValidatorHASignerResource } from '../types.js';
import { commonLabels, names, ownedMeta } from './names.js';

export type HighWaterMarksMode = 'Kubernetes' | 'Off';

/** spec.protection.highWaterMarks, default Kubernetes (a store that only adds protection; see docs/operator.md). */
export function highWaterMarksMode(vhs: ValidatorHASignerResource): HighWaterMarksMode {
  return vhs.spec.protection?.highWaterMarks ?? 'Kubernetes';
}

export const highWaterMarksEnabled = (vhs: ValidatorHASignerResource): boolean => highWaterMarksMode(vhs) === 'Kubernetes';

/** `HA_SIGNER_HIGH_WATER_MARKS_CONFIGMAP=<namespace>/<name>` when the store is on. */
export function highWaterMarksEnv(vhs: ValidatorHASignerResource): k8s.V1EnvVar[] {
  if (!highWaterMarksEnabled(vhs)) return [];
  return [{ name: SAFETY_ENV.highWaterMarksConfigMap, value: `${vhs.metadata.namespace}/${names.highWaterMarks(vhs)}` }];
}

/**
 * Created up front (RBAC resourceNames cannot restrict create), without data: the operator's server-side apply owns
 * only the labels, the signers' updates own `data`, so a reconcile never touches the marks.
 */
export function buildHighWaterMarksConfigMap(vhs: ValidatorHASignerResource): k8s.V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: names.highWaterMarks(vhs),
      namespace: vhs.metadata.namespace,
      labels: commonLabels(vhs, 'high-water-marks'),
      annotations: {
        'ha-signer.dev/note':
          'Kept when the ValidatorHASigner is deleted: the marks protect a recreated resource from a restored database. ' +
          'Delete by hand only to forget them.',
      },
    },
  };
}

/** get/update/patch on exactly the marks ConfigMap (the store reads, then replaces with resourceVersion). */
export function buildHighWaterMarksRole(vhs: ValidatorHASignerResource): k8s.V1Role {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: ownedMeta(vhs, names.highWaterMarks(vhs), 'high-water-marks'),
    rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [names.highWaterMarks(vhs)], verbs: ['get', 'update', 'patch'] }],
  };
}

export function buildHighWaterMarksRoleBinding(vhs: ValidatorHASignerResource): k8s.V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: ownedMeta(vhs, names.highWaterMarks(vhs), 'high-water-marks'),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.highWaterMarks(vhs) },
    subjects: [{ kind: 'ServiceAccount', name: names.serviceAccount(vhs), namespace: vhs.metadata.namespace }],
  };
}

/**
 * The signer pods' ServiceAccount, and (only with ServiceAccount clients) a ClusterRoleBinding to
 * system:auth-delegator so the signer may call TokenReview. Pure.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource } from '../types.js';
import { FIELD_MANAGER, names, ownedMeta } from './names.js';

export const LABEL_OWNER_NAMESPACE = 'ha-signer.dev/owner-namespace';
export const LABEL_OWNER_NAME = 'ha-signer.dev/owner-name';
export const LABEL_OWNER_UID = 'ha-signer.dev/owner-uid';

export function buildServiceAccount(vhs: ValidatorHASignerResource): k8s.V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: ownedMeta(vhs, names.serviceAccount(vhs), 'signer'),
    // Pods opt in per Deployment (only when they must call TokenReview).
    automountServiceAccountToken: false,
  };
}

/** Cluster-scoped, so it cannot be garbage-collected through an owner reference: the operator deletes it. */
export function buildTokenReviewBinding(vhs: ValidatorHASignerResource): k8s.V1ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name: names.tokenReviewBinding(vhs.metadata.namespace, vhs.metadata.name),
      labels: {
        'app.kubernetes.io/managed-by': FIELD_MANAGER,
        'app.kubernetes.io/part-of': 'ha-signer',
        [LABEL_OWNER_NAMESPACE]: vhs.metadata.namespace,
        [LABEL_OWNER_NAME]: vhs.metadata.name,
        [LABEL_OWNER_UID]: vhs.metadata.uid,
      },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
    subjects: [{ kind: 'ServiceAccount', name: names.serviceAccount(vhs), namespace: vhs.metadata.namespace }],
  };
}

/** PodDisruptionBudget: voluntary disruptions take at most one signer pod at a time. Pure. */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource } from '../types.js';
import { names, ownedMeta, selectorLabels } from './names.js';

export function buildPodDisruptionBudget(vhs: ValidatorHASignerResource): k8s.V1PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMeta(vhs, names.pdb(vhs), 'signer'),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(vhs) },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}

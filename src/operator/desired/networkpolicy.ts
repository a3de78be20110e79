/** NetworkPolicy: the signing port admits only the declared clients; the metrics port only the metrics scrapers. Pure. */
import type * as k8s from '@kubernetes/client-node';
import { SIGNER_METRICS_PORT } from '../../contract.js';
import { SIGNER_PORT, type ValidatorHASignerResource } from '../types.js';
import { names, ownedMeta, selectorLabels } from './names.js';

export function networkPolicyPeers(vhs: ValidatorHASignerResource): k8s.V1NetworkPolicyPeer[] {
  const c = vhs.spec.clients ?? {};
  const peers: k8s.V1NetworkPolicyPeer[] = [];
  for (const sa of c.serviceAccounts ?? []) {
    const ns = sa.namespace ?? vhs.metadata.namespace;
    const peer: k8s.V1NetworkPolicyPeer = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } };
    if (sa.podSelector) peer.podSelector = sa.podSelector;
    if (!peers.some((p) => JSON.stringify(p) === JSON.stringify(peer))) peers.push(peer);
  }
  for (const p of c.tokens?.from ?? []) peers.push(p);
  for (const node of c.disableAuthentication ? [] : (c.aztecNodes ?? [])) for (const p of node.from ?? []) peers.push(p);
  return peers;
}

export function networkPolicyEnabled(vhs: ValidatorHASignerResource): boolean {
  return vhs.spec.networkPolicy?.enabled ?? true;
}

/**
 * The operator's pods as the chart labels them, in `namespace`: they read the signers' /readyz on the metrics port
 * for the failover-safety conditions (src/operator/reconcile/safety.ts).
 */
export function operatorPeer(namespace: string): k8s.V1NetworkPolicyPeer {
  return {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ha-signer', 'app.kubernetes.io/component': 'operator' } },
  };
}

export function buildNetworkPolicy(vhs: ValidatorHASignerResource, operatorNamespace?: string): k8s.V1NetworkPolicy {
  const peers = networkPolicyPeers(vhs);
  const scrapers = [...(vhs.spec.networkPolicy?.metricsFrom ?? []), ...(operatorNamespace ? [operatorPeer(operatorNamespace)] : [])];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMeta(vhs, names.networkPolicy(vhs), 'signer'),
    spec: {
      podSelector: { matchLabels: selectorLabels(vhs) },
      policyTypes: ['Ingress'],
      // No peers: nothing may connect (an empty `from` would admit everyone). `_from` is client-node's name for `from`.
      // Scrapers reach /metrics (and the probes' /livez, /readyz) on the metrics port, never the signing API.
      ingress: [
        ...(peers.length === 0 ? [] : [{ _from: peers, ports: [{ protocol: 'TCP', port: SIGNER_PORT }] }]),
        ...(scrapers.length === 0 ? [] : [{ _from: scrapers, ports: [{ protocol: 'TCP', port: SIGNER_METRICS_PORT }] }]),
      ],
    },
  };
}

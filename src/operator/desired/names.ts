/** Names, labels, owner references and hashes of everything the operator creates for a ValidatorHASigner. Pure. */
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { API_VERSION, KIND, type ValidatorHASignerResource } from '../types.js';

export const FIELD_MANAGER = 'ha-signer-operator';
export const LABEL_RESOURCE = 'ha-signer.dev/validatorhasigner';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const ANNOTATION_SECRETS_CHECKSUM = 'ha-signer.dev/secrets-checksum';
export const ANNOTATION_CLIENTS_CHECKSUM = 'ha-signer.dev/clients-checksum';
export const ANNOTATION_MIGRATION_HASH = 'ha-signer.dev/migration-hash';

/** Hex sha256 of the JSON of `value`, shortened to `length` characters. */
export function hash(value: unknown, length = 10): string {
  return createHash('sha256')
    .update(typeof value === 'string' ? value : stableJson(value))
    .digest('hex')
    .slice(0, length);
}

/** JSON with sorted object keys, so equal values hash equally whatever their key order. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Labels that select the signer pods (immutable: used in the Deployment's selector). */
export function selectorLabels(vhs: ValidatorHASignerResource): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'ha-signer',
    'app.kubernetes.io/instance': vhs.metadata.name,
    [LABEL_COMPONENT]: 'signer',
  };
}

export function labelSelectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Labels on every owned object. */
export function commonLabels(vhs: ValidatorHASignerResource, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'ha-signer',
    'app.kubernetes.io/instance': vhs.metadata.name,
    [LABEL_COMPONENT]: component,
    'app.kubernetes.io/part-of': 'ha-signer',
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
    [LABEL_RESOURCE]: vhs.metadata.name,
  };
}

export function ownerReference(vhs: ValidatorHASignerResource): k8s.V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: vhs.metadata.name,
    uid: vhs.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of an owned, namespaced object. */
export function ownedMeta(
  vhs: ValidatorHASignerResource,
  name: string,
  component: string,
  extra: Partial<k8s.V1ObjectMeta> = {},
): k8s.V1ObjectMeta {
  return {
    name,
    namespace: vhs.metadata.namespace,
    ...extra,
    labels: { ...commonLabels(vhs, component), ...(extra.labels ?? {}) },
    ownerReferences: [ownerReference(vhs)],
  };
}

export const names = {
  deployment: (vhs: ValidatorHASignerResource) => vhs.metadata.name,
  service: (vhs: ValidatorHASignerResource) => vhs.metadata.name,
  pdb: (vhs: ValidatorHASignerResource) => vhs.metadata.name,
  networkPolicy: (vhs: ValidatorHASignerResource) => vhs.metadata.name,
  serviceMonitor: (vhs: ValidatorHASignerResource) => vhs.metadata.name,
  serviceAccount: (vhs: ValidatorHASignerResource) => `${vhs.metadata.name}-signer`,
  clientsConfigMap: (vhs: ValidatorHASignerResource) => `${vhs.metadata.name}-clients`,
  /** The signers' external high-water marks, and the Role/RoleBinding that grant access to it (same name). */
  highWaterMarks: (vhs: ValidatorHASignerResource) => `${vhs.metadata.name}-high-water-marks`,
  /** The signer's JSON-RPC clients file (stock Aztec nodes with their URL secrets). */
  jsonRpcClientsSecret: (vhs: ValidatorHASignerResource) => `${vhs.metadata.name}-jsonrpc-clients`,
  /** Cluster-scoped: cannot be owned by a namespaced resource; the operator deletes it itself. */
  tokenReviewBinding: (namespace: string, name: string) => `ha-signer:tokenreview:${namespace}:${name}`,
  /** `<name>-migrate-<hash>`, at most 63 characters (Job names become pod labels). */
  migrationJob: (vhs: ValidatorHASignerResource, migrationHash: string) =>
    `${vhs.metadata.name.slice(0, 44).replace(/-+$/, '')}-migrate-${migrationHash}`,
  /** Ownership record of a database: one per database identity, in the operator's namespace. */
  databaseOwnership: (databaseIdentity: string) => `ha-signer-db-${hash(databaseIdentity, 16)}`,
};

export function serviceHost(vhs: ValidatorHASignerResource): string {
  return `${names.service(vhs)}.${vhs.metadata.namespace}.svc`;
}

export function imageOf(vhs: ValidatorHASignerResource, defaultImage: string): string {
  return vhs.spec.image && vhs.spec.image.trim() !== '' ? vhs.spec.image.trim() : defaultImage;
}

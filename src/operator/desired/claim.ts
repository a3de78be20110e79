/**
 * One database per rollup version: a claim object (a ConfigMap in the operator's namespace named from a hash of the
 * database identity) records which ValidatorHASigner holds a database. Creating it fails with AlreadyExists when
 * another resource got there first; replacing it uses the resourceVersion precondition. The decisions are pure.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASigner } from '../types.js';
import { FIELD_MANAGER, names } from './names.js';

export const LABEL_CLAIM = 'ha-signer.dev/claim';
export const LABEL_HOLDER_UID = 'ha-signer.dev/holder-uid';

export interface ClaimHolder {
  namespace: string;
  name: string;
  uid: string;
  creationTimestamp: string;
  rollupAddress: string;
  rollupVersion: string;
}

export function holderOf(vhs: ValidatorHASigner): ClaimHolder {
  return {
    namespace: vhs.metadata.namespace,
    name: vhs.metadata.name,
    uid: vhs.metadata.uid,
    creationTimestamp: toIso(vhs.metadata.creationTimestamp),
    rollupAddress: vhs.spec.rollup.address.toLowerCase(),
    rollupVersion: vhs.spec.rollup.version,
  };
}

function toIso(t: Date | string | undefined): string {
  if (t === undefined) return new Date(0).toISOString();
  return (t instanceof Date ? t : new Date(t)).toISOString();
}

export function buildClaim(vhs: ValidatorHASigner, databaseIdentity: string, claimsNamespace: string): k8s.V1ConfigMap {
  const h = holderOf(vhs);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: names.claim(databaseIdentity),
      namespace: claimsNamespace,
      labels: { [LABEL_CLAIM]: 'database', [LABEL_HOLDER_UID]: h.uid, 'app.kubernetes.io/managed-by': FIELD_MANAGER, 'app.kubernetes.io/part-of': 'ha-signer' },
      annotations: { 'ha-signer.dev/database': databaseIdentity },
    },
    data: {
      databaseIdentity,
      holderNamespace: h.namespace,
      holderName: h.name,
      holderUid: h.uid,
      holderCreationTimestamp: h.creationTimestamp,
      rollupAddress: h.rollupAddress,
      rollupVersion: h.rollupVersion,
    },
  };
}

export function readClaim(cm: k8s.V1ConfigMap): { databaseIdentity: string; holder: ClaimHolder } | undefined {
  const d = cm.data ?? {};
  if (!d.holderUid || !d.holderName || !d.holderNamespace) return undefined;
  return {
    databaseIdentity: d.databaseIdentity ?? '',
    holder: {
      namespace: d.holderNamespace,
      name: d.holderName,
      uid: d.holderUid,
      creationTimestamp: d.holderCreationTimestamp ?? new Date(0).toISOString(),
      rollupAddress: (d.rollupAddress ?? '').toLowerCase(),
      rollupVersion: d.rollupVersion ?? '',
    },
  };
}

/** Older first: creation time, then namespace/name. */
export function isOlder(a: ClaimHolder, b: ClaimHolder): boolean {
  const ta = Date.parse(a.creationTimestamp);
  const tb = Date.parse(b.creationTimestamp);
  if (ta !== tb) return ta < tb;
  return `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}`;
}

export function sameRollup(a: ClaimHolder, b: ClaimHolder): boolean {
  return a.rollupAddress === b.rollupAddress && a.rollupVersion === b.rollupVersion;
}

export type ClaimDecision =
  | { kind: 'mine' }
  | { kind: 'shared'; holder: ClaimHolder }
  | { kind: 'takeover'; why: 'stale' | 'older'; holder: ClaimHolder }
  | { kind: 'conflict'; holder: ClaimHolder };

/**
 * What to do about an existing claim. `holderExists`: whether the holding resource (same uid) still exists.
 */
export function decideClaim(me: ClaimHolder, existing: ClaimHolder, holderExists: boolean): ClaimDecision {
  if (existing.uid === me.uid) return { kind: 'mine' };
  if (!holderExists) return { kind: 'takeover', why: 'stale', holder: existing };
  if (sameRollup(me, existing)) return { kind: 'shared', holder: existing };
  if (isOlder(me, existing)) return { kind: 'takeover', why: 'older', holder: existing };
  return { kind: 'conflict', holder: existing };
}

export function conflictMessage(databaseIdentity: string, holder: ClaimHolder): string {
  return (
    `database ${databaseIdentity} is already used by ValidatorHASigner ${holder.namespace}/${holder.name} ` +
    `for rollup ${holder.rollupAddress} version ${holder.rollupVersion}; one database serves one rollup version: ` +
    `point spec.database.secretRef at a separate database`
  );
}

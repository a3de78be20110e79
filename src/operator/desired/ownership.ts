/**
 * One database per rollup version: an ownership record (a ConfigMap in the operator's namespace named from a hash of
 * the database identity) says which ValidatorHASigner owns a database. Creating it fails with AlreadyExists when
 * another resource got there first; replacing it uses the resourceVersion precondition. The decisions are pure.
 * ("Ownership", not "claim": a claim is a signer's lock on one duty row.)
 */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource } from '../types.js';
import { FIELD_MANAGER, names } from './names.js';

export const LABEL_DATABASE_OWNERSHIP = 'ha-signer.dev/database-ownership';
export const LABEL_OWNER_RESOURCE_UID = 'ha-signer.dev/owner-resource-uid';

export interface DatabaseOwner {
  namespace: string;
  name: string;
  uid: string;
  creationTimestamp: string;
  rollupAddress: string;
  rollupVersion: string;
}

export function ownerOf(vhs: ValidatorHASignerResource): DatabaseOwner {
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

export function buildOwnershipRecord(
  vhs: ValidatorHASignerResource,
  databaseIdentity: string,
  ownershipNamespace: string,
): k8s.V1ConfigMap {
  const o = ownerOf(vhs);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: names.databaseOwnership(databaseIdentity),
      namespace: ownershipNamespace,
      labels: {
        [LABEL_DATABASE_OWNERSHIP]: 'true',
        [LABEL_OWNER_RESOURCE_UID]: o.uid,
        'app.kubernetes.io/managed-by': FIELD_MANAGER,
        'app.kubernetes.io/part-of': 'ha-signer',
      },
      annotations: { 'ha-signer.dev/database': databaseIdentity },
    },
    data: {
      databaseIdentity,
      ownerNamespace: o.namespace,
      ownerName: o.name,
      ownerUid: o.uid,
      ownerCreationTimestamp: o.creationTimestamp,
      rollupAddress: o.rollupAddress,
      rollupVersion: o.rollupVersion,
    },
  };
}

export function readOwnershipRecord(cm: k8s.V1ConfigMap): { databaseIdentity: string; owner: DatabaseOwner } | undefined {
  const d = cm.data ?? {};
  if (!d.ownerUid || !d.ownerName || !d.ownerNamespace) return undefined;
  return {
    databaseIdentity: d.databaseIdentity ?? '',
    owner: {
      namespace: d.ownerNamespace,
      name: d.ownerName,
      uid: d.ownerUid,
      creationTimestamp: d.ownerCreationTimestamp ?? new Date(0).toISOString(),
      rollupAddress: (d.rollupAddress ?? '').toLowerCase(),
      rollupVersion: d.rollupVersion ?? '',
    },
  };
}

/** Older first: creation time, then namespace/name. */
export function isOlder(a: DatabaseOwner, b: DatabaseOwner): boolean {
  const ta = Date.parse(a.creationTimestamp);
  const tb = Date.parse(b.creationTimestamp);
  if (ta !== tb) return ta < tb;
  return `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}`;
}

export function sameRollup(a: DatabaseOwner, b: DatabaseOwner): boolean {
  return a.rollupAddress === b.rollupAddress && a.rollupVersion === b.rollupVersion;
}

export type OwnershipDecision =
  | { kind: 'mine' }
  | { kind: 'shared'; owner: DatabaseOwner }
  | { kind: 'takeover'; why: 'stale' | 'older'; owner: DatabaseOwner }
  | { kind: 'conflict'; owner: DatabaseOwner };

/** What to do about an existing ownership record. `ownerExists`: whether the owning resource (same uid) still exists. */
export function decideOwnership(me: DatabaseOwner, existing: DatabaseOwner, ownerExists: boolean): OwnershipDecision {
  if (existing.uid === me.uid) return { kind: 'mine' };
  if (!ownerExists) return { kind: 'takeover', why: 'stale', owner: existing };
  if (sameRollup(me, existing)) return { kind: 'shared', owner: existing };
  if (isOlder(me, existing)) return { kind: 'takeover', why: 'older', owner: existing };
  return { kind: 'conflict', owner: existing };
}

/**
 * The DatabaseInUse message. It names the owner and asks for another database for this resource; it never suggests
 * rebinding: the owner's database is bound to the owner's rollup and must stay so.
 */
export function ownershipConflictMessage(databaseIdentity: string, owner: DatabaseOwner): string {
  return (
    `database ${databaseIdentity} is already used by ValidatorHASigner ${owner.namespace}/${owner.name} ` +
    `for rollup ${owner.rollupAddress} version ${owner.rollupVersion}; one database serves one rollup version: ` +
    `point this resource's spec.database.secretRef at a separate database (leave ${owner.namespace}/${owner.name}'s database as it is)`
  );
}

/**
 * Phase 2, database ownership: one database per rollup version. The ownership record is created with AlreadyExists
 * semantics and replaced only at a known resourceVersion, so two operators (or workers) cannot both win.
 */
import {
  buildOwnershipRecord,
  decideOwnership,
  LABEL_DATABASE_OWNERSHIP,
  names,
  ownerOf,
  ownershipConflictMessage,
  readOwnershipRecord,
} from '../desired/index.js';
import type { ValidatorHASignerResource } from '../types.js';
import type { Log, OwnershipApi, ReconcilerCaches } from './api.js';
import type { StatusRecorder } from './status.js';

export interface OwnershipContext {
  vhs: ValidatorHASignerResource;
  api: OwnershipApi;
  caches: Pick<ReconcilerCaches, 'vhs' | 'deployments'>;
  rec: StatusRecorder;
  /** Namespace of the ownership records (the operator's). */
  ownershipNamespace: string;
  log: Log;
  /** Ask for another resource to be reconciled (the loser after a takeover). */
  enqueue: (key: string) => void;
}

const keyOf = (v: { metadata: { namespace: string; name: string } }) => `${v.metadata.namespace}/${v.metadata.name}`;

/**
 * True when this resource may use the database with ownership key `identity` (owner, or sharing with the same
 * rollup). `label` names the database in messages.
 */
export async function claimDatabaseOwnership(
  ctx: OwnershipContext,
  identity: string,
  previousIdentity: string | undefined,
  label = identity,
): Promise<boolean> {
  const { vhs, api, rec, ownershipNamespace: ns } = ctx;
  const me = ownerOf(vhs);
  if (previousIdentity && previousIdentity !== identity) {
    // The resource moved to another database: give up the old one (only if still ours).
    const old = await api.readConfigMap(ns, names.databaseOwnership(previousIdentity));
    if (old && readOwnershipRecord(old)?.owner.uid === me.uid)
      await api.deleteConfigMapIf(ns, old.metadata!.name!, old.metadata!.uid!, old.metadata!.resourceVersion);
  }
  const owned = `database ${label} owned for rollup ${me.rollupAddress} version ${me.rollupVersion}`;
  const desired = buildOwnershipRecord(vhs, identity, ns);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await api.createConfigMapIfAbsent(desired)) {
      rec.set('DatabaseClaimed', 'True', 'Claimed', owned);
      return true;
    }
    const cm = await api.readConfigMap(ns, desired.metadata!.name!);
    if (!cm) continue; // deleted in between: try to create again
    const existing = readOwnershipRecord(cm);
    const decision = existing ? decideOwnership(me, existing.owner, await ownerExists(ctx, existing.owner)) : undefined;
    switch (decision?.kind) {
      case 'mine':
        rec.set('DatabaseClaimed', 'True', 'Claimed', owned);
        return true;
      case 'shared':
        rec.set(
          'DatabaseClaimed',
          'True',
          'SharedWithSameRollup',
          `database ${label} shared with ValidatorHASigner ${keyOf({ metadata: decision.owner })} (same rollup)`,
        );
        return true;
      case 'conflict':
        await refuse(ctx, ownershipConflictMessage(label, decision.owner));
        return false;
      case 'takeover':
      case undefined: // unreadable record: take it over
        if (!(await api.replaceConfigMapAt(desired, cm.metadata!.resourceVersion!))) continue; // lost a race: look again
        if (decision) {
          ctx.log('database ownership taken over', { resource: keyOf(vhs), from: keyOf({ metadata: decision.owner }), why: decision.why });
          ctx.enqueue(keyOf({ metadata: decision.owner }));
          for (const other of ctx.caches.vhs.list())
            if (other.status?.databaseIdentity === identity && other.metadata.uid !== me.uid) ctx.enqueue(keyOf(other));
        }
        rec.set('DatabaseClaimed', 'True', 'Claimed', owned);
        return true;
    }
  }
  throw new Error(`database ownership of ${identity}: too many concurrent changes, retrying`);
}

/** DatabaseInUse: nothing may run against a database bound to another rollup, so a workload from before goes. */
async function refuse(ctx: OwnershipContext, message: string): Promise<void> {
  const { vhs, api, rec } = ctx;
  rec.block('DatabaseClaimed', 'DatabaseInUse', message);
  const ns = vhs.metadata.namespace;
  const name = names.deployment(vhs);
  if (ctx.caches.deployments.get(ns, name) || (await api.readDeployment(ns, name)))
    await api.deleteObject('apps/v1', 'Deployment', ns, name);
  rec.status.replicas = 0;
  rec.status.readyReplicas = 0;
}

async function ownerExists(ctx: OwnershipContext, owner: { namespace: string; name: string; uid: string }): Promise<boolean> {
  const cached = ctx.caches.vhs.get(owner.namespace, owner.name);
  if (cached) return cached.metadata.uid === owner.uid;
  // Not in this operator's cache (another namespace than the watched one, or very new): ask the API server.
  const live = await ctx.api.readValidatorHASigner(owner.namespace, owner.name).catch(() => undefined);
  return live?.metadata.uid === owner.uid;
}

/**
 * Releases the ownership records of a deleted resource (uid precondition, so a record another resource took over in
 * the meantime stays), and re-queues the resources waiting for those databases.
 */
export async function releaseDatabaseOwnership(
  api: Pick<OwnershipApi, 'listConfigMaps' | 'deleteConfigMapIf'>,
  caches: Pick<ReconcilerCaches, 'vhs'>,
  ownershipNamespace: string,
  owner: { namespace: string; name: string; uid?: string },
  enqueue: (key: string) => void,
): Promise<void> {
  for (const cm of await api.listConfigMaps(ownershipNamespace, LABEL_DATABASE_OWNERSHIP)) {
    const record = readOwnershipRecord(cm);
    if (!record || record.owner.namespace !== owner.namespace || record.owner.name !== owner.name) continue;
    if (owner.uid ? record.owner.uid !== owner.uid : caches.vhs.get(owner.namespace, owner.name)?.metadata.uid === record.owner.uid)
      continue;
    await api.deleteConfigMapIf(ownershipNamespace, cm.metadata!.name!, cm.metadata!.uid!, cm.metadata!.resourceVersion);
    for (const other of caches.vhs.list()) if (other.status?.databaseIdentity === record.databaseIdentity) enqueue(keyOf(other));
  }
}

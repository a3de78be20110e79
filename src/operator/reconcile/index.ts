/**
 * One reconcile of one ValidatorHASigner, phase by phase (as CloudNativePG splits cluster_*.go): inputs, database
 * ownership, migration, workload, status. Each phase lives in its own module and uses a small slice of the API.
 */
import {
  addressKey,
  aztecNodeEnv,
  aztecNodeSecretName,
  aztecNodesOf,
  describeIdentity,
  endpointUrl,
  identityKey,
  labelSelectorString,
  names,
  needsApiToken,
  rolloutState,
  selectorLabels,
} from '../desired/index.js';
import type { ValidatorHASignerResource } from '../types.js';
import type { Log, ReconcileApi, ReconcilerCaches } from './api.js';
import { readInputs, secretLookup } from './inputs.js';
import { applyMigrationPhase, observeMigration, type MigrationObservation } from './migration.js';
import { claimDatabaseOwnership, releaseDatabaseOwnership } from './ownership.js';
import { historyIntactCondition, readSignerReports, synchronousReplicationCondition, type ReadyzFetcher } from './safety.js';
import { recordEvent, StatusRecorder, writeStatus } from './status.js';
import { applyWorkload } from './workload.js';

export type { ReconcilerCaches } from './api.js';
export { migrationPhase, schemaVersionFromMessage } from './migration.js';
export { ReconcileProblem, WARNING_REASONS } from './status.js';

/** Holds a deleted resource until the operator has removed what the garbage collector cannot. */
export const CLEANUP_FINALIZER = 'ha-signer.dev/cleanup';

export interface ReconcilerOptions {
  /** Namespace of the database ownership records (the operator's). */
  ownershipNamespace: string;
  /**
   * False when the operator runs with namespace-scoped RBAC (--namespaced): it then neither creates nor deletes the
   * cluster-scoped TokenReview binding, and refuses ServiceAccount clients (they need it). Default true.
   */
  clusterScoped?: boolean;
  defaultImage: string;
  /** Reported as the Events' reportingInstance. */
  instance: string;
  log: Log;
  /** Ask for another resource to be reconciled (the loser after an ownership takeover). */
  enqueue: (key: string) => void;
  /** Reads a signer pod's /readyz (failover-safety conditions); default: HTTP to the pod IP's metrics port. */
  readyz?: ReadyzFetcher;
}

/** How often a served resource's failover-safety conditions are refreshed from its pods. */
export const SAFETY_REFRESH_MS = 30_000;

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export class Reconciler {
  constructor(
    private readonly api: ReconcileApi,
    private readonly caches: ReconcilerCaches,
    private readonly opts: ReconcilerOptions,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const vhs = this.caches.vhs.get(namespace, name);
    if (!vhs) {
      await this.cleanupDeleted(namespace, name);
      return {};
    }
    const finalizers = vhs.metadata.finalizers ?? [];
    if (vhs.metadata.deletionTimestamp) {
      // Outside the garbage collector's reach (cluster-scoped binding, ownership record in another namespace): clean
      // up, then let the resource go. Works also when it was deleted while no operator ran.
      if (finalizers.includes(CLEANUP_FINALIZER)) {
        await this.releaseExternal({ namespace, name, uid: vhs.metadata.uid });
        await this.api.patchFinalizers(
          vhs,
          finalizers.filter((f) => f !== CLEANUP_FINALIZER),
        );
      }
      return {};
    }
    if (!finalizers.includes(CLEANUP_FINALIZER)) await this.api.patchFinalizers(vhs, [...finalizers, CLEANUP_FINALIZER]);
    const rec = new StatusRecorder(vhs);
    try {
      return await this.phases(vhs, rec);
    } finally {
      await writeStatus(this.api, rec, this.opts.instance, this.opts.log);
    }
  }

  /** The resource is gone (without the finalizer, e.g. from an older operator): release what it held outside. */
  async cleanupDeleted(namespace: string, name: string): Promise<void> {
    await this.releaseExternal({ namespace, name });
  }

  /** Owned objects go with the garbage collector; the TokenReview binding and the ownership records do not. */
  private async releaseExternal(owner: { namespace: string; name: string; uid?: string }): Promise<void> {
    if (this.opts.clusterScoped !== false) await this.api.deleteClusterRoleBinding(names.tokenReviewBinding(owner.namespace, owner.name));
    await releaseDatabaseOwnership(this.api, this.caches, this.opts.ownershipNamespace, owner, this.opts.enqueue);
  }

  private async phases(vhs: ValidatorHASignerResource, rec: StatusRecorder): Promise<ReconcileResult> {
    const { api, caches, opts } = this;
    const build = { defaultImage: opts.defaultImage, operatorNamespace: opts.ownershipNamespace };
    rec.status.selector = labelSelectorString(selectorLabels(vhs));
    rec.status.endpoint = endpointUrl(vhs);
    // Refused before anything is created: the pods could not authenticate a single ServiceAccount client.
    const clusterScoped = opts.clusterScoped !== false;
    if (!clusterScoped && needsApiToken(vhs)) {
      rec.problem(
        'Ready',
        'ClusterScopeRequired',
        'spec.clients.serviceAccounts needs TokenReview, i.e. a ClusterRoleBinding to system:auth-delegator, which this operator (installed with ' +
          'namespace-scoped RBAC, --namespaced / rbac.namespaced) may not create: use spec.clients.tokens, or install the operator cluster-wide',
      );
    }

    const inputs = await readInputs(vhs, secretLookup(caches, api), rec);
    const migration = { vhs, api, caches, rec, build };
    const observed = await observeMigration(migration, inputs.connectionKey);
    const database = databaseIdentity(vhs, rec, inputs.databaseAddress, observed);
    const ownership = { vhs, api, caches, rec, ownershipNamespace: opts.ownershipNamespace, log: opts.log, enqueue: opts.enqueue };

    if (database) {
      if (!(await claimDatabaseOwnership(ownership, database.key, vhs.status?.databaseIdentity, database.label))) {
        // Another rollup's database: stop a migration still retrying against it.
        if (observed.phase.kind === 'running') await api.deleteObject('batch/v1', 'Job', vhs.metadata.namespace, observed.jobName);
        return { requeueAfterMs: 30_000 };
      }
    } else if (observed.phase.kind === 'failed') {
      rec.set(
        'DatabaseClaimed',
        'Unknown',
        'IdentityUnknown',
        `migration Job ${observed.jobName} failed before it could read the database's identity (see Migrated)`,
      );
    } else {
      rec.set(
        'DatabaseClaimed',
        'Unknown',
        'IdentityPending',
        `waiting for migration Job ${observed.jobName} to report the database's identity`,
      );
    }

    if (!(await applyMigrationPhase(migration, observed, inputs.connectionKey))) return {};
    if (!database) {
      // An image whose migrate does not report an identity: fall back to the URI's address (weaker, but not none).
      const key = addressKey(inputs.databaseAddress);
      rec.status.databaseIdentity = key;
      if (!(await claimDatabaseOwnership(ownership, key, vhs.status?.databaseIdentity, inputs.databaseAddress)))
        return { requeueAfterMs: 30_000 };
    }

    const workload = await applyWorkload(vhs, api, build, inputs.secrets, secretLookup(caches, api), { clusterScoped });
    const nodes = aztecNodesOf(vhs);
    if (nodes.length > 0)
      rec.status.aztecNodes = nodes.map((n) => ({ name: n.name, secretName: aztecNodeSecretName(vhs, n), env: aztecNodeEnv(vhs, n) }));
    else delete rec.status.aztecNodes;
    if (workload.serviceMonitorCrdMissing && !rec.hadReason('Available', 'ServiceMonitorCRDMissing')) {
      const note = 'spec.serviceMonitor.enabled is set but monitoring.coreos.com/v1 is not served: install the prometheus-operator CRDs';
      await recordEvent(api, vhs, opts.instance, opts.log, 'Warning', 'ServiceMonitorCRDMissing', 'Apply', note);
    }

    // Phase 5, service from the Deployment (its watch brings status changes back here) and, when not every pod
    // serves, from the pods themselves.
    const ns = vhs.metadata.namespace;
    const dep = workload.deployment ?? caches.deployments.get(ns, names.deployment(vhs));
    const pods = await api.listPods(ns, labelSelectorString(selectorLabels(vhs))).catch(() => []);
    const r = rec.reportDeployment(dep, rolloutState(dep).complete ? [] : pods);
    // Phase 6, failover safety as the signers report it (never fails the reconcile).
    const reports = await readSignerReports(pods, opts.readyz);
    const sync = synchronousReplicationCondition(reports);
    rec.set('SynchronousReplication', sync.status, sync.reason, sync.message);
    const history = historyIntactCondition(vhs, reports);
    rec.set('HistoryIntact', history.status, history.reason, history.message);
    if (r.complete) rec.set('Ready', 'True', 'Ready', `${r.message}; serving at ${endpointUrl(vhs)}`);
    else if (r.cause) rec.set('Ready', 'False', r.cause.reason, `${r.message}; ${r.cause.message}`);
    else rec.set('Ready', 'False', r.available ? 'RollingOut' : 'DeploymentUnavailable', r.message);
    // Pod failures (crash loops, pulls) do not move the Deployment's status: look again while the rollout is incomplete.
    if (!r.complete) return { requeueAfterMs: 10_000 };
    return { requeueAfterMs: SAFETY_REFRESH_MS };
  }
}

/**
 * The database's identity: reported by the migration Job, or remembered in status for the same address. Recorded
 * in status (no credentials); undefined while unknown.
 */
function databaseIdentity(
  vhs: ValidatorHASignerResource,
  rec: StatusRecorder,
  address: string,
  observed: MigrationObservation,
): { key: string; label: string } | undefined {
  const id = observed.identity;
  if (id) {
    rec.status.databaseIdentity = identityKey(id);
    rec.status.database = { address, name: id.database, oid: id.oid, systemIdentifier: id.systemIdentifier };
    return { key: identityKey(id), label: describeIdentity(id) };
  }
  const before = vhs.status;
  if (before?.database?.address === address && before.databaseIdentity && before.database.systemIdentifier) {
    const remembered = {
      systemIdentifier: before.database.systemIdentifier,
      database: before.database.name ?? '',
      oid: before.database.oid ?? '',
    };
    return { key: before.databaseIdentity, label: describeIdentity(remembered) };
  }
  // Another address than the one identified before (or never identified): not known until the Job reports.
  rec.status.database = { address };
  delete rec.status.databaseIdentity;
  return undefined;
}

/**
 * One reconcile of one ValidatorHASigner, phase by phase (as CloudNativePG splits cluster_*.go): inputs, database
 * ownership, migration, workload, status. Each phase lives in its own module and uses a small slice of the API.
 */
import { addressKey, describeIdentity, endpointUrl, identityKey, labelSelectorString, names, selectorLabels } from '../desired/index.js';
import type { ValidatorHASignerResource } from '../types.js';
import type { Log, ReconcileApi, ReconcilerCaches } from './api.js';
import { readInputs, secretLookup } from './inputs.js';
import { applyMigrationPhase, observeMigration, type MigrationObservation } from './migration.js';
import { claimDatabaseOwnership, releaseDatabaseOwnership } from './ownership.js';
import { recordEvent, StatusRecorder, writeStatus } from './status.js';
import { applyWorkload } from './workload.js';

export type { ReconcilerCaches } from './api.js';
export { migrationPhase, schemaVersionFromMessage } from './migration.js';
export { ReconcileProblem, WARNING_REASONS } from './status.js';

export interface ReconcilerOptions {
  /** Namespace of the database ownership records (the operator's). */
  ownershipNamespace: string;
  defaultImage: string;
  /** Reported as the Events' reportingInstance. */
  instance: string;
  log: Log;
  /** Ask for another resource to be reconciled (the loser after an ownership takeover). */
  enqueue: (key: string) => void;
}

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
    if (vhs.metadata.deletionTimestamp) return {};
    const rec = new StatusRecorder(vhs);
    try {
      return await this.phases(vhs, rec);
    } finally {
      await writeStatus(this.api, rec, this.opts.instance, this.opts.log);
    }
  }

  /** The resource is gone: its owned objects go with the garbage collector; release what it held outside. */
  async cleanupDeleted(namespace: string, name: string): Promise<void> {
    await this.api.deleteClusterRoleBinding(names.tokenReviewBinding(namespace, name));
    await releaseDatabaseOwnership(this.api, this.caches, this.opts.ownershipNamespace, { namespace, name }, this.opts.enqueue);
  }

  private async phases(vhs: ValidatorHASignerResource, rec: StatusRecorder): Promise<ReconcileResult> {
    const { api, caches, opts } = this;
    const build = { defaultImage: opts.defaultImage };
    rec.status.selector = labelSelectorString(selectorLabels(vhs));
    rec.status.endpoint = endpointUrl(vhs);

    const inputs = await readInputs(vhs, secretLookup(caches, api), rec);
    const migration = { vhs, api, caches, rec, build };
    const observed = await observeMigration(migration, inputs.databaseAddress);
    const database = databaseIdentity(vhs, rec, inputs.databaseAddress, observed);

    if (database) {
      const ownership = { vhs, api, caches, rec, ownershipNamespace: opts.ownershipNamespace, log: opts.log, enqueue: opts.enqueue };
      if (!(await claimDatabaseOwnership(ownership, database.key, vhs.status?.databaseIdentity, database.label))) {
        // Another rollup's database: stop a migration still retrying against it.
        if (observed.phase.kind === 'running') await api.deleteObject('batch/v1', 'Job', vhs.metadata.namespace, observed.jobName);
        return { requeueAfterMs: 30_000 };
      }
    } else if (observed.phase.kind === 'failed') {
      rec.set('DatabaseClaimed', 'Unknown', 'IdentityUnknown', `migration Job ${observed.jobName} failed before it could read the database's identity (see Migrated)`);
    } else {
      rec.set('DatabaseClaimed', 'Unknown', 'IdentityPending', `waiting for migration Job ${observed.jobName} to report the database's identity`);
    }

    if (!(await applyMigrationPhase(migration, observed, inputs.databaseAddress))) return {};
    if (!database) {
      // An image whose migrate does not report an identity: fall back to the URI's address (weaker, but not none).
      const key = addressKey(inputs.databaseAddress);
      rec.status.databaseIdentity = key;
      const ownership = { vhs, api, caches, rec, ownershipNamespace: opts.ownershipNamespace, log: opts.log, enqueue: opts.enqueue };
      if (!(await claimDatabaseOwnership(ownership, key, vhs.status?.databaseIdentity, inputs.databaseAddress))) return { requeueAfterMs: 30_000 };
    }

    const workload = await applyWorkload(vhs, api, build, inputs.secrets);
    if (workload.serviceMonitorCrdMissing && !rec.hadReason('Available', 'ServiceMonitorCRDMissing')) {
      const note = 'spec.serviceMonitor.enabled is set but monitoring.coreos.com/v1 is not served: install the prometheus-operator CRDs';
      await recordEvent(api, vhs, opts.instance, opts.log, 'Warning', 'ServiceMonitorCRDMissing', 'Apply', note);
    }

    // Phase 5, availability from the Deployment (the Deployment watch brings its status changes back here).
    const dep = workload.deployment ?? caches.deployments.get(vhs.metadata.namespace, names.deployment(vhs));
    const av = rec.reportDeployment(dep);
    if (av.available) rec.set('Ready', 'True', 'Ready', `${av.message}; serving at ${endpointUrl(vhs)}`);
    else rec.set('Ready', 'False', 'DeploymentUnavailable', av.message);
    return {};
  }
}

/**
 * The database's identity: reported by the migration Job, or remembered in status for the same address. Recorded
 * in status (no credentials); undefined while unknown.
 */
function databaseIdentity(vhs: ValidatorHASignerResource, rec: StatusRecorder, address: string, observed: MigrationObservation): { key: string; label: string } | undefined {
  const id = observed.identity;
  if (id) {
    rec.status.databaseIdentity = identityKey(id);
    rec.status.database = { address, name: id.database, oid: id.oid, systemIdentifier: id.systemIdentifier };
    return { key: identityKey(id), label: describeIdentity(id) };
  }
  const before = vhs.status;
  if (before?.database?.address === address && before.databaseIdentity && before.database.systemIdentifier) {
    const remembered = { systemIdentifier: before.database.systemIdentifier, database: before.database.name ?? '', oid: before.database.oid ?? '' };
    return { key: before.databaseIdentity, label: describeIdentity(remembered) };
  }
  // Another address than the one identified before (or never identified): not known until the Job reports.
  rec.status.database = { address };
  delete rec.status.databaseIdentity;
  return undefined;
}

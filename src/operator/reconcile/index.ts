/**
 * One reconcile of one ValidatorHASigner, phase by phase (as CloudNativePG splits cluster_*.go): inputs, database
 * ownership, migration, workload, status. Each phase lives in its own module and uses a small slice of the API.
 */
import { endpointUrl, labelSelectorString, names, selectorLabels } from '../desired/index.js';
import type { ValidatorHASignerResource } from '../types.js';
import type { Log, ReconcileApi, ReconcilerCaches } from './api.js';
import { readInputs, secretLookup } from './inputs.js';
import { runMigrationPhase } from './migration.js';
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
    const identity = inputs.databaseAddress;
    const previousIdentity = vhs.status?.databaseIdentity;
    rec.status.databaseIdentity = identity;

    const ownershipCtx = { vhs, api, caches, rec, ownershipNamespace: opts.ownershipNamespace, log: opts.log, enqueue: opts.enqueue };
    if (!(await claimDatabaseOwnership(ownershipCtx, identity, previousIdentity))) return { requeueAfterMs: 30_000 };

    if (!(await runMigrationPhase({ vhs, api, caches, rec, build }, inputs.databaseAddress))) return {};

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

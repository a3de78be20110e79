/**
 * One reconcile of one ValidatorHASigner: validate what the schema cannot, claim the database, run the migration
 * Job, apply the workload, write status and Events. Knows nothing of SQL: the schema is migrated by the Job.
 */
import { readdirSync } from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import {
  buildClaim,
  buildMigrationJob,
  buildTokenReviewBinding,
  conflictMessage,
  DatabaseUriError,
  decideClaim,
  deploymentAvailable,
  desiredWorkload,
  endpointUrl,
  getCondition,
  holderOf,
  imageOf,
  jobOutcome,
  labelSelectorString,
  migrationJobName,
  names,
  needsApiToken,
  networkPolicyEnabled,
  parseDatabaseIdentity,
  readClaim,
  referencedSecrets,
  secretsChecksum,
  secretValue,
  selectorLabels,
  SERVICE_MONITOR_GROUP_VERSION,
  serviceMonitorRequested,
  setCondition,
  clientsConfigMapNeeded,
  transitions,
  type ConditionInput,
} from './desired/index.js';
import { describeError, type Kube } from './kube.js';
import type { ConditionType, ValidatorHASigner, ValidatorHASignerStatus } from './types.js';

export interface ReconcilerCaches {
  vhs: { get(namespace: string, name: string): ValidatorHASigner | undefined; list(): ValidatorHASigner[] };
  jobs: { get(namespace: string, name: string): k8s.V1Job | undefined };
  deployments: { get(namespace: string, name: string): k8s.V1Deployment | undefined };
  secrets: { get(namespace: string, name: string): k8s.V1Secret | undefined };
}

export interface ReconcilerOptions {
  claimsNamespace: string;
  defaultImage: string;
  /** Reported as the Events' reportingInstance. */
  instance: string;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Ask for another resource to be reconciled (the loser after a claim takeover). */
  enqueue: (key: string) => void;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** A problem the user must fix: recorded in status, retried with backoff. */
export class ReconcileProblem extends Error {}

/** Condition reasons that need the user's attention (Warning Events). */
export const WARNING_REASONS = new Set(['SecretNotFound', 'SecretKeyNotFound', 'SecretEmpty', 'InvalidDatabaseURI', 'DatabaseInUse', 'MigrationFailed']);

const ORDER: ConditionType[] = ['DatabaseClaimed', 'Migrated', 'Available', 'Ready'];

/** ha-signer's schema version as its own package ships it (the number of migrations, as `migrate up` reports it); used when the Job does not report one. */
let bundledSchemaVersion: string | undefined | null = null;
function bundled(): string | undefined {
  if (bundledSchemaVersion === null) {
    try {
      const files = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) => /\.(sql|js|ts)$/.test(f)).sort();
      bundledSchemaVersion = files.length > 0 ? String(files.length) : undefined;
    } catch {
      bundledSchemaVersion = undefined;
    }
  }
  return bundledSchemaVersion ?? undefined;
}

/** Schema version from the migrate Job's success message (`{"schemaVersion": ...}` or `schemaVersion=...`). */
export function schemaVersionFromMessage(message: string | undefined): string | undefined {
  if (!message) return undefined;
  for (const line of message.trim().split('\n').reverse()) {
    try {
      const j = JSON.parse(line) as { schemaVersion?: unknown; applied?: unknown };
      if (typeof j.schemaVersion === 'string') return j.schemaVersion;
    } catch {
      const m = /schemaVersion[=:]\s*"?([\w.-]+)/.exec(line);
      if (m) return m[1];
    }
  }
  return undefined;
}

export class Reconciler {
  constructor(
    private readonly kube: Kube,
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
    return await new Run(this.kube, this.caches, this.opts, vhs).run();
  }

  /** The resource is gone: its owned objects go with the garbage collector; release what it held outside. */
  async cleanupDeleted(namespace: string, name: string): Promise<void> {
    await this.kube.deleteClusterRoleBinding(names.tokenReviewBinding(namespace, name));
    // Claims held by the resource become stale; the next claimant checks the holder still exists and takes over.
    // Deleting them here (with the uid precondition) just makes that immediate.
    const claims = await this.kube.listConfigMaps(this.opts.claimsNamespace, 'ha-signer.dev/claim=database');
    for (const cm of claims) {
      const c = readClaim(cm);
      if (c && c.holder.namespace === namespace && c.holder.name === name && !this.caches.vhs.get(namespace, name)) {
        await this.kube.deleteConfigMapIf(this.opts.claimsNamespace, cm.metadata!.name!, cm.metadata!.uid!, cm.metadata!.resourceVersion);
        for (const other of this.caches.vhs.list()) if (other.status?.databaseIdentity === c.databaseIdentity) this.opts.enqueue(`${other.metadata.namespace}/${other.metadata.name}`);
      }
    }
  }
}

class Run {
  private conditions;
  private readonly before;
  private readonly status: ValidatorHASignerStatus;
  private readonly generation: number;
  private readonly now = new Date();

  constructor(
    private readonly kube: Kube,
    private readonly caches: ReconcilerCaches,
    private readonly opts: ReconcilerOptions,
    private readonly vhs: ValidatorHASigner,
  ) {
    this.before = vhs.status?.conditions;
    this.conditions = [...(vhs.status?.conditions ?? [])];
    this.generation = vhs.metadata.generation ?? 0;
    this.status = { ...(vhs.status ?? {}) };
  }

  private set(type: ConditionType, status: 'True' | 'False' | 'Unknown', reason: string, message: string): void {
    const input: ConditionInput = { type, status, reason, message };
    this.conditions = setCondition(this.conditions, input, this.generation, this.now);
  }

  /** Sets `type` False and every later condition False/Unknown with the same reason, and Ready False. */
  private block(type: ConditionType, reason: string, message: string, later: 'False' | 'Unknown' = 'False'): void {
    this.set(type, 'False', reason, message);
    for (const t of ORDER.slice(ORDER.indexOf(type) + 1)) {
      if (t === 'Ready') this.set('Ready', 'False', reason, message);
      else this.set(t, later, reason, `waiting: ${message}`);
    }
  }

  async run(): Promise<ReconcileResult> {
    try {
      return await this.steps();
    } finally {
      await this.writeStatus();
    }
  }

  private async steps(): Promise<ReconcileResult> {
    const vhs = this.vhs;
    const ns = vhs.metadata.namespace;
    this.status.selector = labelSelectorString(selectorLabels(vhs));
    this.status.endpoint = endpointUrl(vhs);

    // 1. What the schema cannot check: the Secrets exist and hold a parseable URI.
    const secrets = new Map<string, k8s.V1Secret | undefined>();
    for (const use of referencedSecrets(vhs)) {
      if (!secrets.has(use.name)) secrets.set(use.name, await this.secret(ns, use.name));
    }
    const dbRef = vhs.spec.database.secretRef;
    const dbKey = dbRef.key ?? 'uri';
    const dbSecret = secrets.get(dbRef.name);
    if (!dbSecret) return this.problem('DatabaseClaimed', 'SecretNotFound', `Secret ${ns}/${dbRef.name} (spec.database.secretRef) not found: create it with key ${dbKey} holding postgresql://user:password@host:5432/dbname`);
    const uri = secretValue(dbSecret, dbKey);
    if (uri === undefined || uri.trim() === '') {
      const keys = Object.keys(dbSecret.data ?? {}).sort().join(', ') || 'none';
      return this.problem('DatabaseClaimed', 'SecretKeyNotFound', `Secret ${ns}/${dbRef.name} has no key ${dbKey} (spec.database.secretRef.key); its keys: ${keys}`);
    }
    let identity: string;
    try {
      identity = parseDatabaseIdentity(uri).identity;
    } catch (err) {
      if (!(err instanceof DatabaseUriError)) throw err;
      return this.problem('DatabaseClaimed', 'InvalidDatabaseURI', `Secret ${ns}/${dbRef.name} key ${dbKey}: ${err.message}`);
    }
    this.status.databaseIdentity = identity;
    for (const use of referencedSecrets(vhs).slice(1)) {
      const s = secrets.get(use.name);
      if (!s) return this.problem('Available', 'SecretNotFound', `Secret ${ns}/${use.name} (${use.field}) not found`);
      for (const k of use.keys ?? []) {
        if (secretValue(s, k) === undefined) return this.problem('Available', 'SecretKeyNotFound', `Secret ${ns}/${use.name} (${use.field}) has no key ${k}`);
      }
      if (!use.keys && Object.keys(s.data ?? {}).length === 0) return this.problem('Available', 'SecretEmpty', `Secret ${ns}/${use.name} (${use.field}) holds no keys`);
    }

    // 2. One database per rollup version.
    const claimed = await this.claim(identity, vhs.status?.databaseIdentity);
    if (!claimed) return { requeueAfterMs: 30_000 };

    // 3. Migration Job.
    const ctx = { defaultImage: this.opts.defaultImage };
    const jobName = migrationJobName(vhs, ctx, identity);
    const job = this.caches.jobs.get(ns, jobName) ?? (await this.kube.readJob(ns, jobName));
    const migratedBefore = vhs.status?.migrationJob === jobName && getCondition(vhs.status?.conditions, 'Migrated')?.status === 'True';
    this.status.migrationJob = jobName;
    if (!job && !migratedBefore) {
      await this.kube.apply(buildMigrationJob(vhs, ctx, identity));
      this.block('Migrated', 'Migrating', `migration Job ${jobName} created: ha-signer migrate up with ${imageOf(vhs, ctx.defaultImage)}`, 'Unknown');
      this.keepAvailableIfRunning();
      return {};
    }
    if (job) {
      const outcome = jobOutcome(job, undefined);
      if (outcome.state === 'running') {
        this.block('Migrated', 'Migrating', `migration Job ${jobName} is running ha-signer migrate up`, 'Unknown');
        this.keepAvailableIfRunning();
        return {};
      }
      if (outcome.state === 'failed') {
        const podMessage = await this.kube.failedJobPodMessage(ns, jobName).catch(() => undefined);
        const failed = jobOutcome(job, podMessage);
        this.block('Migrated', 'MigrationFailed', `migration Job ${jobName} failed (${failed.state === 'failed' ? failed.message : ''}); signer pods are not rolled out on an unmigrated schema. Fix the cause, then delete the Job to retry`);
        this.keepAvailableIfRunning();
        return {};
      }
      if (!migratedBefore || !this.status.schemaVersion) {
        const msg = await this.kube.succeededJobPodMessage(ns, jobName).catch(() => undefined);
        const v = schemaVersionFromMessage(msg) ?? (imageOf(vhs, ctx.defaultImage) === this.opts.defaultImage ? bundled() : undefined);
        if (v) this.status.schemaVersion = v;
      }
    }
    this.set('Migrated', 'True', 'Migrated', `schema migrated by Job ${jobName}${this.status.schemaVersion ? ` (schema ${this.status.schemaVersion})` : ''}; database bound to rollup ${vhs.spec.rollup.address.toLowerCase()}`);

    // 4. Workload, by server-side apply.
    const serviceMonitorCrd = serviceMonitorRequested(vhs) ? await this.kube.servesGroupVersion(SERVICE_MONITOR_GROUP_VERSION).catch(() => false) : false;
    const objects = desiredWorkload(vhs, ctx, { secretsChecksum: secretsChecksum(vhs, secrets), serviceMonitorCrd });
    let applied: k8s.V1Deployment | undefined;
    for (const obj of objects) {
      const result = await this.kube.apply(obj);
      if (obj.kind === 'Deployment') applied = result as k8s.V1Deployment;
    }
    if (needsApiToken(vhs)) await this.kube.apply(buildTokenReviewBinding(vhs));
    else await this.kube.deleteClusterRoleBinding(names.tokenReviewBinding(ns, vhs.metadata.name));
    if (!networkPolicyEnabled(vhs)) await this.kube.deleteObject('networking.k8s.io/v1', 'NetworkPolicy', ns, names.networkPolicy(vhs));
    if (!clientsConfigMapNeeded(vhs)) await this.kube.deleteObject('v1', 'ConfigMap', ns, names.clientsConfigMap(vhs));
    if (!serviceMonitorRequested(vhs) && (await this.kube.servesGroupVersion(SERVICE_MONITOR_GROUP_VERSION).catch(() => false))) {
      await this.kube.deleteObject(SERVICE_MONITOR_GROUP_VERSION, 'ServiceMonitor', ns, names.serviceMonitor(vhs));
    }
    if (serviceMonitorRequested(vhs) && !serviceMonitorCrd && !this.hadReason('Available', 'ServiceMonitorCRDMissing')) {
      await this.event('Warning', 'ServiceMonitorCRDMissing', 'Apply', 'spec.serviceMonitor.enabled is set but monitoring.coreos.com/v1 is not served: install the prometheus-operator CRDs');
    }

    // 5. Availability from the Deployment (the watch brings its status changes back here).
    const av = deploymentAvailable(applied ?? this.caches.deployments.get(ns, names.deployment(vhs)));
    this.status.replicas = av.replicas;
    this.status.readyReplicas = av.ready;
    if (av.available) {
      this.set('Available', 'True', 'DeploymentAvailable', av.message);
      this.set('Ready', 'True', 'Ready', `${av.message}; serving at ${endpointUrl(vhs)}`);
    } else {
      this.set('Available', 'False', 'DeploymentUnavailable', av.message);
      this.set('Ready', 'False', 'DeploymentUnavailable', av.message);
    }
    return {};
  }

  private hadReason(type: ConditionType, reason: string): boolean {
    return getCondition(this.before, type)?.reason === reason;
  }

  /** While migrating or blocked, report the existing Deployment's (old) pods honestly. */
  private keepAvailableIfRunning(): void {
    const dep = this.caches.deployments.get(this.vhs.metadata.namespace, names.deployment(this.vhs));
    if (!dep) return;
    const av = deploymentAvailable(dep);
    this.status.replicas = av.replicas;
    this.status.readyReplicas = av.ready;
    this.set('Available', av.available ? 'True' : 'False', av.available ? 'DeploymentAvailable' : 'DeploymentUnavailable', `${av.message} (previous rollout)`);
  }

  private async secret(namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
    // The cache may lag behind a Secret created just before the resource: confirm a miss with a read.
    return this.caches.secrets.get(namespace, name) ?? (await this.kube.readSecret(namespace, name));
  }

  private problem(type: ConditionType, reason: string, message: string): never {
    this.block(type, reason, message);
    throw new ReconcileProblem(message);
  }

  /** True when this resource may use the database. */
  private async claim(identity: string, previousIdentity: string | undefined): Promise<boolean> {
    const vhs = this.vhs;
    const me = holderOf(vhs);
    const claimsNs = this.opts.claimsNamespace;
    if (previousIdentity && previousIdentity !== identity) {
      const old = await this.kube.readConfigMap(claimsNs, names.claim(previousIdentity));
      if (old && readClaim(old)?.holder.uid === me.uid) await this.kube.deleteConfigMapIf(claimsNs, old.metadata!.name!, old.metadata!.uid!, old.metadata!.resourceVersion);
    }
    const desired = buildClaim(vhs, identity, claimsNs);
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.kube.createConfigMapIfAbsent(desired)) {
        this.set('DatabaseClaimed', 'True', 'Claimed', `database ${identity} claimed for rollup ${me.rollupAddress} version ${me.rollupVersion}`);
        return true;
      }
      const cm = await this.kube.readConfigMap(claimsNs, desired.metadata!.name!);
      if (!cm) continue; // deleted in between: try to create again
      const existing = readClaim(cm);
      const holderExists = existing ? this.holderExists(existing.holder.namespace, existing.holder.name, existing.holder.uid) : false;
      const decision = existing ? decideClaim(me, existing.holder, await holderExists) : ({ kind: 'takeover', why: 'stale' } as const);
      switch (decision.kind) {
        case 'mine':
          this.set('DatabaseClaimed', 'True', 'Claimed', `database ${identity} claimed for rollup ${me.rollupAddress} version ${me.rollupVersion}`);
          return true;
        case 'shared':
          this.set('DatabaseClaimed', 'True', 'SharedWithSameRollup', `database ${identity} shared with ValidatorHASigner ${decision.holder.namespace}/${decision.holder.name} (same rollup)`);
          return true;
        case 'takeover':
          if (await this.kube.replaceConfigMapAt(desired, cm.metadata!.resourceVersion!)) {
            if ('holder' in decision && decision.holder) {
              this.opts.log('database claim taken over', { resource: `${vhs.metadata.namespace}/${vhs.metadata.name}`, from: `${decision.holder.namespace}/${decision.holder.name}`, why: decision.why });
              this.opts.enqueue(`${decision.holder.namespace}/${decision.holder.name}`);
              for (const other of this.caches.vhs.list()) if (other.status?.databaseIdentity === identity && other.metadata.uid !== me.uid) this.opts.enqueue(`${other.metadata.namespace}/${other.metadata.name}`);
            }
            this.set('DatabaseClaimed', 'True', 'Claimed', `database ${identity} claimed for rollup ${me.rollupAddress} version ${me.rollupVersion}`);
            return true;
          }
          continue; // lost a race: look again
        case 'conflict': {
          const message = conflictMessage(identity, decision.holder);
          this.block('DatabaseClaimed', 'DatabaseInUse', message);
          // Nothing may run against a database bound to another rollup: remove a workload from an earlier claim.
          if (this.caches.deployments.get(vhs.metadata.namespace, names.deployment(vhs)) || (await this.kube.readDeployment(vhs.metadata.namespace, names.deployment(vhs)))) {
            await this.kube.deleteObject('apps/v1', 'Deployment', vhs.metadata.namespace, names.deployment(vhs));
          }
          this.status.replicas = 0;
          this.status.readyReplicas = 0;
          return false;
        }
      }
    }
    throw new Error(`database claim for ${identity}: too many concurrent changes, retrying`);
  }

  private async holderExists(namespace: string, name: string, uid: string): Promise<boolean> {
    const cached = this.caches.vhs.get(namespace, name);
    if (cached) return cached.metadata.uid === uid;
    // Not in this operator's cache (another namespace than the watched one, or very new): ask the API server.
    const live = await this.kube.readValidatorHASigner(namespace, name).catch(() => undefined);
    return live?.metadata.uid === uid;
  }

  private async event(type: 'Normal' | 'Warning', reason: string, action: string, note: string): Promise<void> {
    await this.kube.createEvent(this.vhs, type, reason, action, note, this.opts.instance).catch((e) => this.opts.log('event not recorded', { error: describeError(e) }));
  }

  private async writeStatus(): Promise<void> {
    const next: ValidatorHASignerStatus = { ...this.status, observedGeneration: this.generation, conditions: this.conditions };
    const changed = JSON.stringify(normalize(next)) !== JSON.stringify(normalize(this.vhs.status ?? {}));
    if (changed) await this.kube.patchStatus(this.vhs, next);
    const seen = new Set<string>();
    for (const c of transitions(this.before, this.conditions)) {
      if (seen.has(`${c.status}/${c.reason}`)) continue;
      seen.add(`${c.status}/${c.reason}`);
      await this.event(WARNING_REASONS.has(c.reason) ? 'Warning' : 'Normal', c.reason, c.type, `${c.type}=${c.status}: ${c.message}`);
    }
  }
}

function normalize(s: ValidatorHASignerStatus): unknown {
  const keys = Object.keys(s).sort() as (keyof ValidatorHASignerStatus)[];
  return keys.filter((k) => s[k] !== undefined).map((k) => [k, k === 'conditions' ? [...(s.conditions ?? [])].sort((a, b) => a.type.localeCompare(b.type)).map((c) => ({ ...c, lastTransitionTime: String(c.lastTransitionTime) })) : s[k]]);
}

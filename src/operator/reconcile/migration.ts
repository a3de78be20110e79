/**
 * Phase 3, migration: a Job runs `ha-signer migrate up --rollup-address …` (the operator knows nothing of SQL).
 * `migrationPhase` decides from the Job and the last status alone; `runMigrationPhase` acts on it.
 */
import { readdirSync } from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import { buildMigrationJob, getCondition, imageOf, jobOutcome, migrationJobName, names } from '../desired/index.js';
import type { BuildContext, ValidatorHASignerResource, ValidatorHASignerStatus } from '../types.js';
import type { MigrationApi, ReconcilerCaches } from './api.js';
import type { StatusRecorder } from './status.js';

export type MigrationPhase =
  /** No Job and not migrated by this Job before: create it. */
  | { kind: 'create' }
  | { kind: 'running' }
  | { kind: 'failed' }
  /** Migrated: the Job succeeded (and may have been cleaned up by its TTL since). */
  | { kind: 'done'; needsSchemaVersion: boolean };

/** Pure: what to do about the migration Job `jobName` given the Job (if it exists) and the resource's last status. */
export function migrationPhase(job: k8s.V1Job | undefined, jobName: string, status: ValidatorHASignerStatus | undefined): MigrationPhase {
  const migratedBefore = status?.migrationJob === jobName && getCondition(status?.conditions, 'Migrated')?.status === 'True';
  if (!job) return migratedBefore ? { kind: 'done', needsSchemaVersion: false } : { kind: 'create' };
  const outcome = jobOutcome(job).state;
  if (outcome === 'running') return { kind: 'running' };
  if (outcome === 'failed') return { kind: 'failed' };
  return { kind: 'done', needsSchemaVersion: !migratedBefore || !status?.schemaVersion };
}

export interface MigrationContext {
  vhs: ValidatorHASignerResource;
  api: MigrationApi;
  caches: Pick<ReconcilerCaches, 'jobs' | 'deployments'>;
  rec: StatusRecorder;
  build: BuildContext;
}

/** True once the schema is migrated; otherwise the conditions say why not (and an existing rollout is reported). */
export async function runMigrationPhase(ctx: MigrationContext, databaseAddress: string): Promise<boolean> {
  const { vhs, api, rec, build } = ctx;
  const ns = vhs.metadata.namespace;
  const jobName = migrationJobName(vhs, build, databaseAddress);
  const job = ctx.caches.jobs.get(ns, jobName) ?? (await api.readJob(ns, jobName));
  const phase = migrationPhase(job, jobName, vhs.status);
  rec.status.migrationJob = jobName;
  const previousRollout = () => rec.reportDeployment(ctx.caches.deployments.get(ns, names.deployment(vhs)), ' (previous rollout)');
  switch (phase.kind) {
    case 'create':
      await api.apply(buildMigrationJob(vhs, build, databaseAddress));
      rec.block('Migrated', 'Migrating', `migration Job ${jobName} created: ha-signer migrate up with ${imageOf(vhs, build.defaultImage)}`, 'Unknown');
      if (ctx.caches.deployments.get(ns, names.deployment(vhs))) previousRollout();
      return false;
    case 'running':
      rec.block('Migrated', 'Migrating', `migration Job ${jobName} is running ha-signer migrate up`, 'Unknown');
      if (ctx.caches.deployments.get(ns, names.deployment(vhs))) previousRollout();
      return false;
    case 'failed': {
      const podMessage = await api.failedJobPodMessage(ns, jobName).catch(() => undefined);
      const failed = jobOutcome(job!, podMessage);
      const detail = failed.state === 'failed' ? failed.message : '';
      rec.block('Migrated', 'MigrationFailed', `migration Job ${jobName} failed (${detail}); signer pods are not rolled out on an unmigrated schema. Fix the cause, then delete the Job to retry`);
      if (ctx.caches.deployments.get(ns, names.deployment(vhs))) previousRollout();
      return false;
    }
    case 'done':
      if (phase.needsSchemaVersion) {
        const msg = await api.succeededJobPodMessage(ns, jobName).catch(() => undefined);
        const v = schemaVersionFromMessage(msg) ?? (imageOf(vhs, build.defaultImage) === build.defaultImage ? bundledSchemaVersion() : undefined);
        if (v) rec.status.schemaVersion = v;
      }
      rec.set('Migrated', 'True', 'Migrated', `schema migrated by Job ${jobName}${rec.status.schemaVersion ? ` (schema ${rec.status.schemaVersion})` : ''}; database bound to rollup ${vhs.spec.rollup.address.toLowerCase()}`);
      return true;
  }
}

/** Schema version from the migrate Job's termination message (`{"schemaVersion": ...}` or `schemaVersion=...`). */
export function schemaVersionFromMessage(message: string | undefined): string | undefined {
  if (!message) return undefined;
  for (const line of message.trim().split('\n').reverse()) {
    try {
      const j = JSON.parse(line) as { schemaVersion?: unknown };
      if (typeof j.schemaVersion === 'string') return j.schemaVersion;
    } catch {
      const m = /schemaVersion[=:]\s*"?([\w.-]+)/.exec(line);
      if (m) return m[1];
    }
  }
  return undefined;
}

let bundled: string | undefined | null = null;
/** The schema version this package ships (its number of migrations); used when the Job reported none. */
function bundledSchemaVersion(): string | undefined {
  if (bundled === null) {
    try {
      const files = readdirSync(new URL('../../../migrations/', import.meta.url)).filter((f) => /\.(sql|js|ts)$/.test(f));
      bundled = files.length > 0 ? String(files.length) : undefined;
    } catch {
      bundled = undefined;
    }
  }
  return bundled ?? undefined;
}

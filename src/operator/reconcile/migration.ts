/**
 * Phase 3, migration: a Job runs `ha-signer migrate up --rollup-address …` (the operator knows nothing of SQL) and
 * reports, in its pods' termination messages, the schema version and the database's identity as the server knows
 * it (also when migrating fails). `migrationPhase` decides from the Job and the last status alone.
 */
import { readdirSync } from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import {
  buildMigrationJob,
  getCondition,
  imageOf,
  jobOutcome,
  migrationJobName,
  names,
  parseMigrateReport,
  type MigrateReport,
  type ReportedDatabaseIdentity,
} from '../desired/index.js';
import type { BuildContext, ValidatorHASignerResource, ValidatorHASignerStatus } from '../types.js';
import type { MigrationApi, ReconcilerCaches } from './api.js';
import type { StatusRecorder } from './status.js';

export type MigrationPhase =
  /** No Job and not migrated by this Job before: create it. */
  | { kind: 'create' }
  | { kind: 'running' }
  | { kind: 'failed' }
  /** Migrated: the Job succeeded (and may have been cleaned up by its TTL since). `needsReport`: read its pods. */
  | { kind: 'done'; needsReport: boolean };

/** Pure: what to do about the migration Job `jobName` given the Job (if it exists) and the resource's last status. */
export function migrationPhase(job: k8s.V1Job | undefined, jobName: string, status: ValidatorHASignerStatus | undefined): MigrationPhase {
  const migratedBefore = status?.migrationJob === jobName && getCondition(status?.conditions, 'Migrated')?.status === 'True';
  if (!job) return migratedBefore ? { kind: 'done', needsReport: false } : { kind: 'create' };
  const outcome = jobOutcome(job).state;
  if (outcome === 'running') return { kind: 'running' };
  if (outcome === 'failed') return { kind: 'failed' };
  return { kind: 'done', needsReport: !migratedBefore || !status?.schemaVersion || !status.databaseIdentity };
}

export interface MigrationContext {
  vhs: ValidatorHASignerResource;
  api: MigrationApi;
  caches: Pick<ReconcilerCaches, 'jobs' | 'deployments'>;
  rec: StatusRecorder;
  build: BuildContext;
}

export interface MigrationObservation {
  jobName: string;
  job: k8s.V1Job | undefined;
  phase: MigrationPhase;
  /** Terminated migrate containers, newest first, with what they reported. */
  reports: { exitCode: number; message: string; report?: MigrateReport }[];
  /** The database's identity, from the newest report that has one. */
  identity?: ReportedDatabaseIdentity;
}

export async function observeMigration(ctx: MigrationContext, connectionKey: string): Promise<MigrationObservation> {
  const { vhs, api, build } = ctx;
  const ns = vhs.metadata.namespace;
  const jobName = migrationJobName(vhs, build, connectionKey);
  const job = ctx.caches.jobs.get(ns, jobName) ?? (await api.readJob(ns, jobName));
  const phase = migrationPhase(job, jobName, vhs.status);
  const read = job && (phase.kind !== 'done' || phase.needsReport);
  const terminations = read ? await api.jobPodTerminations(ns, jobName).catch(() => []) : [];
  const reports = terminations.map((t) => {
    const report = parseMigrateReport(t.message);
    return { ...t, ...(report ? { report } : {}) };
  });
  const identity = reports.find((r) => r.report?.databaseIdentity)?.report?.databaseIdentity;
  return { jobName, job, phase, reports, ...(identity ? { identity } : {}) };
}

/** Acts on the observed phase. True once the schema is migrated; otherwise the conditions say why not. */
export async function applyMigrationPhase(ctx: MigrationContext, obs: MigrationObservation, connectionKey: string): Promise<boolean> {
  const { vhs, api, rec, build } = ctx;
  const ns = vhs.metadata.namespace;
  const { jobName, phase } = obs;
  rec.status.migrationJob = jobName;
  // While migrating or blocked, an existing Deployment's (previous) pods keep being reported honestly.
  const previousRollout = () => {
    const dep = ctx.caches.deployments.get(ns, names.deployment(vhs));
    if (dep) rec.reportDeployment(dep, [], ' (previous rollout)');
  };
  switch (phase.kind) {
    case 'create':
      await api.apply(buildMigrationJob(vhs, build, connectionKey));
      rec.block(
        'Migrated',
        'Migrating',
        `migration Job ${jobName} created: ha-signer migrate up with ${imageOf(vhs, build.defaultImage)}`,
        'Unknown',
      );
      previousRollout();
      return false;
    case 'running':
      rec.block('Migrated', 'Migrating', `migration Job ${jobName} is running ha-signer migrate up`, 'Unknown');
      previousRollout();
      return false;
    case 'failed': {
      const last = obs.reports.find((r) => r.exitCode !== 0);
      const failed = jobOutcome(obs.job!, last ? (last.report?.error ?? last.message) : undefined);
      const detail = failed.state === 'failed' ? failed.message : '';
      rec.block(
        'Migrated',
        'MigrationFailed',
        `migration Job ${jobName} failed (${detail}); signer pods are not rolled out on an unmigrated schema. Fix the cause, then delete the Job to retry`,
      );
      previousRollout();
      return false;
    }
    case 'done': {
      const reported = obs.reports.find((r) => r.exitCode === 0)?.report?.schemaVersion;
      const v =
        reported ?? (phase.needsReport && imageOf(vhs, build.defaultImage) === build.defaultImage ? bundledSchemaVersion() : undefined);
      if (v) rec.status.schemaVersion = v;
      const schema = rec.status.schemaVersion ? ` (schema ${rec.status.schemaVersion})` : '';
      rec.set(
        'Migrated',
        'True',
        'Migrated',
        `schema migrated by Job ${jobName}${schema}; database bound to rollup ${vhs.spec.rollup.address.toLowerCase()}`,
      );
      return true;
    }
  }
}

/** Schema version from the migrate Job's termination message (`{"schemaVersion": ...}` or `schemaVersion=...`). */
export function schemaVersionFromMessage(message: string | undefined): string | undefined {
  const reported = parseMigrateReport(message)?.schemaVersion;
  if (reported || !message) return reported;
  return /schemaVersion[=:]\s*"?([\w.-]+)/.exec(message)?.[1];
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

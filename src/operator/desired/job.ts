/** The migration Job: `ha-signer migrate up` against the resource's database, bound to its rollup. Pure. */
import type * as k8s from '@kubernetes/client-node';
import { PROTECTION_ENV } from '../../contract.js';
import type { BuildContext, ValidatorHASignerResource } from '../types.js';
import { ANNOTATION_MIGRATION_HASH, commonLabels, hash, imageOf, names, ownedMeta } from './names.js';
import { containerSecurityContext, podSecurityContext } from './security.js';

export const DATABASE_URL_ENV = PROTECTION_ENV.databaseUrl;

/**
 * Inputs that require a new migration run: the image (its migrations), the rollup binding and the database
 * connection (`databaseKey`: its address and a digest of the URI). A changed password re-runs `migrate up`
 * (idempotent): a wrong one fails the Job with the server's message and holds the rollout, instead of rolling out
 * pods that cannot connect.
 */
export function migrationHash(vhs: ValidatorHASignerResource, ctx: BuildContext, databaseKey: string): string {
  return hash({
    image: imageOf(vhs, ctx.defaultImage),
    rollupAddress: vhs.spec.rollup.address.toLowerCase(),
    rollupVersion: vhs.spec.rollup.version,
    database: databaseKey,
  });
}

export function migrationJobName(vhs: ValidatorHASignerResource, ctx: BuildContext, databaseKey: string): string {
  return names.migrationJob(vhs, migrationHash(vhs, ctx, databaseKey));
}

export function buildMigrationJob(vhs: ValidatorHASignerResource, ctx: BuildContext, databaseKey: string): k8s.V1Job {
  const h = migrationHash(vhs, ctx, databaseKey);
  const name = names.migrationJob(vhs, h);
  const labels = { ...commonLabels(vhs, 'migration'), [ANNOTATION_MIGRATION_HASH]: h };
  const db = vhs.spec.database.secretRef;
  const address = vhs.spec.rollup.address.toLowerCase();
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: ownedMeta(vhs, name, 'migration', {
      labels,
      annotations: { [ANNOTATION_MIGRATION_HASH]: h, 'ha-signer.dev/rollup-version': vhs.spec.rollup.version },
    }),
    spec: {
      backoffLimit: vhs.spec.migration?.backoffLimit ?? 3,
      ttlSecondsAfterFinished: vhs.spec.migration?.ttlSecondsAfterFinished ?? 3600,
      activeDeadlineSeconds: 900,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurityContext(),
          ...(vhs.spec.imagePullSecrets ? { imagePullSecrets: vhs.spec.imagePullSecrets } : {}),
          ...(vhs.spec.nodeSelector ? { nodeSelector: vhs.spec.nodeSelector } : {}),
          ...(vhs.spec.tolerations ? { tolerations: vhs.spec.tolerations } : {}),
          ...(vhs.spec.priorityClassName ? { priorityClassName: vhs.spec.priorityClassName } : {}),
          containers: [
            {
              name: 'migrate',
              image: imageOf(vhs, ctx.defaultImage),
              ...(vhs.spec.imagePullPolicy ? { imagePullPolicy: vhs.spec.imagePullPolicy } : {}),
              // The URL stays in the Secret: the CLI reads it from the env var when --database-url is absent, so it
              // appears neither in the Job nor in the process's arguments.
              args: ['migrate', 'up', '--rollup-address', address],
              env: [{ name: DATABASE_URL_ENV, valueFrom: { secretKeyRef: { name: db.name, key: db.key ?? 'uri' } } }],
              terminationMessagePolicy: 'FallbackToLogsOnError',
              securityContext: containerSecurityContext(),
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  };
}

export type JobOutcome =
  { state: 'running' } | { state: 'succeeded'; message?: string } | { state: 'failed'; reason: string; message: string };

/** Reads a Job's outcome from its status conditions (and the termination message of a failed pod, when given). */
export function jobOutcome(job: k8s.V1Job, podMessage?: string): JobOutcome {
  const conds = job.status?.conditions ?? [];
  const failed = conds.find((c) => (c.type === 'Failed' || c.type === 'FailureTarget') && c.status === 'True');
  if (failed) {
    const base = `${failed.reason ?? 'Failed'}: ${failed.message ?? 'the Job failed'}`;
    return {
      state: 'failed',
      reason: failed.reason ?? 'Failed',
      message: podMessage ? `${base}; last error: ${podMessage.trim().slice(-2000)}` : base,
    };
  }
  if (conds.some((c) => (c.type === 'Complete' || c.type === 'SuccessCriteriaMet') && c.status === 'True')) return { state: 'succeeded' };
  return { state: 'running' };
}

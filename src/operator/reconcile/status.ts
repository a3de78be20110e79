/**
 * The status a reconcile builds: conditions in one order with typed reasons, written once at the end (only when it
 * changed), plus Events on condition transitions.
 */
import type * as k8s from '@kubernetes/client-node';
import { getCondition, rolloutState, setCondition, transitions, type RolloutState } from '../desired/index.js';
import { describeError } from '../kube.js';
import {
  CONDITION_ORDER,
  type Condition,
  type ConditionReason,
  type ConditionType,
  type ValidatorHASignerResource,
  type ValidatorHASignerStatus,
} from '../types.js';
import type { Log, StatusApi } from './api.js';

/** A problem the user must fix: recorded in status, retried with backoff. */
export class ReconcileProblem extends Error {}

/** Condition reasons that need the user's attention (Warning Events). */
export const WARNING_REASONS: ReadonlySet<ConditionReason> = new Set<ConditionReason>([
  'SecretNotFound',
  'SecretKeyNotFound',
  'SecretEmpty',
  'InvalidDatabaseURI',
  'DatabaseInUse',
  'MigrationFailed',
  'SignerCrashLooping',
  'ImagePullFailed',
  'PodConfigError',
  'ClusterScopeRequired',
  'PodsUnschedulable',
  'RolloutStalled',
  'NotSynchronous',
  'DatabaseRegressed',
]);

export class StatusRecorder {
  conditions: Condition[];
  readonly before: Condition[] | undefined;
  readonly status: ValidatorHASignerStatus;
  private readonly generation: number;

  constructor(
    readonly vhs: ValidatorHASignerResource,
    private readonly now = new Date(),
  ) {
    this.before = vhs.status?.conditions;
    this.conditions = [...(vhs.status?.conditions ?? [])];
    this.generation = vhs.metadata.generation ?? 0;
    this.status = { ...(vhs.status ?? {}) };
  }

  set(type: ConditionType, status: 'True' | 'False' | 'Unknown', reason: ConditionReason, message: string): void {
    this.conditions = setCondition(this.conditions, { type, status, reason, message }, this.generation, this.now);
  }

  /** Sets `type` False and every later condition False/Unknown with the same reason (Ready always False). */
  block(type: ConditionType, reason: ConditionReason, message: string, later: 'False' | 'Unknown' = 'False'): void {
    this.set(type, 'False', reason, message);
    for (const t of CONDITION_ORDER.slice((CONDITION_ORDER as readonly string[]).indexOf(type) + 1)) {
      if (t === 'Ready') this.set('Ready', 'False', reason, message);
      else this.set(t, later, reason, `waiting: ${message}`);
    }
  }

  /** block() and stop the reconcile with a ReconcileProblem (retried with backoff). */
  problem(type: ConditionType, reason: ConditionReason, message: string): never {
    this.block(type, reason, message);
    throw new ReconcileProblem(message);
  }

  hadReason(type: ConditionType, reason: string): boolean {
    return getCondition(this.before, type)?.reason === reason;
  }

  /**
   * Replica counts and Available from the Deployment (and, when not every pod serves, the pods' own reasons).
   * `suffix` marks a previous rollout kept while the current spec is blocked.
   */
  reportDeployment(dep: k8s.V1Deployment | undefined, pods: k8s.V1Pod[] = [], suffix = ''): RolloutState {
    const r = rolloutState(dep, pods);
    this.status.replicas = r.replicas;
    this.status.readyReplicas = r.ready;
    if (r.available) this.set('Available', 'True', 'DeploymentAvailable', `${r.message}${suffix}`);
    else if (r.cause) this.set('Available', 'False', r.cause.reason, `${r.message}; ${r.cause.message}${suffix}`);
    else this.set('Available', 'False', 'DeploymentUnavailable', `${r.message}${suffix}`);
    return r;
  }

  next(): ValidatorHASignerStatus {
    return { ...this.status, observedGeneration: this.generation, conditions: this.conditions };
  }
}

/** Writes the status when it changed and records an Event per condition transition (one per status/reason). */
export async function writeStatus(api: StatusApi, rec: StatusRecorder, instance: string, log: Log): Promise<void> {
  const next = rec.next();
  if (JSON.stringify(normalize(next)) !== JSON.stringify(normalize(rec.vhs.status ?? {}))) await api.patchStatus(rec.vhs, next);
  const seen = new Set<string>();
  for (const c of transitions(rec.before, rec.conditions)) {
    if (seen.has(`${c.status}/${c.reason}`)) continue;
    seen.add(`${c.status}/${c.reason}`);
    const type = WARNING_REASONS.has(c.reason as ConditionReason) ? 'Warning' : 'Normal';
    await recordEvent(api, rec.vhs, instance, log, type, c.reason, c.type, `${c.type}=${c.status}: ${c.message}`);
  }
}

export async function recordEvent(
  api: StatusApi,
  vhs: ValidatorHASignerResource,
  instance: string,
  log: Log,
  type: 'Normal' | 'Warning',
  reason: string,
  action: string,
  note: string,
): Promise<void> {
  await api.createEvent(vhs, type, reason, action, note, instance).catch((e) => log('event not recorded', { error: describeError(e) }));
}

function normalize(s: ValidatorHASignerStatus): unknown {
  const keys = Object.keys(s).sort() as (keyof ValidatorHASignerStatus)[];
  return keys
    .filter((k) => s[k] !== undefined)
    .map((k) => [
      k,
      k === 'conditions'
        ? [...(s.conditions ?? [])]
            .sort((a, b) => a.type.localeCompare(b.type))
            .map((c) => ({ ...c, lastTransitionTime: String(c.lastTransitionTime) }))
        : s[k],
    ]);
}

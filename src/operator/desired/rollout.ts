/**
 * What the signer Deployment and its pods say about service, for status. Pure.
 * - available: enough pods serve. As many as the PodDisruptionBudget protects (all but one, at least one), counted
 *   from availableReplicas whatever template they run: a scale, a Secret roll or an operator upgrade (maxSurge 1,
 *   maxUnavailable 0) never makes a serving group unavailable.
 * - complete: every desired replica runs the current template and is ready (what Ready needs).
 * - cause: the most specific reason pods do not serve (crash loop with the container's last message, image pull,
 *   configuration, scheduling, stalled rollout).
 */
import type * as k8s from '@kubernetes/client-node';

export type RolloutReason = 'SignerCrashLooping' | 'ImagePullFailed' | 'PodConfigError' | 'PodsUnschedulable' | 'RolloutStalled';

export interface RolloutState {
  available: boolean;
  complete: boolean;
  replicas: number;
  ready: number;
  message: string;
  cause?: { reason: RolloutReason; message: string };
}

/** Replicas that must be available: the PDB's floor (maxUnavailable 1), at least one. */
export function minimumAvailable(desired: number): number {
  return Math.max(1, desired - 1);
}

export function rolloutState(d: k8s.V1Deployment | undefined, pods: k8s.V1Pod[] = []): RolloutState {
  if (!d) return { available: false, complete: false, replicas: 0, ready: 0, message: 'the Deployment does not exist yet' };
  const want = d.spec?.replicas ?? 1;
  const st = d.status ?? {};
  const ready = st.readyReplicas ?? 0;
  const availableReplicas = st.availableReplicas ?? 0;
  const updated = st.updatedReplicas ?? 0;
  const current = (st.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
  const available = availableReplicas >= minimumAvailable(want);
  const complete = current && available && ready >= want && updated >= want && (st.replicas ?? 0) <= want;
  const message = complete
    ? `${ready}/${want} signer pods ready`
    : `${availableReplicas}/${want} signer pods available, ${updated}/${want} updated${current ? '' : ' (rollout not yet observed)'}`;
  const cause = podCause(pods) ?? stalled(d);
  return { available, complete, replicas: st.replicas ?? 0, ready, message, ...(cause && !complete ? { cause } : {}) };
}

function stalled(d: k8s.V1Deployment): RolloutState['cause'] {
  const p = d.status?.conditions?.find((c) => c.type === 'Progressing');
  if (p?.status === 'False')
    return { reason: 'RolloutStalled', message: `rollout stalled: ${p.reason ?? ''}${p.message ? `: ${p.message}` : ''}` };
  return undefined;
}

const PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const CONFIG = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

function podCause(pods: k8s.V1Pod[]): RolloutState['cause'] {
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const name = pod.metadata?.name ?? '?';
    for (const c of pod.status?.containerStatuses ?? []) {
      const waiting = c.state?.waiting;
      const last = c.lastState?.terminated;
      if (waiting?.reason === 'CrashLoopBackOff' || (c.restartCount > 0 && !c.ready && last && last.exitCode !== 0)) {
        const said = last?.message?.trim().split('\n').slice(-5).join(' ').slice(-1500);
        return {
          reason: 'SignerCrashLooping',
          message: `pod ${name}: container ${c.name} restarted ${c.restartCount} times${last ? `, last exit code ${last.exitCode}` : ''}${said ? `: ${said}` : ''}`,
        };
      }
      if (waiting?.reason && PULL.has(waiting.reason))
        return { reason: 'ImagePullFailed', message: `pod ${name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
      if (waiting?.reason && CONFIG.has(waiting.reason))
        return { reason: 'PodConfigError', message: `pod ${name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
    }
    const sched = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    if (sched) return { reason: 'PodsUnschedulable', message: `pod ${name} cannot be scheduled: ${sched.message ?? sched.reason ?? ''}` };
  }
  return undefined;
}

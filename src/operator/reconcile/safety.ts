/**
 * Failover-safety conditions (SynchronousReplication, HistoryIntact) from the signers' own /readyz reports, read over
 * HTTP from each running pod's IP on the metrics port. The operator never connects to the database: the signers
 * already check replication and their history against the external high-water marks, and report both there.
 */
import type * as k8s from '@kubernetes/client-node';
import { SIGNER_METRICS_PORT } from '../../contract.js';
import { highWaterMarksEnabled, names } from '../desired/index.js';
import type { ConditionReason, ConditionStatus, ValidatorHASignerResource } from '../types.js';

/** The parts of a signer's /readyz body (src/signer/readiness.ts) the conditions use. */
export interface SignerSafetyReport {
  replication?: { synchronous?: boolean; reasons?: string[]; enforced?: boolean };
  historyRegressions?: { validatorAddress: string; refusedUpToSlot: string }[];
}

export type PodReport = { pod: string; report: SignerSafetyReport } | { pod: string; error: string };

/** GET <url> → parsed JSON body (any status: a 503 /readyz still carries its details). */
export type ReadyzFetcher = (url: string) => Promise<unknown>;

const FETCH_TIMEOUT_MS = 2_000;

export const fetchReadyz: ReadyzFetcher = async (url) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  return (await res.json()) as unknown;
};

function asReport(body: unknown): SignerSafetyReport {
  if (!body || typeof body !== 'object') throw new Error('/readyz answered no JSON object');
  const b = body as SignerSafetyReport;
  const regressions = Array.isArray(b.historyRegressions)
    ? b.historyRegressions.filter((r) => typeof r?.validatorAddress === 'string' && typeof r?.refusedUpToSlot === 'string')
    : undefined;
  return {
    ...(b.replication && typeof b.replication === 'object' ? { replication: b.replication } : {}),
    ...(regressions ? { historyRegressions: regressions } : {}),
  };
}

/** Each running pod with an IP (others have not started their checks), concurrently. */
export async function readSignerReports(pods: k8s.V1Pod[], get: ReadyzFetcher = fetchReadyz): Promise<PodReport[]> {
  const running = pods.filter((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
  return await Promise.all(
    running.map(async (p): Promise<PodReport> => {
      const pod = p.metadata?.name ?? '?';
      const host = p.status!.podIP!.includes(':') ? `[${p.status!.podIP!}]` : p.status!.podIP!;
      try {
        return { pod, report: asReport(await get(`http://${host}:${SIGNER_METRICS_PORT}/readyz`)) };
      } catch (error) {
        return { pod, error: (error as Error).message ?? String(error) };
      }
    }),
  );
}

export interface SafetyCondition {
  status: ConditionStatus;
  reason: ConditionReason;
  message: string;
}

const unreachable = (reports: PodReport[]): string =>
  `no signer pod's /readyz answered on port ${SIGNER_METRICS_PORT} (${reports.map((r) => `${r.pod}: ${'error' in r ? r.error : 'ok'}`).join('; ')}); with ` +
  `spec.networkPolicy enabled, admit the operator's pods in spec.networkPolicy.metricsFrom`;

export function synchronousReplicationCondition(reports: PodReport[]): SafetyCondition {
  if (reports.length === 0) return { status: 'Unknown', reason: 'NoSigners', message: 'no signer pod is running' };
  const answered = reports.flatMap((r) => ('report' in r ? [{ pod: r.pod, ...r.report }] : []));
  if (answered.length === 0) return { status: 'Unknown', reason: 'SignersUnreachable', message: unreachable(reports) };
  const checked = answered.filter((r) => typeof r.replication?.synchronous === 'boolean');
  if (checked.length === 0)
    return { status: 'Unknown', reason: 'NotReported', message: 'the signers have not reported a replication check yet' };
  const not = checked.filter((r) => r.replication!.synchronous === false);
  if (not.length === 0)
    return {
      status: 'True',
      reason: 'Synchronous',
      message: `record commits wait for a synchronous standby (${checked.length} pods report)`,
    };
  const first = not[0]!;
  const enforced = first.replication!.enforced
    ? 'spec.database.requireSynchronousReplication is set: those pods are not ready and refuse duties'
    : 'signing goes on unprotected against a failover (set spec.database.requireSynchronousReplication to refuse instead)';
  const why = (first.replication!.reasons ?? []).join('; ') || 'no reason given';
  return {
    status: 'False',
    reason: 'NotSynchronous',
    message: `${not.length} of ${checked.length} pods report record commits not synchronously replicated (${first.pod}: ${why}); ${enforced}`,
  };
}

export function historyIntactCondition(vhs: ValidatorHASignerResource, reports: PodReport[]): SafetyCondition {
  if (!highWaterMarksEnabled(vhs))
    return {
      status: 'Unknown',
      reason: 'HighWaterMarksOff',
      message: 'spec.protection.highWaterMarks is Off: no external marks to check against',
    };
  if (reports.length === 0) return { status: 'Unknown', reason: 'NoSigners', message: 'no signer pod is running' };
  const reached = reports.flatMap((r) => ('report' in r ? [r.report] : []));
  if (reached.length === 0) return { status: 'Unknown', reason: 'SignersUnreachable', message: unreachable(reports) };
  // A signer lists historyRegressions (maybe empty) only once its history guard runs.
  const answered = reached.filter((r) => r.historyRegressions !== undefined);
  if (answered.length === 0)
    return { status: 'Unknown', reason: 'NotReported', message: 'the signers have not reported a history check yet' };
  // One validator may be reported by several pods: the highest refused slot counts.
  const refused = new Map<string, bigint>();
  for (const r of answered)
    for (const g of r.historyRegressions ?? []) {
      const slot = /^\d+$/.test(g.refusedUpToSlot) ? BigInt(g.refusedUpToSlot) : 0n;
      const v = g.validatorAddress.toLowerCase();
      if ((refused.get(v) ?? -1n) < slot) refused.set(v, slot);
    }
  if (refused.size === 0)
    return {
      status: 'True',
      reason: 'HistoryIntact',
      message: `the database holds every duty up to the high-water marks (${answered.length} pods report)`,
    };
  const top = [...refused.values()].reduce((a, b) => (a > b ? a : b));
  const list = [...refused.keys()].slice(0, 5).join(', ') + (refused.size > 5 ? ', …' : '');
  return {
    status: 'False',
    reason: 'DatabaseRegressed',
    message:
      `${refused.size} validator(s) (${list}) have less history in the database than their high-water marks in ConfigMap ` +
      `${names.highWaterMarks(vhs)} (restored from a backup, or failed over to a lagging standby): their duties up to slot ${top} are ` +
      `refused. Recover: ha-signer history import <export of the lost history> --database-url URL, or ha-signer watermark raise ` +
      `--database-url URL --validator 0x… --slot <current slot> (docs/protection.md#backup-and-restore)`,
  };
}

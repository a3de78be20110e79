/**
 * Prometheus metrics of the signer (prom-client, own Registry). Label values are bounded enumerations: duty type,
 * outcome, reason — never a slot, an address or a caller.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DutyType, type ProtectionObserver, type ReplicationStatus } from '../protection/index.js';
import type { ReadinessReport } from './readiness.js';

export type SignOutcome = 'signed' | 'already_signed' | 'slashing_protection' | 'invalid' | 'denied' | 'unavailable' | 'error';
export type AuthDenialReason = 'missing' | 'invalid' | 'forbidden' | 'review_unavailable' | 'client_list_invalid';
/**
 * JSON-RPC outcomes: signed because a duty claim covers it (`signed_claimed`), a vote claimed and recorded here
 * (`signed_vote`), a repeat of a recorded vote (`already_signed`), unclaimed data of an opted-in client
 * (`signed_unclaimed`), a transaction (`signed_transaction`); refused: `not_claimed`, `claim_mismatch`,
 * `slashing_protection`, `refused` (unknown typed data, feature off), `denied`, `invalid`, `unavailable`, `error`.
 */
export type JsonRpcOutcome =
  | 'ok'
  | 'signed_claimed'
  | 'signed_vote'
  | 'already_signed'
  | 'signed_unclaimed'
  | 'signed_transaction'
  | 'not_claimed'
  | 'claim_mismatch'
  | 'slashing_protection'
  | 'refused'
  | 'denied'
  | 'invalid'
  | 'unavailable'
  | 'error';

const DUTY_TYPES: ReadonlySet<string> = new Set(Object.values(DutyType));

/** Maps anything a caller sent to a bounded label value. */
export function dutyTypeLabel(value: unknown): string {
  return typeof value === 'string' && DUTY_TYPES.has(value) ? value : 'unknown';
}

// Signing is milliseconds; waits for another node and remote signers can take seconds.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface PoolStatsSource {
  poolStats(): { total: number; idle: number; waiting: number };
}

/** The readiness checks exported one by one (`ha_signer_readiness_check{check}`), from the last /readyz report. */
export interface ReadinessChecksSource {
  lastReport: Pick<ReadinessReport, 'checks' | 'historyRegressions'>;
}

/** The last replication check of the protection core (cached there; no query per scrape). */
export interface ReplicationStatusSource {
  current: Pick<ReplicationStatus, 'required' | 'confirming' | 'standbys'> | undefined;
}

/** Reasons of 503 answers on the signing route (the body's `reason`), bounded; anything else counts as `other`. */
const UNAVAILABLE_REASONS: ReadonlySet<string> = new Set([
  'DatabaseUnavailableError',
  'SchemaVersionError',
  'SynchronousReplicationRequiredError',
  'DatabaseRegressedError',
  'DutyInProgress',
  'SigningLockLost',
  'ShuttingDown',
  'AuthenticationUnavailable',
  'Internal',
]);

export const unavailableReasonLabel = (reason: unknown): string =>
  typeof reason === 'string' && UNAVAILABLE_REASONS.has(reason) ? reason : 'other';

export class SignerMetrics {
  readonly registry = new Registry();
  readonly signRequests: Counter<'duty_type' | 'outcome'>;
  readonly signRequestDuration: Histogram<'outcome'>;
  readonly signingDuration: Histogram<'duty_type'>;
  readonly lockWait: Histogram<'duty_type'>;
  readonly locksAcquired: Counter<'duty_type' | 'how'>;
  readonly takeovers: Counter<'duty_type'>;
  readonly slashingProtectionTriggered: Counter<'duty_type' | 'reason'>;
  readonly signingFailures: Counter<'duty_type' | 'reason'>;
  readonly cleanedUp: Counter<'kind'>;
  readonly authDenied: Counter<'reason'>;
  readonly jsonRpcRequests: Counter<'method' | 'outcome'>;
  readonly jsonRpcDuration: Histogram<'method' | 'outcome'>;
  readonly ready: Gauge;
  readonly keysLoaded: Gauge;
  readonly synchronousReplication: Gauge;
  readonly historyRegressed: Gauge;
  readonly synchronousReplicationRequired: Gauge;
  readonly poolMax: Gauge;
  readonly dutiesInProgress: Counter<'duty_type'>;
  readonly signUnavailable: Counter<'reason'>;
  private poolSource: PoolStatsSource | undefined;
  private readinessSource: ReadinessChecksSource | undefined;
  private replicationSource: ReplicationStatusSource | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'ha_signer_' });
    this.signRequests = new Counter({
      name: 'ha_signer_sign_requests_total',
      help: 'Signing requests of the HTTP API by duty type and outcome',
      labelNames: ['duty_type', 'outcome'],
      registers,
    });
    this.signRequestDuration = new Histogram({
      name: 'ha_signer_sign_request_duration_seconds',
      help: 'Time to answer a signing request (validation, protection, signing), by outcome',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.signingDuration = new Histogram({
      name: 'ha_signer_signing_duration_seconds',
      help: 'Lock, sign and durable record of a duty signed by this replica',
      labelNames: ['duty_type'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.lockWait = new Histogram({
      name: 'ha_signer_lock_wait_duration_seconds',
      help: 'Time spent waiting for a duty that another node was signing',
      labelNames: ['duty_type'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.locksAcquired = new Counter({
      name: 'ha_signer_duty_locks_acquired_total',
      help: 'Duty locks acquired, by how (inserted or takeover)',
      labelNames: ['duty_type', 'how'],
      registers,
    });
    this.takeovers = new Counter({
      name: 'ha_signer_duty_takeovers_total',
      help: 'In-progress duties taken over from a node whose lease expired',
      labelNames: ['duty_type'],
      registers,
    });
    this.slashingProtectionTriggered = new Counter({
      name: 'ha_signer_slashing_protection_triggered_total',
      help: 'Requests refused because the duty was signed with different data (or its slot was pruned); alert on any increase',
      labelNames: ['duty_type', 'reason'],
      registers,
    });
    this.signingFailures = new Counter({
      name: 'ha_signer_signing_failures_total',
      help: 'Duties whose signing failed after the lock was taken (the lock is released, or withheld on lock loss)',
      labelNames: ['duty_type', 'reason'],
      registers,
    });
    this.cleanedUp = new Counter({
      name: 'ha_signer_cleaned_up_duties_total',
      help: 'Duty rows removed by background cleanup: stuck (own in-progress past the lease) or old (pruned)',
      labelNames: ['kind'],
      registers,
    });
    this.authDenied = new Counter({
      name: 'ha_signer_auth_denied_total',
      help: 'Calls denied by authentication or authorization, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.jsonRpcRequests = new Counter({
      name: 'ha_signer_jsonrpc_requests_total',
      help: 'Web3Signer-compatible JSON-RPC calls by method and outcome (signed_unclaimed: data no duty claim covers, signed for an opted-in client)',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.jsonRpcDuration = new Histogram({
      name: 'ha_signer_jsonrpc_request_duration_seconds',
      help: 'Time to answer a JSON-RPC call (claim lookup, signing), by method and outcome',
      labelNames: ['method', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.ready = new Gauge({ name: 'ha_signer_ready', help: '1 when the signer passes its readiness checks', registers });
    this.keysLoaded = new Gauge({ name: 'ha_signer_keys_loaded', help: 'Validator keys this replica serves', registers });
    this.synchronousReplication = new Gauge({
      name: 'ha_signer_database_synchronous_replication',
      help: '1 when record commits are synchronously replicated to enough standbys (checked every 5 s), else 0',
      registers,
    });
    this.historyRegressed = new Gauge({
      name: 'ha_signer_database_history_regressed_validators',
      help: 'Validators whose protection database holds less history than their external high-water mark (duties at or below it refused)',
      registers,
    });
    this.synchronousReplicationRequired = new Gauge({
      name: 'ha_signer_database_synchronous_replication_required',
      help: '1 when this replica refuses duties without synchronous replication (requireSynchronousReplication), else 0',
      registers,
    });
    this.poolMax = new Gauge({
      name: 'ha_signer_database_pool_max',
      help: 'Configured maximum of PostgreSQL pool connections (VALIDATOR_HA_POOL_MAX); compare with ha_signer_db_pool_connections',
      registers,
    });
    this.dutiesInProgress = new Counter({
      name: 'ha_signer_duty_in_progress_total',
      help: 'Requests answered 503 DutyInProgress: another node still held the duty, unsigned, after signingTimeoutMs',
      labelNames: ['duty_type'],
      registers,
    });
    this.signUnavailable = new Counter({
      name: 'ha_signer_sign_unavailable_total',
      help: "Signing requests answered 503, by the answer's reason (DatabaseUnavailableError, DutyInProgress, ShuttingDown, ...)",
      labelNames: ['reason'],
      registers,
    });
    const readiness = (): ReadinessChecksSource['lastReport'] | undefined => this.readinessSource?.lastReport;
    new Gauge({
      name: 'ha_signer_readiness_check',
      help: 'Readiness checks of /readyz, 1 when passing: database (reachable), schema, rollup_binding, keys, started, synchronous_replication (in place; fails readiness only when required), history (no validator below its high-water mark; never fails readiness)',
      labelNames: ['check'],
      registers,
      collect() {
        const report = readiness();
        if (!report) return;
        const { checks } = report;
        this.set({ check: 'database' }, checks.database ? 1 : 0);
        this.set({ check: 'schema' }, checks.schema ? 1 : 0);
        this.set({ check: 'rollup_binding' }, checks.rollupBinding ? 1 : 0);
        this.set({ check: 'keys' }, checks.keys ? 1 : 0);
        this.set({ check: 'started' }, checks.started ? 1 : 0);
        this.set({ check: 'synchronous_replication' }, checks.synchronousReplication === true ? 1 : 0);
        this.set({ check: 'history' }, (report.historyRegressions?.length ?? 0) === 0 ? 1 : 0);
      },
    });
    const replication = (): ReplicationStatusSource['current'] => this.replicationSource?.current;
    new Gauge({
      name: 'ha_signer_database_standbys',
      help: 'Standbys of the protection database at the last replication check: required (by synchronous_standby_names), confirming (synchronous, replying), connected (any, including asynchronous)',
      labelNames: ['kind'],
      registers,
      collect() {
        const status = replication();
        if (!status) return;
        this.set({ kind: 'required' }, status.required);
        this.set({ kind: 'confirming' }, status.confirming);
        this.set({ kind: 'connected' }, status.standbys.length);
      },
    });
    const poolStats = (): ReturnType<PoolStatsSource['poolStats']> | undefined => this.poolSource?.poolStats();
    new Gauge({
      name: 'ha_signer_db_pool_connections',
      help: 'PostgreSQL pool connections by state (total, idle, waiting = requests queued for a connection)',
      labelNames: ['state'],
      registers,
      collect() {
        const stats = poolStats();
        if (!stats) return;
        this.set({ state: 'total' }, stats.total);
        this.set({ state: 'idle' }, stats.idle);
        this.set({ state: 'waiting' }, stats.waiting);
      },
    });
    // Series present from the start, so increase() also sees a first event.
    for (const dutyType of Object.values(DutyType)) {
      this.slashingProtectionTriggered.inc({ duty_type: dutyType, reason: 'different_hash' }, 0);
      this.dutiesInProgress.inc({ duty_type: dutyType }, 0);
    }
    for (const reason of UNAVAILABLE_REASONS) this.signUnavailable.inc({ reason }, 0);
  }

  /** The pool's live counts, and its configured maximum. */
  setPoolSource(source: PoolStatsSource, max?: number): void {
    this.poolSource = source;
    if (max !== undefined) this.poolMax.set(max);
  }

  /** Per-check readiness gauges and standby counts read these sources' last state at scrape time. */
  setReadinessSource(source: ReadinessChecksSource): void {
    this.readinessSource = source;
  }

  setReplicationSource(source: ReplicationStatusSource | undefined): void {
    this.replicationSource = source;
  }

  /** The protection core's hooks, recorded as metrics. */
  observer(): ProtectionObserver {
    return {
      lockAcquired: (dutyType, how) => {
        this.locksAcquired.inc({ duty_type: dutyType, how });
        if (how === 'takeover') this.takeovers.inc({ duty_type: dutyType });
      },
      slashingProtectionTriggered: (dutyType, reason) => this.slashingProtectionTriggered.inc({ duty_type: dutyType, reason }),
      lockWaited: (dutyType, waitedMs) => this.lockWait.observe({ duty_type: dutyType }, waitedMs / 1000),
      signingSucceeded: (dutyType, durationMs) => this.signingDuration.observe({ duty_type: dutyType }, durationMs / 1000),
      signingFailed: (dutyType, reason) => this.signingFailures.inc({ duty_type: dutyType, reason }),
      dutyInProgress: (dutyType) => this.dutiesInProgress.inc({ duty_type: dutyType }),
      cleanedUp: (kind, count) => this.cleanedUp.inc({ kind }, count),
      replicationChecked: (synchronous) => this.synchronousReplication.set(synchronous ? 1 : 0),
      historyChecked: (regressed) => this.historyRegressed.set(regressed),
    };
  }
}

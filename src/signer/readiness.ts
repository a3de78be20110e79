/**
 * Readiness: the database is reachable, its schema is the one this release knows, it is bound to our rollup, and
 * keys are loaded. A wrong schema or binding also blocks signing (fail closed); a merely unreachable database does
 * not need to, because every signing attempt fails on its own until the database is back.
 */
import {
  DatabaseUnavailableError,
  type PostgresSlashingProtectionDatabase,
  type ReplicationStatus,
  type SafetyGates,
  SchemaVersionError,
} from '../protection/index.js';
import { withTimeout } from '../protection/timeout.js';

export interface ReadinessReport {
  ready: boolean;
  checks: { database: boolean; schema: boolean; rollupBinding: boolean; keys: boolean; started: boolean; synchronousReplication?: boolean };
  /** Why not ready; safe to show (no secrets). */
  reasons: string[];
  /** The last replication check (cached; refreshed every 5 s by the protection core) and whether it is required. */
  replication?: ReplicationStatus & { enforced: boolean };
  /** Validators whose database holds less history than their external high-water mark (duties up to the slot refused). */
  historyRegressions?: { validatorAddress: string; refusedUpToSlot: string }[];
}

export interface ReadinessSources {
  db: PostgresSlashingProtectionDatabase;
  rollupAddress: string;
  keyCount: () => number;
  /** Synchronous replication and history-guard state of the protection core. */
  gates?: SafetyGates;
  requireSynchronousReplication?: boolean;
}

const CHECK_TIMEOUT_MS = 2_000;

export class ReadinessMonitor {
  private sources: ReadinessSources | undefined;
  private startupProblem: string | undefined = 'starting: connecting to the protection database';
  private running: Promise<ReadinessReport> | undefined;
  private last: ReadinessReport;
  private shuttingDown = false;

  constructor(private readonly onChange: (ready: boolean) => void = () => {}) {
    this.last = {
      ready: false,
      checks: { database: false, schema: false, rollupBinding: false, keys: false, started: false },
      reasons: [this.startupProblem!],
    };
  }

  /** While the signer is not yet started: the reason shown by /readyz. */
  setStartupProblem(reason: string): void {
    this.startupProblem = reason;
    this.last = { ...this.last, ready: false, reasons: [reason] };
  }

  attach(sources: ReadinessSources): void {
    this.sources = sources;
    this.startupProblem = undefined;
  }

  markShuttingDown(): void {
    this.shuttingDown = true;
    this.last = { ...this.last, ready: false, reasons: ['shutting down'] };
    this.onChange(false);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  get lastReport(): ReadinessReport {
    return this.last;
  }

  /**
   * False when the last check found a schema or binding this signer must not sign against. Unreachability alone
   * does not block: the signing path itself fails closed and recovers with the database.
   */
  get signingBlockedReason(): string | undefined {
    if (this.shuttingDown) return 'shutting down';
    if (!this.sources) return this.startupProblem ?? 'not started';
    const { checks } = this.last;
    if (checks.database && (!checks.schema || !checks.rollupBinding)) return this.last.reasons.join('; ');
    return undefined;
  }

  /** Runs the checks (one at a time; concurrent callers share the run). */
  async check(): Promise<ReadinessReport> {
    this.running ??= this.runChecks().finally(() => {
      this.running = undefined;
    });
    return await this.running;
  }

  private async runChecks(): Promise<ReadinessReport> {
    const sources = this.sources;
    const reasons: string[] = [];
    const checks = { database: false, schema: false, rollupBinding: false, keys: false, started: sources !== undefined };
    if (!sources) {
      reasons.push(this.startupProblem ?? 'not started');
    } else {
      checks.keys = sources.keyCount() > 0;
      if (!checks.keys) reasons.push('no validator keys loaded');
      try {
        const bound = await withTimeout(
          async () => {
            await sources.db.verifySchema();
            return await sources.db.boundRollup();
          },
          CHECK_TIMEOUT_MS,
          () => new DatabaseUnavailableError(`no answer within ${CHECK_TIMEOUT_MS} ms`),
        );
        checks.database = true;
        checks.schema = true;
        checks.rollupBinding = bound === sources.rollupAddress;
        if (!checks.rollupBinding)
          reasons.push(`database is bound to rollup ${bound ?? '(none)'}, this signer serves ${sources.rollupAddress}`);
      } catch (error) {
        // A wrong or missing schema is an answer from a reachable database; anything else means unreachable.
        if (error instanceof SchemaVersionError) {
          checks.database = true;
          reasons.push(error.message);
        } else reasons.push(`database unreachable: ${(error as Error).message}`);
      }
    }
    const details = sources ? gateDetails(sources, checks, reasons) : {};
    if (this.shuttingDown) reasons.unshift('shutting down');
    const report: ReadinessReport = { ready: reasons.length === 0, checks, reasons, ...details };
    const changed = report.ready !== this.last.ready;
    this.last = report;
    if (changed) this.onChange(report.ready);
    return report;
  }
}

/** Replication and history-guard state from the protection core's cached checks (no query per probe). */
function gateDetails(
  sources: ReadinessSources,
  checks: ReadinessReport['checks'],
  reasons: string[],
): Pick<ReadinessReport, 'replication' | 'historyRegressions'> {
  const status = sources.gates?.replication?.current;
  const enforced = sources.requireSynchronousReplication === true;
  checks.synchronousReplication = status?.synchronous === true;
  if (enforced && !checks.synchronousReplication)
    reasons.push(`synchronous replication required but not in place: ${status?.reasons.join('; ') ?? 'not checked yet'}`);
  const guard = sources.gates?.historyGuard;
  const regressions = guard?.currentRegressions.map((r) => ({
    validatorAddress: r.validatorAddress,
    refusedUpToSlot: r.refusedUpToSlot.toString(),
  }));
  return { ...(status ? { replication: { ...status, enforced } } : {}), ...(regressions ? { historyRegressions: regressions } : {}) };
}

/**
 * Synchronous replication, checked. A signature recorded on a primary and lost in a failover to a standby that had
 * not received it can be signed again with different data; only a record that a standby confirmed before the commit
 * returned survives that. This module asks the database whether its commits are synchronously replicated:
 * `synchronous_standby_names` names standbys, enough of them stream with `sync_state` sync/quorum (and answered
 * recently), and the session's `synchronous_commit` waits for them (on, remote_write, remote_apply).
 *
 * Least privilege: `pg_stat_replication` shows a standby's state only to superusers and members of
 * `pg_read_all_stats` (included in `pg_monitor`). Without it the rows are there but their columns are NULL; the
 * status then says so (`privileged: false`) and is not synchronous (fail closed).
 */
import type pg from 'pg';
import { DatabaseUnavailableError } from './errors.js';
import type { Logger } from './types.js';

/** A standby whose last reply is older than this is not counted (a frozen standby otherwise counts until wal_sender_timeout). */
export const DEFAULT_STALE_REPLY_MS = 15_000;

export interface StandbyState {
  name: string;
  state: string | null;
  syncState: string | null;
  /** Milliseconds since the standby's last reply (null when unknown). */
  replyAgeMs: number | null;
}

export interface ReplicationStatus {
  /** True when a commit on this connection returns only after enough synchronous standbys confirmed it. */
  synchronous: boolean;
  /** Why not (empty when synchronous). */
  reasons: string[];
  synchronousStandbyNames: string;
  synchronousCommit: string;
  /** Standbys that must confirm (from synchronous_standby_names; 0 when empty). */
  required: number;
  /** Standbys streaming with sync_state sync or quorum and a recent reply. */
  confirming: number;
  standbys: StandbyState[];
  /** This server is itself a standby (read-only): nothing can be recorded on it. */
  inRecovery: boolean;
  /** Whether the role may read standby states (superuser, pg_read_all_stats or pg_monitor). */
  privileged: boolean;
  checkedAt: string;
}

export const REPLICATION_STATUS_QUERY = `
SELECT current_setting('synchronous_standby_names') AS standby_names,
       current_setting('synchronous_commit') AS synchronous_commit,
       pg_is_in_recovery() AS in_recovery,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS privileged,
       COALESCE((SELECT json_agg(json_build_object(
                  'name', application_name, 'state', state, 'syncState', sync_state,
                  'replyAgeMs', (extract(epoch FROM clock_timestamp() - reply_time) * 1000)::bigint))
                 FROM pg_stat_replication), '[]'::json) AS standbys`;

interface StatusRow {
  standby_names: string;
  synchronous_commit: string;
  in_recovery: boolean;
  privileged: boolean;
  standbys: StandbyState[];
}

/** Synchronous commit levels that wait for the standbys (`local` and `off` do not). */
const WAITING_COMMIT_LEVELS = new Set(['on', 'remote_write', 'remote_apply']);

/**
 * How many standbys must confirm a commit, from synchronous_standby_names: `FIRST n (...)`, `ANY n (...)`,
 * `n (...)`, or a plain list (`a, b`: the first one, i.e. 1); 0 when empty.
 */
export function requiredSynchronousStandbys(names: string): number {
  const trimmed = names.trim();
  if (trimmed === '') return 0;
  const counted = /^(?:(?:FIRST|ANY)\s+)?(\d+)\s*\(/i.exec(trimmed);
  return counted ? Number(counted[1]) : 1;
}

/** Turns the settings and standby rows into a status (pure; exported for unit tests). */
export function evaluateReplication(row: StatusRow, staleReplyMs = DEFAULT_STALE_REPLY_MS, now = new Date()): ReplicationStatus {
  const reasons: string[] = [];
  const required = requiredSynchronousStandbys(row.standby_names);
  const standbys = row.standbys.map((s) => ({ ...s, replyAgeMs: s.replyAgeMs === null ? null : Number(s.replyAgeMs) }));
  const confirming = standbys.filter(
    (s) =>
      s.state === 'streaming' &&
      (s.syncState === 'sync' || s.syncState === 'quorum') &&
      (s.replyAgeMs === null || s.replyAgeMs <= staleReplyMs),
  ).length;
  if (row.in_recovery) reasons.push('the database is a standby (in recovery): nothing can be recorded on it');
  if (required === 0) reasons.push('synchronous_standby_names is empty: commits do not wait for any standby');
  if (!WAITING_COMMIT_LEVELS.has(row.synchronous_commit))
    reasons.push(
      `synchronous_commit is ${row.synchronous_commit} for this session: commits do not wait for standbys (need on, remote_write or remote_apply)`,
    );
  if (required > 0 && !row.privileged && standbys.length > 0 && standbys.every((s) => s.syncState === null)) {
    reasons.push(
      "cannot see the standbys' sync state: grant the signer's role pg_monitor or pg_read_all_stats (GRANT pg_read_all_stats TO <role>)",
    );
  } else if (required > 0 && confirming < required) {
    reasons.push(
      `${confirming} of ${required} required synchronous standbys stream and confirm (standbys: ${
        standbys.map((s) => `${s.name} ${s.state ?? '?'}/${s.syncState ?? '?'}`).join(', ') || 'none connected'
      })`,
    );
  }
  return {
    synchronous: reasons.length === 0,
    reasons,
    synchronousStandbyNames: row.standby_names,
    synchronousCommit: row.synchronous_commit,
    required,
    confirming,
    standbys,
    inRecovery: row.in_recovery,
    privileged: row.privileged,
    checkedAt: now.toISOString(),
  };
}

/** Something that runs one query (a pg.Pool, a pg.Client, or the store's bounded runner). */
export type ReplicationQuery = (text: string) => Promise<pg.QueryResult<pg.QueryResultRow>>;

/** Reads the replication status once; DatabaseUnavailableError-like errors propagate. */
export async function readReplicationStatus(query: ReplicationQuery, staleReplyMs = DEFAULT_STALE_REPLY_MS): Promise<ReplicationStatus> {
  const result = await query(REPLICATION_STATUS_QUERY);
  const row = result.rows[0] as StatusRow | undefined;
  if (!row) throw new DatabaseUnavailableError('replication status query returned no row');
  return evaluateReplication(row, staleReplyMs);
}

export interface ReplicationMonitorOptions {
  /** How often to re-check (default 5000 ms). */
  intervalMs?: number;
  staleReplyMs?: number;
  logger?: Logger;
  /** Called after every check with the new status (metrics). */
  onStatus?: (status: ReplicationStatus) => void;
}

/**
 * Checks at start and every intervalMs; readiness probes read the cached `current` (no query per probe). A check
 * that fails (database unreachable) makes the status unknown, i.e. not synchronous.
 */
export class ReplicationMonitor {
  private status: ReplicationStatus | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReplicationStatus> | undefined;
  private readonly intervalMs: number;

  constructor(
    private readonly query: ReplicationQuery,
    private readonly options: ReplicationMonitorOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5_000;
  }

  /** The last status; undefined before the first check. */
  get current(): ReplicationStatus | undefined {
    return this.status;
  }

  async start(): Promise<ReplicationStatus> {
    const first = await this.check();
    if (!this.timer) {
      this.timer = setInterval(() => void this.check().catch(() => {}), this.intervalMs);
      this.timer.unref();
    }
    return first;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check (concurrent callers share it). */
  async check(): Promise<ReplicationStatus> {
    this.running ??= this.runCheck().finally(() => {
      this.running = undefined;
    });
    return await this.running;
  }

  private async runCheck(): Promise<ReplicationStatus> {
    let next: ReplicationStatus;
    try {
      next = await readReplicationStatus(this.query, this.options.staleReplyMs);
    } catch (error) {
      next = {
        synchronous: false,
        reasons: [`replication status unknown: ${(error as Error).message}`],
        synchronousStandbyNames: this.status?.synchronousStandbyNames ?? '',
        synchronousCommit: this.status?.synchronousCommit ?? '',
        required: this.status?.required ?? 0,
        confirming: 0,
        standbys: [],
        inRecovery: false,
        privileged: this.status?.privileged ?? false,
        checkedAt: new Date().toISOString(),
      };
    }
    if (this.status?.synchronous !== next.synchronous)
      this.options.logger?.[next.synchronous ? 'info' : 'warn'](
        { reasons: next.reasons, confirming: next.confirming, required: next.required },
        next.synchronous ? 'record commits are synchronously replicated' : 'record commits are NOT synchronously replicated',
      );
    this.status = next;
    this.options.onStatus?.(next);
    return next;
  }
}

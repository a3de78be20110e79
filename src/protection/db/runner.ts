/**
 * Runs the store's statements with bounded time: every statement carries a client-side timeout, and an overall
 * deadline also bounds the wait for a pool connection, so a hung connection or a frozen backend becomes a
 * DatabaseUnavailableError (the signer answers 503) instead of a request that never returns. A timed-out
 * connection is discarded by the pool. Also keeps the store's health for readiness probes.
 */
import type pg from 'pg';
import { DatabaseUnavailableError } from '../errors.js';
import { withTimeout } from '../timeout.js';
import { classify, isUnavailable } from './classify.js';

/** The subset of pg.Pool the database uses (pg.Pool fits; so do pool wrappers). */
export interface QueryablePool {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>>;
  end(): Promise<void>;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  options?: pg.PoolConfig;
  totalCount?: number;
  idleCount?: number;
  waitingCount?: number;
}

/** Default bound of one statement of the signing path (PostgreSQL's statement_timeout and lock_timeout too). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;
/** The client-side timeout leaves the server this long to cancel first (a clean error, the connection kept). */
const CLIENT_TIMEOUT_MARGIN_MS = 1_000;

/** What readiness needs to know of the store's database. */
export interface StoreHealth {
  /** False after a statement failed as unavailable (or timed out) and until one succeeds again. */
  answering: boolean;
  lastAnswerAt?: Date;
  lastFailureAt?: Date;
  lastFailure?: string;
}

export class StatementRunner {
  private lastAnswerAt: Date | undefined;
  private lastFailureAt: Date | undefined;
  private lastFailure: string | undefined;
  private answering = true;
  private readonly answerListeners = new Set<() => void>();

  constructor(
    readonly pool: QueryablePool,
    readonly statementTimeoutMs: number,
  ) {}

  /** Runs one statement; a name makes each connection parse and plan it once. */
  async run<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    name?: string,
    timeoutMs = this.statementTimeoutMs,
  ): Promise<pg.QueryResult<R>> {
    const clientTimeoutMs = timeoutMs + CLIENT_TIMEOUT_MARGIN_MS;
    // pg supports a per-query client-side timeout (query_timeout); its type definitions do not list it.
    const config: pg.QueryConfig & { query_timeout: number } = { text, values, query_timeout: clientTimeoutMs, ...(name ? { name } : {}) };
    try {
      // The outer deadline also covers waiting for a pool connection, which query_timeout does not.
      const result = await withTimeout(
        () => this.pool.query<R>(config),
        clientTimeoutMs + timeoutMs,
        () =>
          new DatabaseUnavailableError(
            `PostgreSQL did not answer within ${clientTimeoutMs + timeoutMs} ms (no free connection or a hung one)`,
          ),
      );
      this.answered();
      return result;
    } catch (error) {
      if (isUnavailable(error)) this.failed(error);
      else this.answered();
      throw classify(error);
    }
  }

  /** `SELECT 1` within `timeoutMs` (pool wait included): resolves when the database answers, else throws DatabaseUnavailableError. */
  async ping(timeoutMs = 2_000): Promise<void> {
    await this.run('SELECT 1', [], undefined, timeoutMs);
  }

  health(): StoreHealth {
    return {
      answering: this.answering,
      ...(this.lastAnswerAt ? { lastAnswerAt: this.lastAnswerAt } : {}),
      ...(this.lastFailureAt ? { lastFailureAt: this.lastFailureAt } : {}),
      ...(this.lastFailure ? { lastFailure: this.lastFailure } : {}),
    };
  }

  /** Called whenever the database answers after having failed (the LISTEN connection reconnects at once then). */
  onRecovered(listener: () => void): void {
    this.answerListeners.add(listener);
  }

  private answered(): void {
    const recovered = !this.answering;
    this.answering = true;
    this.lastAnswerAt = new Date();
    if (recovered) for (const listener of this.answerListeners) listener();
  }

  private failed(error: unknown): void {
    this.answering = false;
    this.lastFailureAt = new Date();
    this.lastFailure = (error as Error)?.message ?? String(error);
  }
}

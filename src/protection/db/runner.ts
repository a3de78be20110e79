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

/** What the database runner needs of a PostgreSQL notice (pg's NoticeMessage). */
export interface Notice {
  message?: string | undefined;
  code?: string | undefined;
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
    execute: (config: pg.QueryConfig) => Promise<pg.QueryResult<R>> = (config) => this.pool.query<R>(config),
  ): Promise<pg.QueryResult<R>> {
    const clientTimeoutMs = timeoutMs + CLIENT_TIMEOUT_MARGIN_MS;
    // pg supports a per-query client-side timeout (query_timeout); its type definitions do not list it.
    const config: pg.QueryConfig & { query_timeout: number } = { text, values, query_timeout: clientTimeoutMs, ...(name ? { name } : {}) };
    try {
      // The outer deadline also covers waiting for a pool connection, which query_timeout does not.
      const result = await withTimeout(
        () => execute(config),
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

  /**
   * Like run, on a connection of its own, also returning the notices PostgreSQL sent while it ran (e.g. the warning
   * that a commit's wait for a synchronous standby was cancelled). Pools without connect() give no notices.
   */
  async runWithNotices<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    name?: string,
  ): Promise<{ result: pg.QueryResult<R>; notices: Notice[] }> {
    const notices: Notice[] = [];
    const pool = this.pool as Partial<pg.Pool>;
    if (typeof pool.connect !== 'function') return { result: await this.run<R>(text, values, name), notices };
    const connect = pool.connect.bind(this.pool) as () => Promise<pg.PoolClient>;
    const result = await this.run<R>(text, values, name, this.statementTimeoutMs, async (config) => {
      const client = await connect();
      const onNotice = (notice: Notice): void => void notices.push(notice);
      let failed = false;
      // A checked-out client has no pool error listener: an error with no query active (its backend terminated just
      // after answering, both read at once) would be an unhandled 'error' event that ends the process.
      const onError = (): void => void (failed = true);
      client.on('notice', onNotice);
      client.on('error', onError);
      try {
        return await client.query<R>(config);
      } catch (error) {
        failed = true;
        throw error;
      } finally {
        client.off('notice', onNotice);
        client.off('error', onError);
        client.release(failed ? true : undefined); // a failed (possibly timed-out) connection is not reused
      }
    });
    return { result, notices };
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

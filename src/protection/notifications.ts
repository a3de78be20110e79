/**
 * Wake-ups for nodes waiting on another node's in-progress duty: one LISTEN connection per process, fed by the
 * database trigger that notifies on every completion or release (whichever client made it). Waiters subscribe
 * before they read the duty, so a notification between the read and the wait is not lost; when the connection is
 * down they fall back to polling.
 */
import pg from 'pg';
import { NOTIFY_CHANNEL } from './schema.js';
import type { Logger } from './types.js';

const MAX_RECONNECT_DELAY_MS = 1_000;
const CONNECT_TIMEOUT_MS = 5_000;

export interface DutySubscription {
  /** Resolves true when the duty changed, false when `timeoutMs` passed first. */
  wait(timeoutMs: number): Promise<boolean>;
  close(): void;
}

export class DutyNotifications {
  private client: pg.Client | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  private connecting: Promise<void> | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** The first retry after a loss is immediate; then 100 ms doubling up to 1 s (waiters poll meanwhile). */
  private reconnectDelayMs = 0;

  constructor(
    private readonly clientConfig: pg.ClientConfig,
    private readonly logger: Logger,
  ) {}

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Connects the LISTEN session; failures are logged and retried in the background (waiters poll meanwhile). */
  start(): Promise<void> {
    if (this.closed || this.client) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    // A connect or LISTEN that hangs must not stall reconnecting: both are bounded.
    const client = new pg.Client({
      ...this.clientConfig,
      application_name: 'ha-signer-listen',
      connectionTimeoutMillis: this.clientConfig.connectionTimeoutMillis || CONNECT_TIMEOUT_MS,
      query_timeout: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (message) => {
      if (message.channel === NOTIFY_CHANNEL && message.payload) this.wake(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      if (this.closed) {
        await client.end().catch(() => {});
        return;
      }
      this.client = client;
      this.reconnectDelayMs = 0;
      // Anything may have changed while we were not listening.
      for (const key of [...this.waiters.keys()]) this.wake(key);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      this.logger.warn({ err: String(error) }, 'duty notifications unavailable; waiters poll until reconnected');
      this.scheduleReconnect();
    }
  }

  private lost(client: pg.Client, error: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (this.closed) return;
    this.logger.warn({ err: String(error) }, 'duty notification connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.start();
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
    this.reconnectDelayMs = Math.min(Math.max(this.reconnectDelayMs * 2, 100), MAX_RECONNECT_DELAY_MS);
  }

  /** The database answered on another connection: retry LISTEN now instead of at the next backoff step. */
  reconnectNow(): void {
    if (this.closed || this.client || this.connecting) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.reconnectDelayMs = 0;
    void this.start();
  }

  private wake(key: string): void {
    const set = this.waiters.get(key);
    if (!set) return;
    for (const wake of [...set]) wake();
  }

  subscribe(key: string): DutySubscription {
    let fired = false;
    let notify: (() => void) | undefined;
    const onChange = (): void => {
      fired = true;
      notify?.();
    };
    let set = this.waiters.get(key);
    if (!set) this.waiters.set(key, (set = new Set()));
    set.add(onChange);
    const close = (): void => {
      const current = this.waiters.get(key);
      current?.delete(onChange);
      if (current?.size === 0) this.waiters.delete(key);
    };
    return {
      close,
      wait: (timeoutMs) =>
        new Promise<boolean>((resolve) => {
          if (fired) {
            fired = false;
            resolve(true);
            return;
          }
          const timer = setTimeout(
            () => {
              notify = undefined;
              resolve(false);
            },
            Math.max(0, timeoutMs),
          );
          notify = () => {
            clearTimeout(timer);
            notify = undefined;
            fired = false;
            resolve(true);
          };
        }),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.connecting?.catch(() => {});
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
    }
  }
}

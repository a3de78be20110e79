/**
 * A configuration file re-read while the process runs, so client lists and revocations take effect on running
 * replicas without a restart. Kubernetes updates mounted ConfigMaps and Secrets in place by swapping a `..data`
 * symlink, which file watches on the old path miss; reading the file on an interval sees every update.
 *
 * Fail closed: a file that becomes unreadable or invalid while running yields `undefined` (callers then refuse
 * the callers it would have allowed) until a valid version appears; the error is logged once per change.
 */
import { readFile } from 'node:fs/promises';

export const RELOAD_INTERVAL_MS = 1_000;

export interface LiveFileLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class LiveFile<T> {
  private value: T | undefined;
  private lastText: string | undefined;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly onChange: (value: T | undefined) => void,
    private readonly log: LiveFileLogger | undefined,
  ) {}

  /** Reads and parses the file once (throwing on any problem: start-up refuses), then re-reads it on an interval. */
  static async open<T>(
    path: string,
    parse: (text: string) => T,
    options: { onChange?: (value: T | undefined) => void; log?: LiveFileLogger; intervalMs?: number } = {},
  ): Promise<LiveFile<T>> {
    const file = new LiveFile(path, parse, options.onChange ?? (() => {}), options.log);
    const text = await readFile(path, 'utf8');
    file.value = parse(text);
    file.lastText = text;
    file.timer = setInterval(() => void file.reload(), options.intervalMs ?? RELOAD_INTERVAL_MS);
    file.timer.unref();
    return file;
  }

  /** The last valid content, or undefined while the file is invalid or unreadable. */
  get current(): T | undefined {
    return this.value;
  }

  /** Re-reads now (also what the interval does). */
  async reload(): Promise<void> {
    this.reading ??= this.readOnce().finally(() => {
      this.reading = undefined;
    });
    await this.reading;
  }

  private async readOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      this.lastText = undefined;
      this.fail(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      return;
    }
    if (text === this.lastText && this.lastError === undefined) return;
    this.lastText = text;
    try {
      this.value = this.parse(text);
    } catch (error) {
      this.fail((error as Error).message);
      return;
    }
    this.lastError = undefined;
    this.log?.info({ file: this.path }, 'reloaded client list');
    this.onChange(this.value);
  }

  private fail(message: string): void {
    const changed = message !== this.lastError || this.value !== undefined;
    this.lastError = message;
    this.value = undefined;
    if (changed) {
      this.log?.error({ file: this.path, err: message }, 'client list invalid or unreadable: its clients are refused until it is fixed');
      this.onChange(undefined);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

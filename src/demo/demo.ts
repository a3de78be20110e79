/**
 * `npm run demo`: three signer replicas (separate `ha-signer serve` processes) on one PostgreSQL, three simulated
 * HA validator nodes with the same keys signing every duty of every slot through RemoteHASigner, one replica
 * SIGKILLed mid-run. Ends with a check of the database and of every signature the nodes received: each duty signed
 * exactly once, never two different signatures for one duty. Exits 0 only if that holds.
 *
 * SIGINT, SIGTERM or a closed stdout (`npm run demo | head`) stop it cleanly: the replicas, the remote signer and the
 * embedded PostgreSQL are ended, and nothing prints a stack.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { keccak256, stringToHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { RemoteHASigner } from '../client/index.js';
import { parseFlags } from '../commands/common.js';
import { type Logger, createLogger } from '../log.js';
import { DutyAlreadySignedError, SlashingProtectionError, runMigrations } from '../protection/index.js';
import { type DemoDatabase, demoDatabase, freePort } from './database.js';
import { type Duty, EQUIVOCATION_EVERY, ROLLUP, contextOf, dutiesOfSlot, payloadOf } from './duties.js';
import { startFakeWeb3Signer, type FakeWeb3Signer } from './fake-web3signer.js';
import { type SignerReplica, startReplica } from './replicas.js';
import { verifyRun } from './verify.js';

const VALIDATOR_COUNT = 4;
const NODE_COUNT = 3;
const SLOTS = 12;
const SLOT_MS = 1_000;
/** The slot (counted from the first) during which replica-1 is SIGKILLed, and how long after the slot starts. */
const KILL_SLOT_INDEX = 5;
const KILL_AFTER_MS = 60;
/** Short lease so a killed replica's duties are taken over within the demo. */
const LEASE_MS = 2_000;
/** Latency of the remote signer behind replica-1: a kill then strands duties mid-signing. */
const REMOTE_SIGNER_DELAY_MS = 150;
/** After a stop request: how long the interrupted run may take to notice before the process exits anyway. */
const SETTLE_MS = 10_000;

interface Tally {
  signed: number;
  alreadySigned: number;
  refused: number;
  errors: number;
  failovers: number;
}

/** What the run started, so that a stop request can end all of it whatever the run was doing. */
interface Resources {
  database?: DemoDatabase;
  remote?: FakeWeb3Signer;
  replicas: SignerReplica[];
  dir?: string;
  keepDir: boolean;
}

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
  const dir = resources.dir;
  if (!databaseFlag && !process.env.VALIDATOR_HA_DATABASE_URL) log.info('database: starting an embedded PostgreSQL ...');
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
    const previous = await db.query<{ max: string | null }>('SELECT max(slot)::text AS max FROM validator_duties WHERE rollup_address = $1', [ROLLUP]);
    const firstSlot = Math.max(100, Number(previous.rows[0]?.max ?? 0) + 1);

    const keys = Array.from({ length: VALIDATOR_COUNT }, () => generatePrivateKey());
    const validators = keys.map((key) => privateKeyToAccount(key).address.toLowerCase());
    const keysDir = join(dir, 'keys');
    await mkdir(keysDir, { mode: 0o700 });
    for (const [i, key] of keys.entries()) await writeFile(join(keysDir, `validator-${i}.key`), key, { mode: 0o600 });
    const tokens = Array.from({ length: NODE_COUNT }, (_, i) => `demo-node-${i}-${keccak256(stringToHex(`${dir}/${i}`)).slice(2, 34)}`);
    await writeFile(join(dir, 'tokens.json'), JSON.stringify(tokens.map((token, i) => ({ name: `node-${i}`, token, validators }))), { mode: 0o600 });
    const remote = (resources.remote = await startFakeWeb3Signer(keys));
    remote.setDelay(() => REMOTE_SIGNER_DELAY_MS);

    const baseEnv: Record<string, string> = {
      VALIDATOR_HA_DATABASE_URL: database.url,
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
      VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: String(LEASE_MS),
      VALIDATOR_HA_SIGNING_TIMEOUT_MS: '8000',
      HA_SIGNER_KEYS_DIR: keysDir,
      HA_SIGNER_AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
      HA_SIGNER_LOG_LEVEL: 'warn',
    };
    const replicas = resources.replicas;
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      checkpoint();
      const remoteEnv: Record<string, string> = i === 1 ? { HA_SIGNER_WEB3SIGNER_URL: remote.url } : {};
      replicas.push(startReplica({ nodeId: `replica-${i}`, port, env: { ...baseEnv, ...remoteEnv }, logFile: join(dir, `replica-${i}.log`) }));
    }
    await Promise.all(replicas.map((replica) => replica.waitReady()));
    checkpoint();
    const replicaList = replicas.map((r) => `${r.nodeId} ${r.url} (pid ${r.child.pid})`).join(', ');
    log.info(`replicas: ${replicaList}; replica-1 signs through a remote signer, ${REMOTE_SIGNER_DELAY_MS} ms per signature`);
    log.info(`validators: ${validators.join(', ')}; lease ${LEASE_MS} ms`);
    log.info('per slot: signatures = answers carrying a signature (a node that lost an answer to the kill gets the same one back),');
    log.info(`already-signed / refused = 409 DutyAlreadySigned / SlashingProtection (node-2 builds a different block 0 every ${EQUIVOCATION_EVERY}rd slot)`);

    const tally: Tally = { signed: 0, alreadySigned: 0, refused: 0, errors: 0, failovers: 0 };
    const nodes = tokens.map(
      (token, i) =>
        new RemoteHASigner({
          // Each node prefers its own replica and fails over to the others.
          endpoints: [0, 1, 2].map((k) => replicas[(i + k) % 3]!.url),
          token,
          timeoutMs: 15_000,
          onFailover: () => void tally.failovers++,
        }),
    );
    /** Every signature any node was given, per duty: must be one per duty. */
    const received = new Map<string, Set<string>>();
    const requested = new Map<string, Duty>();
    const signDuty = async (node: RemoteHASigner, nodeIndex: number, duty: Duty): Promise<void> => {
      await sleep(Math.floor(Math.random() * 20)); // nodes are never perfectly in step
      const { messageHash, typedData } = payloadOf(duty, nodeIndex);
      try {
        const signature = await node.signWithProtection(duty.validator, messageHash, contextOf(duty), undefined, duty.vote ? { signingMethod: 'digest', typedData } : {});
        tally.signed++;
        received.set(duty.key, (received.get(duty.key) ?? new Set<string>()).add(signature.toLowerCase()));
      } catch (error) {
        if (error instanceof DutyAlreadySignedError) tally.alreadySigned++;
        else if (error instanceof SlashingProtectionError) tally.refused++;
        else {
          tally.errors++;
          if (!signal.aborted) log.warn({ err: error }, `node-${nodeIndex} ${duty.dutyType} slot ${duty.slot}: ${(error as Error).message}`);
        }
      }
    };

    const runStart = Date.now();
    for (let s = 0; s < SLOTS; s++) {
      const slot = firstSlot + s;
      const slotStart = runStart + s * SLOT_MS;
      await sleep(slotStart - Date.now());
      checkpoint();
      const before = { ...tally };
      const duties = dutiesOfSlot(slot, validators);
      for (const duty of duties) requested.set(duty.key, duty);
      let killed = false;
      if (s === KILL_SLOT_INDEX) {
        setTimeout(() => {
          replicas[1]!.kill('SIGKILL');
          killed = true;
        }, KILL_AFTER_MS);
      }
      await Promise.all(nodes.flatMap((node, nodeIndex) => duties.map((duty) => signDuty(node, nodeIndex, duty))));
      checkpoint();
      const takeovers = Number((await db.query<{ n: string }>('SELECT coalesce(sum(takeovers), 0) AS n FROM validator_duties WHERE rollup_address = $1', [ROLLUP])).rows[0]?.n ?? 0);
      const up = replicas.filter((r) => r.running).length;
      log.info(
        `slot ${slot}  duties ${String(duties.length).padStart(2)}  signatures ${String(tally.signed - before.signed).padStart(2)}  ` +
          `already-signed ${String(tally.alreadySigned - before.alreadySigned).padStart(2)}  refused ${tally.refused - before.refused}  ` +
          `errors ${tally.errors - before.errors}  failovers ${String(tally.failovers - before.failovers).padStart(2)}  takeovers (total) ${takeovers}  ` +
          `replicas up ${up}/3  ${((Date.now() - slotStart) / 1000).toFixed(2)} s${killed ? '   <- replica-1 SIGKILLed' : ''}`,
      );
    }

    log.info('verifying the database and every signature the nodes received ...');
    const verdict = await verifyRun(db, { first: firstSlot, last: firstSlot + SLOTS - 1 }, requested, received);
    const { problems } = verdict;
    log.info(
      `duties ${requested.size}, rows ${verdict.rows}, signatures handed out ${tally.signed} (all identical per duty: ${problems.length === 0 ? 'yes' : 'NO'}), ` +
        `already-signed ${tally.alreadySigned}, slashing-protection refusals ${tally.refused}, errors ${tally.errors}, failovers ${tally.failovers}, takeovers ${verdict.takeovers}`,
    );
    if (problems.length > 0) {
      for (const problem of problems.slice(0, 20)) log.error(`VIOLATION ${problem}`);
      throw new Error(`demo failed: ${problems.length} violation(s); replica logs in ${dir}`);
    }
    resources.keepDir = false;
    log.info(`OK: every duty has exactly one signature, and no duty was signed twice with different data (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } finally {
    await db.end().catch(() => {});
  }
}

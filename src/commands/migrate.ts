/** `ha-signer migrate up|down`: applies or reverts the schema migrations (idempotent; safe from several processes). */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV, HA_SIGNER_SCHEMA_VERSION, runMigrations } from '../protection/index.js';
import { createLogger } from '../log.js';
import { readDatabaseIdentityFromUrl } from '../protection/identity.js';
import { type Command, UsageError, databaseUrlFrom, parseFlags } from './common.js';

const USAGE = `Usage: ha-signer migrate up|down [options]

Applies (up) or reverts (down) the protection database's schema migrations. Idempotent; safe from several processes.
  --database-url URL        [${ENV.databaseUrl}] PostgreSQL of the protection database (required)
  --rollup-address 0x..     [${ENV.rollupAddress}] up only: bind the database to this rollup
  --count N                 down only: revert N migrations (default 1)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] trace|debug|info|warn|error|fatal|silent, default info
  -h, --help                this text`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'rollup-address': { type: 'string' },
  count: { type: 'string' },
} as const;

async function run(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags('migrate', args, OPTIONS, true);
  const direction = positionals[0];
  if (direction !== 'up' && direction !== 'down') throw new UsageError(`migrate needs a direction: 'up' or 'down', got ${JSON.stringify(direction ?? '')}`);
  if (positionals.length > 1) throw new UsageError(`migrate takes one direction, got extra arguments: ${positionals.slice(1).join(' ')}`);
  let count: number | undefined;
  if (values.count !== undefined) {
    if (direction !== 'down') throw new UsageError('--count applies to migrate down only');
    if (!/^[1-9][0-9]*$/.test(values.count)) throw new UsageError(`--count: expected a positive integer, got ${JSON.stringify(values.count)}`);
    count = Number(values.count);
  }
  const rollupAddress = (values['rollup-address'] ?? process.env[ENV.rollupAddress])?.trim();
  if (rollupAddress !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(rollupAddress)) {
    throw new UsageError(`--rollup-address (or ${ENV.rollupAddress}): expected 0x followed by 40 hex digits, got ${JSON.stringify(rollupAddress)}`);
  }
  const databaseUrl = databaseUrlFrom(values['database-url']);
  const bindTo = direction === 'up' ? rollupAddress : undefined;
  // The operator keys its one-database-per-rollup rule on the server's identity: report it even when migrating fails.
  const databaseIdentity = direction === 'up' ? await readDatabaseIdentityFromUrl(databaseUrl) : undefined;
  let applied: Awaited<ReturnType<typeof runMigrations>>;
  try {
    applied = await runMigrations({
      databaseUrl,
      direction,
      ...(count !== undefined ? { count } : {}),
      ...(bindTo ? { rollupAddress: bindTo } : {}),
    });
  } catch (err) {
    if (direction === 'up') writeTerminationMessage(JSON.stringify({ msg: 'migrate up failed', error: (err as Error).message, ...(databaseIdentity ? { databaseIdentity } : {}) }));
    throw err;
  }
  const summary = {
    applied,
    ...(databaseIdentity ? { databaseIdentity } : {}),
    ...(direction === 'up' ? { schemaVersion: String(HA_SIGNER_SCHEMA_VERSION) } : {}),
    ...(bindTo ? { rollupAddress: bindTo.toLowerCase() } : {}),
  };
  const msg = `migrate ${direction} done`;
  createLogger({ component: 'migrate' }).info(summary, msg);
  // The operator reads the schema version from the Job pod's termination message.
  if (direction === 'up') writeTerminationMessage(JSON.stringify({ msg, ...summary }));
}

/** Writes the pod's termination message when running in a container that has one (Kubernetes creates the file). */
function writeTerminationMessage(message: string): void {
  const path = join(process.env.HA_SIGNER_FS_ROOT ?? '/', 'dev/termination-log');
  if (!existsSync(path)) return;
  try {
    writeFileSync(path, message);
  } catch {
    // A read-only or missing termination log only costs the operator the reported schema version.
  }
}

export const command: Command = { usage: () => USAGE, run };

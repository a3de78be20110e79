/** `ha-signer migrate up|down`: applies or reverts the schema migrations (idempotent; safe from several processes). */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV, HA_SIGNER_SCHEMA_VERSION, migrate } from '../protection/index.js';
import { createLogger } from '../log.js';
import { readDatabaseIdentityFromUrl } from '../protection/identity.js';
import { type Command, UsageError, databaseUrlFrom, parseFlags } from './common.js';

const USAGE = `Usage: ha-signer migrate up|down [options]

Applies (up) or reverts (down) the protection database's schema migrations. Idempotent; safe from several processes.
  --database-url URL        [${ENV.databaseUrl}] PostgreSQL of the protection database (required)
  --rollup-address 0x..     [${ENV.rollupAddress}] up only: bind the database to this rollup (required to adopt a
                            database that already holds duties, e.g. an existing Aztec HA database)
  --aztec-schema 1|2        up only: Aztec schema to leave the database at (default: keep what it has; a new
                            database gets 1, what @aztec/validator-ha-signer 4.1.x accepts). Never lowered.
  --count N                 down only: revert N of ha-signer's migrations (default 1). A down never drops, truncates
                            or alters Aztec's tables and deletes no row; it removes ha-signer's guards only
  --force                   down only: remove the protection triggers even though pruned history exists (prints
                            the protection that is lost until the next migrate up)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] trace|debug|info|warn|error|fatal|silent, default info
  -h, --help                this text`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'rollup-address': { type: 'string' },
  count: { type: 'string' },
  'aztec-schema': { type: 'string' },
  force: { type: 'boolean' },
} as const;

async function run(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags('migrate', args, OPTIONS, true);
  const direction = positionals[0];
  if (direction !== 'up' && direction !== 'down')
    throw new UsageError(`migrate needs a direction: 'up' or 'down', got ${JSON.stringify(direction ?? '')}`);
  if (positionals.length > 1) throw new UsageError(`migrate takes one direction, got extra arguments: ${positionals.slice(1).join(' ')}`);
  let count: number | undefined;
  if (values.count !== undefined) {
    if (direction !== 'down') throw new UsageError('--count applies to migrate down only');
    if (!/^[1-9][0-9]*$/.test(values.count))
      throw new UsageError(`--count: expected a positive integer, got ${JSON.stringify(values.count)}`);
    count = Number(values.count);
  }
  const rollupAddress = (values['rollup-address'] ?? process.env[ENV.rollupAddress])?.trim();
  if (rollupAddress !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(rollupAddress)) {
    throw new UsageError(
      `--rollup-address (or ${ENV.rollupAddress}): expected 0x followed by 40 hex digits, got ${JSON.stringify(rollupAddress)}`,
    );
  }
  const aztecSchema = aztecSchemaFlag(direction, values['aztec-schema']);
  if (values.force && direction !== 'down') throw new UsageError('--force applies to migrate down only');
  const databaseUrl = databaseUrlFrom(values['database-url']);
  const bindTo = direction === 'up' ? rollupAddress : undefined;
  // The operator keys its one-database-per-rollup rule on the server's identity: report it even when migrating fails.
  const databaseIdentity = direction === 'up' ? await readDatabaseIdentityFromUrl(databaseUrl) : undefined;
  let report: Awaited<ReturnType<typeof migrate>>;
  try {
    report = await migrate({
      databaseUrl,
      direction,
      ...(count !== undefined ? { count } : {}),
      ...(bindTo ? { rollupAddress: bindTo } : {}),
      ...(aztecSchema ? { aztecSchema } : {}),
      ...(values.force ? { force: true } : {}),
    });
  } catch (err) {
    if (direction === 'up')
      writeTerminationMessage(
        JSON.stringify({ msg: 'migrate up failed', error: (err as Error).message, ...(databaseIdentity ? { databaseIdentity } : {}) }),
      );
    throw err;
  }
  // What the run did and did not touch (down: removed/untouched/protectionLost; up: Aztec schema and who accepts it).
  const { direction: _direction, ...details } = report;
  const summary = {
    ...details,
    ...(databaseIdentity ? { databaseIdentity } : {}),
    ...(direction === 'up' ? { schemaVersion: String(HA_SIGNER_SCHEMA_VERSION) } : {}),
    ...(bindTo ? { rollupAddress: bindTo.toLowerCase() } : {}),
  };
  const msg = `migrate ${direction} done`;
  createLogger({ component: 'migrate' }).info(summary, msg);
  // The operator reads the schema version from the Job pod's termination message.
  if (direction === 'up') writeTerminationMessage(JSON.stringify({ msg, ...summary }));
}

/** --aztec-schema 1|2: up only; the Aztec schema_version to leave the database at. */
function aztecSchemaFlag(direction: 'up' | 'down', raw: string | undefined): 1 | 2 | undefined {
  if (raw === undefined) return undefined;
  if (direction !== 'up') throw new UsageError('--aztec-schema applies to migrate up only');
  if (raw !== '1' && raw !== '2')
    throw new UsageError(`--aztec-schema: expected 1 or 2 (Aztec's schema_version), got ${JSON.stringify(raw)}`);
  return raw === '1' ? 1 : 2;
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

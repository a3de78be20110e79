#!/usr/bin/env node
/** ha-signer: one CLI for every role of the image (migrate, serve, operator, demo). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, ENV, HA_SIGNER_SCHEMA_VERSION, parseDatabaseUrl, rebindRollup, runMigrations } from './protection/index.js';

const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `ha-signer ${VERSION}: high-availability signer with slashing protection for Aztec validators

Usage:
  ha-signer migrate up|down [--database-url URL] [--rollup-address 0x..] [--count N]
  ha-signer rebind-rollup --from 0xOLD --to 0xNEW [--database-url URL]
  ha-signer serve [options]        (see ha-signer serve --help)
  ha-signer operator [options]     (see ha-signer operator --help)
  ha-signer demo                   runs the end-to-end demo on an embedded PostgreSQL
  ha-signer --version

The database URL may also come from ${ENV.databaseUrl}.`;

export class UsageError extends Error {}

function databaseUrlFrom(flag: string | undefined): string {
  const raw = flag ?? process.env[ENV.databaseUrl];
  if (!raw) throw new UsageError(`--database-url (or ${ENV.databaseUrl}) is required: a postgresql://user:password@host:5432/db URL`);
  return parseDatabaseUrl(flag ? '--database-url' : ENV.databaseUrl, raw);
}

async function migrate(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'database-url': { type: 'string' },
      'rollup-address': { type: 'string' },
      count: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return void console.log(USAGE);
  const direction = positionals[0];
  if (direction !== 'up' && direction !== 'down') throw new UsageError(`migrate needs a direction: 'up' or 'down', got ${JSON.stringify(direction ?? '')}`);
  if (positionals.length > 1) throw new UsageError(`migrate takes one direction, got extra arguments: ${positionals.slice(1).join(' ')}`);
  let count: number | undefined;
  if (values.count !== undefined) {
    if (direction !== 'down') throw new UsageError('--count applies to migrate down only');
    if (!/^[1-9][0-9]*$/.test(values.count)) throw new UsageError(`--count: expected a positive integer, got ${JSON.stringify(values.count)}`);
    count = Number(values.count);
  }
  const rollupAddress = values['rollup-address'] ?? process.env[ENV.rollupAddress];
  if (rollupAddress !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(rollupAddress.trim())) {
    throw new UsageError(`--rollup-address (or ${ENV.rollupAddress}): expected 0x followed by 40 hex digits, got ${JSON.stringify(rollupAddress)}`);
  }
  const databaseUrl = databaseUrlFrom(values['database-url']);
  const applied = await runMigrations({
    databaseUrl,
    direction,
    ...(count !== undefined ? { count } : {}),
    ...(rollupAddress && direction === 'up' ? { rollupAddress: rollupAddress.trim() } : {}),
  });
  const summary = JSON.stringify({
    msg: `migrate ${direction} done`,
    applied,
    ...(direction === 'up' ? { schemaVersion: String(HA_SIGNER_SCHEMA_VERSION) } : {}),
    ...(rollupAddress && direction === 'up' ? { rollupAddress: rollupAddress.trim().toLowerCase() } : {}),
  });
  console.log(summary);
  // The operator reads the schema version from the Job pod's termination message.
  if (direction === 'up') writeTerminationMessage(summary);
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

async function rebind(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { 'database-url': { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
  });
  if (!values.from || !values.to) throw new UsageError('rebind-rollup needs --from <bound rollup address> and --to <new rollup address>');
  await rebindRollup(databaseUrlFrom(values['database-url']), values.from, values.to);
  console.log(JSON.stringify({ msg: 'rollup binding changed', from: values.from.toLowerCase(), to: values.to.toLowerCase() }));
}

type Command = (args: string[]) => Promise<void>;

async function lazy(path: string, name: string): Promise<Command> {
  const module = (await import(path)) as Record<string, Command>;
  const command = module[name];
  if (!command) throw new Error(`${path} has no ${name}`);
  return command;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case '--version':
      case 'version':
        console.log(VERSION);
        return 0;
      case undefined:
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      case 'migrate':
        await migrate(rest);
        return 0;
      case 'rebind-rollup':
        await rebind(rest);
        return 0;
      case 'serve':
        await (await lazy('./signer/serve.js', 'serveCommand'))(rest);
        return 0;
      case 'operator':
        await (await lazy('./operator/main.js', 'operatorCommand'))(rest);
        return 0;
      case 'demo':
        await (await lazy('./demo/demo.js', 'demoCommand'))(rest);
        return 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; run ha-signer --help`);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`ha-signer: ${(error as Error).message}`);
      return 2;
    }
    console.error(`ha-signer ${command}: ${(error as Error).message}`);
    return 1;
  }
}

const exitCode = await main(process.argv.slice(2));
if (exitCode !== 0) process.exitCode = exitCode;

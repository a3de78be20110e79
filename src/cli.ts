#!/usr/bin/env node
/** ha-signer: one CLI for every role of the image. Each command lives in src/commands/<command>.ts. */
import { type Command, UsageError, VERSION, wantsHelp } from './commands/common.js';
import { LOG_ENV, LOG_LEVELS, createLogger, errorSummary, logLevelFromEnv, parseLogFormat, parseLogLevel } from './log.js';
import { HistoryRefusedError } from './protection/history.js';
import {
  ConfigError,
  DatabaseUnavailableError,
  ENV,
  MigrationRefusedError,
  RollupBindingError,
  SchemaVersionError,
} from './protection/index.js';

/** Literal dynamic imports: the compiler checks every module, and a command loads only what it needs. */
const COMMANDS = {
  migrate: async () => (await import('./commands/migrate.js')).command,
  'rebind-rollup': async () => (await import('./commands/rebind-rollup.js')).command,
  serve: async () => (await import('./commands/serve.js')).command,
  operator: async () => (await import('./commands/operator.js')).command,
  demo: async () => (await import('./commands/demo.js')).command,
  history: async () => (await import('./commands/history.js')).command,
  watermark: async () => (await import('./commands/watermark.js')).command,
  check: async () => (await import('./commands/check.js')).command,
  'operator-stop': async () => (await import('./commands/operator-stop.js')).command,
} satisfies Record<string, () => Promise<Command>>;

type CommandName = keyof typeof COMMANDS;

const USAGE = `ha-signer ${VERSION}: high-availability signer with slashing protection for Aztec validators

Usage:
  ha-signer migrate up|down [--database-url URL] [--rollup-address 0x..] [--aztec-schema 1|2] [--count N] [--force]
  ha-signer rebind-rollup --from 0xOLD --to 0xNEW [--database-url URL]
  ha-signer serve [options]        the signer service
  ha-signer operator [options]     the Kubernetes operator
  ha-signer demo [options]         the end-to-end demo
  ha-signer history export [--output FILE]     slashing-protection history as a JSON interchange document
  ha-signer history import FILE [--dry-run]    merge one: adds history, raises watermarks, reports conflicts
  ha-signer watermark raise --validator 0x.. --slot N    refuse every duty at or below slot N (recovery)
  ha-signer check ready (--url URL | --service NAME) [--timeout 60s]    wait for a health endpoint (helm test)
  ha-signer operator-stop --deployment NAME [--namespace NS]    scale the operator to 0, wait (pre-delete hook)
  ha-signer --version | -V
  ha-signer <command> --help       the command's usage and flags (also: ha-signer help <command>)

Every command takes --log-level ${LOG_LEVELS.join('|')} [${LOG_ENV.level}], default info.
Logs are JSON lines; pretty-printed on a terminal or with ${LOG_ENV.format}=pretty (json to force JSON).
The database URL may also come from ${ENV.databaseUrl}.`;

const isCommand = (name: string): name is CommandName => Object.hasOwn(COMMANDS, name);

/**
 * Takes the global --log-level flag out of the arguments (wherever it stands, before a `--`) and hands it to every
 * logger through HA_SIGNER_LOG_LEVEL, the variable `serve` and the operator read too.
 */
export function extractLogLevel(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--log-level' || arg.startsWith('--log-level=')) {
      const value = arg === '--log-level' ? argv[++i] : arg.slice('--log-level='.length);
      if (value === undefined || value.startsWith('-')) throw new UsageError(`--log-level needs a value: one of ${LOG_LEVELS.join(', ')}`);
      env[LOG_ENV.level] = parseLogLevel('--log-level', value);
      continue;
    }
    rest.push(arg);
  }
  return rest;
}

function checkLogSettings(env: NodeJS.ProcessEnv): void {
  logLevelFromEnv(env);
  const format = env[LOG_ENV.format];
  if (format !== undefined && format.trim() !== '') parseLogFormat(LOG_ENV.format, format);
}

/** `ha-signer help [command [subcommand]]`: the global usage, or that command's. */
async function helpFor([name, subcommand]: string[]): Promise<string> {
  if (name === undefined || name.startsWith('-')) return USAGE;
  if (!isCommand(name)) throw new UsageError(`unknown command ${JSON.stringify(name)}; run ha-signer --help`);
  return (await COMMANDS[name]()).usage(subcommand);
}

function isRefusal(error: unknown): boolean {
  const { code } = (error ?? {}) as { code?: unknown };
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // a system error: ECONNREFUSED, ENOENT, ...
  return [HistoryRefusedError, MigrationRefusedError, RollupBindingError, SchemaVersionError, DatabaseUnavailableError].some(
    (kind) => error instanceof kind,
  );
}

function isUsageError(error: unknown): boolean {
  return (
    error instanceof UsageError ||
    error instanceof ConfigError ||
    // Kubernetes client errors carry a numeric HTTP code: only a string code is a parse error's.
    String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')
  );
}

export async function main(argv: string[]): Promise<number> {
  let name: string | undefined;
  try {
    const [first, ...rest] = extractLogLevel(argv, process.env);
    checkLogSettings(process.env); // a bad HA_SIGNER_LOG_LEVEL/FORMAT is a usage error before anything runs
    name = first;
    switch (name) {
      case '--version':
      case '-V':
      case 'version':
        console.log(VERSION);
        return 0;
      case '--help':
      case '-h':
      case 'help':
        console.log(await helpFor(rest));
        return 0;
      case undefined:
        console.error(USAGE);
        return 2;
    }
    if (!isCommand(name)) throw new UsageError(`unknown command ${JSON.stringify(name)}; run ha-signer --help`);
    const command = await COMMANDS[name]();
    if (wantsHelp(rest)) {
      console.log(command.usage(rest.find((arg) => !arg.startsWith('-'))));
      return 0;
    }
    await command.run(rest);
    return 0;
  } catch (error) {
    if (isUsageError(error)) {
      console.error(`ha-signer: ${(error as Error).message}`);
      return 2;
    }
    // A refusal the code foresaw says all there is to say; a stack helps only with the unforeseen.
    const err = isRefusal(error) ? errorSummary(error) : error;
    createLogger({ component: name ?? 'cli', destination: 'stderr' }).error({ err }, `${name} failed: ${(error as Error).message}`);
    return 1;
  }
}

const exitCode = await main(process.argv.slice(2));
if (exitCode !== 0) process.exitCode = exitCode;

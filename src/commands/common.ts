/** What every `ha-signer` command shares: the version, usage errors (exit 2), flag parsing with --help/-h. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { ENV, parseDatabaseUrl } from '../protection/index.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

/** A malformed command line: the CLI prints the message and exits 2. The message names the flag and the fix. */
export class UsageError extends Error {}

/** One `ha-signer` command: its usage text (per subcommand where it has some) and its action. */
export interface Command {
  usage(subcommand?: string): string;
  run(args: string[]): Promise<void>;
}

/** True when the arguments ask for help (before a `--` terminator): answered without running anything. */
export function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** node:util parseArgs, strict, with errors turned into UsageErrors that name the command. */
export function parseFlags<T extends ParseArgsOptionsConfig>(command: string, args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(`${command}: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}; run ha-signer ${command} --help`); // one line (node words some errors on three)
  }
}

export function databaseUrlFrom(flag: string | undefined): string {
  const raw = flag ?? process.env[ENV.databaseUrl];
  if (!raw) throw new UsageError(`--database-url (or ${ENV.databaseUrl}) is required: a postgresql://user:password@host:5432/db URL`);
  return parseDatabaseUrl(flag ? '--database-url' : ENV.databaseUrl, raw);
}

/** `ha-signer history export|import`: slashing-protection history in and out (src/protection/history.ts). */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import pg from 'pg';
import { createLogger } from '../log.js';
import { ENV } from '../protection/index.js';
import { HistoryDocumentError, parseHistoryDocument } from '../protection/history-document.js';
import { exportHistory, importHistory } from '../protection/history.js';
import { type Command, UsageError, VERSION, databaseUrlFrom, parseFlags } from './common.js';

/** Exit code of an import that found conflicts (everything else was applied; the conflicts were not). */
export const EXIT_CONFLICTS = 3;
const MAX_CONFLICT_LINES = 100;

const COMMON = `  --database-url URL        [${ENV.databaseUrl}] PostgreSQL of the protection database (required)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] default info
  -h, --help                this text`;

const EXPORT_USAGE = `Usage: ha-signer history export [--output FILE] [--database-url URL]

Writes the database's slashing-protection history as a versioned JSON interchange document: the rollup, and per
validator every signed duty (slot, duty type, block index, block number, message hash, signature) and its low
watermark. One consistent snapshot; duties still in progress are not history and are counted in the log.
  --output FILE, -o FILE    write here (atomically, mode 0600) instead of stdout; logs go to stderr
${COMMON}`;

const IMPORT_USAGE = `Usage: ha-signer history import FILE [--dry-run] [--database-url URL]

Merges an interchange document (FILE, or - for stdin) into the database, in one transaction. It only adds: missing
signed duties are inserted, low watermarks are raised (never lowered). A duty this database holds with another
message hash, or still in progress, is a conflict: reported, not applied. The database must be bound to the
document's rollup. Exit 0: merged; ${EXIT_CONFLICTS}: merged except the reported conflicts; 1/2: nothing imported.
  --dry-run                 report what would change, change nothing
${COMMON}`;

const USAGE = `Usage: ha-signer history export|import ...

  ha-signer history export [--output FILE]          the history as a JSON interchange document
  ha-signer history import FILE [--dry-run]         merge a document: add history, raise watermarks, report conflicts
See ha-signer history export --help and ha-signer history import --help. Backups and restores: docs/protection.md.`;

function usage(subcommand?: string): string {
  if (subcommand === 'export') return EXPORT_USAGE;
  if (subcommand === 'import') return IMPORT_USAGE;
  return USAGE;
}

async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'ha-signer history' });
  client.on('error', () => {}); // a dropped connection fails the running query, which reports it
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function runExport(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(
    'history export',
    args,
    { output: { type: 'string', short: 'o' }, 'database-url': { type: 'string' } },
    true,
  );
  if (positionals.length) throw new UsageError(`history export takes no arguments, got ${positionals.join(' ')} (use --output FILE)`);
  const url = databaseUrlFrom(values['database-url']);
  const output = values.output;
  const log = createLogger({ component: 'history', destination: output === undefined ? 'stderr' : 'stdout' });
  const { document, inProgress } = await withClient(url, (client) => exportHistory(client, `ha-signer ${VERSION}`));
  const text = `${JSON.stringify(document, null, 2)}\n`;
  if (output === undefined) {
    process.stdout.write(text);
  } else {
    const temporary = `${output}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
      await rename(temporary, output);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
  const duties = document.data.reduce((n, v) => n + v.signedDuties.length, 0);
  const watermarks = document.data.filter((v) => v.lowWatermarkSlot !== null).length;
  log.info(
    { rollupAddress: document.metadata.rollupAddress, validators: document.data.length, duties, watermarks, output: output ?? 'stdout' },
    'history exported',
  );
  if (inProgress > 0)
    log.warn(
      { inProgress },
      `${inProgress} duties were in progress and are not in the export (no signature yet); export again when the signers are idle, or raise the watermarks after a restore`,
    );
}

async function runImport(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(
    'history import',
    args,
    { 'dry-run': { type: 'boolean' }, 'database-url': { type: 'string' } },
    true,
  );
  if (positionals.length !== 1) throw new UsageError('history import needs one FILE (the interchange document; - reads stdin)');
  const file = positionals[0]!;
  const url = databaseUrlFrom(values['database-url']);
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`history import: cannot read ${file}: ${(error as Error).message}`);
  }
  let document;
  try {
    document = parseHistoryDocument(JSON.parse(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw new UsageError(`history import: ${file} is not JSON: ${error.message}`);
    if (error instanceof HistoryDocumentError) throw new UsageError(`history import: ${file}: ${error.message}`);
    throw error;
  }
  const log = createLogger({ component: 'history' });
  const report = await withClient(url, (client) => importHistory(client, document, { dryRun: values['dry-run'] === true }));
  for (const conflict of report.conflicts.slice(0, MAX_CONFLICT_LINES))
    log.warn({ conflict }, `conflict, not applied: ${conflict.validator} slot ${conflict.slot} ${conflict.dutyType}: ${conflict.reason}`);
  if (report.conflicts.length > MAX_CONFLICT_LINES) log.warn(`${report.conflicts.length - MAX_CONFLICT_LINES} more conflicts not listed`);
  const { conflicts, ...summary } = report;
  log.info({ ...summary, conflicts: conflicts.length }, report.dryRun ? 'history import dry run: nothing changed' : 'history imported');
  if (conflicts.length > 0) process.exitCode = EXIT_CONFLICTS;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const command: Command = {
  usage,
  run: async (args) => {
    const [sub, ...rest] = args;
    if (sub === 'export') return runExport(rest);
    if (sub === 'import') return runImport(rest);
    throw new UsageError(`history needs a subcommand: export or import, got ${JSON.stringify(sub ?? '')}; run ha-signer history --help`);
  },
};

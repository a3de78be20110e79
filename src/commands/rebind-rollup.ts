/** `ha-signer rebind-rollup`: moves a database's rollup binding after a rollup upgrade, keeping the history. */
import { ENV, rebindRollup } from '../protection/index.js';
import { createLogger } from '../log.js';
import { type Command, UsageError, databaseUrlFrom, parseFlags } from './common.js';

const USAGE = `Usage: ha-signer rebind-rollup --from 0xOLD --to 0xNEW [--database-url URL]

Changes the rollup a protection database is bound to (after a rollup upgrade); the signing history is kept.
  --from 0x..               the rollup address the database is bound to now (required)
  --to 0x..                 the new rollup address (required)
  --database-url URL        [${ENV.databaseUrl}] PostgreSQL of the protection database (required)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] trace|debug|info|warn|error|fatal|silent, default info
  -h, --help                this text`;

const OPTIONS = { 'database-url': { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } } as const;

async function run(args: string[]): Promise<void> {
  const { values } = parseFlags('rebind-rollup', args, OPTIONS);
  if (!values.from) throw new UsageError('rebind-rollup needs --from <the rollup address the database is bound to>');
  if (!values.to) throw new UsageError('rebind-rollup needs --to <the new rollup address>');
  for (const [flag, value] of [
    ['--from', values.from],
    ['--to', values.to],
  ] as const)
    if (!/^0x[0-9a-fA-F]{40}$/.test(value))
      throw new UsageError(`${flag}: expected 0x followed by 40 hex digits, got ${JSON.stringify(value)}`);
  await rebindRollup(databaseUrlFrom(values['database-url']), values.from, values.to);
  createLogger({ component: 'rebind-rollup' }).info(
    { from: values.from.toLowerCase(), to: values.to.toLowerCase() },
    'rollup binding changed',
  );
}

export const command: Command = { usage: () => USAGE, run };

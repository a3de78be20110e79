/** `ha-signer watermark raise`: manual recovery; no duty at or below the slot is signed again (never lowered). */
import pg from 'pg';
import { createLogger } from '../log.js';
import { ENV } from '../protection/index.js';
import { raiseWatermark } from '../protection/history.js';
import { type Command, UsageError, databaseUrlFrom, parseFlags } from './common.js';

const RAISE_USAGE = `Usage: ha-signer watermark raise --validator 0x.. [--validator 0x.. ...] --slot N [--database-url URL]

Raises each validator's low watermark to slot N: the database then refuses every duty of that validator at or
below N. Use it after restoring a backup or failing over to a replica that may lack recent history: raise to the
highest slot the validators may have signed. A watermark is never lowered; a lower N leaves it and says so.
  --validator 0x..          validator address (repeat for several; required)
  --slot N                  the slot (decimal; required)
  --database-url URL        [${ENV.databaseUrl}] PostgreSQL of the protection database (required)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] default info
  -h, --help                this text`;

async function raise(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(
    'watermark raise',
    args,
    { validator: { type: 'string', multiple: true }, slot: { type: 'string' }, 'database-url': { type: 'string' } },
    true,
  );
  if (positionals.length) throw new UsageError(`watermark raise takes no arguments, got ${positionals.join(' ')}`);
  const validators = values.validator ?? [];
  if (validators.length === 0) throw new UsageError('watermark raise needs --validator 0x.. (the validator address; repeat for several)');
  for (const v of validators)
    if (!/^0x[0-9a-fA-F]{40}$/.test(v))
      throw new UsageError(`--validator: expected 0x followed by 40 hex digits, got ${JSON.stringify(v)}`);
  const slot = values.slot;
  if (slot === undefined) throw new UsageError('watermark raise needs --slot N (no duty at or below it will be signed)');
  if (!/^(0|[1-9][0-9]*)$/.test(slot) || BigInt(slot) > (1n << 63n) - 1n)
    throw new UsageError(`--slot: expected a non-negative integer (at most 2^63-1), got ${JSON.stringify(slot)}`);
  const url = databaseUrlFrom(values['database-url']);
  const log = createLogger({ component: 'watermark' });
  const client = new pg.Client({ connectionString: url, application_name: 'ha-signer watermark' });
  client.on('error', () => {});
  await client.connect();
  try {
    for (const validator of validators) {
      const result = await raiseWatermark(client, validator, slot);
      if (result.raised)
        log.info(result, `low watermark of ${result.validator} raised from ${result.previous ?? '(none)'} to ${result.lowWatermarkSlot}`);
      else
        log.warn(
          result,
          `low watermark of ${result.validator} unchanged: already at ${result.lowWatermarkSlot}, at or above ${slot} (never lowered)`,
        );
    }
  } finally {
    await client.end().catch(() => {});
  }
}

export const command: Command = {
  usage: () => RAISE_USAGE,
  run: async (args) => {
    const [sub, ...rest] = args;
    if (sub === 'raise') return raise(rest);
    throw new UsageError(`watermark needs a subcommand: raise, got ${JSON.stringify(sub ?? '')}; run ha-signer watermark raise --help`);
  },
};

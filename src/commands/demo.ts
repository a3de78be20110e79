/** `ha-signer demo` (`npm run demo`): the end-to-end demo (src/demo/demo.ts); loaded only when run. */
import { ENV } from '../protection/index.js';
import type { Command } from './common.js';

const USAGE = `Usage: ha-signer demo

Runs the end-to-end demo: 3 signer replicas (ha-signer serve processes), 3 HA validator nodes with the same keys,
one replica SIGKILLed mid-run, then checks that every duty was signed exactly once. Takes about 15 s.
Uses the PostgreSQL in ${ENV.databaseUrl} when set, otherwise an embedded PostgreSQL.
  -h, --help                this text`;

export const command: Command = {
  usage: () => USAGE,
  run: async (args) => (await import('../demo/demo.js')).demoCommand(args),
};

/** `ha-signer operator`: the Kubernetes operator (src/operator/main.ts); loaded only when run, so --help is fast. */
import { OPERATOR_USAGE } from '../operator/usage.js';
import type { Command } from './common.js';

const FOOTER = `
  --log-level LEVEL                 [HA_SIGNER_LOG_LEVEL] trace|debug|info|warn|error|fatal|silent, default info
  -h, --help                        this text`;

export const command: Command = {
  usage: () => OPERATOR_USAGE + FOOTER,
  run: async (args) => (await import('../operator/main.js')).operatorCommand(args),
};

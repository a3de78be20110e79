/** `ha-signer operator`: the Kubernetes operator (src/operator/main.ts). */
import { OPERATOR_USAGE, operatorCommand } from '../operator/main.js';
import type { Command } from './common.js';

const FOOTER = `
  --log-level LEVEL                 [HA_SIGNER_LOG_LEVEL] trace|debug|info|warn|error|fatal|silent, default info
  -h, --help                        this text`;

export const command: Command = { usage: () => OPERATOR_USAGE + FOOTER, run: operatorCommand };

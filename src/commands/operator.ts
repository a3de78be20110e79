/** `ha-signer operator`: the Kubernetes operator (src/operator/main.ts). */
import { OPERATOR_USAGE, operatorCommand } from '../operator/main.js';
import type { Command } from './common.js';

export const command: Command = { usage: () => OPERATOR_USAGE, run: operatorCommand };

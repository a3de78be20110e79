/** `ha-signer serve`: the signer service (src/signer/serve.ts); loaded only when run, so --help starts nothing. */
import { SERVE_USAGE } from '../signer/config.js';
import type { Command } from './common.js';

export const command: Command = {
  usage: () => `${SERVE_USAGE}\n  -h, --help                       this text`,
  run: async (args) => (await import('../signer/serve.js')).serveCommand(args),
};

#!/usr/bin/env node
/** ha-signer: one CLI for every role of the image. Each command lives in src/commands/<command>.ts. */
import { ConfigError, ENV } from './protection/index.js';
import { type Command, UsageError, VERSION, wantsHelp } from './commands/common.js';

/** Literal dynamic imports: the compiler checks every module, and a command loads only what it needs. */
const COMMANDS = {
  migrate: async () => (await import('./commands/migrate.js')).command,
  'rebind-rollup': async () => (await import('./commands/rebind-rollup.js')).command,
  serve: async () => (await import('./commands/serve.js')).command,
  operator: async () => (await import('./commands/operator.js')).command,
  demo: async () => (await import('./commands/demo.js')).command,
} satisfies Record<string, () => Promise<Command>>;

type CommandName = keyof typeof COMMANDS;

const USAGE = `ha-signer ${VERSION}: high-availability signer with slashing protection for Aztec validators

Usage:
  ha-signer migrate up|down [--database-url URL] [--rollup-address 0x..] [--count N]
  ha-signer rebind-rollup --from 0xOLD --to 0xNEW [--database-url URL]
  ha-signer serve [options]        the signer service
  ha-signer operator [options]     the Kubernetes operator
  ha-signer demo                   the end-to-end demo (embedded PostgreSQL unless ${ENV.databaseUrl} is set)
  ha-signer --version | -V
  ha-signer <command> --help       the command's usage and flags

The database URL may also come from ${ENV.databaseUrl}.`;

const isCommand = (name: string): name is CommandName => Object.hasOwn(COMMANDS, name);

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    switch (name) {
      case '--version':
      case '-V':
      case 'version':
        console.log(VERSION);
        return 0;
      case '--help':
      case '-h':
      case 'help':
        console.log(USAGE);
        return 0;
      case undefined:
        console.error(USAGE);
        return 2;
    }
    if (!isCommand(name)) throw new UsageError(`unknown command ${JSON.stringify(name)}; run ha-signer --help`);
    const command = await COMMANDS[name]();
    if (wantsHelp(rest)) {
      console.log(command.usage(rest.find((arg) => !arg.startsWith('-'))));
      return 0;
    }
    await command.run(rest);
    return 0;
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`ha-signer: ${(error as Error).message}`);
      return 2;
    }
    console.error(`ha-signer ${name}: ${(error as Error).message}`);
    return 1;
  }
}

const exitCode = await main(process.argv.slice(2));
if (exitCode !== 0) process.exitCode = exitCode;

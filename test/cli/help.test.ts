/** The CLI answers --help/-h per command without running anything, --version, and usage errors with exit 2. */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cleanEnv, runCli } from './support.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

beforeAll(() => assertBuilt());

/**
 * Each entry: the arguments before --help and a phrase its own usage must contain. The environment points every
 * command at things that would make it act (a database, a rollup, a kubeconfig): help must not touch them.
 */
const COMMANDS: [string[], string][] = [
  [[], 'Usage:'],
  [['migrate'], 'ha-signer migrate up|down'],
  [['migrate', 'up'], 'ha-signer migrate up|down'],
  [['migrate', 'down'], '--count N'],
  [['rebind-rollup'], 'ha-signer rebind-rollup --from'],
  [['serve'], 'ha-signer serve [options]'],
  [['operator'], 'reconciles ValidatorHASigner'],
  [['demo'], 'ha-signer demo'],
  [['history'], 'ha-signer history export|import'],
  [['history', 'export'], 'ha-signer history export [--output FILE]'],
  [['history', 'import'], 'ha-signer history import FILE [--dry-run]'],
  [['watermark'], 'ha-signer watermark raise --validator'],
  [['watermark', 'raise'], 'ha-signer watermark raise --validator'],
  [['check'], 'ha-signer check ready'],
  [['check', 'ready'], 'ha-signer check ready'],
  [['operator-stop'], 'ha-signer operator-stop --deployment'],
];

/** Would make each command do something real if it ran: an unreachable database, so a run fails loudly instead. */
const ACTIVE_ENV = cleanEnv({
  VALIDATOR_HA_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/none',
  VALIDATOR_HA_ROLLUP_ADDRESS: '0x000000000000000000000000000000000000de30',
  HA_SIGNER_OPERATOR_IMAGE: 'example/ha-signer:1',
  POD_NAMESPACE: 'default',
});

describe('--help', () => {
  for (const [args, phrase] of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      it(`ha-signer ${[...args, flag].join(' ')}: its own usage, exit 0 within 2 s, nothing started`, async () => {
        const run = runCli([...args, flag], ACTIVE_ENV);
        const { code, ms } = await run.exited;
        expect(code).toBe(0);
        expect(ms).toBeLessThan(2_000);
        const out = run.stdout.join('\n');
        expect(out).toContain(phrase);
        expect(out).toMatch(/-h, --help|--help/);
        // Nothing ran: no log line (every command logs JSON lines when it starts), nothing on stderr.
        expect(run.stdout.some((line) => line.startsWith('{'))).toBe(false);
        expect(run.stderr.join('\n')).toBe('');
      });
    }
  }

  it('help after other flags still answers help (serve --port 1 --help)', async () => {
    const run = runCli(['serve', '--port', '1', '--help'], ACTIVE_ENV);
    expect((await run.exited).code).toBe(0);
    expect(run.stdout.join('\n')).toContain('ha-signer serve');
  });

  it('--log-level may stand before the command (ha-signer --log-level=debug migrate --help)', async () => {
    const run = runCli(['--log-level=debug', 'migrate', '--help']);
    expect((await run.exited).code).toBe(0);
    expect(run.stdout.join('\n')).toContain('ha-signer migrate up|down');
  });

  it('ha-signer help <command> prints that command usage', async () => {
    const run = runCli(['help', 'rebind-rollup']);
    expect((await run.exited).code).toBe(0);
    expect(run.stdout.join('\n')).toContain('--from 0x..');
  });
});

describe('--version', () => {
  for (const flag of ['--version', '-V']) {
    it(`ha-signer ${flag} prints the package version`, async () => {
      const run = runCli([flag]);
      expect((await run.exited).code).toBe(0);
      expect(run.stdout.join('\n').trim()).toBe(VERSION);
    });
  }
});

describe('usage errors: exit 2, naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [['migrate', 'sideways'], /migrate needs a direction: 'up' or 'down'/],
    [['migrate', 'up', '--count', '2'], /--count applies to migrate down only/],
    [['migrate', 'down', '--count', 'x'], /--count: expected a positive integer/],
    [['migrate', 'up', '--rollup-address', '0x12'], /--rollup-address/],
    [['rebind-rollup', '--from', '0x1'], /--to/],
    [['rebind-rollup', '--frm', '0x1'], /--frm/],
    [['operator', '--workers', 'many', '--leader-election-namespace', 'default', '--image', 'x'], /--workers/],
    [['serve', '--no-such-flag'], /--no-such-flag/],
    [['demo', '--database-url'], /--database-url/],
    [['migrate', 'up', '--log-level', 'loud'], /--log-level: expected one of trace, debug, info/],
    [['nonsense'], /unknown command "nonsense"/],
    [['history'], /history needs a subcommand: export or import/],
    [['history', 'import'], /history import needs one FILE/],
    [['history', 'export', '--output'], /--output/],
    [['watermark', 'raise', '--slot', '5'], /needs --validator/],
    [['watermark', 'raise', '--validator', '0x12', '--slot', '5'], /--validator: expected 0x followed by 40 hex digits/],
    [['watermark', 'raise', '--validator', `0x${'ab'.repeat(20)}`, '--slot', '-3'], /--slot/],
  ];
  for (const [args, message] of cases) {
    it(`ha-signer ${args.join(' ')}`, async () => {
      const run = runCli(args, cleanEnv({ VALIDATOR_HA_DATABASE_URL: 'postgresql://u:p@127.0.0.1:1/none' }));
      const { code } = await run.exited;
      expect(run.stderr.join('\n')).toMatch(message);
      expect(code).toBe(2);
    });
  }

  it('a bad HA_SIGNER_LOG_FORMAT is a usage error naming the variable', async () => {
    const run = runCli(['migrate', 'up'], cleanEnv({ HA_SIGNER_LOG_FORMAT: 'xml' }));
    expect((await run.exited).code).toBe(2);
    expect(run.stderr.join('\n')).toMatch(/HA_SIGNER_LOG_FORMAT: expected one of json, pretty/);
  });

  it('no command at all prints the usage on stderr and exits 2', async () => {
    const run = runCli([]);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr.join('\n')).toContain('Usage:');
  });
});

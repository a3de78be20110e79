/** `ha-signer history export|import` and `watermark raise` as an operator runs them: files, exit codes, log lines. */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../../src/protection/index.js';
import { createTestDatabase } from '../support/postgres.js';
import { ROLLUP, VALIDATOR, attestation, fakeSignature, hash, sql, startSigner, stopAllSigners } from '../support/protection.js';
import { assertBuilt, cleanEnv, expectLogLine, runCli } from './support.js';

let dir: string;

beforeAll(async () => {
  assertBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ha-signer-history-'));
});

afterAll(async () => {
  await stopAllSigners();
  await rm(dir, { recursive: true, force: true });
});

async function bound(prefix: string): Promise<string> {
  const url = await createTestDatabase(prefix);
  await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
  return url;
}

const logLines = (lines: string[]) => lines.filter((l) => l.trim() !== '').map(expectLogLine);

describe('history and watermark commands', () => {
  it('export to a file, import it elsewhere (exit 0), import over a conflict (exit 3), raise a watermark', async () => {
    const source = await bound('cli_hist_src');
    const { signer } = await startSigner(source, { nodeId: 'src' });
    for (let slot = 10; slot < 15; slot++)
      await signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));

    const file = join(dir, 'history.json');
    const exported = runCli(['history', 'export', '--output', file], cleanEnv({ VALIDATOR_HA_DATABASE_URL: source }));
    expect((await exported.exited).code, exported.stderr.join('\n')).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const document = JSON.parse(await readFile(file, 'utf8')) as { data: { signedDuties: unknown[] }[] };
    expect(document.data[0]!.signedDuties).toHaveLength(5);
    expect(logLines(exported.stdout).find((l) => l.msg === 'history exported')).toMatchObject({ duties: 5, validators: 1 });

    // To stdout: the document alone on stdout, the log line on stderr.
    const toStdout = runCli(['history', 'export', '--database-url', source]);
    expect((await toStdout.exited).code).toBe(0);
    expect(JSON.parse(toStdout.stdout.join('\n'))).toMatchObject({ metadata: { rollupAddress: ROLLUP } });
    expect(logLines(toStdout.stderr).map((l) => l.msg)).toContain('history exported');

    const target = await bound('cli_hist_dst');
    const imported = runCli(['history', 'import', file, '--database-url', target]);
    expect((await imported.exited).code, imported.stderr.join('\n')).toBe(0);
    expect(logLines(imported.stdout).find((l) => l.msg === 'history imported')).toMatchObject({ inserted: 5, conflicts: 0 });

    const conflicted = await bound('cli_hist_conflict');
    const here = await startSigner(conflicted, { nodeId: 'here' });
    await here.signer.signWithProtection(VALIDATOR, hash(99), attestation(12), async () => fakeSignature(99));
    const withConflict = runCli(['history', 'import', file, '--database-url', conflicted]);
    expect((await withConflict.exited).code).toBe(3);
    const lines = logLines(withConflict.stdout);
    expect(lines.filter((l) => l.level === 'warn' && String(l.msg).startsWith('conflict, not applied'))).toHaveLength(1);
    expect(lines.find((l) => l.msg === 'history imported')).toMatchObject({ inserted: 4, conflicts: 1 });
    expect(await sql(conflicted, 'SELECT message_hash FROM validator_duties WHERE slot = 12')).toEqual([{ message_hash: hash(99) }]);

    const raise = runCli(['watermark', 'raise', '--validator', VALIDATOR, '--slot', '20', '--database-url', target]);
    expect((await raise.exited).code, raise.stderr.join('\n')).toBe(0);
    const lower = runCli(['watermark', 'raise', '--validator', VALIDATOR, '--slot', '5', '--database-url', target]);
    expect((await lower.exited).code).toBe(0);
    expect(logLines(lower.stdout)[0]).toMatchObject({ level: 'warn', lowWatermarkSlot: '20', raised: false });
    expect(await sql(target, 'SELECT low_slot::text AS low FROM ha_signer_watermarks')).toEqual([{ low: '20' }]);
  });

  it('a malformed document is a usage error naming the field; nothing is written', async () => {
    const target = await bound('cli_hist_bad');
    const file = join(dir, 'bad.json');
    await writeFile(
      file,
      JSON.stringify({
        metadata: { format: 'ha-signer-slashing-protection-interchange', interchangeFormatVersion: 1, rollupAddress: ROLLUP },
        data: [{ validator: VALIDATOR, signedDuties: [{ slot: 'x' }] }],
      }),
    );
    const run = runCli(['history', 'import', file, '--database-url', target]);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr.join('\n')).toMatch(/data\[0\]\.signedDuties\[0\]/);
    expect(await sql(target, 'SELECT count(*)::int AS n FROM validator_duties')).toEqual([{ n: 0 }]);
  });
});

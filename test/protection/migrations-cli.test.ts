/** `ha-signer migrate` as an operator runs it (dist/cli.js): --aztec-schema, --force, adoption, and what a run reports. */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { HA_SIGNER_MIGRATIONS } from '../../src/protection/schema.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  OTHER_ROLLUP,
  ROLLUP,
  VALIDATOR,
  attestation,
  fakeSignature,
  hash,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';
import { aztecMigrate, startAztecNode } from './aztec-support.js';

afterEach(stopAllSigners);

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/cli.js', ...args], {
      env: { ...process.env, VALIDATOR_HA_DATABASE_URL: '', HA_SIGNER_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const lastJson = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').at(-1)!) as Record<string, unknown>;

describe('ha-signer migrate flags', () => {
  it.each([
    [['migrate', 'up', '--database-url', 'postgresql://h/db', '--aztec-schema', '3'], /--aztec-schema: expected 1 or 2/],
    [['migrate', 'down', '--database-url', 'postgresql://h/db', '--aztec-schema', '2'], /--aztec-schema applies to migrate up only/],
    [['migrate', 'up', '--database-url', 'postgresql://h/db', '--force'], /--force applies to migrate down only/],
  ])('%j is a usage error naming the flag', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('up --aztec-schema 2 says which Aztec releases accept the result', async () => {
    const url = await createTestDatabase('cli2');
    const result = await runCli(['migrate', 'up', '--database-url', url, '--rollup-address', ROLLUP, '--aztec-schema', '2']);
    expect(result.code, result.stderr).toBe(0);
    const report = lastJson(result.stdout);
    expect(report).toMatchObject({
      aztecSchemaVersion: 2,
      applied: [...HA_SIGNER_MIGRATIONS, 'aztec:1_initial-schema', 'aztec:2_add-checkpoint-number'],
    });
    expect(String(report.acceptedBy)).toMatch(/4\.1\.x and 4\.3\.0-nightly\.20260417 refuse it/);
  });

  it('down refuses to remove the protection while pruned history exists; --force does it and prints what is lost', async () => {
    const url = await createTestDatabase('cliforce');
    expect((await runCli(['migrate', 'up', '--database-url', url, '--rollup-address', ROLLUP])).code).toBe(0);
    const ours = await startSigner(url);
    for (const slot of [1, 2])
      await ours.signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
    await sql(
      url,
      `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '2 hours' WHERE slot = 1`,
    );
    expect(await ours.db.cleanupOldDuties(3_600_000)).toBe(1);
    await stopAllSigners();
    const all = String(HA_SIGNER_MIGRATIONS.length);
    const refused = await runCli(['migrate', 'down', '--database-url', url, '--count', all]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to revert 1700000000002_ha-signer-protection: 1 validator\(s\) have pruned history/);
    expect(await sql(url, 'SELECT count(*)::int AS n FROM ha_signer_migrations')).toEqual([{ n: HA_SIGNER_MIGRATIONS.length }]);

    const forced = await runCli(['migrate', 'down', '--database-url', url, '--count', all, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    const report = lastJson(forced.stdout);
    expect(report.applied).toEqual([...HA_SIGNER_MIGRATIONS].reverse());
    expect(String(report.protectionLost)).toMatch(new RegExp(`${VALIDATOR} up to slot 1.*no longer refuses those pruned slots`));
    expect((report.untouched as string[]).join('\n')).toMatch(/validator_duties: every row \(1, of which 1 signed\)/);
    expect(await sql(url, 'SELECT slot FROM validator_duties')).toEqual([{ slot: '2' }]);
    expect(await sql(url, 'SELECT low_slot FROM ha_signer_watermarks')).toEqual([{ low_slot: '1' }]);
  });

  it('up on an unbound database that holds duties exits 1 naming the rollups found', async () => {
    const url = await createTestDatabase('cliadopt');
    await aztecMigrate('4.1.2', url, 'up');
    const node = await startAztecNode('4.1.2', url, 'aztec', OTHER_ROLLUP);
    await node.sign(77, hash(77), fakeSignature(77));
    await node.stop();
    const result = await runCli(['migrate', 'up', '--database-url', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`bound to no rollup; found: ${OTHER_ROLLUP} \\(newest slot 77, 1 duties\\)`));
  });
});

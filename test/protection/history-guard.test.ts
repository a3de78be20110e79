/**
 * A database that went back in time is detected: a real PostgreSQL server, a base backup (pg_basebackup), more
 * duties signed, the backup restored in place. Signers with external high-water marks (a file) refuse the duties
 * at or below the mark, at start and while running, until the documented recovery (`ha-signer watermark raise`,
 * or `ha-signer history import` of an export) closes the gap; a signer without marks signs them again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseRegressedError,
  FileHighWaterMarkStore,
  SlashingProtectionError,
  createHASigner,
  runMigrations,
  type ValidatorHASigner,
} from '../../src/protection/index.js';
import { assertBuilt, cleanEnv, runCli } from '../cli/support.js';
import { ROLLUP, VALIDATOR, attestation, blockProposal, fakeSignature, hash } from '../support/protection.js';
import { type BackedUpPostgres, replicationBinariesFor, startBackedUpPostgres } from '../support/replicated-postgres.js';

const bin = replicationBinariesFor('history-guard restore tests');

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return Date.now() - started;
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
  const run = runCli(args, cleanEnv({ HA_SIGNER_LOG_FORMAT: 'json' }));
  const { code } = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

describe.skipIf(!bin)('a database restored from an older base backup', () => {
  let server: BackedUpPostgres;
  let url: string;
  let dir: string;
  let marks: FileHighWaterMarkStore;
  const signers: ValidatorHASigner[] = [];

  beforeAll(async () => {
    assertBuilt();
    server = await startBackedUpPostgres(bin!);
    const admin = new pg.Client({ connectionString: server.server.url });
    await admin.connect();
    await admin.query('CREATE DATABASE signer');
    await admin.end();
    url = server.server.urlFor('signer');
    await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    dir = await mkdtemp(join(tmpdir(), 'ha-signer-marks-'));
    marks = new FileHighWaterMarkStore(join(dir, 'marks.json'));
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(signers.map((s) => s.stop()));
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = async (nodeId: string, withMarks = true): Promise<ValidatorHASigner> => {
    const { signer } = await createHASigner(
      { databaseUrl: url, nodeId, rollupAddress: ROLLUP, pollingIntervalMs: 100, signingTimeoutMs: 2_000 },
      withMarks ? { highWaterMarks: marks, historyGuard: { flushIntervalMs: 100, checkIntervalMs: 250 } } : {},
    );
    await signer.start();
    signers.push(signer);
    return signer;
  };
  const sign = (signer: ValidatorHASigner, slot: number, n = slot, kind: 'attestation' | 'proposal' = 'attestation') =>
    signer.signWithProtection(VALIDATOR, hash(n), kind === 'attestation' ? attestation(slot) : blockProposal(slot), async () =>
      fakeSignature(n),
    );

  it('refuses duties at or below the mark while running and at start; watermark raise (CLI) recovers', async () => {
    const running = await start('running');
    for (let slot = 1; slot <= 3; slot++) {
      await sign(running, slot);
      await sign(running, slot, slot, 'proposal');
    }
    const backup = await server.baseBackup();
    for (let slot = 4; slot <= 6; slot++) {
      await sign(running, slot);
      await sign(running, slot, slot, 'proposal');
    }
    // A history export taken now is what the import path restores later.
    const exported = join(dir, 'history.json');
    expect((await cli(['history', 'export', '--database-url', url, '--output', exported])).code).toBe(0);
    await waitFor('marks written', async () => (await marks.read(ROLLUP)).get(`${VALIDATOR}/ATTESTATION`) === 6n);

    await server.restore(backup); // the database now ends at slot 3
    const detectedMs = await waitFor('regression detected', () => running.gates.historyGuard!.currentRegressions.length === 1);
    console.log(`database restored under a running signer: regression detected after ${detectedMs} ms (check interval 250 ms)`);
    const refused = sign(running, 5, 500);
    await expect(refused).rejects.toBeInstanceOf(DatabaseRegressedError);
    await expect(refused).rejects.toThrow(/restored from a backup or failed over to a replica that lagged/);
    await expect(refused).rejects.toThrow(new RegExp(`ha-signer watermark raise --database-url URL --validator ${VALIDATOR} --slot 6`));
    await expect(sign(running, 6, 600, 'proposal')).rejects.toBeInstanceOf(DatabaseRegressedError);
    // Above the mark nothing was signed before: allowed, and it does not hide the gap below.
    await sign(running, 7);
    await running.gates.historyGuard!.check();
    await expect(sign(running, 4, 400)).rejects.toBeInstanceOf(DatabaseRegressedError);

    // A signer started now on the restored database refuses at once; one without marks would sign slot 5 again.
    const restarted = await start('restarted');
    await expect(sign(restarted, 5, 501)).rejects.toBeInstanceOf(DatabaseRegressedError);
    const unguarded = await start('unguarded', false);
    await expect(sign(unguarded, 5, 502, 'proposal')).resolves.toBe(fakeSignature(502)); // the hazard the marks close

    // Recovery: close the gap up to the mark; the guard sees it at its next check.
    const raised = await cli(['watermark', 'raise', '--database-url', url, '--validator', VALIDATOR, '--slot', '6']);
    expect(raised.code).toBe(0);
    await waitFor('recovered', () => running.gates.historyGuard!.currentRegressions.length === 0);
    await running.gates.historyGuard!.check();
    await restarted.gates.historyGuard!.check();
    expect(restarted.gates.historyGuard!.currentRegressions).toEqual([]);
    await expect(sign(restarted, 8)).resolves.toBe(fakeSignature(8));

    // history import of the export adds the lost duties; slot 5's proposal, signed again above by the unguarded
    // signer with another hash, is reported as a conflict (exit 3): exactly the double signature the marks prevent.
    const imported = await cli(['history', 'import', exported, '--database-url', url]);
    expect(imported.code).toBe(3);
  });

  it('history import (CLI) of an export taken before the restore also recovers', async () => {
    const validator = `0x${'d4'.repeat(20)}`;
    const signer = await start('import-path');
    const signAs = (slot: number, n = slot) =>
      signer.signWithProtection(validator, hash(n), attestation(slot), async () => fakeSignature(n));
    for (let slot = 20; slot <= 22; slot++) await signAs(slot);
    const backup = await server.baseBackup();
    for (let slot = 23; slot <= 25; slot++) await signAs(slot);
    const exported = join(dir, 'history-2.json');
    expect((await cli(['history', 'export', '--database-url', url, '--output', exported])).code).toBe(0);
    await waitFor('marks written', async () => (await marks.read(ROLLUP)).get(`${validator}/ATTESTATION`) === 25n);

    await server.restore(backup);
    await waitFor('regression detected', () => signer.gates.historyGuard!.currentRegressions.some((r) => r.validatorAddress === validator));
    await expect(signAs(24, 2400)).rejects.toBeInstanceOf(DatabaseRegressedError);

    expect((await cli(['history', 'import', exported, '--database-url', url])).code).toBe(0);
    await waitFor('recovered', () => !signer.gates.historyGuard!.currentRegressions.some((r) => r.validatorAddress === validator));
    // The restored history itself now refuses the other hash.
    await expect(signAs(24, 2400)).rejects.toBeInstanceOf(SlashingProtectionError);
  });
});

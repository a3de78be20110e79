/** Rules 3 and 4, enforced inside PostgreSQL so every client is held to them; migrations. */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { RollupBindingError, SlashingProtectionError, createHASigner, rebindRollup, runMigrations } from '../../src/protection/index.js';
import { HA_SIGNER_MIGRATIONS } from '../../src/protection/schema.js';
import { createTestDatabase } from '../support/postgres.js';
import {
  OTHER_ROLLUP,
  ROLLUP,
  VALIDATOR,
  attestation,
  blockProposal,
  fakeSignature,
  hash,
  migratedDatabase,
  sql,
  startSigner,
  stopAllSigners,
} from '../support/protection.js';

afterEach(stopAllSigners);

async function signSlots(url: string, slots: number[]): Promise<void> {
  const { signer } = await startSigner(url, { cleanupOldDutiesAfterHours: 1 });
  for (const slot of slots) await signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
}

describe('rule 3: pruning never reopens a slot', () => {
  it('raises the low watermark before pruning and refuses any duty at or below it', async () => {
    const url = await migratedDatabase();
    await signSlots(url, [1, 2, 3, 10]);
    // Slots 1-3 are two hours old, slot 10 is fresh.
    // Backdating is a test fixture: bypass the immutability trigger for this session only.
    await sql(
      url,
      `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '2 hours', completed_at = completed_at - interval '2 hours' WHERE slot <= 3`,
    );
    const { db, signer } = await startSigner(url, { nodeId: 'pruner' });
    expect(await db.cleanupOldDuties(3_600_000)).toBe(3);
    expect(await sql(url, 'SELECT low_slot FROM ha_signer_watermarks')).toEqual([{ low_slot: '3' }]);
    expect((await sql(url, 'SELECT slot FROM validator_duties')).map((r) => r.slot)).toEqual(['10']);

    for (const slot of [1, 3]) {
      const attempt = signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
      await expect(attempt).rejects.toBeInstanceOf(SlashingProtectionError);
      await expect(attempt).rejects.toThrow(/low watermark 3/);
    }
    // Other duty types of a pruned slot are refused too; slots above it are fine.
    await expect(signer.signWithProtection(VALIDATOR, hash(2), blockProposal(2), async () => fakeSignature(2))).rejects.toBeInstanceOf(
      SlashingProtectionError,
    );
    await expect(signer.signWithProtection(VALIDATOR, hash(4), attestation(4), async () => fakeSignature(4))).resolves.toBe(
      fakeSignature(4),
    );
    // Another validator is unaffected.
    const other = `0x${'dd'.repeat(20)}`;
    await expect(signer.signWithProtection(other, hash(1), attestation(1), async () => fakeSignature(1))).resolves.toBe(fakeSignature(1));
  });

  it('prunes only duties older than the age bound, so the prune can use the (status, started_at) index; younger rows below the watermark stay covered', async () => {
    const url = await migratedDatabase();
    await signSlots(url, [1, 2, 8]);
    await sql(
      url,
      `SET session_replication_role = replica; UPDATE validator_duties SET started_at = started_at - interval '2 hours', completed_at = completed_at - interval '2 hours' WHERE slot = 1`,
    );
    // A manual raise (e.g. `ha-signer watermark raise`) above the young slot 2.
    await sql(url, `INSERT INTO ha_signer_watermarks (rollup_address, validator_address, low_slot) VALUES ($1, $2, 5)`, [
      ROLLUP,
      VALIDATOR,
    ]);
    const { db, signer } = await startSigner(url, { nodeId: 'pruner' });
    expect(await db.cleanupOldDuties(3_600_000)).toBe(1);
    expect((await sql(url, 'SELECT slot FROM validator_duties ORDER BY slot')).map((r) => r.slot)).toEqual(['2', '8']);
    const attempt = signer.signWithProtection(VALIDATOR, hash(102), attestation(2), async () => fakeSignature(2));
    await expect(attempt).rejects.toBeInstanceOf(SlashingProtectionError);
  });

  it('the database itself refuses inserts at or below the watermark and deletes of signed duties above it', async () => {
    const url = await migratedDatabase();
    await signSlots(url, [5, 6]);
    await sql(url, `INSERT INTO ha_signer_watermarks (rollup_address, validator_address, low_slot) VALUES ($1, $2, 5)`, [
      ROLLUP,
      VALIDATOR,
    ]);
    const insert = `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type, status, message_hash, node_id, lock_token)
                    VALUES ($1, $2, $3, 0, -1, 'SLASHING_VOTE', 'signing', $4, 'x', 't')`;
    await expect(sql(url, insert, [ROLLUP, VALIDATOR, 4, hash(4)])).rejects.toMatchObject({ code: 'HA002' });
    // Aztec's cleanupOldDuties statement: refused while any matching signed duty is above the watermark.
    await expect(sql(url, `DELETE FROM validator_duties WHERE status = 'signed'`)).rejects.toMatchObject({ code: 'HA005' });
    expect(await sql(url, 'SELECT slot FROM validator_duties ORDER BY slot')).toEqual([{ slot: '5' }, { slot: '6' }]);
    await sql(url, `DELETE FROM validator_duties WHERE status = 'signed' AND slot <= 5`);
    expect(await sql(url, 'SELECT slot FROM validator_duties')).toEqual([{ slot: '6' }]);
  });

  it('signed duties are immutable', async () => {
    const url = await migratedDatabase();
    await signSlots(url, [1]);
    await expect(sql(url, `UPDATE validator_duties SET message_hash = $1`, [hash(99)])).rejects.toMatchObject({ code: 'HA003' });
    await expect(sql(url, `UPDATE validator_duties SET status = 'signing'`)).rejects.toMatchObject({ code: 'HA003' });
  });
});

describe('rule 4: one database per rollup', () => {
  it('binds at first use and refuses a signer of another rollup at start, touching nothing', async () => {
    const url = await migratedDatabase();
    await signSlots(url, [1]);
    const { signer } = await createHASigner({
      databaseUrl: url,
      nodeId: 'x',
      rollupAddress: OTHER_ROLLUP,
      pollingIntervalMs: 100,
      signingTimeoutMs: 1000,
    });
    try {
      await expect(signer.start()).rejects.toBeInstanceOf(RollupBindingError);
      await expect(signer.start()).rejects.toThrow(new RegExp(`bound to rollup ${ROLLUP}.*rebind-rollup`));
    } finally {
      await signer.stop();
    }
    expect(await sql(url, 'SELECT count(*)::int AS n FROM validator_duties')).toEqual([{ n: 1 }]);
  });

  it("refuses other rollups' duties and Aztec's outdated-rollup cleanup of the bound rollup inside the database", async () => {
    const url = await migratedDatabase();
    await signSlots(url, [1, 2]);
    const insert = `INSERT INTO validator_duties (rollup_address, validator_address, slot, block_number, block_index_within_checkpoint, duty_type, status, message_hash, node_id, lock_token)
                    VALUES ($1, $2, 3, 0, -1, 'ATTESTATION', 'signing', $3, 'aztec', 't')`;
    await expect(sql(url, insert, [OTHER_ROLLUP, VALIDATOR, hash(3)])).rejects.toMatchObject({ code: 'HA001' });
    // A misconfigured Aztec node (rollup OTHER) runs cleanupOutdatedRollupDuties at startup.
    await expect(sql(url, 'DELETE FROM validator_duties WHERE rollup_address != $1', [OTHER_ROLLUP])).rejects.toMatchObject({
      code: 'HA005',
    });
    expect(await sql(url, 'SELECT count(*)::int AS n FROM validator_duties')).toEqual([{ n: 2 }]);
  });

  it("migrate --rollup-address binds; rebind keeps history and the old rollup's duties survive other clients' cleanup", async () => {
    const url = await createTestDatabase('bind');
    await runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: ROLLUP });
    await expect(runMigrations({ databaseUrl: url, direction: 'up', rollupAddress: OTHER_ROLLUP })).rejects.toBeInstanceOf(
      RollupBindingError,
    );
    await signSlots(url, [1]);
    await stopAllSigners();

    await rebindRollup(url, ROLLUP, OTHER_ROLLUP);
    expect(await sql(url, 'SELECT rollup_address, previous_rollup_addresses FROM ha_signer_rollup_binding')).toEqual([
      { rollup_address: OTHER_ROLLUP, previous_rollup_addresses: [ROLLUP] },
    ]);
    await expect(startSigner(url)).rejects.toBeInstanceOf(RollupBindingError);
    const next = await startSigner(url, { rollupAddress: OTHER_ROLLUP });
    await expect(next.signer.signWithProtection(VALIDATOR, hash(1), attestation(1), async () => fakeSignature(1))).resolves.toBe(
      fakeSignature(1),
    );
    // Aztec nodes of the new rollup delete other rollups' duties at startup: the history stays, silently.
    await sql(url, 'DELETE FROM validator_duties WHERE rollup_address != $1', [OTHER_ROLLUP]);
    expect(await sql(url, 'SELECT rollup_address FROM validator_duties ORDER BY rollup_address')).toEqual([
      { rollup_address: ROLLUP },
      { rollup_address: OTHER_ROLLUP },
    ]);
    await expect(rebindRollup(url, ROLLUP, OTHER_ROLLUP)).resolves.toBeUndefined();
    await expect(rebindRollup(url, `0x${'99'.repeat(20)}`, ROLLUP)).rejects.toBeInstanceOf(RollupBindingError);
  });
});

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/cli.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('migrations', () => {
  it('up twice is a no-op and concurrent ups from separate processes are safe', async () => {
    const url = await createTestDatabase('mig');
    const results = await Promise.all([1, 2, 3, 4].map(() => runCli(['migrate', 'up', '--database-url', url, '--rollup-address', ROLLUP])));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    const applied = results.flatMap((result) => (JSON.parse(result.stdout.trim()) as { applied: string[] }).applied);
    expect(applied.sort()).toEqual([...HA_SIGNER_MIGRATIONS, 'aztec:1_initial-schema']);
    const again = await runCli(['migrate', 'up'], { VALIDATOR_HA_DATABASE_URL: url });
    expect(JSON.parse(again.stdout.trim())).toMatchObject({
      applied: [],
      schemaVersion: String(HA_SIGNER_MIGRATIONS.length),
      aztecSchemaVersion: 1,
    });
    expect(await sql(url, 'SELECT version FROM schema_version')).toEqual([{ version: 1 }]);
  });

  it('down undoes one migration at a time and says what it did not touch', async () => {
    const url = await createTestDatabase('mig');
    await runCli(['migrate', 'up', '--database-url', url]);
    const down = await runCli(['migrate', 'down', '--database-url', url]);
    expect(down.code, down.stderr).toBe(0);
    const report = JSON.parse(down.stdout.trim()) as { applied: string[]; untouched: string[] };
    expect(report.applied).toEqual([HA_SIGNER_MIGRATIONS.at(-1)]);
    expect(report.untouched.join('\n')).toMatch(/validator_duties: every row/);
    expect(await sql(url, `SELECT to_regclass('ha_signer_watermarks') AS t, to_regclass('validator_duties') AS d`)).toEqual([
      { t: 'ha_signer_watermarks', d: 'validator_duties' },
    ]);
  });

  it.each([
    [['migrate'], /direction: 'up' or 'down'/],
    [['migrate', 'up'], /--database-url \(or VALIDATOR_HA_DATABASE_URL\) is required/],
    [['migrate', 'up', '--database-url', 'mysql://x/y'], /--database-url: expected a postgresql:\/\/ URL/],
    [['migrate', 'up', '--database-url', 'postgresql://h/db', '--rollup-address', '0x12'], /--rollup-address.*40 hex digits/],
    [['migrate', 'up', '--database-url', 'postgresql://h/db', '--count', '2'], /--count applies to migrate down only/],
    [['migrate', 'up', '--bogus'], /Unknown option '--bogus'/],
    [['rebind-rollup', '--from', ROLLUP], /rebind-rollup needs --to/],
  ])('ha-signer %j fails with a message naming the problem', async (args, message) => {
    const result = await runCli(args, { VALIDATOR_HA_DATABASE_URL: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable database with exit code 1', async () => {
    const result = await runCli(['migrate', 'up', '--database-url', 'postgresql://u:p@127.0.0.1:1/db']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ECONNREFUSED|connect/);
  });
});

/**
 * `serve` with HA_SIGNER_HIGH_WATER_MARKS_FILE: a replica whose database lacks history the marks say was signed (here
 * a fresh database, as after recreating it or failing over to a replica that never had the rows) answers 503
 * DatabaseRegressedError for duties at or below the mark, lists the validator in /readyz and counts it in a metric;
 * `ha-signer watermark raise` ends it.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/postgres.js';
import { cleanEnv, runCli } from '../cli/support.js';
import { KEYS, TOKENS, type SignerFixture, call, migratedDatabase, signBody, signerFixture } from './support.js';

const hash = (n: number): string => `0x${n.toString(16).padStart(64, '0')}`;

describe('serve: a database with less history than the high-water marks', () => {
  let fixture: SignerFixture;
  let lostDb: string;

  beforeAll(async () => {
    fixture = await signerFixture(await migratedDatabase(await createTestDatabase('hwm_a')));
    lostDb = await migratedDatabase(await createTestDatabase('hwm_b'));
  });
  afterAll(async () => fixture?.stopAll());

  it('refuses at or below the mark with 503 DatabaseRegressedError until the watermark is raised', async () => {
    const marks = { HA_SIGNER_HIGH_WATER_MARKS_FILE: join(fixture.dir, 'marks.json') };
    const address = KEYS[0]!.address;
    const sign = (url: string, slot: number, n = slot) =>
      call(url, `/v1/validators/${address}/sign`, { token: TOKENS.all, body: signBody(slot, hash(n)) });
    const first = await fixture.start('first', marks);
    for (const slot of [10, 11, 12]) expect((await sign(first.url, slot)).status).toBe(200);
    await first.stop(10_000); // SIGTERM: the marks not yet written are written on stop

    const second = await fixture.start('second', { ...marks, VALIDATOR_HA_DATABASE_URL: lostDb });
    const refused = await sign(second.url, 11, 1100);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ reason: 'DatabaseRegressedError' });
    expect(String(refused.body.message)).toMatch(/holds less history than the external high-water mark/);
    const ready = await call(second.url, '/readyz');
    expect(ready.body.historyRegressions).toEqual([{ validatorAddress: address, refusedUpToSlot: '12' }]);
    expect(await (await fetch(`${second.url}/metrics`)).text()).toMatch(/^ha_signer_database_history_regressed_validators 1$/m);
    expect((await sign(second.url, 13)).status).toBe(200); // above the mark

    const raised = runCli(['watermark', 'raise', '--database-url', lostDb, '--validator', address, '--slot', '12'], cleanEnv());
    expect((await raised.exited).code).toBe(0);
    const deadline = Date.now() + 20_000;
    while (((await call(second.url, '/readyz')).body.historyRegressions as unknown[]).length > 0) {
      if (Date.now() > deadline) throw new Error('regression not cleared after the watermark raise');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Now the database itself refuses slots at or below the watermark.
    const below = await sign(second.url, 11, 1101);
    expect(below.status).toBe(409);
  });
});

/**
 * The metrics the chart's alerts need beyond the request counters (docs/operations.md): each readiness check on its
 * own, the pool's configured maximum, whether synchronous replication is required and how many standbys there are,
 * and 503 answers of the signing route by reason. Checked on `ha-signer serve` processes against the real PostgreSQL.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { startReplica } from '../../src/demo/replicas.js';
import { DutyType } from '../../src/protection/index.js';
import { SignerMetrics, unavailableReasonLabel } from '../../src/signer/metrics.js';
import { createTestDatabase } from '../support/postgres.js';
import { KEYS, TOKENS, type SignerFixture, call, hash, metricValue, migratedDatabase, signBody, signerFixture } from './support.js';

const metricsText = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();

describe('serve: monitoring metrics', () => {
  let fixture: SignerFixture;

  beforeAll(async () => {
    fixture = await signerFixture(await migratedDatabase(await createTestDatabase('monitoring_metrics')));
  });
  afterAll(async () => fixture?.stopAll());

  it('a ready replica: every readiness check 1 (synchronous replication 0 on a lone database), pool maximum, no standbys', async () => {
    const replica = await fixture.start('watched', { VALIDATOR_HA_POOL_MAX: '7' });
    for (const check of ['database', 'schema', 'rollup_binding', 'keys', 'started', 'history'])
      expect(await metricValue(replica.url, 'ha_signer_readiness_check', { check }), check).toBe(1);
    const text = await metricsText(replica.url);
    expect(text).toMatch(/^ha_signer_readiness_check\{check="synchronous_replication"\} 0$/m);
    expect(text).toMatch(/^ha_signer_database_pool_max 7$/m);
    expect(text).toMatch(/^ha_signer_database_synchronous_replication_required 0$/m);
    for (const kind of ['required', 'confirming', 'connected'])
      expect(text).toMatch(new RegExp(`^ha_signer_database_standbys\\{kind="${kind}"\\} 0$`, 'm'));
    expect(text).toMatch(/^ha_signer_sign_unavailable_total\{reason="DutyInProgress"\} 0$/m);
  });

  it('a replica that requires synchronous replication on a lone database: check 0, not ready, 503s counted by reason', async () => {
    const port = await freePort();
    const replica = startReplica({
      nodeId: 'strict',
      port,
      env: { ...fixture.baseEnv, HA_SIGNER_REQUIRE_SYNCHRONOUS_REPLICATION: 'true' },
      logFile: join(fixture.dir, 'strict.log'),
    });
    fixture.replicas.push(replica);
    const deadline = Date.now() + 20_000;
    while ((await metricValue(replica.url, 'ha_signer_readiness_check', { check: 'started' }).catch(() => 0)) !== 1) {
      if (Date.now() > deadline) throw new Error('the strict replica did not start its protection core');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await call(replica.url, '/readyz')).status).toBe(503);
    expect(await metricValue(replica.url, 'ha_signer_readiness_check', { check: 'synchronous_replication' })).toBe(0);
    expect(await metricValue(replica.url, 'ha_signer_readiness_check', { check: 'database' })).toBe(1);
    expect(await metricValue(replica.url, 'ha_signer_database_synchronous_replication_required')).toBe(1);
    expect(await metricValue(replica.url, 'ha_signer_ready')).toBe(0);
    for (const slot of [3, 4]) {
      const refused = await call(replica.url, `/v1/validators/${KEYS[0]!.address}/sign`, {
        token: TOKENS.all,
        body: signBody(slot, hash(slot)),
      });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ reason: 'SynchronousReplicationRequiredError' });
    }
    expect(await metricValue(replica.url, 'ha_signer_sign_unavailable_total', { reason: 'SynchronousReplicationRequiredError' })).toBe(2);
    expect(await metricValue(replica.url, 'ha_signer_sign_unavailable_total', { reason: 'DatabaseUnavailableError' })).toBe(0);
    expect(await metricValue(replica.url, 'ha_signer_sign_requests_total', { outcome: 'unavailable' })).toBe(2);
  });

  it('a replica whose database does not answer: database check 0 before the protection core starts', async () => {
    const deadPort = await freePort();
    const replica = startReplica({
      nodeId: 'no-database',
      port: await freePort(),
      env: { ...fixture.baseEnv, VALIDATOR_HA_DATABASE_URL: `postgresql://signer:x@127.0.0.1:${deadPort}/signer` },
      logFile: join(fixture.dir, 'no-database.log'),
    });
    fixture.replicas.push(replica);
    const deadline = Date.now() + 20_000;
    let text = '';
    while (!/^ha_signer_readiness_check\{check="database"\} /m.test(text)) {
      if (Date.now() > deadline) throw new Error('no readiness check series from the replica without a database');
      text = await metricsText(replica.url).catch(() => '');
      if (text === '') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(text).toMatch(/^ha_signer_readiness_check\{check="database"\} 0$/m);
    expect(text).toMatch(/^ha_signer_readiness_check\{check="started"\} 0$/m);
    expect(text).toMatch(/^ha_signer_ready 0$/m);
  });
});

describe('SignerMetrics', () => {
  it('counts DutyInProgress answers from the protection core by duty type', async () => {
    const metrics = new SignerMetrics();
    metrics.observer().dutyInProgress!(DutyType.BLOCK_PROPOSAL);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^ha_signer_duty_in_progress_total\{duty_type="BLOCK_PROPOSAL"\} 1$/m);
    expect(text).toMatch(/^ha_signer_duty_in_progress_total\{duty_type="ATTESTATION"\} 0$/m);
  });

  it('no readiness or standby series before their sources are set; bounded 503 reason labels', async () => {
    const metrics = new SignerMetrics();
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/^ha_signer_readiness_check\{/m);
    expect(text).not.toMatch(/^ha_signer_database_standbys\{/m);
    expect(unavailableReasonLabel('DutyInProgress')).toBe('DutyInProgress');
    expect(unavailableReasonLabel('x'.repeat(40))).toBe('other');
    expect(unavailableReasonLabel(undefined)).toBe('other');
  });
});

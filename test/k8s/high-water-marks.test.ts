/**
 * The Kubernetes high-water mark store against the test control plane's real API server: marks merge by max across
 * concurrent writers (optimistic concurrency), are never lowered, and a signer whose database went back in time
 * (a fresh database: all history lost) detects it from the ConfigMap and refuses the duties at or below the marks.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DatabaseRegressedError, createHASigner, runMigrations } from '../../src/protection/index.js';
import { ConfigMapHighWaterMarkStore, MARKS_KEY } from '../../src/signer/kube-high-water-marks.js';
import { clients, createTestNamespace, describeK8s, type TestNamespace } from '../harness/k8s.js';
import { createTestDatabase } from '../support/postgres.js';
import { ROLLUP, VALIDATOR, attestation, fakeSignature, hash } from '../support/protection.js';

describeK8s('ConfigMap high-water marks', () => {
  let ns: TestNamespace;

  beforeAll(async () => {
    ns = await createTestNamespace('marks');
  });
  afterAll(async () => {
    await ns?.delete();
  });

  it('creates the ConfigMap, merges concurrent raises by max, never lowers', async () => {
    const { core } = clients();
    const stores = [0, 1, 2, 3].map(() => new ConfigMapHighWaterMarkStore(core, ns.name, 'vhs-marks'));
    await Promise.all(
      stores.map((store, i) =>
        store.raise(
          ROLLUP,
          new Map([
            [`${VALIDATOR}/ATTESTATION`, BigInt(10 + i)],
            [`${VALIDATOR}/SLASHING_VOTE`, BigInt(i)],
          ]),
        ),
      ),
    );
    await stores[0]!.raise(ROLLUP, new Map([[`${VALIDATOR}/ATTESTATION`, 5n]]));
    expect(await stores[1]!.read(ROLLUP)).toEqual(
      new Map([
        [`${VALIDATOR}/ATTESTATION`, 13n],
        [`${VALIDATOR}/SLASHING_VOTE`, 3n],
      ]),
    );
    const map = await core.readNamespacedConfigMap({ namespace: ns.name, name: 'vhs-marks' });
    expect(JSON.parse(map.data![MARKS_KEY]!)).toMatchObject({ format: 'ha-signer-high-water-marks' });
  });

  it('a signer on a database that lost its history refuses duties at or below the marks in the ConfigMap', async () => {
    const { core } = clients();
    const store = new ConfigMapHighWaterMarkStore(core, ns.name, 'vhs-guard');
    const first = await createTestDatabase('marks_a');
    await runMigrations({ databaseUrl: first, direction: 'up', rollupAddress: ROLLUP });
    const config = { nodeId: 'n1', rollupAddress: ROLLUP, pollingIntervalMs: 100, signingTimeoutMs: 2_000 };
    const a = await createHASigner({ ...config, databaseUrl: first }, { highWaterMarks: store, historyGuard: { flushIntervalMs: 100 } });
    await a.signer.start();
    for (let slot = 1; slot <= 4; slot++)
      await a.signer.signWithProtection(VALIDATOR, hash(slot), attestation(slot), async () => fakeSignature(slot));
    await a.signer.stop(); // writes the marks not yet stored
    expect((await store.read(ROLLUP)).get(`${VALIDATOR}/ATTESTATION`)).toBe(4n);

    const lost = await createTestDatabase('marks_b'); // e.g. recreated empty, or a replica that never had the rows
    await runMigrations({ databaseUrl: lost, direction: 'up', rollupAddress: ROLLUP });
    const b = await createHASigner({ ...config, nodeId: 'n2', databaseUrl: lost }, { highWaterMarks: store });
    await b.signer.start();
    try {
      await expect(b.signer.signWithProtection(VALIDATOR, hash(99), attestation(3), async () => fakeSignature(99))).rejects.toBeInstanceOf(
        DatabaseRegressedError,
      );
      await expect(b.signer.signWithProtection(VALIDATOR, hash(5), attestation(5), async () => fakeSignature(5))).resolves.toBe(
        fakeSignature(5),
      );
    } finally {
      await b.signer.stop();
    }
  });
});

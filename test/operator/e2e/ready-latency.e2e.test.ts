/**
 * Operator apply-to-Ready latency with real signer pods (run by `npm run bench` section operator, `node bench/operator.ts`,
 * or with HA_SIGNER_OPERATOR_BENCH_READY=1). One operator process; the local kubelet runs the signer pods and the
 * migration Job from this checkout (dist/cli.js) against the run's real PostgreSQL, one database per resource.
 * ValidatorHASigners are applied one at a time; for each, the time from create to Migrated=True (migration Job done),
 * Available=True and Ready=True (every replica serving) is measured by polling the resource every 50 ms.
 * Prints one `OPERATOR_READY_BENCH {json}` line. Knobs: HA_SIGNER_OPERATOR_BENCH_READY_N (resources, default 5),
 * HA_SIGNER_OPERATOR_BENCH_READY_REPLICAS (signer pods per resource, default 2 as in the CRD).
 */
import { expect, it } from 'vitest';
import { clients, createTestNamespace, describeK8s, waitFor } from '../../harness/k8s.js';
import { createTestDatabase } from '../../support/postgres.js';
import { startOperatorProcess } from './operator-process.js';
import { condition, createSecret, createVhs, getVhs, ROLLUP_A, validatorKey, vhsBody } from './support.js';

const enabled = process.env.HA_SIGNER_OPERATOR_BENCH_READY === '1';
const N = Number(process.env.HA_SIGNER_OPERATOR_BENCH_READY_N ?? 5);
const REPLICAS = Number(process.env.HA_SIGNER_OPERATOR_BENCH_READY_REPLICAS ?? 2);

interface ReadyTiming {
  name: string;
  /** create → Migrated=True (the migration Job finished and the operator saw it). */
  migratedMs: number;
  /** create → Available=True (at least one signer pod serving). */
  availableMs: number;
  /** create → Ready=True for the created generation (every replica serving). */
  readyMs: number;
}

describeK8s('operator apply-to-Ready latency', () => {
  it.skipIf(!enabled)(`${N} resources reach Ready with real signer pods`, { timeout: 120_000 + N * 150_000 }, async () => {
    if (!Number.isInteger(N) || N < 1) throw new Error(`HA_SIGNER_OPERATOR_BENCH_READY_N must be a positive integer, got ${N}`);
    if (!Number.isInteger(REPLICAS) || REPLICAS < 1)
      throw new Error(`HA_SIGNER_OPERATOR_BENCH_READY_REPLICAS must be a positive integer, got ${REPLICAS}`);
    const ns = await createTestNamespace('ready');
    const op = await startOperatorProcess({ namespace: ns.name });
    try {
      await createSecret(ns.name, 'keys', { 'validator-1': validatorKey() });
      // Databases and their Secrets exist before the clock starts: the figure is the operator's and the pods', not ours.
      for (let i = 0; i < N; i++) await createSecret(ns.name, `db-${i}`, { uri: await createTestDatabase(`ready_${i}`) });
      const rssBefore = await op.metric('ha_signer_operator_process_resident_memory_bytes');
      const timings: ReadyTiming[] = [];
      for (let i = 0; i < N; i++) {
        const name = `r-${i}`;
        const t0 = performance.now();
        const created = await createVhs(
          ns.name,
          vhsBody(name, { rollup: { address: ROLLUP_A, version: 'v1' }, replicas: REPLICAS, database: { secretRef: { name: `db-${i}` } } }),
        );
        const generation = created.metadata.generation ?? 1;
        const seen: Partial<Record<'migratedMs' | 'availableMs', number>> = {};
        const readyMs = await waitFor(
          async () => {
            const v = await getVhs(ns.name, name);
            const at = Math.round(performance.now() - t0);
            if (seen.migratedMs === undefined && condition(v, 'Migrated')?.status === 'True') seen.migratedMs = at;
            if (seen.availableMs === undefined && condition(v, 'Available')?.status === 'True') seen.availableMs = at;
            const ready = condition(v, 'Ready')?.status === 'True' && (v.status?.observedGeneration ?? 0) >= generation;
            return ready ? at : undefined;
          },
          { timeoutMs: 150_000, intervalMs: 50, message: `${ns.name}/${name} Ready=True` },
        );
        // Conditions that turned True in the same poll as Ready count at Ready's time.
        timings.push({ name, migratedMs: seen.migratedMs ?? readyMs, availableMs: seen.availableMs ?? readyMs, readyMs });
      }
      const rss = await op.metric('ha_signer_operator_process_resident_memory_bytes');
      const heap = await op.metric('ha_signer_operator_nodejs_heap_size_used_bytes');
      const pods = (await clients().core.listNamespacedPod({ namespace: ns.name })).items.filter((p) => p.status?.phase === 'Running');
      const report = {
        resources: N,
        replicas: REPLICAS,
        timings,
        runningPods: pods.length,
        operatorRssBeforeMiB: rssBefore ? +(rssBefore / 2 ** 20).toFixed(1) : undefined,
        operatorRssMiB: rss ? +(rss / 2 ** 20).toFixed(1) : undefined,
        operatorHeapUsedMiB: heap ? +(heap / 2 ** 20).toFixed(1) : undefined,
      };
      console.log(`OPERATOR_READY_BENCH ${JSON.stringify(report)}`);
      expect(timings).toHaveLength(N);
      expect(pods.length).toBeGreaterThanOrEqual(N * REPLICAS);
    } finally {
      await op.stop();
      await ns.delete();
    }
  });
});

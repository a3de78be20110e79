/**
 * Operator at scale (run by `npm run bench` section operator and `node bench/operator.ts` via bench/lib/operator.ts,
 * or with HA_SIGNER_OPERATOR_BENCH=1): 200 ValidatorHASigners,
 * each with its own database Secret, reconciled by one operator process. Signer images are not run by the local
 * kubelet (pods stay Pending), so this measures the control loop: claim + migration Job + status for every
 * resource, then a wave of spec changes, plus the operator's memory.
 */
import * as k8s from '@kubernetes/client-node';
import { expect, it } from 'vitest';
import { clients, createTestNamespace, describeK8s } from '../../harness/k8s.js';
import { GROUP, PLURAL, VERSION, type ValidatorHASignerResource } from '../../../src/operator/types.js';
import { startOperatorProcess } from './operator-process.js';
import { ROLLUP_A, validatorKey, vhsBody } from './support.js';

const N = Number(process.env.HA_SIGNER_OPERATOR_BENCH_N ?? 200);
const enabled = process.env.HA_SIGNER_OPERATOR_BENCH === '1';
const workers = process.env.HA_SIGNER_OPERATOR_BENCH_WORKERS ?? '4';
// HA_SIGNER_OPERATOR_BENCH_UNRELATED_SECRETS=60: a cluster-wide operator, with that many ~0.9 MB Secrets in another
// namespace (its memory must follow what it manages, not the cluster's Secrets).
const unrelated = Number(process.env.HA_SIGNER_OPERATOR_BENCH_UNRELATED_SECRETS ?? 0);
// HA_SIGNER_OPERATOR_BENCH_NODE_OPTIONS: e.g. --max-old-space-size=192 (what a memory limit calls for).
const nodeOptions = process.env.HA_SIGNER_OPERATOR_BENCH_NODE_OPTIONS;

describeK8s('operator scale', () => {
  it.skipIf(!enabled)(`reconciles ${N} resources`, { timeout: 900_000 }, async () => {
    const ns = await createTestNamespace('scale');
    const other = unrelated > 0 ? await createTestNamespace('unrelated') : undefined;
    const { core, custom } = clients();
    for (let i = 0; i < unrelated; i++)
      await core.createNamespacedSecret({
        namespace: other!.name,
        body: { metadata: { name: `big-${i}` }, stringData: { blob: `${i}${'x'.repeat(900_000)}` } },
      });
    const op = await startOperatorProcess({
      namespace: ns.name,
      clusterWide: unrelated > 0,
      ...(nodeOptions ? { env: { NODE_OPTIONS: nodeOptions } } : {}),
      extraArgs: ['--workers', workers, '--resync-period', '1h'],
    });
    try {
      await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'keys' }, stringData: { k: validatorKey() } } });
      const rssBefore = await op.metric('ha_signer_operator_process_resident_memory_bytes');
      const list = async () =>
        (
          (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name })) as {
            items: ValidatorHASignerResource[];
          }
        ).items;
      const waitAll = async (pred: (v: ValidatorHASignerResource) => boolean, what: string) => {
        const deadline = Date.now() + 600_000;
        for (;;) {
          const items = await list();
          const done = items.filter(pred).length;
          if (done === N) return;
          if (Date.now() > deadline) throw new Error(`${what}: ${done}/${N}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      const t0 = Date.now();
      const pool = async <T>(items: T[], n: number, fn: (x: T) => Promise<unknown>) => {
        const q = [...items];
        await Promise.all(
          Array.from({ length: n }, async () => {
            for (let x = q.shift(); x !== undefined; x = q.shift()) await fn(x);
          }),
        );
      };
      const idx = Array.from({ length: N }, (_, i) => i);
      await pool(idx, 16, async (i) => {
        await core.createNamespacedSecret({
          namespace: ns.name,
          body: { metadata: { name: `db-${i}` }, stringData: { uri: `postgresql://u:p@127.0.0.1:1/bench_${i}` } },
        });
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: ns.name,
          body: vhsBody(`s-${i}`, {
            rollup: { address: ROLLUP_A, version: 'v1' },
            database: { secretRef: { name: `db-${i}` } },
            image: 'registry.example/not-run-here:1',
          }),
        });
      });
      const created = Date.now() - t0;
      await waitAll(
        (v) =>
          v.status?.conditions?.some((c) => c.type === 'Migrated' && c.reason === 'Migrating') === true &&
          v.status?.observedGeneration === v.metadata.generation,
        'first reconcile',
      );
      const firstWave = Date.now() - t0;
      const reconciles1 = (await op.metric('ha_signer_operator_reconciles_total')) ?? 0;
      const text = await op.metrics();
      const sum = Number(/ha_signer_operator_reconcile_duration_seconds_sum (\S+)/.exec(text)?.[1] ?? 0);
      const count = Number(/ha_signer_operator_reconcile_duration_seconds_count (\S+)/.exec(text)?.[1] ?? 1);

      // A wave of spec changes (replicas) on every resource.
      const t1 = Date.now();
      await pool(idx, 16, (i) =>
        custom.patchNamespacedCustomObjectScale(
          { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: `s-${i}`, body: { spec: { replicas: 3 } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      );
      await waitAll((v) => v.metadata.generation === 2 && v.status?.observedGeneration === 2, 'second wave');
      const secondWave = Date.now() - t1;
      const reconciles2 = (await op.metric('ha_signer_operator_reconciles_total')) ?? 0;
      const jobs = (await clients().batch.listNamespacedJob({ namespace: ns.name })).items.length;
      const rss = await op.metric('ha_signer_operator_process_resident_memory_bytes');
      const heap = await op.metric('ha_signer_operator_nodejs_heap_size_used_bytes');
      const report = {
        resources: N,
        workers: Number(workers),
        createMs: created,
        allFirstReconciledMs: firstWave,
        firstWaveResourcesPerSec: +(N / (firstWave / 1000)).toFixed(1),
        reconcilesFirstWave: reconciles1,
        meanReconcileMs: +((sum / count) * 1000).toFixed(1),
        specWaveMs: secondWave,
        specWaveResourcesPerSec: +(N / (secondWave / 1000)).toFixed(1),
        reconcilesSpecWave: reconciles2 - reconciles1,
        migrationJobs: jobs,
        operatorRssMiB: rss ? +(rss / 2 ** 20).toFixed(1) : undefined,
        operatorRssBeforeMiB: rssBefore ? +(rssBefore / 2 ** 20).toFixed(1) : undefined,
        operatorHeapUsedMiB: heap ? +(heap / 2 ** 20).toFixed(1) : undefined,
        unrelatedSecrets: unrelated,
        nodeOptions: nodeOptions ?? '',
      };
      console.log(`OPERATOR_BENCH ${JSON.stringify(report)}`);
      expect(jobs).toBe(N);
    } finally {
      await op.stop();
      await ns.delete();
      await other?.delete();
    }
  });
});

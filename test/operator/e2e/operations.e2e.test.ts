/**
 * What an operations team hits after the happy path (issue 11), on the real control plane with the local kubelet:
 * client-list changes reach the pods before Ready, Available holds while pods serve, a resource deleted while the
 * operator is down is cleaned up when it returns, status names causes, the resources gauge is right from the first
 * list, and Secrets of unrelated namespaces are not cached.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  callService,
  clients,
  createTestNamespace,
  describeK8s,
  listPods,
  podProcess,
  waitFor,
  type TestNamespace,
} from '../../harness/k8s.js';
import { createTestDatabase } from '../../support/postgres.js';
import { names } from '../../../src/operator/desired/names.js';
import { GROUP, PLURAL, VERSION } from '../../../src/operator/types.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import { condition, createSecret, createVhs, exists, getVhs, ROLLUP_A, validatorKey, vhsBody, waitForCondition } from './support.js';

const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const signerPods = async (ns: string, name: string) =>
  (await listPods(ns, `app.kubernetes.io/instance=${name},app.kubernetes.io/component=signer`)).filter(
    (p) => !p.metadata!.deletionTimestamp,
  );
const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describeK8s('operator operations (issue 11)', () => {
  let ns: TestNamespace;
  let op: OperatorProcess | undefined;
  const c = () => clients();
  const patchVhs = (name: string, body: unknown) =>
    c().custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name, body }, merge);

  beforeAll(async () => {
    ns = await createTestNamespace('ops');
    await createSecret(ns.name, 'keys', { 'validator-1': validatorKey() });
    op = await startOperatorProcess({ namespace: ns.name });
  });
  afterAll(async () => {
    await op?.stop();
    await ns?.delete();
  });

  it('a client-list change reaches every pod before Ready=True, and Available holds while pods serve (scale)', async () => {
    await createSecret(ns.name, 'db', { uri: await createTestDatabase('ops_clients') });
    await createVhs(
      ns.name,
      vhsBody('clients', {
        rollup: { address: ROLLUP_A, version: 'v1' },
        replicas: 2,
        clients: { serviceAccounts: [{ name: 'node-a', validators: ['*'] }] },
      }),
    );
    await waitForCondition(ns.name, 'clients', 'Ready', 'True', { timeoutMs: 150_000 });
    const before = new Set((await signerPods(ns.name, 'clients')).map((p) => p.metadata!.name));

    await patchVhs('clients', {
      spec: {
        clients: {
          serviceAccounts: [
            { name: 'node-a', validators: ['*'] },
            { name: 'node-b', validators: ['*'] },
          ],
        },
      },
    });
    const generation = (await getVhs(ns.name, 'clients')).metadata.generation!;
    // Ready=True for the new generation only once every serving pod reads the new list.
    let sawAvailableFalse = false;
    await waitFor(
      async () => {
        const v = await getVhs(ns.name, 'clients');
        if (condition(v, 'Available')?.status === 'False') sawAvailableFalse = true;
        if (condition(v, 'Ready')?.status !== 'True' || (v.status?.observedGeneration ?? 0) < generation) return undefined;
        const pods = (await signerPods(ns.name, 'clients')).filter(isReady);
        for (const p of pods) {
          expect(before.has(p.metadata!.name!), `pod ${p.metadata!.name} serves the old list while Ready=True`).toBe(false);
          const root = podProcess(ns.name, p.metadata!.name!, 'signer')!.root;
          const list = JSON.parse(readFileSync(path.join(root, 'var/run/ha-signer/auth/service-accounts.json'), 'utf8')) as {
            name: string;
          }[];
          expect(list.map((x) => x.name).sort()).toEqual(['node-a', 'node-b']);
        }
        return pods.length === 2 ? v : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 200, message: 'Ready=True with every pod serving the new client list' },
    );
    expect(sawAvailableFalse).toBe(false); // pods served throughout the roll

    // Scale 2 -> 3: Available stays True (2 of 3 serve), Ready waits for the third.
    await c().custom.patchNamespacedCustomObjectScale(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'clients', body: { spec: { replicas: 3 } } },
      merge,
    );
    const seen: string[] = [];
    await waitFor(
      async () => {
        const v = await getVhs(ns.name, 'clients');
        seen.push(`${condition(v, 'Available')?.status}/${condition(v, 'Ready')?.status}`);
        return v.status?.readyReplicas === 3 && condition(v, 'Ready')?.status === 'True' ? v : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100, message: 'three ready replicas' },
    );
    expect(seen.filter((s) => s.startsWith('False'))).toEqual([]);
  });

  it('deleting a resource while the operator is down: its ClusterRoleBinding and database ownership record go when the operator returns', async () => {
    const crb = names.tokenReviewBinding(ns.name, 'clients');
    const rbac = c().kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    expect(await exists(() => rbac.readClusterRoleBinding({ name: crb }))).toBe(true);
    const v = await getVhs(ns.name, 'clients');
    expect(v.metadata.finalizers).toContain('ha-signer.dev/cleanup');
    const record = names.databaseOwnership(v.status!.databaseIdentity!);
    expect(await exists(() => c().core.readNamespacedConfigMap({ namespace: ns.name, name: record }))).toBe(true);

    expect(await op!.stop()).toBe(0);
    await c().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'clients' });
    await new Promise((r) => setTimeout(r, 1000));
    op = await startOperatorProcess({ namespace: ns.name });
    await waitFor(
      async () => {
        const left = [
          await exists(() => rbac.readClusterRoleBinding({ name: crb })),
          await exists(() => c().core.readNamespacedConfigMap({ namespace: ns.name, name: record })),
          await exists(() => getVhs(ns.name, 'clients')),
        ];
        return left.every((x) => !x) || undefined;
      },
      { timeoutMs: 60_000, message: 'ClusterRoleBinding, ownership record and resource gone' },
    );
  });

  it('the resources gauge is right from the first list, not after a resync; legacy URI-keyed claims are removed', async () => {
    await createSecret(ns.name, 'db-unreachable', { uri: 'postgresql://u:p@127.0.0.1:1/gauge' });
    for (const n of ['g1', 'g2'])
      await createVhs(
        ns.name,
        vhsBody(n, { rollup: { address: ROLLUP_A, version: 'v1' }, database: { secretRef: { name: 'db-unreachable' } } }),
      );
    await op!.stop();
    // A database claim left by an operator before 0.2 (keyed on the URI text): removed once at start.
    const legacy = {
      metadata: { name: 'ha-signer-db-legacy', labels: { 'ha-signer.dev/claim': 'database' } },
      data: { databaseIdentity: '127.0.0.1:1/gauge' },
    };
    await c().core.createNamespacedConfigMap({ namespace: ns.name, body: legacy });
    op = await startOperatorProcess({ namespace: ns.name, extraArgs: ['--resync-period', '1h'] });
    await waitFor(async () => (await op!.metric('ha_signer_operator_resources')) === 2 || undefined, {
      timeoutMs: 15_000,
      message: 'ha_signer_operator_resources == 2',
    });
    await waitFor(
      async () => !(await exists(() => c().core.readNamespacedConfigMap({ namespace: ns.name, name: 'ha-signer-db-legacy' }))) || undefined,
      { timeoutMs: 15_000, message: 'legacy claim removed' },
    );
    for (const n of ['g1', 'g2'])
      await c().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: n });
    await waitFor(async () => (await op!.metric('ha_signer_operator_resources')) === 0 || undefined, {
      timeoutMs: 30_000,
      message: 'ha_signer_operator_resources == 0',
    });
  });

  it('status names causes: every condition when the keys Secret is missing, a crash-looping signer, a wrong database password', async () => {
    // Missing keys Secret: every condition is set, DatabaseClaimed included (kubectl wait on it does not hang).
    await createSecret(ns.name, 'db-causes', { uri: await createTestDatabase('ops_causes') });
    await createVhs(
      ns.name,
      vhsBody('nokeys', {
        rollup: { address: ROLLUP_A, version: 'v1' },
        database: { secretRef: { name: 'db-causes' } },
        keys: { secretRef: { name: 'missing-keys' } },
      }),
    );
    const nokeys = await waitForCondition(ns.name, 'nokeys', 'DatabaseClaimed', 'False', { reason: 'SecretNotFound', timeoutMs: 30_000 });
    for (const t of ['Migrated', 'Available', 'Ready']) expect(condition(nokeys, t)?.reason).toBe('SecretNotFound');
    expect(condition(nokeys, 'DatabaseClaimed')!.message).toContain(`Secret ${ns.name}/missing-keys (spec.keys.secretRef) not found`);
    await c().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'nokeys' });

    // A malformed key: the signer exits at start; status says so with the container's own message.
    await createSecret(ns.name, 'bad-keys', { 'validator-1': 'not-a-key' });
    await createVhs(
      ns.name,
      vhsBody('crash', {
        rollup: { address: ROLLUP_A, version: 'v1' },
        database: { secretRef: { name: 'db-causes' } },
        keys: { secretRef: { name: 'bad-keys' } },
        replicas: 1,
      }),
    );
    const crash = await waitForCondition(ns.name, 'crash', 'Ready', 'False', { reason: 'SignerCrashLooping', timeoutMs: 120_000 });
    expect(condition(crash, 'Ready')!.message).toContain('validator-1');
    expect(condition(crash, 'Available')?.reason).toBe('SignerCrashLooping');

    // Fix the key, get Ready; then a wrong password: the migration re-runs with the new credentials, fails with the
    // server's message, and the running pods are not replaced by pods that cannot connect.
    await c().core.patchNamespacedSecret(
      { namespace: ns.name, name: 'bad-keys', body: { stringData: { 'validator-1': validatorKey() } } },
      merge,
    );
    await waitForCondition(ns.name, 'crash', 'Ready', 'True', { timeoutMs: 150_000 });
    const running = new Set((await signerPods(ns.name, 'crash')).map((p) => p.metadata!.name));
    const good = (await c().core.readNamespacedSecret({ namespace: ns.name, name: 'db-causes' })).data!.uri!;
    const wrong = new URL(Buffer.from(good, 'base64').toString());
    wrong.password = 'wrong-password';
    await c().core.patchNamespacedSecret({ namespace: ns.name, name: 'db-causes', body: { stringData: { uri: wrong.toString() } } }, merge);
    const failed = await waitForCondition(ns.name, 'crash', 'Migrated', 'False', { reason: 'MigrationFailed', timeoutMs: 120_000 });
    expect(condition(failed, 'Migrated')!.message).toMatch(/password authentication failed/);
    expect(condition(failed, 'Available')?.status).toBe('True'); // the previous pods still serve
    expect(new Set((await signerPods(ns.name, 'crash')).map((p) => p.metadata!.name))).toEqual(running);
  });
});

describeK8s('stock Aztec node clients (issue 10, operator wiring)', () => {
  let ns: TestNamespace;
  let op: OperatorProcess | undefined;
  beforeAll(async () => {
    ns = await createTestNamespace('aztec');
    op = await startOperatorProcess({ namespace: ns.name });
  });
  afterAll(async () => {
    await op?.stop();
    await ns?.delete();
  });

  it('spec.clients.aztecNodes: a Secret with the node URL, status env for its pods, eth_accounts through that URL, stable secrets, removal', async () => {
    const key = validatorKey();
    await createSecret(ns.name, 'keys', { 'validator-1': key });
    await createSecret(ns.name, 'db', { uri: await createTestDatabase('ops_aztec') });
    const node = (name: string) => ({ name, validators: ['*'] });
    await createVhs(
      ns.name,
      vhsBody('stock', { rollup: { address: ROLLUP_A, version: 'v1' }, replicas: 1, clients: { aztecNodes: [node('node-a')] } }),
    );
    const ready = await waitForCondition(ns.name, 'stock', 'Ready', 'True', { timeoutMs: 150_000 });
    const secret = async (name: string) =>
      Object.fromEntries(
        Object.entries((await clients().core.readNamespacedSecret({ namespace: ns.name, name })).data ?? {}).map(([k, v]) => [
          k,
          Buffer.from(v, 'base64').toString(),
        ]),
      );
    const a = await secret('stock-aztec-node-a');
    expect(a.WEB3_SIGNER_URL).toBe(`http://stock.${ns.name}.svc:8080/jsonrpc/${a.secret}`);
    expect(a.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(ready.status?.aztecNodes).toEqual([
      {
        name: 'node-a',
        secretName: 'stock-aztec-node-a',
        env: [
          { name: 'VALIDATOR_HA_SIGNING_ENABLED', value: 'true' },
          { name: 'VALIDATOR_HA_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'uri' } } },
          { name: 'VALIDATOR_HA_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'WEB3_SIGNER_URL', valueFrom: { secretKeyRef: { name: 'stock-aztec-node-a', key: 'WEB3_SIGNER_URL' } } },
        ],
      },
    ]);
    expect(JSON.stringify(ready.status)).not.toContain(a.secret!);

    // What a stock node does at start: eth_accounts on its URL (path as given, no header).
    const rpc = (path: string) =>
      callService(ns.name, 'stock', path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] }),
      });
    const ok = await rpc(new URL(a.WEB3_SIGNER_URL!).pathname);
    expect(ok.map((r) => r.status)).toEqual([200]);
    expect((JSON.parse(ok[0]!.body) as { result: string[] }).result).toHaveLength(1);
    expect((await rpc(`/jsonrpc/${'f'.repeat(64)}`)).map((r) => r.status)).toEqual([401]);

    // Adding a node keeps node-a's secret; removing it deletes its Secret.
    const patch = (nodes: unknown[]) =>
      clients().custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: ns.name,
          name: 'stock',
          body: { spec: { clients: { aztecNodes: nodes } } },
        },
        merge,
      );
    await patch([node('node-a'), node('node-b')]);
    await waitFor(
      async () =>
        (await exists(() => clients().core.readNamespacedSecret({ namespace: ns.name, name: 'stock-aztec-node-b' }))) || undefined,
      { timeoutMs: 30_000, message: 'node-b Secret' },
    );
    expect((await secret('stock-aztec-node-a')).secret).toBe(a.secret);
    await patch([node('node-a')]);
    await waitFor(
      async () =>
        !(await exists(() => clients().core.readNamespacedSecret({ namespace: ns.name, name: 'stock-aztec-node-b' }))) || undefined,
      { timeoutMs: 30_000, message: 'node-b Secret deleted' },
    );
    await waitForCondition(ns.name, 'stock', 'Ready', 'True', { timeoutMs: 150_000 });
    expect((await rpc(new URL(a.WEB3_SIGNER_URL!).pathname)).map((r) => r.status)).toEqual([200]);
  });
});

describeK8s('operator memory (issue 11)', () => {
  it('does not cache Secrets of namespaces without resources (60 unrelated ~1 MB Secrets)', { timeout: 300_000 }, async () => {
    const home = await createTestNamespace('mem');
    const other = await createTestNamespace('unrelated');
    const op = await startOperatorProcess({ namespace: home.name, clusterWide: true });
    try {
      await createSecret(home.name, 'keys', { k: validatorKey() });
      await createSecret(home.name, 'db', { uri: 'postgresql://u:p@127.0.0.1:1/mem' });
      await createVhs(home.name, vhsBody('m', { rollup: { address: ROLLUP_A, version: 'v1' } }));
      await waitFor(async () => (await getVhs(home.name, 'm')).status?.migrationJob, {
        timeoutMs: 30_000,
        message: 'first reconcile of m',
      });
      await new Promise((r) => setTimeout(r, 3000));
      const rss = async () => ((await op.metric('ha_signer_operator_process_resident_memory_bytes')) ?? 0) / 2 ** 20;
      const before = await rss();
      const blob = 'x'.repeat(900_000);
      for (let i = 0; i < 60; i++)
        await clients().core.createNamespacedSecret({
          namespace: other.name,
          body: { metadata: { name: `big-${i}` }, stringData: { blob: `${i}${blob}` } },
        });
      await new Promise((r) => setTimeout(r, 8000));
      const after = await rss();
      console.log(
        `operator RSS with 60 unrelated ~0.9 MB Secrets in another namespace: ${before.toFixed(1)} MiB -> ${after.toFixed(1)} MiB`,
      );
      expect(after - before).toBeLessThan(40);
    } finally {
      await op.stop();
      await other.delete();
      await home.delete();
    }
  });
});

/**
 * Failover safety through the operator on the real control plane and the local kubelet: the operator creates the
 * high-water-mark ConfigMap (kept when the resource is deleted) and a Role on exactly it bound to the signers'
 * ServiceAccount; the signer pods use it with their own token; the resource's status reports synchronous replication
 * (a lone test server has no standby: False) and, once the ConfigMap holds a mark the database does not (as after a
 * restore from an older backup), HistoryIntact=False/DatabaseRegressed with the validator count and the recovery.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConfigMapHighWaterMarkStore, MARKS_KEY } from '../../../src/signer/kube-high-water-marks.js';
import { REPO_ROOT } from '../../harness/controlPlane.js';
import { clients, createTestNamespace, describeK8s, k8sEnv, waitFor, type TestNamespace } from '../../harness/k8s.js';
import { createTestDatabase } from '../../support/postgres.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import { condition, createSecret, createVhs, exists, getVhs, ROLLUP_A, validatorKey, vhsBody, waitForCondition } from './support.js';

describeK8s('operator e2e: failover safety (high-water marks, replication and history conditions)', () => {
  let ns: TestNamespace;
  let op: OperatorProcess;
  const key = validatorKey();
  const validator = privateKeyToAccount(key as `0x${string}`).address.toLowerCase();

  beforeAll(async () => {
    ns = await createTestNamespace('safety');
    await createSecret(ns.name, 'db', { uri: await createTestDatabase('safety_e2e') });
    await createSecret(ns.name, 'keys', { 'validator-1': key });
    // The operator runs with config/rbac/role.yaml only (not as admin): creating the signers' Role proves RBAC's
    // escalation check passes (it can grant get/update/patch on configmaps because it holds them).
    op = await startOperatorProcess({ namespace: ns.name, extraArgs: ['--kubeconfig', await leastPrivilegeKubeconfig(ns.name)] });
  });

  afterAll(async () => {
    if (op) await op.stop();
    const rbac = clients().rbac;
    await rbac.deleteClusterRoleBinding({ name: `ha-signer-operator-${ns?.name}` }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: `ha-signer-operator-${ns?.name}` }).catch(() => undefined);
    await ns?.delete();
  });

  it('marks ConfigMap + Role for the signers, conditions from their /readyz, regression reported, ConfigMap kept on delete', async () => {
    const { core, rbac } = clients();
    await createVhs(ns.name, vhsBody('hsig', { rollup: { address: ROLLUP_A, version: 'v1' }, replicas: 1 }));
    await waitForCondition(ns.name, 'hsig', 'Ready', 'True', { timeoutMs: 180_000 });

    const cm = await core.readNamespacedConfigMap({ namespace: ns.name, name: 'hsig-high-water-marks' });
    expect(cm.metadata!.ownerReferences ?? []).toEqual([]);
    const role = await rbac.readNamespacedRole({ namespace: ns.name, name: 'hsig-high-water-marks' });
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['hsig-high-water-marks'], verbs: ['get', 'update', 'patch'] },
    ]);
    const binding = await rbac.readNamespacedRoleBinding({ namespace: ns.name, name: 'hsig-high-water-marks' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'hsig-signer', namespace: ns.name }]);

    // A lone PostgreSQL: no synchronous standby, reported (not enforced) by the signer and surfaced by the operator.
    const sync = await waitForCondition(ns.name, 'hsig', 'SynchronousReplication', 'False', {
      reason: 'NotSynchronous',
      timeoutMs: 90_000,
    });
    expect(condition(sync, 'SynchronousReplication')!.message).toContain('signing goes on unprotected');
    await waitForCondition(ns.name, 'hsig', 'HistoryIntact', 'True', { reason: 'HistoryIntact', timeoutMs: 90_000 });

    // The marks say this validator signed slot 500; the database holds nothing: it went back in time.
    await new ConfigMapHighWaterMarkStore(core, ns.name, 'hsig-high-water-marks').raise(
      ROLLUP_A,
      new Map([[`${validator}/ATTESTATION`, 500n]]),
    );
    const regressed = await waitForCondition(ns.name, 'hsig', 'HistoryIntact', 'False', {
      reason: 'DatabaseRegressed',
      timeoutMs: 120_000,
    });
    const message = condition(regressed, 'HistoryIntact')!.message;
    expect(message).toContain(`1 validator(s) (${validator})`);
    expect(message).toContain('up to slot 500');
    expect(message).toContain('ha-signer watermark raise');

    // Deleting the resource keeps the marks (a recreated resource on a restored database is still protected).
    await clients().custom.deleteNamespacedCustomObject({
      group: 'ha-signer.dev',
      version: 'v1alpha1',
      plural: 'validatorhasigners',
      namespace: ns.name,
      name: 'hsig',
    });
    await waitFor(async () => !(await exists(() => getVhs(ns.name, 'hsig'))), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: 'hsig deleted',
    });
    await waitFor(async () => !(await exists(() => rbac.readNamespacedRole({ namespace: ns.name, name: 'hsig-high-water-marks' }))), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: 'Role garbage-collected',
    });
    const kept = await core.readNamespacedConfigMap({ namespace: ns.name, name: 'hsig-high-water-marks' });
    expect(JSON.parse(kept.data![MARKS_KEY]!).rollups[ROLLUP_A.toLowerCase()]).toBeDefined();
  }, 420_000);
});

/** A kubeconfig for ServiceAccount `operator` in `namespace`, bound to the rules of config/rbac/role.yaml. */
async function leastPrivilegeKubeconfig(namespace: string): Promise<string> {
  const { objects, core, rbac } = clients();
  for (const d of k8s.loadAllYaml(readFileSync(path.join(REPO_ROOT, 'config/rbac/role.yaml'), 'utf8')) as k8s.KubernetesObject[]) {
    const name = `${d.metadata!.name}-${namespace}`;
    await objects.create({ ...d, metadata: { ...d.metadata, name, ...(d.kind === 'Role' ? { namespace } : {}) } });
  }
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'operator' } } });
  const subjects = [{ kind: 'ServiceAccount', name: 'operator', namespace }];
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `ha-signer-operator-${namespace}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `ha-signer-operator-${namespace}` },
      subjects,
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'operator-leader-election' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `ha-signer-operator-leader-election-${namespace}` },
      subjects,
    },
  });
  const token = (await core.createNamespacedServiceAccountToken({ namespace, name: 'operator', body: { spec: { audiences: [] } } })).status!
    .token;
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(k8sEnv().kubeconfigPath!);
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'operator', token }],
    contexts: [{ name: 'operator', cluster: cluster.name, user: 'operator' }],
    currentContext: 'operator',
  });
  const file = path.join(path.dirname(k8sEnv().kubeconfigPath!), `operator-${namespace}.kubeconfig`);
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

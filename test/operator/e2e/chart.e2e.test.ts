/**
 * The chart against the real API server: `helm template | kubectl apply --dry-run=server` validates every object
 * with the server's schemas and admission; then the operator's RBAC is exercised for real: a ServiceAccount bound
 * to config/rbac/role.yaml can do everything the operator does (checked with SubjectAccessReview), nothing more.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../../harness/controlPlane.js';
import { clients, createTestNamespace, describeK8s, k8sEnv, type TestNamespace } from '../../harness/k8s.js';

describeK8s('Helm chart on the API server', () => {
  let ns: TestNamespace;
  beforeAll(async () => {
    ns = await createTestNamespace('chart');
    // Helm creates the `helm test` pod's ServiceAccount (hook weight -10) before the pod; a server dry run creates
    // nothing, and ServiceAccount admission refuses a Pod whose ServiceAccount does not exist: create it for real.
    const env = k8sEnv();
    execFileSync(env.kubectl!, ['--kubeconfig', env.kubeconfigPath!, 'create', 'serviceaccount', 'rel-ha-signer-test', '-n', ns.name]);
  });
  afterAll(async () => {
    await ns?.delete();
  });

  it('helm template | kubectl apply --dry-run=server', () => {
    const env = k8sEnv();
    const rendered = execFileSync(
      env.helm!,
      [
        'template',
        'rel',
        path.join(REPO_ROOT, 'charts/ha-signer'),
        '--namespace',
        ns.name,
        '--kube-version',
        env.version!.replace(/^v/, ''),
      ],
      { encoding: 'utf8' },
    );
    const out = execFileSync(env.kubectl!, ['--kubeconfig', env.kubeconfigPath!, 'apply', '--dry-run=server', '-n', ns.name, '-f', '-'], {
      input: rendered,
      encoding: 'utf8',
    });
    for (const kind of [
      'deployment.apps',
      'serviceaccount',
      'clusterrole.rbac.authorization.k8s.io',
      'clusterrolebinding.rbac.authorization.k8s.io',
      'role.rbac.authorization.k8s.io',
      'service',
      'poddisruptionbudget.policy',
    ]) {
      expect(out).toContain(`${kind}/`);
    }
    expect(out).toContain('(server dry run)');
  });

  it('config/rbac grants what the operator needs (SubjectAccessReview)', async () => {
    const { objects, kc } = clients();
    const docs = k8s.loadAllYaml(readFileSync(path.join(REPO_ROOT, 'config/rbac/role.yaml'), 'utf8')) as k8s.KubernetesObject[];
    const suffix = ns.name;
    const user = `system:serviceaccount:${ns.name}:operator`;
    for (const d of docs) {
      const obj = {
        ...d,
        metadata: { ...d.metadata, name: `${d.metadata!.name}-${suffix}`, ...(d.kind === 'Role' ? { namespace: ns.name } : {}) },
      };
      await objects.create(obj);
    }
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `ha-signer-operator-${suffix}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `ha-signer-operator-${suffix}` },
        subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: ns.name }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'le' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `ha-signer-operator-leader-election-${suffix}` },
        subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: ns.name }],
      },
    });
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const can = async (verb: string, group: string, resource: string, namespace?: string, name?: string, subresource?: string) =>
      (
        await authz.createSubjectAccessReview({
          body: {
            spec: {
              user,
              groups: ['system:serviceaccounts', `system:serviceaccounts:${ns.name}`],
              resourceAttributes: {
                verb,
                group,
                resource,
                ...(namespace ? { namespace } : {}),
                ...(name ? { name } : {}),
                ...(subresource ? { subresource } : {}),
              },
            },
          },
        })
      ).status!.allowed;
    const other = 'some-app-namespace';
    expect(await can('watch', 'ha-signer.dev', 'validatorhasigners')).toBe(true);
    expect(await can('patch', 'ha-signer.dev', 'validatorhasigners', other, 'x', 'status')).toBe(true);
    expect(await can('patch', 'apps', 'deployments', other)).toBe(true);
    expect(await can('create', 'batch', 'jobs', other)).toBe(true);
    expect(await can('watch', '', 'secrets')).toBe(true);
    expect(await can('create', 'events.k8s.io', 'events', other)).toBe(true);
    expect(await can('update', 'coordination.k8s.io', 'leases', ns.name)).toBe(true);
    expect(await can('bind', 'rbac.authorization.k8s.io', 'clusterroles', undefined, 'system:auth-delegator')).toBe(true);
    // Writes the operator needs: its own Secrets (stock Aztec nodes' generated URL secrets, the signer's JSON-RPC
    // clients file; RBAC cannot restrict create to owned objects) and the resource's metadata (cleanup finalizer).
    expect(await can('create', '', 'secrets', other)).toBe(true);
    expect(await can('patch', 'ha-signer.dev', 'validatorhasigners', other, 'x')).toBe(true);
    // The signers' high-water-mark Role + RoleBinding; RBAC lets it grant only what it holds (get/update/patch on configmaps).
    expect(await can('create', 'rbac.authorization.k8s.io', 'roles', other)).toBe(true);
    expect(await can('create', 'rbac.authorization.k8s.io', 'rolebindings', other)).toBe(true);
    expect(await can('update', '', 'configmaps', other, 'x-high-water-marks')).toBe(true);
    expect(await can('escalate', 'rbac.authorization.k8s.io', 'roles', other)).toBe(false);
    expect(await can('bind', 'rbac.authorization.k8s.io', 'roles', other)).toBe(false);
    // Least privilege otherwise: no leases elsewhere, no binding other roles, no creating or deleting resources.
    expect(await can('update', 'coordination.k8s.io', 'leases', other)).toBe(false);
    expect(await can('bind', 'rbac.authorization.k8s.io', 'clusterroles', undefined, 'cluster-admin')).toBe(false);
    expect(await can('create', 'ha-signer.dev', 'validatorhasigners', other)).toBe(false);
    expect(await can('delete', 'ha-signer.dev', 'validatorhasigners', other, 'x')).toBe(false);
    expect(await can('create', '', 'pods', other)).toBe(false);
    await rbac.deleteClusterRoleBinding({ name: `ha-signer-operator-${suffix}` });
    await rbac.deleteClusterRole({ name: `ha-signer-operator-${suffix}` });
  });
});

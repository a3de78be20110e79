/**
 * The Helm chart: `helm lint`, `helm template`, RBAC rules equal to config/rbac/role.yaml. The server-side dry run
 * against the test API server is in e2e/chart.e2e.test.ts. Skips with a message when the helm binary is not built.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { findControlPlaneBinaries, REPO_ROOT } from '../../harness/controlPlane.js';

const helm = findControlPlaneBinaries()?.helm;
const chart = path.join(REPO_ROOT, 'charts/ha-signer');
if (!helm)
  console.warn('chart tests skipped: helm not built (bash test/control-plane/build.sh builds .cache/control-plane/<version>/bin/helm)');

const template = (...args: string[]) =>
  k8s
    .loadAllYaml(execFileSync(helm!, ['template', 'rel', chart, '--namespace', 'ops', ...args], { encoding: 'utf8' }))
    .filter(Boolean) as k8s.KubernetesObject[];

describe.skipIf(!helm)('Helm chart', () => {
  it('passes helm lint', () => {
    expect(execFileSync(helm!, ['lint', chart], { encoding: 'utf8' })).toContain('0 chart(s) failed');
  });

  it('renders the operator Deployment with the contract env, restricted security and probes', () => {
    const objs = template();
    // Also the CRD, the view/edit ClusterRoles and the hooks (helm test pod, pre-delete Job and its RBAC): see test/chart/.
    expect([...new Set(objs.map((o) => o.kind))].sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'CustomResourceDefinition',
      'Deployment',
      'Job',
      'Pod',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    const d = objs.find((o) => o.kind === 'Deployment') as k8s.V1Deployment;
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.image).toBe('ghcr.io/ha-signer/ha-signer:0.1.0');
    expect(c.args?.[0]).toBe('operator');
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    expect(env).toMatchObject({
      HA_SIGNER_OPERATOR_IMAGE: 'ghcr.io/ha-signer/ha-signer:0.1.0',
      HA_SIGNER_OPERATOR_PORT: '8081',
      POD_NAMESPACE: 'metadata.namespace',
      POD_NAME: 'metadata.name',
    });
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
    expect(d.spec!.replicas).toBe(2);
  });

  it('values: signer image, watch namespace; schema rejects bad values', () => {
    const d = template('--set', 'signerImage=reg/ha-signer:9', '--set', 'watchNamespace=validators').find(
      (o) => o.kind === 'Deployment',
    ) as k8s.V1Deployment;
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.env?.find((e) => e.name === 'HA_SIGNER_OPERATOR_IMAGE')?.value).toBe('reg/ha-signer:9');
    expect(c.args).toContain('--namespace=validators');
    expect(() => execFileSync(helm!, ['template', 'rel', chart, '--set', 'replicaCount=0'], { encoding: 'utf8', stdio: 'pipe' })).toThrow(
      /replicaCount/,
    );
    expect(() =>
      execFileSync(helm!, ['template', 'rel', chart, '--set', 'leaderElection.leaseDuration=soon'], { encoding: 'utf8', stdio: 'pipe' }),
    ).toThrow(/leaseDuration/);
  });

  it('uses the RBAC rules of config/rbac/role.yaml', () => {
    const canonical = k8s.loadAllYaml(readFileSync(path.join(REPO_ROOT, 'config/rbac/role.yaml'), 'utf8')) as (
      k8s.V1ClusterRole | k8s.V1Role
    )[];
    const rendered = template();
    expect((rendered.find((o) => o.kind === 'ClusterRole') as k8s.V1ClusterRole).rules).toEqual(
      canonical.find((o) => o.kind === 'ClusterRole')!.rules,
    );
    expect((rendered.find((o) => o.kind === 'Role') as k8s.V1Role).rules).toEqual(canonical.find((o) => o.kind === 'Role')!.rules);
  });

  it('ServiceMonitor only when enabled and the API is available', () => {
    expect(template('--set', 'metrics.serviceMonitor.enabled=true').some((o) => o.kind === 'ServiceMonitor')).toBe(false);
    expect(
      template('--set', 'metrics.serviceMonitor.enabled=true', '--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor').some(
        (o) => o.kind === 'ServiceMonitor',
      ),
    ).toBe(true);
  });
});

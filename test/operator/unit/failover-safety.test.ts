/** The high-water-mark store wiring (ConfigMap, Role, RoleBinding, env, token) and the failover-safety conditions. */
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  buildDeployment,
  buildNetworkPolicy,
  buildHighWaterMarksConfigMap,
  buildHighWaterMarksRole,
  buildHighWaterMarksRoleBinding,
  desiredWorkload,
} from '../../../src/operator/desired/index.js';
import { applyWorkload } from '../../../src/operator/reconcile/workload.js';
import {
  historyIntactCondition,
  readSignerReports,
  synchronousReplicationCondition,
  type PodReport,
} from '../../../src/operator/reconcile/safety.js';
import { safetyFromEnv } from '../../../src/signer/safety.js';
import { FakeWorkloadApi } from './fake-api.js';
import { vhs } from './fixtures.js';

const CTX = { defaultImage: 'ha-signer:test' };
const envOf = (dep: k8s.V1Deployment) =>
  Object.fromEntries((dep.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));

describe('high-water-mark store (spec.protection.highWaterMarks)', () => {
  it('default Kubernetes: ConfigMap without owner reference or data, Role on exactly it, bound to the signer ServiceAccount', () => {
    const v = vhs();
    const cm = buildHighWaterMarksConfigMap(v);
    expect(cm.metadata!.name).toBe('sig-high-water-marks');
    expect(cm.metadata!.ownerReferences).toBeUndefined(); // kept when the resource is deleted
    expect(cm.data).toBeUndefined(); // server-side apply must never own (and so never reset) the marks
    const role = buildHighWaterMarksRole(v);
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['sig-high-water-marks'], verbs: ['get', 'update', 'patch'] },
    ]);
    expect(role.metadata!.ownerReferences?.[0]?.uid).toBe('uid-1');
    const binding = buildHighWaterMarksRoleBinding(v);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sig-high-water-marks' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sig-signer', namespace: 'val' }]);
    const dep = buildDeployment(v, CTX, { secretsChecksum: 'x' });
    expect(envOf(dep).HA_SIGNER_HIGH_WATER_MARKS_CONFIGMAP).toBe('val/sig-high-water-marks');
    expect(dep.spec!.template.spec!.automountServiceAccountToken).toBe(true);
    const kinds = desiredWorkload(v, CTX, { secretsChecksum: 'x', serviceMonitorCrd: false }).map((o) => `${o.kind}/${o.metadata!.name}`);
    // Before the Deployment: a signer whose store cannot be read does not start.
    expect(kinds.indexOf('RoleBinding/sig-high-water-marks')).toBeLessThan(kinds.indexOf('Deployment/sig'));
    expect(kinds).toContain('ConfigMap/sig-high-water-marks');
    // The signer accepts what the operator sets (the contract between them).
    expect(safetyFromEnv(envOf(dep), '').highWaterMarksConfigMap).toEqual({ namespace: 'val', name: 'sig-high-water-marks' });
  });

  it('Off: no env, no token (without ServiceAccount clients), Role and RoleBinding pruned, ConfigMap kept', async () => {
    const v = vhs({ protection: { highWaterMarks: 'Off' } });
    const dep = buildDeployment(v, CTX, { secretsChecksum: 'x' });
    expect(envOf(dep).HA_SIGNER_HIGH_WATER_MARKS_CONFIGMAP).toBeUndefined();
    expect(dep.spec!.template.spec!.automountServiceAccountToken).toBe(false);
    const api = new FakeWorkloadApi();
    await applyWorkload(v, api, CTX, new Map());
    expect(api.applied.map((o) => o.metadata!.name)).not.toContain('sig-high-water-marks');
    expect(api.deleted).toContain('RoleBinding val/sig-high-water-marks');
    expect(api.deleted).toContain('Role val/sig-high-water-marks');
    expect(api.deleted).not.toContain('ConfigMap val/sig-high-water-marks');
    // ServiceAccount clients still get their token for TokenReview.
    const sa = vhs({ protection: { highWaterMarks: 'Off' }, clients: { serviceAccounts: [{ name: 'n', validators: ['*'] }] } });
    expect(buildDeployment(sa, CTX, { secretsChecksum: 'x' }).spec!.template.spec!.automountServiceAccountToken).toBe(true);
  });
});

describe('NetworkPolicy: the operator reads /readyz', () => {
  it("admits the operator's pods (chart labels, its namespace) to the metrics port only", () => {
    const np = buildNetworkPolicy(vhs({ clients: { disableAuthentication: true } }), 'ha-signer-system');
    expect(np.spec!.ingress).toEqual([
      {
        _from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ha-signer-system' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ha-signer', 'app.kubernetes.io/component': 'operator' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 8082 }],
      },
    ]);
  });
});

const pod = (name: string, ip: string | undefined, phase = 'Running'): k8s.V1Pod => ({
  metadata: { name },
  status: { phase, ...(ip ? { podIP: ip } : {}) },
});
const synchronous = { synchronous: true, reasons: [], enforced: false };

describe('failover-safety conditions from the signers /readyz', () => {
  it('reads running pods with an IP on the metrics port, keeps per-pod errors', async () => {
    const asked: string[] = [];
    const reports = await readSignerReports(
      [pod('a', '10.0.0.1'), pod('b', '10.0.0.2'), pod('c', undefined), pod('d', '10.0.0.4', 'Pending')],
      async (url) => {
        asked.push(url);
        if (url.includes('10.0.0.2')) throw new Error('connect ECONNREFUSED');
        return { ready: true, replication: synchronous, historyRegressions: [] };
      },
    );
    expect(asked).toEqual(['http://10.0.0.1:8082/readyz', 'http://10.0.0.2:8082/readyz']);
    expect(reports).toEqual([
      { pod: 'a', report: { replication: synchronous, historyRegressions: [] } },
      { pod: 'b', error: 'connect ECONNREFUSED' },
    ]);
  });

  it('SynchronousReplication: True when every reporting pod is synchronous, False naming the reason and the setting, Unknown otherwise', () => {
    const ok: PodReport[] = [
      { pod: 'a', report: { replication: synchronous } },
      { pod: 'b', error: 'timeout' },
    ];
    expect(synchronousReplicationCondition(ok)).toMatchObject({ status: 'True', reason: 'Synchronous' });
    const lost: PodReport[] = [
      { pod: 'a', report: { replication: synchronous } },
      { pod: 'b', report: { replication: { synchronous: false, reasons: ['no synchronous standby is streaming'], enforced: true } } },
    ];
    const c = synchronousReplicationCondition(lost);
    expect(c).toMatchObject({ status: 'False', reason: 'NotSynchronous' });
    expect(c.message).toContain('1 of 2 pods');
    expect(c.message).toContain('b: no synchronous standby is streaming');
    expect(c.message).toContain('refuse duties');
    expect(synchronousReplicationCondition([{ pod: 'a', error: 'refused' }])).toMatchObject({
      status: 'Unknown',
      reason: 'SignersUnreachable',
    });
    expect(synchronousReplicationCondition([{ pod: 'a', report: {} }])).toMatchObject({ status: 'Unknown', reason: 'NotReported' });
    expect(synchronousReplicationCondition([])).toMatchObject({ status: 'Unknown', reason: 'NoSigners' });
  });

  it('HistoryIntact: False/DatabaseRegressed counting validators across pods, with the highest refused slot and the recovery commands', () => {
    const v = vhs();
    const regressed: PodReport[] = [
      { pod: 'a', report: { historyRegressions: [{ validatorAddress: '0xAA', refusedUpToSlot: '120' }] } },
      {
        pod: 'b',
        report: {
          historyRegressions: [
            { validatorAddress: '0xaa', refusedUpToSlot: '130' },
            { validatorAddress: '0xbb', refusedUpToSlot: '90' },
          ],
        },
      },
    ];
    const c = historyIntactCondition(v, regressed);
    expect(c).toMatchObject({ status: 'False', reason: 'DatabaseRegressed' });
    expect(c.message).toMatch(/^2 validator\(s\) \(0xaa, 0xbb\)/);
    expect(c.message).toContain('up to slot 130');
    expect(c.message).toContain('sig-high-water-marks');
    expect(c.message).toContain('ha-signer watermark raise');
    expect(c.message).toContain('ha-signer history import');
    expect(historyIntactCondition(v, [{ pod: 'a', report: { historyRegressions: [] } }])).toMatchObject({
      status: 'True',
      reason: 'HistoryIntact',
    });
    expect(historyIntactCondition(v, [{ pod: 'a', report: {} }])).toMatchObject({ status: 'Unknown', reason: 'NotReported' });
    expect(historyIntactCondition(v, [{ pod: 'a', error: 'x' }])).toMatchObject({ status: 'Unknown', reason: 'SignersUnreachable' });
    expect(historyIntactCondition(vhs({ protection: { highWaterMarks: 'Off' } }), regressed)).toMatchObject({
      status: 'Unknown',
      reason: 'HighWaterMarksOff',
    });
  });
});

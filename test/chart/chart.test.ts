/**
 * The chart as an operations team uses it: values that would crash-loop the operator are refused when rendering,
 * the schema is closed, monitoring objects can be forced, naming/labels/security are overridable, namespaced installs
 * render Roles only. The operator's own flag parser (src/operator/main.ts) judges the rendered arguments, so "renders"
 * and "starts" cannot drift apart. Server-side dry runs are in k8s/chart.apiserver.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseOperatorArgs } from '../../src/operator/main.js';
import {
  ALL_FEATURES,
  CHART,
  find,
  helm,
  type Obj,
  parseDocuments,
  renderNotes,
  template,
  templateError,
  templateText,
} from './support.js';

const deployment = (objs: Obj[]) => find(objs, 'Deployment') as k8s.V1Deployment;
const operatorArgs = (objs: Obj[]) => deployment(objs).spec!.template.spec!.containers[0]!.args!.slice(1);

describe.skipIf(!helm)('chart values', () => {
  it('helm lint --strict passes with the defaults and with every feature on', () => {
    expect(execFileSync(helm!, ['lint', '--strict', CHART], { encoding: 'utf8' })).toContain('0 chart(s) failed');
    expect(execFileSync(helm!, ['lint', '--strict', CHART, ...ALL_FEATURES], { encoding: 'utf8' })).toContain('0 chart(s) failed');
  });

  it('refuses leader-election timings the operator refuses, naming the value', () => {
    expect(templateError('--set', 'leaderElection.renewDeadline=15s')).toMatch(
      /leaderElection\.renewDeadline \(15s\) must be shorter than leaderElection\.leaseDuration \(15s\)/,
    );
    expect(templateError('--set', 'leaderElection.renewDeadline=1m')).toMatch(/leaderElection\.renewDeadline \(1m\)/);
    expect(templateError('--set', 'leaderElection.retryPeriod=10s')).toMatch(
      /leaderElection\.retryPeriod \(10s\) must be shorter than leaderElection\.renewDeadline \(10s\)/,
    );
    expect(templateError('--set', 'leaderElection.retryPeriod=9s')).toMatch(/leaderElection\.retryPeriod \(9s\)/);
    // Mixed units are compared by value: 0.5m = 30 s > 15 s.
    expect(templateError('--set', 'leaderElection.renewDeadline=0.5m')).toMatch(/leaderElection\.renewDeadline/);
    expect(templateError('--set', 'leaderElection.leaseDuration=16000ms')).toBe('');
  });

  it('refuses a zero resync period (schema, and the template check behind it)', () => {
    for (const zero of ['0s', '0m', '0.0s', '00ms']) expect(templateError('--set', `resyncPeriod=${zero}`)).toMatch(/resyncPeriod/);
    expect(templateError('--skip-schema-validation', '--set', 'resyncPeriod=0s')).toMatch(/resyncPeriod \(0s\) must be greater than zero/);
    expect(templateError('--set', 'leaderElection.retryPeriod=0s')).toMatch(/retryPeriod/);
  });

  it('what renders, the operator accepts; what the operator refuses, does not render', () => {
    const env = {
      POD_NAMESPACE: 'ops',
      HA_SIGNER_OPERATOR_IMAGE: 'ghcr.io/ha-signer/ha-signer:0.1.0',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBERNETES_SERVICE_PORT: '443',
    };
    const cases: [lease: string, renew: string, retry: string, resync: string][] = [
      ['15s', '10s', '2s', '5m'],
      ['15s', '15s', '2s', '5m'],
      ['15s', '10s', '8s', '5m'],
      ['15s', '10s', '9s', '5m'],
      ['1m', '45s', '5s', '1h'],
      ['6s', '4s', '1s', '30s'],
      ['2s', '1500ms', '1s', '1s'],
      ['1.5s', '1s', '500ms', '0.5s'],
      ['10s', '20s', '2s', '5m'],
      ['15s', '10s', '2s', '0s'],
      ['15s', '10s', '0ms', '5m'],
    ];
    for (const [lease, renew, retry, resync] of cases) {
      const set = [
        '--set',
        `leaderElection.leaseDuration=${lease}`,
        '--set',
        `leaderElection.renewDeadline=${renew}`,
        '--set',
        `leaderElection.retryPeriod=${retry}`,
        '--set',
        `resyncPeriod=${resync}`,
      ];
      const refused = templateError(...set);
      let operatorProblem = '';
      try {
        parseOperatorArgs(
          [
            '--lease-duration',
            lease,
            '--renew-deadline',
            renew,
            '--retry-period',
            retry,
            '--resync-period',
            resync,
            '--leader-elect',
            'true',
          ],
          env,
        );
      } catch (error) {
        operatorProblem = (error as Error).message;
      }
      expect({ lease, renew, retry, resync, chartRefuses: refused !== '' }, `chart: ${refused}; operator: ${operatorProblem}`).toEqual({
        lease,
        renew,
        retry,
        resync,
        chartRefuses: operatorProblem !== '',
      });
      if (!refused) expect(() => parseOperatorArgs(operatorArgs(template(...set)), env)).not.toThrow();
    }
    // Other values that become flags or env: whatever renders must start.
    for (const set of [
      ['workers=1'],
      ['workers=64'],
      ['port=1024'],
      ['port=65535'],
      ['watchNamespace=validators'],
      ['workers=0'],
      ['workers=65'],
      ['port=80'],
    ]) {
      const args = set.flatMap((v) => ['--set', v]);
      if (templateError(...args)) continue;
      const d = deployment(template(...args)).spec!.template.spec!.containers[0]!;
      const port = d.env!.find((e) => e.name === 'HA_SIGNER_OPERATOR_PORT')!.value!;
      expect(() => parseOperatorArgs(d.args!.slice(1), { ...env, HA_SIGNER_OPERATOR_PORT: port }), set.join()).not.toThrow();
    }
    expect(['workers=0', 'workers=65', 'port=80'].map((v) => templateError('--set', v) !== '')).toEqual([true, true, true]);
  });

  it('the schema is closed: misspelt keys are refused', () => {
    expect(templateError('--set', 'metrics.serviceMonitr.enabled=true')).toMatch(/additional properties 'serviceMonitr' not allowed/);
    expect(templateError('--set', 'replicas=3')).toMatch(/additional properties 'replicas' not allowed/);
    expect(templateError('--set', 'metrics.prometheusRule.enable=true')).toMatch(/'enable' not allowed/);
    expect(templateError('--set', 'resources.limit.memory=1Gi')).toMatch(/'limit' not allowed/);
    expect(templateError('--set', 'metrics.prometheusRule.disabledAlerts[0]=NoSuchThing')).toMatch(/disabledAlerts/);
  });

  it('ServiceMonitor and PrometheusRule: rendered with the API served or when forced; NOTES warn otherwise', () => {
    const kinds = (...args: string[]) => template(...args).map((o) => o.kind);
    expect(kinds('--set', 'metrics.serviceMonitor.enabled=true')).not.toContain('ServiceMonitor');
    expect(kinds('--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.force=true')).toContain('ServiceMonitor');
    expect(kinds('--set', 'metrics.serviceMonitor.enabled=false', '--set', 'metrics.serviceMonitor.force=true')).not.toContain(
      'ServiceMonitor',
    );
    expect(kinds('--set', 'metrics.prometheusRule.enabled=true', '--api-versions', 'monitoring.coreos.com/v1/PrometheusRule')).toContain(
      'PrometheusRule',
    );
    expect(kinds('--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.force=true')).toContain('PrometheusRule');
    const notes = renderNotes('--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true');
    expect(notes).toMatch(/WARNING: metrics\.serviceMonitor\.enabled=true but this cluster does not serve/);
    expect(notes).toMatch(/WARNING: metrics\.prometheusRule\.enabled=true/);
  });

  it('NOTES.txt has no placeholder URL and names real commands', () => {
    for (const args of [[], ['--set', 'crds.enabled=false'], ['--set', 'rbac.namespaced=true', '--set', 'watchNamespace=validators']]) {
      const notes = renderNotes(...args);
      expect(notes).not.toMatch(/\.\.\.\/|https?:\/\/\.\.\.|<placeholder>|TODO/);
      expect(notes).toContain('kubectl -n ops rollout status deployment/rel-ha-signer');
      expect(notes).toContain('helm test rel -n ops');
      expect(notes).not.toContain('WARNING');
    }
    expect(renderNotes('--set', 'crds.enabled=false')).toContain('--show-only templates/crd-validatorhasigners.yaml');
  });

  it('operator container: FallbackToLogsOnError, grace period, overridable security contexts', () => {
    const d = deployment(template());
    const pod = d.spec!.template.spec!;
    expect(pod.containers[0]!.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0]!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const custom = deployment(
      template(
        '--set',
        'podSecurityContext.runAsUser=2000',
        '--set',
        'podSecurityContext.fsGroup=2000',
        '--set',
        'containerSecurityContext.readOnlyRootFilesystem=false',
        '--set',
        'terminationGracePeriodSeconds=60',
      ),
    ).spec!.template.spec!;
    expect(custom.securityContext).toMatchObject({ runAsUser: 2000, fsGroup: 2000 });
    expect(custom.containers[0]!.securityContext!.readOnlyRootFilesystem).toBe(false);
    expect(custom.terminationGracePeriodSeconds).toBe(60);
  });

  it('nameOverride, fullnameOverride, podLabels, topologySpreadConstraints', () => {
    const named = template('--set', 'nameOverride=signer-operator');
    expect(deployment(named).metadata!.name).toBe('rel-signer-operator');
    expect(deployment(named).spec!.selector.matchLabels!['app.kubernetes.io/name']).toBe('signer-operator');
    const full = template('--set', 'fullnameOverride=vhs-operator');
    expect(full.filter((o) => o.kind !== 'CustomResourceDefinition').every((o) => o.metadata!.name!.startsWith('vhs-operator'))).toBe(true);
    expect(find(full, 'ClusterRoleBinding').subjects![0]).toEqual({ kind: 'ServiceAccount', name: 'vhs-operator', namespace: 'ops' });
    expect(templateError('--set', 'fullnameOverride=Not_A_Name')).toMatch(/fullnameOverride/);

    const d = deployment(template(...ALL_FEATURES));
    expect(d.spec!.template.metadata!.labels).toMatchObject({ team: 'validators', 'app.kubernetes.io/component': 'operator' });
    expect(d.spec!.template.spec!.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: d.spec!.selector.matchLabels },
      },
    ]);
    expect(templateError('--set', 'topologySpreadConstraints[0].maxSkew=1')).toMatch(/topologyKey|whenUnsatisfiable/);
  });

  it('cluster install: one ClusterRole (namespaced + cluster rules) and view/edit roles aggregated into the built-in ones', () => {
    const objs = template();
    const operatorRole = find(objs, 'ClusterRole', 'rel-ha-signer');
    expect(operatorRole.rules!.some((r) => r.resources?.includes('clusterrolebindings'))).toBe(true);
    const view = find(objs, 'ClusterRole', 'rel-ha-signer-view');
    expect(view.metadata!.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-view': 'true',
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
    });
    expect(view.rules).toEqual([
      {
        apiGroups: ['ha-signer.dev'],
        resources: ['validatorhasigners', 'validatorhasigners/status', 'validatorhasigners/scale'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    const edit = find(objs, 'ClusterRole', 'rel-ha-signer-edit');
    expect(edit.metadata!.labels!['rbac.authorization.k8s.io/aggregate-to-view']).toBeUndefined();
    expect(edit.metadata!.labels!['rbac.authorization.k8s.io/aggregate-to-edit']).toBe('true');
    expect(edit.rules![0]!.verbs).toEqual(expect.arrayContaining(['create', 'update', 'patch', 'delete']));
    expect(
      template('--set', 'rbac.aggregateToDefaultRoles=false')
        .filter((o) => o.kind === 'ClusterRole')
        .map((o) => o.metadata!.name),
    ).toEqual(['rel-ha-signer']);
  });

  it('namespaced install: Roles only, the same namespaced rules in the watched namespace', () => {
    expect(templateError('--set', 'rbac.namespaced=true')).toMatch(/rbac\.namespaced=true needs watchNamespace/);
    const objs = template('--set', 'rbac.namespaced=true', '--set', 'watchNamespace=validators', '--set', 'crds.enabled=false');
    expect(objs.filter((o) => o.kind!.startsWith('Cluster'))).toEqual([]);
    const cluster = find(template(), 'ClusterRole', 'rel-ha-signer').rules!;
    const role = find(objs, 'Role', 'rel-ha-signer');
    expect(role.metadata!.namespace).toBe('validators');
    // Everything but the cluster-scoped RBAC (the TokenReview binding); Roles/RoleBindings for the signers' marks stay.
    expect(role.rules).toEqual(cluster.filter((r) => !r.resources!.some((k) => k === 'clusterrolebindings' || k === 'clusterroles')));
    expect(find(objs, 'RoleBinding', 'rel-ha-signer').metadata!.namespace).toBe('validators');
    // Database claims are ConfigMaps in the operator's own namespace.
    const le = find(objs, 'Role', 'rel-ha-signer-leader-election');
    expect(le.metadata!.namespace).toBe('ops');
    expect(le.rules!.map((r) => r.resources![0])).toEqual(['leases', 'configmaps']);
    expect(deployment(objs).spec!.template.spec!.containers[0]!.args).toContain('--namespace=validators');
    // The operator is told: it then touches no cluster-scoped object (which these Roles could not allow).
    expect(deployment(objs).spec!.template.spec!.containers[0]!.args).toContain('--namespaced');
    expect(deployment(template()).spec!.template.spec!.containers[0]!.args).not.toContain('--namespaced');
  });

  it('maxHeapMiB: NODE_OPTIONS bounds the heap below the memory limit (RSS was 422.5 MiB over the 384Mi limit without it)', () => {
    const env = (objs: ReturnType<typeof template>) => deployment(objs).spec!.template.spec!.containers[0]!.env!;
    expect(env(template()).find((e) => e.name === 'NODE_OPTIONS')?.value).toBe('--max-old-space-size=192');
    expect(
      env(template('--set', 'maxHeapMiB=512', '--set', 'resources.limits.memory=1Gi')).find((e) => e.name === 'NODE_OPTIONS')?.value,
    ).toBe('--max-old-space-size=512');
    expect(env(template('--set', 'maxHeapMiB=0')).some((e) => e.name === 'NODE_OPTIONS')).toBe(false);
    expect(templateError('--set', 'maxHeapMiB=384')).toMatch(/maxHeapMiB \(384\) must be below resources.limits.memory \(384Mi, 384 MiB\)/);
    expect(templateError('--set', 'maxHeapMiB=2048', '--set', 'resources.limits.memory=2Gi')).toMatch(
      /must be below resources.limits.memory/,
    );
    expect(templateError('--set', 'maxHeapMiB=-1')).toMatch(/maxHeapMiB/);
  });

  it('crds.enabled / crds.keep', () => {
    const crd = find(template(), 'CustomResourceDefinition');
    expect(crd.metadata!.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    expect(find(template('--set', 'crds.keep=false'), 'CustomResourceDefinition').metadata!.annotations).toBeUndefined();
    expect(template('--set', 'crds.enabled=false').some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);
  });

  it('hooks: helm test pod and the pre-delete Job do not match the operator selector; the Job stops this Deployment', () => {
    const objs = template();
    const selector = deployment(objs).spec!.selector.matchLabels!;
    const testPod = find(objs, 'Pod') as k8s.V1Pod;
    expect(testPod.metadata!.annotations!['helm.sh/hook']).toBe('test');
    // The project's CLI through the image's entrypoint (no command: the distroless image has no shell).
    expect(testPod.spec!.containers[0]!.command).toBeUndefined();
    expect(testPod.spec!.containers[0]!.args).toEqual([
      'check',
      'ready',
      '--service=rel-ha-signer-metrics',
      '--namespace=ops',
      '--port=metrics',
      '--path=/readyz',
      '--timeout=60s',
    ]);
    expect(testPod.spec!.serviceAccountName).toBe('rel-ha-signer-test');
    expect(find(objs, 'Role', 'rel-ha-signer-test').rules).toEqual([
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] },
    ]);
    const job = find(objs, 'Job') as k8s.V1Job;
    expect(job.metadata!.annotations).toMatchObject({ 'helm.sh/hook': 'pre-delete', 'helm.sh/hook-weight': '0' });
    for (const labels of [testPod.metadata!.labels!, job.spec!.template.metadata!.labels!]) {
      expect(Object.entries(selector).every(([k, v]) => labels[k] === v)).toBe(false);
    }
    const hookContainer = job.spec!.template.spec!.containers[0]!;
    expect(hookContainer.command).toBeUndefined();
    expect(hookContainer.args).toEqual(['operator-stop', '--deployment=rel-ha-signer', '--namespace=ops', '--timeout=120s']);
    // Its RBAC exists before the Job (lower weight) and may only scale this Deployment.
    const role = find(objs, 'Role', 'rel-ha-signer-uninstall');
    expect(Number(role.metadata!.annotations!['helm.sh/hook-weight'])).toBeLessThan(0);
    expect(role.rules![0]).toEqual({
      apiGroups: ['apps'],
      resources: ['deployments/scale'],
      resourceNames: ['rel-ha-signer'],
      verbs: ['get', 'update'],
    });
    // The grace period covers the operator's drain; the hook waits longer than that.
    expect(Number(/^--timeout=(\d+)s$/.exec(hookContainer.args!.at(-1)!)![1])).toBeGreaterThan(
      deployment(objs).spec!.template.spec!.terminationGracePeriodSeconds!,
    );
    expect(
      template('--set', 'uninstallHook.enabled=false', '--set', 'tests.enabled=false').some((o) => o.kind === 'Job' || o.kind === 'Pod'),
    ).toBe(false);
  });

  it('every rendered document is valid YAML without duplicate keys', () => {
    // js-yaml (under loadYaml) refuses duplicate mapping keys, which kubectl would refuse too.
    expect(parseDocuments(templateText(...ALL_FEATURES)).length).toBeGreaterThan(15);
  });
});

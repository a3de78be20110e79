/**
 * The chart on the test control plane (real kube-apiserver, controllers and the local kubelet running the project's
 * image): every feature on, applied by server-side dry run (with the Prometheus operator's real CRDs installed for the
 * run); namespaced mode; aggregated view/edit roles judged by the API server; and a real `helm install` -> a resource
 * Ready -> `helm test` (the chart's test pod, run by the local kubelet) -> `helm upgrade` -> `helm uninstall` whose
 * pre-delete hook Job (run through Helm) stops the operator so that the leader releases its Lease before the RBAC goes.
 */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  applyTokenSigner,
  chartRelease,
  createHelm,
  createSignerSecrets,
  deleteVhs,
  type HelmCli,
  installChart,
  operatorLeaseHolder,
  operatorPods,
  runHelmTest,
  uninstallChart,
  waitForOperatorLeader,
} from '../../harness/helm-install.js';
import {
  clients,
  createTestNamespace,
  describeK8s,
  k8sEnv,
  kubeConfig,
  podProcess,
  type TestNamespace,
  waitFor,
} from '../../harness/k8s.js';
import { createVhs, ROLLUP_A, vhsBody, waitForCondition } from '../../operator/e2e/support.js';
import { GROUP, PLURAL, VERSION } from '../../../src/operator/types.js';
import { ALL_FEATURES, CHART, parseDocuments, REPO_ROOT } from '../support.js';

const MONITORING_CRDS = ['prometheusrules', 'servicemonitors'].map((p) =>
  path.join(REPO_ROOT, `test/chart/fixtures/monitoring.coreos.com_${p}.yaml`),
);

describeK8s('Helm chart on the test control plane', () => {
  let ns: TestNamespace;
  let helm: HelmCli;
  const env = () => k8sEnv();
  const kubectl = (args: string[], input?: string) =>
    execFileSync(env().kubectl!, ['--kubeconfig', env().kubeconfigPath!, ...args], {
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  const kubeVersion = () => env().version!.replace(/^v/, '');

  beforeAll(async () => {
    helm = createHelm('ha-signer-chart-');
    ns = await createTestNamespace('chartops');
    // Helm creates the test hook's ServiceAccount (weight -10) before its Pod; in a server dry run nothing is created,
    // and ServiceAccount admission refuses a Pod whose ServiceAccount does not exist: create it for real.
    kubectl(['create', 'serviceaccount', 'rel-ha-signer-test', '-n', ns.name]);
    for (const crd of MONITORING_CRDS) kubectl(['apply', '--server-side', '-f', crd]);
    for (const crd of ['prometheusrules', 'servicemonitors'])
      kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${crd}.monitoring.coreos.com`]);
  });
  afterAll(async () => {
    // Other test files check the operator's behaviour without the ServiceMonitor CRD: leave the cluster as found.
    for (const crd of MONITORING_CRDS) kubectl(['delete', '--ignore-not-found', '--wait=true', '-f', crd]);
    await ns?.delete();
    helm?.remove();
  });

  it('every feature on: helm template | kubectl apply --dry-run=server accepts every object', () => {
    const rendered = execFileSync(
      env().helm!,
      ['template', 'rel', CHART, '--namespace', ns.name, '--kube-version', kubeVersion(), ...ALL_FEATURES],
      { encoding: 'utf8' },
    );
    const kinds = new Set(parseDocuments(rendered).map((o) => o.kind));
    for (const kind of ['PrometheusRule', 'ServiceMonitor', 'ConfigMap', 'CustomResourceDefinition', 'Job', 'Pod', 'ClusterRole'])
      expect(kinds).toContain(kind);
    const out = kubectl(['apply', '--server-side', '--dry-run=server', '--force-conflicts', '-n', ns.name, '-f', '-'], rendered);
    const applied = out.trim().split('\n');
    expect(applied.length).toBe(parseDocuments(rendered).length);
    for (const line of applied) expect(line).toMatch(/serverside-applied \(server dry run\)$/);
    for (const kind of [
      'prometheusrule.monitoring.coreos.com/rel-ha-signer',
      'servicemonitor.monitoring.coreos.com/rel-ha-signer',
      'configmap/rel-ha-signer-dashboard',
      'job.batch/rel-ha-signer-uninstall',
    ]) {
      expect(out).toContain(kind);
    }
  });

  it('namespaced install: Roles only, accepted by the API server', () => {
    const rendered = execFileSync(
      env().helm!,
      [
        'template',
        'rel',
        CHART,
        '--namespace',
        ns.name,
        '--kube-version',
        kubeVersion(),
        '--set',
        'rbac.namespaced=true',
        '--set',
        `watchNamespace=${ns.name}`,
        '--set',
        'crds.enabled=false',
      ],
      { encoding: 'utf8' },
    );
    expect(parseDocuments(rendered).filter((o) => o.kind!.startsWith('Cluster'))).toEqual([]);
    const out = kubectl(['apply', '--server-side', '--dry-run=server', '-n', ns.name, '-f', '-'], rendered);
    expect(out).toContain(`role.rbac.authorization.k8s.io/rel-ha-signer serverside-applied (server dry run)`);
  });

  it('helm install runs the operator; the pre-delete hook stops it so the Lease is released; uninstall leaves nothing', async () => {
    const { release, fullname } = chartRelease(ns.name);
    const { apps } = clients();
    const kc = kubeConfig();
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const started = Date.now();
    installChart(helm, { release, namespace: ns.name, image: { tag: 'test' }, replicas: 2, fastLeaderElection: true, timeout: '150s' });
    const holder = await waitForOperatorLeader(ns.name);
    console.log(`chart: helm install --wait + leader elected in ${Date.now() - started} ms (leader ${holder})`);

    // The operator from the chart's own pod spec reconciles a resource to Ready (migration Job, signer pods).
    await createSignerSecrets(ns.name, { database: 'chart_install', token: 'x'.repeat(40) });
    const readyMs = await applyTokenSigner(ns.name, 'fromchart', { replicas: 2, timeoutMs: 120_000 });
    console.log(`chart: ValidatorHASigner Ready=True ${readyMs} ms after apply (operator installed by the chart)`);

    // helm test, through Helm: the chart's test pod (ha-signer check ready --service, the project's CLI from the
    // image's entrypoint) with its own ServiceAccount finds the operator's ready endpoint and passes.
    const helmTest = (when: string) => {
      const { out, ms } = runHelmTest(helm, release, ns.name);
      console.log(`chart: helm test (${when}) passed in ${ms} ms`);
      expect(out).toMatch(new RegExp(`TEST SUITE:\\s+${fullname}-test-operator-ready[\\s\\S]*Phase:\\s+Succeeded`));
    };
    helmTest('after install');

    // helm upgrade: a changed value rolls the operator; a leader is elected again, the resource stays Ready and helm test passes.
    helm.run(['upgrade', release, CHART, '-n', ns.name, '--reuse-values', '--set', 'workers=2', '--wait', '--timeout', '150s']);
    expect(
      (await apps.readNamespacedDeployment({ namespace: ns.name, name: fullname })).spec!.template.spec!.containers[0]!.args,
    ).toContain('--workers=2');
    await waitForOperatorLeader(ns.name, 'operator leader Lease after upgrade');
    await waitForCondition(ns.name, 'fromchart', 'Ready', 'True', { timeoutMs: 120_000 });
    helmTest('after upgrade');

    // Aggregated roles: a namespace user bound to the built-in edit role may create ValidatorHASigners; view may read.
    const can = async (user: string, verb: string) =>
      (
        await authz.createSubjectAccessReview({
          body: {
            spec: { user, resourceAttributes: { verb, group: 'ha-signer.dev', resource: 'validatorhasigners', namespace: ns.name } },
          },
        })
      ).status!.allowed;
    for (const role of ['edit', 'view']) {
      await rbac.createNamespacedRoleBinding({
        namespace: ns.name,
        body: {
          metadata: { name: `${role}-user` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'User', name: `${role}-user`, apiGroup: 'rbac.authorization.k8s.io' }],
        },
      });
    }
    await waitFor(async () => (await can('edit-user', 'create')) || undefined, { timeoutMs: 30_000, message: 'edit role aggregated' });
    expect(await can('view-user', 'list')).toBe(true);
    expect(await can('view-user', 'create')).toBe(false);
    expect(await can('someone-else', 'list')).toBe(false);

    // The resource goes first (the running operator removes its finalizer and cluster-scoped objects).
    await deleteVhs(ns.name, 'fromchart');
    await waitFor(
      async () =>
        (await clients()
          .custom.getNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            namespace: ns.name,
            name: 'fromchart',
          })
          .then(
            () => undefined,
            () => true,
          )) ?? undefined,
      { timeoutMs: 60_000, message: 'ValidatorHASigner deleted' },
    );

    // helm uninstall with its hooks, through Helm: the pre-delete Job (ha-signer operator-stop, with its own
    // ServiceAccount) scales the operator to 0 and waits for the pods while the operator's RBAC still exists, so the
    // leader releases its Lease on SIGTERM; then Helm deletes the release and the hook's objects.
    expect(await operatorLeaseHolder(ns.name)).toBeTruthy();
    const uninstallMs = uninstallChart(helm, release, ns.name, { hooks: true });
    console.log(`chart: helm uninstall (pre-delete hook included) took ${uninstallMs} ms`);
    const { core, objects } = clients();
    const exists = (apiVersion: string, kind: string, name: string, namespace?: string) =>
      objects.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } }).then(
        () => true,
        () => false,
      );
    for (const [apiVersion, kind, namespace, name] of [
      ['apps/v1', 'Deployment', ns.name, fullname],
      ['rbac.authorization.k8s.io/v1', 'ClusterRole', undefined, fullname],
      ['rbac.authorization.k8s.io/v1', 'ClusterRole', undefined, `${fullname}-view`],
      ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, fullname],
      ['rbac.authorization.k8s.io/v1', 'RoleBinding', ns.name, `${fullname}-leader-election`],
      // The hooks' objects: deleted by their hook-succeeded policy.
      ['batch/v1', 'Job', ns.name, `${fullname}-uninstall`],
      ['v1', 'ServiceAccount', ns.name, `${fullname}-uninstall`],
      ['rbac.authorization.k8s.io/v1', 'Role', ns.name, `${fullname}-uninstall`],
      ['rbac.authorization.k8s.io/v1', 'RoleBinding', ns.name, `${fullname}-uninstall`],
      ['v1', 'Pod', ns.name, `${fullname}-test-operator-ready`],
      ['v1', 'ServiceAccount', ns.name, `${fullname}-test`],
      ['rbac.authorization.k8s.io/v1', 'Role', ns.name, `${fullname}-test`],
      ['rbac.authorization.k8s.io/v1', 'RoleBinding', ns.name, `${fullname}-test`],
    ] as const) {
      expect(await exists(apiVersion, kind, name, namespace), `${kind} ${name} after uninstall`).toBe(false);
    }
    expect(await operatorPods(ns.name, fullname)).toEqual([]);
    // Nothing held: the leader released the Lease (before RBAC went) instead of letting it expire.
    expect(await operatorLeaseHolder(ns.name)).toBe('');
    // Nothing left of the resource either: no TokenReview binding, no database-claim ConfigMap.
    const leftovers = (await rbac.listClusterRoleBinding()).items.filter((b) =>
      b.subjects?.some((s) => s.namespace === ns.name && s.kind === 'ServiceAccount'),
    );
    expect(leftovers.map((b) => b.metadata!.name)).toEqual([]);
    // The resource's objects (claim and clients ConfigMaps, signer pods) go with it (garbage collector: waited for).
    const leftOver = async () => [
      ...(await core.listNamespacedConfigMap({ namespace: ns.name })).items
        .map((c) => `ConfigMap ${c.metadata!.name}`)
        // kube-root-ca.crt is Kubernetes'; the high-water marks are kept on purpose (failover-safety data, not a hold).
        .filter((n) => n !== 'ConfigMap kube-root-ca.crt' && n !== 'ConfigMap fromchart-high-water-marks'),
      ...(await core.listNamespacedPod({ namespace: ns.name })).items.map((p) => `Pod ${p.metadata!.name}`),
    ];
    await waitFor(async () => ((await leftOver()).length === 0 ? true : undefined), {
      timeoutMs: 60_000,
      message: 'no ConfigMaps or pods left in the namespace',
    }).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${(await leftOver()).join(', ')}`);
    });
  }, 300_000);

  // The failure paths of the two commands against the real API server (admin kubeconfig): a check with no ready
  // endpoint fails with the reason; operator-stop on a missing Deployment logs and exits 0 (the uninstall goes on),
  // or exits 1 with --strict.
  it('check ready --service and operator-stop fail with the reason', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/cli.js'), ...args], {
          env: { PATH: process.env.PATH ?? '', KUBECONFIG: env().kubeconfigPath!, HA_SIGNER_LOG_FORMAT: 'json' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
    const { core } = clients();
    await core.createNamespacedService({
      namespace: ns.name,
      body: { metadata: { name: 'nobody' }, spec: { selector: { app: 'nobody' }, ports: [{ name: 'metrics', port: 8081 }] } },
    });
    const check = await run([
      'check',
      'ready',
      '--service=nobody',
      `--namespace=${ns.name}`,
      '--port=metrics',
      '--timeout=2s',
      '--interval=500ms',
    ]);
    expect(check.code).toBe(1);
    expect(check.out).toContain(`Service ${ns.name}/nobody has no ready endpoints on port metrics`);
    const stop = await run(['operator-stop', '--deployment=absent', `--namespace=${ns.name}`, '--timeout=2s']);
    expect(stop.code).toBe(0);
    expect(stop.out).toContain('could not stop the operator before uninstall (uninstalling anyway): HTTP 404');
    const strict = await run(['operator-stop', '--deployment=absent', `--namespace=${ns.name}`, '--timeout=2s', '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.out).toContain('could not stop the operator: HTTP 404: deployments.apps \\"absent\\" not found');
    expect(strict.out).not.toContain('TypeError');
  });

  // The same hooks in image mode (the local kubelet runs the pods chrooted into the image scripts/build-image.sh built:
  // distroless, no shell): the test pod and the pre-delete Job run the image's entrypoint with the chart's args.
  it.skipIf(!k8sEnv().imageRef)(
    'image mode: helm test and the pre-delete hook run from the built image',
    async () => {
      const other = await createTestNamespace('chartimg');
      try {
        const { release, fullname } = chartRelease(other.name);
        installChart(helm, {
          release,
          namespace: other.name,
          image: { ref: env().imageRef! },
          replicas: 1,
          fastLeaderElection: true,
          timeout: '170s',
        });
        await waitForOperatorLeader(other.name);
        const [operatorPod] = await operatorPods(other.name, fullname);
        expect(podProcess(other.name, operatorPod!)?.mode).toBe('image');
        const { out, ms } = runHelmTest(helm, release, other.name);
        console.log(`chart (image mode): helm test passed in ${ms} ms`);
        expect(out).toMatch(/Phase:\s+Succeeded/);
        const uninstallMs = uninstallChart(helm, release, other.name, { hooks: true });
        console.log(`chart (image mode): helm uninstall (pre-delete hook included) took ${uninstallMs} ms`);
        expect(await operatorPods(other.name, fullname)).toEqual([]);
        expect(await operatorLeaseHolder(other.name)).toBe('');
        const jobs = await clients()
          .objects.read({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: `${fullname}-uninstall`, namespace: other.name } })
          .then(
            () => true,
            () => false,
          );
        expect(jobs, 'hook Job deleted after success').toBe(false);
      } finally {
        await other.delete();
      }
    },
    300_000,
  );

  it('namespaced install (Roles only) runs: the operator syncs its informers and leads with namespace rights alone', async () => {
    const other = await createTestNamespace('chartns');
    try {
      const { release, fullname } = chartRelease(other.name);
      installChart(helm, { release, namespace: other.name, image: { tag: 'test' }, replicas: 1, namespacedRbac: true, timeout: '150s' });
      await waitForOperatorLeader(other.name);
      // A resource reaches Ready with the Roles alone (before --namespaced, every reconcile failed with 403 on
      // deleting the cluster-scoped TokenReview binding); ServiceAccount clients, which need that binding, are refused
      // with a reason that says so.
      await createSignerSecrets(other.name, { database: 'chart_namespaced', token: 'y'.repeat(40) });
      const readyMs = await applyTokenSigner(other.name, 'scoped', { replicas: 1, timeoutMs: 120_000 });
      console.log(`chart (namespaced): ValidatorHASigner Ready=True ${readyMs} ms after apply`);
      await createVhs(
        other.name,
        vhsBody('wants-sa', {
          rollup: { address: ROLLUP_A, version: 'v1' },
          replicas: 1,
          clients: { serviceAccounts: [{ name: 'node', validators: ['*'] }] },
        }),
      );
      const refused = await waitForCondition(other.name, 'wants-sa', 'Ready', 'False', {
        reason: 'ClusterScopeRequired',
        timeoutMs: 60_000,
      });
      expect(refused.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain('system:auth-delegator');
      const { objects } = clients();
      const clusterRole = await objects
        .read({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: fullname } })
        .then(
          () => true,
          () => false,
        );
      expect(clusterRole).toBe(false);
      uninstallChart(helm, release, other.name, { hooks: false });
    } finally {
      await other.delete();
    }
  });

  // The defect the hook fixes, measured (not asserted: it depends on how fast the pods get SIGTERM): without the hook,
  // helm deletes the RBAC while the operator pods are still stopping, the leader cannot release its Lease, and the
  // next install waits up to a lease duration.
  it('without the hook (--no-hooks) the leader usually cannot release its Lease', async () => {
    const other = await createTestNamespace('chartnohook');
    try {
      const { release, fullname } = chartRelease(other.name);
      installChart(helm, { release, namespace: other.name, image: { tag: 'test' }, replicas: 1, timeout: '150s' });
      await waitForOperatorLeader(other.name);
      uninstallChart(helm, release, other.name, { hooks: false });
      await waitFor(async () => ((await operatorPods(other.name, fullname)).length === 0 ? true : undefined), {
        timeoutMs: 60_000,
        message: 'operator pods gone',
      });
      const holder = await operatorLeaseHolder(other.name);
      console.log(
        `chart: helm uninstall --no-hooks: Lease holder afterwards ${holder ? `still ${JSON.stringify(holder)} (held until it expires)` : 'empty (released)'}`,
      );
    } finally {
      await other.delete();
    }
  });
});

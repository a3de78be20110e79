/**
 * The operator against a real control plane and the local kubelet: migration Job run for real against the test
 * PostgreSQL, then the signer workload with the right specs and Ready=True; one database per rollup version;
 * failed migrations block the rollout; Secret changes roll the pods; scale subresource; garbage collection; the
 * API server rejects invalid resources with the CRD's messages.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../../harness/controlPlane.js';
import { clients, createTestNamespace, describeK8s, listPods, PROJECT_IMAGE, waitFor, type TestNamespace } from '../../harness/k8s.js';
import { createTestDatabase } from '../../support/postgres.js';
import { GROUP, PLURAL, VERSION } from '../../../src/operator/types.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import {
  condition,
  createSecret,
  createVhs,
  exists,
  getVhs,
  rejection,
  ROLLUP_A,
  ROLLUP_B,
  validatorKey,
  vhsBody,
  waitForCondition,
} from './support.js';

const run = promisify(execFile);

describeK8s('operator e2e', () => {
  let ns: TestNamespace;
  let op: OperatorProcess;
  let dbUrl: string;
  const c = () => clients();
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    ns = await createTestNamespace('op');
    dbUrl = await createTestDatabase('op_e2e');
    await createSecret(ns.name, 'db', { uri: dbUrl });
    await createSecret(ns.name, 'keys', { 'validator-1': validatorKey() });
    op = await startOperatorProcess({ namespace: ns.name });
  });

  afterAll(async () => {
    if (op) {
      const code = await op.stop();
      if (code !== 0) console.log(`operator exit code ${code}; log tail:\n${op.logs().split('\n').slice(-40).join('\n')}`);
    }
    console.log(`operator e2e timings (ms): ${JSON.stringify(timings)}`);
    await ns?.delete();
  });

  it('runs the migration Job, then deploys the signer and reports Ready=True', async () => {
    const t0 = Date.now();
    await createVhs(ns.name, vhsBody('alpha', { rollup: { address: ROLLUP_A, version: 'v1' }, replicas: 2 }));
    // The Job: URL only through secretKeyRef, restricted security, owned.
    const job = await waitFor(
      async () => (await c().batch.listNamespacedJob({ namespace: ns.name, labelSelector: 'app.kubernetes.io/instance=alpha' })).items[0],
      { timeoutMs: 30_000, message: `migration Job; operator log:\n${op.logs()}` },
    );
    timings.applyToJob = Date.now() - t0;
    expect(job.metadata!.name).toMatch(/^alpha-migrate-[0-9a-f]{10}$/);
    expect(job.metadata!.ownerReferences?.[0]).toMatchObject({ kind: 'ValidatorHASigner', name: 'alpha', controller: true });
    expect(job.spec!.backoffLimit).toBe(3);
    expect(job.spec!.ttlSecondsAfterFinished).toBe(3600);
    const mc = job.spec!.template.spec!.containers[0]!;
    expect(mc.args).toEqual(['migrate', 'up', '--rollup-address', ROLLUP_A]);
    expect(mc.env).toEqual([{ name: 'VALIDATOR_HA_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'uri' } } }]);
    expect(JSON.stringify(job)).not.toContain(new URL(dbUrl).password || '\u0000');
    expect(mc.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(job.spec!.template.spec!.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');

    const migrated = await waitForCondition(ns.name, 'alpha', 'Migrated', 'True', { timeoutMs: 90_000 });
    timings.applyToMigrated = Date.now() - t0;
    expect(condition(migrated, 'DatabaseClaimed')?.status).toBe('True');
    // The identity comes from the server (reported by the Job), the address from the URI; no credentials.
    expect(migrated.status?.databaseIdentity).toMatch(/^\d+\/\d+$/);
    expect(migrated.status?.database).toMatchObject({
      address: `${new URL(dbUrl).hostname}:${new URL(dbUrl).port}/${new URL(dbUrl).pathname.slice(1)}`,
      name: new URL(dbUrl).pathname.slice(1),
    });
    expect(JSON.stringify(migrated.status)).not.toContain(new URL(dbUrl).password || '\u0000');

    const ready = await waitForCondition(ns.name, 'alpha', 'Ready', 'True', { timeoutMs: 150_000 });
    timings.applyToReady = Date.now() - t0;
    console.log(
      `apply → Ready=True: ${timings.applyToReady} ms (Job created after ${timings.applyToJob} ms, migrated after ${timings.applyToMigrated} ms)`,
    );
    expect(ready.status).toMatchObject({
      replicas: 2,
      readyReplicas: 2,
      endpoint: `http://alpha.${ns.name}.svc:8080`,
      migrationJob: job.metadata!.name,
    });
    expect(condition(ready, 'Available')?.status).toBe('True');
    for (const t of ['DatabaseClaimed', 'Migrated', 'Available', 'Ready'])
      expect(condition(ready, t)?.observedGeneration).toBe(ready.metadata.generation);

    // Deployment spec.
    const d = await c().apps.readNamespacedDeployment({ name: 'alpha', namespace: ns.name });
    expect(d.metadata!.ownerReferences?.[0]?.uid).toBe(ready.metadata.uid);
    expect(d.spec!.replicas).toBe(2);
    const pod = d.spec!.template.spec!;
    const ctr = pod.containers[0]!;
    expect(ctr.image).toBe(PROJECT_IMAGE);
    expect(ctr.args).toEqual(['serve']);
    expect(ctr.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(ctr.livenessProbe?.httpGet?.path).toBe('/livez');
    expect(ctr.ports?.[0]?.containerPort).toBe(8080);
    expect(ctr.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
    const env = Object.fromEntries((ctr.env ?? []).map((e) => [e.name, e]));
    expect(env.VALIDATOR_HA_NODE_ID?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env.VALIDATOR_HA_DATABASE_URL?.valueFrom?.secretKeyRef).toEqual({ name: 'db', key: 'uri' });
    expect(env.VALIDATOR_HA_ROLLUP_ADDRESS?.value).toBe(ROLLUP_A);
    expect(ctr.volumeMounts).toContainEqual({ name: 'keys', mountPath: '/var/run/ha-signer/keys', readOnly: true });
    expect(ctr.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    // The token is for the high-water-mark ConfigMap (spec.protection.highWaterMarks defaults to Kubernetes).
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(env.HA_SIGNER_HIGH_WATER_MARKS_CONFIGMAP?.value).toMatch(/^[a-z0-9-]+\/[a-z0-9-]+-high-water-marks$/);
    expect(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm.topologyKey).toBe(
      'kubernetes.io/hostname',
    );
    expect(d.spec!.template.metadata!.annotations!['ha-signer.dev/secrets-checksum']).toMatch(/^[0-9a-f]{64}$/);
    // Node ids are the pod names.
    const pods = await listPods(ns.name, 'app.kubernetes.io/instance=alpha,app.kubernetes.io/component=signer');
    expect(pods.length).toBe(2);

    const svc = await c().core.readNamespacedService({ name: 'alpha', namespace: ns.name });
    expect(svc.spec!.ports?.[0]).toMatchObject({ name: 'http', port: 8080 });
    expect(svc.spec!.selector).toEqual(d.spec!.selector.matchLabels);
    const pdb = await c().kc.makeApiClient(k8s.PolicyV1Api).readNamespacedPodDisruptionBudget({ name: 'alpha', namespace: ns.name });
    expect(pdb.spec!.maxUnavailable).toBe(1);
    const np = await c().kc.makeApiClient(k8s.NetworkingV1Api).readNamespacedNetworkPolicy({ name: 'alpha', namespace: ns.name });
    expect(np.spec!.podSelector?.matchLabels).toEqual(d.spec!.selector.matchLabels);
    expect(np.spec!.policyTypes).toEqual(['Ingress']);
    // No declared clients: nobody on the signing port; only the operator's pods on the metrics port (to read /readyz).
    expect(np.spec!.ingress).toEqual([
      {
        _from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } },
            podSelector: { matchLabels: { 'app.kubernetes.io/component': 'operator', 'app.kubernetes.io/name': 'ha-signer' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 8082 }],
      },
    ]);
    // Events on transitions.
    const reasons = await waitFor(
      async () => {
        const r = (
          await c().kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns.name, fieldSelector: 'regarding.name=alpha' })
        ).items.map((e) => e.reason);
        return ['Claimed', 'Migrating', 'Migrated', 'Ready'].every((x) => r.includes(x)) ? r : undefined;
      },
      { timeoutMs: 10_000, message: 'Events Claimed, Migrating, Migrated, Ready' },
    );
    expect(reasons.filter((r) => r === 'Claimed').length).toBe(1); // transitions only, not every reconcile
  });

  it('refuses a second resource for another rollup version on the same database (DatabaseInUse), deploying nothing', async () => {
    await createVhs(ns.name, vhsBody('beta', { rollup: { address: ROLLUP_A, version: 'v2' } }));
    const beta = await waitForCondition(ns.name, 'beta', 'DatabaseClaimed', 'False', { reason: 'DatabaseInUse', timeoutMs: 30_000 });
    expect(condition(beta, 'DatabaseClaimed')!.message).toContain(`ValidatorHASigner ${ns.name}/alpha`);
    expect(condition(beta, 'DatabaseClaimed')!.message).not.toMatch(/rebind/i);
    expect(condition(beta, 'Ready')).toMatchObject({ status: 'False', reason: 'DatabaseInUse' });
    expect(beta.status?.databaseIdentity).toBe((await getVhs(ns.name, 'alpha')).status?.databaseIdentity);
    expect(await exists(() => c().apps.readNamespacedDeployment({ name: 'beta', namespace: ns.name }))).toBe(false);
    await waitFor(
      async () =>
        (
          await c().kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns.name, fieldSelector: 'regarding.name=beta' })
        ).items.some((e) => e.reason === 'DatabaseInUse' && e.type === 'Warning' && e.note?.includes(`${ns.name}/alpha`)),
      { timeoutMs: 10_000, message: 'Warning Event DatabaseInUse for beta' },
    );
    // The same rollup may share the database.
    await createVhs(ns.name, vhsBody('alpha-twin', { rollup: { address: ROLLUP_A, version: 'v1' }, replicas: 1 }));
    const twin = await waitForCondition(ns.name, 'alpha-twin', 'DatabaseClaimed', 'True', { timeoutMs: 30_000 });
    expect(condition(twin, 'DatabaseClaimed')!.reason).toBe('SharedWithSameRollup');
    await c().custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: ns.name,
      name: 'alpha-twin',
    });
    await c().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'beta' });
  });

  it('one database under two spellings (localhost vs 127.0.0.1, an added URI parameter) is one database: another rollup gets DatabaseInUse quickly', async () => {
    const other = new URL(dbUrl);
    other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    other.searchParams.set('application_name', 'another-spelling');
    await createSecret(ns.name, 'db-spelled', { uri: other.toString() });
    const t0 = Date.now();
    await createVhs(
      ns.name,
      vhsBody('delta', { rollup: { address: ROLLUP_B, version: 'v1' }, database: { secretRef: { name: 'db-spelled' } } }),
    );
    const delta = await waitForCondition(ns.name, 'delta', 'DatabaseClaimed', 'False', { reason: 'DatabaseInUse', timeoutMs: 30_000 });
    timings.otherSpellingToDatabaseInUse = Date.now() - t0;
    console.log(`second spelling of one database, other rollup → DatabaseInUse after ${timings.otherSpellingToDatabaseInUse} ms`);
    expect(timings.otherSpellingToDatabaseInUse).toBeLessThan(20_000); // the first failed attempt, not the Job's whole backoff
    const alpha = await getVhs(ns.name, 'alpha');
    expect(delta.status?.database?.address).not.toBe(alpha.status?.database?.address);
    expect(delta.status?.databaseIdentity).toBe(alpha.status?.databaseIdentity);
    const msg = condition(delta, 'DatabaseClaimed')!.message;
    expect(msg).toContain(`ValidatorHASigner ${ns.name}/alpha`);
    expect(msg).not.toMatch(/rebind/i);
    expect(JSON.stringify(delta.status)).not.toContain(other.password || '\u0000');
    expect(await exists(() => c().apps.readNamespacedDeployment({ name: 'delta', namespace: ns.name }))).toBe(false);
    // Its migration Job (bound to another rollup, it kept failing) is stopped rather than left retrying.
    await waitFor(
      async () =>
        (await c().batch.listNamespacedJob({ namespace: ns.name, labelSelector: 'app.kubernetes.io/instance=delta' })).items.every(
          (j) => j.status?.conditions?.some((x) => x.type === 'Failed') || j.metadata?.deletionTimestamp,
        ) || undefined,
      { timeoutMs: 20_000, message: 'delta Job stopped' },
    );
    await c().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'delta' });
  });

  it('rolls the pods when a referenced Secret changes', async () => {
    const before = await c().apps.readNamespacedDeployment({ name: 'alpha', namespace: ns.name });
    const oldSum = before.spec!.template.metadata!.annotations!['ha-signer.dev/secrets-checksum'];
    const oldPods = new Set(
      (await listPods(ns.name, 'app.kubernetes.io/instance=alpha,app.kubernetes.io/component=signer')).map((p) => p.metadata!.name),
    );
    const t0 = Date.now();
    await c().core.patchNamespacedSecret(
      { namespace: ns.name, name: 'keys', body: { stringData: { 'validator-2': validatorKey() } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const after = await waitFor(
      async () => {
        const d = await c().apps.readNamespacedDeployment({ name: 'alpha', namespace: ns.name });
        return d.spec!.template.metadata!.annotations!['ha-signer.dev/secrets-checksum'] !== oldSum ? d : undefined;
      },
      { timeoutMs: 30_000, message: 'checksum annotation to change' },
    );
    expect(after.metadata!.generation).toBeGreaterThan(before.metadata!.generation!);
    await waitFor(
      async () => {
        const pods = await listPods(ns.name, 'app.kubernetes.io/instance=alpha,app.kubernetes.io/component=signer');
        const ready = pods.filter(
          (p) => !p.metadata!.deletionTimestamp && p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
        );
        return ready.length === 2 && ready.every((p) => !oldPods.has(p.metadata!.name)) ? ready : undefined;
      },
      { timeoutMs: 150_000, message: 'two new ready pods' },
    );
    await waitForCondition(ns.name, 'alpha', 'Ready', 'True', { timeoutMs: 60_000 });
    timings.secretChangeToRolled = Date.now() - t0;
  });

  it('scales through the scale subresource', async () => {
    await c().custom.patchNamespacedCustomObjectScale(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'alpha', body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const scale = (await c().custom.getNamespacedCustomObjectScale({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: ns.name,
      name: 'alpha',
    })) as k8s.V1Scale;
    expect(scale.spec?.replicas).toBe(3);
    await waitFor(async () => (await c().apps.readNamespacedDeployment({ name: 'alpha', namespace: ns.name })).spec?.replicas === 3, {
      timeoutMs: 30_000,
      message: 'Deployment replicas 3',
    });
    const v = await waitFor(
      async () => {
        const x = await getVhs(ns.name, 'alpha');
        return x.status?.readyReplicas === 3 && condition(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      { timeoutMs: 120_000, message: 'three ready replicas' },
    );
    expect(v.status?.replicas).toBe(3);
    const scaled = (await c().custom.getNamespacedCustomObjectScale({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: ns.name,
      name: 'alpha',
    })) as k8s.V1Scale;
    expect(scaled.status?.replicas).toBe(3);
    expect(scaled.status?.selector).toBe(
      'app.kubernetes.io/name=ha-signer,app.kubernetes.io/instance=alpha,app.kubernetes.io/component=signer',
    );
  });

  it('a failed migration blocks the rollout (Migrated=False, MigrationFailed, no Deployment)', async () => {
    // A database already bound to rollup B: migrating it for rollup A must fail (the database's own binding).
    const bound = await createTestDatabase('op_bound');
    await run(
      process.execPath,
      [path.join(REPO_ROOT, 'dist/cli.js'), 'migrate', 'up', '--database-url', bound, '--rollup-address', ROLLUP_B],
      { cwd: REPO_ROOT },
    );
    await createSecret(ns.name, 'db-bound', { uri: bound });
    await createVhs(
      ns.name,
      vhsBody('gamma', {
        rollup: { address: ROLLUP_A, version: 'v1' },
        database: { secretRef: { name: 'db-bound' } },
        migration: { backoffLimit: 0 },
      }),
    );
    const g = await waitForCondition(ns.name, 'gamma', 'Migrated', 'False', { reason: 'MigrationFailed', timeoutMs: 90_000 });
    const msg = condition(g, 'Migrated')!.message;
    expect(msg).toMatch(/gamma-migrate-[0-9a-f]{10} failed/);
    expect(msg.toLowerCase()).toContain('rollup');
    expect(condition(g, 'Ready')).toMatchObject({ status: 'False', reason: 'MigrationFailed' });
    expect(await exists(() => c().apps.readNamespacedDeployment({ name: 'gamma', namespace: ns.name }))).toBe(false);
  });

  it('rejects invalid resources with the CRD messages', async () => {
    const create = (name: string, spec: Record<string, unknown>) =>
      rejection(() =>
        createVhs(ns.name, {
          ...vhsBody(name, { rollup: { address: ROLLUP_A, version: 'v1' } }),
          spec: {
            database: { secretRef: { name: 'db' } },
            keys: { secretRef: { name: 'keys' } },
            clients: { disableAuthentication: true },
            rollup: { address: ROLLUP_A, version: 'v1' },
            ...spec,
          },
        }),
      );
    expect(await create('bad-address', { rollup: { address: '0x1234', version: 'v1' } })).toContain(
      'rollup.address must be 0x followed by 40 hex digits',
    );
    expect(await create('two-key-sources', { keys: { secretRef: { name: 'keys' }, web3signer: { url: 'http://w3s:9000' } } })).toContain(
      'keys: set exactly one of keys.secretRef or keys.web3signer',
    );
    expect(await create('no-auth', { clients: {} })).toContain('clients: declare serviceAccounts, tokens or aztecNodes');
    expect(await create('pool', { pool: { min: 5, max: 2 } })).toContain('pool.min must not exceed pool.max');
    expect(await create('zero', { replicas: 0 })).toMatch(/spec.replicas.*should be greater than or equal to 1/);
    expect(await create('no-db', { database: undefined })).toMatch(/spec.database: Required value/);
    expect(await create('Bad_Name', {})).toBeDefined();
    // Immutability of the rollup.
    const patch = (body: unknown) =>
      rejection(() =>
        c().custom.patchNamespacedCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'alpha', body },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      );
    expect(await patch({ spec: { rollup: { address: ROLLUP_B } } })).toContain('rollup.address is immutable');
    expect(await patch({ spec: { rollup: { version: 'v9' } } })).toContain('rollup.version is immutable');
    // Defaults from the schema.
    const v = await getVhs(ns.name, 'alpha');
    expect(v.spec.database.secretRef.key).toBe('uri');
    expect(v.spec.antiAffinity).toBe('preferred');
    expect(v.spec.migration).toEqual({ backoffLimit: 3, ttlSecondsAfterFinished: 3600 });
  });

  it('deleting the resource garbage-collects its objects (and never touches the database)', async () => {
    await c().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns.name, name: 'alpha' });
    const apps = c().apps;
    await waitFor(
      async () => {
        const left = [
          await exists(() => apps.readNamespacedDeployment({ name: 'alpha', namespace: ns.name })),
          await exists(() => c().core.readNamespacedService({ name: 'alpha', namespace: ns.name })),
          await exists(() => c().core.readNamespacedServiceAccount({ name: 'alpha-signer', namespace: ns.name })),
          await exists(() =>
            c().kc.makeApiClient(k8s.PolicyV1Api).readNamespacedPodDisruptionBudget({ name: 'alpha', namespace: ns.name }),
          ),
          await exists(() => c().kc.makeApiClient(k8s.NetworkingV1Api).readNamespacedNetworkPolicy({ name: 'alpha', namespace: ns.name })),
          (await c().batch.listNamespacedJob({ namespace: ns.name, labelSelector: 'app.kubernetes.io/instance=alpha' })).items.length > 0,
        ];
        return left.every((x) => !x);
      },
      { timeoutMs: 90_000, message: 'owned objects of alpha to be garbage-collected' },
    );
    await waitFor(async () => (await listPods(ns.name, 'app.kubernetes.io/instance=alpha')).length === 0, {
      timeoutMs: 90_000,
      message: 'alpha pods gone',
    });
    // The database keeps its schema and binding.
    const { stdout } = await run(
      process.execPath,
      [path.join(REPO_ROOT, 'dist/cli.js'), 'migrate', 'up', '--database-url', dbUrl, '--rollup-address', ROLLUP_A],
      { cwd: REPO_ROOT },
    );
    expect(stdout).toContain('"applied":[]');
  });
});

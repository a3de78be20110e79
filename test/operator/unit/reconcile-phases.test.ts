/** Each reconcile phase against a fake of the API-server slice it uses (no API server). */
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { migrationJobName, names } from '../../../src/operator/desired/index.js';
import { readInputs } from '../../../src/operator/reconcile/inputs.js';
import { applyMigrationPhase, migrationPhase, observeMigration } from '../../../src/operator/reconcile/migration.js';
import { claimDatabaseOwnership, releaseDatabaseOwnership } from '../../../src/operator/reconcile/ownership.js';
import { ReconcileProblem, StatusRecorder, writeStatus } from '../../../src/operator/reconcile/status.js';
import { applyWorkload } from '../../../src/operator/reconcile/workload.js';
import type { ReconcileApi } from '../../../src/operator/reconcile/api.js';
import { CLEANUP_FINALIZER, Reconciler } from '../../../src/operator/reconcile/index.js';
import { CONDITION_ORDER } from '../../../src/operator/types.js';
import { fakeCaches, FakeOwnershipApi, FakeSecrets, FakeStatusApi, FakeWorkloadApi } from './fake-api.js';
import { ADDR, CTX, vhs } from './fixtures.js';

const conditionsOf = (rec: StatusRecorder) => Object.fromEntries(rec.conditions.map((c) => [c.type, `${c.status}/${c.reason}`]));
const job = (conditions: k8s.V1JobCondition[]): k8s.V1Job => ({ metadata: { name: 'j', namespace: 'val' }, status: { conditions } });

describe('phase: inputs', () => {
  const secrets = () => {
    const s = new FakeSecrets();
    s.put('val', 'db', { uri: 'postgresql://u:pw@DB.example:5432/signer' });
    s.put('val', 'keys', { k: '0x01' });
    s.put('val', 'tokens', { 'tokens.json': '[]' });
    return s;
  };
  const run = (s: FakeSecrets, v = vhs()) => {
    const rec = new StatusRecorder(v);
    return { rec, result: readInputs(v, (ns, n) => s.readSecret(ns, n), rec) };
  };

  it('reads each referenced Secret once and returns the database address without credentials', async () => {
    const s = secrets();
    const { result } = run(s);
    const inputs = await result;
    expect(inputs.databaseAddress).toBe('db.example:5432/signer');
    expect([...inputs.secrets.keys()]).toEqual(['db', 'keys', 'tokens']);
    expect(s.reads).toBe(3);
  });

  it('a missing database Secret blocks every condition with SecretNotFound, naming the namespace and key', async () => {
    const s = secrets();
    s.items.delete('val/db');
    const { rec, result } = run(s);
    await expect(result).rejects.toBeInstanceOf(ReconcileProblem);
    expect(conditionsOf(rec)).toEqual({
      DatabaseClaimed: 'False/SecretNotFound',
      Migrated: 'False/SecretNotFound',
      Available: 'False/SecretNotFound',
      Ready: 'False/SecretNotFound',
    });
    expect(rec.conditions[0]!.message).toContain(
      'Secret val/db (spec.database.secretRef) not found: create it in namespace val with key uri',
    );
  });

  it('a wrong key lists the keys the Secret has; an unparseable URI says what is expected', async () => {
    const s = secrets();
    s.put('val', 'db', { url: 'postgresql://h/db' });
    const a = run(s);
    await expect(a.result).rejects.toThrow('has no key uri (spec.database.secretRef.key); its keys: url');
    s.put('val', 'db', { uri: 'mysql://h/db' });
    const b = run(s);
    await expect(b.result).rejects.toThrow('expected a PostgreSQL URI');
    expect(conditionsOf(b.rec).DatabaseClaimed).toBe('False/InvalidDatabaseURI');
  });

  it('a missing keys Secret sets every condition, DatabaseClaimed included', async () => {
    const s = secrets();
    s.items.delete('val/keys');
    const { rec, result } = run(s);
    await expect(result).rejects.toThrow('Secret val/keys (spec.keys.secretRef) not found');
    expect(conditionsOf(rec)).toEqual({
      DatabaseClaimed: 'False/SecretNotFound',
      Migrated: 'False/SecretNotFound',
      Available: 'False/SecretNotFound',
      Ready: 'False/SecretNotFound',
    });
  });
});

describe('phase: database ownership', () => {
  const older = vhs({}, { uid: 'old', name: 'a', creationTimestamp: new Date('2026-01-01T00:00:00Z') });
  const newer = vhs(
    { rollup: { address: ADDR, version: 'v2' } },
    { uid: 'new', name: 'b', creationTimestamp: new Date('2026-01-02T00:00:00Z') },
  );
  const ctx = (api: FakeOwnershipApi, v: typeof older, resources = [older, newer], enqueued: string[] = []) => {
    const rec = new StatusRecorder(v);
    return {
      rec,
      enqueued,
      c: {
        vhs: v,
        api,
        caches: fakeCaches({ resources }),
        rec,
        ownershipNamespace: 'ops',
        log: () => undefined,
        enqueue: (k: string) => enqueued.push(k),
      },
    };
  };

  it('the first resource owns the database; a newer one for another rollup version gets DatabaseInUse and its Deployment is removed', async () => {
    const api = new FakeOwnershipApi();
    const first = ctx(api, older);
    expect(await claimDatabaseOwnership(first.c, 'db-1', undefined)).toBe(true);
    expect(conditionsOf(first.rec).DatabaseClaimed).toBe('True/Claimed');
    api.deployments.set('val/b', { metadata: { name: 'b', namespace: 'val' } });
    const second = ctx(api, newer);
    expect(await claimDatabaseOwnership(second.c, 'db-1', undefined)).toBe(false);
    expect(conditionsOf(second.rec)).toEqual({
      DatabaseClaimed: 'False/DatabaseInUse',
      Migrated: 'False/DatabaseInUse',
      Available: 'False/DatabaseInUse',
      Ready: 'False/DatabaseInUse',
    });
    expect(second.rec.conditions[0]!.message).toContain('ValidatorHASigner val/a');
    expect(second.rec.conditions[0]!.message).not.toMatch(/rebind/i);
    expect(api.deleted).toEqual(['Deployment val/b']);
    expect(second.rec.status.readyReplicas).toBe(0);
  });

  it('an older resource takes ownership over and re-queues the loser; a deleted owner is stale', async () => {
    const api = new FakeOwnershipApi();
    await claimDatabaseOwnership(ctx(api, newer).c, 'db-1', undefined);
    const o = ctx(api, older);
    expect(await claimDatabaseOwnership(o.c, 'db-1', undefined)).toBe(true);
    expect(o.enqueued).toContain('val/b');
    const gone = ctx(api, newer, [newer]); // older no longer exists
    expect(await claimDatabaseOwnership(gone.c, 'db-1', undefined)).toBe(true);
    expect([...api.configMaps.values()][0]!.data!.ownerUid).toBe('new');
  });

  it('the same rollup shares; moving to another database releases the old record', async () => {
    const api = new FakeOwnershipApi();
    await claimDatabaseOwnership(ctx(api, older).c, 'db-1', undefined);
    const twin = vhs({}, { uid: 'twin', name: 't' });
    const t = ctx(api, twin, [older, twin]);
    expect(await claimDatabaseOwnership(t.c, 'db-1', undefined)).toBe(true);
    expect(conditionsOf(t.rec).DatabaseClaimed).toBe('True/SharedWithSameRollup');
    expect(await claimDatabaseOwnership(ctx(api, older).c, 'db-2', 'db-1')).toBe(true);
    expect([...api.configMaps.values()].map((c) => c.data!.databaseIdentity)).toEqual(['db-2']);
  });

  it('releasing a deleted resource removes only its records and re-queues the resources waiting for them', async () => {
    const api = new FakeOwnershipApi();
    await claimDatabaseOwnership(ctx(api, older).c, 'db-1', undefined);
    await claimDatabaseOwnership(ctx(api, vhs({}, { uid: 'x', name: 'x' })).c, 'db-2', undefined);
    const waiting = { ...newer, status: { databaseIdentity: 'db-1' } };
    const enqueued: string[] = [];
    await releaseDatabaseOwnership(api, fakeCaches({ resources: [waiting] }), 'ops', { namespace: 'val', name: 'a', uid: 'old' }, (k) =>
      enqueued.push(k),
    );
    expect([...api.configMaps.values()].map((c) => c.data!.databaseIdentity)).toEqual(['db-2']);
    expect(enqueued).toEqual(['val/b']);
  });
});

describe('phase: migration', () => {
  const name = migrationJobName(vhs(), CTX, 'h:5432/db');
  const migrated = {
    migrationJob: name,
    conditions: [{ type: 'Migrated', status: 'True' as const, reason: 'Migrated', message: '', lastTransitionTime: '' }],
  };

  it('migrationPhase: create / running / failed / done', () => {
    expect(migrationPhase(undefined, name, undefined)).toEqual({ kind: 'create' });
    expect(migrationPhase(undefined, name, migrated)).toEqual({ kind: 'done', needsReport: false });
    expect(migrationPhase(undefined, 'other-job', migrated)).toEqual({ kind: 'create' });
    expect(migrationPhase(job([]), name, undefined)).toEqual({ kind: 'running' });
    expect(migrationPhase(job([{ type: 'Failed', status: 'True' }]), name, migrated)).toEqual({ kind: 'failed' });
    expect(migrationPhase(job([{ type: 'Complete', status: 'True' }]), name, undefined)).toEqual({ kind: 'done', needsReport: true });
    expect(migrationPhase(job([{ type: 'Complete', status: 'True' }]), name, { ...migrated, schemaVersion: '3' })).toEqual({
      kind: 'done',
      needsReport: true,
    });
    expect(
      migrationPhase(job([{ type: 'Complete', status: 'True' }]), name, { ...migrated, schemaVersion: '3', databaseIdentity: '7/1' }),
    ).toEqual({ kind: 'done', needsReport: false });
  });

  const run = async (api: FakeWorkloadApi, caches = fakeCaches()) => {
    const rec = new StatusRecorder(vhs());
    const ctx = { vhs: vhs(), api, caches, rec, build: CTX };
    const observed = await observeMigration(ctx, 'h:5432/db');
    const done = await applyMigrationPhase(ctx, observed, 'h:5432/db');
    return { rec, done, observed };
  };

  it('creates the Job and reports Migrating; a previous rollout keeps being reported', async () => {
    const api = new FakeWorkloadApi();
    const dep: k8s.V1Deployment = {
      metadata: { name: 'sig', namespace: 'val', generation: 1 },
      spec: { replicas: 2, selector: {}, template: {} },
      status: {
        observedGeneration: 1,
        replicas: 2,
        readyReplicas: 2,
        availableReplicas: 2,
        updatedReplicas: 2,
        conditions: [{ type: 'Available', status: 'True' }] as k8s.V1DeploymentCondition[],
      },
    };
    const { rec, done } = await run(api, fakeCaches({ deployments: [dep] }));
    expect(done).toBe(false);
    expect(api.applied.map((o) => `${o.kind} ${o.metadata!.name}`)).toEqual([`Job ${name}`]);
    expect(conditionsOf(rec)).toEqual({ Migrated: 'False/Migrating', Available: 'True/DeploymentAvailable', Ready: 'False/Migrating' });
  });

  it('a failed Job blocks with the reported error and still yields the identity; a succeeded one reports the schema version', async () => {
    const api = new FakeWorkloadApi();
    api.jobs.set(
      `val/${name}`,
      job([{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }]),
    );
    const identity = { systemIdentifier: '7312345678901234567', database: 'db', oid: '16384' };
    api.terminations = [
      {
        exitCode: 1,
        message: JSON.stringify({ msg: 'migrate up failed', error: 'database is bound to rollup 0xbb', databaseIdentity: identity }),
      },
    ];
    const failed = await run(api);
    expect(failed.observed.identity).toEqual(identity);
    expect(failed.done).toBe(false);
    expect(conditionsOf(failed.rec)).toMatchObject({ Migrated: 'False/MigrationFailed', Ready: 'False/MigrationFailed' });
    expect(failed.rec.conditions.find((c) => c.type === 'Migrated')!.message).toContain('last error: database is bound to rollup 0xbb');
    api.jobs.set(`val/${name}`, job([{ type: 'Complete', status: 'True' }]));
    api.terminations = [
      { exitCode: 0, message: JSON.stringify({ msg: 'migrate up done', schemaVersion: '4', databaseIdentity: identity }) },
    ];
    const ok = await run(api);
    expect(ok.observed.identity).toEqual(identity);
    expect(ok.done).toBe(true);
    expect(ok.rec.status.schemaVersion).toBe('4');
    expect(conditionsOf(ok.rec).Migrated).toBe('True/Migrated');
  });
});

describe('phase: workload', () => {
  const inputs = new Map<string, k8s.V1Secret | undefined>([['db', { data: { uri: 'eA==' } }]]);
  it('applies the owned objects with the Deployment last and prunes what the spec no longer asks for', async () => {
    const api = new FakeWorkloadApi();
    const v = vhs({ networkPolicy: { enabled: false }, serviceMonitor: { enabled: true } });
    const result = await applyWorkload(v, api, CTX, inputs);
    expect(api.applied.map((o) => o.kind)).toEqual([
      'ServiceAccount',
      'ConfigMap',
      'Role',
      'RoleBinding',
      'Service',
      'PodDisruptionBudget',
      'Deployment',
    ]);
    expect(result.deployment?.kind).toBe('Deployment');
    expect(result.serviceMonitorCrdMissing).toBe(true);
    expect(api.deleted).toEqual([
      `ClusterRoleBinding ${names.tokenReviewBinding('val', 'sig')}`,
      'NetworkPolicy val/sig',
      'ConfigMap val/sig-clients',
    ]);
  });

  it('binds the signer to TokenReview only with ServiceAccount clients', async () => {
    const api = new FakeWorkloadApi();
    api.serviceMonitorsServed = true;
    await applyWorkload(vhs({ clients: { serviceAccounts: [{ name: 'node', validators: ['*'] }] } }), api, CTX, inputs);
    expect(api.applied.map((o) => o.kind)).toEqual([
      'ServiceAccount',
      'ConfigMap',
      'ConfigMap',
      'Role',
      'RoleBinding',
      'Service',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'Deployment',
      'ClusterRoleBinding',
    ]);
    expect(api.deleted).toEqual(['ServiceMonitor val/sig']);
  });

  it('namespaced (--namespaced): neither applies nor deletes the cluster-scoped binding', async () => {
    const api = new FakeWorkloadApi();
    await applyWorkload(vhs({ networkPolicy: { enabled: false } }), api, CTX, inputs, undefined, { clusterScoped: false });
    expect([...api.applied.map((o) => o.kind ?? ''), ...api.deleted].filter((k) => k.startsWith('ClusterRoleBinding'))).toEqual([]);
    expect(api.deleted).toEqual(['NetworkPolicy val/sig', 'ConfigMap val/sig-clients']);
  });
});

describe('phase: status', () => {
  it('lists conditions in one order, writes only on change, and records one Event per transition', async () => {
    const api = new FakeStatusApi();
    const rec = new StatusRecorder(vhs());
    rec.set('Ready', 'False', 'Migrating', 'm');
    rec.block('DatabaseClaimed', 'DatabaseInUse', 'in use');
    expect(rec.conditions.map((c) => c.type)).toEqual([...CONDITION_ORDER]);
    await writeStatus(api, rec, 'op-1', () => undefined);
    expect(api.patches).toHaveLength(1);
    expect(api.events.map((e) => `${e.type} ${e.reason}`)).toEqual(['Warning DatabaseInUse']);
    const again = new StatusRecorder({ ...vhs(), status: api.patches[0]! });
    again.block('DatabaseClaimed', 'DatabaseInUse', 'in use');
    await writeStatus(api, again, 'op-1', () => undefined);
    expect(api.patches).toHaveLength(1);
    expect(api.events).toHaveLength(1);
  });
});

describe('reconciler: cleanup finalizer', () => {
  /** One object implementing every slice, from the fakes above. */
  function fullApi() {
    const own = new FakeOwnershipApi();
    const work = new FakeWorkloadApi();
    const status = new FakeStatusApi();
    const secrets = new FakeSecrets();
    const finalizerPatches: string[][] = [];
    const api = Object.assign(Object.create(null) as object, {
      readSecret: secrets.readSecret.bind(secrets),
      readConfigMap: own.readConfigMap.bind(own),
      createConfigMapIfAbsent: own.createConfigMapIfAbsent.bind(own),
      replaceConfigMapAt: own.replaceConfigMapAt.bind(own),
      deleteConfigMapIf: own.deleteConfigMapIf.bind(own),
      listConfigMaps: own.listConfigMaps.bind(own),
      readValidatorHASigner: own.readValidatorHASigner.bind(own),
      readDeployment: own.readDeployment.bind(own),
      deleteObject: work.deleteObject.bind(work),
      readJob: work.readJob.bind(work),
      apply: work.apply.bind(work),
      jobPodTerminations: work.jobPodTerminations.bind(work),
      deleteClusterRoleBinding: work.deleteClusterRoleBinding.bind(work),
      servesGroupVersion: work.servesGroupVersion.bind(work),
      listPods: async () => [],
      patchStatus: status.patchStatus.bind(status),
      createEvent: status.createEvent.bind(status),
      patchFinalizers: async (_v: unknown, f: string[]) => void finalizerPatches.push(f),
    });
    return { api: api as ReconcileApi, own, work, finalizerPatches };
  }

  it('adds the finalizer to a live resource; on deletion removes the binding and ownership record, then the finalizer', async () => {
    const { api, own, work, finalizerPatches } = fullApi();
    const live = vhs({ clients: { disableAuthentication: true } }, { finalizers: ['other/keep'] });
    const r1 = new Reconciler(api, fakeCaches({ resources: [live] }), {
      ownershipNamespace: 'ops',
      defaultImage: CTX.defaultImage,
      instance: 'op',
      log: () => undefined,
      enqueue: () => undefined,
    });
    await r1.reconcile('val/sig').catch(() => undefined); // Secrets are missing: a ReconcileProblem, the finalizer goes on first
    expect(finalizerPatches).toEqual([['other/keep', CLEANUP_FINALIZER]]);

    await claimDatabaseOwnership(
      {
        vhs: live,
        api: own,
        caches: fakeCaches({ resources: [live] }),
        rec: new StatusRecorder(live),
        ownershipNamespace: 'ops',
        log: () => undefined,
        enqueue: () => undefined,
      },
      '7/1',
      undefined,
    );
    expect(own.configMaps.size).toBe(1);
    const deleting = vhs(
      { clients: { disableAuthentication: true } },
      { finalizers: ['other/keep', CLEANUP_FINALIZER], deletionTimestamp: new Date() },
    );
    const r2 = new Reconciler(api, fakeCaches({ resources: [deleting] }), {
      ownershipNamespace: 'ops',
      defaultImage: CTX.defaultImage,
      instance: 'op',
      log: () => undefined,
      enqueue: () => undefined,
    });
    await r2.reconcile('val/sig');
    expect(work.deleted).toContain(`ClusterRoleBinding ${names.tokenReviewBinding('val', 'sig')}`);
    expect(own.configMaps.size).toBe(0);
    expect(finalizerPatches.at(-1)).toEqual(['other/keep']);
  });

  it('namespaced: refuses ServiceAccount clients with ClusterScopeRequired, and on deletion touches no binding', async () => {
    const { api, work, finalizerPatches } = fullApi();
    const secrets = api as unknown as { readSecret: (ns: string, n: string) => Promise<k8s.V1Secret | undefined> };
    secrets.readSecret = async (_ns, n): Promise<k8s.V1Secret> => {
      const data: Record<string, string> =
        n === 'db' ? { uri: Buffer.from('postgresql://u:p@db:5432/s').toString('base64') } : { k: 'MHgwMQ==' };
      return { metadata: { name: n }, data };
    };
    const opts = {
      ownershipNamespace: 'ops',
      clusterScoped: false,
      defaultImage: CTX.defaultImage,
      instance: 'op',
      log: () => undefined,
      enqueue: () => undefined,
    };
    const withSa = vhs({ clients: { serviceAccounts: [{ name: 'node', validators: ['*'] }] } });
    const err = await new Reconciler(api, fakeCaches({ resources: [withSa] }), opts).reconcile('val/sig').catch((e: unknown) => e);
    expect(work.applied.some((o) => o.kind === 'ClusterRoleBinding')).toBe(false);
    expect(err).toBeInstanceOf(ReconcileProblem);
    expect((err as Error).message).toContain('system:auth-delegator');
    expect(work.applied).toEqual([]);
    const deleting = vhs({ clients: { disableAuthentication: true } }, { finalizers: [CLEANUP_FINALIZER], deletionTimestamp: new Date() });
    await new Reconciler(api, fakeCaches({ resources: [deleting] }), opts).reconcile('val/sig');
    expect(work.deleted.filter((d) => d.startsWith('ClusterRoleBinding'))).toEqual([]);
    expect(finalizerPatches.at(-1)).toEqual([]);
  });
});

/**
 * The test harness itself against a real control plane (test/harness/globalSetup.ts) and the local kubelet:
 * Jobs complete because their pods really ran, Deployments become Available because their pods really answer
 * /readyz, Services get EndpointSlices with the pods' loopback addresses, a killed process is restarted, and
 * deleting the Deployment garbage-collects its pods and their processes.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../harness/controlPlane.js';
import {
  callService,
  clients,
  createTestNamespace,
  describeK8s,
  describePod,
  isProcessAlive,
  k8sEnv,
  listPods,
  podLogs,
  podProcess,
  PROJECT_IMAGE,
  serviceEndpoints,
  waitFor,
  type TestNamespace,
} from '../harness/k8s.js';

const PKG_VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describeK8s('k8s test harness', () => {
  let ns: TestNamespace;
  const c = () => clients();

  beforeAll(async () => {
    ns = await createTestNamespace('harness');
  });
  afterAll(async () => {
    await ns?.delete();
  });

  it('starts a real control plane', async () => {
    const env = k8sEnv();
    console.log(`control plane (kubernetes ${env.version}) started in ${((env.startMillis ?? 0) / 1000).toFixed(1)}s`);
    const { core } = c();
    const node = await core.readNode({ name: env.nodeName! });
    expect(node.status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name });
    expect(sa.metadata?.name).toBe('default');
  });

  it('runs a Job with `ha-signer --version` to completion', async () => {
    const { batch } = c();
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'version' },
        spec: {
          backoffLimit: 0,
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'ha-signer', image: PROJECT_IMAGE, args: ['--version'] }] } },
        },
      },
    });
    const job = await waitFor(
      async () => {
        const j = await batch.readNamespacedJob({ name: 'version', namespace: ns.name });
        if (j.status?.conditions?.some((x) => x.type === 'Failed' && x.status === 'True'))
          throw new Error(`job failed: ${JSON.stringify(j.status)}`);
        return j.status?.conditions?.some((x) => x.type === 'Complete' && x.status === 'True') ? j : undefined;
      },
      {
        timeoutMs: 60_000,
        message: async () =>
          `Job version to complete; ${(await Promise.all((await listPods(ns.name, 'job-name=version')).map((p) => describePod(ns.name, p)))).join('\n')}`,
      },
    );
    expect(job.status?.succeeded).toBe(1);
    const [pod] = await listPods(ns.name, 'job-name=version');
    expect(pod?.status?.phase).toBe('Succeeded');
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(await podLogs(ns.name, pod!.metadata!.name!)).toContain(PKG_VERSION);
  });

  it('keeps pods of other images Pending', async () => {
    const { core } = c();
    await core.createNamespacedPod({
      namespace: ns.name,
      body: { metadata: { name: 'other-image' }, spec: { containers: [{ name: 'x', image: 'busybox:1.36' }] } },
    });
    const pod = await waitFor(async () => {
      const p = await core.readNamespacedPod({ name: 'other-image', namespace: ns.name });
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImageNotSupported' ? p : undefined;
    });
    expect(pod.spec?.nodeName).toBe(k8sEnv().nodeName);
    expect(pod.status?.phase).toBe('Pending');
  });

  describeK8s('a Deployment of `ha-signer serve`', () => {
    const labels = { 'app.kubernetes.io/name': 'ha-signer', 'app.kubernetes.io/instance': 'harness' };
    const selector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');

    beforeAll(async () => {
      const { createTestDatabase } = await import('../support/postgres.js');
      const databaseUrl = await createTestDatabase('k8s_harness');
      const { core } = c();
      await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'db' }, stringData: { url: databaseUrl } } });
      await core.createNamespacedSecret({
        namespace: ns.name,
        body: { metadata: { name: 'keys' }, stringData: { 'validator-1': `0x${randomBytes(32).toString('hex')}` } },
      });
      await core.createNamespacedConfigMap({
        namespace: ns.name,
        body: {
          metadata: { name: 'settings' },
          data: { VALIDATOR_HA_ROLLUP_ADDRESS: `0x${'ab'.repeat(20)}`, HA_SIGNER_AUTH_DISABLED: 'true' },
        },
      });
      // Migrate the database in-cluster: a Job whose args use $(VAR) expansion of a secretKeyRef env.
      const { batch } = c();
      await batch.createNamespacedJob({
        namespace: ns.name,
        body: {
          metadata: { name: 'migrate' },
          spec: {
            backoffLimit: 2,
            template: {
              spec: {
                restartPolicy: 'Never',
                containers: [
                  {
                    name: 'migrate',
                    image: PROJECT_IMAGE,
                    args: ['migrate', 'up', '--database-url', '$(DATABASE_URL)', '--rollup-address', '$(ROLLUP_ADDRESS)'],
                    env: [
                      { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
                      { name: 'ROLLUP_ADDRESS', valueFrom: { configMapKeyRef: { name: 'settings', key: 'VALIDATOR_HA_ROLLUP_ADDRESS' } } },
                    ],
                  },
                ],
              },
            },
          },
        },
      });
      await waitFor(
        async () => {
          const j = await batch.readNamespacedJob({ name: 'migrate', namespace: ns.name });
          if (j.status?.conditions?.some((x) => x.type === 'Failed' && x.status === 'True')) throw new Error('migrate job failed');
          return j.status?.conditions?.some((x) => x.type === 'Complete' && x.status === 'True');
        },
        {
          timeoutMs: 90_000,
          message: async () =>
            `migrate Job; ${(await Promise.all((await listPods(ns.name, 'job-name=migrate')).map((p) => describePod(ns.name, p)))).join('\n')}`,
        },
      );

      const container: k8s.V1Container = {
        name: 'ha-signer',
        image: PROJECT_IMAGE,
        args: ['serve'],
        ports: [{ name: 'http', containerPort: 8080 }],
        envFrom: [{ configMapRef: { name: 'settings' } }],
        env: [
          { name: 'VALIDATOR_HA_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
          { name: 'VALIDATOR_HA_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'HA_SIGNER_KEYS_DIR', value: '/var/run/ha-signer/keys' },
          { name: 'HA_SIGNER_PORT', value: '8080' },
        ],
        volumeMounts: [{ name: 'keys', mountPath: '/var/run/ha-signer/keys', readOnly: true }],
        readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1, failureThreshold: 3 },
        livenessProbe: { httpGet: { path: '/livez', port: 'http' }, initialDelaySeconds: 5, periodSeconds: 2, failureThreshold: 3 },
      };
      await c().apps.createNamespacedDeployment({
        namespace: ns.name,
        body: {
          metadata: { name: 'ha-signer', labels },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                terminationGracePeriodSeconds: 5,
                containers: [container],
                volumes: [{ name: 'keys', secret: { secretName: 'keys', defaultMode: 0o400 } }],
              },
            },
          },
        },
      });
      await core.createNamespacedService({
        namespace: ns.name,
        body: { metadata: { name: 'ha-signer' }, spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } },
      });
    }, 180_000);

    const available = async () => {
      const d = await c().apps.readNamespacedDeployment({ name: 'ha-signer', namespace: ns.name });
      return d.status?.conditions?.some((x) => x.type === 'Available' && x.status === 'True') && d.status?.availableReplicas === 2
        ? d
        : undefined;
    };
    const podsReport = async () => (await Promise.all((await listPods(ns.name, selector)).map((p) => describePod(ns.name, p)))).join('\n');

    it('becomes Available with 2 replicas', async () => {
      const d = await waitFor(available, {
        timeoutMs: 90_000,
        message: async () => `Deployment Available with 2 replicas;\n${await podsReport()}`,
      });
      expect(d.status?.readyReplicas).toBe(2);
      const pods = await listPods(ns.name, selector);
      expect(new Set(pods.map((p) => p.status?.podIP)).size).toBe(2);
      for (const p of pods) expect(p.status?.podIP).toMatch(/^127\.0\.\d+\.\d+$/);
    });

    it('has a Service with 2 ready endpoints that answer HTTP', async () => {
      const eps = await waitFor(
        async () => {
          const e = await serviceEndpoints(ns.name, 'ha-signer', 'http');
          return e.length === 2 ? e : undefined;
        },
        {
          timeoutMs: 30_000,
          message: async () =>
            `two ready endpoints; slices: ${JSON.stringify((await c().discovery.listNamespacedEndpointSlice({ namespace: ns.name })).items)}`,
        },
      );
      expect(eps.every((e) => e.port === 8080)).toBe(true);
      const responses = await callService(ns.name, 'ha-signer', '/readyz', { portName: 'http' });
      expect(responses.map((r) => r.status)).toEqual([200, 200]);
      const live = await callService(ns.name, 'ha-signer', '/livez', { portName: 'http' });
      expect(live.map((r) => r.status)).toEqual([200, 200]);
    });

    it('restarts a container whose process was killed', async () => {
      const [pod] = await listPods(ns.name, selector);
      const name = pod!.metadata!.name!;
      const before = podProcess(ns.name, name, 'ha-signer');
      expect(before?.running).toBe(true);
      expect(isProcessAlive(before!.pid)).toBe(true);
      process.kill(before!.pid!, 'SIGKILL');
      const restarted = await waitFor(
        async () => {
          const p = await c().core.readNamespacedPod({ name, namespace: ns.name });
          const cs = p.status?.containerStatuses?.[0];
          return (cs?.restartCount ?? 0) >= 1 && cs?.ready ? p : undefined;
        },
        { timeoutMs: 60_000, message: async () => `pod ${name} restarted and Ready; ${await describePod(ns.name, name)}` },
      );
      const cs = restarted.status!.containerStatuses![0]!;
      expect(cs.lastState?.terminated?.exitCode).toBe(137);
      const after = podProcess(ns.name, name, 'ha-signer');
      expect(after?.pid).not.toBe(before!.pid);
      expect(isProcessAlive(after!.pid)).toBe(true);
      await waitFor(available, { timeoutMs: 60_000, message: 'Deployment Available again' });
    });

    it('deleting the Deployment removes its pods and their processes', async () => {
      const pods = await listPods(ns.name, selector);
      const pids = pods.map((p) => podProcess(ns.name, p.metadata!.name!, 'ha-signer')?.pid).filter((p): p is number => p !== undefined);
      expect(pids.length).toBe(2);
      await c().apps.deleteNamespacedDeployment({ name: 'ha-signer', namespace: ns.name, propagationPolicy: 'Background' });
      await waitFor(async () => (await listPods(ns.name, selector)).length === 0, {
        timeoutMs: 60_000,
        message: async () => `pods gone;\n${await podsReport()}`,
      });
      await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), { timeoutMs: 15_000, message: `processes ${pids.join(',')} to exit` });
      expect(await serviceEndpoints(ns.name, 'ha-signer', 'http')).toEqual([]);
    });
  });
});

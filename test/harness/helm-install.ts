/**
 * The chart's install flow on the test control plane, for the tests that drive Helm itself
 * (test/chart/k8s/chart.apiserver.test.ts, test/image/k8s/operator-image.e2e.test.ts): a Helm CLI on the run's
 * kubeconfig, `helm install` of charts/ha-signer watching one namespace, the operator's leader Lease, the Secrets
 * and a ValidatorHASigner the installed operator reconciles to Ready, `helm test`, `helm uninstall`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../src/operator/types.js';
import { createSecret, createVhs, ROLLUP_A, validatorKey, vhsBody, waitForCondition } from '../operator/e2e/support.js';
import { createTestDatabase } from '../support/postgres.js';
import { REPO_ROOT } from './controlPlane.js';
import { clients, k8sEnv, kubeConfig, waitFor } from './k8s.js';

export const CHART = path.join(REPO_ROOT, 'charts/ha-signer');
/** The Lease the operator's leader holds (leader election in the watched namespace). */
const OPERATOR_LEASE = 'ha-signer-operator';

export interface HelmCli {
  /** `helm <args>` against the test control plane; returns stdout, throws (with stderr) when helm fails. */
  run(args: string[]): string;
  /** Removes the Helm cache, config and data homes of this CLI. */
  remove(): void;
}

/** A Helm CLI with its own cache, config and data homes (under a temp dir named `<prefix>…`), so runs share no state. */
export function createHelm(prefix: string): HelmCli {
  const env = k8sEnv();
  const home = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    run: (args) =>
      execFileSync(env.helm!, ['--kubeconfig', env.kubeconfigPath!, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          HELM_CACHE_HOME: path.join(home, 'cache'),
          HELM_CONFIG_HOME: path.join(home, 'config'),
          HELM_DATA_HOME: path.join(home, 'data'),
        },
      }),
    remove: () => rmSync(home, { recursive: true, force: true }),
  };
}

/** The release installed for a test namespace (its name cut to Helm's limit) and the chart's fullname for it. */
export function chartRelease(namespace: string): { release: string; fullname: string } {
  const release = namespace.slice(0, 40);
  return { release, fullname: `${release}-ha-signer` };
}

export interface ChartInstall {
  release: string;
  /** The release's namespace, also the only namespace the operator watches. */
  namespace: string;
  /** The operator image: a full reference (sets image.repository and image.tag), or a tag of the chart's repository. */
  image: { ref: string } | { tag: string };
  replicas: number;
  /** rbac.namespaced=true: Roles in the namespace instead of ClusterRoles. */
  namespacedRbac?: boolean;
  /** Lease 6 s, renew deadline 4 s, retry 1 s: a new leader within seconds after an upgrade or a stop. */
  fastLeaderElection?: boolean;
  /** `helm install --wait --timeout`. */
  timeout: string;
}

/** `helm install --wait` of the chart without its CRDs (the control plane has them), operator watching `namespace`. */
export function installChart(helm: HelmCli, install: ChartInstall): void {
  const { image } = install;
  const values = [
    ...('ref' in image ? [`image.repository=${image.ref.replace(/:[^:/]+$/, '')}`, `image.tag=${image.ref.replace(/^.*:/, '')}`] : []),
    ...('tag' in image ? [`image.tag=${image.tag}`] : []),
    'crds.enabled=false',
    ...(install.namespacedRbac ? ['rbac.namespaced=true'] : []),
    `watchNamespace=${install.namespace}`,
    `replicaCount=${install.replicas}`,
    ...(install.fastLeaderElection
      ? ['leaderElection.leaseDuration=6s', 'leaderElection.renewDeadline=4s', 'leaderElection.retryPeriod=1s']
      : []),
  ];
  helm.run([
    'install',
    install.release,
    CHART,
    '-n',
    install.namespace,
    '--wait',
    '--timeout',
    install.timeout,
    ...values.flatMap((v) => ['--set', v]),
  ]);
}

/** Who holds the operator's leader Lease ('' when nobody); throws when there is no Lease. */
export async function operatorLeaseHolder(namespace: string): Promise<string> {
  const coordination = kubeConfig().makeApiClient(k8s.CoordinationV1Api);
  return (await coordination.readNamespacedLease({ namespace, name: OPERATOR_LEASE })).spec!.holderIdentity ?? '';
}

/** Waits (60 s) until an operator pod leads; returns the holder. */
export async function waitForOperatorLeader(namespace: string, message = 'operator leader Lease'): Promise<string> {
  return await waitFor(async () => (await operatorLeaseHolder(namespace).catch(() => '')) || undefined, { timeoutMs: 60_000, message });
}

/** The names of the release's operator pods. */
export async function operatorPods(namespace: string, fullname: string): Promise<string[]> {
  const pods = await clients().core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=operator' });
  return pods.items.filter((p) => p.metadata!.name!.startsWith(fullname)).map((p) => p.metadata!.name!);
}

/**
 * The Secrets a ValidatorHASigner from applyTokenSigner refers to: `db` (a new database `database` on the run's
 * PostgreSQL), `keys` (one validator key: `key`, else a random one) and `tokens` (one bearer token for every validator).
 * Returns the key.
 */
export async function createSignerSecrets(namespace: string, secrets: { database: string; token: string; key?: string }): Promise<string> {
  const key = secrets.key ?? validatorKey();
  await createSecret(namespace, 'db', { uri: await createTestDatabase(secrets.database) });
  await createSecret(namespace, 'keys', { 'validator-1': key });
  await createSecret(namespace, 'tokens', {
    'tokens.json': JSON.stringify([{ name: 'validator', token: secrets.token, validators: ['*'] }]),
  });
  return key;
}

/** Applies a ValidatorHASigner (rollup A, token clients) and waits for Ready=True; returns the ms from apply to Ready. */
export async function applyTokenSigner(namespace: string, name: string, opts: { replicas: number; timeoutMs: number }): Promise<number> {
  const started = Date.now();
  await createVhs(
    namespace,
    vhsBody(name, {
      rollup: { address: ROLLUP_A, version: 'v1' },
      replicas: opts.replicas,
      clients: { tokens: { secretRef: { name: 'tokens' } } },
    }),
  );
  await waitForCondition(namespace, name, 'Ready', 'True', { timeoutMs: opts.timeoutMs });
  return Date.now() - started;
}

export async function deleteVhs(namespace: string, name: string): Promise<void> {
  await clients().custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
}

/** `helm test` of the release (the chart's test pod); returns Helm's output and how long it took. */
export function runHelmTest(helm: HelmCli, release: string, namespace: string): { out: string; ms: number } {
  const started = Date.now();
  const out = helm.run(['test', release, '-n', namespace, '--timeout', '120s']);
  return { out, ms: Date.now() - started };
}

/**
 * `helm uninstall --wait`: with the pre-delete hook (the Job that stops the operator first; 150 s), or `--no-hooks`
 * (60 s). Returns how long it took.
 */
export function uninstallChart(helm: HelmCli, release: string, namespace: string, opts: { hooks: boolean }): number {
  const started = Date.now();
  helm.run([
    'uninstall',
    release,
    '-n',
    namespace,
    ...(opts.hooks ? ['--wait', '--timeout', '150s'] : ['--no-hooks', '--wait', '--timeout', '60s']),
  ]);
  return Date.now() - started;
}

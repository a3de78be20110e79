/**
 * `ha-signer operator`: flags, kubeconfig, leader election, health/metrics server, graceful shutdown.
 * Resolves when the operator has shut down (SIGTERM/SIGINT or the returned stop()); rejects when it lost the
 * leader lease (the process must exit so a fresh replica starts as a candidate).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { type LogFn, createLogger, logFn } from '../log.js';
import { Controller } from './controller.js';
import { Kube } from './kube.js';
import { LeaderElector, validateLeaderElection } from './leader.js';
import { OperatorMetrics, startHealthServer } from './metrics.js';
import { DEFAULT_IMAGE_ENV, OPERATOR_USAGE } from './usage.js';

export { DEFAULT_IMAGE_ENV, OPERATOR_USAGE };

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** A bad flag: the CLI prints the message and exits 2 (it treats ERR_PARSE_ARGS* codes as usage errors). */
export class FlagError extends Error {
  readonly code = 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE';
}

export function parseDuration(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw.trim());
  if (!m) throw new FlagError(`${flag}: expected a duration such as 500ms, 15s, 5m or 1h, got ${JSON.stringify(raw)}`);
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  if (!(n > 0)) throw new FlagError(`${flag}: must be greater than zero, got ${JSON.stringify(raw)}`);
  return Math.round(n);
}

function parseIntFlag(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max)
    throw new FlagError(`${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
function namespaceFlag(flag: string, raw: string): string {
  if (!DNS_LABEL.test(raw) || raw.length > 63)
    throw new FlagError(`${flag}: ${JSON.stringify(raw)} is not a valid namespace name (lower-case DNS label)`);
  return raw;
}

export interface OperatorConfig {
  kubeconfig?: string;
  namespace?: string;
  /** Namespace-scoped RBAC only: never read or write cluster-scoped objects (the TokenReview ClusterRoleBinding). */
  namespaced: boolean;
  leaderElectionNamespace: string;
  claimsNamespace: string;
  leaderElect: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  identity: string;
  image: string;
  workers: number;
  resyncPeriodMs: number;
  port: number;
  listenHost: string;
}

export function parseOperatorArgs(args: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      namespaced: { type: 'boolean' },
      'leader-election-namespace': { type: 'string' },
      'claims-namespace': { type: 'string' },
      'leader-elect': { type: 'string' },
      'lease-name': { type: 'string' },
      'lease-duration': { type: 'string' },
      'renew-deadline': { type: 'string' },
      'retry-period': { type: 'string' },
      identity: { type: 'string' },
      image: { type: 'string' },
      workers: { type: 'string' },
      'resync-period': { type: 'string' },
      port: { type: 'string' },
      'listen-host': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length) throw new FlagError(`operator takes no arguments, got ${positionals.join(' ')}`);
  const kubeconfig = values.kubeconfig;
  if (kubeconfig !== undefined && !existsSync(kubeconfig)) throw new FlagError(`--kubeconfig: file ${kubeconfig} not found`);
  const watchNs = values.namespace ?? (env.WATCH_NAMESPACE || undefined);
  const namespace =
    watchNs === undefined ? undefined : namespaceFlag(values.namespace !== undefined ? '--namespace' : 'WATCH_NAMESPACE', watchNs);
  const namespaced = values.namespaced === true || env.HA_SIGNER_OPERATOR_NAMESPACED === 'true';
  if (namespaced && namespace === undefined) throw new FlagError('--namespaced needs --namespace (the one namespace its Roles cover)');
  let leNs = values['leader-election-namespace'] ?? (env.POD_NAMESPACE || undefined);
  if (leNs === undefined) {
    const file = path.join(env.HA_SIGNER_FS_ROOT ?? '/', SA_NAMESPACE_FILE);
    if (existsSync(file)) leNs = readFileSync(file, 'utf8').trim();
  }
  if (leNs === undefined) throw new FlagError('--leader-election-namespace is required outside a pod (or set POD_NAMESPACE)');
  const leaderElectionNamespace = namespaceFlag('--leader-election-namespace', leNs);
  const claimsNamespace = namespaceFlag('--claims-namespace', values['claims-namespace'] ?? leaderElectionNamespace);
  const le = values['leader-elect'] ?? 'true';
  if (le !== 'true' && le !== 'false') throw new FlagError(`--leader-elect: expected true or false, got ${JSON.stringify(le)}`);
  const leaseName = values['lease-name'] ?? 'ha-signer-operator';
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(leaseName) || leaseName.length > 253)
    throw new FlagError(`--lease-name: ${JSON.stringify(leaseName)} is not a valid object name`);
  const leaseDurationMs = parseDuration('--lease-duration', values['lease-duration'] ?? '15s');
  const renewDeadlineMs = parseDuration('--renew-deadline', values['renew-deadline'] ?? '10s');
  const retryPeriodMs = parseDuration('--retry-period', values['retry-period'] ?? '2s');
  const leProblem = validateLeaderElection({ leaseDurationMs, renewDeadlineMs, retryPeriodMs });
  if (leProblem) throw new FlagError(leProblem);
  const image = (values.image ?? env[DEFAULT_IMAGE_ENV] ?? '').trim();
  if (image === '') throw new FlagError(`--image is required when ${DEFAULT_IMAGE_ENV} is not set (the default image of signer pods)`);
  if (/\s/.test(image)) throw new FlagError(`--image: ${JSON.stringify(image)} is not an image reference`);
  const portRaw = values.port ?? env.HA_SIGNER_OPERATOR_PORT ?? '8081';
  const port = parseIntFlag(values.port !== undefined ? '--port' : 'HA_SIGNER_OPERATOR_PORT', portRaw, 0, 65535);
  const identity = values.identity ?? (env.POD_NAME ? `${env.POD_NAME}_${randomUUID().slice(0, 8)}` : `${os.hostname()}_${randomUUID()}`);
  if (identity.trim() === '') throw new FlagError('--identity must not be empty');
  return {
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    namespaced,
    leaderElectionNamespace,
    claimsNamespace,
    leaderElect: le === 'true',
    leaseName,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    identity,
    image,
    workers: parseIntFlag('--workers', values.workers ?? '4', 1, 64),
    resyncPeriodMs: parseDuration('--resync-period', values['resync-period'] ?? '5m'),
    port,
    listenHost: values['listen-host'] ?? env.HA_SIGNER_LISTEN_HOST ?? '0.0.0.0',
  };
}

export function loadKubeConfig(cfg: Pick<OperatorConfig, 'kubeconfig'>, env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig);
  else if (env.KUBECONFIG) kc.loadFromDefault();
  else if (env.KUBERNETES_SERVICE_HOST)
    kc.loadFromCluster(env.HA_SIGNER_FS_ROOT && env.HA_SIGNER_FS_ROOT !== '/' ? env.HA_SIGNER_FS_ROOT.replace(/\/+$/, '') : '');
  else throw new FlagError('no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod');
  return kc;
}

function logger(): LogFn {
  return logFn(createLogger({ component: 'operator' }));
}

export interface RunningOperator {
  /** Resolves on graceful shutdown; rejects when the lease was lost. */
  done: Promise<void>;
  stop(): Promise<void>;
  port: number;
}

/** Starts the operator (for tests in-process; the CLI uses operatorCommand). */
export async function startOperator(cfg: OperatorConfig): Promise<RunningOperator> {
  const log = logger();
  const kc = loadKubeConfig(cfg);
  const kube = new Kube(kc);
  const metrics = new OperatorMetrics();
  const controller = new Controller(kc, kube, metrics, {
    ...(cfg.namespace ? { namespace: cfg.namespace } : {}),
    clusterScoped: !cfg.namespaced,
    claimsNamespace: cfg.claimsNamespace,
    defaultImage: cfg.image,
    workers: cfg.workers,
    resyncPeriodMs: cfg.resyncPeriodMs,
    instance: cfg.identity,
    log,
  });
  const elector = cfg.leaderElect
    ? new LeaderElector(kube.coordination, {
        namespace: cfg.leaderElectionNamespace,
        name: cfg.leaseName,
        identity: cfg.identity,
        leaseDurationMs: cfg.leaseDurationMs,
        renewDeadlineMs: cfg.renewDeadlineMs,
        retryPeriodMs: cfg.retryPeriodMs,
        // Released below, after the workers have drained (a new leader must not overlap this one's last reconciles).
        releaseOnCancel: false,
        log,
      })
    : undefined;
  let controllerStarted = false;
  let controllerError: string | undefined;
  const server = await startHealthServer(cfg.listenHost, cfg.port, metrics, {
    healthy: () => (controllerError ? { ok: false, detail: controllerError } : controller.healthy()),
    ready: () => {
      if (elector && !elector.isLeader()) return { ok: true, detail: `standby (leader: ${elector.observedHolder() ?? 'none'})` };
      return controllerStarted && controller.synced() ? { ok: true, detail: 'leader, caches synced' } : { ok: false, detail: 'starting' };
    },
  });
  const port = (server.address() as { port: number }).port;
  log('operator starting', {
    identity: cfg.identity,
    namespace: cfg.namespace ?? '(all)',
    namespaced: cfg.namespaced,
    image: cfg.image,
    port,
    leaderElection: cfg.leaderElect ? `${cfg.leaderElectionNamespace}/${cfg.leaseName}` : 'off',
  });

  const abort = new AbortController();
  const done = (async () => {
    try {
      if (elector) {
        if (!(await elector.acquire(abort.signal))) return;
        metrics.leader.set(1);
      }
      await controller.start();
      controllerStarted = true;
      if (elector) {
        const outcome = await elector.renewLoop(abort.signal);
        metrics.leader.set(0);
        if (outcome === 'lost') {
          controllerError = 'leader lease lost';
          await controller.stop(5_000);
          throw new Error('lost the leader lease; exiting so that a fresh replica becomes a candidate');
        }
      } else {
        await new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }));
      }
    } finally {
      if (controllerStarted && !controllerError) await controller.stop();
      if (elector && !controllerError) {
        // Hand over at once instead of making the next leader wait a lease duration; a failure is logged with
        // its cause (e.g. 403 when the RBAC went first), not swallowed.
        await elector
          .release()
          .catch((err: unknown) => log('leader election: releasing the lease failed; the next leader waits for it to expire', { err }));
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      log('operator stopped');
    }
  })();
  return {
    done,
    port,
    async stop() {
      abort.abort();
      await done.catch(() => undefined);
    },
  };
}

export async function operatorCommand(args: string[]): Promise<void> {
  const cfg = parseOperatorArgs(args);
  if (cfg === 'help') return void console.log(OPERATOR_USAGE);
  const op = await startOperator(cfg);
  const onSignal = (sig: string) => {
    logger()(`received ${sig}, shutting down`);
    void op.stop();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  await op.done;
}

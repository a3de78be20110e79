/**
 * The controller: informers feed a work queue of `namespace/name` keys; workers reconcile them one key at a time.
 * Started by main.ts only while this replica holds the leader lease.
 */
import * as k8s from '@kubernetes/client-node';
import { referencedSecrets } from './desired/secrets.js';
import { FIELD_MANAGER } from './desired/names.js';
import { managedInformer, type ManagedInformer } from './informers.js';
import { SecretInformers } from './secret-informers.js';
import { describeError, type Kube } from './kube.js';
import type { OperatorMetrics } from './metrics.js';
import { WorkQueue, type RateLimiterOptions } from './queue.js';
import { ReconcileProblem, Reconciler } from './reconcile/index.js';
import { GROUP, KIND, PLURAL, VERSION, type ValidatorHASignerResource } from './types.js';

export interface ControllerOptions {
  /** Watch one namespace; undefined: all. */
  namespace?: string;
  /** False with namespace-scoped RBAC (--namespaced): no cluster-scoped objects. Default true. */
  clusterScoped?: boolean;
  claimsNamespace: string;
  defaultImage: string;
  workers: number;
  resyncPeriodMs: number;
  instance: string;
  rateLimiter?: RateLimiterOptions;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

const MANAGED = `app.kubernetes.io/managed-by=${FIELD_MANAGER}`;

export function ownerKey(obj: k8s.KubernetesObject): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find((r) => r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`));
  return ref && obj.metadata?.namespace ? `${obj.metadata.namespace}/${ref.name}` : undefined;
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly informers: ManagedInformer<k8s.KubernetesObject>[] = [];
  private readonly vhs: ManagedInformer<ValidatorHASignerResource>;
  private readonly reconciler: Reconciler;
  private workers: Promise<void>[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private started = false;

  constructor(
    kc: k8s.KubeConfig,
    private readonly kube: Kube,
    private readonly metrics: OperatorMetrics,
    private readonly opts: ControllerOptions,
  ) {
    this.queue = new WorkQueue(opts.rateLimiter ?? {});
    this.queue.onDepth = (d) => metrics.queueDepth.set(d);
    const ns = opts.namespace;
    const log = (m: string, fields?: Record<string, unknown>) => opts.log(m, fields);
    const enqueue = (key: string | undefined) => key && this.queue.add(key);
    const keyOf = (o: k8s.KubernetesObject) => `${o.metadata!.namespace}/${o.metadata!.name}`;
    const onError = (name: string) => () => metrics.watchErrors.inc({ informer: name });

    this.vhs = managedInformer<ValidatorHASignerResource>(
      kc,
      'validatorhasigners',
      ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      async () =>
        (ns
          ? await kube.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns })
          : await kube.custom.listClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural: PLURAL,
            })) as k8s.KubernetesListObject<ValidatorHASignerResource>,
      {
        add: (o) => {
          this.secrets.ensure(o.metadata.namespace);
          this.countResources();
          enqueue(keyOf(o));
        },
        // Status writes (ours) do not move metadata.generation: only spec and deletion changes need a reconcile.
        update: (o) => {
          const old = this.lastGeneration.get(keyOf(o));
          if (old === undefined || old !== o.metadata.generation || o.metadata.deletionTimestamp) enqueue(keyOf(o));
          this.lastGeneration.set(keyOf(o), o.metadata.generation ?? 0);
        },
        delete: (o) => {
          this.lastGeneration.delete(keyOf(o));
          this.countResources();
          // Stop watching Secrets of a namespace whose last resource went.
          if (!ns) this.secrets.retain(new Set(this.vhs.list().map((v) => v.metadata.namespace)));
          enqueue(keyOf(o));
        },
      },
      { log, onError: onError('validatorhasigners') },
    );
    const owned = (o: k8s.KubernetesObject) => enqueue(ownerKey(o));
    const jobs = managedInformer<k8s.V1Job>(
      kc,
      'jobs',
      ns ? `/apis/batch/v1/namespaces/${ns}/jobs` : '/apis/batch/v1/jobs',
      () =>
        ns
          ? kube.batch.listNamespacedJob({ namespace: ns, labelSelector: MANAGED })
          : kube.batch.listJobForAllNamespaces({ labelSelector: MANAGED }),
      { add: owned, update: owned, delete: owned },
      { labelSelector: MANAGED, log, onError: onError('jobs') },
    );
    const deployments = managedInformer<k8s.V1Deployment>(
      kc,
      'deployments',
      ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments',
      () =>
        ns
          ? kube.apps.listNamespacedDeployment({ namespace: ns, labelSelector: MANAGED })
          : kube.apps.listDeploymentForAllNamespaces({ labelSelector: MANAGED }),
      { add: owned, update: owned, delete: owned },
      { labelSelector: MANAGED, log, onError: onError('deployments') },
    );
    const secretChanged = (s: k8s.V1Secret) => {
      for (const v of this.vhs.list(s.metadata!.namespace))
        if (referencedSecrets(v).some((u) => u.name === s.metadata!.name)) enqueue(keyOf(v));
    };
    this.secrets = new SecretInformers(
      kc,
      kube,
      { add: secretChanged, update: secretChanged, delete: secretChanged },
      { log, onError: onError('secrets') },
    );
    this.informers.push(
      this.vhs as ManagedInformer<k8s.KubernetesObject>,
      jobs as ManagedInformer<k8s.KubernetesObject>,
      deployments as ManagedInformer<k8s.KubernetesObject>,
    );
    this.reconciler = new Reconciler(
      kube,
      { vhs: this.vhs, jobs, deployments, secrets: this.secrets },
      {
        ownershipNamespace: opts.claimsNamespace,
        clusterScoped: opts.clusterScoped ?? true,
        defaultImage: opts.defaultImage,
        instance: opts.instance,
        log: opts.log,
        enqueue: (k) => this.queue.add(k),
      },
    );
  }

  private readonly lastGeneration = new Map<string, number>();
  private readonly secrets: SecretInformers;

  /** The resources gauge follows the cache from the first list on (not only at resync). */
  private countResources(): void {
    this.metrics.resources.set(this.vhs.list().length);
  }

  synced(): boolean {
    return this.informers.every((i) => i.synced());
  }

  async start(syncTimeoutMs = 60_000): Promise<void> {
    this.started = true;
    // Only here, not in the constructor: a standby must start nothing (an informer's watch keeps the process alive
    // after SIGTERM).
    if (this.opts.namespace) this.secrets.ensure(this.opts.namespace);
    await Promise.all(this.informers.map((i) => i.start()));
    const deadline = Date.now() + syncTimeoutMs;
    while (!this.synced()) {
      if (Date.now() > deadline)
        throw new Error(
          `informers not synced after ${syncTimeoutMs} ms: ${this.informers
            .filter((i) => !i.synced())
            .map((i) => i.name)
            .join(', ')}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const v of this.vhs.list()) this.lastGeneration.set(`${v.metadata.namespace}/${v.metadata.name}`, v.metadata.generation ?? 0);
    this.opts.log('caches synced', { resources: this.vhs.list().length });
    await this.removeLegacyClaims();
    for (let i = 0; i < this.opts.workers; i++) this.workers.push(this.worker());
    this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncPeriodMs);
    this.resyncTimer.unref();
  }

  /**
   * Operators before 0.2 recorded database ownership keyed on the URI text (label ha-signer.dev/claim=database);
   * ownership is now keyed on the server's identity, so those records only mislead: remove them once.
   */
  private async removeLegacyClaims(): Promise<void> {
    try {
      for (const cm of await this.kube.listConfigMaps(this.opts.claimsNamespace, 'ha-signer.dev/claim=database')) {
        if (await this.kube.deleteConfigMapIf(this.opts.claimsNamespace, cm.metadata!.name!, cm.metadata!.uid!))
          this.opts.log('removed a legacy database claim', { configMap: cm.metadata!.name });
      }
    } catch (err) {
      this.opts.log('legacy database claims not removed', { error: describeError(err) });
    }
  }

  /** Enqueues every resource (covers missed events and objects the operator does not watch, such as claims). */
  resync(): void {
    const all = this.vhs.list();
    this.metrics.resources.set(all.length);
    for (const v of all) this.queue.add(`${v.metadata.namespace}/${v.metadata.name}`);
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = this.metrics.duration.startTimer();
      try {
        const result = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        this.metrics.reconciles.inc({ result: 'success' });
        if (result.requeueAfterMs) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const problem = err instanceof ReconcileProblem;
        this.metrics.reconciles.inc({ result: problem ? 'problem' : 'error' });
        this.metrics.errors.inc();
        const delay = this.queue.addRateLimited(key);
        this.opts.log(problem ? 'resource needs a fix' : 'reconcile failed', {
          key,
          error: problem ? (err as Error).message : describeError(err),
          retryInMs: delay,
        });
      } finally {
        end();
        this.queue.done(key);
        this.metrics.queueDepth.set(this.queue.len());
      }
    }
  }

  /** Healthy unless an informer has failed to talk to the API server for longer than `staleMs`. */
  healthy(staleMs = 120_000): { ok: boolean; detail: string } {
    if (!this.started) return { ok: true, detail: 'standby' };
    const stale = this.informers
      .filter((i) => {
        const since = i.failingSince();
        return since !== undefined && Date.now() - since > staleMs;
      })
      .map((i) => i.name);
    const secretsSince = this.secrets.failingSince();
    if (secretsSince !== undefined && Date.now() - secretsSince > staleMs) stale.push('secrets');
    return stale.length ? { ok: false, detail: `informers not connected: ${stale.join(', ')}` } : { ok: true, detail: 'ok' };
  }

  /** Stops taking work, lets running reconciles finish (up to `timeoutMs`), stops the informers. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.shutDown();
    await Promise.race([Promise.all(this.workers), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await Promise.all(this.informers.map((i) => i.stop().catch(() => undefined)));
    await this.secrets.stop();
  }
}

/**
 * Secrets are watched only in the namespaces that hold ValidatorHASigners (one informer per namespace, started with
 * the first resource there, stopped with the last), so the operator's memory follows what it manages, not every
 * Secret in the cluster. A cache miss is confirmed by a read in the reconcile, so a just-started informer that has
 * not listed yet costs a GET, never a wrong answer.
 */
import * as k8s from '@kubernetes/client-node';
import { managedInformer, type InformerHandlers, type ManagedInformer } from './informers.js';
import type { Kube } from './kube.js';

export class SecretInformers {
  private readonly byNamespace = new Map<string, ManagedInformer<k8s.V1Secret>>();

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly kube: Kube,
    private readonly handlers: InformerHandlers<k8s.V1Secret>,
    private readonly opts: { log: (m: string) => void; onError: () => void },
  ) {}

  /** Watches `namespace` (idempotent). */
  ensure(namespace: string): void {
    if (this.byNamespace.has(namespace)) return;
    const informer = managedInformer<k8s.V1Secret>(
      this.kc,
      `secrets/${namespace}`,
      `/api/v1/namespaces/${namespace}/secrets`,
      () => this.kube.core.listNamespacedSecret({ namespace }),
      this.handlers,
      this.opts,
    );
    this.byNamespace.set(namespace, informer);
    informer.start().catch((err: unknown) => this.opts.log(`informer secrets/${namespace}: ${(err as Error)?.message ?? String(err)}`));
  }

  /** Stops watching namespaces no longer in `keep`. */
  retain(keep: Set<string>): void {
    for (const [ns, informer] of this.byNamespace) {
      if (keep.has(ns)) continue;
      this.byNamespace.delete(ns);
      void informer.stop().catch(() => undefined);
    }
  }

  get(namespace: string, name: string): k8s.V1Secret | undefined {
    return this.byNamespace.get(namespace)?.get(namespace, name);
  }

  namespaces(): string[] {
    return [...this.byNamespace.keys()];
  }

  /** Since when the longest-failing informer has failed (for /healthz). */
  failingSince(): number | undefined {
    const since = [...this.byNamespace.values()].map((i) => i.failingSince()).filter((t): t is number => t !== undefined);
    return since.length ? Math.min(...since) : undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((i) => i.stop().catch(() => undefined)));
    this.byNamespace.clear();
  }
}

/**
 * Informers (list + watch from the last resourceVersion; the library re-lists on 410 Gone) that restart themselves
 * with backoff after any other error, and report when they last heard from the API server (for /healthz).
 */
import * as k8s from '@kubernetes/client-node';
import { errorSummary } from '../log.js';

export interface ManagedInformer<T extends k8s.KubernetesObject> {
  readonly name: string;
  readonly informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
  /** True once the first list completed. */
  synced(): boolean;
  /** Since when (ms) list/watch has been failing without a successful re-list; undefined when fine. */
  failingSince(): number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface InformerHandlers<T> {
  add?: (obj: T) => void;
  update?: (obj: T) => void;
  delete?: (obj: T) => void;
}

export function managedInformer<T extends k8s.KubernetesObject>(
  kc: k8s.KubeConfig,
  name: string,
  path: string,
  list: () => Promise<k8s.KubernetesListObject<T>>,
  handlers: InformerHandlers<T>,
  opts: { labelSelector?: string; log?: (m: string, fields?: Record<string, unknown>) => void; onError?: () => void } = {},
): ManagedInformer<T> {
  let synced = false;
  let stopped = false;
  let failing: number | undefined;
  let backoff = 500;
  let timer: NodeJS.Timeout | undefined;
  const listFn = async () => {
    const result = await list();
    synced = true;
    failing = undefined;
    backoff = 500;
    return result;
  };
  const informer = k8s.makeInformer<T>(kc, path, listFn, opts.labelSelector);
  const touch = () => (failing = undefined);
  informer.on('add', (o) => (touch(), handlers.add?.(o)));
  informer.on('update', (o) => (touch(), handlers.update?.(o)));
  informer.on('delete', (o) => (touch(), handlers.delete?.(o)));
  informer.on('error', (err) => {
    if (stopped) return;
    opts.onError?.();
    failing ??= Date.now();
    opts.log?.(`informer ${name}: ${(err as Error)?.message ?? String(err)}; restarting in ${backoff} ms`, { err: errorSummary(err) });
    timer = setTimeout(() => {
      timer = undefined;
      // Re-list on restart (not only on 410): the list proves the connection works again and repairs the cache.
      (informer as unknown as { resourceVersion: string }).resourceVersion = '';
      if (!stopped) informer.start().catch(() => undefined);
    }, backoff);
    backoff = Math.min(backoff * 2, 30_000);
  });
  return {
    name,
    informer,
    get: (namespace, n) => informer.get(n, namespace),
    list: (namespace) => [...informer.list(namespace)],
    synced: () => synced,
    failingSince: () => failing,
    async start() {
      stopped = false;
      await informer.start();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    },
  };
}

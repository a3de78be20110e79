/**
 * `ha-signer check ready`: waits until an HTTP health endpoint answers 2xx (the chart's `helm test` pod). The runtime
 * image is distroless (no shell, no curl), so the check is part of the CLI. With --service it finds the Service's ready
 * endpoints through the API server (EndpointSlices) and calls them directly: it needs no cluster DNS or Service proxy.
 */
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../log.js';
import { type Command, UsageError, parseFlags } from './common.js';

const READY_USAGE = `Usage: ha-signer check ready (--url URL | --service NAME [--namespace NS] [--port NAME|NUMBER]) [options]

Waits until a health endpoint answers HTTP 2xx; exits 0 then, 1 when the timeout passes (with the last answer).
  --url URL                 the endpoint, e.g. http://ha-signer-metrics.ops.svc:8081/readyz
  --service NAME            instead of --url: the Service's ready endpoints (EndpointSlices read through the API
                            server with the pod's ServiceAccount, or KUBECONFIG); passes when one answers 2xx
  --namespace NS            the Service's namespace (default: the pod's own namespace)
  --port NAME|NUMBER        the endpoint port's name or number (default: the Service's only port)
  --path PATH               the path called on each endpoint (default /readyz)
  --timeout DURATION        give up after this long (default 60s; e.g. 500ms, 30s, 2m)
  --interval DURATION       pause between attempts (default 2s)
  --log-level LEVEL         [HA_SIGNER_LOG_LEVEL] default info
  -h, --help                this text`;

/** The expected refusal: the CLI prints it as one line (no stack) and exits 1. */
export class CheckFailedError extends Error {
  readonly code = 'ECHECKFAILED';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `500ms`, `30s`, `2m`, `1h`: positive, at most a day. */
export function parseDurationFlag(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!(ms > 0) || ms > 86_400_000)
    throw new UsageError(`${flag}: expected a duration between 1ms and 24h such as 500ms, 30s or 2m, got ${JSON.stringify(raw)}`);
  return ms;
}

export function namespaceFlag(flag: string, raw: string): string {
  if (!DNS_LABEL.test(raw) || raw.length > 63)
    throw new UsageError(`${flag}: ${JSON.stringify(raw)} is not a namespace name (lowercase letters, digits and -, at most 63)`);
  return raw;
}

/** KUBECONFIG when set, else the pod's ServiceAccount (read under HA_SIGNER_FS_ROOT, as the operator does). */
export function podKubeConfig(env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (env.KUBECONFIG) kc.loadFromDefault();
  else if (env.KUBERNETES_SERVICE_HOST)
    kc.loadFromCluster(env.HA_SIGNER_FS_ROOT && env.HA_SIGNER_FS_ROOT !== '/' ? env.HA_SIGNER_FS_ROOT.replace(/\/+$/, '') : '');
  else throw new UsageError('no Kubernetes configuration: set KUBECONFIG or run in a pod (KUBERNETES_SERVICE_HOST)');
  return kc;
}

export async function podNamespace(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const { readFile } = await import('node:fs/promises');
  const file = path.join(env.HA_SIGNER_FS_ROOT ?? '/', '/var/run/secrets/kubernetes.io/serviceaccount/namespace');
  return (await readFile(file, 'utf8').catch(() => undefined))?.trim() || env.POD_NAMESPACE || undefined;
}

/** One line: the API server's status message for a client error (its message holds whole headers), else the message. */
export function apiReason(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    const body = (typeof error.body === 'string' ? safeJson(error.body) : error.body) as { message?: string } | undefined;
    return `HTTP ${error.code}: ${body?.message ?? 'no message'}`;
  }
  return (error as Error).message;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

interface ReadyOptions {
  timeoutMs: number;
  intervalMs: number;
  targets: () => Promise<string[]>;
}

export async function parseReadyFlags(args: string[]): Promise<ReadyOptions & { describe: string }> {
  const { values, positionals } = parseFlags(
    'check ready',
    args,
    {
      url: { type: 'string' },
      service: { type: 'string' },
      namespace: { type: 'string' },
      port: { type: 'string' },
      path: { type: 'string' },
      timeout: { type: 'string' },
      interval: { type: 'string' },
    },
    true,
  );
  if (positionals.length)
    throw new UsageError(`check ready takes no arguments, got ${positionals.join(' ')}; run ha-signer check ready --help`);
  const timeoutMs = parseDurationFlag('--timeout', values.timeout ?? '60s');
  const intervalMs = parseDurationFlag('--interval', values.interval ?? '2s');
  if ((values.url === undefined) === (values.service === undefined))
    throw new UsageError('check ready needs exactly one of --url URL or --service NAME (the endpoint to wait for)');
  if (values.url !== undefined) {
    for (const flag of ['namespace', 'port', 'path'] as const)
      if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --service, not --url (put it in the URL)`);
    let url: URL;
    try {
      url = new URL(values.url);
    } catch {
      throw new UsageError(`--url: ${JSON.stringify(values.url)} is not a URL (e.g. http://host:8081/readyz)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError(`--url: expected http:// or https://, got ${JSON.stringify(values.url)}`);
    return { timeoutMs, intervalMs, targets: () => Promise.resolve([url.href]), describe: url.href };
  }
  const service = values.service!;
  if (!DNS_LABEL.test(service) || service.length > 63) throw new UsageError(`--service: ${JSON.stringify(service)} is not a Service name`);
  const port = values.port;
  if (port !== undefined && !DNS_LABEL.test(port) && !/^[1-9][0-9]{0,4}$/.test(port))
    throw new UsageError(`--port: expected a port name or number, got ${JSON.stringify(port)}`);
  const urlPath = values.path ?? '/readyz';
  if (!urlPath.startsWith('/') || /\s/.test(urlPath))
    throw new UsageError(`--path: expected a path starting with /, got ${JSON.stringify(urlPath)}`);
  const nsRaw = values.namespace ?? (await podNamespace());
  if (nsRaw === undefined) throw new UsageError("--namespace is required outside a pod (the Service's namespace)");
  const namespace = namespaceFlag('--namespace', nsRaw);
  const discovery = podKubeConfig().makeApiClient(k8s.DiscoveryV1Api);
  return {
    timeoutMs,
    intervalMs,
    describe: `Service ${namespace}/${service}${port ? ` port ${port}` : ''}${urlPath}`,
    targets: () => serviceEndpoints(discovery, namespace, service, port, urlPath),
  };
}

/** URLs of the Service's ready endpoints on the chosen port. Throws (with why) when there are none. */
async function serviceEndpoints(api: k8s.DiscoveryV1Api, namespace: string, service: string, port: string | undefined, urlPath: string) {
  const slices = await api.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  const urls: string[] = [];
  for (const slice of slices.items) {
    const ports = (slice.ports ?? []).filter((p) => port === undefined || p.name === port || String(p.port) === port);
    if (port === undefined && (slice.ports ?? []).length > 1)
      throw new CheckFailedError(
        `Service ${namespace}/${service} has several ports (${slice.ports!.map((p) => p.name).join(', ')}): pass --port`,
      );
    for (const p of ports)
      for (const ep of slice.endpoints ?? [])
        if (ep.conditions?.ready !== false)
          for (const address of ep.addresses)
            urls.push(`http://${slice.addressType === 'IPv6' ? `[${address}]` : address}:${p.port}${urlPath}`);
  }
  if (urls.length === 0)
    throw new CheckFailedError(`Service ${namespace}/${service} has no ready endpoints${port ? ` on port ${port}` : ''}`);
  return urls;
}

/** One attempt: the first target that answers 2xx, else every target's reason. */
async function attempt(targets: string[]): Promise<{ ok: true; url: string; body: string } | { ok: false; reasons: string[] }> {
  const reasons: string[] = [];
  for (const url of targets) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const body = (await res.text()).trim().slice(0, 300);
      if (res.ok) return { ok: true, url, body };
      reasons.push(`${url}: HTTP ${res.status}: ${body}`);
    } catch (error) {
      const e = error as Error & { cause?: { code?: string } };
      reasons.push(`${url}: ${e.cause?.code ?? e.message}`);
    }
  }
  return { ok: false, reasons };
}

export async function waitReady(opts: ReadyOptions & { describe: string }, log = createLogger({ component: 'check' })): Promise<string> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: string;
  for (;;) {
    try {
      const result = await attempt(await opts.targets());
      if (result.ok) {
        log.info({ url: result.url, body: result.body }, `ready: ${result.url} answered ${result.body}`);
        return result.url;
      }
      last = result.reasons.join('; ');
    } catch (error) {
      last = apiReason(error);
    }
    log.warn({ target: opts.describe }, `not ready yet: ${last}`);
    if (Date.now() + opts.intervalMs > deadline)
      throw new CheckFailedError(`${opts.describe} not ready within ${opts.timeoutMs / 1000}s: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs));
  }
}

export const command: Command = {
  usage: () => READY_USAGE,
  run: async (args) => {
    const [sub, ...rest] = args;
    if (sub === 'ready') {
      await waitReady(await parseReadyFlags(rest));
      return;
    }
    throw new UsageError(`check needs a subcommand: ready, got ${JSON.stringify(sub ?? '')}; run ha-signer check ready --help`);
  },
};

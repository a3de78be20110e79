/** Prometheus metrics of the operator, and the /metrics, /healthz, /readyz HTTP server. */
import http from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'ha_signer_operator_reconciles_total',
    help: 'Reconciles by result (success, problem, error).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'ha_signer_operator_reconcile_errors_total',
    help: 'Reconciles that failed and were re-queued with backoff.',
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'ha_signer_operator_reconcile_duration_seconds',
    help: 'Duration of one reconcile.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'ha_signer_operator_queue_depth',
    help: 'Keys waiting in the work queue.',
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'ha_signer_operator_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [this.registry],
  });
  readonly resources = new Gauge({
    name: 'ha_signer_operator_resources',
    help: 'ValidatorHASigners in the informer cache.',
    registers: [this.registry],
  });
  readonly watchErrors = new Counter({
    name: 'ha_signer_operator_watch_errors_total',
    help: 'Informer list/watch errors (each restarts the informer).',
    labelNames: ['informer'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ha_signer_operator_' });
  }
}

export interface HealthSources {
  /** Process healthy (informers alive or not yet needed). */
  healthy(): { ok: boolean; detail: string };
  /** Ready to serve its role (leader with synced caches, or a standby). */
  ready(): { ok: boolean; detail: string };
}

export async function startHealthServer(host: string, port: number, metrics: OperatorMetrics, health: HealthSources): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (url === '/metrics') {
      metrics.registry
        .metrics()
        .then((m) => reply(200, m, metrics.registry.contentType))
        .catch((e: Error) => reply(500, `${e.message}\n`));
      return;
    }
    if (url === '/healthz' || url === '/livez') {
      const h = health.healthy();
      return reply(h.ok ? 200 : 503, `${h.detail}\n`);
    }
    if (url === '/readyz') {
      const r = health.ready();
      return reply(r.ok ? 200 : 503, `${r.detail}\n`);
    }
    reply(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** /livez, /readyz and /metrics: unauthenticated, and logged at debug only (probes would flood the logs). */
import type { FastifyPluginAsync } from 'fastify';
import type { SignerServerDeps } from './context.js';

export const PROBE_ROUTES: ReadonlySet<string> = new Set(['/livez', '/readyz', '/metrics']);

export const healthRoutes: FastifyPluginAsync<SignerServerDeps> = async (app, { metrics, readiness }) => {
  app.get('/livez', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const report = await readiness.check();
    return reply.code(report.ready ? 200 : 503).send(report);
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
};

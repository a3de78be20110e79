/**
 * The optional second listener of `serve` (HA_SIGNER_METRICS_PORT): plain HTTP with only /livez, /readyz and
 * /metrics. Probes keep working when the signing port speaks HTTPS (the kubelet needs no certificate), and a
 * NetworkPolicy can admit scrapers to this port without letting them reach the signing API.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { SignerServerDeps } from './routes/context.js';
import { healthRoutes } from './routes/health.js';

export async function listenMetricsServer(deps: SignerServerDeps, host: string, port: number): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger.child({ listener: 'metrics' }) } : { logger: { level: deps.logLevel } }),
    // Probes every few seconds: no request lines.
    disableRequestLogging: true,
    return503OnClosing: true,
  });
  await app.register(healthRoutes, deps);
  // The URL is not echoed (on the signing port a client secret can travel in it; a misdirected caller may send one here).
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: 'NotFound', message: 'the metrics port serves only GET /livez, /readyz and /metrics' }),
  );
  await app.listen({ host, port });
  return app;
}

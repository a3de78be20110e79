/**
 * The Web3Signer-compatible JSON-RPC routes (see ../jsonrpc.ts). Errors on these routes are JSON-RPC bodies, not
 * the /v1 error bodies, so this plugin has its own error handler.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { HttpError } from '../http-errors.js';
import { errorResponse } from '../http-errors.js';
import { handleJsonRpc } from '../jsonrpc.js';
import type { AuthDenialReason } from '../metrics.js';
import type { SignerServerDeps } from './context.js';

export interface JsonRpcRouteDeps extends SignerServerDeps {
  deny: (request: FastifyRequest, status: 401 | 403 | 503, reason: AuthDenialReason, message: string) => HttpError;
}

export const jsonRpcRoutes: FastifyPluginAsync<JsonRpcRouteDeps> = async (app, deps) => {
  app.setErrorHandler((error, _request, reply) => {
    const { status, body } = errorResponse(error);
    return reply.code(status).send({ jsonrpc: '2.0', id: null, error: { code: status === 401 || status === 403 ? -32001 : -32600, message: body.message } });
  });

  app.addHook('onRequest', async (request) => {
    const result = await deps.authenticator.authenticate(request.headers.authorization);
    if (!result.ok) {
      if (result.status === 503) throw deps.deny(request, 503, result.reason, 'authentication backend (TokenReview) unavailable');
      throw deps.deny(request, 401, result.reason, result.reason === 'missing' ? 'authorization: a Bearer token is required' : 'authorization: token not accepted');
    }
    request.principal = result.principal;
  });

  app.post('/', async (request, reply) => {
    const answer = await handleJsonRpc(request.body, {
      backend: deps.backend,
      principal: request.principal!,
      metrics: deps.metrics,
      log: request.log,
      deny: (reason, message) => deps.deny(request, 403, reason, message),
    });
    return reply.code(answer.httpStatus).send(answer.body);
  });
};

/**
 * The protected Web3Signer-compatible JSON-RPC routes (see ../jsonrpc.ts):
 * - `POST /` (HA_SIGNER_JSONRPC_ENABLED): callers with a bearer token or ServiceAccount token, as the /v1 API;
 * - `POST /jsonrpc/:secret` (HA_SIGNER_JSONRPC_CLIENTS_FILE): stock Aztec nodes, which can send no header, with a
 *   per-client secret in the URL path. The secret is never logged or echoed (request logs carry the route pattern).
 * - `POST /jsonrpc`: stock Aztec nodes recognised by their source pod's ServiceAccount (HA_SIGNER_JSONRPC_POD_IDENTITY).
 * Errors on these routes are JSON-RPC bodies, so this plugin has its own error handler.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { HttpError } from '../http-errors.js';
import { errorResponse } from '../http-errors.js';
import { type JsonRpcCaller, clientForSecret, clientForServiceAccount } from '../jsonrpc-clients.js';
import { normalizePeerAddress } from '../pod-identity.js';
import { handleJsonRpc } from '../jsonrpc.js';
import type { AuthDenialReason } from '../metrics.js';
import type { SignerServerDeps } from './context.js';

export interface JsonRpcRouteDeps extends SignerServerDeps {
  deny: (request: FastifyRequest, status: 401 | 403 | 503, reason: AuthDenialReason, message: string) => HttpError;
}

export const JSONRPC_SECRET_ROUTE = '/jsonrpc/:secret';
export const JSONRPC_POD_ROUTE = '/jsonrpc';

declare module 'fastify' {
  interface FastifyRequest {
    jsonRpcCaller?: JsonRpcCaller;
  }
}

export const jsonRpcRoutes: FastifyPluginAsync<JsonRpcRouteDeps> = async (app, deps) => {
  const protectedRpc = deps.jsonRpc;
  if (!protectedRpc) throw new Error('the JSON-RPC routes need their protection dependencies (rules, claim lookup)');

  app.setErrorHandler((error, _request, reply) => {
    const { status, body } = errorResponse(error);
    return reply
      .code(status)
      .send({ jsonrpc: '2.0', id: null, error: { code: status === 401 || status === 403 ? -32001 : -32600, message: body.message } });
  });

  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.url === JSONRPC_POD_ROUTE) {
      // No credential in the request: the caller is the pod that owns the connection's peer address.
      const clients = protectedRpc.clients?.current;
      if (!clients)
        throw deps.deny(
          request,
          401,
          'client_list_invalid',
          'the JSON-RPC client list is invalid or unreadable on this signer; no client is accepted until it is fixed',
        );
      const source = protectedRpc.podIdentity;
      if (!source)
        throw deps.deny(
          request,
          401,
          'missing',
          'no credential: use the client URL with its secret (/jsonrpc/<secret>); source-pod identity is off on this signer',
        );
      if (!source.synced()) throw deps.deny(request, 503, 'review_unavailable', 'the pods informer has not listed pods yet; retry');
      const peer = normalizePeerAddress(request.socket.remoteAddress);
      const pod = peer ? source.identityOf(peer) : undefined;
      const client = pod ? clientForServiceAccount(clients, pod.namespace, pod.serviceAccount) : undefined;
      if (!client)
        throw deps.deny(
          request,
          401,
          'invalid',
          `no client for the source address${pod ? ` (pod ${pod.namespace}/${pod.pod}, ServiceAccount ${pod.serviceAccount})` : ' (not a running pod this signer knows)'}`,
        );
      request.jsonRpcCaller = client;
      return;
    }
    if (request.routeOptions.url === JSONRPC_SECRET_ROUTE) {
      const clients = protectedRpc.clients?.current;
      if (!clients)
        throw deps.deny(
          request,
          401,
          'client_list_invalid',
          'the JSON-RPC client list is invalid or unreadable on this signer; no client is accepted until it is fixed',
        );
      const client = clientForSecret(clients, (request.params as { secret: string }).secret);
      if (!client) throw deps.deny(request, 401, 'invalid', 'unknown client secret in the URL path');
      request.jsonRpcCaller = client;
      return;
    }
    const result = await deps.authenticator.authenticate(request.headers.authorization);
    if (!result.ok) {
      if (result.status === 503) throw deps.deny(request, 503, result.reason, 'authentication backend (TokenReview) unavailable');
      throw deps.deny(
        request,
        401,
        result.reason,
        result.reason === 'missing' ? 'authorization: a Bearer token is required' : 'authorization: token not accepted',
      );
    }
    request.principal = result.principal;
    // Bearer callers get the protected defaults: no unclaimed digests, no transactions.
    request.jsonRpcCaller = {
      id: result.principal.id,
      allows: result.principal.allows,
      nodeIds: undefined,
      allowUnclaimedDigests: false,
      allowTransactions: false,
    };
  });

  const handler = async (request: FastifyRequest): Promise<{ status: number; body: unknown }> => {
    const answer = await handleJsonRpc(request.body, {
      backend: deps.backend,
      caller: request.jsonRpcCaller!,
      metrics: deps.metrics,
      log: request.log,
      deny: (reason, message) => deps.deny(request, 403, reason, message),
      rules: protectedRpc.rules,
      claims: protectedRpc.claims,
      signer: deps.signer,
    });
    return { status: answer.httpStatus, body: answer.body };
  };

  if (deps.jsonRpcEnabled) {
    app.post('/', async (request, reply) => {
      const { status, body } = await handler(request);
      return reply.code(status).send(body);
    });
  }
  if (protectedRpc.clients) {
    for (const route of [JSONRPC_SECRET_ROUTE, JSONRPC_POD_ROUTE]) {
      app.post(route, async (request, reply) => {
        const { status, body } = await handler(request);
        return reply.code(status).send(body);
      });
    }
  }
};

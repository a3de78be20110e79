/**
 * The signer's HTTP server: the signing API with slashing protection, audit reads, health and metrics, and the
 * optional Web3Signer-compatible JSON-RPC. Routes are plugins with JSON schemas for the shape of their input;
 * authentication is an onRequest hook; one error handler maps every error to its documented answer. Every input is
 * validated before the database is touched.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { ErrorBody } from '../wire.js';
import { ROUTES } from '../wire.js';
import { BODY_LIMIT_BYTES } from './config.js';
import { HttpError, badUrlResponse, errorResponse } from './http-errors.js';
import { type AuthDenialReason, unavailableReasonLabel } from './metrics.js';
import type { SignerServerDeps } from './routes/context.js';
import { healthRoutes } from './routes/health.js';
import { jsonRpcRoutes } from './routes/jsonrpc.js';
import { AJV_OPTIONS } from './routes/schemas.js';
import { signRoute } from './routes/sign.js';
import { validatorRoutes } from './routes/validators.js';
import { parseValidatorAddress } from './validation.js';

export type { SignerServerDeps } from './routes/context.js';
export { HttpError, errorResponse, signErrorResponse } from './http-errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes with an :address parameter: 'sign' also needs a key for it here (else 404). */
    validatorRoute?: 'sign' | 'audit';
  }
}

/**
 * Request logging: one line per request at debug (probes and other per-request noise stay out of info logs), with
 * the route pattern instead of the URL: a stock node's client secret travels in the URL path and must never be logged.
 */
class SignerLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ method: request.method, route: request.routeOptions.url ?? 'unmatched' }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      statusCode: reply.statusCode,
      responseTime: reply.elapsedTime,
    };
    if (error) reply.log.warn({ ...fields, err: error.message }, 'request errored');
    else reply.log.debug(fields, 'request completed');
  }
}

const sendError = (reply: FastifyReply, status: number, body: ErrorBody): FastifyReply => reply.code(status).send(body);

export function buildSignerServer(deps: SignerServerDeps): FastifyInstance {
  const { backend, metrics, readiness } = deps;
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: deps.logLevel } }),
    logController: new SignerLogController(),
    ...(deps.serverFactory ? { serverFactory: deps.serverFactory } : {}),
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    ajv: AJV_OPTIONS,
    // A URL fastify cannot decode (e.g. /v1/validators/%zz/sign) gets the documented InvalidRequest body.
    frameworkErrors: (error, request, reply) => {
      // Neither answer echoes the URL: a stock node's client secret travels in it.
      const url = request.raw.url ?? '';
      const response =
        error.code === 'FST_ERR_BAD_URL'
          ? badUrlResponse(url)
          : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
            ? badUrlResponse(url, 'a path segment is too long')
            : errorResponse(error);
      void sendError(reply.header('x-request-id', request.id), response.status, response.body);
    },
  });
  // JSON only: a text/plain body is refused as a wrong content type instead of reaching the handlers as a string.
  app.removeContentTypeParser('text/plain');

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // During shutdown, a keep-alive connection that carried an in-flight request must close after its answer, or
    // the server would wait for the client to hang up before it can exit.
    if (readiness.isShuttingDown) reply.header('connection', 'close');
  });

  app.setErrorHandler((error, request, reply) => {
    const response = errorResponse(error);
    if (request.routeOptions.url === ROUTES.sign)
      request.signMetrics = { dutyType: request.signMetrics?.dutyType ?? 'unknown', outcome: response.outcome };
    if (request.routeOptions.url === ROUTES.sign && response.status === 503)
      metrics.signUnavailable.inc({ reason: unavailableReasonLabel((response.body as { reason?: unknown }).reason) });
    if (response.status >= 500)
      request.log.warn({ err: (error as Error)?.message, status: response.status, route: request.routeOptions.url }, 'request failed');
    else if (response.outcome === 'slashing_protection') {
      const body = response.body as { slot?: string; signedByNode?: string; dutyType?: string };
      request.log.warn(
        { dutyType: body.dutyType, slot: body.slot, signedByNode: body.signedByNode },
        'slashing protection refused a signature',
      );
    }
    return sendError(reply, response.status, response.body);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, { error: 'NotFound', message: `no route ${request.method} ${request.routeOptions.url ?? 'for this path'}` }),
  );

  /** Counts and logs a denied call (never the token); returns the answer to throw. */
  const deny = (request: FastifyRequest, status: 401 | 403 | 503, reason: AuthDenialReason, message: string): HttpError => {
    metrics.authDenied.inc({ reason });
    request.log.warn(
      { reason, principal: request.principal?.id, route: request.routeOptions.url, remoteAddress: request.ip },
      'call denied',
    );
    if (status === 503) return new HttpError(status, { error: 'Unavailable', message, reason: 'AuthenticationUnavailable' });
    return new HttpError(status, { error: status === 401 ? 'Unauthorized' : 'Forbidden', message });
  };

  void app.register(healthRoutes, deps);

  // /v1: authentication (and, for routes with :address, validation and authorization of the address) before the
  // body is even read, so a caller without rights learns nothing about the input rules and writes nothing.
  void app.register(async (v1) => {
    v1.addHook('onRequest', async (request) => {
      const result = await deps.authenticator.authenticate(request.headers.authorization);
      if (!result.ok) {
        if (result.status === 503) throw deny(request, 503, result.reason, 'authentication backend (TokenReview) unavailable');
        throw deny(
          request,
          401,
          result.reason,
          result.reason === 'missing' ? 'authorization: a Bearer token is required' : 'authorization: token not accepted',
        );
      }
      request.principal = result.principal;
      const validatorRoute = request.routeOptions.config.validatorRoute;
      if (validatorRoute === undefined) return;
      const address = parseValidatorAddress((request.params as { address: string }).address);
      if (!result.principal.allows(address))
        throw deny(request, 403, 'forbidden', `caller ${result.principal.id} may not use validator ${address}`);
      if (validatorRoute === 'sign' && !backend.serves(address)) {
        throw new HttpError(404, { error: 'UnknownValidator', message: `this signer holds no key for validator ${address}` });
      }
      request.validatorAddress = address;
    });
    await v1.register(validatorRoutes, deps);
    await v1.register(signRoute, deps);
  });

  if (deps.jsonRpcEnabled || deps.jsonRpc?.clients) void app.register(jsonRpcRoutes, { ...deps, deny });

  return app;
}

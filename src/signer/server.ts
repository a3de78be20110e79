/**
 * The signer's HTTP server: the signing API with slashing protection, audit reads, health and metrics, and the
 * optional Web3Signer-compatible JSON-RPC. Every input is validated before the database is touched.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  DatabaseUnavailableError,
  DutyAlreadySignedError,
  InvalidDutyInputError,
  SchemaVersionError,
  SignerStoppedError,
  SigningLockLostError,
  SigningTimeoutError,
  SlashingProtectionError,
  type ValidatorDutyRecord,
  type ValidatorHASigner,
} from '../protection/index.js';
import type { AuthDenialReason, SignOutcome, SignerMetrics } from './metrics.js';
import { dutyTypeLabel } from './metrics.js';
import type { Authenticator, Principal } from './auth.js';
import { BackendSigningError, type SigningBackend } from './backends.js';
import { BODY_LIMIT_BYTES, type LogLevel } from './config.js';
import { handleJsonRpc } from './jsonrpc.js';
import type { ReadinessMonitor } from './readiness.js';
import { InvalidRequestError, parseSignRequest, parseSlotRange, parseValidatorAddress } from './validation.js';

export interface SignerServerDeps {
  backend: SigningBackend;
  authenticator: Authenticator;
  metrics: SignerMetrics;
  readiness: ReadinessMonitor;
  /** The protection core once it has started; undefined while the database is not yet usable. */
  signer: () => ValidatorHASigner | undefined;
  rollupAddress: string;
  nodeId: string;
  jsonRpcEnabled: boolean;
  logLevel: LogLevel;
}

export interface ErrorBody {
  error: string;
  message: string;
  [key: string]: unknown;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
}

const SIGN_ROUTE = '/v1/validators/:address/sign';

/** Maps an error of the signing path to its HTTP answer and metrics outcome. Anything unknown fails closed (503). */
export function signErrorResponse(error: unknown): { status: number; body: ErrorBody; outcome: SignOutcome } {
  if (error instanceof InvalidRequestError) return { status: 400, outcome: 'invalid', body: { error: 'InvalidRequest', message: error.message, field: error.field } };
  if (error instanceof InvalidDutyInputError) return { status: 400, outcome: 'invalid', body: { error: 'InvalidRequest', message: error.message, field: error.field } };
  if (error instanceof HttpError) return { status: error.status, outcome: error.status === 401 || error.status === 403 ? 'denied' : error.status === 404 ? 'invalid' : 'error', body: error.body };
  if (error instanceof DutyAlreadySignedError) {
    return {
      status: 409,
      outcome: 'already_signed',
      body: {
        error: 'DutyAlreadySigned',
        message: error.message,
        slot: error.slot.toString(),
        dutyType: error.dutyType,
        blockIndexWithinCheckpoint: error.blockIndexWithinCheckpoint,
        signedByNode: error.signedByNode,
        signature: error.signature ?? null,
      },
    };
  }
  if (error instanceof SlashingProtectionError) {
    return {
      status: 409,
      outcome: 'slashing_protection',
      body: {
        error: 'SlashingProtection',
        message: error.message,
        slot: error.slot.toString(),
        dutyType: error.dutyType,
        blockIndexWithinCheckpoint: error.blockIndexWithinCheckpoint,
        existingMessageHash: error.existingMessageHash,
        attemptedMessageHash: error.attemptedMessageHash,
        signedByNode: error.signedByNode,
      },
    };
  }
  if (error instanceof BackendSigningError || error instanceof SigningTimeoutError) {
    // The lock was released by the core; nothing was recorded or returned. A retry may succeed.
    return { status: 502, outcome: 'error', body: { error: 'SigningFailed', message: error.message } };
  }
  if (error instanceof SigningLockLostError) {
    return { status: 503, outcome: 'unavailable', body: { error: 'Unavailable', message: error.message, reason: 'SigningLockLost' } };
  }
  if (error instanceof SignerStoppedError) return { status: 503, outcome: 'unavailable', body: { error: 'Unavailable', message: error.message, reason: 'ShuttingDown' } };
  if (error instanceof DatabaseUnavailableError || error instanceof SchemaVersionError) {
    return { status: 503, outcome: 'unavailable', body: { error: 'Unavailable', message: error.message, reason: error.name } };
  }
  // A PostgreSQL error (SQLSTATE) or anything else: the duty's record cannot be vouched for, so no signature.
  return { status: 503, outcome: 'unavailable', body: { error: 'Unavailable', message: `signing refused: ${(error as Error)?.message ?? String(error)}`, reason: 'Internal' } };
}

function dutyJson(record: ValidatorDutyRecord): Record<string, unknown> {
  return {
    slot: record.slot.toString(),
    dutyType: record.dutyType,
    blockIndexWithinCheckpoint: record.blockIndexWithinCheckpoint,
    blockNumber: record.blockNumber.toString(),
    checkpointNumber: record.checkpointNumber.toString(),
    status: record.status,
    messageHash: record.messageHash,
    signature: record.signature ?? null,
    nodeId: record.nodeId,
    startedAt: record.startedAt.toISOString(),
    completedAt: record.completedAt?.toISOString() ?? null,
    takeovers: record.takeovers,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export function buildSignerServer(deps: SignerServerDeps): FastifyInstance {
  const { backend, metrics, readiness } = deps;
  const app = Fastify({
    logger: { level: deps.logLevel },
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    requestIdLogLabel: 'reqId',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  });
  // JSON only: a text/plain body is refused as a wrong content type instead of reaching the handlers as a string.
  app.removeContentTypeParser('text/plain');

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // During shutdown, a keep-alive connection that carried an in-flight request must close after its answer, or
    // the server would wait for the client to hang up before it can exit.
    if (readiness.isShuttingDown) reply.header('connection', 'close');
  });

  const deny = (request: FastifyRequest, status: 401 | 403 | 503, reason: AuthDenialReason, message: string): HttpError => {
    metrics.authDenied.inc({ reason });
    // The token is never logged; the principal (a name) is, when there is one.
    request.log.warn({ reason, principal: request.principal?.id, route: request.routeOptions.url, remoteAddress: request.ip }, 'call denied');
    const error = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Unavailable';
    return new HttpError(status, { error, message });
  };

  const authenticate = async (request: FastifyRequest): Promise<Principal> => {
    const result = await deps.authenticator.authenticate(request.headers.authorization);
    if (result.ok) {
      request.principal = result.principal;
      return result.principal;
    }
    if (result.status === 503) throw deny(request, 503, result.reason, 'authentication backend (TokenReview) unavailable');
    throw deny(request, 401, result.reason, result.reason === 'missing' ? 'authorization: a Bearer token is required' : 'authorization: token not accepted');
  };

  const authorize = (request: FastifyRequest, principal: Principal, address: string): void => {
    if (!principal.allows(address)) throw deny(request, 403, 'forbidden', `caller ${principal.id} may not use validator ${address}`);
  };

  const sendError = (reply: FastifyReply, status: number, body: ErrorBody): FastifyReply => reply.code(status).send(body);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    let status: number;
    let body: ErrorBody;
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      body = { error: 'PayloadTooLarge', message: `body: larger than the ${BODY_LIMIT_BYTES}-byte limit` };
    } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || error.code === 'FST_ERR_CTP_INVALID_TYPE') {
      status = 400;
      body = { error: 'InvalidRequest', message: 'content-type: expected application/json', field: 'content-type' };
    } else if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      status = 400;
      body = { error: 'InvalidRequest', message: 'body: empty; expected a JSON object', field: 'body' };
    } else if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError || (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)) {
      status = error.statusCode === 413 ? 413 : 400;
      body = { error: status === 413 ? 'PayloadTooLarge' : 'InvalidRequest', message: `body: ${error.message}`, field: 'body' };
    } else {
      request.log.error({ err: error }, 'unhandled error');
      status = 500;
      body = { error: 'Internal', message: 'internal error' };
    }
    if (request.routeOptions.url === SIGN_ROUTE) metrics.signRequests.inc({ duty_type: 'unknown', outcome: 'invalid' });
    return sendError(reply, status, body);
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 404, { error: 'NotFound', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  app.get('/livez', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const report = await readiness.check();
    return reply.code(report.ready ? 200 : 503).send(report);
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  app.get('/v1/validators', async (request, reply) => {
    try {
      const principal = await authenticate(request);
      return { validators: backend.addresses().filter((address) => principal.allows(address)), nodeId: deps.nodeId, rollupAddress: deps.rollupAddress };
    } catch (error) {
      const { status, body } = signErrorResponse(error);
      return sendError(reply, status, body);
    }
  });

  app.get<{ Params: { address: string }; Querystring: Record<string, unknown> }>('/v1/validators/:address/duties', async (request, reply) => {
    try {
      const principal = await authenticate(request);
      const address = parseValidatorAddress(request.params.address);
      authorize(request, principal, address);
      const range = parseSlotRange(request.query);
      const signer = deps.signer();
      if (!signer) throw new DatabaseUnavailableError(readiness.signingBlockedReason ?? 'not started');
      const duties = await signer.database.listDuties(deps.rollupAddress, address, range.fromSlot, range.toSlot, range.limit);
      return { validatorAddress: address, rollupAddress: deps.rollupAddress, duties: duties.map(dutyJson) };
    } catch (error) {
      const { status, body } = signErrorResponse(error);
      return sendError(reply, status, body);
    }
  });

  app.post<{ Params: { address: string } }>(SIGN_ROUTE, async (request, reply) => {
    const startedAt = performance.now();
    let dutyType = 'unknown';
    let outcome: SignOutcome = 'error';
    try {
      const principal = await authenticate(request);
      const address = parseValidatorAddress(request.params.address);
      authorize(request, principal, address);
      if (!backend.serves(address)) throw new HttpError(404, { error: 'UnknownValidator', message: `this signer holds no key for validator ${address}` });
      dutyType = dutyTypeLabel((request.body as { context?: { dutyType?: unknown } } | undefined)?.context?.dutyType);
      const signRequest = parseSignRequest(address, request.body, deps.rollupAddress, deps.nodeId);
      const signer = deps.signer();
      const blocked = readiness.signingBlockedReason;
      if (!signer || blocked !== undefined) throw new DatabaseUnavailableError(`signing refused: ${blocked ?? 'the protection database is not ready'}`);
      const signature = await signer.signWithProtection(signRequest.validatorAddress, signRequest.messageHash, signRequest.context, async (hash) => {
        try {
          return await backend.signHash(address, hash as `0x${string}`, signRequest.signingMethod, signRequest.typedData);
        } catch (error) {
          throw error instanceof BackendSigningError ? error : new BackendSigningError(`signing failed: ${(error as Error).message}`, { cause: error });
        }
      });
      outcome = 'signed';
      return { signature, validatorAddress: address, dutyType: signRequest.duty.dutyType, slot: signRequest.duty.slot.toString(), nodeId: deps.nodeId };
    } catch (error) {
      const response = signErrorResponse(error);
      outcome = response.outcome;
      if (response.status >= 500) request.log.warn({ err: (error as Error)?.message, status: response.status, dutyType }, 'signing request failed');
      else if (response.outcome === 'slashing_protection') request.log.warn({ dutyType, slot: response.body.slot, signedByNode: response.body.signedByNode }, 'slashing protection refused a signature');
      return sendError(reply, response.status, response.body);
    } finally {
      metrics.signRequests.inc({ duty_type: dutyType, outcome });
      metrics.signRequestDuration.observe({ outcome }, (performance.now() - startedAt) / 1000);
    }
  });

  if (deps.jsonRpcEnabled) {
    app.post('/', async (request, reply) => {
      let principal: Principal;
      try {
        principal = await authenticate(request);
      } catch (error) {
        const { status, body } = signErrorResponse(error);
        return reply.code(status).send({ jsonrpc: '2.0', id: null, error: { code: -32001, message: body.message } });
      }
      const answer = await handleJsonRpc(request.body, { backend, principal, metrics, log: request.log, deny: (reason, message) => deny(request, 403, reason, message) });
      return reply.code(answer.httpStatus).send(answer.body);
    });
  }

  return app;
}

/**
 * One mapping from every error the signer's routes can raise (domain errors of the protection core, request
 * validation, fastify's own parsing and routing errors) to its HTTP answer and metrics outcome. Anything unknown
 * fails closed as a 503: a duty whose record cannot be vouched for gets no signature.
 */
import type { FastifyError } from 'fastify';
import {
  DatabaseUnavailableError,
  DutyAlreadySignedError,
  InvalidDutyInputError,
  SchemaVersionError,
  SignerStoppedError,
  SigningLockLostError,
  SigningTimeoutError,
  SlashingProtectionError,
} from '../protection/index.js';
import type { ErrorBody } from '../wire.js';
import { BackendSigningError } from './backends.js';
import { BODY_LIMIT_BYTES } from './config.js';
import type { SignOutcome } from './metrics.js';
import { InvalidRequestError } from './validation.js';

/** An answer decided by a route or hook (401, 403, 404, ...). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  outcome: SignOutcome;
}

const invalid = (field: string, message: string): ErrorResponse => ({
  status: 400,
  outcome: 'invalid',
  body: { error: 'InvalidRequest', field, message },
});

/** JSON-schema (ajv) failures, turned into the field-naming InvalidRequest body of the semantic checks. */
function schemaErrorResponse(error: FastifyError): ErrorResponse {
  const first = error.validation?.[0];
  if (!first) return invalid('body', `body: ${error.message}`);
  const path = first.instancePath.split('/').filter(Boolean).join('.');
  const params = first.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  if (first.keyword === 'required' && params.missingProperty) {
    const field = path ? `${path}.${params.missingProperty}` : params.missingProperty;
    return invalid(field, `${field}: is required`);
  }
  if (first.keyword === 'additionalProperties' && params.additionalProperty) {
    const field = path ? `${path}.${params.additionalProperty}` : params.additionalProperty;
    return invalid(field, `${field}: unknown field (a misspelt field must not silently become a different duty)`);
  }
  const field = path || (error.validationContext === 'body' ? 'body' : (error.validationContext ?? 'body'));
  const allowed = params.allowedValues ? ` (${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')})` : '';
  return invalid(field, `${field}: ${first.message ?? 'is invalid'}${allowed}`);
}

/** fastify's own errors: body parsing, content type, size, malformed URL. */
function fastifyErrorResponse(error: FastifyError): ErrorResponse | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        outcome: 'invalid',
        body: { error: 'PayloadTooLarge', message: `body: larger than the ${BODY_LIMIT_BYTES}-byte limit` },
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return invalid('content-type', 'content-type: expected application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalid('body', 'body: empty; expected a JSON object');
    case 'FST_ERR_VALIDATION':
      return schemaErrorResponse(error);
    default:
      break;
  }
  if (error.validation) return schemaErrorResponse(error);
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError) return invalid('body', `body: ${error.message}`);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    if (error.statusCode === 413)
      return { status: 413, outcome: 'invalid', body: { error: 'PayloadTooLarge', message: `body: ${error.message}` } };
    return invalid('body', `body: ${error.message}`);
  }
  return undefined;
}

/** A URL fastify could not decode (`%zz`): named as the address when it is a validator route. Never echoes the URL. */
export function badUrlResponse(url: string, problem = 'not a valid URL component (malformed percent-encoding)'): ErrorResponse {
  const field = url.startsWith('/v1/validators/') ? 'address' : 'path';
  return invalid(field, `${field}: ${problem}`);
}

/** Maps an error of any route to its HTTP answer and metrics outcome. */
export function errorResponse(error: unknown): ErrorResponse {
  if (error instanceof InvalidRequestError || error instanceof InvalidDutyInputError) return invalid(error.field, error.message);
  if (error instanceof HttpError) {
    const outcome: SignOutcome =
      error.status === 401 || error.status === 403
        ? 'denied'
        : error.status === 503
          ? 'unavailable'
          : error.status < 500
            ? 'invalid'
            : 'error';
    return { status: error.status, outcome, body: error.body };
  }
  // Checked before DutyAlreadySignedError, its base class (kept so Aztec's client treats it as "another node's duty").
  if ((error as Error | undefined)?.name === 'DutyInProgressError') {
    // Another node still holds the duty after our wait: nothing signed here, and nothing known to be signed yet.
    // A retry (here or at another replica) gets the stored signature once the holder records it.
    const inProgress = error as DutyAlreadySignedError & { holderNodeId?: string };
    return {
      status: 503,
      outcome: 'unavailable',
      body: {
        error: 'Unavailable',
        message: inProgress.message,
        reason: 'DutyInProgress',
        slot: inProgress.slot.toString(),
        dutyType: inProgress.dutyType,
        blockIndexWithinCheckpoint: inProgress.blockIndexWithinCheckpoint,
        heldByNode: inProgress.holderNodeId ?? 'unknown',
      },
    };
  }
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
  if (error instanceof SignerStoppedError)
    return { status: 503, outcome: 'unavailable', body: { error: 'Unavailable', message: error.message, reason: 'ShuttingDown' } };
  if (error instanceof DatabaseUnavailableError || error instanceof SchemaVersionError) {
    return { status: 503, outcome: 'unavailable', body: { error: 'Unavailable', message: error.message, reason: error.name } };
  }
  const framework =
    error !== null && typeof error === 'object' && 'code' in error ? fastifyErrorResponse(error as FastifyError) : undefined;
  if (framework) return framework;
  // A PostgreSQL error (SQLSTATE) or anything else: the duty's record cannot be vouched for, so no signature.
  return {
    status: 503,
    outcome: 'unavailable',
    body: { error: 'Unavailable', message: `signing refused: ${(error as Error)?.message ?? String(error)}`, reason: 'Internal' },
  };
}

/** Kept for callers of the earlier name. */
export const signErrorResponse = errorResponse;

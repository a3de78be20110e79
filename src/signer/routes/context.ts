/** What the route plugins share: dependencies of the server, and the request fields the hooks fill in. */
import type { FastifyBaseLogger } from 'fastify';
import type { ValidatorHASigner } from '../../protection/index.js';
import type { Authenticator, Principal } from '../auth.js';
import type { SigningBackend } from '../backends.js';
import type { LogLevel } from '../config.js';
import type { SignOutcome, SignerMetrics } from '../metrics.js';
import type { ReadinessMonitor } from '../readiness.js';

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
  /** The process logger (src/log.ts) when there is one; else fastify builds a pino logger at logLevel. */
  logger?: FastifyBaseLogger;
  logLevel: LogLevel;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (set by the onRequest hook of authenticated routes). */
    principal?: Principal;
    /** The validator of the URL, validated and authorized (routes with :address). */
    validatorAddress?: string;
    /** Metrics labels of a sign request, filled in as the request progresses. */
    signMetrics?: { dutyType: string; outcome: SignOutcome };
  }
}

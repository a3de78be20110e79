/** What the route plugins share: dependencies of the server, and the request fields the hooks fill in. */
import type { FastifyBaseLogger, FastifyServerFactory } from 'fastify';
import type { ClaimForHash } from '../../protection/claims-lookup.js';
import type { ValidatorHASigner } from '../../protection/index.js';
import type { TypedDataRules } from '../aztec-typed-data.js';
import type { JsonRpcClientEntry } from '../jsonrpc-clients.js';
import type { LiveFile } from '../live-file.js';
import type { PodIdentitySource } from '../pod-identity.js';
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
  /** POST / with bearer-token callers (HA_SIGNER_JSONRPC_ENABLED). */
  jsonRpcEnabled: boolean;
  /** What the protected JSON-RPC needs; required when it is served (POST / or POST /jsonrpc/:secret). */
  jsonRpc?: {
    rules: TypedDataRules;
    claims: (validatorAddress: string, messageHash: string) => Promise<ClaimForHash[]>;
    /** Stock Aztec nodes with URL secrets (HA_SIGNER_JSONRPC_CLIENTS_FILE), re-read live. */
    clients: LiveFile<JsonRpcClientEntry[]> | undefined;
    /** Source-pod identity for `serviceAccount` clients (POST /jsonrpc); undefined when off. */
    podIdentity?: PodIdentitySource | undefined;
  };
  /** The process logger (src/log.ts) when there is one; else fastify builds a pino logger at logLevel. */
  logger?: FastifyBaseLogger;
  logLevel: LogLevel;
  /** HTTPS: the server the signing port listens with (src/signer/tls.ts); default plain HTTP. */
  serverFactory?: FastifyServerFactory;
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

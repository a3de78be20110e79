/**
 * POST /v1/validators/:address/sign: the signing path with slashing protection. By the time the handler runs, the
 * caller is authenticated and allowed this validator (onRequest hook) and the body has the right shape (schema);
 * the semantic checks run here, still before the database is touched.
 */
import type { FastifyPluginAsync } from 'fastify';
import { DatabaseUnavailableError } from '../../protection/index.js';
import { ROUTES, type SignAnswer, type SignRequestBody } from '../../wire.js';
import { BackendSigningError } from '../backends.js';
import { dutyTypeLabel } from '../metrics.js';
import { parseSignRequest } from '../validation.js';
import type { SignerServerDeps } from './context.js';
import { addressParamsSchema, signBodySchema } from './schemas.js';

export const signRoute: FastifyPluginAsync<SignerServerDeps> = async (app, deps) => {
  const { backend, metrics, readiness } = deps;

  // Metrics of every answer of this route, whatever produced it (handler, hook, schema or error handler).
  app.addHook('onRequest', async (request) => {
    request.signMetrics = { dutyType: 'unknown', outcome: 'error' };
  });
  app.addHook('preValidation', async (request) => {
    const body = request.body as { context?: { dutyType?: unknown } } | undefined;
    request.signMetrics!.dutyType = dutyTypeLabel(body?.context?.dutyType);
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = request.signMetrics ?? { dutyType: 'unknown', outcome: 'invalid' };
    metrics.signRequests.inc({ duty_type: labels.dutyType, outcome: labels.outcome });
    metrics.signRequestDuration.observe({ outcome: labels.outcome }, reply.elapsedTime / 1000);
  });

  app.post<{ Params: { address: string }; Body: SignRequestBody }>(
    ROUTES.sign,
    { schema: { params: addressParamsSchema, body: signBodySchema }, config: { validatorRoute: 'sign' } },
    async (request): Promise<SignAnswer> => {
      const address = request.validatorAddress!;
      // A Web3Signer-backed replica cannot sign a bare digest: refuse it here, before the duty is claimed.
      const parsed = parseSignRequest(address, request.body, { typedDataRequiredForDigest: backend.kind === 'web3signer' });
      const signer = deps.signer();
      const blocked = readiness.signingBlockedReason;
      if (!signer || blocked !== undefined)
        throw new DatabaseUnavailableError(`signing refused: ${blocked ?? 'the protection database is not ready'}`);
      const signFn = async (hash: string): Promise<`0x${string}`> => {
        try {
          return await backend.signHash(address, hash as `0x${string}`, parsed.signingMethod, parsed.typedData);
        } catch (error) {
          throw error instanceof BackendSigningError
            ? error
            : new BackendSigningError(`signing failed: ${(error as Error).message}`, { cause: error });
        }
      };
      const signature = await signer.signDuty(parsed.duty, signFn);
      request.signMetrics!.outcome = 'signed';
      return {
        signature,
        validatorAddress: address,
        dutyType: parsed.duty.dutyType,
        slot: parsed.duty.slot.toString(),
        nodeId: deps.nodeId,
      };
    },
  );
};

/** GET /v1/validators and GET /v1/validators/:address/duties (audit reads). Authenticated by the onRequest hook. */
import type { FastifyPluginAsync } from 'fastify';
import { DatabaseUnavailableError, type ValidatorDutyRecord } from '../../protection/index.js';
import { type DutiesAnswer, type DutyJson, ROUTES, type ValidatorsAnswer } from '../../wire.js';
import { parseSlotRange } from '../validation.js';
import type { SignerServerDeps } from './context.js';
import { addressParamsSchema, dutiesQuerySchema } from './schemas.js';

function dutyJson(record: ValidatorDutyRecord): DutyJson {
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

export const validatorRoutes: FastifyPluginAsync<SignerServerDeps> = async (app, deps) => {
  app.get(ROUTES.validators, async (request): Promise<ValidatorsAnswer> => {
    const principal = request.principal!;
    return {
      validators: deps.backend.addresses().filter((address) => principal.allows(address)),
      nodeId: deps.nodeId,
      rollupAddress: deps.rollupAddress,
    };
  });

  app.get<{ Params: { address: string }; Querystring: Record<string, string> }>(
    ROUTES.duties,
    { schema: { params: addressParamsSchema, querystring: dutiesQuerySchema }, config: { validatorRoute: 'audit' } },
    async (request): Promise<DutiesAnswer> => {
      const address = request.validatorAddress!;
      const range = parseSlotRange(request.query);
      const signer = deps.signer();
      if (!signer) throw new DatabaseUnavailableError(deps.readiness.signingBlockedReason ?? 'not started');
      const duties = await signer.database.listDuties(deps.rollupAddress, address, range.fromSlot, range.toSlot, range.limit);
      return { validatorAddress: address, rollupAddress: deps.rollupAddress, duties: duties.map(dutyJson) };
    },
  );
};

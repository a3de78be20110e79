/**
 * JSON schemas for the shape of the API's input (types, required and unknown fields). The semantic checks (hex
 * lengths, integer ranges, duty types, the EIP-712 hash) stay in validation.ts, whose messages name the field and
 * the fix; schema failures are turned into the same InvalidRequest body by the error handler.
 */
const integerLike = { type: ['string', 'integer'] } as const;

export const signBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['messageHash', 'context'],
  properties: {
    messageHash: { type: 'string' },
    signingMethod: { type: 'string', enum: ['personal', 'digest'] },
    context: {
      type: 'object',
      additionalProperties: false,
      required: ['dutyType', 'slot'],
      properties: {
        dutyType: { type: 'string' },
        slot: integerLike,
        blockNumber: integerLike,
        checkpointNumber: integerLike,
        blockIndexWithinCheckpoint: integerLike,
      },
    },
    typedData: { type: ['object', 'string'] },
  },
} as const;

export const addressParamsSchema = {
  type: 'object',
  required: ['address'],
  properties: { address: { type: 'string' } },
} as const;

export const dutiesQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    fromSlot: { type: 'string' },
    toSlot: { type: 'string' },
    limit: { type: 'string' },
  },
} as const;

/** fastify's ajv, strict: no type coercion, and unknown fields refused (fastify's default would silently drop them). */
export const AJV_OPTIONS = {
  customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, allowUnionTypes: true },
} as const;

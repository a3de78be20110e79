/** fast-check generators shared by the fuzz targets: valid values mixed with every kind of wrong one. */
import fc from 'fast-check';

const HEX = '0123456789abcdef'.split('');
export const hexDigits = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...HEX), minLength: min, maxLength: max });

export const validHash = hexDigits(64, 64).map((h) => `0x${h}`);
export const randomAddress = hexDigits(40, 40).map((h) => `0x${h}`);

/** Anything JSON can carry, plus strings that look almost right. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '0x', '-1', '1e3', '0x10', ' 5', '5 ', '1.5', 'NaN', 'Infinity', 'null', 'true', '٣', '１'),
  fc.double(),
  fc.integer(),
);

export const messageHashArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: validHash },
  { weight: 1, arbitrary: validHash.map((h) => h.toUpperCase()) },
  { weight: 1, arbitrary: hexDigits(0, 70).map((h) => `0x${h}`) },
  { weight: 1, arbitrary: hexDigits(64, 64) },
  { weight: 2, arbitrary: junk },
);

export const PROTECTED_TYPES = [
  'BLOCK_PROPOSAL',
  'CHECKPOINT_PROPOSAL',
  'ATTESTATION',
  'ATTESTATIONS_AND_SIGNERS',
  'GOVERNANCE_VOTE',
  'SLASHING_VOTE',
];
export const dutyTypeArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...PROTECTED_TYPES) },
  { weight: 1, arbitrary: fc.constantFrom('AUTH_REQUEST', 'TXS', 'attestation', 'ATTESTATION ', '') },
  { weight: 1, arbitrary: junk },
);

export const numberLikeArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 1_000_000_000 }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 70n), max: -1n }).map(String) },
  { weight: 2, arbitrary: junk },
);

export const blockIndexArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -3, max: 8 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: junk },
);

/** An object with some of the given keys left out and perhaps an unknown one added. */
export function partialWithExtra(fields: Record<string, fc.Arbitrary<unknown>>, required: string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .tuple(
      fc.record(fields),
      fc.subarray(Object.keys(fields)),
      fc.boolean(),
      fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })), { freq: 8 }),
    )
    .map(([record, drop, keepRequired, extra]) => {
      const result: Record<string, unknown> = { ...record };
      for (const key of drop) if (!(keepRequired && required.includes(key))) delete result[key];
      for (const key of Object.keys(result)) if (result[key] === undefined) delete result[key];
      if (extra) result[extra[0]] = extra[1];
      return result;
    });
}

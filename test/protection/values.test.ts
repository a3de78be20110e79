import { describe, expect, it } from 'vitest';
import { configFromEnv, resolveSignerConfig, ConfigError, InvalidDutyInputError, DutyType } from '../../src/protection/index.js';
import { claimParams, dutyFromContext, normalizeAddress, parseDuty, toUint64 } from '../../src/protection/values.js';

const ROLLUP = `0x${'ab'.repeat(20)}`;
const V = `0x${'CD'.repeat(20)}`;
const H = `0x${'11'.repeat(32)}`;

describe('duty input validation', () => {
  it('normalizes hex strings and toString() objects to lower case', () => {
    expect(normalizeAddress('a', V)).toBe(V.toLowerCase());
    expect(normalizeAddress('a', { toString: () => V })).toBe(V.toLowerCase());
  });

  it.each([
    ['no prefix', 'cd'.repeat(20)],
    ['too short', `0x${'cd'.repeat(19)}`],
    ['too long', `0x${'cd'.repeat(21)}`],
    ['not hex', `0x${'zz'.repeat(20)}`],
    ['plain object', {}],
    ['null', null],
  ])('rejects a validator address that is %s, naming the field', (_, value) => {
    expect(() => dutyFromContext(ROLLUP, value as string, H, { dutyType: 'ATTESTATION', slot: 1n }, 'n')).toThrow(/^validatorAddress: /);
  });

  it('maps the context as the package does: block index only for BLOCK_PROPOSAL, votes store block 0', () => {
    const proposal = dutyFromContext(
      ROLLUP,
      V,
      H,
      { dutyType: 'BLOCK_PROPOSAL', slot: 5, blockNumber: 9n, blockIndexWithinCheckpoint: 2, checkpointNumber: 3 },
      'n',
    );
    expect(proposal).toMatchObject({
      slot: 5n,
      blockNumber: 9n,
      blockIndexWithinCheckpoint: 2,
      checkpointNumber: 3n,
      dutyType: DutyType.BLOCK_PROPOSAL,
    });
    const attestation = dutyFromContext(
      ROLLUP,
      V,
      H,
      { dutyType: 'ATTESTATION', slot: 5n, blockNumber: 9n, blockIndexWithinCheckpoint: 4 },
      'n',
    );
    expect(attestation.blockIndexWithinCheckpoint).toBe(-1);
    expect(attestation.checkpointNumber).toBe(0n);
    const vote = dutyFromContext(ROLLUP, V, H, { dutyType: 'GOVERNANCE_VOTE', slot: 5n, blockNumber: 9n }, 'n');
    expect(vote.blockNumber).toBe(0n);
  });

  it.each([
    [{ dutyType: 'BLOCK_PROPOSAL', slot: 1n }, 'context.blockIndexWithinCheckpoint'],
    [{ dutyType: 'BLOCK_PROPOSAL', slot: 1n, blockIndexWithinCheckpoint: -1 }, 'context.blockIndexWithinCheckpoint'],
    [{ dutyType: 'BLOCK_PROPOSAL', slot: 1n, blockIndexWithinCheckpoint: 1.5 }, 'context.blockIndexWithinCheckpoint'],
    [{ dutyType: 'ATTESTATION', slot: -1 }, 'context.slot'],
    [{ dutyType: 'ATTESTATION', slot: 1.5 }, 'context.slot'],
    [{ dutyType: 'ATTESTATION', slot: 2n ** 63n }, 'context.slot'],
    [{ dutyType: 'NOT_A_DUTY', slot: 1n }, 'context.dutyType'],
    [{ dutyType: 'AUTH_REQUEST', slot: 1n }, 'context.dutyType'],
  ])('rejects bad context #%# naming the field', (context, field) => {
    expect(() => dutyFromContext(ROLLUP, V, H, context as never, 'n')).toThrow(new RegExp(`^${field.replace('.', '\\.')}: `));
    expect(() => dutyFromContext(ROLLUP, V, H, context as never, 'n')).toThrow(InvalidDutyInputError);
  });

  it("parseDuty validates once into a ValidatedDuty (no rollup or node: those are the signer's); checkpoint only when given", () => {
    const duty = parseDuty({ toString: () => V }, H.toUpperCase().replace('0X', '0x'), {
      dutyType: 'ATTESTATION',
      slot: 7,
      blockNumber: 8,
    });
    expect(duty).toEqual({
      validatorAddress: V.toLowerCase(),
      messageHash: H,
      dutyType: DutyType.ATTESTATION,
      slot: 7n,
      blockNumber: 8n,
      blockIndexWithinCheckpoint: -1,
    });
    expect(parseDuty(V, H, { dutyType: 'ATTESTATION', slot: 7n, checkpointNumber: '12' as never }).checkpointNumber).toBe(12n);
    expect(claimParams(duty, ROLLUP, 'node-1')).toEqual({ ...duty, rollupAddress: ROLLUP, nodeId: 'node-1', checkpointNumber: 0n });
    expect(() => parseDuty(V, H, { dutyType: 'AUTH_REQUEST', slot: 1n })).toThrow(
      /^context\.dutyType: AUTH_REQUEST is not a protected duty type/,
    );
    expect(() => parseDuty(V, '0x12', { dutyType: 'ATTESTATION', slot: 1n })).toThrow(/^messageHash: /);
    expect(() => parseDuty(V, H, null as never)).toThrow(/^context: /);
  });

  it('accepts the largest BIGINT and decimal strings', () => {
    expect(toUint64('s', '9223372036854775807')).toBe(2n ** 63n - 1n);
    expect(() => toUint64('s', '9223372036854775808')).toThrow(/at most/);
  });
});

describe('configuration', () => {
  it('takes the package defaults', () => {
    const config = configFromEnv({});
    expect(config).toMatchObject({
      pollingIntervalMs: 100,
      signingTimeoutMs: 3000,
      maxStuckDutiesAgeMs: 144000,
      poolMaxCount: 10,
      poolMinCount: 0,
      poolIdleTimeoutMs: 10000,
      poolConnectionTimeoutMs: 0,
      haSigningEnabled: false,
    });
    expect(config.cleanupOldDutiesAfterHours).toBeUndefined();
  });

  it('reads every VALIDATOR_HA_* variable', () => {
    const config = configFromEnv({
      VALIDATOR_HA_DATABASE_URL: 'postgresql://u:p@db:5432/x',
      VALIDATOR_HA_SIGNING_ENABLED: 'true',
      VALIDATOR_HA_NODE_ID: 'pod-1',
      VALIDATOR_HA_POLLING_INTERVAL_MS: '50',
      VALIDATOR_HA_SIGNING_TIMEOUT_MS: '2000',
      VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: '60000',
      VALIDATOR_HA_POOL_MAX: '20',
      VALIDATOR_HA_POOL_MIN: '2',
      VALIDATOR_HA_POOL_IDLE_TIMEOUT_MS: '500',
      VALIDATOR_HA_POOL_CONNECTION_TIMEOUT_MS: '1000',
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP.toUpperCase().replace('0X', '0x'),
      VALIDATOR_HA_OLD_DUTIES_MAX_AGE_H: '24',
      VALIDATOR_SIGNING_OPERATION_TIMEOUT_MS: '10000',
    });
    expect(config).toMatchObject({
      nodeId: 'pod-1',
      pollingIntervalMs: 50,
      signingTimeoutMs: 2000,
      maxStuckDutiesAgeMs: 60000,
      poolMaxCount: 20,
      poolMinCount: 2,
      rollupAddress: ROLLUP,
      cleanupOldDutiesAfterHours: 24,
      signingOperationTimeoutMs: 10000,
      haSigningEnabled: true,
    });
  });

  it.each([
    ['VALIDATOR_HA_POLLING_INTERVAL_MS', 'fast'],
    ['VALIDATOR_HA_POLLING_INTERVAL_MS', '0'],
    ['VALIDATOR_HA_SIGNING_TIMEOUT_MS', '-5'],
    ['VALIDATOR_HA_POOL_MAX', '1.5'],
    ['VALIDATOR_HA_SIGNING_ENABLED', 'maybe'],
    ['VALIDATOR_HA_DATABASE_URL', 'mysql://x'],
    ['VALIDATOR_HA_DATABASE_URL', 'not a url'],
    ['VALIDATOR_HA_ROLLUP_ADDRESS', '0x1234'],
    ['VALIDATOR_HA_OLD_DUTIES_MAX_AGE_H', '0'],
  ])('names %s when it is %j', (name, value) => {
    expect(() => configFromEnv({ [name]: value })).toThrow(ConfigError);
    expect(() => configFromEnv({ [name]: value })).toThrow(new RegExp(`^${name}: `));
  });

  it('refuses a min pool size above the max', () => {
    expect(() => configFromEnv({ VALIDATOR_HA_POOL_MIN: '5', VALIDATOR_HA_POOL_MAX: '2' })).toThrow(/VALIDATOR_HA_POOL_MIN/);
  });

  it('clamps the signing-operation timeout to half the lease and takes l1Contracts.rollupAddress', () => {
    const resolved = resolveSignerConfig({
      nodeId: 'n',
      pollingIntervalMs: 1,
      signingTimeoutMs: 1,
      maxStuckDutiesAgeMs: 10_000,
      signingOperationTimeoutMs: 30_000,
      l1Contracts: { rollupAddress: { toString: () => ROLLUP } },
    });
    expect(resolved.signingOperationTimeoutMs).toBe(5_000);
    expect(resolved.rollupAddress).toBe(ROLLUP);
  });

  it('requires a node id and a rollup', () => {
    expect(() => resolveSignerConfig({ nodeId: '', pollingIntervalMs: 1, signingTimeoutMs: 1, rollupAddress: ROLLUP })).toThrow(
      /VALIDATOR_HA_NODE_ID/,
    );
    expect(() => resolveSignerConfig({ nodeId: 'n', pollingIntervalMs: 1, signingTimeoutMs: 1 })).toThrow(/VALIDATOR_HA_ROLLUP_ADDRESS/);
  });
});

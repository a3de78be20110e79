/** spec.database.requireSynchronousReplication reaches the signer pods as the variable `serve` reads. */
import { describe, expect, it } from 'vitest';
import { SAFETY_ENV } from '../../../src/contract.js';
import { signerEnv } from '../../../src/operator/desired/deployment.js';
import { safetyFromEnv } from '../../../src/signer/safety.js';
import { vhs } from './fixtures.js';

describe('spec.database.requireSynchronousReplication', () => {
  const envOf = (requireSynchronousReplication?: boolean) =>
    Object.fromEntries(
      signerEnv(
        vhs({
          database: {
            secretRef: { name: 'db' },
            ...(requireSynchronousReplication !== undefined ? { requireSynchronousReplication } : {}),
          },
        }),
      ).map((e) => [e.name, e.value]),
    );

  it('sets HA_SIGNER_REQUIRE_SYNCHRONOUS_REPLICATION=true only when true, and serve accepts it', () => {
    const on = envOf(true);
    expect(on[SAFETY_ENV.requireSynchronousReplication]).toBe('true');
    expect(safetyFromEnv(on, '').requireSynchronousReplication).toBe(true);
    expect(envOf(false)[SAFETY_ENV.requireSynchronousReplication]).toBeUndefined();
    expect(envOf()[SAFETY_ENV.requireSynchronousReplication]).toBeUndefined();
    expect(safetyFromEnv(envOf(), '').requireSynchronousReplication).toBe(false);
  });

  it('serve refuses malformed safety settings naming the variable', () => {
    expect(() => safetyFromEnv({ [SAFETY_ENV.requireSynchronousReplication]: 'maybe' }, '')).toThrow(
      SAFETY_ENV.requireSynchronousReplication,
    );
    expect(() => safetyFromEnv({ [SAFETY_ENV.highWaterMarksFile]: 'relative.json' }, '')).toThrow(/absolute path/);
    expect(() => safetyFromEnv({ [SAFETY_ENV.highWaterMarksConfigMap]: 'no-namespace' }, '')).toThrow(/<namespace>\/<name>/);
    expect(safetyFromEnv({ [SAFETY_ENV.highWaterMarksConfigMap]: 'ns/vhs-marks' }, '').highWaterMarksConfigMap).toEqual({
      namespace: 'ns',
      name: 'vhs-marks',
    });
  });
});

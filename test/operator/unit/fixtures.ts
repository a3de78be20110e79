import type { ValidatorHASignerResource, ValidatorHASignerSpec } from '../../../src/operator/types.js';

export const ADDR = `0x${'Ab'.repeat(20)}`;

export function vhs(
  spec: Partial<ValidatorHASignerSpec> = {},
  meta: Partial<ValidatorHASignerResource['metadata']> = {},
): ValidatorHASignerResource {
  return {
    apiVersion: 'ha-signer.dev/v1alpha1',
    kind: 'ValidatorHASigner',
    metadata: { name: 'sig', namespace: 'val', uid: 'uid-1', generation: 3, creationTimestamp: new Date('2026-01-01T00:00:00Z'), ...meta },
    spec: {
      rollup: { address: ADDR, version: 'v1' },
      database: { secretRef: { name: 'db', key: 'uri' } },
      keys: { secretRef: { name: 'keys' } },
      replicas: 2,
      clients: { disableAuthentication: false, tokens: { secretRef: { name: 'tokens', key: 'tokens.json' } } },
      ...spec,
    },
  };
}

export const CTX = { defaultImage: 'ghcr.io/ha-signer/ha-signer:1.2.3' };

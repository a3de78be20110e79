import { describe, expect, it } from 'vitest';
import { buildClaim, conflictMessage, decideClaim, holderOf, isOlder, readClaim } from '../../../src/operator/desired/claim.js';
import { ADDR, vhs } from './fixtures.js';

const older = holderOf(vhs({}, { uid: 'old', name: 'a', creationTimestamp: new Date('2026-01-01T00:00:00Z') }));
const newer = (rollupVersion = 'v2', uid = 'new') => holderOf(vhs({ rollup: { address: ADDR, version: rollupVersion } }, { uid, name: 'b', creationTimestamp: new Date('2026-01-02T00:00:00Z') }));

describe('database claims', () => {
  it('round-trips through the ConfigMap', () => {
    const cm = buildClaim(vhs(), 'h:5432/db', 'ops');
    expect(cm.metadata!.namespace).toBe('ops');
    expect(readClaim(cm)).toEqual({ databaseIdentity: 'h:5432/db', holder: holderOf(vhs()) });
    expect(JSON.stringify(cm)).not.toContain('password');
  });

  it('orders by creation time, then namespace/name', () => {
    expect(isOlder(older, newer())).toBe(true);
    expect(isOlder(newer(), older)).toBe(false);
    const t = '2026-01-01T00:00:00.000Z';
    expect(isOlder({ ...older, namespace: 'a', name: 'z', creationTimestamp: t }, { ...older, namespace: 'b', name: 'a', creationTimestamp: t })).toBe(true);
  });

  it('the newer resource for another rollup version loses with a message naming the holder', () => {
    const d = decideClaim(newer(), older, true);
    expect(d).toEqual({ kind: 'conflict', holder: older });
    expect(conflictMessage('h:5432/db', older)).toContain('ValidatorHASigner val/a');
  });

  it('the older resource takes the claim over; the same rollup shares; a gone holder is stale; own claim is mine', () => {
    expect(decideClaim(older, newer(), true)).toMatchObject({ kind: 'takeover', why: 'older' });
    expect(decideClaim(newer('v1'), older, true)).toMatchObject({ kind: 'shared' });
    expect(decideClaim(newer(), older, false)).toMatchObject({ kind: 'takeover', why: 'stale' });
    expect(decideClaim(older, older, true)).toEqual({ kind: 'mine' });
  });

  it('another rollup address counts as another rollup', () => {
    const other = { ...newer('v1'), rollupAddress: `0x${'cd'.repeat(20)}` };
    expect(decideClaim(other, older, true).kind).toBe('conflict');
  });
});

import { describe, expect, it } from 'vitest';
import {
  buildOwnershipRecord,
  decideOwnership,
  isOlder,
  ownerOf,
  ownershipConflictMessage,
  readOwnershipRecord,
} from '../../../src/operator/desired/ownership.js';
import { ADDR, vhs } from './fixtures.js';

const older = ownerOf(vhs({}, { uid: 'old', name: 'a', creationTimestamp: new Date('2026-01-01T00:00:00Z') }));
const newer = (rollupVersion = 'v2', uid = 'new') =>
  ownerOf(
    vhs({ rollup: { address: ADDR, version: rollupVersion } }, { uid, name: 'b', creationTimestamp: new Date('2026-01-02T00:00:00Z') }),
  );

describe('database ownership records', () => {
  it('round-trips through the ConfigMap', () => {
    const cm = buildOwnershipRecord(vhs(), 'h:5432/db', 'ops');
    expect(cm.metadata!.namespace).toBe('ops');
    expect(readOwnershipRecord(cm)).toEqual({ databaseIdentity: 'h:5432/db', owner: ownerOf(vhs()) });
    expect(JSON.stringify(cm)).not.toContain('password');
  });

  it('orders by creation time, then namespace/name', () => {
    expect(isOlder(older, newer())).toBe(true);
    expect(isOlder(newer(), older)).toBe(false);
    const t = '2026-01-01T00:00:00.000Z';
    expect(
      isOlder({ ...older, namespace: 'a', name: 'z', creationTimestamp: t }, { ...older, namespace: 'b', name: 'a', creationTimestamp: t }),
    ).toBe(true);
  });

  it('the newer resource for another rollup version loses with a message naming the owner, never suggesting a rebind', () => {
    const d = decideOwnership(newer(), older, true);
    expect(d).toEqual({ kind: 'conflict', owner: older });
    expect(ownershipConflictMessage('h:5432/db', older)).toContain('ValidatorHASigner val/a');
    expect(ownershipConflictMessage('h:5432/db', older)).not.toMatch(/rebind/i);
  });

  it('the older resource takes the ownership over; the same rollup shares; a gone holder is stale; own record is mine', () => {
    expect(decideOwnership(older, newer(), true)).toMatchObject({ kind: 'takeover', why: 'older' });
    expect(decideOwnership(newer('v1'), older, true)).toMatchObject({ kind: 'shared' });
    expect(decideOwnership(newer(), older, false)).toMatchObject({ kind: 'takeover', why: 'stale' });
    expect(decideOwnership(older, older, true)).toEqual({ kind: 'mine' });
  });

  it('another rollup address counts as another rollup', () => {
    const other = { ...newer('v1'), rollupAddress: `0x${'cd'.repeat(20)}` };
    expect(decideOwnership(other, older, true).kind).toBe('conflict');
  });
});

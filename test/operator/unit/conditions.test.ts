import { describe, expect, it } from 'vitest';
import { setCondition, transitions } from '../../../src/operator/desired/conditions.js';
import { schemaVersionFromMessage } from '../../../src/operator/reconcile/index.js';

describe('conditions', () => {
  const t1 = new Date('2026-01-01T00:00:00Z');
  const t2 = new Date('2026-01-01T00:01:00Z');
  it('keeps lastTransitionTime while the status holds, moves it on a flip, records observedGeneration', () => {
    let c = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Migrating', message: 'm' }, 1, t1);
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'DeploymentUnavailable', message: 'n' }, 2, t2);
    expect(c).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'DeploymentUnavailable',
        message: 'n',
        observedGeneration: 2,
        lastTransitionTime: t1.toISOString(),
      },
    ]);
    c = setCondition(c, { type: 'Ready', status: 'True', reason: 'Ready', message: 'ok' }, 2, t2);
    expect(c[0]!.lastTransitionTime).toBe(t2.toISOString());
  });

  it('orders DatabaseClaimed, Migrated, Available, Ready', () => {
    let c = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ready', message: '' }, 1, t1);
    c = setCondition(c, { type: 'DatabaseClaimed', status: 'True', reason: 'Claimed', message: '' }, 1, t1);
    c = setCondition(c, { type: 'Migrated', status: 'True', reason: 'Migrated', message: '' }, 1, t1);
    expect(c.map((x) => x.type)).toEqual(['DatabaseClaimed', 'Migrated', 'Ready']);
  });

  it('reports transitions of status or reason only', () => {
    const before = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Migrating', message: 'x' }, 1, t1);
    expect(
      transitions(before, setCondition(before, { type: 'Ready', status: 'False', reason: 'Migrating', message: 'changed text' }, 1, t2)),
    ).toEqual([]);
    expect(
      transitions(before, setCondition(before, { type: 'Ready', status: 'False', reason: 'MigrationFailed', message: 'x' }, 1, t2)),
    ).toHaveLength(1);
  });

  it('reads a schema version from the migrate Job termination message', () => {
    expect(schemaVersionFromMessage('{"msg":"migrate up done","schemaVersion":"2"}')).toBe('2');
    expect(schemaVersionFromMessage('schemaVersion=42')).toBe('42');
    expect(schemaVersionFromMessage('nothing')).toBeUndefined();
    expect(schemaVersionFromMessage(undefined)).toBeUndefined();
  });
});

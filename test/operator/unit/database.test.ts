import { describe, expect, it } from 'vitest';
import { DatabaseUriError, parseDatabaseAddress } from '../../../src/operator/desired/database.js';

describe('database address', () => {
  it.each([
    ['postgresql://user:secret@db.example:5433/signer', 'db.example:5433/signer'],
    ['postgres://user:secret@DB.Example/signer?sslmode=require', 'db.example:5432/signer'],
    ['postgresql://app:pw@cluster-rw.ns.svc:5432/app', 'cluster-rw.ns.svc:5432/app'],
    ['postgresql://app@[::1]:6000/x', '[::1]:6000/x'],
    ['postgresql://u:p@h2:5432,h1:5433/db', 'h1:5433,h2:5432/db'],
    ['postgresql://u:p@h/%64b', 'h:5432/db'],
    ['postgresql://alice:p@h:1', 'h:1/alice'],
    ['postgresql:///db?host=/var/run/postgresql', '/var/run/postgresql:5432/db'],
  ])('%s → %s', (uri, identity) => {
    const id = parseDatabaseAddress(uri);
    expect(id.address).toBe(identity);
    expect(id.address).not.toContain('secret');
  });

  it.each([
    ['mysql://u:p@h/db', 'expected a PostgreSQL URI'],
    ['not a uri', 'expected a PostgreSQL URI'],
    ['postgresql://u:p@h:99999/db', 'port "99999"'],
    ['postgresql://u:p@h:x/db', 'port "x"'],
    ['postgresql:///db', 'names no host'],
    ['postgresql://h:5432', 'names no database'],
  ])('rejects %s', (uri, message) => {
    expect(() => parseDatabaseAddress(uri)).toThrow(DatabaseUriError);
    expect(() => parseDatabaseAddress(uri)).toThrow(message);
  });
});

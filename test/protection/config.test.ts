/** Database URL validation: what libpq and node-postgres accept passes unchanged; the rest is refused by name. */
import fc from 'fast-check';
import { parse } from 'pg-connection-string';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/protection/errors.js';
import { parseDatabaseUrl } from '../../src/protection/config.js';

const SETTING = 'VALIDATOR_HA_DATABASE_URL';

function refusal(raw: string): string {
  try {
    parseDatabaseUrl(SETTING, raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${raw}`);
}

describe('parseDatabaseUrl', () => {
  it.each([
    'postgresql://user:secret@db.example:5432/ha_signer',
    'postgres://user:secret@db.example/ha_signer',
    'POSTGRESQL://user@db.example/ha_signer',
    'postgresql://user:secret@db.example:5432/ha_signer?sslmode=verify-full&application_name=ha-signer&connect_timeout=10',
    'postgresql://user@[2001:db8::1]:5432/ha_signer?sslmode=require',
    'postgresql://user@localhost/ha_signer?sslmode=no-verify',
    'postgresql:///ha_signer?host=/var/run/postgresql',
    'postgresql://%2Fvar%2Frun%2Fpostgresql/ha_signer',
    'postgresql://user:p%40ss%2Fw%3Ard@db.example/ha_signer',
    'socket:/var/run/postgresql?db=ha_signer',
    '  postgresql://db.example/ha_signer\n',
  ])('accepts %s', (raw) => {
    expect(parseDatabaseUrl(SETTING, raw)).toBe(raw.trim());
  });

  it.each([
    ['mysql://u:p@h/db', /expected a postgresql:\/\/ URL, got scheme mysql:/],
    ['host=db.example dbname=ha_signer user=u', /keyword=value strings are not understood by node-postgres/],
    ['db.example:5432/ha_signer', /expected a postgresql:\/\/ URL, got scheme db\.example:/],
    ['not a url', /expected a PostgreSQL URL such as postgresql:\/\//],
    ['', /expected a PostgreSQL URL/],
    ['postgresql:///ha_signer', /names no host.*\?host=/],
    ['postgresql://h1:5432,h2:5432/ha_signer', /several hosts/],
    ['postgresql://db.example:99999/ha_signer', /not a valid URL/],
    ['postgresql://db.example/ha_signer?port=abc', /port: expected a number from 1 to 65535/],
    ['postgresql://db.example/ha_signer?sslmode=maybe', /sslmode: expected one of disable, allow, prefer, require, verify-ca, verify-full/],
    [
      'postgresql://db.example/ha_signer?sslmode=require&sslrootcert=/nonexistent/ca.pem',
      /certificate file it names cannot be read \(ENOENT\)/,
    ],
  ])('refuses %s', (raw, message) => {
    const text = refusal(raw);
    expect(text).toMatch(new RegExp(`^${SETTING}: `));
    expect(text).toMatch(message);
  });

  it('never echoes a password', () => {
    expect(refusal('postgresql://u:hunter2@h1,h2/db')).not.toContain('hunter2');
    expect(refusal('postgresql://u:hunter2@db.example/db?sslmode=bogus')).not.toContain('hunter2');
    expect(refusal('mysql://u:hunter2@db.example/db')).not.toContain('hunter2');
  });

  it('accepts any URL built from encoded parts, and pg reads back the same parts', () => {
    const part = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' });
    const host = fc.domain();
    fc.assert(
      fc.property(part, part, host, fc.integer({ min: 1, max: 65535 }), part, (user, password, hostname, port, database) => {
        const url = `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostname}:${port}/${encodeURIComponent(database)}`;
        expect(parseDatabaseUrl(SETTING, url)).toBe(url);
        const read = parse(url);
        expect([read.user, read.password, read.host, read.port]).toEqual([user, password, hostname, String(port)]);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses every scheme other than postgres, postgresql and socket', () => {
    const scheme = fc.stringMatching(/^[a-z][a-z0-9+.-]{0,10}$/).filter((s) => !['postgres', 'postgresql', 'socket'].includes(s));
    fc.assert(
      fc.property(scheme, (s) => {
        expect(refusal(`${s}://u:p@db.example/db`)).toMatch(/expected a postgresql:\/\/ URL, got scheme/);
      }),
      { numRuns: 200 },
    );
  });
});

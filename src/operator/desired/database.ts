/**
 * A database's address from a PostgreSQL connection URI: `host:port/dbname`, no credentials. Pure: the operator never
 * connects to the database. An address is a spelling, not an identity (localhost and 127.0.0.1 are one server): the
 * identity comes from the database itself, reported by the migration Job.
 */

export class DatabaseUriError extends Error {}

export interface DatabaseAddress {
  /** `host:port/dbname` (hosts lower-cased and sorted when the URI lists several). */
  address: string;
  hosts: { host: string; port: number }[];
  database: string;
}

/**
 * Parses `postgres://` / `postgresql://` URIs as libpq does: optional user:password@, one or more host[:port]
 * separated by commas ([v6] literals allowed), /dbname, and ?host= / ?port= / ?dbname= parameters. Default port
 * 5432; default database the user name.
 */
export function parseDatabaseAddress(uri: string): DatabaseAddress {
  const raw = uri.trim();
  const m = /^(postgres(?:ql)?):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i.exec(raw);
  if (!m) throw new DatabaseUriError('expected a PostgreSQL URI such as postgresql://user:password@host:5432/dbname');
  const authority = m[2] ?? '';
  const path = m[3] ?? '';
  const params = new URLSearchParams((m[4] ?? '').slice(1));
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostPart = at >= 0 ? authority.slice(at + 1) : authority;
  const user = safeDecode(userinfo.split(':')[0] ?? '');

  const defaultPort = params.get('port') ? parsePort(params.get('port')!) : 5432;
  let hosts: { host: string; port: number }[] = [];
  if (hostPart !== '') {
    for (const h of hostPart.split(',')) {
      const hm = /^(\[[^\]]+\]|[^:]*)(?::(.*))?$/.exec(h);
      if (!hm || hm[1] === '') throw new DatabaseUriError(`host ${JSON.stringify(h)} is not host[:port]`);
      hosts.push({ host: safeDecode(hm[1]!).toLowerCase(), port: hm[2] !== undefined && hm[2] !== '' ? parsePort(hm[2]) : defaultPort });
    }
  }
  const hostParam = params.get('host');
  if (hosts.length === 0 && hostParam) {
    const ports = (params.get('port') ?? '').split(',');
    hosts = hostParam.split(',').map((h, i) => ({ host: h.toLowerCase(), port: ports[i] ? parsePort(ports[i]!) : 5432 }));
  }
  if (hosts.length === 0) throw new DatabaseUriError('the URI names no host: expected postgresql://user:password@host:5432/dbname');
  const database = safeDecode(path.replace(/^\//, '')) || params.get('dbname') || user;
  if (!database) throw new DatabaseUriError('the URI names no database: add /dbname (postgresql://user:password@host:5432/dbname)');
  const sorted = [...hosts].sort((a, b) => `${a.host}:${a.port}`.localeCompare(`${b.host}:${b.port}`));
  return { address: `${sorted.map((h) => `${h.host}:${h.port}`).join(',')}/${database}`, hosts: sorted, database };
}

function parsePort(p: string): number {
  if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535)
    throw new DatabaseUriError(`port ${JSON.stringify(p)} is not a number from 1 to 65535`);
  return Number(p);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new DatabaseUriError('the URI has an invalid %-escape');
  }
}

/** The identity the migration Job reads from the server (`ha-signer migrate up` reports it in its termination message). */
export interface ReportedDatabaseIdentity {
  systemIdentifier: string;
  database: string;
  oid: string;
}

/** What the migrate Job's container reported in its termination message (its last JSON line). */
export interface MigrateReport {
  databaseIdentity?: ReportedDatabaseIdentity;
  schemaVersion?: string;
  error?: string;
}

export function parseMigrateReport(message: string | undefined): MigrateReport | undefined {
  if (!message) return undefined;
  for (const line of message.trim().split('\n').reverse()) {
    let j: unknown;
    try {
      j = JSON.parse(line);
    } catch {
      continue;
    }
    if (!j || typeof j !== 'object') continue;
    const r = j as { databaseIdentity?: Partial<ReportedDatabaseIdentity>; schemaVersion?: unknown; error?: unknown };
    const id = r.databaseIdentity;
    const valid = id && /^\d+$/.test(String(id.systemIdentifier)) && /^\d+$/.test(String(id.oid)) && typeof id.database === 'string';
    return {
      ...(valid
        ? { databaseIdentity: { systemIdentifier: String(id.systemIdentifier), database: id.database!, oid: String(id.oid) } }
        : {}),
      ...(typeof r.schemaVersion === 'string' ? { schemaVersion: r.schemaVersion } : {}),
      ...(typeof r.error === 'string' ? { error: r.error } : {}),
    };
  }
  return undefined;
}

/** The ownership key: system identifier and database oid (a rename keeps it; no spelling of the URI changes it). */
export function identityKey(id: ReportedDatabaseIdentity): string {
  return `${id.systemIdentifier}/${id.oid}`;
}

/** Key for an image that does not report an identity: the URI's address (weaker: spellings differ). */
export function addressKey(address: string): string {
  return `address/${address}`;
}

export function describeIdentity(id: ReportedDatabaseIdentity): string {
  return `${id.database} (oid ${id.oid}, PostgreSQL system ${id.systemIdentifier})`;
}

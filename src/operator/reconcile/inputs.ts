/**
 * Phase 1, inputs: what the schema cannot check. The referenced Secrets exist and hold the keys the pods read, and
 * the database URI parses (pure: no connection). Every failure names the Secret, the spec field and the fix, and
 * sets every condition (from DatabaseClaimed on: nothing proceeds without its inputs).
 */
import type * as k8s from '@kubernetes/client-node';
import { DatabaseUriError, hash, parseDatabaseAddress, referencedSecrets, secretValue } from '../desired/index.js';
import type { ValidatorHASignerResource } from '../types.js';
import type { ReconcilerCaches, SecretsApi } from './api.js';
import type { StatusRecorder } from './status.js';

export interface Inputs {
  /** Every referenced Secret by name (undefined: missing). */
  secrets: Map<string, k8s.V1Secret | undefined>;
  /** `host:port/dbname` from the URI: names the migration Job, no credentials. Not the database's identity. */
  databaseAddress: string;
  /** Address plus a digest of the whole URI (credentials included, never the credentials themselves): names the Job. */
  connectionKey: string;
}

/** The cache may lag behind a Secret created just before the resource: a miss is confirmed with a read. */
export function secretLookup(caches: Pick<ReconcilerCaches, 'secrets'>, api: SecretsApi) {
  return async (namespace: string, name: string) => caches.secrets.get(namespace, name) ?? (await api.readSecret(namespace, name));
}

export async function readInputs(
  vhs: ValidatorHASignerResource,
  lookup: (namespace: string, name: string) => Promise<k8s.V1Secret | undefined>,
  rec: StatusRecorder,
): Promise<Inputs> {
  const ns = vhs.metadata.namespace;
  const uses = referencedSecrets(vhs);
  const secrets = new Map<string, k8s.V1Secret | undefined>();
  for (const use of uses) if (!secrets.has(use.name)) secrets.set(use.name, await lookup(ns, use.name));

  const dbRef = vhs.spec.database.secretRef;
  const dbKey = dbRef.key ?? 'uri';
  const dbSecret = secrets.get(dbRef.name);
  if (!dbSecret) {
    rec.problem(
      'DatabaseClaimed',
      'SecretNotFound',
      `Secret ${ns}/${dbRef.name} (spec.database.secretRef) not found: create it in namespace ${ns} with key ${dbKey} holding postgresql://user:password@host:5432/dbname`,
    );
  }
  const uri = secretValue(dbSecret, dbKey);
  if (uri === undefined || uri.trim() === '') {
    const keys =
      Object.keys(dbSecret.data ?? {})
        .sort()
        .join(', ') || 'none';
    rec.problem(
      'DatabaseClaimed',
      'SecretKeyNotFound',
      `Secret ${ns}/${dbRef.name} has no key ${dbKey} (spec.database.secretRef.key); its keys: ${keys}`,
    );
  }
  let databaseAddress: string;
  try {
    databaseAddress = parseDatabaseAddress(uri).address;
  } catch (err) {
    if (!(err instanceof DatabaseUriError)) throw err;
    rec.problem('DatabaseClaimed', 'InvalidDatabaseURI', `Secret ${ns}/${dbRef.name} key ${dbKey}: ${err.message}`);
  }
  for (const use of uses.slice(1)) {
    const s = secrets.get(use.name);
    if (!s)
      rec.problem('DatabaseClaimed', 'SecretNotFound', `Secret ${ns}/${use.name} (${use.field}) not found: create it in namespace ${ns}`);
    for (const k of use.keys ?? []) {
      if (secretValue(s, k) === undefined)
        rec.problem('DatabaseClaimed', 'SecretKeyNotFound', `Secret ${ns}/${use.name} (${use.field}) has no key ${k}`);
    }
    if (!use.keys && Object.keys(s.data ?? {}).length === 0)
      rec.problem('DatabaseClaimed', 'SecretEmpty', `Secret ${ns}/${use.name} (${use.field}) holds no keys`);
  }
  return { secrets, databaseAddress, connectionKey: `${databaseAddress}#${hash(uri, 16)}` };
}

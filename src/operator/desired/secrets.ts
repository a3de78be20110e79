/** Which Secrets a resource's pods read, and the checksum of their data that rolls the pods on a change. Pure. */
import type * as k8s from '@kubernetes/client-node';
import type { ValidatorHASignerResource } from '../types.js';
import { hash } from './names.js';
import { tlsOf } from './tls.js';

export interface SecretUse {
  name: string;
  /** Keys the pods read; undefined: the whole Secret (a volume of all its entries). */
  keys?: string[];
  /** Field of the spec that names it (for messages). */
  field: string;
  /** false: read live by the pods (the TLS Secret), so a change must not roll them; it is still checked and watched. */
  rolls?: false;
}

export function referencedSecrets(vhs: ValidatorHASignerResource): SecretUse[] {
  const s = vhs.spec;
  const uses: SecretUse[] = [
    { name: s.database.secretRef.name, keys: [s.database.secretRef.key ?? 'uri'], field: 'spec.database.secretRef' },
  ];
  if (s.keys.secretRef) uses.push({ name: s.keys.secretRef.name, field: 'spec.keys.secretRef' });
  if (s.keys.passwordSecretRef)
    uses.push({
      name: s.keys.passwordSecretRef.name,
      keys: [s.keys.passwordSecretRef.key ?? 'password'],
      field: 'spec.keys.passwordSecretRef',
    });
  if (s.clients?.tokens && !s.clients.disableAuthentication) {
    uses.push({
      name: s.clients.tokens.secretRef.name,
      keys: [s.clients.tokens.secretRef.key ?? 'tokens.json'],
      field: 'spec.clients.tokens.secretRef',
    });
  }
  // A Secret the user provides must exist; cert-manager's appears only after the Certificate (applied later) is issued.
  const tls = tlsOf(vhs);
  if (tls?.secretName && !tls.certManager)
    uses.push({ name: tls.secretName, keys: ['tls.crt', 'tls.key'], field: 'spec.tls.secretName', rolls: false });
  return uses;
}

/** sha256 over the referenced entries of the referenced Secrets (absent Secrets count as empty). */
export function secretsChecksum(vhs: ValidatorHASignerResource, secrets: Map<string, k8s.V1Secret | undefined>): string {
  const parts = referencedSecrets(vhs)
    .filter((u) => u.rolls !== false)
    .map((u) => {
      const data = secrets.get(u.name)?.data ?? {};
      const picked = u.keys ? Object.fromEntries(u.keys.map((k) => [k, data[k] ?? null])) : data;
      return { name: u.name, data: picked };
    });
  return hash(parts, 64);
}

export function secretValue(secret: k8s.V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  if (v !== undefined) return Buffer.from(v, 'base64').toString('utf8');
  return secret?.stringData?.[key];
}

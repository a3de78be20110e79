/**
 * Stock Aztec nodes as JSON-RPC clients (HA_SIGNER_JSONRPC_CLIENTS_FILE, re-read live). A stock node sends no
 * Authorization header and uses its remote-signer URL exactly as given, so its credential is a per-client secret
 * in the URL path (`POST /jsonrpc/<secret>`). Secrets are kept as SHA-256 digests and compared in constant time
 * against every entry; they are never logged (request logs carry the route pattern, not the URL).
 *
 * File: `[{"name","secret" | "serviceAccount":{namespace,name},"validators":["0x…"|"*"],"nodeIds"?:[…],
 * "allowUnclaimedDigests"?:false,"allowTransactions"?:false}]`. A `serviceAccount` client is recognised by its source
 * pod (POST /jsonrpc, HA_SIGNER_JSONRPC_POD_IDENTITY=true; see pod-identity.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../protection/index.js';
import { AddressSet } from './auth.js';

/** What the JSON-RPC handler knows of its caller (a URL-secret client, or a bearer-token principal). */
export interface JsonRpcCaller {
  /** Safe to log: `aztec-node:<name>`, `token:<name>`, `serviceaccount:<ns>/<name>`. */
  readonly id: string;
  allows(address: string): boolean;
  /** When set, a consensus claim must be held by one of these node ids (VALIDATOR_HA_NODE_ID of the client's pods). */
  readonly nodeIds: ReadonlySet<string> | undefined;
  /** Sign digests that no duty claim covers (Aztec 4.x p2p AUTH_REQUEST handshakes). Off by default. */
  readonly allowUnclaimedDigests: boolean;
  /** eth_signTransaction (EIP-1559, L1 publisher). Off by default. */
  readonly allowTransactions: boolean;
}

export interface JsonRpcClientEntry extends JsonRpcCaller {
  readonly name: string;
  /** SHA-256 of the URL secret (clients identified by secret). */
  readonly digest: Buffer | undefined;
  /** The ServiceAccount of the client's pods (clients identified by their source pod, POST /jsonrpc). */
  readonly serviceAccount: { namespace: string; name: string } | undefined;
}

/** URL-safe and long enough not to be guessed (≥ 32 characters, e.g. 32 random bytes as base64url or hex). */
/** At most 100: fastify's router refuses longer path parameters (maxParamLength). */
const SECRET = /^[A-Za-z0-9_-]{32,100}$/;
export const MIN_SECRET_LENGTH = 32;
const NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const FIELDS = new Set(['name', 'secret', 'serviceAccount', 'validators', 'nodeIds', 'allowUnclaimedDigests', 'allowTransactions']);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Parses the clients file; errors name the entry and field, never the secret. */
export function parseJsonRpcClientsFile(setting: string, text: string): JsonRpcClientEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(setting, 'is not valid JSON (expected [{"name":"...","secret":"...","validators":["0x..."]}])');
  }
  if (!Array.isArray(parsed))
    throw new ConfigError(
      setting,
      'expected a JSON array of {name, secret, validators, nodeIds?, allowUnclaimedDigests?, allowTransactions?}',
    );
  const entries: JsonRpcClientEntry[] = [];
  for (const [i, raw] of parsed.entries()) {
    const at = `${setting}[${i}]`;
    if (!isObject(raw)) throw new ConfigError(at, 'expected an object {name, secret, validators, ...}');
    for (const key of Object.keys(raw))
      if (!FIELDS.has(key)) throw new ConfigError(`${at}.${key}`, `unknown field (allowed: ${[...FIELDS].join(', ')})`);
    if (typeof raw.name !== 'string' || !NAME.test(raw.name))
      throw new ConfigError(`${at}.name`, 'expected a lower-case DNS-style name (a-z, 0-9, -, .)');
    const name = raw.name;
    if (entries.some((e) => e.name === name)) throw new ConfigError(`${at}.name`, `duplicate name ${JSON.stringify(name)}`);
    if ((raw.secret === undefined) === (raw.serviceAccount === undefined)) {
      throw new ConfigError(
        `${at} (${name})`,
        'needs exactly one credential: "secret" (carried in the URL path) or "serviceAccount" {namespace, name} (the source pod\'s identity)',
      );
    }
    let digest: Buffer | undefined;
    let serviceAccount: { namespace: string; name: string } | undefined;
    if (raw.secret !== undefined) {
      if (typeof raw.secret !== 'string' || !SECRET.test(raw.secret)) {
        throw new ConfigError(
          `${at}.secret (${name})`,
          `expected ${MIN_SECRET_LENGTH}–100 URL-safe characters (A-Z a-z 0-9 _ -), e.g. \`openssl rand -hex 32\``,
        );
      }
      const secretDigest = sha256(raw.secret);
      if (entries.some((e) => e.digest !== undefined && timingSafeEqual(e.digest, secretDigest)))
        throw new ConfigError(`${at}.secret (${name})`, 'is the same secret as another entry');
      digest = secretDigest;
    } else {
      const sa = raw.serviceAccount;
      if (
        !isObject(sa) ||
        typeof sa.namespace !== 'string' ||
        !DNS_LABEL.test(sa.namespace) ||
        typeof sa.name !== 'string' ||
        !NAME.test(sa.name)
      ) {
        throw new ConfigError(`${at}.serviceAccount (${name})`, 'expected {"namespace": "<namespace>", "name": "<ServiceAccount>"}');
      }
      const account = { namespace: sa.namespace, name: sa.name };
      if (entries.some((e) => e.serviceAccount?.namespace === account.namespace && e.serviceAccount.name === account.name)) {
        throw new ConfigError(`${at}.serviceAccount (${name})`, `${account.namespace}/${account.name} is already another client's`);
      }
      serviceAccount = account;
    }
    const validators = AddressSet.parse(`${at}.validators`, raw.validators);
    let nodeIds: Set<string> | undefined;
    if (raw.nodeIds !== undefined) {
      if (
        !Array.isArray(raw.nodeIds) ||
        raw.nodeIds.length === 0 ||
        !raw.nodeIds.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 255)
      ) {
        throw new ConfigError(
          `${at}.nodeIds`,
          "expected a non-empty list of node ids (the VALIDATOR_HA_NODE_ID of each of the client's pods), or leave it out",
        );
      }
      nodeIds = new Set(raw.nodeIds as string[]);
    }
    const flag = (key: 'allowUnclaimedDigests' | 'allowTransactions'): boolean => {
      const value = raw[key];
      if (value === undefined) return false;
      if (typeof value !== 'boolean') throw new ConfigError(`${at}.${key}`, `expected true or false, got ${JSON.stringify(value)}`);
      return value;
    };
    entries.push({
      name,
      id: `aztec-node:${name}`,
      digest,
      serviceAccount,
      allows: (address) => validators.has(address),
      nodeIds,
      allowUnclaimedDigests: flag('allowUnclaimedDigests'),
      allowTransactions: flag('allowTransactions'),
    });
  }
  return entries;
}

/** Finds the client of a URL secret: compares against every entry (no early exit), so timing tells nothing. */
export function clientForSecret(entries: readonly JsonRpcClientEntry[], secret: string): JsonRpcClientEntry | undefined {
  const digest = sha256(secret);
  let found: JsonRpcClientEntry | undefined;
  for (const entry of entries) {
    if (entry.digest !== undefined && timingSafeEqual(entry.digest, digest) && found === undefined) found = entry;
  }
  return found;
}

export function clientForServiceAccount(
  entries: readonly JsonRpcClientEntry[],
  namespace: string,
  name: string,
): JsonRpcClientEntry | undefined {
  return entries.find((e) => e.serviceAccount?.namespace === namespace && e.serviceAccount.name === name);
}

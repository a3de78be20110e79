/**
 * Authentication and authorization of callers: bearer tokens from a mounted Secret, and Kubernetes ServiceAccount
 * tokens checked with the TokenReview API. Each identity is allowed a set of validator addresses (or "*").
 * Tokens are compared as SHA-256 digests with crypto.timingSafeEqual, and never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../protection/index.js';
import { LiveFile, type LiveFileLogger } from './live-file.js';

export interface Principal {
  /** 'token:<name>' or 'serviceaccount:<namespace>/<name>' or 'anonymous' (auth disabled); safe to log. */
  readonly id: string;
  allows(address: string): boolean;
}

export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401; reason: 'missing' | 'invalid' }
  | { ok: false; status: 503; reason: 'review_unavailable' };

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<AuthResult>;
}

/** A list of addresses, or everything. */
export class AddressSet {
  private constructor(
    private readonly all: boolean,
    private readonly set: ReadonlySet<string>,
  ) {}

  static parse(setting: string, value: unknown): AddressSet {
    if (!Array.isArray(value) || value.length === 0) throw new ConfigError(setting, 'expected a non-empty list of 0x addresses or "*"');
    const set = new Set<string>();
    let all = false;
    for (const [i, entry] of value.entries()) {
      if (entry === '*') all = true;
      else if (typeof entry === 'string' && /^0x[0-9a-fA-F]{40}$/.test(entry)) set.add(entry.toLowerCase());
      else throw new ConfigError(`${setting}[${i}]`, `expected a 0x-prefixed 20-byte address or "*", got ${JSON.stringify(entry)}`);
    }
    return new AddressSet(all, set);
  }

  static everything(): AddressSet {
    return new AddressSet(true, new Set());
  }

  has(address: string): boolean {
    return this.all || this.set.has(address);
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Minimum length of a configured bearer token: shorter secrets can be guessed. */
export const MIN_TOKEN_LENGTH = 16;

export interface TokenEntry {
  name: string;
  digest: Buffer;
  validators: AddressSet;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Parses the tokens file: `[{"name","token","validators":[...]}]`. Errors name the entry, never the token. */
export function parseTokensFile(setting: string, text: string): TokenEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(setting, 'is not valid JSON (expected [{"name":"...","token":"...","validators":["0x..."]}])');
  }
  if (!Array.isArray(parsed)) throw new ConfigError(setting, 'expected a JSON array of {name, token, validators}');
  const names = new Set<string>();
  const entries: TokenEntry[] = [];
  for (const [i, raw] of parsed.entries()) {
    const at = `${setting}[${i}]`;
    if (!isObject(raw)) throw new ConfigError(at, 'expected an object {name, token, validators}');
    if (typeof raw.name !== 'string' || raw.name.trim() === '') throw new ConfigError(`${at}.name`, 'expected a non-empty string');
    if (names.has(raw.name)) throw new ConfigError(`${at}.name`, `duplicate name ${JSON.stringify(raw.name)}`);
    names.add(raw.name);
    if (typeof raw.token !== 'string' || raw.token.length < MIN_TOKEN_LENGTH || /\s/.test(raw.token)) {
      throw new ConfigError(`${at}.token (${raw.name})`, `expected a secret of at least ${MIN_TOKEN_LENGTH} characters without whitespace`);
    }
    const digest = sha256(raw.token);
    if (entries.some((e) => timingSafeEqual(e.digest, digest)))
      throw new ConfigError(`${at}.token (${raw.name})`, 'is the same token as another entry');
    entries.push({ name: raw.name, digest, validators: AddressSet.parse(`${at}.validators`, raw.validators) });
  }
  return entries;
}

export interface ServiceAccountEntry {
  namespace: string;
  name: string;
  validators: AddressSet;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Parses the ServiceAccounts file: `[{"namespace","name","validators":[...]}]`. */
export function parseServiceAccountsFile(setting: string, text: string): ServiceAccountEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(setting, 'is not valid JSON (expected [{"namespace":"...","name":"...","validators":["0x..."]}])');
  }
  if (!Array.isArray(parsed)) throw new ConfigError(setting, 'expected a JSON array of {namespace, name, validators}');
  return parsed.map((raw, i) => {
    const at = `${setting}[${i}]`;
    if (!isObject(raw)) throw new ConfigError(at, 'expected an object {namespace, name, validators}');
    if (typeof raw.namespace !== 'string' || !DNS_LABEL.test(raw.namespace))
      throw new ConfigError(`${at}.namespace`, `expected a Kubernetes namespace name, got ${JSON.stringify(raw.namespace)}`);
    if (typeof raw.name !== 'string' || !DNS_SUBDOMAIN.test(raw.name))
      throw new ConfigError(`${at}.name`, `expected a ServiceAccount name, got ${JSON.stringify(raw.name)}`);
    return { namespace: raw.namespace, name: raw.name, validators: AddressSet.parse(`${at}.validators`, raw.validators) };
  });
}

/** The part of the TokenReview API we need; KubernetesTokenReviewer implements it against the API server. */
export interface TokenReviewer {
  /** The authenticated username (system:serviceaccount:<ns>:<name>), or undefined when the token is not valid. */
  review(token: string): Promise<string | undefined>;
}

export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
  return match?.[1];
}

interface CacheEntry {
  principal: Principal | undefined;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  tokens?: TokenEntry[];
  serviceAccounts?: ServiceAccountEntry[];
  reviewer?: TokenReviewer;
  /** How long a TokenReview answer is reused; valid answers longer than invalid ones. */
  reviewCacheMs?: { valid: number; invalid: number };
  now?: () => number;
}

const MAX_CACHE_ENTRIES = 10_000;

export class CallerAuthenticator implements Authenticator {
  private tokens: readonly TokenEntry[];
  private serviceAccounts: ReadonlyMap<string, ServiceAccountEntry>;
  private readonly reviewer: TokenReviewer | undefined;
  private readonly cacheMs: { valid: number; invalid: number };
  private readonly now: () => number;
  // Keyed by the token's SHA-256 (hex), so the cache holds no tokens. Bounds: size cap and per-entry expiry.
  private readonly reviewCache = new Map<string, CacheEntry>();
  private readonly reviewsInFlight = new Map<string, Promise<Principal | undefined>>();

  constructor(options: AuthenticatorOptions) {
    this.tokens = options.tokens ?? [];
    this.serviceAccounts = new Map((options.serviceAccounts ?? []).map((sa) => [`system:serviceaccount:${sa.namespace}:${sa.name}`, sa]));
    this.reviewer = options.reviewer;
    this.cacheMs = options.reviewCacheMs ?? { valid: 60_000, invalid: 10_000 };
    this.now = options.now ?? Date.now;
    if (this.serviceAccounts.size > 0 && !this.reviewer) throw new Error('ServiceAccount authentication needs a TokenReview client');
  }

  /** Replaces the token list (a reloaded file; undefined = invalid file: refuse them all). */
  setTokens(tokens: readonly TokenEntry[] | undefined): void {
    this.tokens = tokens ?? [];
  }

  /** Replaces the ServiceAccount list; cached reviews are dropped so a removed account is refused at once. */
  setServiceAccounts(serviceAccounts: readonly ServiceAccountEntry[] | undefined): void {
    this.serviceAccounts = new Map((serviceAccounts ?? []).map((sa) => [`system:serviceaccount:${sa.namespace}:${sa.name}`, sa]));
    this.reviewCache.clear();
  }

  async authenticate(authorization: string | undefined): Promise<AuthResult> {
    const token = bearerToken(authorization);
    if (token === undefined) return { ok: false, status: 401, reason: 'missing' };
    const digest = sha256(token);
    // Compare against every entry (no early exit), so timing does not reveal which entry, if any, matched.
    let matched: TokenEntry | undefined;
    for (const entry of this.tokens) {
      if (timingSafeEqual(entry.digest, digest) && matched === undefined) matched = entry;
    }
    if (matched) {
      const entry = matched;
      return { ok: true, principal: { id: `token:${entry.name}`, allows: (address) => entry.validators.has(address) } };
    }
    if (!this.reviewer) return { ok: false, status: 401, reason: 'invalid' };
    try {
      const principal = await this.reviewServiceAccount(token, digest.toString('hex'));
      return principal ? { ok: true, principal } : { ok: false, status: 401, reason: 'invalid' };
    } catch {
      return { ok: false, status: 503, reason: 'review_unavailable' };
    }
  }

  private async reviewServiceAccount(token: string, key: string): Promise<Principal | undefined> {
    const cached = this.reviewCache.get(key);
    if (cached && cached.expiresAt > this.now()) return cached.principal;
    const pending = this.reviewsInFlight.get(key);
    if (pending) return await pending;
    const review = (async () => {
      const username = await this.reviewer!.review(token);
      const sa = username === undefined ? undefined : this.serviceAccounts.get(username);
      const principal: Principal | undefined = sa
        ? { id: `serviceaccount:${sa.namespace}/${sa.name}`, allows: (address) => sa.validators.has(address) }
        : undefined;
      if (this.reviewCache.size >= MAX_CACHE_ENTRIES) this.reviewCache.delete(this.reviewCache.keys().next().value!);
      this.reviewCache.set(key, { principal, expiresAt: this.now() + (principal ? this.cacheMs.valid : this.cacheMs.invalid) });
      return principal;
    })();
    this.reviewsInFlight.set(key, review);
    try {
      return await review;
    } finally {
      this.reviewsInFlight.delete(key);
    }
  }
}

/** Authentication turned off (HA_SIGNER_AUTH_DISABLED=true, tests and the demo): every caller may use every key. */
export const anonymousAuthenticator: Authenticator = {
  authenticate: async () => ({ ok: true, principal: { id: 'anonymous', allows: () => true } }),
};

/**
 * TokenReview through @kubernetes/client-node: in a pod, the in-cluster config (ServiceAccount files under
 * HA_SIGNER_FS_ROOT); elsewhere KUBECONFIG / ~/.kube/config.
 */
export async function kubernetesTokenReviewer(fsRoot: string): Promise<TokenReviewer> {
  const k8s = await import('@kubernetes/client-node');
  const kubeConfig = new k8s.KubeConfig();
  if (process.env.KUBERNETES_SERVICE_HOST) kubeConfig.loadFromCluster(fsRoot === '/' ? '' : fsRoot);
  else kubeConfig.loadFromDefault();
  const api = kubeConfig.makeApiClient(k8s.AuthenticationV1Api);
  return {
    review: async (token) => {
      const result = await api.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      });
      return result.status?.authenticated === true ? result.status.user?.username : undefined;
    },
  };
}

/**
 * Reads the configured files and builds the authenticator. Throws ConfigError naming the file. The files are then
 * re-read while the process runs (LiveFile): added clients are accepted and removed ones refused without a restart.
 */
export async function authenticatorFromConfig(
  auth: { disabled: boolean; tokensFile: string | undefined; serviceAccountsFile: string | undefined },
  fsRoot: string,
  log?: LiveFileLogger,
): Promise<Authenticator> {
  if (auth.disabled) return anonymousAuthenticator;
  const open = async <T>(
    setting: string,
    file: string,
    parse: (setting: string, text: string) => T,
    onChange: (value: T | undefined) => void,
  ): Promise<LiveFile<T>> => {
    try {
      return await LiveFile.open(file, (text) => parse(`${setting} (${file})`, text), { onChange, ...(log ? { log } : {}) });
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`${setting} (${file})`, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  };
  // The reloads (first one a second after start) update the authenticator built below.
  const built: { authenticator?: CallerAuthenticator } = {};
  const tokens = auth.tokensFile
    ? await open('HA_SIGNER_AUTH_TOKENS_FILE', auth.tokensFile, parseTokensFile, (v) => built.authenticator?.setTokens(v))
    : undefined;
  const serviceAccounts = auth.serviceAccountsFile
    ? await open('HA_SIGNER_AUTH_SERVICE_ACCOUNTS_FILE', auth.serviceAccountsFile, parseServiceAccountsFile, (v) =>
        built.authenticator?.setServiceAccounts(v),
      )
    : undefined;
  // With a ServiceAccounts file, TokenReview is ready even while the list is empty: entries may be added later.
  const reviewer = serviceAccounts ? await kubernetesTokenReviewer(fsRoot) : undefined;
  built.authenticator = new CallerAuthenticator({
    tokens: tokens?.current ?? [],
    serviceAccounts: serviceAccounts?.current ?? [],
    ...(reviewer ? { reviewer } : {}),
  });
  return built.authenticator;
}

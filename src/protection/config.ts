/**
 * Configuration: the `VALIDATOR_HA_*` settings of @aztec/validator-ha-signer with its defaults, plus ha-signer's
 * additions. Parsing is pure; every invalid value gets an error that names the variable and the fix.
 */
import { parse as parseConnectionString } from 'pg-connection-string';
import { ConfigError } from './errors.js';
import { normalizeAddress } from './values.js';

/** Two 72 s Aztec slots: the package's stuck-duty default, and our lease length. */
export const DEFAULT_MAX_STUCK_DUTIES_AGE_MS = 144_000;
export const DEFAULT_SIGNING_OPERATION_TIMEOUT_MS = 30_000;

export interface ValidatorHASignerConfig {
  /** Whether HA signing / slashing protection is enabled. */
  haSigningEnabled?: boolean;
  /** Unique id of this node (pod name in Kubernetes); stored on every duty it holds. */
  nodeId: string;
  /** Fallback poll interval while waiting for another node's in-progress duty (notifications wake waiters first). */
  pollingIntervalMs: number;
  /** Max wait for another node's in-progress duty before giving up with DutyAlreadySignedError. */
  signingTimeoutMs: number;
  /** Lease of an in-progress duty; once it has expired, any node may take the duty over. */
  maxStuckDutiesAgeMs?: number;
  /** Hard timeout of one signFn call; clamped to at most half the lease. */
  signingOperationTimeoutMs?: number;
  /** The rollup this signer protects duties for (or l1Contracts.rollupAddress). */
  rollupAddress?: { toString(): string } | string;
  l1Contracts?: { rollupAddress: { toString(): string } | string };
  /** Prune signed duties older than this many hours (raising the low watermark); undefined: never prune. */
  cleanupOldDutiesAfterHours?: number;
}

export interface CreateHASignerConfig extends ValidatorHASignerConfig {
  databaseUrl: string;
  poolMaxCount?: number;
  poolMinCount?: number;
  poolIdleTimeoutMs?: number;
  poolConnectionTimeoutMs?: number;
}

/** Environment variable of each setting. */
export const ENV = {
  databaseUrl: 'VALIDATOR_HA_DATABASE_URL',
  haSigningEnabled: 'VALIDATOR_HA_SIGNING_ENABLED',
  nodeId: 'VALIDATOR_HA_NODE_ID',
  pollingIntervalMs: 'VALIDATOR_HA_POLLING_INTERVAL_MS',
  signingTimeoutMs: 'VALIDATOR_HA_SIGNING_TIMEOUT_MS',
  maxStuckDutiesAgeMs: 'VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS',
  poolMaxCount: 'VALIDATOR_HA_POOL_MAX',
  poolMinCount: 'VALIDATOR_HA_POOL_MIN',
  poolIdleTimeoutMs: 'VALIDATOR_HA_POOL_IDLE_TIMEOUT_MS',
  poolConnectionTimeoutMs: 'VALIDATOR_HA_POOL_CONNECTION_TIMEOUT_MS',
  rollupAddress: 'VALIDATOR_HA_ROLLUP_ADDRESS',
  cleanupOldDutiesAfterHours: 'VALIDATOR_HA_OLD_DUTIES_MAX_AGE_H',
  signingOperationTimeoutMs: 'VALIDATOR_SIGNING_OPERATION_TIMEOUT_MS',
} as const satisfies Partial<Record<keyof CreateHASignerConfig, string>>;

export const DEFAULTS = {
  haSigningEnabled: false,
  pollingIntervalMs: 100,
  signingTimeoutMs: 3_000,
  maxStuckDutiesAgeMs: DEFAULT_MAX_STUCK_DUTIES_AGE_MS,
  poolMaxCount: 10,
  poolMinCount: 0,
  poolIdleTimeoutMs: 10_000,
  poolConnectionTimeoutMs: 0,
  signingOperationTimeoutMs: DEFAULT_SIGNING_OPERATION_TIMEOUT_MS,
} as const;

type Env = Readonly<Record<string, string | undefined>>;

export function parseInteger(setting: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = raw.trim();
  if (!/^-?[0-9]+$/.test(text)) throw new ConfigError(setting, `expected an integer, got ${JSON.stringify(raw)}`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(setting, `expected an integer from ${min} to ${max}, got ${text}`);
  }
  return value;
}

export function parseBoolean(setting: string, raw: string): boolean {
  const text = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off', ''].includes(text)) return false;
  throw new ConfigError(setting, `expected true or false, got ${JSON.stringify(raw)}`);
}

const URL_EXAMPLE = 'postgresql://user:password@host:5432/dbname';
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/**
 * Validates a connection URL with the parser `pg` itself connects with (pg-connection-string), so that what passes
 * here is what the pool will use: postgres:// and postgresql:// (and pg's socket:) URLs, libpq query parameters such
 * as sslmode, a host or Unix socket directory in `?host=` or percent-encoded in the authority. Refused, naming the
 * setting: other schemes, libpq keyword/value strings and multi-host lists (pg would misread both), no host, a bad
 * port or sslmode. Never echoes the URL (it may hold a password).
 */
export function parseDatabaseUrl(setting: string, raw: string): string {
  const text = raw.trim();
  checkUrlShape(setting, text);
  let parsed: ReturnType<typeof parseConnectionString>;
  try {
    parsed = parseConnectionString(text);
  } catch (error) {
    // ENOENT and friends come from reading sslrootcert/sslcert/sslkey, as pg will at connect time.
    const code = (error as NodeJS.ErrnoException).code;
    const fileError = typeof code === 'string' && /^E[A-Z]+$/.test(code);
    const why = fileError ? `a certificate file it names cannot be read (${code})` : 'it is not a valid URL';
    throw new ConfigError(setting, `${why}; expected a PostgreSQL URL such as ${URL_EXAMPLE}`);
  }
  checkConnectionOptions(setting, parsed);
  return text;
}

/** What pg-connection-string would misread rather than refuse: no scheme, another scheme, several hosts. */
function checkUrlShape(setting: string, text: string): void {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const hint = /^\s*\w+\s*=/.test(text) ? ' (keyword=value strings are not understood by node-postgres)' : '';
    throw new ConfigError(setting, `expected a PostgreSQL URL such as ${URL_EXAMPLE}${hint}`);
  }
  if (!['postgresql', 'postgres', 'socket'].includes(scheme)) {
    throw new ConfigError(setting, `expected a postgresql:// URL, got scheme ${scheme}:`);
  }
  const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(text)?.[1] ?? '';
  if (authority.slice(authority.lastIndexOf('@') + 1).includes(',')) {
    throw new ConfigError(setting, 'lists several hosts; node-postgres connects to one host: give one (e.g. the primary Service name)');
  }
}

function checkConnectionOptions(setting: string, parsed: ReturnType<typeof parseConnectionString>): void {
  if (!parsed.host) {
    throw new ConfigError(setting, 'the URL names no host: give host[:port], or ?host=/path/to/socket/dir for a Unix socket');
  }
  const port = parsed.port ? Number(/^[0-9]{1,5}$/.test(parsed.port) ? parsed.port : NaN) : undefined;
  if (port !== undefined && !(port >= 1 && port <= 65535)) throw new ConfigError(setting, 'port: expected a number from 1 to 65535');
  const sslmode = parsed.sslmode;
  if (sslmode !== undefined && (typeof sslmode !== 'string' || !SSL_MODES.includes(sslmode))) {
    throw new ConfigError(setting, `sslmode: expected one of ${SSL_MODES.join(', ')}`);
  }
}

/** Reads the settings from environment variables; unset ones take the package's defaults. */
export function configFromEnv(env: Env = process.env): CreateHASignerConfig & { haSigningEnabled: boolean } {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const int = (name: string, fallback: number, min: number, max?: number): number => {
    const raw = get(name);
    return raw === undefined ? fallback : parseInteger(name, raw, min, max);
  };
  const databaseUrlRaw = get(ENV.databaseUrl);
  const rollupRaw = get(ENV.rollupAddress);
  const oldDutiesRaw = get(ENV.cleanupOldDutiesAfterHours);
  const config: CreateHASignerConfig & { haSigningEnabled: boolean } = {
    databaseUrl: databaseUrlRaw === undefined ? '' : parseDatabaseUrl(ENV.databaseUrl, databaseUrlRaw),
    haSigningEnabled:
      get(ENV.haSigningEnabled) === undefined ? DEFAULTS.haSigningEnabled : parseBoolean(ENV.haSigningEnabled, env[ENV.haSigningEnabled]!),
    nodeId: get(ENV.nodeId)?.trim() ?? '',
    pollingIntervalMs: int(ENV.pollingIntervalMs, DEFAULTS.pollingIntervalMs, 1, 60_000),
    signingTimeoutMs: int(ENV.signingTimeoutMs, DEFAULTS.signingTimeoutMs, 1, 3_600_000),
    maxStuckDutiesAgeMs: int(ENV.maxStuckDutiesAgeMs, DEFAULTS.maxStuckDutiesAgeMs, 100, 86_400_000),
    poolMaxCount: int(ENV.poolMaxCount, DEFAULTS.poolMaxCount, 1, 1_000),
    poolMinCount: int(ENV.poolMinCount, DEFAULTS.poolMinCount, 0, 1_000),
    poolIdleTimeoutMs: int(ENV.poolIdleTimeoutMs, DEFAULTS.poolIdleTimeoutMs, 0),
    poolConnectionTimeoutMs: int(ENV.poolConnectionTimeoutMs, DEFAULTS.poolConnectionTimeoutMs, 0),
    signingOperationTimeoutMs: int(ENV.signingOperationTimeoutMs, DEFAULTS.signingOperationTimeoutMs, 1, 86_400_000),
  };
  if (rollupRaw !== undefined) config.rollupAddress = normalizeSetting(ENV.rollupAddress, rollupRaw);
  if (oldDutiesRaw !== undefined)
    config.cleanupOldDutiesAfterHours = parseInteger(ENV.cleanupOldDutiesAfterHours, oldDutiesRaw, 1, 100_000);
  if ((config.poolMinCount ?? 0) > (config.poolMaxCount ?? DEFAULTS.poolMaxCount)) {
    throw new ConfigError(ENV.poolMinCount, `must not exceed ${ENV.poolMaxCount} (${config.poolMaxCount})`);
  }
  return config;
}

function normalizeSetting(setting: string, raw: string): string {
  try {
    return normalizeAddress(setting, raw.trim());
  } catch {
    throw new ConfigError(setting, `expected a 0x-prefixed 20-byte hex address, got ${JSON.stringify(raw)}`);
  }
}

/** Settings after validation and derived values: what the service runs with. */
export interface ResolvedSignerConfig {
  nodeId: string;
  rollupAddress: string;
  pollingIntervalMs: number;
  signingTimeoutMs: number;
  /** Lease of an in-progress duty, in ms (maxStuckDutiesAgeMs). */
  leaseMs: number;
  /** Effective signFn timeout: min(configured, lease / 2). */
  signingOperationTimeoutMs: number;
  cleanupOldDutiesAfterHours?: number;
}

function positiveInteger(setting: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(setting, `expected an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** Validates a config object (from code or env) and derives the effective values. */
export function resolveSignerConfig(config: ValidatorHASignerConfig): ResolvedSignerConfig {
  if (config === null || typeof config !== 'object') throw new ConfigError('config', 'expected a configuration object');
  if (typeof config.nodeId !== 'string' || config.nodeId.trim() === '') {
    throw new ConfigError(
      `nodeId (${ENV.nodeId})`,
      'is required for high-availability setups: give each node a unique id (the pod name in Kubernetes)',
    );
  }
  if (config.nodeId.length > 255) throw new ConfigError(`nodeId (${ENV.nodeId})`, 'must be at most 255 characters');
  const rollupSource = config.rollupAddress ?? config.l1Contracts?.rollupAddress;
  if (rollupSource === undefined) {
    throw new ConfigError(
      `rollupAddress (${ENV.rollupAddress})`,
      'is required: the rollup whose duties this signer protects (or l1Contracts.rollupAddress)',
    );
  }
  let rollupAddress: string;
  try {
    rollupAddress = normalizeAddress('rollupAddress', rollupSource);
  } catch {
    throw new ConfigError(
      `rollupAddress (${ENV.rollupAddress})`,
      `expected a 0x-prefixed 20-byte hex address, got ${JSON.stringify(String(rollupSource))}`,
    );
  }
  const leaseMs = positiveInteger(
    `maxStuckDutiesAgeMs (${ENV.maxStuckDutiesAgeMs})`,
    config.maxStuckDutiesAgeMs,
    DEFAULTS.maxStuckDutiesAgeMs,
    100,
  );
  const signingOperationTimeoutMs = Math.min(
    positiveInteger(
      `signingOperationTimeoutMs (${ENV.signingOperationTimeoutMs})`,
      config.signingOperationTimeoutMs,
      DEFAULTS.signingOperationTimeoutMs,
      1,
    ),
    Math.floor(leaseMs / 2),
  );
  const resolved: ResolvedSignerConfig = {
    nodeId: config.nodeId.trim(),
    rollupAddress,
    pollingIntervalMs: positiveInteger(
      `pollingIntervalMs (${ENV.pollingIntervalMs})`,
      config.pollingIntervalMs,
      DEFAULTS.pollingIntervalMs,
      1,
    ),
    signingTimeoutMs: positiveInteger(`signingTimeoutMs (${ENV.signingTimeoutMs})`, config.signingTimeoutMs, DEFAULTS.signingTimeoutMs, 1),
    leaseMs,
    signingOperationTimeoutMs,
  };
  if (config.cleanupOldDutiesAfterHours !== undefined) {
    resolved.cleanupOldDutiesAfterHours = positiveInteger(
      `cleanupOldDutiesAfterHours (${ENV.cleanupOldDutiesAfterHours})`,
      config.cleanupOldDutiesAfterHours,
      0,
      1,
    );
  }
  return resolved;
}

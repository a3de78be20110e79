/**
 * Configuration of `ha-signer serve`: the protection core's VALIDATOR_HA_* settings plus the HA_SIGNER_* settings of
 * docs/runtime-contract.md, each also given as a command-line flag (a flag wins over its variable). Parsing is
 * pure: every invalid value fails start-up with an error that names the setting.
 */
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { POD_NAME_ENV, POD_PATHS, PROTECTION_ENV as ENV, SIGNER_ENV, SIGNER_PORT } from '../contract.js';
import {
  ConfigError,
  type CreateHASignerConfig,
  configFromEnv,
  parseBoolean,
  parseInteger,
  resolveSignerConfig,
} from '../protection/index.js';
import { type TlsFiles, tlsFilesFromEnv } from './tls.js';

type Env = Readonly<Record<string, string | undefined>>;

export { SIGNER_ENV };

export const DEFAULT_KEYS_DIR = POD_PATHS.keysDir;
/** Sign requests are a few hundred bytes; typed data for votes a few KiB. Anything larger is refused with 413. */
export const BODY_LIMIT_BYTES = 16 * 1024;
/**
 * Without a connection timeout a pool waits forever for a PostgreSQL that accepts TCP but never answers; a signer
 * must answer 503 instead. Used when VALIDATOR_HA_POOL_CONNECTION_TIMEOUT_MS is unset.
 */
export const DEFAULT_SERVE_POOL_CONNECTION_TIMEOUT_MS = 5_000;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServeConfig {
  protection: CreateHASignerConfig;
  listenHost: string;
  port: number;
  /** Absolute path, already under HA_SIGNER_FS_ROOT. */
  keysDir: string;
  /** Where the keystore password comes from; read only when a keystore file is found. */
  keystorePassword: { file: string } | { value: string } | undefined;
  web3SignerUrl: string | undefined;
  auth: { disabled: boolean; tokensFile: string | undefined; serviceAccountsFile: string | undefined };
  jsonRpcEnabled: boolean;
  /** Stock Aztec node clients of the protected JSON-RPC (absolute path, under HA_SIGNER_FS_ROOT). */
  jsonRpcClientsFile: string | undefined;
  jsonRpcPodIdentity: boolean;
  l1ChainId: bigint | undefined;
  slashingProposerAddress: string | undefined;
  logLevel: LogLevel;
  /** HA_SIGNER_FS_ROOT ('' = '/'): prefix of the in-cluster ServiceAccount files too. */
  fsRoot: string;
  /** HTTPS on the signing port (src/signer/tls.ts); undefined: plain HTTP. */
  tls: TlsFiles | undefined;
  /** Plain-HTTP port with only /livez, /readyz, /metrics; undefined: none. */
  metricsPort: number | undefined;
}

/** Flag name → the variable it overrides. */
const FLAGS = {
  'database-url': ENV.databaseUrl,
  'rollup-address': ENV.rollupAddress,
  'node-id': ENV.nodeId,
  'listen-host': SIGNER_ENV.listenHost,
  port: SIGNER_ENV.port,
  'keys-dir': SIGNER_ENV.keysDir,
  'keystore-password-file': SIGNER_ENV.keystorePasswordFile,
  'web3signer-url': SIGNER_ENV.web3SignerUrl,
  'auth-tokens-file': SIGNER_ENV.authTokensFile,
  'auth-service-accounts-file': SIGNER_ENV.authServiceAccountsFile,
  'jsonrpc-clients-file': SIGNER_ENV.jsonRpcClientsFile,
  'l1-chain-id': SIGNER_ENV.l1ChainId,
  'slashing-proposer-address': SIGNER_ENV.slashingProposerAddress,
  'log-level': SIGNER_ENV.logLevel,
  'tls-cert-file': SIGNER_ENV.tlsCertFile,
  'tls-key-file': SIGNER_ENV.tlsKeyFile,
  'metrics-port': SIGNER_ENV.metricsPort,
} as const;

const BOOLEAN_FLAGS = {
  'auth-disabled': SIGNER_ENV.authDisabled,
  'jsonrpc-enabled': SIGNER_ENV.jsonRpcEnabled,
  'jsonrpc-pod-identity': SIGNER_ENV.jsonRpcPodIdentity,
} as const;

export const SERVE_USAGE = `Usage: ha-signer serve [options]

Serves the signing API with slashing protection. Every option can also be set by the variable in brackets.
  --database-url URL               [${ENV.databaseUrl}] PostgreSQL of the protection database (required)
  --rollup-address 0x..            [${ENV.rollupAddress}] rollup whose duties are protected (required)
  --node-id ID                     [${ENV.nodeId}] default: ${POD_NAME_ENV}, then the hostname
  --listen-host HOST               [${SIGNER_ENV.listenHost}] default 0.0.0.0
  --port PORT                      [${SIGNER_ENV.port}] default ${SIGNER_PORT}
  --keys-dir DIR                   [${SIGNER_ENV.keysDir}] default ${DEFAULT_KEYS_DIR}
  --keystore-password-file FILE    [${SIGNER_ENV.keystorePasswordFile}] (or ${SIGNER_ENV.keystorePassword})
  --web3signer-url URL             [${SIGNER_ENV.web3SignerUrl}] sign through a Web3Signer-compatible signer
  --auth-disabled                  [${SIGNER_ENV.authDisabled}] tests and the demo only
  --auth-tokens-file FILE          [${SIGNER_ENV.authTokensFile}]
  --auth-service-accounts-file F   [${SIGNER_ENV.authServiceAccountsFile}]
  --jsonrpc-enabled                [${SIGNER_ENV.jsonRpcEnabled}] protected Web3Signer-compatible JSON-RPC on POST / (bearer tokens)
  --jsonrpc-clients-file FILE      [${SIGNER_ENV.jsonRpcClientsFile}] stock Aztec nodes: POST /jsonrpc/<secret> (re-read live)
  --jsonrpc-pod-identity           [${SIGNER_ENV.jsonRpcPodIdentity}] recognise serviceAccount clients by source pod (POST /jsonrpc)
  --l1-chain-id ID                 [${SIGNER_ENV.l1ChainId}] rollup's L1 chain id (typed consensus data, transactions)
  --slashing-proposer-address 0x.. [${SIGNER_ENV.slashingProposerAddress}] empire slashing proposer (its Signals are slashing votes)
  --log-level LEVEL                [${SIGNER_ENV.logLevel}] ${LOG_LEVELS.join('|')}, default info
  --tls-cert-file FILE             [${SIGNER_ENV.tlsCertFile}] PEM chain: HTTPS on --port (reloaded on change)
  --tls-key-file FILE              [${SIGNER_ENV.tlsKeyFile}] PEM private key of that certificate
  --metrics-port PORT              [${SIGNER_ENV.metricsPort}] plain HTTP with only /livez, /readyz, /metrics
Protection settings (VALIDATOR_HA_POLLING_INTERVAL_MS, VALIDATOR_HA_SIGNING_TIMEOUT_MS,
VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS, VALIDATOR_HA_POOL_*, ...) are read from the environment.`;

/** Resolves an absolute path under HA_SIGNER_FS_ROOT (the test kubelet's container root); relative paths stay as they are. */
export function underFsRoot(fsRoot: string, path: string): string {
  if (!isAbsolute(path)) return resolve(path);
  return fsRoot === '' || fsRoot === '/' ? path : join(fsRoot, path);
}

export interface ParsedServeArgs {
  help: boolean;
  env: Record<string, string | undefined>;
}

/** Folds the flags into a copy of the environment, so flags and variables share one validation path. */
export function applyServeFlags(args: string[], env: Env): ParsedServeArgs {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const flag of Object.keys(FLAGS)) options[flag] = { type: 'string' };
  for (const flag of Object.keys(BOOLEAN_FLAGS)) options[flag] = { type: 'boolean' };
  const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
  const merged: Record<string, string | undefined> = { ...env };
  for (const [flag, variable] of Object.entries(FLAGS)) {
    const value = values[flag];
    if (typeof value === 'string') merged[variable] = value;
  }
  for (const [flag, variable] of Object.entries(BOOLEAN_FLAGS)) {
    if (values[flag] === true) merged[variable] = 'true';
  }
  return { help: values.help === true, env: merged };
}

function nonEmpty(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function flagAndVariable(variable: string): string {
  const flag = Object.entries({ ...FLAGS, ...BOOLEAN_FLAGS }).find(([, v]) => v === variable)?.[0];
  return flag ? `${variable} (--${flag})` : variable;
}

/** Validates every setting; throws ConfigError naming the first bad one. Reads no files. */
export function serveConfigFromEnv(env: Env): ServeConfig {
  const protectionEnv: Record<string, string | undefined> = { ...env };
  // Without an explicit node id, Kubernetes' pod name is unique per replica; the hostname is the last resort.
  if (nonEmpty(env, ENV.nodeId) === undefined) protectionEnv[ENV.nodeId] = nonEmpty(env, POD_NAME_ENV) ?? hostname();
  const protection = configFromEnv(protectionEnv);
  if (nonEmpty(env, ENV.haSigningEnabled) !== undefined && !protection.haSigningEnabled) {
    throw new ConfigError(ENV.haSigningEnabled, 'ha-signer serve always protects duties; unset it or set it to true');
  }
  if (!protection.databaseUrl)
    throw new ConfigError(
      flagAndVariable(ENV.databaseUrl),
      'is required: postgresql://user:password@host:5432/db of the protection database',
    );
  if (nonEmpty(env, ENV.poolConnectionTimeoutMs) === undefined)
    protection.poolConnectionTimeoutMs = DEFAULT_SERVE_POOL_CONNECTION_TIMEOUT_MS;
  resolveSignerConfig(protection); // names VALIDATOR_HA_ROLLUP_ADDRESS / VALIDATOR_HA_NODE_ID when missing

  const fsRoot = nonEmpty(env, SIGNER_ENV.fsRoot) ?? '';
  if (fsRoot !== '' && !isAbsolute(fsRoot))
    throw new ConfigError(SIGNER_ENV.fsRoot, `expected an absolute directory, got ${JSON.stringify(fsRoot)}`);
  const file = (name: string): string | undefined => {
    const raw = nonEmpty(env, name);
    return raw === undefined ? undefined : underFsRoot(fsRoot, raw);
  };
  const bool = (name: string): boolean => {
    const raw = nonEmpty(env, name);
    return raw === undefined ? false : parseBoolean(flagAndVariable(name), raw);
  };

  const listenHost = nonEmpty(env, SIGNER_ENV.listenHost) ?? '0.0.0.0';
  const portRaw = nonEmpty(env, SIGNER_ENV.port);
  const port = portRaw === undefined ? SIGNER_PORT : parseInteger(flagAndVariable(SIGNER_ENV.port), portRaw, 0, 65_535);
  const metricsPortRaw = nonEmpty(env, SIGNER_ENV.metricsPort);
  const metricsPort =
    metricsPortRaw === undefined ? undefined : parseInteger(flagAndVariable(SIGNER_ENV.metricsPort), metricsPortRaw, 0, 65_535);
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === port)
    throw new ConfigError(flagAndVariable(SIGNER_ENV.metricsPort), `must differ from ${SIGNER_ENV.port} (${port})`);

  let web3SignerUrl: string | undefined = nonEmpty(env, SIGNER_ENV.web3SignerUrl);
  if (web3SignerUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(web3SignerUrl);
    } catch {
      throw new ConfigError(flagAndVariable(SIGNER_ENV.web3SignerUrl), `expected an http(s) URL, got ${JSON.stringify(web3SignerUrl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError(flagAndVariable(SIGNER_ENV.web3SignerUrl), `expected an http(s) URL, got scheme ${url.protocol}`);
    }
    web3SignerUrl = url.toString();
  }

  const passwordFile = file(SIGNER_ENV.keystorePasswordFile);
  const passwordValue = env[SIGNER_ENV.keystorePassword];
  if (passwordFile !== undefined && passwordValue !== undefined) {
    throw new ConfigError(SIGNER_ENV.keystorePasswordFile, `set either it or ${SIGNER_ENV.keystorePassword}, not both`);
  }

  const auth = {
    disabled: bool(SIGNER_ENV.authDisabled),
    tokensFile: file(SIGNER_ENV.authTokensFile),
    serviceAccountsFile: file(SIGNER_ENV.authServiceAccountsFile),
  };
  if (
    !auth.disabled &&
    auth.tokensFile === undefined &&
    auth.serviceAccountsFile === undefined &&
    nonEmpty(env, SIGNER_ENV.jsonRpcClientsFile) === undefined
  ) {
    throw new ConfigError(
      `${flagAndVariable(SIGNER_ENV.authTokensFile)} / ${flagAndVariable(SIGNER_ENV.authServiceAccountsFile)}`,
      `authentication is on, but neither a tokens file nor a ServiceAccounts file is set; set one (or ${SIGNER_ENV.authDisabled}=true for tests and demos only)`,
    );
  }

  const logLevel = (nonEmpty(env, SIGNER_ENV.logLevel) ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(
      flagAndVariable(SIGNER_ENV.logLevel),
      `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    );

  if (bool(SIGNER_ENV.jsonRpcPodIdentity) && nonEmpty(env, SIGNER_ENV.jsonRpcClientsFile) === undefined) {
    throw new ConfigError(
      flagAndVariable(SIGNER_ENV.jsonRpcPodIdentity),
      `needs ${SIGNER_ENV.jsonRpcClientsFile}: the clients with a "serviceAccount" are listed there`,
    );
  }
  const chainRaw = nonEmpty(env, SIGNER_ENV.l1ChainId);
  let l1ChainId: bigint | undefined;
  if (chainRaw !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(chainRaw))
      throw new ConfigError(
        flagAndVariable(SIGNER_ENV.l1ChainId),
        `expected a positive decimal chain id (1 = mainnet, 11155111 = Sepolia), got ${JSON.stringify(chainRaw)}`,
      );
    l1ChainId = BigInt(chainRaw);
  }
  const proposerRaw = nonEmpty(env, SIGNER_ENV.slashingProposerAddress);
  if (proposerRaw !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(proposerRaw)) {
    throw new ConfigError(
      flagAndVariable(SIGNER_ENV.slashingProposerAddress),
      `expected a 0x-prefixed 20-byte address, got ${JSON.stringify(proposerRaw)}`,
    );
  }

  return {
    protection,
    listenHost,
    port,
    keysDir: underFsRoot(fsRoot, nonEmpty(env, SIGNER_ENV.keysDir) ?? DEFAULT_KEYS_DIR),
    keystorePassword:
      passwordFile !== undefined ? { file: passwordFile } : passwordValue !== undefined ? { value: passwordValue } : undefined,
    web3SignerUrl,
    auth,
    jsonRpcEnabled: bool(SIGNER_ENV.jsonRpcEnabled),
    jsonRpcClientsFile: file(SIGNER_ENV.jsonRpcClientsFile),
    jsonRpcPodIdentity: bool(SIGNER_ENV.jsonRpcPodIdentity),
    l1ChainId,
    slashingProposerAddress: proposerRaw?.toLowerCase(),
    logLevel,
    fsRoot,
    tls: tlsFilesFromEnv(env, (path) => underFsRoot(fsRoot, path)),
    metricsPort,
  };
}

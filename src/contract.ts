/**
 * The runtime contract: names the image, the signer (`ha-signer serve`), the operator's pod builders, the test
 * kubelet and the docs (docs/runtime-contract.md) must agree on. Change a name here and every user follows; a test
 * (test/signer/contract.test.ts) checks that the env the operator puts on signer pods is accepted by serve.
 */

/** The protection core's settings (VALIDATOR_HA_*), as Aztec's @aztec/validator-ha-signer names them. */
export { ENV as PROTECTION_ENV } from './protection/config.js';

/** `ha-signer serve` settings. */
export const SIGNER_ENV = {
  fsRoot: 'HA_SIGNER_FS_ROOT',
  listenHost: 'HA_SIGNER_LISTEN_HOST',
  port: 'HA_SIGNER_PORT',
  keysDir: 'HA_SIGNER_KEYS_DIR',
  keystorePasswordFile: 'HA_SIGNER_KEYSTORE_PASSWORD_FILE',
  keystorePassword: 'HA_SIGNER_KEYSTORE_PASSWORD',
  web3SignerUrl: 'HA_SIGNER_WEB3SIGNER_URL',
  authDisabled: 'HA_SIGNER_AUTH_DISABLED',
  authTokensFile: 'HA_SIGNER_AUTH_TOKENS_FILE',
  authServiceAccountsFile: 'HA_SIGNER_AUTH_SERVICE_ACCOUNTS_FILE',
  jsonRpcEnabled: 'HA_SIGNER_JSONRPC_ENABLED',
  /** Stock Aztec nodes allowed on the protected JSON-RPC (docs/aztec-nodes.md); re-read live. */
  jsonRpcClientsFile: 'HA_SIGNER_JSONRPC_CLIENTS_FILE',
  /** Recognise stock-node clients by their source pod's ServiceAccount (pods informer; RBAC list/watch pods). */
  jsonRpcPodIdentity: 'HA_SIGNER_JSONRPC_POD_IDENTITY',
  /** L1 chain id of the rollup: checked in typed data, used for eth_signTransaction. */
  l1ChainId: 'HA_SIGNER_L1_CHAIN_ID',
  /** An empire-model slashing proposer: its EmpireBase `Signal`s are slashing votes, not governance votes. */
  slashingProposerAddress: 'HA_SIGNER_SLASHING_PROPOSER_ADDRESS',
  logLevel: 'HA_SIGNER_LOG_LEVEL',
  /** PEM certificate chain and private key: the signing port speaks HTTPS, reloaded when the files change (src/signer/tls.ts). */
  tlsCertFile: 'HA_SIGNER_TLS_CERT_FILE',
  tlsKeyFile: 'HA_SIGNER_TLS_KEY_FILE',
  /** Plain-HTTP port serving only /livez, /readyz and /metrics (probes and scrapers never reach the signing API). */
  metricsPort: 'HA_SIGNER_METRICS_PORT',
} as const;

/** Set by Kubernetes (downward API) on signer pods: the default node id. */
export const POD_NAME_ENV = 'POD_NAME';

/** `ha-signer operator` settings. */
export const OPERATOR_ENV = {
  port: 'HA_SIGNER_OPERATOR_PORT',
  image: 'HA_SIGNER_OPERATOR_IMAGE',
} as const;

/** Where the operator mounts things in signer pods, and the signer's defaults for them. */
export const POD_PATHS = {
  keysDir: '/var/run/ha-signer/keys',
  authDir: '/var/run/ha-signer/auth',
  tokensFile: '/var/run/ha-signer/auth/tokens.json',
  serviceAccountsFile: '/var/run/ha-signer/auth/service-accounts.json',
  jsonRpcClientsFile: '/var/run/ha-signer/auth/jsonrpc-clients.json',
  keystorePasswordDir: '/var/run/ha-signer/keystore-password',
  keystorePasswordFile: '/var/run/ha-signer/keystore-password/password',
  /** A kubernetes.io/tls Secret (tls.crt, tls.key) mounted as a volume, never subPath, so rotation reaches the pod. */
  tlsDir: '/var/run/ha-signer/tls',
  tlsCertFile: '/var/run/ha-signer/tls/tls.crt',
  tlsKeyFile: '/var/run/ha-signer/tls/tls.key',
  tmp: '/tmp',
  /** Kubernetes' ServiceAccount files (read under HA_SIGNER_FS_ROOT). */
  serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount',
} as const;

/** Signer HTTP port: API, JSON-RPC, /livez, /readyz, /metrics. */
export const SIGNER_PORT = 8080;
/** Signer's plain-HTTP health and metrics port (/livez, /readyz, /metrics) as the operator sets it. */
export const SIGNER_METRICS_PORT = 8082;
/** Operator health and metrics port. */
export const OPERATOR_PORT = 8081;

/** Failover safety settings of `ha-signer serve` (src/signer/safety.ts, docs/protection.md). */
export const SAFETY_ENV = {
  /** Not ready, and no duties, while record commits are not synchronously replicated. */
  requireSynchronousReplication: 'HA_SIGNER_REQUIRE_SYNCHRONOUS_REPLICATION',
  /** External high-water marks in a JSON file on storage not restored with the database. */
  highWaterMarksFile: 'HA_SIGNER_HIGH_WATER_MARKS_FILE',
  /** External high-water marks in a ConfigMap, `<namespace>/<name>` (needs get/create/update on it). */
  highWaterMarksConfigMap: 'HA_SIGNER_HIGH_WATER_MARKS_CONFIGMAP',
} as const;

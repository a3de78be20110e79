/** Builds what the protected JSON-RPC needs at start-up: the live client list, the claim lookup and the typed-data rules. */
import { ConfigError, createPool } from '../protection/index.js';
import { ClaimsLookup } from '../protection/claims-lookup.js';
import { SIGNER_ENV } from '../contract.js';
import type { ServeConfig } from './config.js';
import { type JsonRpcClientEntry, parseJsonRpcClientsFile } from './jsonrpc-clients.js';
import { LiveFile, type LiveFileLogger } from './live-file.js';
import { type PodIdentitySource, kubernetesPodIdentity } from './pod-identity.js';
import type { SignerServerDeps } from './routes/context.js';

/**
 * Claim lookups are indexed reads, coalesced (ClaimsLookup: two statements in flight, concurrent lookups share the
 * next); a pool of their own keeps them out of the signing pool's queue.
 */
const LOOKUP_POOL_MAX = 2;

export interface JsonRpcSetup {
  deps: NonNullable<SignerServerDeps['jsonRpc']>;
  close(): Promise<void>;
}

export async function setUpJsonRpc(
  config: ServeConfig,
  rollupAddress: string,
  log: LiveFileLogger & { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void },
): Promise<JsonRpcSetup | undefined> {
  if (!config.jsonRpcEnabled && !config.jsonRpcClientsFile) return undefined;
  let clients: LiveFile<JsonRpcClientEntry[]> | undefined;
  if (config.jsonRpcClientsFile) {
    const file = config.jsonRpcClientsFile;
    const setting = `${SIGNER_ENV.jsonRpcClientsFile} (${file})`;
    try {
      clients = await LiveFile.open(file, (text) => parseJsonRpcClientsFile(setting, text), { log });
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(setting, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  let podIdentity: PodIdentitySource | undefined;
  if (config.jsonRpcPodIdentity) podIdentity = await kubernetesPodIdentity(config.fsRoot, log);
  const pool = createPool({ ...config.protection, poolMaxCount: LOOKUP_POOL_MAX, poolMinCount: 0 }, log);
  const lookup = new ClaimsLookup(pool, rollupAddress, LOOKUP_POOL_MAX);
  return {
    deps: {
      rules: { rollupAddress, chainId: config.l1ChainId, slashingProposerAddress: config.slashingProposerAddress },
      claims: (validatorAddress, messageHash) => lookup.find(validatorAddress, messageHash),
      clients,
      podIdentity,
    },
    close: async () => {
      clients?.close();
      await podIdentity?.stop();
      await pool.end();
    },
  };
}

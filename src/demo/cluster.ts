/** The demo's signer side: fresh validator keys and node tokens, a stand-in remote signer, three `serve` replicas. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keccak256, stringToHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { DemoDatabase } from './database.js';
import { freePort } from './database.js';
import { ROLLUP } from './duties.js';
import { type FakeWeb3Signer, startFakeWeb3Signer } from './fake-web3signer.js';
import { type SignerReplica, startReplica } from './replicas.js';

const VALIDATOR_COUNT = 4;
export const NODE_COUNT = 3;
/** Short lease so a killed replica's duties are taken over within the demo. */
export const LEASE_MS = 2_000;
/** Latency of the remote signer behind replica-1: a kill then strands duties mid-signing. */
export const REMOTE_SIGNER_DELAY_MS = 150;

/** What the run started, so that a stop request can end all of it whatever the run was doing. */
export interface Resources {
  database?: DemoDatabase;
  remote?: FakeWeb3Signer;
  replicas: SignerReplica[];
  dir?: string;
  keepDir: boolean;
}

export interface Cluster {
  validators: string[];
  /** One bearer token per simulated validator node. */
  tokens: string[];
  replicas: SignerReplica[];
}

export async function startCluster(options: {
  dir: string;
  databaseUrl: string;
  resources: Resources;
  checkpoint: () => void;
}): Promise<Cluster> {
  const { dir, resources, checkpoint } = options;
  const keys = Array.from({ length: VALIDATOR_COUNT }, () => generatePrivateKey());
  const validators = keys.map((key) => privateKeyToAccount(key).address.toLowerCase());
  const keysDir = join(dir, 'keys');
  await mkdir(keysDir, { mode: 0o700 });
  for (const [i, key] of keys.entries()) await writeFile(join(keysDir, `validator-${i}.key`), key, { mode: 0o600 });
  const tokens = Array.from({ length: NODE_COUNT }, (_, i) => `demo-node-${i}-${keccak256(stringToHex(`${dir}/${i}`)).slice(2, 34)}`);
  await writeFile(join(dir, 'tokens.json'), JSON.stringify(tokens.map((token, i) => ({ name: `node-${i}`, token, validators }))), {
    mode: 0o600,
  });
  const remote = (resources.remote = await startFakeWeb3Signer(keys));
  remote.setDelay(() => REMOTE_SIGNER_DELAY_MS);

  const baseEnv: Record<string, string> = {
    VALIDATOR_HA_DATABASE_URL: options.databaseUrl,
    VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
    VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: String(LEASE_MS),
    VALIDATOR_HA_SIGNING_TIMEOUT_MS: '8000',
    HA_SIGNER_KEYS_DIR: keysDir,
    HA_SIGNER_AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
    HA_SIGNER_LOG_LEVEL: 'warn',
  };
  // Registered in resources as soon as each starts, so a stop request ends every one that did.
  const replicas = resources.replicas;
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    checkpoint();
    const remoteEnv: Record<string, string> = i === 1 ? { HA_SIGNER_WEB3SIGNER_URL: remote.url } : {};
    replicas.push(
      startReplica({ nodeId: `replica-${i}`, port, env: { ...baseEnv, ...remoteEnv }, logFile: join(dir, `replica-${i}.log`) }),
    );
  }
  await Promise.all(replicas.map((replica) => replica.waitReady()));
  checkpoint();
  return { validators, tokens, replicas };
}

/**
 * The runtime contract between the operator and `ha-signer serve`: the env the operator's Deployment builder puts on
 * the signer container, with its valueFrom references resolved as Kubernetes would, is accepted by serve's config
 * parser and points at the paths the same Deployment mounts.
 */
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { POD_NAME_ENV, POD_PATHS, PROTECTION_ENV, SIGNER_ENV, SIGNER_PORT } from '../../src/contract.js';
import { buildDeployment, signerEnv } from '../../src/operator/desired/index.js';
import { serveConfigFromEnv } from '../../src/signer/config.js';
import { CTX, vhs } from '../operator/unit/fixtures.js';

const POD = 'sig-signer-5d8f7c9b4-x2x7q';
const DATABASE_URL = 'postgresql://signer:secret@db.val.svc:5432/validators';

/** What the kubelet does with the builder's env: downward API and Secret references become values. */
function resolve(env: k8s.V1EnvVar[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const variable of env) {
    if (variable.value !== undefined) out[variable.name] = variable.value;
    else if (variable.valueFrom?.fieldRef?.fieldPath === 'metadata.name') out[variable.name] = POD;
    else if (variable.valueFrom?.secretKeyRef) out[variable.name] = DATABASE_URL;
    else throw new Error(`unresolvable env ${variable.name}: ${JSON.stringify(variable.valueFrom)}`);
  }
  return out;
}

const variants = {
  'local keys, keystore password, tokens and ServiceAccounts, JSON-RPC, tuning': vhs({
    keys: { secretRef: { name: 'keys' }, passwordSecretRef: { name: 'pw' } },
    clients: { tokens: { secretRef: { name: 'tokens' } }, serviceAccounts: [{ namespace: 'val', name: 'node', validators: ['*'] }] },
    jsonRpc: true,
    signing: {
      pollingIntervalMs: 50,
      signingTimeoutMs: 4_000,
      maxStuckDutiesAgeMs: 10_000,
      signingOperationTimeoutMs: 2_000,
      oldDutiesMaxAgeHours: 48,
    },
    pool: { max: 20, min: 1, idleTimeoutMs: 5_000, connectionTimeoutMs: 2_000 },
  }),
  'remote signer, authentication off': vhs({
    keys: { web3signer: { url: 'http://web3signer.val.svc:9000' } },
    clients: { disableAuthentication: true },
  }),
};

describe("the operator's signer pod env is accepted by serve", () => {
  for (const [name, resource] of Object.entries(variants)) {
    it(name, () => {
      const env = resolve(signerEnv(resource));
      const config = serveConfigFromEnv(env);
      expect(config.protection.databaseUrl).toBe(DATABASE_URL);
      expect(config.protection.nodeId).toBe(POD);
      expect(config.protection.rollupAddress).toBe(resource.spec.rollup.address.toLowerCase());
      expect(config.port).toBe(SIGNER_PORT);
      expect(env[POD_NAME_ENV]).toBe(POD);
      // Every file the env names lies under a volume the Deployment mounts.
      const container = buildDeployment(resource, CTX, { secretsChecksum: 'x' }).spec!.template.spec!.containers[0]!;
      const mounted = (path: string): boolean =>
        (container.volumeMounts ?? []).some((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
      const files = [
        config.auth.tokensFile,
        config.auth.serviceAccountsFile,
        config.keystorePassword && 'file' in config.keystorePassword ? config.keystorePassword.file : undefined,
      ];
      if (!config.web3SignerUrl) files.push(config.keysDir);
      for (const file of files.filter((f): f is string => f !== undefined)) expect(mounted(file), file).toBe(true);
      expect(container.ports?.[0]?.containerPort).toBe(SIGNER_PORT);
    });
  }

  it('uses the contract names and paths', () => {
    const resource = variants['local keys, keystore password, tokens and ServiceAccounts, JSON-RPC, tuning'];
    const env = resolve(signerEnv(resource));
    expect(env[SIGNER_ENV.keysDir]).toBe(POD_PATHS.keysDir);
    expect(env[SIGNER_ENV.authTokensFile]).toBe(POD_PATHS.tokensFile);
    expect(env[SIGNER_ENV.authServiceAccountsFile]).toBe(POD_PATHS.serviceAccountsFile);
    expect(env[SIGNER_ENV.keystorePasswordFile]).toBe(POD_PATHS.keystorePasswordFile);
    expect(env[PROTECTION_ENV.signingTimeoutMs]).toBe('4000');
    const config = serveConfigFromEnv(env);
    expect(config).toMatchObject({
      jsonRpcEnabled: true,
      keysDir: POD_PATHS.keysDir,
      auth: { disabled: false, tokensFile: POD_PATHS.tokensFile },
    });
    expect(config.protection).toMatchObject({ signingTimeoutMs: 4_000, pollingIntervalMs: 50, poolMaxCount: 20 });
  });
});

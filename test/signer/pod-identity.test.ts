/**
 * Stock-node clients recognised by their source pod (POST /jsonrpc): the peer address resolved to a Running pod of
 * the index the pods informer feeds, its ServiceAccount checked against the live client list. The real server and
 * route through fastify's inject (which sets the peer address); the pods come from an in-memory index here, the
 * informer's wiring to an API server is not exercised by this test.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousAuthenticator } from '../../src/signer/auth.js';
import { LocalKeyBackend } from '../../src/signer/backends.js';
import { type JsonRpcClientEntry, parseJsonRpcClientsFile } from '../../src/signer/jsonrpc-clients.js';
import { LiveFile } from '../../src/signer/live-file.js';
import { SignerMetrics } from '../../src/signer/metrics.js';
import { PodIpIndex } from '../../src/signer/pod-identity.js';
import { ReadinessMonitor } from '../../src/signer/readiness.js';
import { buildSignerServer } from '../../src/signer/server.js';
import { KEYS, ROLLUP, hash } from './support.js';

let dir: string;
let app: FastifyInstance;
let clients: LiveFile<JsonRpcClientEntry[]>;
const index = new PodIpIndex();

const pod = (
  uid: string,
  ip: string,
  serviceAccount: string,
  extra: { hostNetwork?: boolean; phase?: string; namespace?: string } = {},
): k8s.V1Pod => ({
  metadata: { uid, name: `pod-${uid}`, namespace: extra.namespace ?? 'validators' },
  spec: { containers: [], serviceAccountName: serviceAccount, ...(extra.hostNetwork ? { hostNetwork: true } : {}) },
  status: { phase: extra.phase ?? 'Running', podIP: ip, podIPs: [{ ip }] },
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ha-signer-pod-identity-'));
  const file = join(dir, 'clients.json');
  await writeFile(
    file,
    JSON.stringify([{ name: 'aztec-sa', serviceAccount: { namespace: 'validators', name: 'aztec-node' }, validators: [KEYS[0]!.address] }]),
  );
  clients = await LiveFile.open(file, (text) => parseJsonRpcClientsFile('clients', text));
  const accounts = new Map(KEYS.map((k) => [k.address, privateKeyToAccount(k.privateKey)]));
  app = buildSignerServer({
    backend: new LocalKeyBackend(accounts),
    authenticator: anonymousAuthenticator,
    metrics: new SignerMetrics(),
    readiness: new ReadinessMonitor(),
    signer: () => undefined,
    rollupAddress: ROLLUP,
    nodeId: 'replica-0',
    jsonRpcEnabled: false,
    jsonRpc: {
      rules: { rollupAddress: ROLLUP, chainId: undefined, slashingProposerAddress: undefined },
      claims: async () => [],
      clients,
      podIdentity: { identityOf: (address) => index.identityOf(address), synced: () => true, stop: async () => {} },
    },
    logLevel: 'silent',
  });
  await app.ready();
  index.upsert(pod('a', '10.0.0.5', 'aztec-node'));
  index.upsert(pod('b', '10.0.0.6', 'other-app'));
  index.upsert(pod('host', '10.0.0.7', 'aztec-node', { hostNetwork: true }));
  index.upsert(pod('done', '10.0.0.8', 'aztec-node', { phase: 'Succeeded' }));
  index.upsert(pod('ns', '10.0.0.9', 'aztec-node', { namespace: 'elsewhere' }));
});

afterAll(async () => {
  clients?.close();
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

const rpc = async (remoteAddress: string, method: string, params: unknown[] = []) => {
  const response = await app.inject({ method: 'POST', url: '/jsonrpc', remoteAddress, payload: { jsonrpc: '2.0', id: 1, method, params } });
  return { status: response.statusCode, body: response.json() as { result?: unknown; error?: { code: number; message: string } } };
};

describe('source-pod identity', () => {
  it("accepts the listed ServiceAccount's running pod (also as an IPv4-mapped IPv6 peer) with that client's validators", async () => {
    expect(await rpc('10.0.0.5', 'eth_accounts')).toEqual({ status: 200, body: { jsonrpc: '2.0', id: 1, result: [KEYS[0]!.address] } });
    expect((await rpc('::ffff:10.0.0.5', 'eth_accounts')).status).toBe(200);
  });

  it('refuses other ServiceAccounts, other namespaces, hostNetwork and finished pods, and unknown addresses', async () => {
    for (const address of ['10.0.0.6', '10.0.0.9', '10.0.0.7', '10.0.0.8', '10.9.9.9']) {
      const answer = await rpc(address, 'eth_accounts');
      expect(answer.status, address).toBe(401);
      expect(answer.body.error?.code).toBe(-32001);
    }
  });

  it('matches nobody on an address two live pods claim, and forgets deleted pods', async () => {
    index.upsert(pod('a2', '10.0.0.5', 'aztec-node'));
    expect((await rpc('10.0.0.5', 'eth_accounts')).status).toBe(401);
    index.remove(pod('a2', '10.0.0.5', 'aztec-node'));
    expect((await rpc('10.0.0.5', 'eth_accounts')).status).toBe(200);
    index.remove(pod('a', '10.0.0.5', 'aztec-node'));
    expect((await rpc('10.0.0.5', 'eth_accounts')).status).toBe(401);
    index.upsert(pod('a', '10.0.0.5', 'aztec-node'));
  });

  it('keeps the protection rules for such a client: no claim, no signature', async () => {
    const answer = await rpc('10.0.0.5', 'eth_sign', [KEYS[0]!.address, hash('pod-unclaimed')]);
    expect(answer.body.error).toMatchObject({ code: -32010 });
    expect((await rpc('10.0.0.5', 'eth_sign', [KEYS[1]!.address, hash('pod-other')])).status).toBe(403);
  });

  it('refuses a client entry with both or neither credential', () => {
    expect(() => parseJsonRpcClientsFile('f', JSON.stringify([{ name: 'x', validators: ['*'] }]))).toThrow(/exactly one credential/);
    expect(() =>
      parseJsonRpcClientsFile(
        'f',
        JSON.stringify([{ name: 'x', secret: 'a'.repeat(40), serviceAccount: { namespace: 'n', name: 's' }, validators: ['*'] }]),
      ),
    ).toThrow(/exactly one credential/);
    expect(() => parseJsonRpcClientsFile('f', JSON.stringify([{ name: 'x', secret: 'short', validators: ['*'] }]))).toThrow(
      /f\[0\]\.secret \(x\)/,
    );
  });
});

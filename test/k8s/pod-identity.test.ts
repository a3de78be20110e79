/**
 * Source-pod identity of stock-node clients against a real API server: a `serve` process with
 * HA_SIGNER_JSONRPC_POD_IDENTITY=true watches Pods (the pods informer, KUBECONFIG = the test control plane) and
 * accepts a JSON-RPC call on POST /jsonrpc only from the address of a Running pod whose ServiceAccount is a listed
 * client. The pods' IPs are loopback addresses set through the status subresource (the pods are bound to a node that
 * no kubelet runs), and calls are made from those source addresses.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { type SignerReplica, startReplica } from '../../src/demo/replicas.js';
import { clients, createTestNamespace, describeK8s, k8sEnv, waitFor, type TestNamespace } from '../harness/k8s.js';
import { createTestDatabase } from '../support/postgres.js';
import { KEYS, ROLLUP, migratedDatabase } from '../signer/support.js';

function rpcFrom(
  localAddress: string,
  url: URL,
): Promise<{ status: number; body: { result?: unknown; error?: { code: number; message: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: '/jsonrpc',
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] }));
  });
}

describeK8s('stock-node clients recognised by their source pod', () => {
  let ns: TestNamespace;
  let dir: string;
  let replica: SignerReplica | undefined;

  beforeAll(async () => {
    ns = await createTestNamespace('podid');
    const { core } = clients();
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'aztec-node' } } });
    // Pods bound to a node no kubelet serves, their status (Running, a loopback IP) written as a kubelet would.
    for (const [name, serviceAccountName, ip] of [
      ['aztec-a', 'aztec-node', '127.0.0.2'],
      ['other', 'default', '127.0.0.3'],
    ] as const) {
      await core.createNamespacedPod({
        namespace: ns.name,
        body: {
          metadata: { name },
          spec: { nodeName: 'no-such-node', serviceAccountName, containers: [{ name: 'node', image: 'example.invalid/aztec:1' }] },
        },
      });
      const pod = await core.readNamespacedPod({ name, namespace: ns.name });
      pod.status = { ...pod.status, phase: 'Running', podIP: ip, podIPs: [{ ip }] };
      await core.replaceNamespacedPodStatus({ name, namespace: ns.name, body: pod });
    }
    dir = await mkdtemp(join(tmpdir(), 'ha-signer-podid-'));
    await mkdir(join(dir, 'keys'));
    await writeFile(join(dir, 'keys', 'k0'), KEYS[0]!.privateKey);
    await writeFile(
      join(dir, 'clients.json'),
      JSON.stringify([{ name: 'aztec-a', serviceAccount: { namespace: ns.name, name: 'aztec-node' }, validators: ['*'] }]),
    );
    const databaseUrl = await migratedDatabase(await createTestDatabase('signer_pod_identity'));
    replica = startReplica({
      nodeId: 'podid-0',
      port: await freePort(),
      logFile: join(dir, 'replica.log'),
      env: {
        VALIDATOR_HA_DATABASE_URL: databaseUrl,
        VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
        HA_SIGNER_KEYS_DIR: join(dir, 'keys'),
        HA_SIGNER_JSONRPC_CLIENTS_FILE: join(dir, 'clients.json'),
        HA_SIGNER_JSONRPC_POD_IDENTITY: 'true',
        HA_SIGNER_LOG_LEVEL: 'warn',
        KUBECONFIG: k8sEnv().kubeconfigPath!,
      },
    });
    await replica.waitReady();
  });

  afterAll(async () => {
    await replica?.stop(5_000);
    await ns?.delete();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("accepts the listed ServiceAccount's pod address, refuses others, and forgets a deleted pod", async () => {
    const url = new URL(replica!.url);
    const accepted = await waitFor(
      async () => {
        const answer = await rpcFrom('127.0.0.2', url);
        return answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 15_000, message: 'the client pod to be recognised' },
    );
    expect(accepted.body.result).toEqual([KEYS[0]!.address]);
    expect((await rpcFrom('127.0.0.3', url)).status).toBe(401);
    expect((await rpcFrom('127.0.0.1', url)).status).toBe(401);
    await clients().core.deleteNamespacedPod({ name: 'aztec-a', namespace: ns.name, gracePeriodSeconds: 0 });
    await waitFor(async () => (await rpcFrom('127.0.0.2', url)).status === 401, {
      timeoutMs: 15_000,
      message: 'the deleted pod to be forgotten',
    });
  });
});

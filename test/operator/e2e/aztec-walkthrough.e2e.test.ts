/**
 * docs/aztec-nodes.md's walkthrough, executed: its manifest and its kubectl commands, read from the doc and run as
 * written (only the namespace, the validator address and the database are the test's) on the test control plane with
 * the operator, the migration Job and the signer pods running for real; then what a stock Aztec node does with the
 * result, with Aztec's published code (RemoteSigner from @aztec/node-keystore, @aztec/validator-ha-signer on the
 * protection database, composed as HAKeyStore composes them: test/signer/stock-node.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { type Hex, keccak256, recoverMessageAddress, stringToHex } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../../harness/controlPlane.js';
import { clients, createTestNamespace, describeK8s, k8sEnv, serviceEndpoints, type TestNamespace } from '../../harness/k8s.js';
import { StockNode } from '../../signer/stock-node.js';
import { dutyRows } from '../../signer/support.js';
import { createTestDatabase } from '../../support/postgres.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import { createSecret, validatorKey } from './support.js';

const DOC_NAMESPACE = 'validators';
const DOC_VALIDATOR = '0x1111111111111111111111111111111111111111';

/** The walkthrough section's fenced blocks, in order. */
function walkthroughBlocks(): { lang: string; text: string }[] {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs/aztec-nodes.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Walkthrough'), doc.indexOf('\n## ', doc.indexOf('## Walkthrough') + 1));
  return [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, text: m[2]! }));
}

describeK8s('docs/aztec-nodes.md walkthrough on the test control plane', () => {
  let ns: TestNamespace;
  let op: OperatorProcess | undefined;
  let dir: string;
  const nodes: StockNode[] = [];
  const key = validatorKey() as Hex;
  const address = privateKeyToAddress(key).toLowerCase();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ha-signer-walkthrough-'));
    ns = await createTestNamespace('walk');
    // The prerequisites of step 1 (operator.md's example): the keys and database Secrets under the doc's names.
    await createSecret(ns.name, 'validator-keys', { 'validator-1': key });
    await createSecret(ns.name, 'signer-db', { uri: await createTestDatabase('aztec_walkthrough') });
    op = await startOperatorProcess({ namespace: ns.name });
  });
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await op?.stop();
    await ns?.delete();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'the manifest and commands as written, then eth_accounts and a claimed eth_sign through the generated URL',
    { timeout: 300_000 },
    async () => {
      const blocks = walkthroughBlocks();
      const manifests = blocks.filter((b) => b.lang === 'yaml');
      const commands = blocks.filter((b) => b.lang === 'sh').flatMap((b) => b.text.split('\n').filter((l) => l.startsWith('kubectl ')));
      expect(manifests).toHaveLength(1);
      expect(commands).toHaveLength(4);
      const ours = (text: string) =>
        text
          .replaceAll(`namespace: ${DOC_NAMESPACE}`, `namespace: ${ns.name}`)
          .replaceAll(`-n ${DOC_NAMESPACE} `, `-n ${ns.name} `)
          .replaceAll(DOC_VALIDATOR, address);
      const manifest = ours(manifests[0]!.text);
      expect(manifest).toContain('aztecNodes:');
      writeFileSync(path.join(dir, 'mainnet-v1.yaml'), manifest);
      const env = k8sEnv();
      const run = (command: string) =>
        execFileSync('bash', ['-o', 'pipefail', '-c', ours(command)], {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, KUBECONFIG: env.kubeconfigPath!, PATH: `${path.dirname(env.kubectl!)}:${process.env.PATH ?? ''}` },
          stdio: ['ignore', 'pipe', 'pipe'],
        });

      // Step 1: apply, wait for Ready (the command's own timeout: 5 minutes).
      const applyStarted = Date.now();
      expect(run(commands[0]!)).toContain('validatorhasigner.ha-signer.dev/mainnet-v1');
      expect(run(commands[1]!)).toContain('condition met');
      console.log(`walkthrough: Ready ${Date.now() - applyStarted} ms after kubectl apply`);

      // Step 2: the env from status, the URL from the node's Secret.
      const statusEnv = JSON.parse(run(commands[2]!)) as k8s.V1EnvVar[];
      const url = run(commands[3]!);
      expect(statusEnv.map((e) => e.name)).toEqual([
        'VALIDATOR_HA_SIGNING_ENABLED',
        'VALIDATOR_HA_DATABASE_URL',
        'VALIDATOR_HA_NODE_ID',
        'WEB3_SIGNER_URL',
        'VALIDATOR_ADDRESSES',
      ]);
      expect(url).toMatch(new RegExp(`^http://mainnet-v1\\.${ns.name}\\.svc:8080/jsonrpc/[0-9a-f]{64}$`));
      expect(JSON.stringify(statusEnv)).not.toContain(url.split('/').at(-1)!);

      // Step 3: resolve each variable as the kubelet would for pod aztec-validator-a-0 (the listed node id).
      const podName = 'aztec-validator-a-0';
      const resolve = async (e: k8s.V1EnvVar): Promise<string> => {
        if (e.value !== undefined) return e.value;
        if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') return podName;
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) throw new Error(`env ${e.name}: neither a value, the pod name nor a Secret key: ${JSON.stringify(e)}`);
        const secret = await clients().core.readNamespacedSecret({ namespace: ns.name, name: ref.name! });
        return Buffer.from(secret.data![ref.key]!, 'base64').toString();
      };
      const podEnv = Object.fromEntries(await Promise.all(statusEnv.map(async (e) => [e.name, await resolve(e)] as const)));
      expect(podEnv.VALIDATOR_HA_SIGNING_ENABLED).toBe('true');
      expect(podEnv.VALIDATOR_HA_NODE_ID).toBe(podName);
      expect(podEnv.WEB3_SIGNER_URL).toBe(url);
      expect(podEnv.VALIDATOR_ADDRESSES).toBe(address);
      const rollup = /address: "(0x[0-9a-f]{40})"/.exec(manifest)![1]!;

      // Step 5: a stock node. No cluster DNS on the test control plane: the Service host becomes a ready endpoint.
      const [endpoint] = await serviceEndpoints(ns.name, 'mainnet-v1');
      expect(endpoint).toBeDefined();
      const reachable = url.replace(`http://mainnet-v1.${ns.name}.svc:8080`, `http://${endpoint!.ip}:${endpoint!.port}`);
      const node = await StockNode.start({
        nodeId: podEnv.VALIDATOR_HA_NODE_ID!,
        url: reachable,
        rollup,
        databaseUrl: podEnv.VALIDATOR_HA_DATABASE_URL!,
      });
      nodes.push(node);
      await node.validateAccess(podEnv.VALIDATOR_ADDRESSES!.split(','));
      await expect(
        StockNode.start({ nodeId: 'x', url: reachable.replace(/[0-9a-f]{64}$/, 'f'.repeat(64)), rollup }).then((n) =>
          n.validateAccess([address]),
        ),
      ).rejects.toThrow(/401/);

      const digest = keccak256(stringToHex(`walkthrough block proposal ${ns.name}`));
      const signature = await node.signMessage(address, digest, {
        dutyType: 'BLOCK_PROPOSAL',
        slot: 7n,
        blockNumber: 1n,
        blockIndexWithinCheckpoint: 0,
      });
      expect((await recoverMessageAddress({ message: { raw: digest }, signature: signature as Hex })).toLowerCase()).toBe(address);
      const rows = await dutyRows(podEnv.VALIDATOR_HA_DATABASE_URL!, address);
      expect(rows.map((r) => `${r.duty_type} ${r.slot} ${r.status} ${r.node_id}`)).toEqual([`BLOCK_PROPOSAL 7 signed ${podName}`]);

      // The same URL without the node's HA claim (its HA signing off): the digest is refused.
      const haOff = await StockNode.start({ nodeId: podName, url: reachable, rollup });
      const unclaimed = keccak256(stringToHex(`walkthrough unclaimed ${ns.name}`));
      nodes.push(haOff);
      const refused = await haOff.signMessage(address, unclaimed, { dutyType: 'BLOCK_PROPOSAL', slot: 8n }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ name: 'SignerError', errorCode: -32010 });
      expect(await dutyRows(podEnv.VALIDATOR_HA_DATABASE_URL!, address)).toHaveLength(1);
    },
  );
});

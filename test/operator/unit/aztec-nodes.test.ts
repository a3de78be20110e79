/** spec.clients.aztecNodes → the Secrets and pod settings the operator builds, checked against the signer's own parser. */
import { describe, expect, it } from 'vitest';
import {
  aztecNodeEnv,
  buildDeployment,
  desiredWorkload,
  generateAztecNodeSecret,
  jsonRpcClientsFile,
} from '../../../src/operator/desired/index.js';
import { parseJsonRpcClientsFile } from '../../../src/signer/jsonrpc-clients.js';
import { CTX, vhs } from './fixtures.js';

const V = `0x${'12'.repeat(20)}`;
const withNodes = () =>
  vhs({
    clients: {
      aztecNodes: [
        { name: 'node-a', validators: [V.toUpperCase().replace('0X', '0x')], nodeIds: ['aztec-0'], allowUnclaimedDigests: true },
        { name: 'node-b', validators: ['*'] },
      ],
    },
  });
const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

describe('stock Aztec node clients', () => {
  it('the clients file the operator writes is accepted by the signer, with every opt-in carried over', () => {
    const secrets = new Map([
      ['node-a', generateAztecNodeSecret()],
      ['node-b', generateAztecNodeSecret()],
    ]);
    const entries = parseJsonRpcClientsFile('HA_SIGNER_JSONRPC_CLIENTS_FILE', jsonRpcClientsFile(withNodes(), secrets));
    expect(entries.map((e) => [e.name, e.allowUnclaimedDigests, e.allowTransactions, e.nodeIds ? [...e.nodeIds] : undefined])).toEqual([
      ['node-a', true, false, ['aztec-0']],
      ['node-b', false, false, undefined],
    ]);
    expect(entries[0]!.allows(V)).toBe(true);
    expect(entries[0]!.allows(`0x${'34'.repeat(20)}`)).toBe(false);
  });

  it('one owned Secret per node with its URL, the clients Secret mounted into the pods, the JSON-RPC on', () => {
    const secrets = new Map([
      ['node-a', 'a'.repeat(64)],
      ['node-b', 'b'.repeat(64)],
    ]);
    const objs = desiredWorkload(withNodes(), CTX, { secretsChecksum: 'x', serviceMonitorCrd: false, aztecNodeSecrets: secrets });
    const nodeSecret = objs.find((o) => o.metadata!.name === 'sig-aztec-node-a') as {
      data: Record<string, string>;
      metadata: { ownerReferences: unknown[] };
    };
    expect(decode(nodeSecret.data.WEB3_SIGNER_URL!)).toBe(`http://sig.val.svc:8080/jsonrpc/${'a'.repeat(64)}`);
    expect(nodeSecret.metadata.ownerReferences).toHaveLength(1);
    expect(objs.map((o) => `${o.kind}/${o.metadata!.name}`)).toContain('Secret/sig-jsonrpc-clients');
    const dep = objs.find((o) => o.kind === 'Deployment') as ReturnType<typeof buildDeployment>;
    const env = Object.fromEntries(dep.spec!.template.spec!.containers[0]!.env!.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      HA_SIGNER_JSONRPC_ENABLED: 'true',
      HA_SIGNER_JSONRPC_CLIENTS_FILE: '/var/run/ha-signer/auth/jsonrpc-clients.json',
    });
    const auth = dep.spec!.template.spec!.volumes!.find((v) => v.name === 'auth')!;
    expect(auth.projected!.sources).toContainEqual({
      secret: { name: 'sig-jsonrpc-clients', items: [{ key: 'jsonrpc-clients.json', path: 'jsonrpc-clients.json' }] },
    });
    // Another secret for a node rolls the pods (checksum annotation), without putting the secret in the template.
    const other = desiredWorkload(withNodes(), CTX, {
      secretsChecksum: 'x',
      serviceMonitorCrd: false,
      aztecNodeSecrets: new Map([...secrets, ['node-a', 'c'.repeat(64)]]),
    });
    const ann = (d: unknown) => (d as typeof dep).spec!.template.metadata!.annotations!['ha-signer.dev/clients-checksum'];
    expect(ann(other.find((o) => o.kind === 'Deployment'))).not.toBe(ann(dep));
    expect(JSON.stringify(dep)).not.toContain('a'.repeat(64));
  });

  it('status env for the node pods: HA on, the database Secret referenced (not copied), node id, WEB3_SIGNER_URL, addresses', () => {
    const env = aztecNodeEnv(withNodes(), { name: 'node-a', validators: [V] });
    expect(env).toEqual([
      { name: 'VALIDATOR_HA_SIGNING_ENABLED', value: 'true' },
      { name: 'VALIDATOR_HA_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'uri' } } },
      { name: 'VALIDATOR_HA_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'WEB3_SIGNER_URL', valueFrom: { secretKeyRef: { name: 'sig-aztec-node-a', key: 'WEB3_SIGNER_URL' } } },
      { name: 'VALIDATOR_ADDRESSES', value: V },
    ]);
    expect(aztecNodeEnv(withNodes(), { name: 'node-b', validators: ['*'] }).map((e) => e.name)).not.toContain('VALIDATOR_ADDRESSES');
  });
});

describe('stock Aztec node clients: NetworkPolicy', () => {
  it("admits each node's declared peers on the signer port", async () => {
    const { buildNetworkPolicy } = await import('../../../src/operator/desired/index.js');
    const peer = { podSelector: { matchLabels: { app: 'aztec-node' } } };
    const np = buildNetworkPolicy(vhs({ clients: { aztecNodes: [{ name: 'node-a', validators: ['*'], from: [peer] }] } }));
    expect(np.spec!.ingress).toEqual([{ _from: [peer], ports: [{ protocol: 'TCP', port: 8080 }] }]);
  });
});

/**
 * Stock Aztec validator nodes as clients (spec.clients.aztecNodes). A stock node sends no header and uses its
 * remote-signer URL as given, so its credential is a generated secret in the URL path (POST /jsonrpc/<secret>).
 * Per node an owned Secret `<resource>-aztec-<node>` holds that secret and WEB3_SIGNER_URL; the signer pods read
 * every node from one owned Secret in the signer's clients-file format (src/signer/jsonrpc-clients.ts). The database
 * URI is never copied: the node's pods reference the resource's database Secret. Pure, except for generateSecret.
 */
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { PROTECTION_ENV } from '../../contract.js';
import type { AztecNodeClient, ValidatorHASignerResource } from '../types.js';
import { hash, names, ownedMeta } from './names.js';
import { endpointUrl } from './service.js';

export const JSONRPC_CLIENTS_KEY = 'jsonrpc-clients.json';
export const AZTEC_NODE_SECRET_KEY = 'secret';
export const AZTEC_NODE_URL_KEY = 'WEB3_SIGNER_URL';

export function aztecNodesOf(vhs: ValidatorHASignerResource): AztecNodeClient[] {
  return vhs.spec.clients?.disableAuthentication ? [] : (vhs.spec.clients?.aztecNodes ?? []);
}

export function aztecNodeSecretName(vhs: ValidatorHASignerResource, node: { name: string }): string {
  return `${vhs.metadata.name}-aztec-${node.name}`;
}

/** 32 random bytes, hex: what the signer accepts as a URL secret (32–256 URL-safe characters). */
export function generateAztecNodeSecret(): string {
  return randomBytes(32).toString('hex');
}

export function aztecNodeUrl(vhs: ValidatorHASignerResource, secret: string): string {
  return `${endpointUrl(vhs)}/jsonrpc/${secret}`;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export function buildAztecNodeSecret(vhs: ValidatorHASignerResource, node: AztecNodeClient, secret: string): k8s.V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: ownedMeta(vhs, aztecNodeSecretName(vhs, node), 'aztec-node', { labels: { 'ha-signer.dev/aztec-node': node.name } }),
    data: { [AZTEC_NODE_SECRET_KEY]: b64(secret), [AZTEC_NODE_URL_KEY]: b64(aztecNodeUrl(vhs, secret)) },
  };
}

/** The signer's clients file (`HA_SIGNER_JSONRPC_CLIENTS_FILE`), from each node and its secret. */
export function jsonRpcClientsFile(vhs: ValidatorHASignerResource, secrets: ReadonlyMap<string, string>): string {
  const entries = aztecNodesOf(vhs).map((n) => ({
    name: n.name,
    secret: secrets.get(n.name)!,
    validators: n.validators.map((v) => (v === '*' ? v : v.toLowerCase())),
    ...(n.nodeIds ? { nodeIds: n.nodeIds } : {}),
    allowUnclaimedDigests: n.allowUnclaimedDigests ?? false,
    allowTransactions: n.allowTransactions ?? false,
  }));
  return `${JSON.stringify(entries, null, 2)}\n`;
}

export function buildJsonRpcClientsSecret(vhs: ValidatorHASignerResource, file: string): k8s.V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: ownedMeta(vhs, names.jsonRpcClientsSecret(vhs), 'signer'),
    data: { [JSONRPC_CLIENTS_KEY]: b64(file) },
  };
}

/** Checksum of the clients file for the pod template (a change rolls the pods; the hash reveals no secret). */
export function jsonRpcClientsChecksum(file: string): string {
  return hash(file, 64);
}

/** The env variables a stock Aztec node's pods need (listed in status; every value traced to its source). */
export function aztecNodeEnv(vhs: ValidatorHASignerResource, node: AztecNodeClient): k8s.V1EnvVar[] {
  const db = vhs.spec.database.secretRef;
  const explicit = node.validators.filter((v) => v !== '*');
  return [
    { name: PROTECTION_ENV.haSigningEnabled, value: 'true' },
    { name: PROTECTION_ENV.databaseUrl, valueFrom: { secretKeyRef: { name: db.name, key: db.key ?? 'uri' } } },
    // Unique per pod; with nodeIds set, the pods' names must be among them.
    { name: PROTECTION_ENV.nodeId, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'WEB3_SIGNER_URL', valueFrom: { secretKeyRef: { name: aztecNodeSecretName(vhs, node), key: AZTEC_NODE_URL_KEY } } },
    ...(explicit.length > 0 ? [{ name: 'VALIDATOR_ADDRESSES', value: explicit.map((v) => v.toLowerCase()).join(',') }] : []),
  ];
}

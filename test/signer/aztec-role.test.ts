/**
 * The least database privileges docs/aztec-nodes.md gives a stock Aztec node's own HA signer: Aztec's published
 * ValidatorHASigner on a role with only those grants starts, claims, records and releases duties on a database
 * ha-signer migrated, while the signer service signs through the protected JSON-RPC.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { keccak256, recoverMessageAddress, stringToHex, type Hex } from 'viem';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../support/postgres.js';
import { StockNode } from './stock-node.js';
import { KEYS, ROLLUP, dutyRows, migratedDatabase, signerFixture, type SignerFixture } from './support.js';

const SECRET = 'least-privilege-secret-0123456789abcdef';
/** Exactly the grants of docs/aztec-nodes.md ("Database privileges of the node's role"). */
const GRANTS = [
  'GRANT SELECT ON schema_version, ha_signer_rollup_binding, ha_signer_watermarks TO aztec_node_role',
  'GRANT SELECT, INSERT, UPDATE, DELETE ON validator_duties TO aztec_node_role',
];

let fixture: SignerFixture;
let databaseUrl: string;
let nodeUrl: string;
let node: StockNode | undefined;

beforeAll(async () => {
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_aztec_role'));
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await admin.query(
      "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aztec_node_role') THEN CREATE ROLE aztec_node_role LOGIN PASSWORD 'aztec-node-pw'; END IF; END $$",
    );
    await admin.query(`GRANT CONNECT ON DATABASE "${new URL(databaseUrl).pathname.slice(1)}" TO aztec_node_role`);
    for (const grant of GRANTS) await admin.query(grant);
  } finally {
    await admin.end();
  }
  const url = new URL(databaseUrl);
  url.username = 'aztec_node_role';
  url.password = 'aztec-node-pw';
  nodeUrl = url.toString();
  fixture = await signerFixture(databaseUrl);
  const clientsFile = join(fixture.dir, 'clients', 'clients.json');
  await mkdir(join(fixture.dir, 'clients'));
  await writeFile(clientsFile, JSON.stringify([{ name: 'aztec-least', secret: SECRET, validators: ['*'], nodeIds: ['aztec-least'] }]));
  await fixture.start('least-0', { HA_SIGNER_JSONRPC_CLIENTS_FILE: clientsFile });
});

afterAll(async () => {
  await node?.stop();
  await fixture?.stopAll();
});

it("runs Aztec's HA signer on a role with only the documented grants", async () => {
  node = await StockNode.start({
    nodeId: 'aztec-least',
    url: `${fixture.replicas[0]!.url}/jsonrpc/${SECRET}`,
    rollup: ROLLUP,
    databaseUrl: nodeUrl,
  });
  const validator = KEYS[0]!.address;
  const digest = keccak256(stringToHex('least-privilege')) as Hex;
  const signature = await node.signMessage(validator, digest, { dutyType: 'ATTESTATION', slot: 900n, blockNumber: 1n });
  expect((await recoverMessageAddress({ message: { raw: digest }, signature: signature as Hex })).toLowerCase()).toBe(validator);
  await expect(node.signMessage(validator, digest, { dutyType: 'ATTESTATION', slot: 900n, blockNumber: 1n })).rejects.toMatchObject({
    name: 'DutyAlreadySignedError',
  });
  // A refused signature (another validator's claim) releases the node's claim: DELETE under its own token.
  await expect(
    node.signMessage(
      validator,
      keccak256(stringToHex('released')),
      { dutyType: 'ATTESTATION', slot: 901n, blockNumber: 1n },
      KEYS[1]!.address,
    ),
  ).rejects.toMatchObject({ errorCode: -32010 });
  const rows = await dutyRows(databaseUrl, validator);
  expect(rows).toEqual([expect.objectContaining({ slot: '900', status: 'signed', node_id: 'aztec-least', signature })]);
});

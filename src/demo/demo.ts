/**
 * `npm run demo`: three signer replicas (separate `ha-signer serve` processes) on one PostgreSQL, three simulated
 * HA validator nodes with the same keys signing every duty of every slot through RemoteHASigner, one replica
 * SIGKILLed mid-run. Ends with a check of the database and of every signature the nodes received: each duty signed
 * exactly once, never two different signatures for one duty. Exits 0 only if that holds.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Hex, hashTypedData, keccak256, recoverAddress, recoverMessageAddress, stringToHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { RemoteHASigner } from '../client/index.js';
import { type RunningPostgres, externalPostgres, freePort, startEmbeddedPostgres } from '../dev/embedded-postgres.js';
import { DutyAlreadySignedError, DutyType, ENV, SlashingProtectionError, runMigrations } from '../protection/index.js';
import { startFakeWeb3Signer, type FakeWeb3Signer } from './fake-web3signer.js';
import { type SignerReplica, startReplica } from './replicas.js';

const ROLLUP = '0x000000000000000000000000000000000000de30';
const VALIDATOR_COUNT = 4;
const NODE_COUNT = 3;
const SLOTS = 12;
const FIRST_SLOT = 100;
const SLOT_MS = 1_000;
/** The slot during which replica-1 is SIGKILLed, and how long after the slot starts. */
const KILL_SLOT = FIRST_SLOT + 5;
const KILL_AFTER_MS = 60;
/** Short lease so a killed replica's duties are taken over within the demo. */
const LEASE_MS = 2_000;
/** Latency of the remote signer behind replica-1: a kill then strands duties mid-signing. */
const REMOTE_SIGNER_DELAY_MS = 150;
/** Every EQUIVOCATION_EVERY-th slot, node-2 builds a different block 0 than its peers (a real HA hazard). */
const EQUIVOCATION_EVERY = 3;

interface Duty {
  key: string;
  validator: string;
  slot: number;
  dutyType: DutyType;
  blockIndexWithinCheckpoint?: number;
  vote: boolean;
}

interface Tally {
  signed: number;
  alreadySigned: number;
  refused: number;
  errors: number;
  failovers: number;
}

const newTally = (): Tally => ({ signed: 0, alreadySigned: 0, refused: 0, errors: 0, failovers: 0 });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function dutiesOfSlot(slot: number, validators: string[]): Duty[] {
  const duties: Duty[] = [];
  const add = (validator: string, dutyType: DutyType, blockIndexWithinCheckpoint?: number): void => {
    duties.push({
      key: `${validator}/${slot}/${dutyType}/${blockIndexWithinCheckpoint ?? -1}`,
      validator,
      slot,
      dutyType,
      ...(blockIndexWithinCheckpoint !== undefined ? { blockIndexWithinCheckpoint } : {}),
      vote: dutyType === DutyType.GOVERNANCE_VOTE || dutyType === DutyType.SLASHING_VOTE,
    });
  };
  const proposer = validators[slot % validators.length]!;
  for (let index = 0; index < 3; index++) add(proposer, DutyType.BLOCK_PROPOSAL, index);
  add(proposer, DutyType.CHECKPOINT_PROPOSAL);
  add(proposer, DutyType.ATTESTATIONS_AND_SIGNERS);
  for (const validator of validators) add(validator, DutyType.ATTESTATION);
  if (slot % 4 === 0) {
    add(proposer, DutyType.GOVERNANCE_VOTE);
    add(proposer, DutyType.SLASHING_VOTE);
  }
  return duties;
}

/** What a node signs for a duty: a hash (EIP-191 personal) or EIP-712 typed data (digest) for votes. */
function payloadOf(duty: Duty, nodeIndex: number): { messageHash: Hex; typedData?: ReturnType<typeof voteTypedData> } {
  if (duty.vote) {
    const typedData = voteTypedData(duty);
    return { messageHash: hashTypedData(typedData), typedData };
  }
  const divergent = duty.dutyType === DutyType.BLOCK_PROPOSAL && duty.blockIndexWithinCheckpoint === 0 && duty.slot % EQUIVOCATION_EVERY === 0 && nodeIndex === 2;
  return { messageHash: keccak256(stringToHex(`${ROLLUP}/${duty.key}${divergent ? '/another-block' : ''}`)) };
}

function voteTypedData(duty: Duty) {
  return {
    domain: { name: 'Demo Governance', version: '1', chainId: 31337, verifyingContract: ROLLUP as Hex },
    types: { Vote: [{ name: 'slot', type: 'uint256' }, { name: 'kind', type: 'string' }, { name: 'validator', type: 'address' }] },
    primaryType: 'Vote' as const,
    message: { slot: String(duty.slot), kind: duty.dutyType, validator: duty.validator as Hex },
  };
}

export async function demoCommand(_args: string[]): Promise<void> {
  const started = Date.now();
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  say('ha-signer demo: 3 signer replicas, 3 HA validator nodes with the same keys, one replica killed mid-run\n');

  const dir = await mkdtemp(join(tmpdir(), 'ha-signer-demo-'));
  let postgres: RunningPostgres | undefined;
  let remote: FakeWeb3Signer | undefined;
  const replicas: SignerReplica[] = [];
  let keepLogs = true; // cleared once the check passed
  try {
    const externalUrl = process.env[ENV.databaseUrl];
    let databaseUrl: string;
    if (externalUrl) {
      databaseUrl = externalUrl;
      say(`database: ${ENV.databaseUrl} (existing PostgreSQL)`);
    } else {
      say('database: starting an embedded PostgreSQL ...');
      postgres = await startEmbeddedPostgres();
      databaseUrl = await externalPostgres(postgres.adminUrl).createDatabase('ha_signer_demo');
    }
    const applied = await runMigrations({ databaseUrl, direction: 'up', rollupAddress: ROLLUP });
    say(`migrations: ${applied.length ? applied.join(', ') : 'already current'}; bound to rollup ${ROLLUP}`);

    const keys = Array.from({ length: VALIDATOR_COUNT }, () => generatePrivateKey());
    const validators = keys.map((key) => privateKeyToAccount(key).address.toLowerCase());
    const keysDir = join(dir, 'keys');
    await mkdir(keysDir, { mode: 0o700 });
    for (const [i, key] of keys.entries()) await writeFile(join(keysDir, `validator-${i}.key`), key, { mode: 0o600 });
    const tokens = Array.from({ length: NODE_COUNT }, (_, i) => `demo-node-${i}-${keccak256(stringToHex(`${dir}/${i}`)).slice(2, 34)}`);
    await writeFile(join(dir, 'tokens.json'), JSON.stringify(tokens.map((token, i) => ({ name: `node-${i}`, token, validators: validators }))), { mode: 0o600 });
    remote = await startFakeWeb3Signer(keys);
    remote.setDelay(() => REMOTE_SIGNER_DELAY_MS);

    const baseEnv: Record<string, string> = {
      VALIDATOR_HA_DATABASE_URL: databaseUrl,
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
      VALIDATOR_HA_MAX_STUCK_DUTIES_AGE_MS: String(LEASE_MS),
      VALIDATOR_HA_SIGNING_TIMEOUT_MS: '8000',
      HA_SIGNER_KEYS_DIR: keysDir,
      HA_SIGNER_AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
      HA_SIGNER_LOG_LEVEL: 'warn',
    };
    for (let i = 0; i < 3; i++) {
      const remoteEnv: Record<string, string> = i === 1 ? { HA_SIGNER_WEB3SIGNER_URL: remote.url } : {};
      replicas.push(startReplica({ nodeId: `replica-${i}`, port: await freePort(), env: { ...baseEnv, ...remoteEnv }, logFile: join(dir, `replica-${i}.log`) }));
    }
    await Promise.all(replicas.map((replica) => replica.waitReady()));
    say(`replicas: ${replicas.map((r) => `${r.nodeId} ${r.url}`).join(', ')} (replica-1 signs through a remote signer, ${REMOTE_SIGNER_DELAY_MS} ms per signature)`);
    say(`validators: ${validators.join(', ')}; lease ${LEASE_MS} ms`);
    say('per slot: signatures = answers carrying a signature (a node that lost an answer to the kill gets the same one back),');
    say(`already-signed / refused = 409 DutyAlreadySigned / SlashingProtection (node-2 builds a different block 0 every ${EQUIVOCATION_EVERY}rd slot)\n`);

    const tally = newTally();
    const nodes = tokens.map(
      (token, i) =>
        new RemoteHASigner({
          // Each node prefers its own replica and fails over to the others.
          endpoints: [0, 1, 2].map((k) => replicas[(i + k) % 3]!.url),
          token,
          timeoutMs: 15_000,
          onFailover: () => void tally.failovers++,
        }),
    );
    /** Every signature any node was given, per duty: must be one per duty. */
    const received = new Map<string, Set<string>>();
    const requested = new Map<string, Duty>();
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const runStart = Date.now();
    try {
      for (let s = 0; s < SLOTS; s++) {
        const slot = FIRST_SLOT + s;
        const slotStart = runStart + s * SLOT_MS;
        await sleep(slotStart - Date.now());
        const before = { ...tally };
        const duties = dutiesOfSlot(slot, validators);
        for (const duty of duties) requested.set(duty.key, duty);
        let killed = false;
        if (slot === KILL_SLOT) {
          setTimeout(() => {
            replicas[1]!.kill('SIGKILL');
            killed = true;
          }, KILL_AFTER_MS);
        }
        await Promise.all(
          nodes.flatMap((node, nodeIndex) =>
            duties.map(async (duty) => {
              await sleep(Math.floor(Math.random() * 20)); // nodes are never perfectly in step
              const { messageHash, typedData } = payloadOf(duty, nodeIndex);
              const context = { dutyType: duty.dutyType, slot: BigInt(duty.slot), blockNumber: BigInt(duty.slot * 3 + (duty.blockIndexWithinCheckpoint ?? 0)), checkpointNumber: BigInt(duty.slot), ...(duty.blockIndexWithinCheckpoint !== undefined ? { blockIndexWithinCheckpoint: duty.blockIndexWithinCheckpoint } : {}) };
              try {
                const signature = await node.signWithProtection(duty.validator, messageHash, context, undefined, duty.vote ? { signingMethod: 'digest', typedData } : {});
                tally.signed++;
                const set = received.get(duty.key) ?? new Set<string>();
                set.add(signature.toLowerCase());
                received.set(duty.key, set);
              } catch (error) {
                if (error instanceof DutyAlreadySignedError) tally.alreadySigned++;
                else if (error instanceof SlashingProtectionError) tally.refused++;
                else {
                  tally.errors++;
                  say(`  node-${nodeIndex} ${duty.dutyType} slot ${duty.slot}: ${(error as Error).message}`);
                }
              }
            }),
          ),
        );
        const takeovers = Number((await db.query<{ n: string }>('SELECT coalesce(sum(takeovers), 0) AS n FROM validator_duties WHERE rollup_address = $1', [ROLLUP])).rows[0]?.n ?? 0);
        const up = replicas.filter((r) => r.running).length;
        say(
          `slot ${slot}  duties ${String(duties.length).padStart(2)}  signatures ${String(tally.signed - before.signed).padStart(2)}  ` +
            `already-signed ${String(tally.alreadySigned - before.alreadySigned).padStart(2)}  refused ${tally.refused - before.refused}  ` +
            `errors ${tally.errors - before.errors}  failovers ${String(tally.failovers - before.failovers).padStart(2)}  takeovers (total) ${takeovers}  ` +
            `replicas up ${up}/3  ${((Date.now() - slotStart) / 1000).toFixed(2)} s${killed ? '   <- replica-1 SIGKILLed' : ''}`,
        );
      }

      say('\nverifying the database and every signature the nodes received ...');
      const rows = (
        await db.query<{ validator_address: string; slot: string; duty_type: DutyType; block_index_within_checkpoint: number; status: string; message_hash: string; signature: string | null; node_id: string; takeovers: number }>(
          'SELECT validator_address, slot::text, duty_type, block_index_within_checkpoint, status, message_hash, signature, node_id, takeovers FROM validator_duties WHERE rollup_address = $1',
          [ROLLUP],
        )
      ).rows;
      const problems: string[] = [];
      const byKey = new Map<string, (typeof rows)[number][]>();
      for (const row of rows) {
        const key = `${row.validator_address}/${row.slot}/${row.duty_type}/${row.block_index_within_checkpoint}`;
        byKey.set(key, [...(byKey.get(key) ?? []), row]);
      }
      let takeovers = 0;
      for (const [key, duty] of requested) {
        const recorded = byKey.get(key) ?? [];
        if (recorded.length !== 1) {
          problems.push(`${key}: ${recorded.length} rows`);
          continue;
        }
        const row = recorded[0]!;
        takeovers += row.takeovers;
        if (row.status !== 'signed' || !row.signature) {
          problems.push(`${key}: status ${row.status}, no signature`);
          continue;
        }
        const signer = duty.vote
          ? await recoverAddress({ hash: row.message_hash as Hex, signature: row.signature as Hex })
          : await recoverMessageAddress({ message: { raw: row.message_hash as Hex }, signature: row.signature as Hex });
        if (signer.toLowerCase() !== duty.validator) problems.push(`${key}: recorded signature is not by ${duty.validator} over the recorded hash`);
        const given = received.get(key) ?? new Set<string>();
        if (given.size !== 1) problems.push(`${key}: nodes received ${given.size} distinct signatures`);
        for (const signature of given) if (signature !== row.signature.toLowerCase()) problems.push(`${key}: a node received a signature that is not the recorded one`);
      }
      for (const key of byKey.keys()) if (!requested.has(key)) problems.push(`${key}: recorded but never requested`);
      say(
        `duties ${requested.size}, rows ${rows.length}, signatures handed out ${tally.signed} (all identical per duty: ${problems.length === 0 ? 'yes' : 'NO'}), ` +
          `already-signed ${tally.alreadySigned}, slashing-protection refusals ${tally.refused}, errors ${tally.errors}, failovers ${tally.failovers}, takeovers ${takeovers}`,
      );
      if (problems.length > 0) {
        for (const problem of problems.slice(0, 20)) say(`  VIOLATION ${problem}`);
        throw new Error(`demo failed: ${problems.length} violation(s); replica logs in ${dir}`);
      }
      keepLogs = false;
      say(`OK: every duty has exactly one signature, and no duty was signed twice with different data (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } finally {
      await db.end();
    }
  } finally {
    await Promise.all(replicas.map((replica) => replica.stop(5_000)));
    await remote?.close();
    await postgres?.stop();
    if (keepLogs) say(`replica logs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The demo's validator side: three HA nodes sign every duty of every slot through RemoteHASigner; one replica dies. */
import type pg from 'pg';
import { RemoteHASigner } from '../client/index.js';
import type { Logger } from '../log.js';
import { DutyAlreadySignedError, SlashingProtectionError } from '../protection/index.js';
import type { Cluster } from './cluster.js';
import { type Duty, ROLLUP, contextOf, dutiesOfSlot, payloadOf } from './duties.js';

export const SLOTS = 12;
const SLOT_MS = 1_000;
/** The slot (counted from the first) during which replica-1 is SIGKILLed, and how long after the slot starts. */
const KILL_SLOT_INDEX = 5;
const KILL_AFTER_MS = 60;

export interface Tally {
  signed: number;
  alreadySigned: number;
  refused: number;
  errors: number;
  failovers: number;
}

export interface SlotsOutcome {
  tally: Tally;
  requested: Map<string, Duty>;
  /** Every signature any node was given, per duty: must be one per duty. */
  received: Map<string, Set<string>>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function runSlots(options: {
  cluster: Cluster;
  db: pg.Client;
  firstSlot: number;
  log: Logger;
  signal: AbortSignal;
  checkpoint: () => void;
}): Promise<SlotsOutcome> {
  const { cluster, db, firstSlot, log, signal, checkpoint } = options;
  const { replicas } = cluster;
  const tally: Tally = { signed: 0, alreadySigned: 0, refused: 0, errors: 0, failovers: 0 };
  const nodes = cluster.tokens.map(
    (token, i) =>
      new RemoteHASigner({
        // Each node prefers its own replica and fails over to the others.
        endpoints: [0, 1, 2].map((k) => replicas[(i + k) % 3]!.url),
        token,
        timeoutMs: 15_000,
        onFailover: () => void tally.failovers++,
      }),
  );
  const received = new Map<string, Set<string>>();
  const requested = new Map<string, Duty>();
  const signDuty = async (node: RemoteHASigner, nodeIndex: number, duty: Duty): Promise<void> => {
    await sleep(Math.floor(Math.random() * 20)); // nodes are never perfectly in step
    const { messageHash, typedData } = payloadOf(duty, nodeIndex);
    try {
      const signature = await node.signWithProtection(
        duty.validator,
        messageHash,
        contextOf(duty),
        undefined,
        duty.vote ? { signingMethod: 'digest', typedData } : {},
      );
      tally.signed++;
      received.set(duty.key, (received.get(duty.key) ?? new Set<string>()).add(signature.toLowerCase()));
    } catch (error) {
      if (error instanceof DutyAlreadySignedError) tally.alreadySigned++;
      else if (error instanceof SlashingProtectionError) tally.refused++;
      else {
        tally.errors++;
        if (!signal.aborted) log.warn({ err: error }, `node-${nodeIndex} ${duty.dutyType} slot ${duty.slot}: ${(error as Error).message}`);
      }
    }
  };

  const runStart = Date.now();
  for (let s = 0; s < SLOTS; s++) {
    const slot = firstSlot + s;
    const slotStart = runStart + s * SLOT_MS;
    await sleep(slotStart - Date.now());
    checkpoint();
    const before = { ...tally };
    const duties = dutiesOfSlot(slot, cluster.validators);
    for (const duty of duties) requested.set(duty.key, duty);
    let killed = false;
    if (s === KILL_SLOT_INDEX) {
      setTimeout(() => {
        replicas[1]!.kill('SIGKILL');
        killed = true;
      }, KILL_AFTER_MS);
    }
    await Promise.all(nodes.flatMap((node, nodeIndex) => duties.map((duty) => signDuty(node, nodeIndex, duty))));
    checkpoint();
    const takeovers = Number(
      (await db.query<{ n: string }>('SELECT coalesce(sum(takeovers), 0) AS n FROM validator_duties WHERE rollup_address = $1', [ROLLUP]))
        .rows[0]?.n ?? 0,
    );
    const up = replicas.filter((r) => r.running).length;
    log.info(
      `slot ${slot}  duties ${String(duties.length).padStart(2)}  signatures ${String(tally.signed - before.signed).padStart(2)}  ` +
        `already-signed ${String(tally.alreadySigned - before.alreadySigned).padStart(2)}  refused ${tally.refused - before.refused}  ` +
        `errors ${tally.errors - before.errors}  failovers ${String(tally.failovers - before.failovers).padStart(2)}  takeovers (total) ${takeovers}  ` +
        `replicas up ${up}/3  ${((Date.now() - slotStart) / 1000).toFixed(2)} s${killed ? '   <- replica-1 SIGKILLed' : ''}`,
    );
  }
  return { tally, requested, received };
}

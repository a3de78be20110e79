/**
 * Fault injectors. Each runs one fault to its end and says when it ended (the moment the service could work again:
 * the kill, the SIGCONT, PostgreSQL accepting connections again, the key backend healed, the disconnect window
 * closed); a replica killed by a fault is restarted afterwards, outside the fault's window.
 */
import { type ChaosEnvironment, LEASE_MS, type ReplicaSlot, alive, sleep } from './environment.js';
import type { Random } from './random.js';
import type { Workload } from './workload.js';

export const FAULT_KINDS = [
  'replica-kill',
  'replica-stop-past-lease',
  'postgres-restart-fast',
  'postgres-restart-immediate',
  'backends-terminated',
  'backends-frozen',
  'key-backend-hang',
  'key-backend-fail',
  'clients-disconnect',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord {
  kind: FaultKind;
  start: number;
  end: number;
  detail: string;
  /** The replica the fault hit (r1..r3), for its own recovery time; none for faults of the whole service. */
  replica?: string;
}

export interface FaultContext {
  environment: ChaosEnvironment;
  workload: Workload;
  random: Random;
  log: (line: string) => void;
}

/** Runs one fault; returns its record once the fault is over and anything it broke has been started again. */
export async function injectFault(kind: FaultKind, context: FaultContext): Promise<FaultRecord> {
  const { environment, random } = context;
  const start = Date.now();
  const record = (end: number, detail: string, replica?: ReplicaSlot): FaultRecord => ({
    kind,
    start,
    end,
    detail,
    ...(replica ? { replica: `r${replica.index + 1}` } : {}),
  });
  switch (kind) {
    case 'replica-kill': {
      const slot = random.pick(environment.slots);
      slot.replica.kill('SIGKILL');
      await slot.replica.exited;
      const end = Date.now();
      await sleep(random.int(300, 1_500));
      await environment.restart(slot);
      return record(end, `${slot.replica.nodeId} after SIGKILL of incarnation ${slot.incarnation - 1}`, slot);
    }
    case 'replica-stop-past-lease': {
      const slot = random.pick(environment.slots);
      const holdMs = LEASE_MS + random.int(500, 1_500);
      await holdStopped(slot, holdMs);
      return record(Date.now(), `${slot.replica.nodeId} SIGSTOP ${holdMs} ms`, slot);
    }
    case 'postgres-restart-fast':
    case 'postgres-restart-immediate': {
      if (kind === 'postgres-restart-fast') await environment.cluster.stop();
      else await environment.stopPostgresImmediately();
      const downMs = random.int(200, 1_500);
      await sleep(downMs);
      await environment.cluster.start();
      return record(Date.now(), `down ${downMs} ms after the stop`);
    }
    case 'backends-terminated': {
      const count = await environment.terminateBackends();
      return record(Date.now(), `${count} backends`);
    }
    case 'backends-frozen': {
      const slot = random.pick(environment.slots);
      const pids = await environment.backends(`ha-signer:${slot.replica.nodeId}`);
      const holdMs = random.int(2_000, 6_000);
      try {
        for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGSTOP');
        await sleep(holdMs);
      } finally {
        for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGCONT');
      }
      return record(Date.now(), `${pids.length} backends of ${slot.replica.nodeId} SIGSTOPped ${holdMs} ms`, slot);
    }
    case 'key-backend-hang':
    case 'key-backend-fail': {
      const holdMs = random.int(1_500, 4_000);
      environment.keyBackend.setMode(kind === 'key-backend-hang' ? 'hang' : 'fail');
      try {
        await sleep(holdMs);
      } finally {
        environment.keyBackend.setMode('ok');
      }
      return record(
        Date.now(),
        `${holdMs} ms`,
        environment.slots.find((slot) => slot.remoteKeys),
      );
    }
    case 'clients-disconnect': {
      const holdMs = random.int(1_500, 4_000);
      context.workload.disconnectShare = 0.5;
      try {
        await sleep(holdMs);
      } finally {
        context.workload.disconnectShare = 0;
      }
      return record(Date.now(), `half the requests aborted for ${holdMs} ms`);
    }
  }
}

async function holdStopped(slot: ReplicaSlot, holdMs: number): Promise<void> {
  slot.replica.child.kill('SIGSTOP');
  try {
    await sleep(holdMs);
  } finally {
    slot.replica.child.kill('SIGCONT');
  }
}

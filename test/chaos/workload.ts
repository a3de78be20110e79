/**
 * The chaos workload: validator nodes in HA asking for every duty. Each duty (validator, slot, type, block index) is
 * requested by every client, each at a random replica; a seeded share of duties (15-35%) is conflicting (the clients
 * disagree on the message hash, as nodes that built different blocks would). Clients are RemoteHASigners (with their
 * failover and retries) and direct /v1 callers (one attempt at one replica); during a disconnect fault they abort
 * requests mid-flight. Every attempt and its outcome is logged for the checks.
 */
import { keccak256, stringToHex } from 'viem';
import { DutyAlreadySignedError, RemoteHASigner, RemoteSignerError, SlashingProtectionError } from '../../src/client/index.js';
import type { DutyType } from '../../src/protection/types.js';
import { KEYS, TOKEN } from './environment.js';
import type { Random } from './random.js';

export const DUTY_TYPES = ['ATTESTATION', 'BLOCK_PROPOSAL', 'CHECKPOINT_PROPOSAL', 'ATTESTATIONS_AND_SIGNERS'] as const;

export interface Duty {
  validator: string;
  slot: number;
  dutyType: (typeof DUTY_TYPES)[number];
  blockIndex: number;
}

export type Outcome =
  | 'signed' // 200 with a signature
  | 'already-signed' // 409 DutyAlreadySigned (signature when it was our hash)
  | 'slashing-protection' // 409 SlashingProtection
  | 'unavailable' // 503 (database, lock lost, duty in progress)
  | 'signing-failed' // 502: the key backend failed; nothing signed
  | 'timeout'
  | 'aborted' // the client disconnected on purpose
  | 'unreachable'
  | 'unexpected'; // any other answer: a finding

export interface Attempt {
  client: string;
  key: string;
  duty: Duty;
  messageHash: string;
  replica: string;
  start: number;
  end: number;
  outcome: Outcome;
  /** A signature the client received: a released signature. */
  signature?: string;
  status?: number;
  detail?: string;
}

export const dutyKey = (d: { validator: string; slot: number | string; dutyType: string; blockIndex: number }): string =>
  `${d.validator}/${d.slot}/${d.dutyType}/${d.blockIndex}`;

export interface ClientOptions {
  name: string;
  kind: 'ha' | 'direct';
}

export class Workload {
  readonly attempts: Attempt[] = [];
  readonly duties = new Map<string, Duty>();
  conflicting = 0;
  /** While set, clients abort this share of their requests a few ms after sending. */
  disconnectShare = 0;
  private inFlight = 0;
  private skipped = 0;

  constructor(
    private readonly random: Random,
    private readonly endpoints: () => string[],
    readonly clients: ClientOptions[],
    readonly conflictShare: number,
    private readonly maxInFlight = 400,
  ) {}

  get skippedRequests(): number {
    return this.skipped;
  }

  /** Issues the duties of one slot: every client asks for each, at a random replica, a few ms apart. */
  issueSlot(slot: number, dutiesPerSlot: number): Promise<void>[] {
    const pending: Promise<void>[] = [];
    const validators = this.random.shuffle(KEYS.map((k) => k.address)).slice(0, dutiesPerSlot);
    for (const validator of validators) {
      const dutyType = this.random.pick(DUTY_TYPES);
      const duty: Duty = { validator, slot, dutyType, blockIndex: dutyType === 'BLOCK_PROPOSAL' ? this.random.int(0, 1) : -1 };
      const key = dutyKey(duty);
      this.duties.set(key, duty);
      const base = keccak256(stringToHex(`chaos/${this.random.seed}/${key}`));
      const conflicting = this.random.chance(this.conflictShare);
      if (conflicting) this.conflicting++;
      const hashes = this.clients.map((_, i) => (conflicting ? keccak256(stringToHex(`${base}/${i % 2}`)) : base));
      for (const [i, client] of this.clients.entries()) {
        const delay = this.random.int(0, 30);
        const replicaOrder = this.random.shuffle(this.endpoints());
        const abortAfter = this.random.chance(this.disconnectShare) ? this.random.int(0, 25) : undefined;
        if (this.inFlight >= this.maxInFlight) {
          this.skipped++;
          continue;
        }
        this.inFlight++;
        pending.push(
          sleep(delay)
            .then(() => this.request(client, duty, key, hashes[i]!, replicaOrder, abortAfter))
            .finally(() => this.inFlight--),
        );
      }
    }
    return pending;
  }

  private async request(
    client: ClientOptions,
    duty: Duty,
    key: string,
    messageHash: string,
    replicas: string[],
    abortAfter: number | undefined,
  ): Promise<void> {
    const controller = new AbortController();
    const timer = abortAfter === undefined ? undefined : setTimeout(() => controller.abort(), abortAfter);
    const attempt: Attempt = {
      client: client.name,
      key,
      duty,
      messageHash,
      replica: replicas[0]!,
      start: Date.now(),
      end: 0,
      outcome: 'unexpected',
    };
    try {
      if (client.kind === 'ha') await this.viaClient(attempt, replicas, controller.signal);
      else await this.direct(attempt, replicas[0]!, controller.signal);
    } catch (error) {
      classifyError(attempt, error, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
      attempt.end = Date.now();
      this.attempts.push(attempt);
    }
  }

  private async viaClient(attempt: Attempt, replicas: string[], signal: AbortSignal): Promise<void> {
    const signer = new RemoteHASigner({ endpoints: replicas, token: TOKEN, timeoutMs: 6_000, maxRounds: 3, retryDelayMs: 200 });
    const { duty } = attempt;
    const result = await signer.sign(
      duty.validator,
      attempt.messageHash,
      {
        dutyType: duty.dutyType as DutyType,
        slot: BigInt(duty.slot),
        blockNumber: BigInt(duty.slot),
        ...(duty.blockIndex >= 0 ? { blockIndexWithinCheckpoint: duty.blockIndex } : {}),
      },
      { signal },
    );
    attempt.outcome = 'signed';
    attempt.signature = result.signature.toLowerCase();
    attempt.replica = result.endpoint;
    attempt.status = 200;
  }

  private async direct(attempt: Attempt, replica: string, signal: AbortSignal): Promise<void> {
    const { duty } = attempt;
    const body = {
      messageHash: attempt.messageHash,
      context: {
        dutyType: duty.dutyType,
        slot: String(duty.slot),
        blockNumber: String(duty.slot),
        ...(duty.blockIndex >= 0 ? { blockIndexWithinCheckpoint: duty.blockIndex } : {}),
      },
    };
    const response = await fetch(`${replica}/v1/validators/${duty.validator}/sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]),
    });
    const json = (await response.json()) as { signature?: string | null; error?: string; reason?: string; message?: string };
    attempt.status = response.status;
    if (response.status === 200 && typeof json.signature === 'string') {
      attempt.outcome = 'signed';
      attempt.signature = json.signature.toLowerCase();
    } else if (response.status === 409 && json.error === 'DutyAlreadySigned') {
      attempt.outcome = 'already-signed';
      if (typeof json.signature === 'string') attempt.signature = json.signature.toLowerCase();
    } else if (response.status === 409 && json.error === 'SlashingProtection') {
      attempt.outcome = 'slashing-protection';
    } else if (response.status === 503) {
      attempt.outcome = 'unavailable';
      attempt.detail = json.reason ?? json.message;
    } else if (response.status === 502) {
      attempt.outcome = 'signing-failed';
    } else {
      attempt.outcome = 'unexpected';
      attempt.detail = `HTTP ${response.status} ${JSON.stringify(json).slice(0, 300)}`;
    }
  }
}

function classifyError(attempt: Attempt, error: unknown, aborted: boolean): void {
  if (error instanceof SlashingProtectionError) {
    attempt.outcome = 'slashing-protection';
    attempt.status = 409;
  } else if (error instanceof DutyAlreadySignedError) {
    attempt.outcome = 'already-signed';
    attempt.status = 409;
    if (error.signature) attempt.signature = error.signature.toLowerCase();
  } else if (aborted) {
    attempt.outcome = 'aborted';
  } else if (error instanceof RemoteSignerError) {
    attempt.status = error.status;
    attempt.detail = error.message.slice(0, 300);
    if (error.status === 503) attempt.outcome = 'unavailable';
    else if (error.status === 502) attempt.outcome = 'signing-failed';
    else if (error.code === 'TimeoutError') attempt.outcome = 'timeout';
    else if (error.status === undefined) attempt.outcome = 'unreachable';
    else attempt.outcome = 'unexpected';
  } else if ((error as Error)?.name === 'TimeoutError') {
    attempt.outcome = 'timeout';
  } else {
    const message = (error as Error)?.message ?? String(error);
    attempt.outcome = /fetch failed|ECONNREFUSED|ECONNRESET|socket|terminated/i.test(message) ? 'unreachable' : 'unexpected';
    attempt.detail = message.slice(0, 300);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

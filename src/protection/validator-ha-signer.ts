/**
 * ValidatorHASigner: signs a validator duty at most once across all nodes sharing the database, and never with
 * two different payloads. A signature is released only after its duty is durably recorded as signed under this
 * node's lock token. (The protection class keeps the name of @aztec/validator-ha-signer's for API compatibility.)
 */
import { type ResolvedSignerConfig, type ValidatorHASignerConfig, resolveSignerConfig } from './config.js';
import type { PostgresSlashingProtectionDatabase } from './db/postgres.js';
import type { ProtectionStore } from './db/store.js';
import { SignerStoppedError } from './errors.js';
import type { SafetyGateOptions, SafetyGates } from './safety-gates.js';
import { SlashingProtectionService } from './slashing-protection-service.js';
import {
  type HexLike,
  type Logger,
  type ProtectionObserver,
  type SigningContext,
  type ValidatedDuty,
  isProtectedDutyType,
} from './types.js';
import { parseDuty, toDutyType } from './values.js';

export { SigningTimeoutError, SignerStoppedError } from './errors.js';

export interface ValidatorHASignerDeps extends SafetyGateOptions {
  logger?: Logger;
  observer?: ProtectionObserver;
}

/** `Store` is what `database` returns: the PostgreSQL store by default (its audit and pool methods included). */
export class ValidatorHASigner<Store extends ProtectionStore = PostgresSlashingProtectionDatabase> {
  readonly config: ResolvedSignerConfig;
  private readonly service: SlashingProtectionService;
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopping = false;

  constructor(
    private readonly db: Store,
    config: ValidatorHASignerConfig,
    deps: ValidatorHASignerDeps = {},
  ) {
    this.config = resolveSignerConfig(config);
    this.service = new SlashingProtectionService(db, this.config, deps);
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  get rollupAddress(): string {
    return this.config.rollupAddress;
  }

  get database(): Store {
    return this.db;
  }

  /** Synchronous replication and history-guard state (for readiness and metrics). */
  get gates(): SafetyGates {
    return this.service.gates;
  }

  /**
   * Aztec's positional API, a thin adapter: validates the arguments once (parseDuty), then signDuty. Returns
   * exactly what signFn returned; signFn gets the messageHash object it was given. AUTH_REQUEST and TXS bypass
   * protection (signing them repeatedly is safe).
   *
   * @throws InvalidDutyInputError an argument is malformed (names the field); nothing was written
   * @throws DutyAlreadySignedError the duty was signed with the same hash (carries the stored signature)
   * @throws DutyInProgressError (a DutyAlreadySignedError) another node still holds it after signingTimeoutMs
   * @throws SlashingProtectionError the duty was signed with a different hash, or its slot was pruned
   * @throws SigningLockLostError the record no longer held this node's token: the signature is withheld
   */
  async signWithProtection<S extends HexLike>(
    validatorAddress: HexLike,
    messageHash: HexLike,
    context: SigningContext,
    signFn: (messageHash: HexLike) => Promise<S>,
  ): Promise<S> {
    if (this.stopping) throw new SignerStoppedError();
    const dutyType = toDutyType('context.dutyType', context?.dutyType);
    if (!isProtectedDutyType(dutyType)) return await signFn(messageHash);
    return await this.signDuty(parseDuty(validatorAddress, messageHash, context), () => signFn(messageHash));
  }

  /**
   * Signs an already validated duty (from parseDuty) for this signer's rollup and node: see
   * SlashingProtectionService.signDuty. signFn gets the normalized message hash (lower-case 0x hex).
   */
  async signDuty<S extends HexLike>(duty: ValidatedDuty, signFn: (messageHash: string) => Promise<S>): Promise<S> {
    if (this.stopping) throw new SignerStoppedError();
    const run = this.service.signDuty(duty, signFn);
    this.inFlight.add(run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(run);
    }
  }

  /** Checks the rollup binding and starts background cleanup. */
  async start(): Promise<void> {
    await this.service.start();
  }

  /** Takes no new duties, lets in-flight ones finish, stops cleanup and closes the database. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.inFlight]);
    await this.service.stop();
    await this.service.close();
  }

  /** Number of duties in flight (for graceful shutdown and metrics). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }
}

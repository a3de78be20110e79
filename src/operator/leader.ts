/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go semantics (leaderelection.go): try to acquire
 * every retryPeriod; a lease held by someone else counts as expired only when its record has not changed for
 * leaseDuration as measured on the local clock (not by the record's timestamps, so clock skew does not matter);
 * the leader renews every retryPeriod and gives up when it could not renew within renewDeadline. Optimistic
 * concurrency (resourceVersion) decides races: 409 means another candidate won.
 */
import * as k8s from '@kubernetes/client-node';
import { errorSummary } from '../log.js';
import { isAlreadyExists, isConflict, isNotFound } from './kube.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Write an empty holder when stopping as leader, so a standby takes over at once. */
  releaseOnCancel?: boolean;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface LeaseApi {
  readNamespacedLease(p: { name: string; namespace: string }): Promise<k8s.V1Lease>;
  createNamespacedLease(p: { namespace: string; body: k8s.V1Lease }): Promise<k8s.V1Lease>;
  replaceNamespacedLease(p: { name: string; namespace: string; body: k8s.V1Lease }): Promise<k8s.V1Lease>;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export function validateLeaderElection(
  o: Pick<LeaderElectionOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>,
): string | undefined {
  if (!(o.leaseDurationMs > o.renewDeadlineMs)) return '--lease-duration must be greater than --renew-deadline';
  if (!(o.renewDeadlineMs > o.retryPeriodMs * 1.2)) return '--renew-deadline must be greater than 1.2 × --retry-period';
  if (o.retryPeriodMs < 1) return '--retry-period must be positive';
  return undefined;
}

export class LeaderElector {
  private observedRecord?: string;
  private observedAt = 0;
  private lease?: k8s.V1Lease;
  private leading = false;

  constructor(
    private readonly api: LeaseApi,
    private readonly opts: LeaderElectionOptions,
  ) {}

  isLeader(): boolean {
    return this.leading;
  }

  /** The identity currently holding the lease, as last observed. */
  observedHolder(): string | undefined {
    return this.lease?.spec?.holderIdentity || undefined;
  }

  /**
   * Blocks until this candidate holds the lease (or `signal` aborts: returns false), then returns true.
   */
  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (
        await this.tryAcquireOrRenew().catch(
          (e: Error) => (this.opts.log?.(`leader election: ${e.message}`, { err: errorSummary(e) }), false),
        )
      ) {
        this.leading = true;
        this.opts.log?.(`leader election: ${this.opts.identity} acquired lease ${this.opts.namespace}/${this.opts.name}`);
        return true;
      }
      await sleep(this.opts.retryPeriodMs, signal);
    }
    return false;
  }

  /**
   * Renews every retryPeriod while leading. Resolves with 'lost' when a renewal did not succeed within
   * renewDeadline, or 'stopped' when `signal` aborts (then releases the lease when releaseOnCancel).
   */
  async renewLoop(signal: AbortSignal): Promise<'lost' | 'stopped'> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.opts.retryPeriodMs, signal);
      if (signal.aborted) break;
      const ok = await this.tryAcquireOrRenew().catch(
        (e: Error) => (this.opts.log?.(`leader election: renew failed: ${e.message}`, { err: errorSummary(e) }), false),
      );
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew >= this.opts.renewDeadlineMs) {
        this.leading = false;
        this.opts.log?.(
          `leader election: ${this.opts.identity} lost lease ${this.opts.namespace}/${this.opts.name} (no renewal within ${this.opts.renewDeadlineMs} ms)`,
        );
        return 'lost';
      }
    }
    if (this.leading && this.opts.releaseOnCancel !== false) {
      await this.release().catch((err: unknown) => this.opts.log?.('leader election: releasing the lease failed', { err }));
    }
    this.leading = false;
    return 'stopped';
  }

  async release(): Promise<void> {
    const cur = this.lease;
    if (!cur || cur.spec?.holderIdentity !== this.opts.identity) return;
    const now = new k8s.V1MicroTime();
    await this.api.replaceNamespacedLease({
      name: this.opts.name,
      namespace: this.opts.namespace,
      body: { ...cur, spec: { ...cur.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } },
    });
    this.opts.log?.(`leader election: ${this.opts.identity} released lease ${this.opts.namespace}/${this.opts.name}`);
  }

  /** One attempt; true when this candidate holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const durationSeconds = Math.max(1, Math.ceil(this.opts.leaseDurationMs / 1000));
    const now = new k8s.V1MicroTime();
    let current: k8s.V1Lease;
    try {
      current = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        this.lease = await this.api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.observe(this.lease);
        return true;
      } catch (e) {
        if (isAlreadyExists(e) || isConflict(e)) return false;
        throw e;
      }
    }
    this.observe(current);
    this.lease = current;
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const heldMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== '' && holder !== identity && this.observedAt + heldMs > Date.now()) return false;
    const mine = holder === identity;
    const body: k8s.V1Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: now,
        acquireTime: mine ? spec.acquireTime : now,
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      this.lease = await this.api.replaceNamespacedLease({ name, namespace, body });
      this.observe(this.lease);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private observe(lease: k8s.V1Lease): void {
    const s = lease.spec ?? {};
    const record = JSON.stringify([
      s.holderIdentity,
      String(s.renewTime),
      String(s.acquireTime),
      s.leaseDurationSeconds,
      s.leaseTransitions,
    ]);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
  }
}

/** Leader election against an in-memory Lease API with resourceVersion semantics. */
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LeaderElector, validateLeaderElection, type LeaseApi } from '../../../src/operator/leader.js';

class FakeLeases implements LeaseApi {
  lease?: k8s.V1Lease;
  rv = 0;
  failing = false;
  private err(code: number, reason: string) {
    return Object.assign(new Error(reason), { code, body: JSON.stringify({ reason }) });
  }
  async readNamespacedLease() {
    if (this.failing) throw this.err(500, 'InternalError');
    if (!this.lease) throw this.err(404, 'NotFound');
    return structuredClone(this.lease);
  }
  async createNamespacedLease(p: { body: k8s.V1Lease }) {
    if (this.failing) throw this.err(500, 'InternalError');
    if (this.lease) throw this.err(409, 'AlreadyExists');
    this.lease = { ...structuredClone(p.body), metadata: { ...p.body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }
  async replaceNamespacedLease(p: { body: k8s.V1Lease }) {
    if (this.failing) throw this.err(500, 'InternalError');
    if (p.body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw this.err(409, 'Conflict');
    this.lease = { ...structuredClone(p.body), metadata: { ...p.body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }
}

const opts = (identity: string) => ({
  namespace: 'ops',
  name: 'lease',
  identity,
  leaseDurationMs: 300,
  renewDeadlineMs: 200,
  retryPeriodMs: 50,
});

describe('leader election', () => {
  it('validates durations like client-go', () => {
    expect(validateLeaderElection({ leaseDurationMs: 15000, renewDeadlineMs: 10000, retryPeriodMs: 2000 })).toBeUndefined();
    expect(validateLeaderElection({ leaseDurationMs: 10000, renewDeadlineMs: 10000, retryPeriodMs: 2000 })).toContain('--lease-duration');
    expect(validateLeaderElection({ leaseDurationMs: 15000, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toContain('--renew-deadline');
  });

  it('one candidate leads; the other waits until the lease has not been renewed for its duration', async () => {
    const api = new FakeLeases();
    const a = new LeaderElector(api, opts('a'));
    const b = new LeaderElector(api, opts('b'));
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(api.lease!.spec!.holderIdentity).toBe('a');
    // a stops renewing (crashed): b takes over only after ~leaseDuration of an unchanged record.
    const t0 = Date.now();
    const ctl = new AbortController();
    expect(await b.acquire(ctl.signal)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(api.lease!.spec!.holderIdentity).toBe('b');
    expect(api.lease!.spec!.leaseTransitions).toBe(1);
  });

  it('a renewing leader keeps the lease; releasing on stop hands it over at once', async () => {
    const api = new FakeLeases();
    const a = new LeaderElector(api, opts('a'));
    const b = new LeaderElector(api, opts('b'));
    const ctlA = new AbortController();
    expect(await a.acquire(ctlA.signal)).toBe(true);
    const renewing = a.renewLoop(ctlA.signal);
    const ctlB = new AbortController();
    let bLeads = false;
    const bAcquire = b.acquire(ctlB.signal).then((x) => (bLeads = x));
    await new Promise((r) => setTimeout(r, 700));
    expect(bLeads).toBe(false);
    ctlA.abort();
    expect(await renewing).toBe('stopped');
    expect(api.lease!.spec!.holderIdentity).toBe('');
    const t0 = Date.now();
    await bAcquire;
    expect(bLeads).toBe(true);
    expect(Date.now() - t0).toBeLessThan(200);
  });

  it('gives up leadership when it cannot renew within the renew deadline', async () => {
    const api = new FakeLeases();
    const a = new LeaderElector(api, opts('a'));
    const ctl = new AbortController();
    await a.acquire(ctl.signal);
    api.failing = true;
    const t0 = Date.now();
    expect(await a.renewLoop(ctl.signal)).toBe('lost');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(a.isLeader()).toBe(false);
  });

  it('loses a race on 409', async () => {
    const api = new FakeLeases();
    await new LeaderElector(api, opts('a')).tryAcquireOrRenew();
    api.lease!.spec!.holderIdentity = '';
    const b = new LeaderElector(api, opts('b'));
    const orig = api.replaceNamespacedLease.bind(api);
    api.replaceNamespacedLease = async (p) => {
      api.rv++;
      api.lease!.metadata!.resourceVersion = String(api.rv); // someone else wrote first
      return orig(p);
    };
    expect(await b.tryAcquireOrRenew()).toBe(false);
  });
});

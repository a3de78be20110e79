/**
 * Two operator replicas (child processes) with a short lease: one leads, the other stays passive until the
 * leader's lease ends (killed with SIGKILL: no release), then takes over and reconciles.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clients, createTestNamespace, describeK8s, waitFor, type TestNamespace } from '../../harness/k8s.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import { createSecret, createVhs, getVhs, ROLLUP_A, validatorKey, vhsBody, waitForCondition } from './support.js';

describeK8s('operator leader election', () => {
  let ns: TestNamespace;
  const ops: OperatorProcess[] = [];

  beforeAll(async () => {
    ns = await createTestNamespace('lead');
    await createSecret(ns.name, 'db', { uri: 'postgresql://u:p@127.0.0.1:1/leader_test' });
    await createSecret(ns.name, 'keys', { k: validatorKey() });
  });
  afterAll(async () => {
    for (const op of ops) await op.stop('SIGKILL');
    await ns?.delete();
  });

  const holder = async () =>
    (
      await clients()
        .kc.makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
        .readNamespacedLease({ name: 'ha-signer-operator', namespace: ns.name })
    ).spec?.holderIdentity;

  it("the second replica stays passive until the first one's lease ends", async () => {
    const a = await startOperatorProcess({ namespace: ns.name, identity: 'replica-a' });
    ops.push(a);
    await waitFor(async () => (await holder()) === 'replica-a', { timeoutMs: 20_000, message: 'replica-a to lead' });
    const b = await startOperatorProcess({ namespace: ns.name, identity: 'replica-b' });
    ops.push(b);
    await waitFor(async () => (await b.metric('ha_signer_operator_leader')) === 0, { timeoutMs: 10_000, message: 'replica-b metrics' });
    expect(await a.metric('ha_signer_operator_leader')).toBe(1);

    // The leader reconciles; the standby does not (no reconcile counted).
    await createVhs(ns.name, vhsBody('one', { rollup: { address: ROLLUP_A, version: 'v1' } }));
    await waitForCondition(ns.name, 'one', 'DatabaseClaimed', 'Unknown', { reason: 'IdentityPending', timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await holder()).toBe('replica-a');
    expect(await b.metric('ha_signer_operator_reconciles_total')).toBeUndefined();
    expect((await fetch(`http://127.0.0.1:${b.port}/readyz`)).status).toBe(200); // a ready standby

    // Kill the leader without releasing: replica-b takes over only after the lease (6 s) has run out.
    const killedAt = Date.now();
    await a.stop('SIGKILL');
    await waitFor(async () => (await holder()) === 'replica-b', { timeoutMs: 30_000, intervalMs: 100, message: 'replica-b to take over' });
    const takeoverMs = Date.now() - killedAt;
    console.log(`leader killed → standby leads after ${takeoverMs} ms (lease 6 s, retry 1 s)`);
    expect(takeoverMs).toBeGreaterThanOrEqual(4000);
    expect(await b.metric('ha_signer_operator_leader')).toBe(1);

    // The new leader reconciles new resources.
    await createVhs(ns.name, vhsBody('two', { rollup: { address: ROLLUP_A, version: 'v1' } }));
    const two = await waitForCondition(ns.name, 'two', 'DatabaseClaimed', 'Unknown', { reason: 'IdentityPending', timeoutMs: 30_000 });
    expect(two.status?.database?.address).toBe('127.0.0.1:1/leader_test');
    expect((await getVhs(ns.name, 'one')).status?.database?.address).toBe('127.0.0.1:1/leader_test');

    // Graceful shutdown releases the lease at once.
    const c = await startOperatorProcess({ namespace: ns.name, identity: 'replica-c' });
    ops.push(c);
    const stoppedAt = Date.now();
    expect(await b.stop('SIGTERM')).toBe(0);
    await waitFor(async () => (await holder()) === 'replica-c', { timeoutMs: 20_000, intervalMs: 100, message: 'replica-c to take over' });
    console.log(`leader stopped gracefully → standby leads after ${Date.now() - stoppedAt} ms`);
    expect(Date.now() - stoppedAt).toBeLessThan(4000);
  });

  // A standby used to log "operator stopped" and then linger until SIGKILL (30 s grace in a pod): something it had
  // started (a Secret informer for the watched namespace) kept the event loop alive. Both watch modes.
  for (const clusterWide of [false, true]) {
    it(`a standby exits within 2 s of SIGTERM (${clusterWide ? 'all namespaces' : 'one namespace'})`, async () => {
      await waitFor(async () => Boolean(await holder()), { timeoutMs: 20_000, message: 'a leader' });
      const leader = await holder();
      const standby = await startOperatorProcess({ namespace: ns.name, identity: `standby-${clusterWide ? 'all' : 'ns'}`, clusterWide });
      ops.push(standby);
      await waitFor(async () => (await standby.metric('ha_signer_operator_leader')) === 0, {
        timeoutMs: 10_000,
        message: 'standby metrics',
      });
      await new Promise((r) => setTimeout(r, 1500)); // a retry period or more as a candidate
      expect(await holder()).toBe(leader);
      const signalledAt = Date.now();
      standby.child.kill('SIGTERM');
      const code = await Promise.race([standby.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 2000))]);
      console.log(`standby (${clusterWide ? 'all namespaces' : 'one namespace'}) after SIGTERM: ${code} in ${Date.now() - signalledAt} ms`);
      expect(code).toBe(0);
      expect(standby.logs()).toContain('operator stopped');
    });
  }
});

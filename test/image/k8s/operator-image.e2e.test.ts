/**
 * The operator end to end on the built image: `helm install` of the chart with the image scripts/build-image.sh
 * built, so the local kubelet runs the operator pod, the migration Job's pod and the signer pods inside that image
 * (read-only root, uid 1000, in-cluster ServiceAccount token, Secrets mounted at their paths); a ValidatorHASigner
 * becomes Ready and one duty is signed through the Service's endpoints (one replica signs, the other answers 409
 * with the same signature). The same path runs once more with a checkout-mode image name, for the timing comparison
 * printed at the end.
 */
import { execFileSync } from 'node:child_process';
import { recoverMessageAddress, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, describe, expect, it } from 'vitest';
import { applyTokenSigner, chartRelease, createHelm, createSignerSecrets, deleteVhs, installChart } from '../../harness/helm-install.js';
import {
  callService,
  createTestNamespace,
  describeK8s,
  describePod,
  k8sEnv,
  listPods,
  podProcess,
  PROJECT_IMAGE,
  waitFor,
  type TestNamespace,
} from '../../harness/k8s.js';
import { hash, signBody } from '../../signer/support.js';

const TOKEN = 'image-e2e-token-0123456789abcdef0123456789';
const env = k8sEnv();
if (env.available && !env.imageRef) {
  if (process.env.HA_SIGNER_REQUIRE_IMAGE === '1') throw new Error(`image required (HA_SIGNER_REQUIRE_IMAGE=1): ${env.imageSkipReason}`);
  console.warn(env.imageSkipReason);
}

describeK8s('operator end to end on the built image', () => {
  const timings: Record<string, Record<string, number>> = {};
  const namespaces: TestNamespace[] = [];
  const helm = createHelm('ha-signer-image-e2e-');
  afterAll(async () => {
    console.log(`operator e2e timings, image-backed pods vs checkout mode (ms): ${JSON.stringify(timings)}`);
    for (const ns of namespaces) await ns.delete();
    helm.remove();
  });

  const modes: [mode: 'image' | 'checkout', image: string | undefined][] = [
    ['image', env.imageRef],
    ['checkout', PROJECT_IMAGE],
  ];
  describe.each(modes)('%s mode', (mode, image) => {
    it.skipIf(!image)(
      'chart install -> operator Ready -> ValidatorHASigner Ready -> one duty signed through the Service endpoints',
      async () => {
        const ns = await createTestNamespace(`img-${mode.slice(0, 4)}`);
        namespaces.push(ns);
        const t: Record<string, number> = {};
        timings[mode] = t;
        const t0 = Date.now();
        installChart(helm, {
          release: chartRelease(ns.name).release,
          namespace: ns.name,
          image: { ref: image! },
          replicas: 1,
          fastLeaderElection: true,
          timeout: '170s',
        });
        t.helmInstallToOperatorReady = Date.now() - t0;

        const key = (await createSignerSecrets(ns.name, { database: `image_e2e_${mode}`, token: TOKEN })) as Hex;
        const address = privateKeyToAccount(key).address.toLowerCase();
        t.applyToReady = await applyTokenSigner(ns.name, 'alpha', { replicas: 2, timeoutMs: 170_000 });

        // Every pod of the path ran in the expected mode: the operator, the migration Job and both signer replicas.
        const pods = await listPods(ns.name);
        const kinds = new Map<string, string>();
        for (const p of pods) {
          const name = p.metadata!.name!;
          const component =
            p.metadata!.labels?.['app.kubernetes.io/component'] ?? (p.metadata!.labels?.['job-name'] ? 'migration' : 'operator');
          const state = podProcess(ns.name, name);
          expect(state?.mode, `${name}: ${await describePod(ns.name, p)}`).toBe(mode);
          kinds.set(component, name);
        }
        expect([...kinds.keys()]).toEqual(expect.arrayContaining(['signer', 'operator']));
        expect(pods.some((p) => p.metadata!.name!.startsWith('alpha-migrate-'))).toBe(true);
        if (mode === 'image') {
          // The signer's process: the image's node as uid 1000, rooted in the image (not the checkout).
          const signer = pods.find((p) => p.metadata!.labels?.['app.kubernetes.io/component'] === 'signer')!;
          const pid = podProcess(ns.name, signer.metadata!.name!)!.pid!;
          expect(execFileSync('readlink', [`/proc/${pid}/exe`], { encoding: 'utf8' }).trim()).toMatch(/\/nodejs\/bin\/node$/);
          expect(execFileSync('grep', ['^Uid:', `/proc/${pid}/status`], { encoding: 'utf8' })).toMatch(/^Uid:\s+1000\s/);
        }

        // One duty through the Service's endpoints, as validator pods reach the signer.
        const t2 = Date.now();
        const messageHash = hash(`image-e2e-${mode}`);
        // Both endpoints ready first (a probe path): retrying the sign itself could sign on one endpoint and then
        // see 409 from both on the retry.
        await waitFor(
          async () => {
            const ready = await callService(ns.name, 'alpha', '/readyz', { portName: 'http' });
            return ready.filter((a) => a.status === 200).length === 2 ? true : undefined;
          },
          { timeoutMs: 30_000, message: 'two ready signer endpoints' },
        );
        const answers = await callService(ns.name, 'alpha', `/v1/validators/${address}/sign`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify(signBody(7, messageHash)),
          portName: 'http',
        });
        expect(answers).toHaveLength(2);
        t.signThroughService = Date.now() - t2;
        const bodies = answers.map((a) => ({ status: a.status, body: JSON.parse(a.body) as { signature?: Hex; error?: string } }));
        expect(bodies.map((b) => b.status).sort(), JSON.stringify(bodies)).toEqual([200, 409]);
        expect(bodies.find((b) => b.status === 409)!.body.error).toBe('DutyAlreadySigned');
        const signatures = new Set(bodies.map((b) => b.body.signature));
        expect(signatures.size).toBe(1);
        expect((await recoverMessageAddress({ message: { raw: messageHash }, signature: [...signatures][0]! })).toLowerCase()).toBe(
          address,
        );
        t.total = Date.now() - t0;
        await deleteVhs(ns.name, 'alpha').catch(() => undefined);
      },
    );
  });
});

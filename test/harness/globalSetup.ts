/**
 * vitest globalSetup for Kubernetes tests: one control plane (etcd, kube-apiserver, kube-controller-manager) and one
 * local kubelet per test run, shared by all test files through `inject('k8s')` (see ./k8s.ts).
 *
 * Without built binaries the setup does nothing and k8s tests skip, with one line saying how to enable them;
 * set HA_SIGNER_REQUIRE_K8S=1 (CI) to fail instead.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { CONTROL_PLANE_BUILD_HINT, ControlPlane, findControlPlaneBinaries, REPO_ROOT } from './controlPlane.js';
import { findBuiltImage } from './image.js';
import { LocalKubelet } from './kubelet.js';
import { ImageContainers } from './kubelet-image.js';

export interface K8sTestEnv {
  available: boolean;
  skipReason?: string;
  version?: string;
  kubeconfigPath?: string;
  kubeletDir?: string;
  nodeName?: string;
  apiserverPort?: number;
  startMillis?: number;
  kubectl?: string;
  helm?: string;
  /** The built image (scripts/build-image.sh) whose pods the kubelet runs inside it; unset: checkout mode only. */
  imageRef?: string;
  /** Why there is no image mode in this run (one line). */
  imageSkipReason?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    k8s: K8sTestEnv;
  }
}

let plane: ControlPlane | undefined;
let kubelet: LocalKubelet | undefined;

export async function setup(project: TestProject): Promise<void> {
  const binaries = findControlPlaneBinaries();
  if (!binaries) {
    const skipReason = `Kubernetes tests skipped: control plane binaries not built; run \`${CONTROL_PLANE_BUILD_HINT}\` (needs Go >= 1.26) to enable them`;
    if (process.env.HA_SIGNER_REQUIRE_K8S === '1') throw new Error(skipReason.replace('skipped', 'required (HA_SIGNER_REQUIRE_K8S=1)'));
    console.warn(skipReason);
    project.provide('k8s', { available: false, skipReason });
    return;
  }
  // HA_SIGNER_K8S_SKIP_CRDS=1 starts without applying crds/ (while developing a CRD that does not apply yet).
  const crdDir = process.env.HA_SIGNER_K8S_SKIP_CRDS === '1' ? undefined : path.join(REPO_ROOT, 'crds');
  plane = await ControlPlane.start({ binaries, ...(crdDir ? { crdDir } : {}) });
  console.log(
    `control plane: kubernetes ${binaries.version} ready in ${(plane.startMillis / 1000).toFixed(1)}s at ${plane.server} (kubeconfig ${plane.kubeconfigPath})`,
  );
  const kubeletDir = await mkdtemp(path.join(os.tmpdir(), 'ha-signer-kubelet-'));
  // Image mode: pods of the built image run inside it; pods of other project image names run from the checkout.
  const built = findBuiltImage();
  if (built.available)
    console.log(`local kubelet: pods of ${built.image!.ref} run inside the image; other ha-signer images from the checkout`);
  kubelet = new LocalKubelet({
    ...(built.available ? { imageContainers: new ImageContainers(built.image!) } : {}),
    kubeConfig: plane.kubeConfig(),
    dir: kubeletDir,
    apiserverHost: '127.0.0.1',
    apiserverPort: plane.apiserverPort,
    // HA_SIGNER_TEST_CLI: run another CLI script than dist/cli.js (for developing the harness itself).
    ...(process.env.HA_SIGNER_TEST_CLI ? { cliPath: path.resolve(process.env.HA_SIGNER_TEST_CLI) } : {}),
  });
  try {
    await kubelet.start();
  } catch (err) {
    await teardown();
    throw err;
  }
  project.provide('k8s', {
    available: true,
    version: binaries.version,
    kubeconfigPath: plane.kubeconfigPath,
    kubeletDir,
    nodeName: kubelet.nodeName,
    apiserverPort: plane.apiserverPort,
    startMillis: plane.startMillis,
    kubectl: binaries.kubectl,
    helm: binaries.helm,
    ...(built.available ? { imageRef: built.image!.ref } : { imageSkipReason: built.skipReason! }),
  });
}

export async function teardown(): Promise<void> {
  // HA_SIGNER_KEEP_K8S_LOGS=1 keeps the kubelet's pod logs (the path is printed).
  const keep = process.env.HA_SIGNER_KEEP_K8S_LOGS === '1';
  if (keep && kubelet) console.log(`kubelet and control plane logs kept in ${kubelet.dir}`);
  await kubelet?.stop({ keepDir: keep }).catch((e: Error) => console.error(`kubelet stop: ${e.message}`));
  await plane?.stop(keep && kubelet ? { keepLogsIn: path.join(kubelet.dir, 'control-plane') } : {});
  kubelet = undefined;
  plane = undefined;
}

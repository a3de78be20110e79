/**
 * Image mode of the local kubelet: containers whose image is the one scripts/build-image.sh built run inside that
 * image (./image-runtime.ts) instead of as `node dist/cli.js` from the checkout:
 *
 * - argv as a container runtime forms it: `command` replaces the image's ENTRYPOINT, `args` its CMD;
 * - env: the image's ENV, then HOSTNAME and KUBERNETES_SERVICE_*, then the pod's resolved env, then
 *   HA_SIGNER_LISTEN_HOST=<pod IP> (pods share the host network on loopback addresses); no HA_SIGNER_FS_ROOT: files
 *   are at their real paths;
 * - user: runAsUser/runAsGroup of the container, else the pod, else the image's USER; runAsNonRoot refuses uid 0;
 *   readOnlyRootFilesystem and allowPrivilegeEscalation=false are applied;
 * - volumes: the kubelet's materialized volume directories bind-mounted at their mountPaths (subPath, readOnly);
 *   emptyDir is world-writable like Kubernetes'; with fsGroup the other volumes become group-owned and
 *   group-readable by it, without it owned by the container's user, so a non-root process reads its token and keys.
 */
import type { ChildProcess } from 'node:child_process';
import { lstat, readdir, chmod, chown } from 'node:fs/promises';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { imageEnv, imageUser, type BuiltImage } from './image.js';
import { spawnInImage, type ImageMount } from './image-runtime.js';

const SA_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ImageContainerStart {
  pod: k8s.V1Pod;
  container: k8s.V1Container;
  /** The checkout-mode container root: volume symlinks at the mount paths, and dev/termination-log. */
  containerRoot: string;
  /** Where the kubelet materialized the pod's volumes (one directory per volume). */
  volumesDir: string;
  /** Resolved env of the container (env, envFrom). */
  env: Record<string, string>;
  /** command and args with $(VAR) already expanded; undefined when the container does not set them. */
  command?: string[];
  args?: string[];
  podIP: string;
  apiserverHost: string;
  apiserverPort: number;
}

export class ImageContainers {
  constructor(readonly image: BuiltImage) {}

  /** True for the built image's references: its tag, `:dev`, `name@digest` and the image id. */
  handles(ref: string | undefined): boolean {
    if (!ref) return false;
    const name = this.image.ref.replace(/:[^:/]+$/, '');
    return (
      ref === this.image.ref ||
      ref === `${name}:dev` ||
      ref === `${name}@${this.image.digest}` ||
      ref === this.image.id ||
      ref === `sha256:${this.image.id}`
    );
  }

  /** The argv the image runs for this container (command replaces ENTRYPOINT, args replace CMD). */
  argv(command: string[] | undefined, args: string[] | undefined): string[] {
    if (command?.length) return [...command, ...(args ?? [])];
    return [...this.image.config.entrypoint, ...(args ?? this.image.config.cmd)];
  }

  async start(s: ImageContainerStart): Promise<{ child: ChildProcess; argv: string[] }> {
    const podSc = s.pod.spec!.securityContext ?? {};
    const sc = s.container.securityContext ?? {};
    const fromImage = imageUser(this.image);
    const uid = sc.runAsUser ?? podSc.runAsUser ?? fromImage.uid;
    const gid = sc.runAsGroup ?? podSc.runAsGroup ?? fromImage.gid;
    if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) && uid === 0)
      throw new Error(
        `container has runAsNonRoot and image will run as root (pod: "${s.pod.metadata!.name}", container: ${s.container.name})`,
      );
    const mounts = await this.mounts(s);
    await this.ownVolumes(s, mounts, uid, gid, podSc.fsGroup);
    const hostname = s.pod.spec!.hostname ?? s.pod.metadata!.name!;
    const env: Record<string, string> = {
      ...imageEnv(this.image.config),
      HOSTNAME: hostname,
      HOME: '/',
      KUBERNETES_SERVICE_HOST: s.apiserverHost,
      KUBERNETES_SERVICE_PORT: String(s.apiserverPort),
      KUBERNETES_SERVICE_PORT_HTTPS: String(s.apiserverPort),
      KUBERNETES_PORT: `tcp://${s.apiserverHost}:${s.apiserverPort}`,
      ...s.env,
      HA_SIGNER_LISTEN_HOST: s.podIP,
    };
    const argv = this.argv(s.command, s.args);
    const child = await spawnInImage({
      image: this.image,
      dir: path.join(s.containerRoot, '.image'),
      argv,
      env,
      uid,
      gid,
      workingDir: s.container.workingDir ?? this.image.config.workingDir ?? '/',
      readOnlyRoot: sc.readOnlyRootFilesystem === true,
      noNewPrivileges: sc.allowPrivilegeEscalation === false,
      mounts,
      hostname,
      ip: s.podIP,
      terminationLog: path.join(s.containerRoot, s.container.terminationMessagePath ?? '/dev/termination-log'),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    return { child, argv };
  }

  /** The container's volumeMounts (and the automounted ServiceAccount token the kubelet linked) as bind mounts. */
  private async mounts(s: ImageContainerStart): Promise<ImageMount[]> {
    const volumes = new Set((s.pod.spec!.volumes ?? []).map((v) => v.name));
    const out: ImageMount[] = [];
    for (const m of s.container.volumeMounts ?? []) {
      if (!volumes.has(m.name)) throw new Error(`container ${s.container.name}: volume ${m.name} not found`);
      const source = m.subPath ? path.join(s.volumesDir, m.name, m.subPath) : path.join(s.volumesDir, m.name);
      out.push({ source, target: path.posix.normalize(m.mountPath), readOnly: m.readOnly === true });
    }
    if (!out.some((m) => m.target === SA_PATH)) {
      const linked = await lstat(path.join(s.containerRoot, SA_PATH)).catch(() => undefined);
      if (linked?.isSymbolicLink()) out.push({ source: path.join(s.volumesDir, '.serviceaccount'), target: SA_PATH, readOnly: true });
    }
    return out;
  }

  private async ownVolumes(
    s: ImageContainerStart,
    mounts: ImageMount[],
    uid: number,
    gid: number,
    fsGroup: number | undefined,
  ): Promise<void> {
    const emptyDirs = new Set((s.pod.spec!.volumes ?? []).filter((v) => v.emptyDir).map((v) => path.join(s.volumesDir, v.name)));
    for (const m of mounts) {
      const volumeDir = m.source.startsWith(s.volumesDir + path.sep)
        ? path.join(s.volumesDir, path.relative(s.volumesDir, m.source).split(path.sep)[0]!)
        : m.source;
      if (emptyDirs.has(volumeDir)) {
        await chmod(volumeDir, 0o777); // as Kubernetes makes emptyDir
        if (fsGroup !== undefined) await chown(volumeDir, 0, fsGroup);
        continue;
      }
      await walk(volumeDir, async (p, isDir, mode) => {
        if (fsGroup !== undefined) {
          await chown(p, 0, fsGroup);
          await chmod(p, (mode & 0o7777) | ((mode & 0o400) >> 3) | (isDir ? 0o050 : 0));
        } else {
          await chown(p, uid, gid);
        }
      });
    }
  }
}

async function walk(p: string, fn: (p: string, isDir: boolean, mode: number) => Promise<void>): Promise<void> {
  const st = await lstat(p).catch(() => undefined);
  if (!st || st.isSymbolicLink()) return;
  await fn(p, st.isDirectory(), st.mode);
  if (st.isDirectory()) for (const e of await readdir(p)) await walk(path.join(p, e), fn);
}

/**
 * The image built by scripts/build-image.sh, for tests that run it: where its root filesystem is mounted and what its
 * config says (entrypoint, env, user, working dir). `.cache/image/current.json` names the last build.
 *
 * Tests that need the image skip with one line when it is not built or buildah is missing; HA_SIGNER_REQUIRE_IMAGE=1
 * (CI, after building it) turns that into a failure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const IMAGE_BUILD_HINT = 'sudo bash scripts/build-image.sh (needs root, buildah and mmdebstrap: apt-get install buildah mmdebstrap)';

export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  labels: Record<string, string>;
}

export interface BuiltImage {
  ref: string;
  id: string;
  digest: string;
  key: string;
  /** The image's root filesystem (a buildah working container's mount; never written: containers use overlays). */
  rootfs: string;
  sizeBytes: number;
  buildSeconds: number;
  config: ImageConfig;
  sbom: string;
}

export interface ImageAvailability {
  available: boolean;
  image?: BuiltImage;
  skipReason?: string;
}

function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The last built image, or why there is none (one line). */
export function findBuiltImage(cacheDir = process.env.HA_SIGNER_IMAGE_CACHE ?? path.join(REPO_ROOT, '.cache/image')): ImageAvailability {
  const skip = (why: string): ImageAvailability => ({
    available: false,
    skipReason: `image tests skipped: ${why}; run \`${IMAGE_BUILD_HINT}\` to enable them`,
  });
  if (!commandExists('buildah')) return skip('buildah is not installed');
  if (process.getuid?.() !== 0) return skip('running the image (chroot, mounts) needs root');
  for (const tool of ['unshare', 'mount']) if (!commandExists(tool)) return skip(`${tool} (util-linux) is not installed`);
  const current = path.join(cacheDir, 'current.json');
  if (!existsSync(current)) return skip(`no image built (${path.relative(REPO_ROOT, current)} missing)`);
  const image = JSON.parse(readFileSync(current, 'utf8')) as BuiltImage;
  if (!existsSync(image.rootfs) || !statSync(image.rootfs).isDirectory())
    return skip(`the image's root filesystem ${image.rootfs} is gone`);
  return { available: true, image };
}

/** Like findBuiltImage, but throws (naming the fix) when HA_SIGNER_REQUIRE_IMAGE=1 and the image is unavailable. */
export function requireImageIfAsked(found = findBuiltImage()): ImageAvailability {
  if (!found.available && process.env.HA_SIGNER_REQUIRE_IMAGE === '1') {
    throw new Error(found.skipReason!.replace('image tests skipped', 'image required (HA_SIGNER_REQUIRE_IMAGE=1)'));
  }
  return found;
}

/** `NAME=value` list of the image config as an object. */
export function imageEnv(config: ImageConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of config.env) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** The image's `USER` as numbers; names are looked up in the image's /etc/passwd and /etc/group. */
export function imageUser(image: BuiltImage): { uid: number; gid: number } {
  const [u = '0', g] = image.config.user.split(':');
  const lookup = (file: string, name: string, field: number): number | undefined => {
    try {
      const line = readFileSync(path.join(image.rootfs, file), 'utf8')
        .split('\n')
        .find((l) => l.split(':')[0] === name);
      return line ? Number(line.split(':')[field]) : undefined;
    } catch {
      return undefined;
    }
  };
  const uid = /^\d+$/.test(u) ? Number(u) : lookup('etc/passwd', u, 2);
  if (uid === undefined) throw new Error(`image USER ${u} is not numeric and not in the image's /etc/passwd`);
  const gid = g === undefined ? (lookup('etc/passwd', u, 3) ?? uid) : /^\d+$/.test(g) ? Number(g) : lookup('etc/group', g, 2);
  if (gid === undefined) throw new Error(`image group ${g} is not numeric and not in the image's /etc/group`);
  return { uid, gid };
}

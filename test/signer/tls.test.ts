/**
 * HTTPS on the signing port (HA_SIGNER_TLS_CERT_FILE / HA_SIGNER_TLS_KEY_FILE) with a CA and certificates made by the
 * openssl CLI: RemoteHASigner signs when it trusts the CA and refuses an untrusted certificate (nothing claimed),
 * stock Node clients trust it through NODE_EXTRA_CA_CERTS, probes and metrics stay on the plain-HTTP metrics port,
 * a rotated certificate (kubelet-style `..data` symlink swap) is served without a restart, and start-up refuses a
 * missing, malformed or mismatched pair naming the variable and the file.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteHASigner, RemoteSignerError } from '../../src/client/index.js';
import { freePort } from '../../src/dev/embedded-postgres.js';
import { CLI_PATH, type SignerReplica, startReplica } from '../../src/demo/replicas.js';
import { createTestDatabase } from '../support/postgres.js';
import { KEYS, TOKENS, assertBuilt, hash, migratedDatabase, signerFixture, type SignerFixture } from './support.js';
import { issueServerCert, makeCa, type ServerCert, type TestCa } from './tls-certs.js';

let databaseUrl: string;
let fixture: SignerFixture;
let dir: string;
let caA: TestCa;
let caB: TestCa;
let tlsDir: string;
let replica: SignerReplica;
let port: number;
let metricsPort: number;
let slot = 1000;

const httpsUrl = (): string => `https://127.0.0.1:${port}`;

/** Writes a cert/key pair the way the kubelet updates a Secret volume: a new directory, then an atomic `..data` swap. */
async function mountPair(pair: ServerCert, version: string): Promise<void> {
  const data = join(tlsDir, `..${version}`);
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'tls.crt'), pair.certPem);
  await writeFile(join(data, 'tls.key'), pair.keyPem);
  await symlink(`..${version}`, join(tlsDir, '..data_tmp'));
  await rename(join(tlsDir, '..data_tmp'), join(tlsDir, '..data'));
}

/** The fingerprint of the certificate the signing port presents to a new connection. */
function presentedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: [caA.certPem, caB.certPem] }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} not within ${timeoutMs} ms:\n${replica.output().slice(-20).join('\n')}`);
}

const client = (options: Partial<ConstructorParameters<typeof RemoteHASigner>[0]> = {}): RemoteHASigner =>
  new RemoteHASigner({ endpoints: [httpsUrl()], token: TOKENS.all, maxRounds: 1, ...options });

beforeAll(async () => {
  assertBuilt();
  databaseUrl = await migratedDatabase(await createTestDatabase('signer_tls'));
  fixture = await signerFixture(databaseUrl);
  dir = await mkdtemp(join(tmpdir(), 'ha-signer-tls-'));
  caA = makeCa(dir, 'ca-a');
  caB = makeCa(dir, 'ca-b');
  tlsDir = join(dir, 'tls');
  await mkdir(tlsDir);
  await mountPair(issueServerCert(dir, caA, 'server-a'), 'v1');
  await symlink('..data/tls.crt', join(tlsDir, 'tls.crt'));
  await symlink('..data/tls.key', join(tlsDir, 'tls.key'));
  port = await freePort();
  metricsPort = await freePort();
  replica = startReplica({
    nodeId: 'tls-1',
    port,
    env: {
      ...fixture.baseEnv,
      HA_SIGNER_TLS_CERT_FILE: join(tlsDir, 'tls.crt'),
      HA_SIGNER_TLS_KEY_FILE: join(tlsDir, 'tls.key'),
      HA_SIGNER_METRICS_PORT: String(metricsPort),
      HA_SIGNER_LOG_LEVEL: 'info',
    },
  });
  // Readiness as the kubelet sees it: plain HTTP on the metrics port.
  await waitUntil('ready on the metrics port', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200, 30_000);
});

afterAll(async () => {
  await replica?.stop(5_000);
  await fixture?.stopAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('HTTPS signing port', () => {
  it('RemoteHASigner signs over HTTPS when it trusts the CA (ca and caFile)', async () => {
    for (const options of [{ ca: caA.certPem }, { caFile: caA.certFile }]) {
      const messageHash = hash(`tls-${slot}`);
      const result = await client(options).sign(KEYS[0]!.address, messageHash, { dutyType: 'ATTESTATION', slot: BigInt(slot++) });
      expect(result.endpoint).toBe(httpsUrl());
      expect((await recoverMessageAddress({ message: { raw: messageHash }, signature: result.signature as Hex })).toLowerCase()).toBe(
        KEYS[0]!.address,
      );
    }
  });

  it('refuses an untrusted certificate before anything is claimed', async () => {
    const duty = { dutyType: 'ATTESTATION' as const, slot: BigInt(slot++) };
    const messageHash = hash(`untrusted-${duty.slot}`);
    for (const untrusting of [client(), client({ ca: caB.certPem })]) {
      const error = await untrusting.sign(KEYS[0]!.address, messageHash, duty).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteSignerError);
      expect((error as RemoteSignerError).code).toMatch(
        /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/,
      );
      expect((error as RemoteSignerError).message).toContain('TLS certificate not accepted');
    }
    // No request reached the server: the same duty is still free and signs (200, not 409).
    const signed = await client({ ca: caA.certPem }).sign(KEYS[0]!.address, messageHash, duty);
    expect(signed.signature).toMatch(/^0x[0-9a-f]{130}$/);
  });

  it('gives no HTTP answer to plain HTTP on the signing port', async () => {
    await expect(fetch(`http://127.0.0.1:${port}/v1/validators`, { headers: { authorization: `Bearer ${TOKENS.all}` } })).rejects.toThrow();
  });

  it('stock Node clients trust it through NODE_EXTRA_CA_CERTS (how an unmodified Aztec node is pointed at it)', async () => {
    const script = `fetch(${JSON.stringify(`${httpsUrl()}/v1/validators`)}, { headers: { authorization: 'Bearer ${TOKENS.all}' } })
      .then(async (r) => console.log(r.status, (await r.json()).validators.length), (e) => console.log('error', e.cause?.code ?? e.message))`;
    const run = async (env: Record<string, string>): Promise<string> =>
      (await promisify(execFile)(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', ...env } })).stdout.trim();
    expect(await run({ NODE_EXTRA_CA_CERTS: caA.certFile })).toBe(`200 ${KEYS.length}`);
    expect(await run({})).toMatch(/^error (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/);
  });

  it('serves probes and metrics on the plain-HTTP metrics port, and nothing of the API there', async () => {
    const base = `http://127.0.0.1:${metricsPort}`;
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^ha_signer_tls_certificate_not_after_seconds \d+/m);
    expect(metrics).toMatch(/^ha_signer_sign_requests_total\{/m);
    const api = await fetch(`${base}/v1/validators`, { headers: { authorization: `Bearer ${TOKENS.all}` } });
    expect(api.status).toBe(404);
    const sign = await fetch(`${base}/v1/validators/${KEYS[0]!.address}/sign`, { method: 'POST', body: '{}' });
    expect(sign.status).toBe(404);
  });

  it('serves a rotated certificate without a restart', async () => {
    const before = await presentedFingerprint();
    const next = issueServerCert(dir, caB, 'server-b');
    await mountPair(next, 'v2');
    const { X509Certificate } = await import('node:crypto');
    const expected = new X509Certificate(next.certPem).fingerprint256;
    expect(expected).not.toBe(before);
    await waitUntil('rotated certificate served', async () => (await presentedFingerprint()) === expected);
    expect(replica.running).toBe(true);
    const messageHash = hash(`rotated-${slot}`);
    const signed = await client({ ca: caB.certPem }).sign(KEYS[1]!.address, messageHash, { dutyType: 'ATTESTATION', slot: BigInt(slot++) });
    expect(signed.signature).toMatch(/^0x/);
    const old = await client({ ca: caA.certPem })
      .validators()
      .catch((e: unknown) => e);
    expect(old).toBeInstanceOf(RemoteSignerError);
    expect(replica.output().some((line) => line.includes('TLS certificate reloaded'))).toBe(true);
  });

  it('keeps serving the last valid certificate when the mounted pair becomes invalid', async () => {
    const current = await presentedFingerprint();
    const other = issueServerCert(dir, caA, 'server-c');
    const mismatched = { ...other, keyPem: issueServerCert(dir, caA, 'server-d').keyPem };
    await mountPair(mismatched, 'v3');
    await waitUntil('invalid pair logged', async () =>
      replica.output().some((line) => line.includes('TLS files changed but are not usable')),
    );
    expect(await presentedFingerprint()).toBe(current);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200);
  });
});

describe('serve refuses a bad TLS configuration at start-up', () => {
  async function serveExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [CLI_PATH, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...fixture.baseEnv,
        VALIDATOR_HA_NODE_ID: 'tls-startup',
        HA_SIGNER_LISTEN_HOST: '127.0.0.1',
        HA_SIGNER_PORT: String(await freePort()),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    return { code, output };
  }

  it('a missing certificate file, naming the variable and the file', async () => {
    const server = issueServerCert(dir, caA, 'startup-missing');
    const missing = join(dir, 'no-such.crt');
    const result = await serveExit({ HA_SIGNER_TLS_CERT_FILE: missing, HA_SIGNER_TLS_KEY_FILE: server.keyFile });
    expect(result.code).toBe(2);
    expect(result.output).toContain(`HA_SIGNER_TLS_CERT_FILE: cannot read ${missing}: ENOENT`);
  });

  it('a key that belongs to another certificate, naming both files', async () => {
    const server = issueServerCert(dir, caA, 'startup-cert');
    const other = issueServerCert(dir, caA, 'startup-other');
    const result = await serveExit({ HA_SIGNER_TLS_CERT_FILE: server.certFile, HA_SIGNER_TLS_KEY_FILE: other.keyFile });
    expect(result.code).toBe(2);
    expect(result.output).toContain(`HA_SIGNER_TLS_KEY_FILE: ${other.keyFile} does not belong to the certificate in ${server.certFile}`);
    expect(result.output).not.toContain(other.keyPem.split('\n')[1]!);
  });

  it('a file that is not a certificate, a key that is not a key, and one variable without the other', async () => {
    const server = issueServerCert(dir, caA, 'startup-garbage');
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a pem\n');
    let result = await serveExit({ HA_SIGNER_TLS_CERT_FILE: garbage, HA_SIGNER_TLS_KEY_FILE: server.keyFile });
    expect(result.code).toBe(2);
    expect(result.output).toContain(`HA_SIGNER_TLS_CERT_FILE: ${garbage} is not a PEM certificate`);
    result = await serveExit({ HA_SIGNER_TLS_CERT_FILE: server.certFile, HA_SIGNER_TLS_KEY_FILE: garbage });
    expect(result.code).toBe(2);
    expect(result.output).toContain(`HA_SIGNER_TLS_KEY_FILE: ${garbage} is not an unencrypted PEM private key`);
    result = await serveExit({ HA_SIGNER_TLS_CERT_FILE: server.certFile });
    expect(result.code).toBe(2);
    expect(result.output).toContain('HA_SIGNER_TLS_KEY_FILE: is required when HA_SIGNER_TLS_CERT_FILE is set');
    result = await serveExit({ HA_SIGNER_METRICS_PORT: '70000' });
    expect(result.code).toBe(2);
    expect(result.output).toContain('HA_SIGNER_METRICS_PORT');
  });
});

/** Pure pieces of the signer: request validation, key and keystore parsing, auth matching, config, error mapping. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashTypedData } from 'viem';
import { describe, expect, it } from 'vitest';
import { isConnectionError } from '../../src/client/index.js';
import {
  ConfigError,
  DutyAlreadySignedError,
  DutyType,
  SlashingProtectionError,
  DatabaseUnavailableError,
} from '../../src/protection/index.js';
import {
  CallerAuthenticator,
  bearerToken,
  kubernetesTokenReviewer,
  parseServiceAccountsFile,
  parseTokensFile,
  type TokenReviewer,
} from '../../src/signer/auth.js';
import { BackendSigningError } from '../../src/signer/backends.js';
import { applyServeFlags, serveConfigFromEnv, underFsRoot } from '../../src/signer/config.js';
import { accountFromHexKey, accountFromKeyFile } from '../../src/signer/keys.js';
import { decryptV3Keystore, encryptV3Keystore } from '../../src/signer/keystore.js';
import { signErrorResponse } from '../../src/signer/server.js';
import { InvalidRequestError, parseSignRequest, parseSlotRange } from '../../src/signer/validation.js';
import { KEYS, hash } from './support.js';

const ROLLUP = '0x00000000000000000000000000000000000a11ce';
const VALIDATOR = KEYS[0]!.address;

describe('parseSignRequest', () => {
  const parse = (body: unknown) => parseSignRequest(VALIDATOR, body);
  const fieldOf = (body: unknown): string => {
    try {
      parse(body);
    } catch (error) {
      if (error instanceof InvalidRequestError) return error.field;
      throw error;
    }
    throw new Error('accepted');
  };

  it('normalizes a valid request into the duty the core will record', () => {
    const request = parse({
      messageHash: hash('a').toUpperCase().replace('0X', '0x'),
      context: { dutyType: 'BLOCK_PROPOSAL', slot: '18446744073', blockNumber: 50, checkpointNumber: '7', blockIndexWithinCheckpoint: '2' },
    });
    expect(request.signingMethod).toBe('personal');
    expect(request.messageHash).toBe(hash('a'));
    expect(request.duty).toMatchObject({
      validatorAddress: VALIDATOR,
      slot: 18446744073n,
      blockNumber: 50n,
      checkpointNumber: 7n,
      blockIndexWithinCheckpoint: 2,
      dutyType: DutyType.BLOCK_PROPOSAL,
    });
    expect(
      parse({
        messageHash: hash('b'),
        signingMethod: 'digest',
        context: { dutyType: 'GOVERNANCE_VOTE', slot: 3, blockIndexWithinCheckpoint: 4 },
      }).duty.blockIndexWithinCheckpoint,
    ).toBe(-1);
  });

  it('names the field of each malformed input', () => {
    const good = { messageHash: hash('a'), context: { dutyType: 'ATTESTATION', slot: '1' } };
    expect(fieldOf(null)).toBe('body');
    expect(fieldOf({ ...good, messageHash: '0x12' })).toBe('messageHash');
    expect(fieldOf({ ...good, signingMethod: 'typed' })).toBe('signingMethod');
    expect(fieldOf({ ...good, context: { ...good.context, dutyType: 'TXS' } })).toBe('context.dutyType');
    expect(fieldOf({ ...good, context: { ...good.context, slot: -2 } })).toBe('context.slot');
    expect(fieldOf({ ...good, context: { ...good.context, slot: '0x10' } })).toBe('context.slot');
    expect(fieldOf({ ...good, context: { ...good.context, dutyType: 'BLOCK_PROPOSAL' } })).toBe('context.blockIndexWithinCheckpoint');
    expect(fieldOf({ ...good, context: { ...good.context, checkpointNumber: 1.25 } })).toBe('context.checkpointNumber');
    expect(fieldOf({ ...good, extra: true })).toBe('extra');
  });

  it('accepts typed data only with digest signing and only when it hashes to messageHash', () => {
    const typedData = {
      domain: { name: 'Gov', version: '1', chainId: 1 },
      types: { Vote: [{ name: 'round', type: 'uint256' }] },
      primaryType: 'Vote',
      message: { round: '5' },
    };
    // Over JSON a uint256 arrives as a decimal string; viem encodes it like the bigint its types ask for.
    const digest = hashTypedData(typedData as unknown as Parameters<typeof hashTypedData>[0]);
    const context = { dutyType: 'GOVERNANCE_VOTE', slot: '9' };
    expect(parse({ messageHash: digest, signingMethod: 'digest', context, typedData }).typedData).toEqual(typedData);
    expect(fieldOf({ messageHash: hash('other'), signingMethod: 'digest', context, typedData })).toBe('typedData');
    expect(fieldOf({ messageHash: digest, context, typedData })).toBe('typedData');
  });

  it('parses slot ranges for the audit endpoint', () => {
    expect(parseSlotRange({ fromSlot: '5', toSlot: '9' })).toEqual({ fromSlot: 5n, toSlot: 9n, limit: 1000 });
    expect(() => parseSlotRange({ fromSlot: '9', toSlot: '5' })).toThrow(InvalidRequestError);
    expect(() => parseSlotRange({ limit: '0' })).toThrow(/limit/);
    expect(() => parseSlotRange({ fromSlot: ['1', '2'] })).toThrow(/fromSlot/);
    expect(() => parseSlotRange({ other: '1' })).toThrow(/other/);
  });
});

describe('keys', () => {
  it('parses hex private keys with or without 0x', () => {
    expect(accountFromHexKey(`${KEYS[0]!.privateKey}\n`, 'k').address.toLowerCase()).toBe(KEYS[0]!.address);
    expect(accountFromHexKey(KEYS[0]!.privateKey.slice(2), 'k').address.toLowerCase()).toBe(KEYS[0]!.address);
  });

  it('refuses malformed keys naming the file and never quoting the content', () => {
    for (const text of ['0x1234', 'z'.repeat(64), `0x${'0'.repeat(64)}`, `0x${'f'.repeat(64)}`, '']) {
      let message = '';
      try {
        accountFromHexKey(text, '/keys/v.key');
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toContain('/keys/v.key');
      if (text.length > 8) expect(message).not.toContain(text.slice(2, 20));
    }
  });

  it('decrypts the Web3 Secret Storage PBKDF2 test vector', async () => {
    const vector = {
      crypto: {
        cipher: 'aes-128-ctr',
        cipherparams: { iv: '6087dab2f9fdbbfaddc31a909735c1e6' },
        ciphertext: '5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46',
        kdf: 'pbkdf2',
        kdfparams: { c: 262144, dklen: 32, prf: 'hmac-sha256', salt: 'ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd' },
        mac: '517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2',
      },
      id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
      version: 3,
    };
    expect((await decryptV3Keystore(JSON.stringify(vector), 'testpassword')).privateKey).toBe(
      '0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d',
    );
    await expect(decryptV3Keystore(JSON.stringify(vector), 'wrong')).rejects.toThrow(/MAC mismatch/);
    const tampered = { ...vector, crypto: { ...vector.crypto, ciphertext: `00${vector.crypto.ciphertext.slice(2)}` } };
    await expect(decryptV3Keystore(JSON.stringify(tampered), 'testpassword')).rejects.toThrow(/MAC mismatch/);
  });

  it('round-trips scrypt keystores, checks the declared address and needs a password', async () => {
    const keystore = await encryptV3Keystore(KEYS[1]!.privateKey, 'pw', { address: KEYS[1]!.address });
    const account = await accountFromKeyFile(keystore, '/k/a.json', async () => 'pw');
    expect(account.address.toLowerCase()).toBe(KEYS[1]!.address);
    const lying = JSON.stringify({ ...JSON.parse(keystore), address: KEYS[2]!.address.slice(2) });
    await expect(accountFromKeyFile(lying, '/k/a.json', async () => 'pw')).rejects.toThrow(/declares address/);
    await expect(accountFromKeyFile(keystore, '/k/a.json', async () => undefined)).rejects.toThrow(/\/k\/a\.json.*no password/);
    await expect(accountFromKeyFile('{"version":3}', '/k/b.json', async () => 'pw')).rejects.toThrow(/\/k\/b\.json/);
  });
});

describe('authentication', () => {
  const tokens = parseTokensFile(
    'tokens',
    JSON.stringify([
      { name: 'a', token: 'aaaaaaaaaaaaaaaaaaaa', validators: [KEYS[0]!.address.toUpperCase().replace('0X', '0x')] },
      { name: 'b', token: 'bbbbbbbbbbbbbbbbbbbb', validators: ['*'] },
    ]),
  );

  it('matches bearer tokens to their validators', async () => {
    const auth = new CallerAuthenticator({ tokens });
    const a = await auth.authenticate('Bearer aaaaaaaaaaaaaaaaaaaa');
    expect(a.ok && a.principal.id).toBe('token:a');
    expect(a.ok && a.principal.allows(KEYS[0]!.address)).toBe(true);
    expect(a.ok && a.principal.allows(KEYS[1]!.address)).toBe(false);
    const b = await auth.authenticate('bearer bbbbbbbbbbbbbbbbbbbb');
    expect(b.ok && b.principal.allows(KEYS[3]!.address)).toBe(true);
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false, status: 401, reason: 'missing' });
    expect(await auth.authenticate('Basic aaaaaaaaaaaaaaaaaaaa')).toMatchObject({ ok: false, reason: 'missing' });
    expect(await auth.authenticate('Bearer aaaaaaaaaaaaaaaaaaab')).toMatchObject({ ok: false, status: 401, reason: 'invalid' });
    expect(await auth.authenticate('Bearer aaaaaaaaaaaaaaaaaaaaa')).toMatchObject({ ok: false, reason: 'invalid' });
    expect(bearerToken('Bearer  x  ')).toBe('x');
  });

  it('validates the token and ServiceAccount files, naming the entry and never the token', () => {
    expect(() => parseTokensFile('f', '{')).toThrow(/f: is not valid JSON/);
    expect(() => parseTokensFile('f', JSON.stringify([{ name: 'x', token: 'short', validators: ['*'] }]))).toThrow(/f\[0\]\.token \(x\)/);
    expect(() => parseTokensFile('f', JSON.stringify([{ name: 'x', token: 'short', validators: ['*'] }]))).not.toThrow(/short/);
    expect(() => parseTokensFile('f', JSON.stringify([{ name: 'x', token: 'cccccccccccccccccccc', validators: ['0x12'] }]))).toThrow(
      /f\[0\]\.validators\[0\]/,
    );
    expect(() => parseTokensFile('f', JSON.stringify([{ name: 'x', token: 'cccccccccccccccccccc', validators: [] }]))).toThrow(
      /validators/,
    );
    expect(() =>
      parseTokensFile(
        'f',
        JSON.stringify([
          { name: 'x', token: 'cccccccccccccccccccc', validators: ['*'] },
          { name: 'y', token: 'cccccccccccccccccccc', validators: ['*'] },
        ]),
      ),
    ).toThrow(/same token/);
    expect(() => parseServiceAccountsFile('s', JSON.stringify([{ namespace: 'Bad_NS', name: 'x', validators: ['*'] }]))).toThrow(
      /s\[0\]\.namespace/,
    );
  });

  it('checks ServiceAccount tokens with TokenReview, caches answers and fails closed when the API is down', async () => {
    const calls: string[] = [];
    let down = false;
    const reviewer: TokenReviewer = {
      review: async (token) => {
        calls.push(token);
        if (down) throw new Error('API server unreachable');
        return token === 'sa-token'
          ? 'system:serviceaccount:validators:node-a'
          : token === 'other-sa'
            ? 'system:serviceaccount:validators:other'
            : undefined;
      },
    };
    let now = 0;
    const auth = new CallerAuthenticator({
      tokens,
      serviceAccounts: parseServiceAccountsFile(
        's',
        JSON.stringify([{ namespace: 'validators', name: 'node-a', validators: [KEYS[1]!.address] }]),
      ),
      reviewer,
      now: () => now,
    });
    const ok = await auth.authenticate('Bearer sa-token');
    expect(ok.ok && ok.principal.id).toBe('serviceaccount:validators/node-a');
    expect(ok.ok && ok.principal.allows(KEYS[1]!.address)).toBe(true);
    expect(ok.ok && ok.principal.allows(KEYS[0]!.address)).toBe(false);
    await auth.authenticate('Bearer sa-token');
    expect(calls).toEqual(['sa-token']);
    expect(await auth.authenticate('Bearer other-sa')).toMatchObject({ ok: false, status: 401 });
    // Static tokens never go to the API server.
    await auth.authenticate('Bearer aaaaaaaaaaaaaaaaaaaa');
    expect(calls).toEqual(['sa-token', 'other-sa']);
    now += 120_000;
    down = true;
    expect(await auth.authenticate('Bearer sa-token')).toMatchObject({ ok: false, status: 503 });
  });

  it('sends TokenReviews to the API server of the kubeconfig', async () => {
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const review = JSON.parse(body) as { spec: { token: string } };
        expect(request.url).toBe('/apis/authentication.k8s.io/v1/tokenreviews');
        const authenticated = review.spec.token === 'good';
        response.writeHead(201, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            status: { authenticated, ...(authenticated ? { user: { username: 'system:serviceaccount:ns:sa' } } : {}) },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = await mkdtemp(join(tmpdir(), 'kubeconfig-'));
    const kubeconfig = join(dir, 'config');
    const { port } = server.address() as AddressInfo;
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'reviewer' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const saved = { KUBECONFIG: process.env.KUBECONFIG, KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST };
    process.env.KUBECONFIG = kubeconfig;
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      const reviewer = await kubernetesTokenReviewer('');
      expect(await reviewer.review('good')).toBe('system:serviceaccount:ns:sa');
      expect(await reviewer.review('bad')).toBeUndefined();
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('serve configuration', () => {
  const env = {
    VALIDATOR_HA_DATABASE_URL: 'postgresql://u:p@db:5432/x',
    VALIDATOR_HA_ROLLUP_ADDRESS: ROLLUP,
    HA_SIGNER_AUTH_TOKENS_FILE: '/auth/tokens.json',
    POD_NAME: 'signer-0',
  };

  it('applies defaults, the pod name as node id, flags over variables and the FS root', () => {
    const config = serveConfigFromEnv({ ...env, HA_SIGNER_FS_ROOT: '/tmp/pod' });
    expect(config).toMatchObject({
      listenHost: '0.0.0.0',
      port: 8080,
      keysDir: '/tmp/pod/var/run/ha-signer/keys',
      jsonRpcEnabled: false,
      auth: { disabled: false, tokensFile: '/tmp/pod/auth/tokens.json' },
    });
    expect(config.protection.nodeId).toBe('signer-0');
    expect(config.protection.poolConnectionTimeoutMs).toBe(5_000);
    const flagged = applyServeFlags(['--port', '9000', '--jsonrpc-enabled', '--node-id', 'n1'], env);
    expect(serveConfigFromEnv(flagged.env)).toMatchObject({ port: 9000, jsonRpcEnabled: true, protection: { nodeId: 'n1' } });
    expect(underFsRoot('', '/a/b')).toBe('/a/b');
  });

  it('names the setting of each invalid value', () => {
    const message = (overrides: Record<string, string | undefined>): string => {
      try {
        serveConfigFromEnv({ ...env, ...overrides });
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(message({ HA_SIGNER_PORT: '70000' })).toContain('HA_SIGNER_PORT (--port)');
    expect(message({ HA_SIGNER_WEB3SIGNER_URL: 'ftp://x' })).toContain('HA_SIGNER_WEB3SIGNER_URL');
    expect(message({ HA_SIGNER_LOG_LEVEL: 'loud' })).toContain('HA_SIGNER_LOG_LEVEL');
    expect(message({ HA_SIGNER_FS_ROOT: 'relative' })).toContain('HA_SIGNER_FS_ROOT');
    expect(message({ HA_SIGNER_AUTH_TOKENS_FILE: undefined })).toContain('HA_SIGNER_AUTH_SERVICE_ACCOUNTS_FILE');
    expect(message({ VALIDATOR_HA_ROLLUP_ADDRESS: undefined })).toContain('VALIDATOR_HA_ROLLUP_ADDRESS');
    expect(() => applyServeFlags(['--no-such-flag'], env)).toThrow();
  });
});

describe('error mapping', () => {
  it('maps the core errors to the API answers and fails closed on anything unknown', () => {
    expect(signErrorResponse(new DutyAlreadySignedError(5n, DutyType.ATTESTATION, -1, 'n1', '0xsig'))).toMatchObject({
      status: 409,
      body: { error: 'DutyAlreadySigned', slot: '5', signature: '0xsig' },
    });
    expect(signErrorResponse(new SlashingProtectionError(5n, DutyType.ATTESTATION, -1, '0xa', '0xb', 'n1'))).toMatchObject({
      status: 409,
      body: { error: 'SlashingProtection', existingMessageHash: '0xa' },
    });
    expect(signErrorResponse(new DatabaseUnavailableError('down')).status).toBe(503);
    expect(signErrorResponse(Object.assign(new Error('terminating connection'), { code: '57P01' })).status).toBe(503);
    expect(signErrorResponse(new Error('anything')).status).toBe(503);
    expect(signErrorResponse(new BackendSigningError('remote down')).status).toBe(502);
  });

  it('treats only failures before an answer as connection errors (safe to retry elsewhere)', () => {
    expect(isConnectionError(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('timeout'), { name: 'TimeoutError', code: 23 }))).toBe(false);
    expect(isConnectionError(new Error('HTTP 500'))).toBe(false);
  });
});

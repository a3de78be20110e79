/**
 * V3 keystores as other tools write them: the scrypt vector of the Web3 Secret Storage definition, a keystore built
 * here with node:crypto alone (independent of the code under test), geth's spellings, and hostile parameters.
 */
import { createCipheriv, pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto';
import { keccak256 } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { decryptV3Keystore, encryptV3Keystore, KeystoreError } from '../../src/signer/keystore.js';

const KEY = '0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d';
const KEY_ADDRESS = privateKeyToAddress(KEY).toLowerCase();

/** A keystore from node:crypto primitives, the password taken as raw UTF-8 bytes (as geth does). */
function nodeKeystore(password: string, extra: Record<string, unknown> = {}, kdf: 'pbkdf2' | 'scrypt' = 'pbkdf2'): Record<string, unknown> {
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const passwordBytes = Buffer.from(password, 'utf8');
  const derived =
    kdf === 'pbkdf2' ? pbkdf2Sync(passwordBytes, salt, 1024, 32, 'sha256') : scryptSync(passwordBytes, salt, 32, { N: 4096, r: 8, p: 1 });
  const kdfparams =
    kdf === 'pbkdf2'
      ? { c: 1024, dklen: 32, prf: 'hmac-sha256', salt: salt.toString('hex') }
      : { n: 4096, r: 8, p: 1, dklen: 32, salt: salt.toString('hex') };
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(KEY.slice(2), 'hex')), cipher.final()]);
  const mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2);
  return {
    version: 3,
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf,
      kdfparams,
      mac,
    },
    ...extra,
  };
}

describe('V3 keystores', () => {
  it('refuses the Web3 Secret Storage scrypt test vector (r=1) with the fix named', async () => {
    const vector = {
      crypto: {
        cipher: 'aes-128-ctr',
        cipherparams: { iv: '83dbcc02d8ccb40e466191a123791e0e' },
        ciphertext: 'd172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c',
        kdf: 'scrypt',
        kdfparams: { dklen: 32, n: 262144, p: 8, r: 1, salt: 'ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19' },
        mac: '2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097',
      },
      id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
      version: 3,
    };
    // The page's r = 1 breaks RFC 7914 (n < 2^(16r)), which OpenSSL enforces: refused with the fix named.
    await expect(decryptV3Keystore(JSON.stringify(vector), 'testpassword')).rejects.toThrow(
      /outside RFC 7914.*re-encrypt the key with r=8/,
    );
  });

  it('reads keystores written without the code under test, with a password that NFKC normalisation would change', async () => {
    const password = 'pa\u0301ss \uFB01'; // decomposed á and the "ﬁ" ligature: raw UTF-8 differs from NFKC
    expect(password.normalize('NFKC')).not.toBe(password);
    for (const kdf of ['pbkdf2', 'scrypt'] as const) {
      const keystore = nodeKeystore(password, {}, kdf);
      expect((await decryptV3Keystore(JSON.stringify(keystore), password)).privateKey).toBe(KEY);
      await expect(decryptV3Keystore(JSON.stringify(keystore), password.normalize('NFKC'))).rejects.toThrow(/MAC mismatch/);
    }
  });

  it("accepts geth's spellings: upper-case Crypto, an address without 0x in any case; returns the declared address", async () => {
    const keystore = nodeKeystore('pw', { address: KEY_ADDRESS.slice(2).toUpperCase() });
    const { crypto, ...rest } = keystore;
    const result = await decryptV3Keystore(JSON.stringify({ ...rest, Crypto: crypto }), 'pw');
    expect(result).toEqual({ privateKey: KEY, declaredAddress: KEY_ADDRESS });
  });

  it('round-trips its own scrypt and pbkdf2 keystores', async () => {
    for (const kdf of ['scrypt', 'pbkdf2'] as const) {
      const json = await encryptV3Keystore(KEY, 'pw', { kdf, address: KEY_ADDRESS });
      expect(JSON.parse(json)).toMatchObject({ version: 3, address: KEY_ADDRESS.slice(2), crypto: { kdf } });
      expect(await decryptV3Keystore(json, 'pw')).toEqual({ privateKey: KEY, declaredAddress: KEY_ADDRESS });
    }
    expect(JSON.parse(await encryptV3Keystore(KEY, 'pw'))).not.toHaveProperty('address');
  });

  it('refuses hostile or malformed parameters before deriving anything, naming the field', async () => {
    const base = nodeKeystore('pw');
    const crypto = base.crypto as Record<string, unknown>;
    const withCrypto = (change: Record<string, unknown>): string => JSON.stringify({ ...base, crypto: { ...crypto, ...change } });
    const scryptParams = (n: number) => ({ kdf: 'scrypt', kdfparams: { dklen: 32, n, r: 8, p: 1, salt: 'ab' } });
    const cases: [string, RegExp][] = [
      [withCrypto(scryptParams(1 << 21)), /crypto\.kdfparams\.n: expected an integer from 2 to 1048576/],
      [withCrypto(scryptParams(3000)), /crypto\.kdfparams\.n: expected a power of two/],
      [withCrypto({ kdfparams: { ...(crypto.kdfparams as object), c: 1e9 } }), /crypto\.kdfparams\.c: expected an integer/],
      [withCrypto({ kdfparams: { ...(crypto.kdfparams as object), prf: 'hmac-sha512' } }), /crypto\.kdfparams\.prf: only hmac-sha256/],
      [withCrypto({ kdf: 'argon2' }), /crypto\.kdf: expected scrypt or pbkdf2/],
      [withCrypto({ cipher: 'aes-256-gcm' }), /crypto\.cipher: only aes-128-ctr/],
      [withCrypto({ ciphertext: 'abcd' }), /crypto\.ciphertext: expected 32 bytes/],
      [withCrypto({ mac: 'zz' }), /crypto\.mac: expected hex bytes/],
      [JSON.stringify({ ...base, version: 4 }), /version: expected 3, got 4/],
      ['{not json', /not valid JSON/],
    ];
    for (const [json, message] of cases) {
      const error = await decryptV3Keystore(json, 'pw').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(KeystoreError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

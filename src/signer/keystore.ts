/**
 * Ethereum V3 keystores (Web3 Secret Storage): scrypt or pbkdf2-hmac-sha256 key derivation, keccak-256 MAC,
 * aes-128-ctr. viem has no keystore support; node:crypto has every primitive and viem gives keccak-256.
 * Errors never contain key material or the password.
 */
import { createDecipheriv, createCipheriv, pbkdf2, randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { promisify } from 'node:util';
import { keccak256 } from 'viem';

const scryptAsync = promisify<string | Buffer, Buffer, number, ScryptOptions, Buffer>(scrypt);
const pbkdf2Async = promisify(pbkdf2);

export class KeystoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeystoreError';
  }
}

interface ScryptParams {
  dklen: number;
  n: number;
  r: number;
  p: number;
  salt: string;
}
interface Pbkdf2Params {
  dklen: number;
  c: number;
  prf: string;
  salt: string;
}
export interface V3Keystore {
  version: 3;
  address?: string;
  crypto: {
    cipher: 'aes-128-ctr';
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: 'scrypt' | 'pbkdf2';
    kdfparams: ScryptParams | Pbkdf2Params;
    mac: string;
  };
}

const HEX = /^(0x)?([0-9a-fA-F]{2})*$/;
/** Upper bounds keep a hostile keystore from making start-up allocate gigabytes or spin for minutes. */
const MAX_SCRYPT_N = 1 << 20;
const MAX_PBKDF2_ROUNDS = 10_000_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hexField(owner: Record<string, unknown>, name: string, path: string): Buffer {
  const value = owner[name];
  if (typeof value !== 'string' || !HEX.test(value) || value.replace(/^0x/, '').length === 0) {
    throw new KeystoreError(`${path}.${name}: expected hex bytes`);
  }
  return Buffer.from(value.replace(/^0x/, ''), 'hex');
}

function intField(owner: Record<string, unknown>, name: string, path: string, min: number, max: number): number {
  const value = owner[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new KeystoreError(`${path}.${name}: expected an integer from ${min} to ${max}`);
  }
  return value;
}

/** True when the text looks like a JSON keystore rather than a hex key (decides which parser names the error). */
export function looksLikeKeystore(text: string): boolean {
  return text.trimStart().startsWith('{');
}

async function deriveKey(kdf: unknown, params: Record<string, unknown>, password: string): Promise<Buffer> {
  const path = 'crypto.kdfparams';
  const dklen = intField(params, 'dklen', path, 32, 64);
  const salt = hexField(params, 'salt', path);
  if (kdf === 'scrypt') {
    const n = intField(params, 'n', path, 2, MAX_SCRYPT_N);
    if ((n & (n - 1)) !== 0) throw new KeystoreError(`${path}.n: expected a power of two`);
    const r = intField(params, 'r', path, 1, 64);
    const p = intField(params, 'p', path, 1, 64);
    // RFC 7914 requires n < 2^(16·r); OpenSSL enforces it. geth, ethers and Web3Signer write r = 8, so only odd
    // keystores (like the r = 1 example of the Web3 Secret Storage page) hit this.
    if (16 * r < 53 && n >= 2 ** (16 * r)) throw new KeystoreError(`${path}: scrypt n=${n} with r=${r} is outside RFC 7914 (n < 2^(16r)); re-encrypt the key with r=8`);
    // scrypt needs 128·n·r bytes (plus p-parallel blocks); node's default cap (32 MiB) is below the standard n=2^18.
    const maxmem = 128 * n * r * 2 + 128 * r * p + 1024 * 1024;
    return await scryptAsync(Buffer.from(password, 'utf8'), salt, dklen, { N: n, r, p, maxmem });
  }
  if (kdf === 'pbkdf2') {
    if (params.prf !== 'hmac-sha256') throw new KeystoreError(`${path}.prf: only hmac-sha256 is supported`);
    const c = intField(params, 'c', path, 1, MAX_PBKDF2_ROUNDS);
    return await pbkdf2Async(Buffer.from(password, 'utf8'), salt, c, dklen, 'sha256');
  }
  throw new KeystoreError(`crypto.kdf: expected scrypt or pbkdf2`);
}

function mac(derivedKey: Buffer, ciphertext: Buffer): Buffer {
  return Buffer.from(keccak256(Buffer.concat([derivedKey.subarray(16, 32), ciphertext])).slice(2), 'hex');
}

/**
 * Decrypts a V3 keystore and returns the 32-byte private key as 0x-hex. Throws KeystoreError on malformed input,
 * a wrong password (MAC mismatch), or a key that does not match the keystore's declared address.
 */
export async function decryptV3Keystore(json: string, password: string): Promise<{ privateKey: `0x${string}`; declaredAddress?: string }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new KeystoreError('not valid JSON');
  }
  if (!isObject(parsed)) throw new KeystoreError('expected a JSON object');
  if (parsed.version !== 3) throw new KeystoreError(`version: expected 3, got ${JSON.stringify(parsed.version ?? null)}`);
  // geth wrote "Crypto" in early versions; both spellings are in the wild.
  const crypto = parsed.crypto ?? parsed.Crypto;
  if (!isObject(crypto)) throw new KeystoreError('crypto: expected an object');
  if (crypto.cipher !== 'aes-128-ctr') throw new KeystoreError('crypto.cipher: only aes-128-ctr is supported');
  if (!isObject(crypto.cipherparams)) throw new KeystoreError('crypto.cipherparams: expected an object');
  if (!isObject(crypto.kdfparams)) throw new KeystoreError('crypto.kdfparams: expected an object');
  const iv = hexField(crypto.cipherparams, 'iv', 'crypto.cipherparams');
  if (iv.length !== 16) throw new KeystoreError('crypto.cipherparams.iv: expected 16 bytes');
  const ciphertext = hexField(crypto, 'ciphertext', 'crypto');
  if (ciphertext.length !== 32) throw new KeystoreError('crypto.ciphertext: expected 32 bytes (a secp256k1 private key)');
  const expectedMac = hexField(crypto, 'mac', 'crypto');
  if (expectedMac.length !== 32) throw new KeystoreError('crypto.mac: expected 32 bytes');

  const derivedKey = await deriveKey(crypto.kdf, crypto.kdfparams, password);
  if (!timingSafeEqual(mac(derivedKey, ciphertext), expectedMac)) throw new KeystoreError('wrong password or corrupted keystore (MAC mismatch)');
  const decipher = createDecipheriv('aes-128-ctr', derivedKey.subarray(0, 16), iv);
  const privateKey = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  const result: { privateKey: `0x${string}`; declaredAddress?: string } = { privateKey: `0x${privateKey.toString('hex')}` };
  privateKey.fill(0);
  derivedKey.fill(0);
  if (typeof parsed.address === 'string' && /^(0x)?[0-9a-fA-F]{40}$/.test(parsed.address)) {
    result.declaredAddress = `0x${parsed.address.replace(/^0x/, '').toLowerCase()}`;
  }
  return result;
}

/**
 * Encrypts a private key as a V3 keystore (scrypt). For tests and the demo; production keystores come from the
 * operator's Secrets or existing tooling. Small default work factors keep tests fast; pass n = 2^18 for real use.
 */
export async function encryptV3Keystore(
  privateKey: `0x${string}`,
  password: string,
  options: { kdf?: 'scrypt' | 'pbkdf2'; n?: number; c?: number; address?: string } = {},
): Promise<string> {
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const kdf = options.kdf ?? 'scrypt';
  const kdfparams =
    kdf === 'scrypt'
      ? { dklen: 32, n: options.n ?? 1 << 12, r: 8, p: 1, salt: salt.toString('hex') }
      : { dklen: 32, c: options.c ?? 10_000, prf: 'hmac-sha256', salt: salt.toString('hex') };
  const derivedKey = await deriveKey(kdf, kdfparams, password);
  const cipher = createCipheriv('aes-128-ctr', derivedKey.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), 'hex')), cipher.final()]);
  const keystore = {
    version: 3,
    id: randomUUID(),
    ...(options.address ? { address: options.address.replace(/^0x/, '').toLowerCase() } : {}),
    crypto: { cipher: 'aes-128-ctr', cipherparams: { iv: iv.toString('hex') }, ciphertext: ciphertext.toString('hex'), kdf, kdfparams, mac: mac(derivedKey, ciphertext).toString('hex') },
  };
  return JSON.stringify(keystore);
}

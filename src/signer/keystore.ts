/**
 * Ethereum V3 keystores (Web3 Secret Storage) through ethers' maintained keystore code (key derivation, MAC check,
 * AES-128-CTR). ethers runs scrypt in pure JS by default; we register node:crypto's native scrypt (OpenSSL) so that
 * start-up with a standard n = 2^18 keystore costs what it did with hand-written code. Before handing the file to
 * ethers we check its shape and bounds, so errors name the field and a hostile keystore cannot make start-up
 * allocate gigabytes. Errors never contain key material or the password.
 */
import { createCipheriv, randomBytes, randomUUID, scrypt as nodeScrypt } from 'node:crypto';

export class KeystoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeystoreError';
  }
}

export interface V3Keystore {
  version: 3;
  address?: string;
  crypto: {
    cipher: 'aes-128-ctr';
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: 'scrypt' | 'pbkdf2';
    kdfparams: { dklen: number; salt: string } & ({ n: number; r: number; p: number } | { c: number; prf: string });
    mac: string;
  };
}

const HEX = /^(0x)?([0-9a-fA-F]{2})*$/;
/** Upper bounds keep a hostile keystore from making start-up allocate gigabytes or spin for minutes. */
const MAX_SCRYPT_N = 1 << 20;
const MAX_PBKDF2_ROUNDS = 10_000_000;

type Ethers = { wallet: typeof import('ethers/wallet'); crypto: typeof import('ethers/crypto') };
let ethersLoaded: Promise<Ethers> | undefined;

/** Loaded on first use (processes without keystores skip it); registers node's native scrypt once. */
function ethers(): Promise<Ethers> {
  ethersLoaded ??= (async () => {
    const [wallet, crypto] = await Promise.all([import('ethers/wallet'), import('ethers/crypto')]);
    crypto.scrypt.register(
      (password, salt, n, r, p, dkLen) =>
        new Promise((resolve, reject) => {
          // scrypt needs 128·n·r bytes (plus p-parallel blocks); node's default cap (32 MiB) is below the standard n=2^18.
          const maxmem = 128 * n * r * 2 + 128 * r * p + 1024 * 1024;
          nodeScrypt(password, salt, dkLen, { N: n, r, p, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
        }),
    );
    return { wallet, crypto };
  })();
  return ethersLoaded;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hexBytes(owner: Record<string, unknown>, name: string, path: string, length?: number): number {
  const value = owner[name];
  const bytes = typeof value === 'string' && HEX.test(value) ? value.replace(/^0x/, '').length / 2 : 0;
  if (bytes === 0) throw new KeystoreError(`${path}.${name}: expected hex bytes`);
  if (length !== undefined && bytes !== length) throw new KeystoreError(`${path}.${name}: expected ${length} bytes`);
  return bytes;
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

function checkKdf(kdf: unknown, params: Record<string, unknown>): void {
  const path = 'crypto.kdfparams';
  intField(params, 'dklen', path, 32, 32);
  hexBytes(params, 'salt', path);
  if (kdf === 'scrypt') {
    const n = intField(params, 'n', path, 2, MAX_SCRYPT_N);
    if ((n & (n - 1)) !== 0) throw new KeystoreError(`${path}.n: expected a power of two`);
    const r = intField(params, 'r', path, 1, 64);
    intField(params, 'p', path, 1, 64);
    // RFC 7914 requires n < 2^(16·r); OpenSSL enforces it. geth, ethers and Web3Signer write r = 8, so only odd
    // keystores (like the r = 1 example of the Web3 Secret Storage page) hit this.
    if (16 * r < 53 && n >= 2 ** (16 * r))
      throw new KeystoreError(`${path}: scrypt n=${n} with r=${r} is outside RFC 7914 (n < 2^(16r)); re-encrypt the key with r=8`);
  } else if (kdf === 'pbkdf2') {
    if (params.prf !== 'hmac-sha256') throw new KeystoreError(`${path}.prf: only hmac-sha256 is supported`);
    intField(params, 'c', path, 1, MAX_PBKDF2_ROUNDS);
  } else {
    throw new KeystoreError(`crypto.kdf: expected scrypt or pbkdf2`);
  }
}

/** Checks shape and bounds; returns the keystore with `crypto` spelled in lower case and without `address`. */
function checkedKeystore(json: string): { forEthers: Record<string, unknown>; declaredAddress?: string } {
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
  hexBytes(crypto.cipherparams, 'iv', 'crypto.cipherparams', 16);
  hexBytes(crypto, 'ciphertext', 'crypto', 32); // a secp256k1 private key
  hexBytes(crypto, 'mac', 'crypto', 32);
  checkKdf(crypto.kdf, crypto.kdfparams);
  // The declared address is compared by the caller, whose error names both addresses (ethers would only say
  // "mismatch", and would reject a mis-checksummed address that geth accepts).
  const address = typeof parsed.address === 'string' && /^(0x)?[0-9a-fA-F]{40}$/.test(parsed.address) ? parsed.address : undefined;
  return {
    forEthers: { version: 3, crypto },
    ...(address ? { declaredAddress: `0x${address.replace(/^0x/, '').toLowerCase()}` } : {}),
  };
}

/** ethers' messages carry the offending value; keep only the short message and the field it names. */
function keystoreErrorFrom(error: unknown): KeystoreError {
  const info = error as { shortMessage?: unknown; argument?: unknown; code?: unknown };
  if (info.shortMessage === 'incorrect password') return new KeystoreError('wrong password or corrupted keystore (MAC mismatch)');
  if (typeof info.shortMessage === 'string') {
    return new KeystoreError(`${info.shortMessage}${typeof info.argument === 'string' ? ` (${info.argument})` : ''}`);
  }
  const code = (error as NodeJS.ErrnoException).code;
  return new KeystoreError(`key derivation failed${typeof code === 'string' ? ` (${code})` : ''}`);
}

/**
 * Decrypts a V3 keystore and returns the 32-byte private key as 0x-hex. Throws KeystoreError on malformed input or
 * a wrong password (MAC mismatch). The declared address, when present, is returned for the caller to compare.
 */
export async function decryptV3Keystore(json: string, password: string): Promise<{ privateKey: `0x${string}`; declaredAddress?: string }> {
  const { forEthers, declaredAddress } = checkedKeystore(json);
  const { wallet } = await ethers();
  let privateKey: string;
  try {
    // Bytes, not a string: ethers would NFKC-normalise a string password, geth and Web3Signer use the raw UTF-8.
    privateKey = (await wallet.decryptKeystoreJson(JSON.stringify(forEthers), Buffer.from(password, 'utf8'))).privateKey;
  } catch (error) {
    throw keystoreErrorFrom(error);
  }
  return { privateKey: privateKey as `0x${string}`, ...(declaredAddress ? { declaredAddress } : {}) };
}

/**
 * Encrypts a private key as a V3 keystore. For tests and the demo; production keystores come from the operator's
 * Secrets or existing tooling. Small default work factors keep tests fast; pass n = 2^18 for real use. ethers writes
 * only scrypt keystores; the pbkdf2 variant (to test reading what older tools write) is built from ethers' pbkdf2
 * and keccak-256 and node's AES-128-CTR.
 */
export async function encryptV3Keystore(
  privateKey: `0x${string}`,
  password: string,
  options: { kdf?: 'scrypt' | 'pbkdf2'; n?: number; c?: number; address?: string } = {},
): Promise<string> {
  const { wallet, crypto } = await ethers();
  const passwordBytes = Buffer.from(password, 'utf8');
  let keystore: Record<string, unknown>;
  if ((options.kdf ?? 'scrypt') === 'scrypt') {
    const { computeAddress } = await import('ethers/transaction');
    const json = await wallet.encryptKeystoreJson({ address: computeAddress(privateKey), privateKey }, passwordBytes, {
      scrypt: { N: options.n ?? 1 << 12 },
    });
    const { Crypto, ...rest } = JSON.parse(json) as Record<string, unknown>;
    keystore = { ...rest, crypto: Crypto }; // ethers writes geth's old "Crypto"; the definition says "crypto"
  } else {
    const salt = randomBytes(32);
    const iv = randomBytes(16);
    const c = options.c ?? 10_000;
    const derivedKey = Buffer.from(crypto.pbkdf2(passwordBytes, salt, c, 32, 'sha256').slice(2), 'hex');
    const cipher = createCipheriv('aes-128-ctr', derivedKey.subarray(0, 16), iv);
    const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), 'hex')), cipher.final()]);
    const mac = crypto.keccak256(Buffer.concat([derivedKey.subarray(16, 32), ciphertext])).slice(2);
    const kdfparams = { dklen: 32, c, prf: 'hmac-sha256', salt: salt.toString('hex') };
    const cryptoSection = {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf: 'pbkdf2',
      kdfparams,
      mac,
    };
    keystore = { version: 3, id: randomUUID(), crypto: cryptoSection };
  }
  // Same as before: the address field only when asked for (tests write keystores whose address lies).
  delete keystore.address;
  if (options.address) keystore.address = options.address.replace(/^0x/, '').toLowerCase();
  return JSON.stringify(keystore);
}

/**
 * Validator keys from a directory (a mounted Kubernetes Secret): one key per file, either a hex secp256k1 private key
 * or a V3 keystore JSON. Key material never appears in errors or logs; errors name the file.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import { ConfigError } from '../protection/index.js';
import { decryptV3Keystore, KeystoreError, looksLikeKeystore } from './keystore.js';

export class KeyFileError extends ConfigError {
  constructor(file: string, message: string) {
    super(`key file ${file}`, message);
    this.name = 'KeyFileError';
  }
}

export type PasswordSource = { file: string } | { value: string } | undefined;

const HEX_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

/** Parses a hex private key file's text into an account; throws a message without any of the text. */
export function accountFromHexKey(text: string, file: string): PrivateKeyAccount {
  const trimmed = text.trim();
  if (!HEX_KEY.test(trimmed)) {
    throw new KeyFileError(file, 'is neither a secp256k1 private key (64 hex digits, optional 0x) nor a V3 keystore JSON');
  }
  try {
    return privateKeyToAccount(`0x${trimmed.replace(/^0x/, '').toLowerCase()}`);
  } catch {
    // Zero or >= the curve order: viem's message would echo nothing secret, but ours is certain not to.
    throw new KeyFileError(file, 'is not a valid secp256k1 private key (out of range)');
  }
}

/** Reads the keystore password: the file's content without its trailing newline, or the variable's value. */
export async function readKeystorePassword(source: PasswordSource): Promise<string | undefined> {
  if (source === undefined) return undefined;
  if ('value' in source) return source.value;
  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `HA_SIGNER_KEYSTORE_PASSWORD_FILE (${source.file})`,
      `cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  return text.replace(/\r?\n$/, '');
}

export async function accountFromKeyFile(
  text: string,
  file: string,
  password: () => Promise<string | undefined>,
): Promise<PrivateKeyAccount> {
  if (!looksLikeKeystore(text)) return accountFromHexKey(text, file);
  const secret = await password();
  if (secret === undefined) {
    throw new KeyFileError(
      file,
      'is a V3 keystore, but no password is configured (HA_SIGNER_KEYSTORE_PASSWORD_FILE or HA_SIGNER_KEYSTORE_PASSWORD)',
    );
  }
  let decrypted: Awaited<ReturnType<typeof decryptV3Keystore>>;
  try {
    decrypted = await decryptV3Keystore(text, secret);
  } catch (error) {
    if (error instanceof KeystoreError) throw new KeyFileError(file, `is not a usable V3 keystore: ${error.message}`);
    throw error;
  }
  const account = accountFromHexKey(decrypted.privateKey, file);
  if (decrypted.declaredAddress !== undefined && decrypted.declaredAddress !== account.address.toLowerCase()) {
    throw new KeyFileError(file, `declares address ${decrypted.declaredAddress} but holds the key of ${account.address.toLowerCase()}`);
  }
  return account;
}

/**
 * Loads every key file of `dir`. Hidden entries are skipped: Kubernetes Secret volumes keep their real files in
 * `..data/` and expose each key as a symlink beside it. Refuses (throws) on any unreadable or malformed file, on two
 * files with the same key, and on an empty directory.
 */
export async function loadKeysFromDir(dir: string, passwordSource: PasswordSource): Promise<Map<string, PrivateKeyAccount>> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((name) => !name.startsWith('.')).sort();
  } catch (error) {
    throw new ConfigError(`HA_SIGNER_KEYS_DIR (${dir})`, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let password: Promise<string | undefined> | undefined;
  const getPassword = (): Promise<string | undefined> => (password ??= readKeystorePassword(passwordSource));
  const accounts = new Map<string, PrivateKeyAccount>();
  const fileOf = new Map<string, string>();
  for (const name of entries) {
    const file = join(dir, name);
    let text: string;
    try {
      if (!(await stat(file)).isFile()) continue;
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new KeyFileError(file, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const account = await accountFromKeyFile(text, file, getPassword);
    const address = account.address.toLowerCase();
    const previous = fileOf.get(address);
    if (previous !== undefined) throw new KeyFileError(file, `holds the same key as ${previous} (${address})`);
    fileOf.set(address, file);
    accounts.set(address, account);
  }
  if (accounts.size === 0) throw new ConfigError(`HA_SIGNER_KEYS_DIR (${dir})`, 'holds no key files');
  return accounts;
}

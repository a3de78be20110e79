/**
 * Signing backends: local keys (viem), or a Web3Signer-compatible remote signer reached over its eth1 JSON-RPC (keys
 * never enter our pods). Protection happens before a backend is called; a backend only produces signatures.
 */
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  type Hex,
  type TransactionSerializableEIP1559,
  type TypedDataDefinition,
  hashTypedData,
  numberToHex,
  recoverAddress,
  recoverMessageAddress,
  recoverTransactionAddress,
} from 'viem';

import type { SigningMethod } from '../wire.js';

export type { SigningMethod };

export interface SigningBackend {
  readonly kind: 'local-keys' | 'web3signer';
  /** Lower-case addresses this backend can sign for, sorted. */
  addresses(): readonly string[];
  serves(address: string): boolean;
  /**
   * Signs a 32-byte hash: `personal` = EIP-191 over the raw 32 bytes, `digest` = plain secp256k1 over the hash.
   * `typedData`, when given, is the EIP-712 data whose hash is `hash` (checked by the caller); the remote backend
   * needs it for digest signing because Web3Signer's eth1 API only signs typed data, never a bare digest.
   */
  signHash(address: string, hash: Hex, method: SigningMethod, typedData?: TypedDataDefinition): Promise<Hex>;
  /** JSON-RPC eth_sign: EIP-191 over arbitrary bytes. */
  signMessageBytes(address: string, data: Hex): Promise<Hex>;
  /** JSON-RPC eth_signTypedData (EIP-712 v4). */
  signTypedData(address: string, typedData: TypedDataDefinition): Promise<Hex>;
  /** JSON-RPC eth_signTransaction: the signed, serialized EIP-1559 transaction. */
  signTransaction(address: string, transaction: TransactionSerializableEIP1559): Promise<Hex>;
}

/** The backend could not produce a signature (remote signer down, timed out or misbehaving). Nothing was signed here. */
export class BackendSigningError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendSigningError';
  }
}

export class LocalKeyBackend implements SigningBackend {
  readonly kind = 'local-keys';
  private readonly sorted: readonly string[];

  constructor(private readonly accounts: ReadonlyMap<string, PrivateKeyAccount>) {
    this.sorted = [...accounts.keys()].sort();
  }

  addresses(): readonly string[] {
    return this.sorted;
  }

  serves(address: string): boolean {
    return this.accounts.has(address);
  }

  private account(address: string): PrivateKeyAccount {
    const account = this.accounts.get(address);
    if (!account) throw new BackendSigningError(`no key for ${address}`);
    return account;
  }

  async signHash(address: string, hash: Hex, method: SigningMethod): Promise<Hex> {
    const account = this.account(address);
    return method === 'personal' ? await account.signMessage({ message: { raw: hash } }) : await account.sign({ hash });
  }

  async signMessageBytes(address: string, data: Hex): Promise<Hex> {
    return await this.account(address).signMessage({ message: { raw: data } });
  }

  async signTypedData(address: string, typedData: TypedDataDefinition): Promise<Hex> {
    return await this.account(address).signTypedData(typedData);
  }

  async signTransaction(address: string, transaction: TransactionSerializableEIP1559): Promise<Hex> {
    return await this.account(address).signTransaction(transaction);
  }
}

interface JsonRpcResponse {
  result?: unknown;
  error?: { code?: number; message?: string };
}

const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

/** Calls a Web3Signer-compatible eth1 JSON-RPC endpoint. */
export class Web3SignerBackend implements SigningBackend {
  readonly kind = 'web3signer';
  private nextId = 1;

  private constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly known: ReadonlySet<string>,
  ) {}

  /** Asks the remote signer for its accounts (eth_accounts); throws when it cannot be reached. */
  static async connect(url: string, timeoutMs: number): Promise<Web3SignerBackend> {
    const probe = new Web3SignerBackend(url, timeoutMs, new Set());
    const result = await probe.call('eth_accounts', []);
    if (!Array.isArray(result) || !result.every((a) => typeof a === 'string' && /^0x[0-9a-fA-F]{40}$/.test(a))) {
      throw new BackendSigningError(`remote signer ${url}: eth_accounts did not return a list of addresses`);
    }
    return new Web3SignerBackend(url, timeoutMs, new Set(result.map((a: string) => a.toLowerCase())));
  }

  addresses(): readonly string[] {
    return [...this.known].sort();
  }

  serves(address: string): boolean {
    return this.known.has(address);
  }

  private async call(method: string, params: unknown[]): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new BackendSigningError(`remote signer ${method} failed: ${(error as Error).message}`, { cause: error });
    }
    let body: JsonRpcResponse;
    try {
      body = (await response.json()) as JsonRpcResponse;
    } catch (error) {
      throw new BackendSigningError(`remote signer ${method}: HTTP ${response.status} without a JSON-RPC body`, { cause: error });
    }
    if (body.error)
      throw new BackendSigningError(`remote signer ${method}: ${body.error.message ?? 'error'} (code ${body.error.code ?? '?'})`);
    if (!response.ok) throw new BackendSigningError(`remote signer ${method}: HTTP ${response.status}`);
    return body.result;
  }

  private async signature(method: string, params: unknown[], address: string, recover: (signature: Hex) => Promise<string>): Promise<Hex> {
    const result = await this.call(method, params);
    if (typeof result !== 'string' || !SIGNATURE.test(result))
      throw new BackendSigningError(`remote signer ${method}: expected a 65-byte signature`);
    const signature = result.toLowerCase() as Hex;
    // A signature over other data or by another key must never be recorded or released: check it before use.
    let signer: string;
    try {
      signer = (await recover(signature)).toLowerCase();
    } catch (error) {
      throw new BackendSigningError(`remote signer ${method}: signature does not recover`, { cause: error });
    }
    if (signer !== address) throw new BackendSigningError(`remote signer ${method}: signature is by ${signer}, not ${address}`);
    return signature;
  }

  async signHash(address: string, hash: Hex, method: SigningMethod, typedData?: TypedDataDefinition): Promise<Hex> {
    if (method === 'personal') return await this.signMessageBytes(address, hash);
    if (!typedData) {
      throw new BackendSigningError(
        'the Web3Signer backend signs digests only as EIP-712 typed data: send typedData with signingMethod digest',
      );
    }
    return await this.signature('eth_signTypedData', [address, typedData], address, (signature) => recoverAddress({ hash, signature }));
  }

  async signMessageBytes(address: string, data: Hex): Promise<Hex> {
    return await this.signature('eth_sign', [address, data], address, (signature) =>
      recoverMessageAddress({ message: { raw: data }, signature }),
    );
  }

  async signTransaction(address: string, tx: TransactionSerializableEIP1559): Promise<Hex> {
    const quantity = (v: bigint | number | undefined) => (v === undefined ? undefined : numberToHex(v));
    const object = {
      from: address,
      to: tx.to ?? null,
      data: tx.data,
      value: quantity(tx.value),
      nonce: quantity(tx.nonce),
      gas: quantity(tx.gas),
      maxFeePerGas: quantity(tx.maxFeePerGas),
      maxPriorityFeePerGas: quantity(tx.maxPriorityFeePerGas),
    };
    const result = await this.call('eth_signTransaction', [object]);
    if (typeof result !== 'string' || !/^0x[0-9a-fA-F]+$/.test(result))
      throw new BackendSigningError('remote signer eth_signTransaction: expected a signed transaction');
    let signer: string;
    try {
      signer = (await recoverTransactionAddress({ serializedTransaction: result as Hex & `0x02${string}` })).toLowerCase();
    } catch (error) {
      throw new BackendSigningError('remote signer eth_signTransaction: signature does not recover', { cause: error });
    }
    if (signer !== address) throw new BackendSigningError(`remote signer eth_signTransaction: signed by ${signer}, not ${address}`);
    return result as Hex;
  }

  async signTypedData(address: string, typedData: TypedDataDefinition): Promise<Hex> {
    const hash = hashTypedData(typedData);
    return await this.signature('eth_signTypedData', [address, typedData], address, (signature) => recoverAddress({ hash, signature }));
  }
}

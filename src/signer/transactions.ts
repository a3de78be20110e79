/**
 * eth_signTransaction as Aztec's RemoteSigner sends it (Web3Signer's tx object, EIP-1559 only): hex quantities, no
 * chain id (Web3Signer signs for its configured chain), so the signer needs HA_SIGNER_L1_CHAIN_ID for it.
 */
import type { Hex, TransactionSerializableEIP1559 } from 'viem';

export class TransactionRequestError extends Error {}

const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const FIELDS = new Set(['from', 'to', 'gas', 'maxFeePerGas', 'maxPriorityFeePerGas', 'nonce', 'value', 'data']);

export interface TransactionRequest {
  from: string;
  transaction: TransactionSerializableEIP1559;
}

export function parseTransactionRequest(value: unknown, chainId: bigint | undefined): TransactionRequest {
  const fail = (message: string): never => {
    throw Object.assign(new TransactionRequestError(message), { rpcInvalidParams: true });
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return fail('params[0]: expected a transaction object {from, to, gas, maxFeePerGas, maxPriorityFeePerGas, nonce, value, data}');
  const tx = value as Record<string, unknown>;
  for (const key of Object.keys(tx))
    if (!FIELDS.has(key) && tx[key] !== undefined)
      fail(`params[0].${key}: not supported (EIP-1559 transactions only: ${[...FIELDS].join(', ')})`);
  if (chainId === undefined) fail('eth_signTransaction needs the L1 chain id: set HA_SIGNER_L1_CHAIN_ID on the signer');
  if (typeof tx.from !== 'string' || !ADDRESS.test(tx.from)) fail('params[0].from: expected a 0x-prefixed 20-byte address');
  if (tx.to !== undefined && tx.to !== null && (typeof tx.to !== 'string' || !ADDRESS.test(tx.to)))
    fail('params[0].to: expected a 0x-prefixed 20-byte address or null');
  const quantity = (key: string): bigint | undefined => {
    const raw = tx[key];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string' || !QUANTITY.test(raw)) return fail(`params[0].${key}: expected a 0x-prefixed hex quantity`);
    return BigInt(raw);
  };
  if (tx.data !== undefined && (typeof tx.data !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(tx.data)))
    fail('params[0].data: expected 0x-prefixed hex bytes');
  const nonce = quantity('nonce');
  const transaction: TransactionSerializableEIP1559 = {
    type: 'eip1559',
    chainId: Number(chainId),
    ...(typeof tx.to === 'string' ? { to: tx.to.toLowerCase() as Hex } : {}),
    ...(typeof tx.data === 'string' ? { data: tx.data as Hex } : {}),
  };
  const value_ = quantity('value');
  const gas = quantity('gas');
  const maxFeePerGas = quantity('maxFeePerGas');
  const maxPriorityFeePerGas = quantity('maxPriorityFeePerGas');
  if (value_ !== undefined) transaction.value = value_;
  if (gas !== undefined) transaction.gas = gas;
  if (maxFeePerGas !== undefined) transaction.maxFeePerGas = maxFeePerGas;
  if (maxPriorityFeePerGas !== undefined) transaction.maxPriorityFeePerGas = maxPriorityFeePerGas;
  if (nonce !== undefined) transaction.nonce = Number(nonce);
  return { from: (tx.from as string).toLowerCase(), transaction };
}

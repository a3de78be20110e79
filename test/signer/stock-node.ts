/**
 * A stock Aztec validator node's signing path, built from Aztec's published packages only: `RemoteSigner`
 * (@aztec/node-keystore 4.1.2) pointed at a signer URL, and, when its HA signing is on, `ValidatorHASigner`
 * (@aztec/validator-ha-signer 4.1.2) on the signer's protection database, composed as validator-client's HAKeyStore
 * composes them (signMessageWithAddress / signTypedDataWithAddress). @aztec/validator-client itself is not loaded:
 * it pulls a whole node (p2p, prover client, simulator).
 */
import { Buffer32 } from '@aztec/foundation/buffer';
import { EthAddress } from '@aztec/foundation/eth-address';
import { RemoteSigner } from '@aztec/node-keystore';
import { createHASigner } from '@aztec/validator-ha-signer/factory';
import { type TransactionSerializableEIP1559, type TypedDataDefinition, hashTypedData } from 'viem';

export interface StockContext {
  dutyType:
    | 'BLOCK_PROPOSAL'
    | 'CHECKPOINT_PROPOSAL'
    | 'ATTESTATION'
    | 'ATTESTATIONS_AND_SIGNERS'
    | 'GOVERNANCE_VOTE'
    | 'SLASHING_VOTE'
    | 'AUTH_REQUEST';
  slot: bigint;
  blockNumber?: bigint;
  blockIndexWithinCheckpoint?: number;
}

type AztecHASigner = Awaited<ReturnType<typeof createHASigner>>['signer'];

export class StockNode {
  private constructor(
    readonly nodeId: string,
    readonly url: string,
    private readonly ha: AztecHASigner | undefined,
  ) {}

  /** `databaseUrl` given: VALIDATOR_HA_SIGNING_ENABLED=true with that VALIDATOR_HA_DATABASE_URL; else HA off. */
  static async start(options: { nodeId: string; url: string; rollup: string; databaseUrl?: string }): Promise<StockNode> {
    if (!options.databaseUrl) return new StockNode(options.nodeId, options.url, undefined);
    const { signer } = await createHASigner({
      databaseUrl: options.databaseUrl,
      haSigningEnabled: true,
      nodeId: options.nodeId,
      pollingIntervalMs: 20,
      signingTimeoutMs: 3_000,
      maxStuckDutiesAgeMs: 144_000,
      l1Contracts: { rollupAddress: EthAddress.fromString(options.rollup) },
    } as never);
    await signer.start();
    return new StockNode(options.nodeId, options.url, signer);
  }

  remote(address: string): RemoteSigner {
    return new RemoteSigner(EthAddress.fromString(address), this.url);
  }

  /** What the node does at start: eth_accounts must list every configured validator. */
  async validateAccess(addresses: string[]): Promise<void> {
    await RemoteSigner.validateAccess(this.url, addresses);
  }

  /** HAKeyStore.signMessageWithAddress: claim (message hash = the digest), eth_sign, record. */
  async signMessage(address: string, digest: string, context: StockContext, remoteAddress = address): Promise<string> {
    // remoteAddress differs from address only in tests of a misbehaving node (claims one validator, asks for another).
    const remote = this.remote(remoteAddress);
    const message = Buffer32.fromString(digest);
    if (!this.ha || context.dutyType === 'AUTH_REQUEST') return (await remote.signMessage(message)).toString();
    const signature = await this.ha.signWithProtection(EthAddress.fromString(address), message, context as never, (hash) =>
      remote.signMessage(hash as Buffer32),
    );
    return signature.toString();
  }

  /** HAKeyStore.signTypedDataWithAddress: claim (message hash = hashTypedData), eth_signTypedData, record. */
  async signTypedData(address: string, typedData: TypedDataDefinition, context: StockContext): Promise<string> {
    const remote = this.remote(address);
    if (!this.ha) return (await remote.signTypedData(typedData)).toString();
    const messageHash = Buffer32.fromString(hashTypedData(typedData));
    const signature = await this.ha.signWithProtection(EthAddress.fromString(address), messageHash, context as never, () =>
      remote.signTypedData(typedData),
    );
    return signature.toString();
  }

  async signTransaction(address: string, tx: TransactionSerializableEIP1559): Promise<string> {
    return (await this.remote(address).signTransaction(tx)).toString();
  }

  async stop(): Promise<void> {
    await this.ha?.stop();
  }
}

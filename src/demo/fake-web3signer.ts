/**
 * A minimal Web3Signer-compatible eth1 JSON-RPC server (eth_accounts, eth_sign, eth_signTypedData) holding keys in
 * memory, with an adjustable delay. It stands in for a remote signer in the demo (a slow remote signer makes a
 * killed replica's in-flight duties visible) and in tests. Not part of the service.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hex, TypedDataDefinition } from 'viem';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';

export interface FakeWeb3Signer {
  readonly url: string;
  /** Delay before answering a signing call, per call (ms); eth_accounts is never delayed. */
  setDelay(delay: (method: string) => number): void;
  /** Signing calls received so far. */
  readonly calls: { method: string; address: string }[];
  close(): Promise<void>;
}

export async function startFakeWeb3Signer(privateKeys: Hex[], host = '127.0.0.1'): Promise<FakeWeb3Signer> {
  const accounts = new Map<string, PrivateKeyAccount>(
    privateKeys.map((key) => {
      const account = privateKeyToAccount(key);
      return [account.address.toLowerCase(), account];
    }),
  );
  let delay: (method: string) => number = () => 0;
  const calls: { method: string; address: string }[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void (async () => {
        let id: unknown = null;
        const reply = (body: object): void => {
          if (response.destroyed) return;
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
        };
        try {
          const rpc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: unknown; method: string; params: unknown[] };
          id = rpc.id;
          if (rpc.method === 'eth_accounts') return reply({ result: [...accounts.keys()] });
          const address = String(rpc.params[0]).toLowerCase();
          const account = accounts.get(address);
          if (!account) return reply({ error: { code: -32000, message: 'Signer not found' } });
          calls.push({ method: rpc.method, address });
          const wait = delay(rpc.method);
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          if (rpc.method === 'eth_sign') return reply({ result: await account.signMessage({ message: { raw: rpc.params[1] as Hex } }) });
          if (rpc.method === 'eth_signTypedData') {
            const data = typeof rpc.params[1] === 'string' ? JSON.parse(rpc.params[1]) : rpc.params[1];
            return reply({ result: await account.signTypedData(data as TypedDataDefinition) });
          }
          reply({ error: { code: -32601, message: 'Method not found' } });
        } catch (error) {
          reply({ error: { code: -32603, message: (error as Error).message } });
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    calls,
    setDelay: (next) => (delay = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A key backend that can hang or fail on demand: a proxy in front of the fake Web3Signer (src/demo/fake-web3signer.ts).
 * `eth_accounts` always passes (a replica restarted during a key fault must still start); signing calls follow the
 * mode: `ok` forwards, `hang` holds the request without an answer until the mode changes (then the connection is
 * cut), `fail` answers a JSON-RPC error, an HTTP 500 or a reset connection at random.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hex } from 'viem';
import { startFakeWeb3Signer } from '../../src/demo/fake-web3signer.js';

export type KeyBackendMode = 'ok' | 'hang' | 'fail';

export interface FaultyKeyBackend {
  readonly url: string;
  setMode(mode: KeyBackendMode): void;
  /** Signing calls answered by failure or cut while hanging, for the summary. */
  readonly stats: { forwarded: number; failed: number; hung: number };
  close(): Promise<void>;
}

export async function startFaultyKeyBackend(privateKeys: Hex[]): Promise<FaultyKeyBackend> {
  const upstream = await startFakeWeb3Signer(privateKeys);
  const target = new URL(upstream.url);
  let mode: KeyBackendMode = 'ok';
  let failures = 0;
  const held = new Set<ServerResponse>();
  const stats = { forwarded: 0, failed: 0, hung: 0 };

  const forward = (body: Buffer, incoming: IncomingMessage, response: ServerResponse): void => {
    stats.forwarded++;
    const outgoing = httpRequest(
      { hostname: target.hostname, port: target.port, path: incoming.url, method: 'POST', headers: { 'content-type': 'application/json' } },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, { 'content-type': 'application/json' });
        answer.pipe(response);
      },
    );
    outgoing.on('error', () => response.destroy());
    outgoing.end(body);
  };

  const fail = (id: unknown, response: ServerResponse): void => {
    stats.failed++;
    const kind = failures++ % 3;
    if (kind === 0) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32000, message: 'chaos: key backend failure' } }));
    } else if (kind === 1) {
      response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('chaos: internal error');
    } else {
      response.socket?.destroy();
    }
  };

  const server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      let rpc: { id?: unknown; method?: unknown } = {};
      try {
        rpc = JSON.parse(body.toString('utf8')) as typeof rpc;
      } catch {
        // forwarded as it is: the fake answers a parse error
      }
      if (rpc.method === 'eth_accounts' || mode === 'ok') return forward(body, incoming, response);
      if (mode === 'fail') return fail(rpc.id ?? null, response);
      stats.hung++;
      held.add(response);
      response.on('close', () => held.delete(response));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    setMode(next) {
      mode = next;
      if (next !== 'hang') for (const response of held) response.socket?.destroy();
    },
    async close() {
      for (const response of held) response.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await upstream.close();
    },
  };
}

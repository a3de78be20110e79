/**
 * A TCP proxy in front of the test PostgreSQL that can freeze connections: bytes stop flowing while the sockets
 * stay open, as with a SIGSTOPped backend or a silent network partition (no error, no answer).
 */
import net from 'node:net';

interface Pair {
  client: net.Socket;
  server: net.Socket;
  frozen: boolean;
  /** Requests still reach the server; its answers are dropped (the statement runs, the client never learns). */
  repliesLost: boolean;
}

export class FreezableProxy {
  private readonly pairs = new Set<Pair>();
  private freezeNew = false;

  private constructor(
    private readonly listener: net.Server,
    readonly port: number,
  ) {}

  static async start(databaseUrl: string): Promise<FreezableProxy> {
    const target = new URL(databaseUrl);
    const listener = net.createServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const proxy = new FreezableProxy(listener, (listener.address() as net.AddressInfo).port);
    listener.on('connection', (client: net.Socket) => proxy.accept(client, target.hostname, Number(target.port || 5432)));
    return proxy;
  }

  /** The same database URL, through the proxy. */
  url(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  private accept(client: net.Socket, host: string, port: number): void {
    const server = net.connect(port, host);
    const pair: Pair = { client, server, frozen: false, repliesLost: false };
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket): void => {
      from.on('data', (chunk) => {
        if (pair.frozen || (from === server && pair.repliesLost)) return; // dropped: a frozen peer never answers
        to.write(chunk);
      });
    };
    forward(client, server);
    forward(server, client);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('close', close).on('error', close);
    server.on('close', close).on('error', close);
    if (this.freezeNew) pair.frozen = true;
  }

  /** Freezes the connections open now; `andNew` also freezes connections made later. */
  freeze(andNew = false): void {
    for (const pair of this.pairs) pair.frozen = true;
    this.freezeNew = andNew;
  }

  /** On the connections open now, the server's answers are lost from here on (new connections work). */
  loseReplies(): void {
    for (const pair of this.pairs) pair.repliesLost = true;
  }

  /** Frozen connections stay broken (their protocol state is lost); new connections flow again. */
  thawNew(): void {
    this.freezeNew = false;
  }

  get connectionCount(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.server.destroy();
    }
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }
}

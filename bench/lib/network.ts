/**
 * Over the network: bench/http-signing.ts (/v1 through 3 `serve` replicas) and bench/jsonrpc-signing.ts (the
 * JSON-RPC path of a stock node), each in its own process with its own embedded PostgreSQL; their last output line
 * is their figures as JSON.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface HttpStats {
  count: number;
  seconds: number;
  p50: number;
  p99: number;
  max?: number;
}

export type NetworkFigures = Record<string, HttpStats | { allResolved: HttpStats; perCaller: HttpStats; signedOnce: boolean }>;

export async function runNetworkBench(script: 'http-signing.ts' | 'jsonrpc-signing.ts', quick: boolean): Promise<NetworkFigures> {
  const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
  const child = spawn(process.execPath, [path, ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const line = out
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (code !== 0 || !line) throw new Error(`${script} failed (exit ${code}): ${out.slice(-2000)}`);
  return JSON.parse(line) as NetworkFigures;
}

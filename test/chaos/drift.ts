/**
 * Memory and latency drift per replica (the soak figures of a long run): resident memory sampled from /proc every
 * few seconds per replica incarnation, and the p50 latency of signed requests per replica in the first and the last
 * quarter of the run. Reported, never asserted (the machine's load moves both).
 */
import { readFileSync } from 'node:fs';
import type { ChaosEnvironment } from './environment.js';
import type { Attempt } from './workload.js';

export interface ReplicaDrift {
  replica: string;
  rssFirstMiB: number | null;
  rssLastMiB: number | null;
  rssMaxMiB: number | null;
  p50FirstQuarterMs: number | null;
  p50LastQuarterMs: number | null;
}

function rssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 102.4) / 10 : undefined;
  } catch {
    return undefined; // exited, or not Linux
  }
}

export class DriftSampler {
  private readonly samples = new Map<string, number[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly environment: ChaosEnvironment) {}

  start(everyMs = 5_000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    for (const slot of this.environment.slots) {
      if (!slot.replica.running) continue;
      const rss = rssMiB(slot.replica.child.pid);
      if (rss === undefined) continue;
      const list = this.samples.get(slot.replica.nodeId) ?? [];
      list.push(rss);
      this.samples.set(slot.replica.nodeId, list);
    }
  }

  report(attempts: Attempt[], urls: Map<string, string>): ReplicaDrift[] {
    const signed = attempts.filter((a) => a.outcome === 'signed');
    const first = Math.min(...signed.map((a) => a.start));
    const last = Math.max(...signed.map((a) => a.start));
    const quarter = (last - first) / 4;
    const p50 = (list: number[]): number | null => {
      const sorted = [...list].sort((a, b) => a - b);
      return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : null;
    };
    const replicas = new Set([...this.samples.keys()].map((nodeId) => nodeId.replace(/-\d+$/, '')));
    return [...replicas].sort().map((replica) => {
      const rss = [...this.samples.entries()].filter(([nodeId]) => nodeId.replace(/-\d+$/, '') === replica).flatMap(([, list]) => list);
      const mine = signed.filter((a) => urls.get(a.replica) === replica);
      return {
        replica,
        rssFirstMiB: rss[0] ?? null,
        rssLastMiB: rss[rss.length - 1] ?? null,
        rssMaxMiB: rss.length ? Math.max(...rss) : null,
        p50FirstQuarterMs: p50(mine.filter((a) => a.start <= first + quarter).map((a) => a.end - a.start)),
        p50LastQuarterMs: p50(mine.filter((a) => a.start >= last - quarter).map((a) => a.end - a.start)),
      };
    });
  }
}

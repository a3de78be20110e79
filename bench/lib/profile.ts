/**
 * Where the time goes at concurrency 32 on one node: a CPU profile of the signing process (the V8 profiler behind
 * `node --cpu-prof`, limited to the measured window), summarised by function and by component, and
 * pg_stat_statements for the same run (database execution time per statement and per signed duty).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchPostgres, adminQuery } from './postgres.ts';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface ProfileSummary {
  concurrency: number;
  duties: number;
  seconds: number;
  dutiesPerSecond: number;
  /** Share of sampled time per component (idle = the process waiting, i.e. on the database or the scheduler). */
  components: { component: string; share: number }[];
  topFunctions: { fn: string; where: string; share: number }[];
  statements: { query: string; calls: number; totalMs: number; meanMs: number; rows: number; msPerDuty: number }[];
  databaseMsPerDuty: number;
}

function component(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)' || fn === '(root)' || url === '') return 'V8 / native';
  if (url.includes('/node_modules/pg') || url.includes('/node_modules/pg-')) return 'pg driver';
  if (url.includes('/dist/protection/')) return 'ha-signer protection core';
  if (url.includes('/bench/')) return 'benchmark loop';
  if (url.startsWith('node:')) return 'Node.js internals';
  if (url.includes('/node_modules/')) return 'other packages';
  return 'other';
}

export function summarizeProfile(profile: CpuProfile): Pick<ProfileSummary, 'components' | 'topFunctions'> {
  const total = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0) || 1;
  const byComponent = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const c = component(url, functionName);
    byComponent.set(c, (byComponent.get(c) ?? 0) + hits);
    const file = url.replace(/^.*?\/(node_modules|dist|bench)\//, '$1/');
    const key = `${functionName || '(anonymous)'}\t${file ? `${file}:${lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
  }
  return {
    components: [...byComponent].map(([name, hits]) => ({ component: name, share: hits / total })).sort((a, b) => b.share - a.share),
    topFunctions: [...byFunction]
      .map(([key, hits]) => {
        const [fn, where] = key.split('\t');
        return { fn: fn!, where: where ?? '', share: hits / total };
      })
      .sort((a, b) => b.share - a.share)
      .slice(0, 15),
  };
}

export async function runProfile(server: BenchPostgres, concurrency: number, ms: number): Promise<ProfileSummary> {
  const db = await server.freshDatabase('profile');
  const dir = await mkdtemp(join(tmpdir(), 'ha-signer-cpuprof-'));
  try {
    if (server.statStatements) await adminQuery(server.adminUrl, 'SELECT pg_stat_statements_reset()');
    const target = fileURLToPath(new URL('./profile-target.ts', import.meta.url));
    const profileFile = join(dir, 'signer.cpuprofile');
    const child = spawn(process.execPath, [target, db.url, String(concurrency), String(ms), profileFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`profiled process failed (exit ${code})`);
    const run = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { duties: number; signedTotal: number; seconds: number };
    const profile = JSON.parse(await readFile(profileFile, 'utf8')) as CpuProfile;
    // pg_stat_statements covers the warm-up too: divide by every duty signed in this database.
    const [signedRow] = await adminQuery<{ n: string }>(db.url, `SELECT count(*) AS n FROM validator_duties WHERE status = 'signed'`);
    const signed = Math.max(1, Number(signedRow?.n ?? run.signedTotal));
    const statements = server.statStatements
      ? (
          await adminQuery<{ query: string; calls: string; total: number; mean: number; rows: string }>(
            server.adminUrl,
            `SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, total_exec_time AS total, mean_exec_time AS mean, rows
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = $1 ORDER BY total_exec_time DESC LIMIT 8`,
            [db.name],
          )
        ).map((r) => ({
          query: r.query.length > 160 ? `${r.query.slice(0, 157)}...` : r.query,
          calls: Number(r.calls),
          totalMs: r.total,
          meanMs: r.mean,
          rows: Number(r.rows),
          msPerDuty: r.total / signed,
        }))
      : [];
    return {
      concurrency,
      duties: run.duties,
      seconds: run.seconds,
      dutiesPerSecond: run.duties / run.seconds,
      ...summarizeProfile(profile),
      statements,
      databaseMsPerDuty: statements.reduce((sum, s) => sum + s.msPerDuty, 0),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await server.dropDatabase(db.name);
  }
}

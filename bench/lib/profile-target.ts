/**
 * The process profiled by bench/lib/profile.ts: one ha-signer node signing fresh duties at the given concurrency on
 * the given database. The V8 CPU profiler (what `node --cpu-prof` uses, here through node:inspector) runs only
 * during the measured window, so start-up and module loading are not in the profile. Prints the run as JSON.
 * Usage: node bench/lib/profile-target.ts <database url> <concurrency> <ms> <profile file>
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { ourNode } from './nodes.ts';
import { signingLoop } from './scenario.ts';

const [url, concurrencyArg, msArg, profileFile] = process.argv.slice(2);
if (!url || !profileFile) throw new Error('usage: profile-target.ts <database url> <concurrency> <ms> <profile file>');
const node = await ourNode({ url, nodeId: 'profiled' });
const concurrency = Number(concurrencyArg ?? 32);
// Warm-up outside the profile: JIT, pool connections, prepared statements.
await signingLoop({ nodes: [node], concurrency, validators: 1, firstSlot: 1, warmupMs: 0, measureMs: 500 });
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.start');
const loop = await signingLoop({
  nodes: [node],
  concurrency,
  validators: 1,
  firstSlot: 1_000_000,
  warmupMs: 0,
  measureMs: Number(msArg ?? 5_000),
});
const { profile } = await session.post('Profiler.stop');
await writeFile(profileFile, JSON.stringify(profile));
await node.stop();
console.log(JSON.stringify({ duties: loop.duties, signedTotal: loop.signedTotal, seconds: loop.seconds }));

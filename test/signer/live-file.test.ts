/** LiveFile: a client list re-read while running, failing closed while invalid or missing, recovering when fixed. */
import { mkdtemp, rm, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LiveFile } from '../../src/signer/live-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ha-signer-live-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const parse = (text: string): string[] => {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value)) throw new Error('expected an array');
  return value as string[];
};

it('refuses a bad file at open, then follows changes, fails closed while invalid or missing, and recovers', async () => {
  const file = join(dir, 'list.json');
  await writeFile(file, '{}');
  await expect(LiveFile.open(file, parse, { intervalMs: 60_000 })).rejects.toThrow('expected an array');
  await writeFile(file, '["a"]');
  const changes: (string[] | undefined)[] = [];
  const errors: string[] = [];
  const live = await LiveFile.open(file, parse, {
    intervalMs: 60_000,
    onChange: (v) => changes.push(v),
    log: { info: () => {}, error: (o) => errors.push(String((o as { err: string }).err)) },
  });
  try {
    expect(live.current).toEqual(['a']);
    await writeFile(`${file}.tmp`, '["a","b"]');
    await rename(`${file}.tmp`, file);
    await live.reload();
    expect(live.current).toEqual(['a', 'b']);
    await writeFile(file, '["a",');
    await live.reload();
    expect(live.current).toBeUndefined();
    await live.reload(); // the same invalid text: still closed, logged once
    expect(errors).toHaveLength(1);
    await rm(file);
    await live.reload();
    expect(live.current).toBeUndefined();
    expect(errors[1]).toMatch(/cannot be read: ENOENT/);
    await writeFile(file, '["a","b"]');
    await live.reload();
    expect(live.current).toEqual(['a', 'b']);
    expect(changes).toEqual([['a', 'b'], undefined, undefined, ['a', 'b']]);
  } finally {
    live.close();
  }
});

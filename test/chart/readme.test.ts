/** charts/ha-signer/README.md lists every value of values.yaml, with its default, and nothing else. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { CHART } from './support.js';

type Values = Record<string, unknown>;

/** Rows of the README's values table: value path -> default (JSON in backticks). */
function readmeRows(): Map<string, unknown> {
  const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Values'));
  const rows = new Map<string, unknown>();
  for (const line of section.split('\n')) {
    const m = /^\| `([^`]+)` \| `([^`]*)` \|/.exec(line);
    if (!m) continue;
    if (rows.has(m[1]!)) throw new Error(`README lists ${m[1]} twice`);
    rows.set(m[1]!, JSON.parse(m[2]!));
  }
  return rows;
}

const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

function at(values: Values, key: string): unknown {
  return key.split('.').reduce<unknown>((v, k) => (isMap(v) && k in v ? v[k] : undefined), values);
}

/** Paths a README must cover: a row documents a value, or a whole map (e.g. resources) with its default. */
function uncovered(values: Values, rows: Map<string, unknown>, prefix = ''): string[] {
  const missing: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (rows.has(key)) continue;
    if (isMap(v) && Object.keys(v).length > 0) missing.push(...uncovered(v, rows, key));
    else missing.push(key);
  }
  return missing;
}

describe('chart README', () => {
  const values = k8s.loadYaml<Values>(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  const rows = readmeRows();

  it('documents every value of values.yaml', () => {
    expect(rows.size).toBeGreaterThan(40);
    expect(uncovered(values, rows)).toEqual([]);
  });

  it('documents no value that values.yaml does not have, and the defaults are the same', () => {
    for (const [key, documented] of rows) {
      expect(at(values, key), `README value ${key}`).not.toBeUndefined();
      expect(at(values, key), `default of ${key}`).toEqual(documented);
    }
  });

  it('every value is in the schema (which refuses unknown keys)', () => {
    const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    for (const key of rows.keys()) {
      const [top, second] = key.split('.');
      expect(schema.properties[top!], key).toBeDefined();
      if (second && schema.properties[top!]!.properties) expect(schema.properties[top!]!.properties![second], key).toBeDefined();
    }
  });
});

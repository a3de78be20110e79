/**
 * Operator benchmark: 200 ValidatorHASigners against the real test control plane (see
 * test/operator/e2e/scale.e2e.test.ts for what is measured). Usage: npm run build && node bench/operator.ts [N]
 * Needs the control-plane binaries (bash test/control-plane/build.sh).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const n = process.argv[2] ?? '200';
const res = spawnSync(
  process.execPath,
  [
    path.join(root, 'node_modules/vitest/vitest.mjs'),
    'run',
    '--config',
    'test/operator/vitest.operator.config.ts',
    'test/operator/e2e/scale.e2e.test.ts',
  ],
  {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, HA_SIGNER_OPERATOR_BENCH: '1', HA_SIGNER_OPERATOR_BENCH_N: n },
  },
);
const line = res.stdout.split('\n').find((l) => l.includes('OPERATOR_BENCH '));
if (!line) {
  process.stdout.write(res.stdout);
  process.exit(res.status ?? 1);
}
const report = JSON.parse(line.slice(line.indexOf('OPERATOR_BENCH ') + 'OPERATOR_BENCH '.length)) as Record<string, unknown>;
console.table(report);
process.exit(res.status ?? 0);

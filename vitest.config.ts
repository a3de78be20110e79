import { defineConfig } from 'vitest/config';

const postgres = 'test/support/postgres-global-setup.ts';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    // A 2-core machine: two test files at once.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'core',
          include: [
            'test/protection/**/*.test.ts',
            'test/signer/**/*.test.ts',
            'test/operator/unit/**/*.test.ts',
            'test/cli/**/*.test.ts',
            'test/chart/*.test.ts',
            'test/image/*.test.ts',
            'test/dev/*.test.ts',
            'test/bench/*.test.ts',
          ],
          globalSetup: [postgres],
        },
      },
      {
        extends: true,
        test: {
          // Chaos runs (own PostgreSQL, restarted) and fuzzing of the API and parsers (shared PostgreSQL); test/chaos/cli.mjs.
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          globalSetup: [postgres],
          testTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'k8s',
          include: [
            'test/k8s/**/*.test.ts',
            'test/operator/e2e/**/*.test.ts',
            'test/chart/k8s/**/*.test.ts',
            'test/image/k8s/**/*.test.ts',
          ],
          // One real control plane and one local kubelet per run (see test/harness), shared by these files in turn.
          globalSetup: [postgres, 'test/harness/globalSetup.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

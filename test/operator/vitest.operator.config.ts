// Operator tests only: npx vitest run --config test/operator/vitest.operator.config.ts
// (unit tests need nothing; e2e tests need the control plane from test/harness/globalSetup.ts and skip without it).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: new URL('../..', import.meta.url).pathname,
  test: {
    include: ['test/operator/**/*.test.ts'],
    globalSetup: ['test/support/postgres-global-setup.ts', 'test/harness/globalSetup.ts'],
    testTimeout: 180_000,
    hookTimeout: 240_000,
    teardownTimeout: 60_000,
    fileParallelism: false,
  },
});

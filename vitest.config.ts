import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/postgres-global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // A 2-core machine: at most two files at once keeps race tests meaningful and timing-insensitive.
    maxWorkers: 2,
  },
});

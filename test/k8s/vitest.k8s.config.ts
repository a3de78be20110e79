// Runs only the Kubernetes tests: npx vitest run --config test/k8s/vitest.k8s.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: new URL('../..', import.meta.url).pathname,
  test: {
    include: ['test/k8s/**/*.test.ts'],
    globalSetup: ['test/support/postgres-global-setup.ts', 'test/harness/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    teardownTimeout: 60_000,
    // One control plane and one kubelet serve the whole run; files share them, keep them sequential.
    fileParallelism: false,
  },
});

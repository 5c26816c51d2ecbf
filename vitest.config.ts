import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // End-to-end tests start real servers on ephemeral ports; run files in
    // parallel but keep each file's tests sequential.
    fileParallelism: true,
  },
});

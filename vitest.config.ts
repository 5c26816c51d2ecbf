import { defineConfig } from 'vitest/config';

/**
 * Four projects, by what their tests need (docs/architecture.md, "Tests"):
 * `unit` no service at all (seconds: `npm run test:unit`), `integration`
 * the shared Redis and PostgreSQL and servers the tests start, `e2e` the
 * gateway in front of a recording upstream, `browser` the gateway's pages
 * in headless Chromium (its global setup builds dist/ui first). `vitest
 * run` (npm test) runs all four; `--project <name>` one.
 */
export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // End-to-end tests start real servers on ephemeral ports; run files in
    // parallel but keep each file's tests sequential.
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
      // One Chromium at a time: each file starts its own browser and gateway.
      {
        extends: true,
        test: { name: 'browser', include: ['test/browser/**/*.test.ts'], globalSetup: ['test/browser/global-setup.ts'], fileParallelism: false, testTimeout: 30_000, hookTimeout: 60_000 },
      },
    ],
  },
});

import { afterAll } from 'vitest';
import { adminApiSuite } from '../e2e/admin-api.suite.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';

/** The admin API suite on a real PostgreSQL 15, in a fresh database of its own. */
let database: TestDatabase | undefined;
afterAll(async () => {
  await database?.drop();
});

adminApiSuite('PostgreSQL 15', async () => {
  database = await createTestDatabase();
  return `  url: "${database.url}"`;
});

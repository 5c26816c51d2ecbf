import { afterAll } from 'vitest';
import { operatorViewsSuite } from '../e2e/operator-views.suite.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';

/** The operator views on a real PostgreSQL, in a fresh database of its own. */
let database: TestDatabase | undefined;
afterAll(async () => {
  await database?.drop();
});

operatorViewsSuite('PostgreSQL', async () => {
  database = await createTestDatabase();
  return `  url: "${database.url}"`;
});

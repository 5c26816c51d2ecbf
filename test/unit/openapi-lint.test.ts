import { createConfig, lint } from '@redocly/openapi-core';
import { describe, expect, it } from 'vitest';
import { openapiDocumentPath } from '../../src/http/routes/admin-api/admin-api.js';

/**
 * openapi/admin.yaml through an independent validator: Redocly's OpenAPI
 * linter (what `redocly lint` runs) with its recommended ruleset, which
 * checks the structure against the OpenAPI 3.1 specification (a YAML slip
 * that turns a description into stray keys is an error) and the
 * recommended practice (operationIds, a license, a 4XX on every operation).
 */
describe('openapi/admin.yaml', () => {
  it("has no error and no warning under @redocly/openapi-core's recommended ruleset", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lint({ ref: openapiDocumentPath(), config });
    expect(problems.map((problem) => `${problem.severity} ${problem.ruleId}: ${problem.message} (${problem.location[0]?.pointer ?? '?'})`)).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

/** docs/configuration.md must keep up with schema.ts: every field, and a valid example. */

const DOC = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

/** Every field path of the schema as the doc writes it: `routes[].cost`, `plans.<name>.limits.hour`. */
function fieldPaths(schema: z.core.$ZodType, prefix: string): string[] {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) return fieldPaths(schema.unwrap() as z.core.$ZodType, prefix);
  if (schema instanceof z.ZodObject) {
    return Object.entries(schema.shape).flatMap(([key, child]) => {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      return [path, ...fieldPaths(child as z.core.$ZodType, path)];
    });
  }
  if (schema instanceof z.ZodRecord) return fieldPaths(schema.valueType as z.core.$ZodType, `${prefix}.<name>`);
  if (schema instanceof z.ZodArray) return fieldPaths(schema.element as z.core.$ZodType, `${prefix}[]`);
  return [];
}

describe('docs/configuration.md', () => {
  it('documents every field of the schema', () => {
    const paths = fieldPaths(configSchema, '');
    expect(paths).toContain('auth.api_keys.keys[].hash');
    expect(paths).toContain('plans.<name>.limits.month');
    expect(paths.filter((path) => !DOC.includes(`\`${path}\``))).toEqual([]);
  });

  it('gives a full example that is valid', () => {
    const example = /## Full example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(DOC)?.[1];
    expect(example).toBeDefined();
    const config = parseConfigText(example ?? '', 'configuration.md', {});
    expect(config.listeners.proxy.port).toBe(8080);
    expect(config.routes.map((route) => route.name)).toEqual(['health', 'search', 'create-repo', 'delete-repo', 'tiles', 'upload', 'api']);
  });

  // Alternatives that cannot share one valid file (redis url / sentinel / cluster)
  // appear as commented-out lines: `#   sentinel:`.
  it('uses every field in the full example', () => {
    const example = /## Full example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(DOC)?.[1] ?? '';
    const leafKeys = new Set(fieldPaths(configSchema, '').map((path) => path.split('.').at(-1)!.replace('[]', '')));
    expect([...leafKeys].filter((key) => !new RegExp(`^\\s*(#\\s*)?(- )?${key}:`, 'm').test(example))).toEqual([]);
  });
});

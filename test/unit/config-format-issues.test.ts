import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { describeValue, formatIssues, formatPath, plainIssueMessage } from '../../src/config/format-issues.js';

function linesFor(schema: z.ZodType, data: unknown): string[] {
  const result = schema.safeParse(data, { error: plainIssueMessage });
  if (result.success) throw new Error('accepted');
  return formatIssues(result.error.issues, 'f.yaml');
}

describe('formatPath', () => {
  it('joins keys with dots and puts indexes in brackets', () => {
    expect(formatPath(['routes', 0, 'upstream'])).toBe('routes[0].upstream');
    expect(formatPath(['plans', 'pro', 'limits', 'hour'])).toBe('plans.pro.limits.hour');
    expect(formatPath([0, 'a'])).toBe('[0].a');
  });

  it('names the empty path (root)', () => {
    expect(formatPath([])).toBe('(root)');
  });

  it('quotes keys that are not plain words', () => {
    expect(formatPath(['upstreams', 'my api', 'url'])).toBe('upstreams["my api"].url');
    expect(formatPath(['a.b'])).toBe('["a.b"]');
  });
});

describe('describeValue', () => {
  it('names YAML values in words', () => {
    expect([null, [], {}, 'x', 3, true, Number.NEGATIVE_INFINITY].map(describeValue)).toEqual([
      'nothing',
      'a list',
      'a mapping',
      'a string ("x")',
      'a number (3)',
      'a boolean (true)',
      '-.inf',
    ]);
  });

  it('shortens long strings', () => {
    expect(describeValue('x'.repeat(50))).toBe(`a string ("${'x'.repeat(40)}…")`);
  });
});

describe('formatIssues with plainIssueMessage', () => {
  it('words bounds on strings, lists and exclusive numbers', () => {
    const schema = z.strictObject({ s: z.string().max(3), l: z.array(z.int()).max(1), n: z.number().gt(0) });
    expect(linesFor(schema, { s: 'abcd', l: [1, 2], n: 0 })).toEqual([
      'f.yaml: s: must be at most 3 characters long',
      'f.yaml: l: must have at most 1 entry',
      'f.yaml: n: must be greater than 0',
    ]);
  });

  it('keeps a message the schema wrote itself', () => {
    expect(linesFor(z.strictObject({ a: z.literal('x', { error: 'only x' }) }), { a: 'y' })).toEqual(['f.yaml: a: only x']);
  });

  it('keeps the file label exactly as given', () => {
    const result = z.strictObject({}).safeParse({ a: 1 }, { error: plainIssueMessage });
    expect(result.success ? [] : formatIssues(result.error.issues, './conf/../gw.yaml')).toEqual(['./conf/../gw.yaml: a: unknown key']);
  });
});

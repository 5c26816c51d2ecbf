import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { PLACEHOLDER_ADMIN_TOKENS, adminTokenProblem, isLoopbackHost } from '../../src/config/admin-token.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** Every YAML file of the examples: config/ (with config/kubernetes) and docker-compose.yml. */
function exampleFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : /\.ya?ml$/.test(name) ? [path] : [];
    });
  return [...walk(resolve(ROOT, 'config')), resolve(ROOT, 'docker-compose.yml')];
}

/**
 * Literal values under a key naming a token (`admin-token`,
 * `QUOTAGATE_ADMIN_TOKEN`, `token`), also inside a ConfigMap's embedded
 * gateway.yaml. `token_env` holds a variable name, and `${…}` references
 * are filled in from the environment, so neither is a token.
 */
function literalTokens(value: unknown, key = ''): string[] {
  if (typeof value === 'string') {
    if (/token/i.test(key) && key !== 'token_env' && value !== '' && !value.includes('${')) return [value];
    if (value.includes('\n') && /token/i.test(value)) return parseAllDocuments(value).flatMap((doc) => literalTokens(doc.toJS()));
    return [];
  }
  if (Array.isArray(value)) return value.flatMap((item) => literalTokens(item, key));
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    // Kubernetes env lists: { name: QUOTAGATE_ADMIN_TOKEN, value: "…" }.
    const named = (value as { name?: unknown }).name;
    return entries.flatMap(([k, v]) => literalTokens(v, k === 'value' && typeof named === 'string' ? named : k));
  }
  return [];
}

describe('admin token placeholders', () => {
  it('lists every token literal the examples hold (today: none; the secret.yaml placeholder of earlier releases is listed)', () => {
    const found = exampleFiles().flatMap((file) =>
      parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => literalTokens(doc.toJS()).map((token) => `${relative(ROOT, file)}: ${token}`)),
    );
    expect(found).toEqual([]);
    expect(PLACEHOLDER_ADMIN_TOKENS.has('change-me-to-a-long-random-token')).toBe(true);
  });

  it('finds a token literal where an example would ship one (the scan can fail)', () => {
    const manifest = parseAllDocuments('stringData:\n  admin-token: change-me\nenv:\n  - { name: QUOTAGATE_ADMIN_TOKEN, value: hunter2 }\n');
    expect(manifest.flatMap((doc) => literalTokens(doc.toJS()))).toEqual(['change-me', 'hunter2']);
  });
});

describe('adminTokenProblem', () => {
  const exposed = (host: string) => ({ listeners: { admin: { host } }, admin: { token_env: 'T' } });

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])('lets any token serve an admin listener on loopback %s', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
    expect(adminTokenProblem(exposed(host), { T: 'x' })).toBeUndefined();
  });

  it.each(['0.0.0.0', '::', '10.1.2.3', 'admin.internal', '128.0.0.1'])('treats %s as beyond loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
    expect(adminTokenProblem(exposed(host), { T: 'x'.repeat(31) })?.path).toBe('admin.token_env');
    expect(adminTokenProblem(exposed(host), { T: 'x'.repeat(32) })).toBeUndefined();
  });

  it('accepts an exposed listener with the API off (no variable, unset or empty)', () => {
    expect(adminTokenProblem({ listeners: { admin: { host: '0.0.0.0' } }, admin: {} }, { T: 'short' })).toBeUndefined();
    expect(adminTokenProblem(exposed('0.0.0.0'), {})).toBeUndefined();
    expect(adminTokenProblem(exposed('0.0.0.0'), { T: '' })).toBeUndefined();
  });

  it('never repeats the token in its message', () => {
    for (const token of ['tiny-secret', ...PLACEHOLDER_ADMIN_TOKENS]) {
      expect(adminTokenProblem(exposed('0.0.0.0'), { T: token })?.message).not.toContain(token);
    }
  });
});

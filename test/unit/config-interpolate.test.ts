import { describe, expect, it } from 'vitest';
import { expandString, resolvePlainScalar } from '../../src/config/interpolate.js';
import { parseConfigText } from '../../src/config/load.js';
import { configProblems, MINIMAL_CONFIG } from '../support/config-problems.js';

const MINIMAL = MINIMAL_CONFIG;

const problemsOf = configProblems;

describe('expandString', () => {
  it('substitutes a set variable', () => {
    expect(expandString('http://${HOST}:3000', { HOST: 'api' })).toEqual({ ok: true, text: 'http://api:3000', wholeExpression: false });
  });

  it('uses the default when the variable is unset or empty', () => {
    expect(expandString('${PORT:-8080}', {})).toEqual({ ok: true, text: '8080', wholeExpression: true });
    expect(expandString('${PORT:-8080}', { PORT: '' })).toEqual({ ok: true, text: '8080', wholeExpression: true });
    expect(expandString('${PORT:-8080}', { PORT: '9090' })).toEqual({ ok: true, text: '9090', wholeExpression: true });
  });

  it('accepts an empty default and a default with colons and slashes', () => {
    expect(expandString('a${X:-}b', {})).toMatchObject({ ok: true, text: 'ab' });
    expect(expandString('${URL:-http://localhost:3000}', {})).toMatchObject({ ok: true, text: 'http://localhost:3000' });
  });

  it('substitutes an empty variable without a default as the empty string', () => {
    expect(expandString('a${X}b', { X: '' })).toMatchObject({ ok: true, text: 'ab' });
  });

  it('turns $${ into a literal ${ and leaves other dollars alone', () => {
    expect(expandString('$${HOME} costs $5 or $$', { HOME: '/root' })).toEqual({ ok: true, text: '${HOME} costs $5 or $$', wholeExpression: false });
  });

  it('does not substitute inside a substituted value', () => {
    expect(expandString('${A}', { A: '${B}', B: 'no' })).toMatchObject({ ok: true, text: '${B}' });
  });

  it('reports every unset variable of one string', () => {
    expect(expandString('${USER}:${PASS}', {})).toEqual({
      ok: false,
      problems: ['environment variable "USER" is not set', 'environment variable "PASS" is not set'],
    });
  });

  it('rejects a default that nests another reference', () => {
    expect(expandString('${A:-${B}}', {})).toEqual({ ok: false, problems: ['invalid reference "${A:-${B}": a default cannot contain "${"'] });
  });

  it('rejects an empty reference', () => {
    expect(expandString('${}', {})).toEqual({ ok: false, problems: ['invalid reference "${}": expected ${NAME} or ${NAME:-default}'] });
  });

  it('marks a string that is exactly one expression, and only that', () => {
    expect(expandString('${A}', { A: '1' })).toMatchObject({ wholeExpression: true });
    expect(expandString('${A}${A}', { A: '1' })).toMatchObject({ wholeExpression: false });
    expect(expandString(' ${A}', { A: '1' })).toMatchObject({ wholeExpression: false });
    expect(expandString('$${A}', { A: '1' })).toMatchObject({ wholeExpression: false });
  });
});

describe('resolvePlainScalar', () => {
  it('reads numbers, booleans and null as YAML would', () => {
    expect(resolvePlainScalar('8080')).toBe(8080);
    expect(resolvePlainScalar('0x1F')).toBe(31);
    expect(resolvePlainScalar('1e3')).toBe(1000);
    expect(resolvePlainScalar('false')).toBe(false);
    expect(resolvePlainScalar('TRUE')).toBe(true);
    expect(resolvePlainScalar('~')).toBe(null);
  });

  it('keeps any other text as the exact string', () => {
    for (const text of ['hello world', 'a: b', '- a', '[1]', '#x', '"q"', '', '  ', 'line\nbreak', 'yes']) {
      expect(resolvePlainScalar(text)).toBe(text);
    }
  });
});

describe('interpolation while loading', () => {
  it('reads an unquoted ${PORT:-8080} as the number 8080', () => {
    const config = parseConfigText(`${MINIMAL}listeners:\n  proxy:\n    port: \${PORT:-8080}\n`, 'gateway.yaml', {});
    expect(config.listeners.proxy.port).toBe(8080);
  });

  it('reads an unquoted ${HIDE:-false} as a boolean, and a set value over the default', () => {
    const text = MINIMAL.replace('upstream: demo', 'upstream: demo\n    hide_headers: ${HIDE:-false}');
    expect(parseConfigText(text, 'gateway.yaml', {}).routes[0]?.hide_headers).toBe(false);
    expect(parseConfigText(text, 'gateway.yaml', { HIDE: 'true' }).routes[0]?.hide_headers).toBe(true);
  });

  it('keeps a value with text around the expression a string', () => {
    const text = MINIMAL.replace('name: api', 'name: api-${N}');
    expect(parseConfigText(text, 'gateway.yaml', { N: '2' }).routes[0]?.name).toBe('api-2');
  });

  it('reads a quoted expression the same way, so it can stand in a flow collection', () => {
    const config = parseConfigText(`${MINIMAL}listeners:\n  proxy: { port: "\${PORT:-8080}" }\n`, 'gateway.yaml', {});
    expect(config.listeners.proxy.port).toBe(8080);
  });

  it('keeps an expression tagged !!str a string', () => {
    const text = MINIMAL.replace('free: {}', 'free: {}\nauth:\n  api_keys:\n    keys:\n      - id: !!str ${KEY_ID}\n        hash: ${KEY_HASH}\n        subject: acme\n        plan: free');
    const config = parseConfigText(text, 'gateway.yaml', { KEY_ID: '42', KEY_HASH: 'a'.repeat(64) });
    expect(config.auth.api_keys.keys[0]).toMatchObject({ id: '42', hash: 'a'.repeat(64) });
  });

  it('writes a literal ${ for $${', () => {
    const text = MINIMAL.replace('free: {}', () => 'free:\n    upgrade_url: https://example.com/?next=$${page}');
    expect(parseConfigText(text, 'gateway.yaml', {}).plans.free?.upgrade_url).toBe('https://example.com/?next=${page}');
  });

  it('interpolates inside lists and inside anchored values shared by aliases', () => {
    const text = MINIMAL.replace('free: {}', 'free: &p\n    limits:\n      hour: ${HOURLY}\n  pro: *p\nproxy:\n  trusted_proxies:\n    - ${LB}');
    const config = parseConfigText(text, 'gateway.yaml', { HOURLY: '100', LB: '10.0.0.0/8' });
    expect(config.plans).toEqual({
      free: { limits: { hour: 100 }, quotas: {}, quota_status: 429, public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' },
      pro: { limits: { hour: 100 }, quotas: {}, quota_status: 429, public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' },
    });
    expect(config.proxy.trusted_proxies).toEqual(['10.0.0.0/8']);
  });

  it('needs block style: inside a flow collection the braces of ${…} are YAML syntax', () => {
    expect(problemsOf(MINIMAL.replace('free: {}', 'free: {limits: {hour: ${HOURLY}}}'), { HOURLY: '1' })).toEqual([
      expect.stringMatching(/^gateway\.yaml: line 10, column \d+: invalid YAML: /),
    ]);
  });

  it('does not interpolate mapping keys', () => {
    expect(problemsOf(`${MINIMAL}\${X}: 1\n`, { X: 'logging' })).toEqual(['gateway.yaml: ["${X}"]: unknown key']);
  });

  it('validates the substituted value against the schema', () => {
    expect(problemsOf(`${MINIMAL}listeners:\n  proxy:\n    port: \${PORT}\n`, { PORT: '80a' })).toEqual([
      'gateway.yaml: listeners.proxy.port: expected a number, got a string ("80a")',
    ]);
  });

  it('reports every unset variable with its path before validating anything else', () => {
    const text = MINIMAL.replace('http://127.0.0.1:3000', '${UPSTREAM_URL}').replace('name: api', 'name: ${ROUTE}') + 'colour: blue\n';
    expect(problemsOf(text, {})).toEqual([
      'gateway.yaml: upstreams.demo.url: environment variable "UPSTREAM_URL" is not set',
      'gateway.yaml: routes[0].name: environment variable "ROUTE" is not set',
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { configWarnings, formatWarning } from '../../src/config/warnings.js';

/** The warnings of a valid config, as check-config prints them. */
function warningsOf(yaml: string): string[] {
  return configWarnings(parseConfigText(yaml, 'gateway.yaml', {})).map((w) => formatWarning('gateway.yaml', w));
}

const base = (routes: string, extra = '', plans = '  free: { limits: { hour: 10 } }\n  anonymous: { limits: { minute: 5 } }') => `
upstreams:
  app: { url: "http://127.0.0.1:3000" }
routes:
${routes}
plans:
${plans}
${extra}`;

const ISSUER = (prefix = '') => `
auth:
  jwt:
    default_plan: free
    issuers:
      - issuer: https://idp.example/
        audience: [api]
        algorithms: [RS256]
        jwks_url: https://idp.example/jwks.json
${prefix}`;

describe('configWarnings', () => {
  it('warns about nothing in an ordinary config', () => {
    expect(warningsOf(base('  - { name: api, path_prefix: /, upstream: app }', 'proxy: { trusted_proxies: [10.0.0.0/8, "::1"] }'))).toEqual([]);
  });

  it('warns about trusted proxies that trust every peer', () => {
    const yaml = base('  - { name: api, path_prefix: /, upstream: app }', 'proxy: { trusted_proxies: [10.0.0.0/8, 0.0.0.0/0, "::/0"] }');
    const why = 'trusts every peer: any client can set X-Forwarded-For (and so its anonymous subject), X-Forwarded-Proto and X-Forwarded-Host';
    expect(warningsOf(yaml)).toEqual([
      `gateway.yaml: proxy.trusted_proxies[1]: warning: 0.0.0.0/0 ${why}`,
      `gateway.yaml: proxy.trusted_proxies[2]: warning: ::/0 ${why}`,
    ]);
  });

  it('warns about an auth: none route whose anonymous plan has no windows', () => {
    const yaml = base('  - { name: api, path_prefix: /api, upstream: app }\n  - { name: public, path_prefix: /, upstream: app, auth: none }', '', '  free: { limits: { hour: 10 } }\n  anonymous: {}');
    expect(warningsOf(yaml)).toEqual([
      'gateway.yaml: routes[1].auth: warning: route "public" uses auth: none, and plan "anonymous" has no windows: anonymous callers are unlimited',
    ]);
  });

  it('does not warn when the anonymous plan meters the quota the route charges', () => {
    const yaml = base(
      '  - { name: public, path_prefix: /, upstream: app, auth: none, quota: search }',
      '',
      '  free: { limits: { hour: 10 } }\n  anonymous: { quotas: { search: { day: 100 } } }',
    );
    expect(warningsOf(yaml)).toEqual([]);
  });

  it('warns about a JWT issuer without subject_prefix beside API-key and anonymous subjects', () => {
    const routes = '  - { name: jwt, path_prefix: /t, upstream: app, auth: jwt }\n  - { name: keys, path_prefix: /k, upstream: app }\n  - { name: public, path_prefix: /, upstream: app, auth: none }';
    expect(warningsOf(base(routes, ISSUER()))).toEqual([
      'gateway.yaml: auth.jwt.issuers[0].subject_prefix: warning: not set, and routes also charge API-key subjects and anonymous "ip:" subjects: a token whose subject equals one shares its limits; set one, e.g. "jwt:"',
    ]);
    expect(warningsOf(base('  - { name: jwt, path_prefix: /t, upstream: app, auth: jwt }\n  - { name: public, path_prefix: /, upstream: app, auth: none }', ISSUER()))).toEqual([
      'gateway.yaml: auth.jwt.issuers[0].subject_prefix: warning: not set, and routes also charge anonymous "ip:" subjects: a token whose subject equals one shares its limits; set one, e.g. "jwt:"',
    ]);
    expect(warningsOf(base(routes, ISSUER('        subject_prefix: "idp:"')))).toEqual([]);
  });

  it('does not warn about an issuer whose tokens are the only subjects', () => {
    expect(warningsOf(base('  - { name: jwt, path_prefix: /, upstream: app, auth: jwt }', ISSUER()))).toEqual([]);
  });
});

import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { ClientAddress } from '../../src/proxy/client-address.js';
import { buildUpstreamRequestHeaders, headerSafe, type UpstreamHeaderContext } from '../../src/proxy/request-headers.js';

const untrusted: ClientAddress = { clientIp: '198.51.100.9', forwardedFor: '198.51.100.9', peerTrusted: false };
const trusted: ClientAddress = { clientIp: '203.0.113.5', forwardedFor: '203.0.113.5, 10.0.0.1', peerTrusted: true };

function context(overrides: Partial<UpstreamHeaderContext> = {}): UpstreamHeaderContext {
  return { credentialHeaders: [], identity: undefined, client: untrusted, protocol: 'http', ...overrides };
}

/** The flat list as name → values, for order-insensitive assertions. */
function byName(flat: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) (out[flat[i]!] ??= []).push(flat[i + 1]!);
  return out;
}

describe('buildUpstreamRequestHeaders', () => {
  it("sends the gateway's request id in place of the client's, once", () => {
    const headers: IncomingHttpHeaders = { 'x-request-id': 'bad id from client' };
    expect(byName(buildUpstreamRequestHeaders(headers, context({ requestId: 'gw-1' })))['x-request-id']).toEqual(['gw-1']);
    expect(byName(buildUpstreamRequestHeaders(headers, context()))['x-request-id']).toEqual(['bad id from client']);
  });

  it('copies end-to-end fields, repeating array values', () => {
    const headers: IncomingHttpHeaders = { host: 'api.example.com', accept: 'application/json', cookie: 'a=1', 'x-multi': ['1', '2'] };
    const built = byName(buildUpstreamRequestHeaders(headers, context()));
    expect(built['accept']).toEqual(['application/json']);
    expect(built['cookie']).toEqual(['a=1']);
    expect(built['x-multi']).toEqual(['1', '2']);
  });

  it('drops host, expect, hop-by-hop fields and those named in Connection', () => {
    const built = byName(
      buildUpstreamRequestHeaders(
        {
          host: 'api.example.com',
          expect: '100-continue',
          connection: 'keep-alive, x-hop',
          'x-hop': '1',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'transfer-encoding': 'chunked',
          'proxy-authorization': 'Basic x',
          'content-type': 'text/plain',
        },
        context(),
      ),
    );
    expect(Object.keys(built).sort()).toEqual(['content-type', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
  });

  it('drops the credential fields it is told about, and only those', () => {
    const built = byName(
      buildUpstreamRequestHeaders({ authorization: 'Bearer other', cookie: 'a=1' }, context({ credentialHeaders: ['cookie'] })),
    );
    expect(built['cookie']).toBeUndefined();
    expect(built['authorization']).toEqual(['Bearer other']);
    expect(byName(buildUpstreamRequestHeaders({ authorization: 'Bearer other' }, context({ credentialHeaders: ['authorization'] })))['authorization']).toBeUndefined();
  });

  it('never forwards X-API-Key, whatever the route told it', () => {
    expect(byName(buildUpstreamRequestHeaders({ 'x-api-key': 'qg_secret', accept: '*/*' }, context()))).not.toHaveProperty('x-api-key');
  });

  it.each([
    'x_quotagate_subject',
    'x-quotagate_plan',
    'x_quotagate-key-id',
    'x_forwarded_for',
    'x-forwarded_proto',
    'x_forwarded_host',
    'x-real_ip',
    'x_request_id',
    'x_api_key',
    'x_http_method_override',
  ])('drops %s, which CGI-style stacks read as a header the gateway owns', (name) => {
    const built = byName(buildUpstreamRequestHeaders({ [name]: 'forged', 'x_custom_thing': 'kept' }, context({ client: trusted })));
    expect(built[name]).toBeUndefined();
    expect(built['x_custom_thing']).toEqual(['kept']);
  });

  it('never copies x-quotagate-* from the client, and adds the identity', () => {
    const built = byName(
      buildUpstreamRequestHeaders(
        { 'x-quotagate-subject': 'admin', 'x-quotagate-plan': 'enterprise', 'x-quotagate-key-id': 'k0', 'x-quotagate-other': '1' },
        context({ identity: { subject: 'user-1', plan: 'pro', keyId: 'key-7' } }),
      ),
    );
    expect(built['x-quotagate-subject']).toEqual(['user-1']);
    expect(built['x-quotagate-plan']).toEqual(['pro']);
    expect(built['x-quotagate-key-id']).toEqual(['key-7']);
    expect(built['x-quotagate-other']).toBeUndefined();
  });

  it('sends no identity fields without an identity, and no key id without one', () => {
    const anonymous = byName(buildUpstreamRequestHeaders({ 'x-quotagate-subject': 'admin' }, context()));
    expect(Object.keys(anonymous).filter((name) => name.startsWith('x-quotagate-'))).toEqual([]);
    const jwt = byName(buildUpstreamRequestHeaders({}, context({ identity: { subject: 's', plan: 'free' } })));
    expect(jwt['x-quotagate-key-id']).toBeUndefined();
  });

  it('from an untrusted peer, replaces every forwarding claim', () => {
    const built = byName(
      buildUpstreamRequestHeaders(
        {
          host: 'api.example.com',
          'x-forwarded-for': '6.6.6.6',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'evil.example',
          forwarded: 'for=6.6.6.6',
          'x-real-ip': '6.6.6.6',
        },
        context(),
      ),
    );
    expect(built['x-forwarded-for']).toEqual(['198.51.100.9']);
    expect(built['x-forwarded-proto']).toEqual(['http']);
    expect(built['x-forwarded-host']).toEqual(['api.example.com']);
    expect(built['forwarded']).toBeUndefined();
    expect(built['x-real-ip']).toBeUndefined();
  });

  it('from a trusted peer, keeps its proto, host and other forwarding fields', () => {
    const built = byName(
      buildUpstreamRequestHeaders(
        {
          host: 'internal:8080',
          'x-forwarded-for': '203.0.113.5',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'api.example.com',
          forwarded: 'for=203.0.113.5',
          'x-real-ip': '203.0.113.5',
        },
        context({ client: trusted }),
      ),
    );
    expect(built['x-forwarded-for']).toEqual(['203.0.113.5, 10.0.0.1']);
    expect(built['x-forwarded-proto']).toEqual(['https']);
    expect(built['x-forwarded-host']).toEqual(['api.example.com']);
    expect(built['forwarded']).toEqual(['for=203.0.113.5']);
    expect(built['x-real-ip']).toEqual(['203.0.113.5']);
  });

  it('from a trusted peer that sent no proto or host, uses the listener scheme and Host', () => {
    const built = byName(buildUpstreamRequestHeaders({ host: 'internal:8080' }, context({ client: trusted, protocol: 'https' })));
    expect(built['x-forwarded-proto']).toEqual(['https']);
    expect(built['x-forwarded-host']).toEqual(['internal:8080']);
  });

  it('sends no x-forwarded-host when the request had no Host', () => {
    expect(byName(buildUpstreamRequestHeaders({}, context()))['x-forwarded-host']).toBeUndefined();
  });

  it('percent-encodes identity values that are not printable ASCII', () => {
    const built = byName(buildUpstreamRequestHeaders({}, context({ identity: { subject: 'a\r\nx-injected: 1', plan: 'pro' } })));
    expect(built['x-quotagate-subject']).toEqual(['a%0D%0Ax-injected%3A%201']);
  });
});

describe('headerSafe', () => {
  it('leaves printable ASCII without "%" alone and percent-encodes the rest', () => {
    expect(headerSafe('user 1/a:b@c')).toBe('user 1/a:b@c');
    expect(headerSafe('jürgen')).toBe('j%C3%BCrgen');
    expect(headerSafe('line\r\nx-injected: 1')).toBe('line%0D%0Ax-injected%3A%201');
  });

  it('encodes unambiguously: two different values never give one header, and decodeURIComponent gives each back', () => {
    const values = ['jürgen', 'j%C3%BCrgen', 'user 1/%', 'user%201%2F%25', '100%', 'a%25'];
    const sent = values.map(headerSafe);
    expect(new Set(sent).size).toBe(values.length);
    expect(sent.map(decodeURIComponent)).toEqual(values);
    expect(headerSafe('j%C3%BCrgen')).toBe('j%25C3%25BCrgen');
  });

  it('replaces a lone surrogate (no UTF-8 form) rather than throwing', () => {
    expect(headerSafe('a\ud800b')).toBe('a%EF%BF%BDb');
  });
});

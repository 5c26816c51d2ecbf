import { describe, expect, it } from 'vitest';
import { ClientAddressResolver, normalizeAddress } from '../../src/proxy/client-address.js';

describe('ClientAddressResolver with no trusted proxies', () => {
  const resolver = new ClientAddressResolver([]);

  it('uses the peer and ignores X-Forwarded-For entirely', () => {
    expect(resolver.resolve('198.51.100.9', '203.0.113.1')).toEqual({
      clientIp: '198.51.100.9',
      forwardedFor: '198.51.100.9',
      peerTrusted: false,
    });
  });

  it('trusts nobody, not even loopback', () => {
    expect(resolver.isTrusted('127.0.0.1')).toBe(false);
    expect(resolver.resolve('127.0.0.1', '1.1.1.1').clientIp).toBe('127.0.0.1');
  });
});

describe('ClientAddressResolver with trusted proxies', () => {
  const resolver = new ClientAddressResolver(['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);

  it('an untrusted peer cannot choose its client IP by sending X-Forwarded-For', () => {
    for (const spoof of ['10.0.0.1', '1.2.3.4', '1.2.3.4, 10.0.0.1', ['5.6.7.8', '10.0.0.2'], 'garbage']) {
      const resolved = resolver.resolve('198.51.100.9', spoof);
      expect(resolved).toEqual({ clientIp: '198.51.100.9', forwardedFor: '198.51.100.9', peerTrusted: false });
    }
  });

  it('a trusted peer without X-Forwarded-For is itself the client', () => {
    expect(resolver.resolve('10.1.1.1')).toEqual({ clientIp: '10.1.1.1', forwardedFor: '10.1.1.1', peerTrusted: true });
    expect(resolver.resolve('10.1.1.1', ' ').clientIp).toBe('10.1.1.1');
  });

  it('takes the address the trusted peer saw, and appends the peer to the chain', () => {
    expect(resolver.resolve('10.1.1.1', '203.0.113.5')).toEqual({
      clientIp: '203.0.113.5',
      forwardedFor: '203.0.113.5, 10.1.1.1',
      peerTrusted: true,
    });
  });

  it('walks from the right past trusted hops to the first untrusted address', () => {
    const resolved = resolver.resolve('10.1.1.1', '6.6.6.6, 203.0.113.5, 192.0.2.7, 10.9.9.9');
    expect(resolved.clientIp).toBe('203.0.113.5');
    expect(resolved.forwardedFor).toBe('6.6.6.6, 203.0.113.5, 192.0.2.7, 10.9.9.9, 10.1.1.1');
  });

  it('a spoofed leftmost entry does not win over the address a trusted proxy recorded', () => {
    // The client sent "X-Forwarded-For: 10.0.0.5" hoping to look internal; the proxy appended its real address.
    expect(resolver.resolve('10.1.1.1', '10.0.0.5, 198.51.100.77').clientIp).toBe('198.51.100.77');
  });

  it('takes the leftmost address when every hop is trusted', () => {
    expect(resolver.resolve('10.1.1.1', '10.2.2.2, 192.0.2.7').clientIp).toBe('10.2.2.2');
  });

  it('reads repeated X-Forwarded-For fields as one list', () => {
    const resolved = resolver.resolve('10.1.1.1', ['203.0.113.5', '10.3.3.3']);
    expect(resolved.clientIp).toBe('203.0.113.5');
    expect(resolved.forwardedFor).toBe('203.0.113.5, 10.3.3.3, 10.1.1.1');
  });

  it('skips empty entries and strips ports and brackets', () => {
    expect(resolver.resolve('10.1.1.1', '203.0.113.5:4711, , 10.2.2.2:80').clientIp).toBe('203.0.113.5');
    expect(resolver.resolve('10.1.1.1', '[2001:DB8::1]:443').clientIp).toBe('2001:db8::1');
  });

  it('an unparseable entry stops the walk at the nearest trusted hop', () => {
    expect(resolver.resolve('10.1.1.1', 'unknown').clientIp).toBe('10.1.1.1');
    expect(resolver.resolve('10.1.1.1', '6.6.6.6, _hidden, 10.2.2.2').clientIp).toBe('10.2.2.2');
  });

  it('matches IPv6 peers and chains', () => {
    expect(resolver.isTrusted('fd12::1')).toBe(true);
    expect(resolver.isTrusted('FD12::1')).toBe(true);
    expect(resolver.isTrusted('2001:db8::1')).toBe(false);
    expect(resolver.resolve('fd12::1', '2001:db8::42, fd00::9').clientIp).toBe('2001:db8::42');
    expect(resolver.resolve('2001:db8::1', '203.0.113.5').clientIp).toBe('2001:db8::1');
  });

  it('treats an IPv4-mapped IPv6 peer as the IPv4 address it maps', () => {
    expect(resolver.isTrusted('::ffff:10.0.0.1')).toBe(true);
    expect(resolver.resolve('::ffff:10.0.0.1', '203.0.113.5')).toEqual({
      clientIp: '203.0.113.5',
      forwardedFor: '203.0.113.5, 10.0.0.1',
      peerTrusted: true,
    });
    expect(resolver.resolve('::FFFF:198.51.100.9', '1.2.3.4')).toEqual({
      clientIp: '198.51.100.9',
      forwardedFor: '198.51.100.9',
      peerTrusted: false,
    });
    expect(resolver.resolve('10.1.1.1', '::ffff:203.0.113.5').clientIp).toBe('203.0.113.5');
  });

  it('accepts IPv4-mapped CIDR blocks in the configuration', () => {
    const mapped = new ClientAddressResolver(['::ffff:172.16.0.0/108']);
    expect(mapped.isTrusted('172.16.3.4')).toBe(true);
    expect(mapped.isTrusted('::ffff:172.16.3.4')).toBe(true);
    expect(mapped.isTrusted('172.32.0.1')).toBe(false);
  });

  it('trusts single addresses given without a prefix length', () => {
    expect(resolver.isTrusted('192.0.2.7')).toBe(true);
    expect(resolver.isTrusted('192.0.2.8')).toBe(false);
  });

  it('does not trust what is not an address', () => {
    expect(resolver.isTrusted('unknown')).toBe(false);
    expect(resolver.isTrusted('')).toBe(false);
    expect(resolver.resolve('unknown', '10.0.0.1')).toEqual({ clientIp: 'unknown', forwardedFor: 'unknown', peerTrusted: false });
  });

  it('gives the same answer when a decision is remembered', () => {
    for (let i = 0; i < 3; i++) expect(resolver.isTrusted('10.4.4.4')).toBe(true);
    for (let i = 0; i < 3; i++) expect(resolver.isTrusted('11.4.4.4')).toBe(false);
  });

  it('rejects entries that are not addresses or CIDR blocks', () => {
    expect(() => new ClientAddressResolver(['10.0.0.0/x'])).toThrow('proxy.trusted_proxies: "10.0.0.0/x"');
    expect(() => new ClientAddressResolver(['example.com'])).toThrow('not an IP address or CIDR block');
    expect(() => new ClientAddressResolver(['10.0.0.0/33'])).toThrow('invalid prefix length');
  });
});

describe('normalizeAddress', () => {
  it('unwraps IPv4-mapped IPv6 and lowercases IPv6', () => {
    expect(normalizeAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('2001:DB8::A')).toBe('2001:db8::a');
    expect(normalizeAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeAddress('::1')).toBe('::1');
  });

  it('returns undefined for non-addresses', () => {
    expect(normalizeAddress('unknown')).toBeUndefined();
    expect(normalizeAddress('1.2.3.4:80')).toBeUndefined();
  });
});

import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Who the client is, as far as the gateway can tell, and the
 * X-Forwarded-For chain to send upstream.
 */
export interface ClientAddress {
  /**
   * The client's IP address, normalized (IPv4-mapped IPv6 as plain IPv4,
   * IPv6 in lowercase). `auth: none` routes count limits against it, so it
   * is taken from X-Forwarded-For only when the peer is a trusted proxy.
   */
  readonly clientIp: string;
  /** The X-Forwarded-For value for the upstream: the believed chain plus the peer. */
  readonly forwardedFor: string;
  /** Whether the peer is a trusted proxy, whose forwarding headers are believed. */
  readonly peerTrusted: boolean;
}

/** Most remembered trust decisions; past it the memory starts over. */
const MAX_REMEMBERED = 4096;
const MAPPED_IPV4_PREFIX = '::ffff:';

/**
 * Decides which forwarding headers to believe, from `proxy.trusted_proxies`.
 *
 * Contract: a peer outside the trusted set cannot influence `clientIp` in any
 * way; its X-Forwarded-For is ignored, not extended. A trusted peer's chain
 * is walked from the right, skipping trusted hops; the first untrusted
 * address is the client (or the leftmost address when every hop is trusted).
 * Decisions are remembered per address (bounded), because peers are few and
 * a `BlockList` check costs microseconds.
 */
export class ClientAddressResolver {
  readonly #trusted: BlockList | undefined;
  readonly #remembered = new Map<string, boolean>();

  /**
   * @param trustedProxies IP addresses and CIDR blocks (`10.0.0.0/8`,
   *   `fd00::/8`, `::ffff:10.0.0.0/104`), as validated by the config schema.
   * @throws Error naming the entry when one is not an address or CIDR block.
   */
  constructor(trustedProxies: readonly string[]) {
    if (trustedProxies.length === 0) {
      this.#trusted = undefined;
      return;
    }
    const trusted = new BlockList();
    for (const entry of trustedProxies) addTrusted(trusted, entry);
    this.#trusted = trusted;
  }

  /** Whether `address` (any textual form node or a proxy may produce) is a trusted proxy. */
  isTrusted(address: string): boolean {
    if (this.#trusted === undefined) return false;
    const remembered = this.#remembered.get(address);
    if (remembered !== undefined) return remembered;
    const normalized = normalizeAddress(address);
    const trusted = normalized !== undefined && this.#trusted.check(normalized, isIPv4(normalized) ? 'ipv4' : 'ipv6');
    if (this.#remembered.size >= MAX_REMEMBERED) this.#remembered.clear();
    this.#remembered.set(address, trusted);
    return trusted;
  }

  /**
   * @param peerAddress the TCP peer (`socket.remoteAddress`).
   * @param xForwardedFor the incoming X-Forwarded-For, if any (repeated
   *   fields are read as one comma-separated list).
   */
  resolve(peerAddress: string, xForwardedFor?: string | readonly string[]): ClientAddress {
    const peer = normalizeAddress(peerAddress) ?? peerAddress;
    const chain = typeof xForwardedFor === 'string' ? xForwardedFor : xForwardedFor?.join(', ');
    if (!this.isTrusted(peerAddress)) return { clientIp: peer, forwardedFor: peer, peerTrusted: false };
    if (chain === undefined || chain.trim() === '') return { clientIp: peer, forwardedFor: peer, peerTrusted: true };
    return { clientIp: this.#walk(chain, peer), forwardedFor: `${chain}, ${peer}`, peerTrusted: true };
  }

  /**
   * The first untrusted address from the right of `chain`, or the leftmost.
   * An entry that is not an address stops the walk: the nearest hop already
   * believed (a trusted proxy) stands in for the client, because an
   * unparseable entry is not a value anyone should be counted under.
   */
  #walk(chain: string, peer: string): string {
    let client = peer;
    let end = chain.length;
    while (end > 0) {
      const comma = chain.lastIndexOf(',', end - 1);
      const entry = chain.slice(comma + 1, end).trim();
      end = comma === -1 ? 0 : comma;
      if (entry === '') continue;
      const address = normalizeAddress(stripPort(entry));
      if (address === undefined) return client;
      client = address;
      if (!this.isTrusted(address)) return address;
    }
    return client;
  }
}

/**
 * `address` as a plain IP: IPv4-mapped IPv6 becomes IPv4, IPv6 is lowercased.
 * `undefined` when it is not an IP address at all.
 */
export function normalizeAddress(address: string): string | undefined {
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return undefined;
  const lower = address.toLowerCase();
  if (lower.startsWith(MAPPED_IPV4_PREFIX)) {
    const tail = lower.slice(MAPPED_IPV4_PREFIX.length);
    if (isIPv4(tail)) return tail;
  }
  return lower;
}

/** `1.2.3.4:80` → `1.2.3.4`, `[2001:db8::1]:443` → `2001:db8::1`; anything else unchanged. */
function stripPort(entry: string): string {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    return close === -1 ? entry : entry.slice(1, close);
  }
  const colon = entry.indexOf(':');
  if (colon !== -1 && colon === entry.lastIndexOf(':')) return entry.slice(0, colon);
  return entry;
}

function addTrusted(list: BlockList, entry: string): void {
  const slash = entry.indexOf('/');
  const rawAddress = slash === -1 ? entry : entry.slice(0, slash);
  const address = normalizeAddress(rawAddress);
  const bits = slash === -1 ? undefined : Number(entry.slice(slash + 1));
  if (address === undefined || (bits !== undefined && !Number.isInteger(bits))) {
    throw new Error(`proxy.trusted_proxies: "${entry}" is not an IP address or CIDR block`);
  }
  const family = isIPv4(address) ? 'ipv4' : 'ipv6';
  if (bits === undefined) {
    list.addAddress(address, family);
    return;
  }
  // `::ffff:10.0.0.0/104` normalizes to an IPv4 address; its prefix shrinks by 96 bits.
  const mapped = family === 'ipv4' && !isIPv4(rawAddress);
  const prefix = mapped ? bits - 96 : bits;
  if (prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) {
    throw new Error(`proxy.trusted_proxies: "${entry}" has an invalid prefix length`);
  }
  list.addSubnet(address, prefix, family);
}

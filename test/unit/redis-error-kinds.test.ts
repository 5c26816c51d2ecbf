import { describe, expect, it } from 'vitest';
import { classifyRedisError, FirstErrorOfKindLog, REDIS_ERROR_KINDS, type RedisErrorKind } from '../../src/redis/error-kinds.js';
import { evictionRisk, maxmemoryPolicyOf } from '../../src/redis/maxmemory-policy.js';
import { maxClusterRedirections } from '../../src/redis/cluster-retries.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Messages as Redis 7.0 and ioredis 5 word them (captured from real servers). */
const MESSAGES: ReadonlyArray<readonly [string, RedisErrorKind]> = [
  ['Command timed out', 'timeout'],
  ["Stream isn't writeable and enableOfflineQueue options is false", 'connection'],
  ['Connection is closed.', 'connection'],
  ['connect ECONNREFUSED 127.0.0.1:6379', 'connection'],
  ['CLUSTERDOWN The cluster is down', 'connection'],
  ["OOM command not allowed when used memory > 'maxmemory'.", 'oom'],
  // A write at maxmemory inside a script: Redis names the script, the cause stays OOM.
  ["OOM command not allowed when used memory > 'maxmemory'. script: 2248ea7f1064bd8a19bac4fad179cb7f74bc361a, on @user_script:1.", 'oom'],
  ["NOPERM this user has no permissions to run the 'evalsha' command", 'noperm'],
  ['NOPERM this user has no permissions to access one of the keys used as arguments', 'noperm'],
  // A command the ACL refuses inside a script is an ERR of the script.
  ["ERR The user executing the script can't run this command or subcommand script: 2248ea7f1064bd8a19bac4fad179cb7f74bc361a, on @user_script:1.", 'noperm'],
  ['NOAUTH Authentication required.', 'auth'],
  ['WRONGPASS invalid username-password pair or user is disabled.', 'auth'],
  ["READONLY You can't write against a read only replica.", 'readonly'],
  ['LOADING Redis is loading the dataset in memory', 'loading'],
  ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.', 'busy'],
  ['Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot', 'redirection'],
  ["ERR user_script:12: Script attempted to access nonexistent global variable 'x' script: abc, on @user_script:12.", 'script'],
  ['unexpected reply from consume.lua: [1]', 'script'],
  ['WRONGTYPE Operation against a key holding the wrong kind of value', 'error'],
];

describe('classifyRedisError', () => {
  for (const [message, kind] of MESSAGES) {
    it(`sorts "${message.slice(0, 60)}" as ${kind}`, () => {
      expect(classifyRedisError(new Error(message))).toBe(kind);
    });
  }

  it('has a row in docs/operations.md for every kind', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    const documented = [...doc.matchAll(/^\| `([a-z_]+)` \| /gm)].map((m) => m[1]);
    expect(REDIS_ERROR_KINDS.filter((kind) => !documented.includes(kind))).toEqual([]);
  });
});

describe('FirstErrorOfKindLog', () => {
  it('writes the first error of each kind with its cause, and again only after forget()', () => {
    const lines: string[] = [];
    const log = new FirstErrorOfKindLog((kind, cause) => lines.push(`${kind}: ${cause}`));
    for (let i = 0; i < 5; i++) log.note('oom', new Error('OOM'));
    log.note('noperm', new Error('NOPERM'));
    log.note('oom', new Error('OOM'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^oom: Redis refuses writes: its used memory is above maxmemory/);
    expect(lines[1]).toMatch(/^noperm: the Redis ACL user may not run/);
    log.forget();
    log.note('oom', new Error('OOM'));
    expect(lines).toHaveLength(3);
  });
});

describe('maxmemory-policy', () => {
  it('reads the policy from INFO memory, unknown when absent or unrecognised', () => {
    expect(maxmemoryPolicyOf('# Memory\r\nused_memory:1\r\nmaxmemory_policy:allkeys-lru\r\n')).toBe('allkeys-lru');
    expect(maxmemoryPolicyOf('# Memory\r\nmaxmemory_policy:noeviction\r\n')).toBe('noeviction');
    expect(maxmemoryPolicyOf('')).toBe('unknown');
    expect(maxmemoryPolicyOf('maxmemory_policy:future-policy\r\n')).toBe('unknown');
  });

  it('warns for every policy that can evict counters (all have a TTL), not for noeviction or unknown', () => {
    expect(evictionRisk('noeviction')).toBeUndefined();
    expect(evictionRisk('unknown')).toBeUndefined();
    for (const policy of ['allkeys-lru', 'allkeys-lfu', 'allkeys-random'] as const) expect(evictionRisk(policy)).toContain('evict any key');
    for (const policy of ['volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl'] as const) {
      expect(evictionRisk(policy)).toContain('evict keys with a TTL, which every counter has');
    }
  });
});

describe('maxClusterRedirections', () => {
  it('lets a TRYAGAIN be retried (twice the hops each) for the whole command timeout, plus headroom', () => {
    expect(maxClusterRedirections(100)).toBe(26);
    expect(maxClusterRedirections(1_000)).toBe(116);
  });
});

import { describe, expect, it } from 'vitest';
import { noscriptCount } from '../../src/redis/noscript-errors.js';

describe('noscriptCount', () => {
  it('reads the NOSCRIPT error count from INFO errorstats', () => {
    const info = '# Errorstats\r\nerrorstat_ERR:count=3\r\nerrorstat_NOSCRIPT:count=17\r\n';
    expect(noscriptCount(info)).toBe(17);
  });

  it('is 0 when Redis has answered no NOSCRIPT', () => {
    expect(noscriptCount('# Errorstats\r\nerrorstat_ERR:count=3\r\n')).toBe(0);
    expect(noscriptCount('')).toBe(0);
  });
});

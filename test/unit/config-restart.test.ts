import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { sectionsNeedingRestart } from '../../src/config/restart.js';

const BASE = `
upstreams:
  demo: { url: "http://127.0.0.1:3000" }
routes:
  - { name: api, path_prefix: /api, upstream: demo }
plans:
  free: { limits: { minute: 10 } }
`;

const parse = (extra: string) => parseConfigText(BASE + extra, 'gateway.yaml', {});

describe('sectionsNeedingRestart', () => {
  it('allows routes, plans, upstreams and the access log to change', () => {
    const next = parseConfigText(
      BASE.replace('minute: 10', 'minute: 20').replace('3000', '3001') + 'logging:\n  access_log: { include_subject: true }\n',
      'gateway.yaml',
      {},
    );
    expect(sectionsNeedingRestart(parse(''), next)).toEqual([]);
  });

  it('names every changed field that needs a restart, a default written out counting as unchanged', () => {
    expect(sectionsNeedingRestart(parse(''), parse('store:\n  type: memory\n'))).toEqual([]);
    const changed = parse(
      'store:\n  local_deny_cache: { max_entries: 5 }\nlisteners:\n  proxy: { port: 9090 }\nlogging:\n  level: debug\n',
    );
    expect(sectionsNeedingRestart(parse(''), changed)).toEqual(['listeners', 'store', 'logging.level']);
  });

  it('needs a restart for the event stream cap, not for the thresholds of a plan', () => {
    expect(sectionsNeedingRestart(parse(''), parse('events:\n  stream_max_length: 5000\n'))).toEqual(['events.stream_max_length']);
    const thresholds = parseConfigText(BASE.replace('{ limits: { minute: 10 } }', '{ limits: { minute: 10 }, thresholds: [50] }'), 'gateway.yaml', {});
    expect(sectionsNeedingRestart(parse(''), thresholds)).toEqual([]);
  });
});

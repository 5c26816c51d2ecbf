import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { testConfig, TEST_KEY } from '../support/test-gateway.js';
import { eventually, within } from '../support/within.js';

describe('SIGTERM', () => {
  let upstream: RecordingUpstream | undefined;
  let served: GatewayProcess | undefined;

  afterEach(async () => {
    served?.child.kill('SIGKILL');
    await upstream?.close();
    served = undefined;
    upstream = undefined;
  });

  it('stops accepting, lets the in-flight request finish, and exits 0', async () => {
    upstream = await startRecordingUpstream({ reply: { delayHeadersMs: 800, body: 'finished' } });
    served = await startGatewayProcess(
      testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }' }),
    );
    const inFlight = request(`${served.proxyUrl}/slow`, { headers: { 'x-api-key': TEST_KEY } });
    await eventually(() => upstream!.requests.length === 1, 5000, 'the upstream to receive the request');
    served.child.kill('SIGTERM');
    await eventually(() => served!.output().includes('"draining"'), 5000, 'the draining log line');

    const refused = await request(`${served.proxyUrl}/late`, { headers: { 'x-api-key': TEST_KEY } }).then(
      () => 'answered',
      (error: { code?: string }) => error.code,
    );
    expect(refused).toBe('ECONNREFUSED');

    const res = await within(inFlight, 5000, 'the in-flight response');
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('finished');
    expect(await within(served.exited, 5000, 'the gateway to exit')).toBe(0);
    expect(upstream.requests).toHaveLength(1);
    expect(served.output()).not.toContain(TEST_KEY);
  });

  it('cuts requests still open at the drain deadline and still exits 0', async () => {
    upstream = await startRecordingUpstream({ handler: (req) => req.resume() });
    served = await startGatewayProcess(
      testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }' }).replace(
        'drain_timeout_ms: 2000',
        'drain_timeout_ms: 300',
      ),
    );
    const hanging = request(`${served.proxyUrl}/hang`, { headers: { 'x-api-key': TEST_KEY } }).then(
      (res) => res.statusCode,
      (error: { code?: string }) => error.code ?? 'error',
    );
    await eventually(() => upstream!.requests.length === 1, 5000, 'the upstream to receive the request');
    served.child.kill('SIGTERM');
    expect(await within(served.exited, 5000, 'the gateway to exit')).toBe(0);
    expect(await within(hanging, 5000, 'the cut request to settle')).toBe('UND_ERR_SOCKET');
  });
});

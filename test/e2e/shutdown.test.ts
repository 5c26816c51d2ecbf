import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { testConfig, TEST_KEY } from '../support/test-gateway.js';
import { openRawClient } from '../support/raw-client.js';
import { eventually, within } from '../support/within.js';

describe('SIGTERM', () => {
  let upstream: RecordingUpstream | undefined;
  let other: RecordingUpstream | undefined;
  let served: GatewayProcess | undefined;

  afterEach(async () => {
    served?.child.kill('SIGKILL');
    await Promise.all([upstream?.close(), other?.close()]);
    served = undefined;
    upstream = undefined;
    other = undefined;
  });

  const hangingGet = (url: string) =>
    request(url, { headers: { 'x-api-key': TEST_KEY } }).then(
      (res) => res.statusCode,
      (error: { code?: string }) => error.code ?? 'error',
    );

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

  it('after a hot reload, cuts the old and the new config\'s open requests at the drain deadline and exits 0', async () => {
    upstream = await startRecordingUpstream({ handler: (req) => req.resume() });
    other = await startRecordingUpstream({ handler: (req) => req.resume() });
    served = await startGatewayProcess(
      testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }' }).replace(
        'drain_timeout_ms: 2000',
        'drain_timeout_ms: 300',
      ),
    );
    const onOldConfig = hangingGet(`${served.proxyUrl}/old`);
    await eventually(() => upstream!.requests.length === 1, 5000, 'the first upstream to receive the request');
    writeFileSync(served.configPath, readFileSync(served.configPath, 'utf8').replace(upstream.origin, other.origin));
    served.child.kill('SIGHUP');
    await eventually(() => served!.output().includes('"config reloaded"'), 10_000, 'the reload log line');
    const onNewConfig = hangingGet(`${served.proxyUrl}/new`);
    await eventually(() => other!.requests.length === 1, 5000, 'the second upstream to receive the request');

    served.child.kill('SIGTERM');
    expect(await within(served.exited, 5000, 'the gateway to exit')).toBe(0);
    expect(await within(onOldConfig, 5000, 'the old config\'s request to settle')).toBe('UND_ERR_SOCKET');
    expect(await within(onNewConfig, 5000, 'the new config\'s request to settle')).toBe('UND_ERR_SOCKET');
    await eventually(() => upstream!.requests[0]!.closedEarly && other!.requests[0]!.closedEarly, 5000, 'both upstream requests to be cut');
  });

  it('does not wait for a half-sent admin request past the drain deadline', async () => {
    upstream = await startRecordingUpstream();
    served = await startGatewayProcess(
      testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }' }).replace(
        'drain_timeout_ms: 2000',
        'drain_timeout_ms: 300',
      ),
    );
    // Headers not finished: node counts the connection as active, and the headers timeout (10 s by default) is far off.
    const admin = await openRawClient(served.adminUrl);
    await admin.send('GET /healthz HTTP/1.1\r\nHost: admin\r\n');
    served.child.kill('SIGTERM');
    expect(await within(served.exited, 5000, 'the gateway to exit')).toBe(0);
    await within(admin.closed, 5000, 'the admin connection to be closed');
  });
});

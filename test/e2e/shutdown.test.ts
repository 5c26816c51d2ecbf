import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { testConfig, TEST_KEY } from '../support/test-gateway.js';
import { eventually, within } from '../support/within.js';

const ROOT = resolve(import.meta.dirname, '../..');

interface ServedGateway {
  readonly child: ChildProcess;
  readonly proxyUrl: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/** Runs `quotagate serve` as its own process and waits for its listening line. */
async function serveInProcess(configYaml: string): Promise<ServedGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-shutdown-'));
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, configYaml);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'serve', '--config', configPath], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  await within(
    Promise.race([
      eventually(() => output.includes('quotagate listening'), 15_000, 'the listening log line'),
      exited.then((code) => Promise.reject(new Error(`gateway exited with ${code}: ${output}`))),
    ]),
    16_000,
    'the gateway to start',
  );
  const line = output.split('\n').find((l) => l.includes('quotagate listening'))!;
  const { proxy } = JSON.parse(line) as { proxy: string };
  return { child, proxyUrl: proxy, output: () => output, exited };
}

describe('SIGTERM', () => {
  let upstream: RecordingUpstream | undefined;
  let served: ServedGateway | undefined;

  afterEach(async () => {
    served?.child.kill('SIGKILL');
    await upstream?.close();
    served = undefined;
    upstream = undefined;
  });

  it('stops accepting, lets the in-flight request finish, and exits 0', async () => {
    upstream = await startRecordingUpstream({ reply: { delayHeadersMs: 800, body: 'finished' } });
    served = await serveInProcess(
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
    served = await serveInProcess(
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

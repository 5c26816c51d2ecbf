import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { QuotaEvent } from '../../src/core/quota-events.js';
import { signWebhook, webhookBody, webhookSecretProblem, webhookSigningKey } from '../../src/core/webhook-signature.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

describe('Standard Webhooks signing', () => {
  it('matches the specification\'s example signature', () => {
    const headers = signWebhook(webhookSigningKey(SECRET), 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(headers).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('signs what the standardwebhooks package verifies, and nothing altered', () => {
    const event: QuotaEvent = { id: 'evt_th:ab12:hour:1700000000:80', type: 'quota.threshold', timestampMs: 1_700_000_123_456, data: { subject: 'acme', threshold: 80, period_end: null } };
    const body = webhookBody(event);
    expect(JSON.parse(body)).toEqual({ type: 'quota.threshold', timestamp: '2023-11-14T22:15:23.456Z', data: { subject: 'acme', threshold: 80, period_end: null } });
    const nowSeconds = Math.floor(Date.now() / 1000);
    const headers = signWebhook(webhookSigningKey(SECRET), event.id, nowSeconds, body);
    const receiver = new Webhook(SECRET);
    expect(receiver.verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(() => receiver.verify(body.replace('80', '95'), { ...headers })).toThrow();
    expect(() => receiver.verify(body, { ...headers, 'webhook-id': 'evt_other' })).toThrow();
    expect(() => new Webhook('whsec_' + Buffer.alloc(32, 7).toString('base64')).verify(body, { ...headers })).toThrow();
  });

  it('refuses secrets that are not whsec_ and 24–64 bytes of base64, without repeating them', () => {
    expect(webhookSecretProblem(SECRET)).toBeUndefined();
    expect(webhookSecretProblem('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe('expected a Standard Webhooks secret: "whsec_" followed by base64');
    expect(webhookSecretProblem('whsec_not base64!')).toBe('expected base64 after "whsec_"');
    expect(webhookSecretProblem(`whsec_${Buffer.alloc(8).toString('base64')}`)).toBe('expected 24–64 bytes after "whsec_", got 8');
    expect(() => webhookSigningKey('whsec_x')).toThrow('invalid webhook secret: expected base64 after "whsec_"');
  });
});

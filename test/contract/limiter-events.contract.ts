import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { periodOf } from '../../src/core/calendar.js';
import { coveredByCredits, lifetimeCounterIdOf, type Policy, quotaPolicy, windowPolicy, withThresholds } from '../../src/core/policy.js';
import { exhaustedEvent, quotaEventIdOf, type QuotaEventPolicy, thresholdEvent } from '../../src/core/quota-event-detection.js';
import type { QuotaEvent } from '../../src/core/quota-events.js';
import type { Limiter } from '../../src/limiter/limiter.js';

/** A limiter that writes events, and a way to read what it wrote about one subject (in order). */
export interface EventingLimiter {
  readonly limiter: Limiter;
  eventsOf(subject: string): Promise<QuotaEvent[]>;
}

/** Builds a fresh limiter with events on, on the given clock; the suite closes it. */
export type EventingLimiterFactory = (clock: ManualClock) => Promise<EventingLimiter>;

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0); // 2026-06-15T10:30:00Z
const PLAN = 'pro';

/**
 * The Limiter contract for quota events (see Limiter and lua/consume.lua):
 * which decisions emit which events, once, with the data and the
 * deterministic id of src/core/quota-event-detection.ts — so both stores
 * write the same events. Run by every implementation beside limiterContract.
 */
export function eventsContract(name: string, makeLimiter: EventingLimiterFactory): void {
  describe(`Limiter contract, events: ${name}`, () => {
    async function withLimiter(startMs: number, body: (limiter: Limiter, eventsOf: (subject: string) => Promise<QuotaEvent[]>, clock: ManualClock) => Promise<void>) {
      const clock = new ManualClock(startMs);
      const { limiter, eventsOf } = await makeLimiter(clock);
      try {
        await body(limiter, eventsOf, clock);
      } finally {
        await limiter.close();
      }
    }
    const fresh = (label: string) => `${label}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    /** An hour window without thresholds, and a monthly search quota of `limit` with `percents`. */
    const searchPolicies = (limit: number, percents: readonly number[] = [80, 95, 100]): Policy[] => [
      windowPolicy('hour', 10_000),
      withThresholds(quotaPolicy('search', 'month', limit), percents),
    ];
    /** What the events say about `policy` for `subject` at `nowMs`. */
    const described = (subject: string, policy: Policy, nowMs: number): QuotaEventPolicy => {
      const period = periodOf(policy.window, nowMs);
      return {
        subject,
        plan: PLAN,
        policy: policy.name,
        counterId: policy.counterId,
        limit: policy.limit,
        period: { startMs: period.startMs, endMs: Number.isFinite(period.endMs) ? period.endMs : undefined },
      };
    };
    const charge = async (limiter: Limiter, subject: string, policies: Policy[], times: number, cost = 1) => {
      const outcomes: boolean[] = [];
      for (let i = 0; i < times; i++) outcomes.push((await limiter.consume({ subject, policies, cost, plan: PLAN })).allowed);
      return outcomes;
    };
    const summary = (events: readonly QuotaEvent[]) => events.map((event) => `${event.type}:${event.data['threshold'] ?? ''}:${event.data['used'] ?? event.data['balance']}`);

    it('emits each threshold once as the count reaches it, with its data and deterministic id, then the first denial once', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('thresholds');
        const policies = searchPolicies(20); // 80 % = 16, 95 % = 19, 100 % = 20
        expect(await charge(limiter, subject, policies, 15)).toEqual(Array(15).fill(true));
        expect(await eventsOf(subject)).toEqual([]);
        await charge(limiter, subject, policies, 5);
        const quota = described(subject, policies[1]!, MID_MONTH);
        expect(await eventsOf(subject)).toEqual([
          thresholdEvent(quota, 80, 16, MID_MONTH),
          thresholdEvent(quota, 95, 19, MID_MONTH),
          thresholdEvent(quota, 100, 20, MID_MONTH),
        ]);
        expect((await eventsOf(subject))[0]).toMatchObject({
          id: expect.stringMatching(/^evt_[0-9a-f]{40}$/),
          type: 'quota.threshold',
          data: {
            subject,
            plan: PLAN,
            policy: 'search.month',
            threshold: 80,
            used: 16,
            limit: 20,
            period_start: '2026-06-01T00:00:00.000Z',
            period_end: '2026-07-01T00:00:00.000Z',
          },
        });
        // Denied three times: one exhaustion, at the count the denial saw.
        expect(await charge(limiter, subject, policies, 3)).toEqual([false, false, false]);
        const events = await eventsOf(subject);
        expect(events).toHaveLength(4);
        expect(events[3]).toEqual(exhaustedEvent(quota, 20, MID_MONTH));
        expect(new Set(events.map((event) => event.id)).size).toBe(4);
      });
    });

    it('emits nothing new when a refund lowers the count and the threshold is crossed again', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('refund');
        const policies = searchPolicies(10); // 80 % = 8
        let receipt;
        for (let i = 0; i < 8; i++) {
          const decision = await limiter.consume({ subject, policies, cost: 1, plan: PLAN });
          if (decision.allowed) receipt = decision.receipt;
        }
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:8']);
        await limiter.refund(receipt!);
        await limiter.refund(receipt!);
        expect(await charge(limiter, subject, policies, 2)).toEqual([true, true]);
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:8']);
        // The next thresholds are still emitted when reached (95 % of 10 is 10).
        expect(await charge(limiter, subject, policies, 2)).toEqual([true, true]);
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:8', 'quota.threshold:95:10', 'quota.threshold:100:10']);
      });
    });

    it('keeps what was emitted as a percent when the thresholds change mid-period (a reload): none at or below it again', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('reloaded');
        expect(await charge(limiter, subject, searchPolicies(100, [80]), 85)).toEqual(Array(85).fill(true));
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:80']);
        // New thresholds below and above 80 %: the lower ones count as passed, the next is emitted when reached.
        const reloaded = searchPolicies(100, [50, 80, 90]);
        expect(await charge(limiter, subject, reloaded, 5)).toEqual(Array(5).fill(true));
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:80', 'quota.threshold:90:90']);
      });
    });

    it('emits every threshold a single request jumps over, each with the count after it', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('jump');
        const policies = searchPolicies(100);
        expect(await charge(limiter, subject, policies, 1, 96)).toEqual([true]);
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:96', 'quota.threshold:95:96']);
        await charge(limiter, subject, policies, 1, 4);
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:96', 'quota.threshold:95:96', 'quota.threshold:100:100']);
      });
    });

    it('emits again in a new period, with that period and another id; exhaustion once per period', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf, clock) => {
        const subject = fresh('periods');
        const policies = searchPolicies(5, [80]); // 80 % = 4
        expect(await charge(limiter, subject, policies, 6)).toEqual([true, true, true, true, true, false]);
        const nextMonth = Date.UTC(2026, 6, 2, 8, 0, 0);
        clock.set(nextMonth);
        expect(await charge(limiter, subject, policies, 7)).toEqual([true, true, true, true, true, false, false]);
        const events = await eventsOf(subject);
        const june = described(subject, policies[1]!, MID_MONTH);
        const july = described(subject, policies[1]!, nextMonth);
        expect(events).toEqual([
          thresholdEvent(june, 80, 4, MID_MONTH),
          exhaustedEvent(june, 5, MID_MONTH),
          thresholdEvent(july, 80, 4, nextMonth),
          exhaustedEvent(july, 5, nextMonth),
        ]);
        expect(events[2]!.data['period_start']).toBe('2026-07-01T00:00:00.000Z');
        expect(events[2]!.id).not.toBe(events[0]!.id);
      });
    });

    it('watches only policies with thresholds: the month window with its own, none for an hour window or an empty list', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('windows');
        const month = withThresholds(windowPolicy('month', 10), [50]);
        const policies = [windowPolicy('hour', 6), month, withThresholds(quotaPolicy('search', 'month', 100), [])];
        expect(await charge(limiter, subject, policies, 7)).toEqual([true, true, true, true, true, true, false]);
        // The hour denied the seventh: it has no thresholds, so no exhaustion; the month had room.
        expect(await eventsOf(subject)).toEqual([thresholdEvent(described(subject, month, MID_MONTH), 50, 5, MID_MONTH)]);
        const other = fresh('no-thresholds');
        const unwatched = [withThresholds(quotaPolicy('search', 'month', 2), [])];
        expect(await charge(limiter, other, unwatched, 3)).toEqual([true, true, false]);
        expect(await eventsOf(other)).toEqual([]);
      });
    });

    it('names a lifetime quota period from the epoch with no end', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('lifetime');
        const repos = withThresholds(quotaPolicy('repos', 'lifetime', 2), [50]);
        expect(repos.counterId).toBe(lifetimeCounterIdOf('repos'));
        expect(await charge(limiter, subject, [repos], 3)).toEqual([true, true, false]);
        const quota = described(subject, repos, MID_MONTH);
        expect(await eventsOf(subject)).toEqual([thresholdEvent(quota, 50, 1, MID_MONTH), exhaustedEvent(quota, 2, MID_MONTH)]);
        expect((await eventsOf(subject))[0]!.data).toMatchObject({ period_start: '1970-01-01T00:00:00.000Z', period_end: null });
      });
    });

    it('catches a count raised outside a decision (a settled cost) at the next admission', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('settled');
        const policies = searchPolicies(10);
        const decision = await limiter.consume({ subject, policies, cost: 1, plan: PLAN });
        if (!decision.allowed) throw new Error('expected an admission');
        await limiter.adjust(decision.receipt!, 8);
        expect(await eventsOf(subject)).toEqual([]);
        await charge(limiter, subject, policies, 1);
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:80:10', 'quota.threshold:95:10', 'quota.threshold:100:10']);
      });
    });

    it('emits from a request with an Idempotency-Key as from any, and nothing from its replay', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('idempotent');
        const request = { subject, policies: searchPolicies(2, [50]), cost: 1, plan: PLAN };
        const first = await limiter.consumeIdempotent(request, { key: 'k1', fingerprint: 'f' });
        if (first.kind !== 'admitted') throw new Error(`expected an admission, got ${first.kind}`);
        await limiter.completeIdempotent(first.ticket, { status: 200, headers: [], body: Buffer.from('ok') });
        expect((await limiter.consumeIdempotent(request, { key: 'k1', fingerprint: 'f' })).kind).toBe('replay');
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:50:1']);
        expect((await limiter.consumeIdempotent(request, { key: 'k2', fingerprint: 'f' })).kind).toBe('admitted');
        expect((await limiter.consumeIdempotent(request, { key: 'k3', fingerprint: 'f' })).kind).toBe('denied');
        expect(summary(await eventsOf(subject))).toEqual(['quota.threshold:50:1', 'quota.exhausted::2']);
      });
    });

    it('carries a null plan when the request names none', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('no-plan');
        await limiter.consume({ subject, policies: searchPolicies(1), cost: 1 });
        expect((await eventsOf(subject)).map((event) => event.data['plan'])).toEqual([null, null, null]);
      });
    });

    let grantSeq = 0;
    const grant = (amount: number, expiresAtMs: number | null = null) => ({ id: 900_000 + ++grantSeq, metric: 'search', amount, expiresAtMs, used: 0 });

    it('emits credits.low when the balance falls to a tenth of the granted units, credits.exhausted at 0, then the quota exhaustion', async () => {
      await withLimiter(MID_MONTH, async (limiter, eventsOf) => {
        const subject = fresh('credits');
        const quota = coveredByCredits(withThresholds(quotaPolicy('search', 'month', 2), [100]), 'search');
        const policies = [windowPolicy('hour', 100), quota];
        const grants = [grant(15), grant(5, MID_MONTH + 86_400_000)];
        // An expired grant neither counts in the granted units nor names the crossing.
        const expired = grant(50, MID_MONTH - 1);
        await limiter.addCredits(subject, [...grants, expired]);
        // 2 from the quota, then 20 from the credits (low mark: ceil(20 / 10) = 2), then denied.
        expect(await charge(limiter, subject, policies, 23)).toEqual([...Array(22).fill(true), false]);
        const events = await eventsOf(subject);
        expect(summary(events)).toEqual(['quota.threshold:100:2', 'credits.low:2:2', 'credits.exhausted::0', 'quota.exhausted::2']);
        const ids = grants.map((g) => g.id).join(',');
        expect(events[1]).toEqual({
          id: quotaEventIdOf('credits.low', subject, `search\n${ids}\n2`),
          type: 'credits.low',
          timestampMs: MID_MONTH,
          data: { subject, plan: PLAN, metric: 'search', balance: 2, granted: 20, threshold: 2 },
        });
        expect(events[2]).toEqual({
          id: quotaEventIdOf('credits.exhausted', subject, `search\n${ids}\n0`),
          type: 'credits.exhausted',
          timestampMs: MID_MONTH,
          data: { subject, plan: PLAN, metric: 'search', balance: 0, granted: 20 },
        });
        // A new grant: a new crossing, low again once it runs down.
        await limiter.addCredits(subject, [grant(10)]);
        expect(await charge(limiter, subject, policies, 10)).toEqual(Array(10).fill(true));
        expect(summary((await eventsOf(subject)).slice(4))).toEqual(['credits.low:3:3', 'credits.exhausted::0']);
      });
    });
  });
}

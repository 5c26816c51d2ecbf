import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import type { Decision, PolicyState } from '../../src/core/decision.js';
import { coveredByCredits, metersBesides, type Policy, quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import type { WindowName } from '../../src/core/windows.js';
import type { ConsumeRequest, Limiter } from '../../src/limiter/limiter.js';

/** Builds a fresh limiter on the given clock; the suite closes it. */
export type LimiterFactory = (clock: ManualClock) => Promise<Limiter>;

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0); // 2026-06-15T10:30:00Z

function remainingOf(decision: Decision): Record<string, number> {
  return statesRemaining(decision.policies);
}

function statesRemaining(states: readonly PolicyState[]): Record<string, number> {
  return Object.fromEntries(states.map((p) => [p.name, p.remaining]));
}

/** Window policies from `[name, limit]` pairs, in the given order. */
function windows(...limits: Array<[WindowName, number]>): Policy[] {
  return limits.map(([name, limit]) => windowPolicy(name, limit));
}

/**
 * The Limiter contract. Every implementation runs this suite and must pass it
 * identically; see the doc comment on `Limiter`.
 */
export function limiterContract(name: string, makeLimiter: LimiterFactory): void {
  describe(`Limiter contract: ${name}`, () => {
    async function withLimiter(startMs: number, body: (limiter: Limiter, clock: ManualClock) => Promise<void>) {
      const clock = new ManualClock(startMs);
      const limiter = await makeLimiter(clock);
      try {
        await body(limiter, clock);
      } finally {
        await limiter.close();
      }
    }
    let subjectSeq = 0;
    const request = (policies: Policy[], cost = 1, subject?: string): ConsumeRequest => ({
      subject: subject ?? `subject-${++subjectSeq}-${Math.random().toString(36).slice(2)}`,
      policies,
      cost,
    });
    /** A subject unique to this run, so suites sharing a store never see each other's counters. */
    const fresh = (label: string) => `${label}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

    it('admits exactly the limit, then denies', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const req = request(windows(['hour', 3]));
        const outcomes: boolean[] = [];
        for (let i = 0; i < 5; i++) outcomes.push((await limiter.consume(req)).allowed);
        expect(outcomes).toEqual([true, true, true, false, false]);
      });
    });

    it('reports remaining after the charge and seconds to the period end', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const req = request(windows(['hour', 10], ['day', 100]));
        const decision = await limiter.consume(req);
        expect(decision.allowed).toBe(true);
        expect(decision.policies).toEqual([
          { name: 'hour', kind: 'window', window: 'hour', limit: 10, remaining: 9, resetSeconds: 1800, periodSeconds: 3600 },
          { name: 'day', kind: 'window', window: 'day', limit: 100, remaining: 99, resetSeconds: 13.5 * 3600, periodSeconds: 86_400 },
        ]);
      });
    });

    it('is all or nothing: a denial on one window charges no window', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('all-or-nothing');
        const policies = windows(['hour', 5], ['day', 8]);
        const allowed: boolean[] = [];
        for (let i = 0; i < 7; i++) allowed.push((await limiter.consume(request(policies, 1, subject))).allowed);
        expect(allowed.filter(Boolean)).toHaveLength(5);
        // A probe with a window the hour cannot fit leaves the day as it was.
        const probe = await limiter.consume(request(policies, 1, subject));
        expect(probe.allowed).toBe(false);
        expect(remainingOf(probe)).toEqual({ hour: 0, day: 3 });
      });
    });

    it('denies a cost larger than what remains without charging anything', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('big-cost');
        const policies = windows(['minute', 10], ['hour', 100]);
        await limiter.consume(request(policies, 7, subject));
        const denied = await limiter.consume(request(policies, 4, subject));
        expect(denied.allowed).toBe(false);
        expect(remainingOf(denied)).toEqual({ minute: 3, hour: 93 });
        const fits = await limiter.consume(request(policies, 3, subject));
        expect(fits.allowed).toBe(true);
        expect(remainingOf(fits)).toEqual({ minute: 0, hour: 90 });
      });
    });

    it('names every violated window and retries after the latest of their resets', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('both-violated');
        const policies = windows(['minute', 2], ['hour', 2]);
        await limiter.consume(request(policies, 2, subject));
        const denied = await limiter.consume(request(policies, 1, subject));
        if (denied.allowed) throw new Error('expected a denial');
        expect(denied.reason).toBe('window');
        expect(denied.violated).toEqual(['minute', 'hour']);
        expect(denied.retryAfterSeconds).toBe(1800);
      });
    });

    it('starts a new period at the boundary, not a sliding window', async () => {
      await withLimiter(Date.UTC(2026, 5, 15, 10, 59, 59, 500), async (limiter, clock) => {
        const subject = fresh('boundary');
        const policies = windows(['hour', 1]);
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(true);
        const denied = await limiter.consume(request(policies, 1, subject));
        expect(denied.allowed).toBe(false);
        expect(denied.allowed ? 0 : denied.retryAfterSeconds).toBe(1);
        clock.set(Date.UTC(2026, 5, 15, 11, 0, 0, 0));
        const next = await limiter.consume(request(policies, 1, subject));
        expect(next.allowed).toBe(true);
        expect(next.policies[0]!.resetSeconds).toBe(3600);
      });
    });

    it('resets the month on the 1st at 00:00 UTC, whatever the month length', async () => {
      await withLimiter(Date.UTC(2028, 1, 29, 23, 59, 0), async (limiter, clock) => {
        const subject = fresh('leap-month');
        const policies = windows(['month', 1]);
        const first = await limiter.consume(request(policies, 1, subject));
        expect(first.policies[0]).toMatchObject({ periodSeconds: 29 * 86_400, resetSeconds: 60 });
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(false);
        clock.set(Date.UTC(2028, 2, 1, 0, 0, 0));
        const march = await limiter.consume(request(policies, 1, subject));
        expect(march.allowed).toBe(true);
        expect(march.policies[0]).toMatchObject({ periodSeconds: 31 * 86_400, resetSeconds: 31 * 86_400 });
      });
    });

    it('keeps subjects apart', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const policies = windows(['day', 1]);
        const [alice, bob] = [fresh('alice'), fresh('bob')];
        expect((await limiter.consume(request(policies, 1, alice))).allowed).toBe(true);
        expect((await limiter.consume(request(policies, 1, bob))).allowed).toBe(true);
        expect((await limiter.consume(request(policies, 1, alice))).allowed).toBe(false);
      });
    });

    it('admits exactly the limit under concurrent requests', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const policies = windows(['hour', 100], ['day', 1000]);
        const subject = fresh('concurrent');
        const decisions = await Promise.all(
          Array.from({ length: 250 }, () => limiter.consume(request(policies, 1, subject))),
        );
        expect(decisions.filter((d) => d.allowed)).toHaveLength(100);
        const after = await limiter.consume(request(policies, 1, subject));
        expect(remainingOf(after)).toEqual({ hour: 0, day: 900 });
      });
    });

    it('admits everything when no window applies', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const decision = await limiter.consume(request([], 1_000));
        expect(decision).toEqual({ allowed: true, policies: [] });
      });
    });
    it('charges meters with an admission, never limits or reports them, and refunds them with the charge', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('meter');
        const policies = windows(['hour', 2]);
        const meters = metersBesides(policies);
        expect(meters.map((meter) => meter.counterId)).toEqual(['w:day', 'w:month']);
        const first = await limiter.consume({ subject, policies, meters, cost: 1 });
        if (!first.allowed) throw new Error('expected an admission');
        expect(first.policies.map((state) => state.name)).toEqual(['hour']);
        expect(first.receipt?.charges).toEqual([
          { counterId: 'w:hour', periodStartMs: Date.UTC(2026, 5, 15, 10) },
          { counterId: 'w:day', periodStartMs: Date.UTC(2026, 5, 15) },
          { counterId: 'w:month', periodStartMs: Date.UTC(2026, 5, 1) },
        ]);
        await limiter.consume({ subject, policies, meters, cost: 1 });
        // The hour denies; the meters were charged only by the admissions.
        expect((await limiter.consume({ subject, policies, meters, cost: 1 })).allowed).toBe(false);
        const meterPolicies = windows(['day', 1_000], ['month', 1_000]);
        expect(remainingOf(await limiter.consume(request(meterPolicies, 1, subject)))).toEqual({ day: 997, month: 997 });
        await limiter.refund(first.receipt!);
        expect(statesRemaining(await limiter.peek({ subject, policies: [...policies, ...meterPolicies] }))).toEqual({ hour: 1, day: 998, month: 998 });
        // Meters alone (a plan with no limits) admit and charge.
        const unlimited = fresh('unlimited');
        const all = metersBesides([]);
        for (let i = 0; i < 5; i++) expect(await limiter.consume({ subject: unlimited, policies: [], meters: all, cost: 2 })).toMatchObject({ allowed: true, policies: [] });
        expect(statesRemaining(await limiter.peek({ subject: unlimited, policies: windows(['hour', 100], ['day', 100], ['month', 100]) }))).toEqual({ hour: 90, day: 90, month: 90 });
      });
    });

    it('charges a metered quota with the windows, all or nothing, and says quota when it denies', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('quota');
        const policies = [...windows(['hour', 10]), quotaPolicy('search', 'month', 3)];
        for (let i = 0; i < 3; i++) expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(true);
        const denied = await limiter.consume(request(policies, 1, subject));
        if (denied.allowed) throw new Error('expected a denial');
        expect(denied.reason).toBe('quota');
        expect(denied.violated).toEqual(['search.month']);
        expect(denied.retryAfterSeconds).toBe(15 * 86_400 + 13.5 * 3600);
        // The denial charged no window; a route without the metric still passes.
        const plain = await limiter.consume(request(windows(['hour', 10]), 1, subject));
        expect(remainingOf(plain)).toEqual({ hour: 6 });
      });
    });

    /** A grant of `amount` credits of `search`, new (nothing spent), expiring at `expiresAtMs` (null: never). */
    let grantSeq = 0;
    const grant = (amount: number, expiresAtMs: number | null = null) => ({ id: ++grantSeq, metric: 'search', amount, expiresAtMs, used: 0 });
    /** An hourly window of 100 and a monthly `search` quota of `limit` covered by credits. */
    const covered = (limit: number, hour = 100) => [...windows(['hour', hour]), coveredByCredits(quotaPolicy('search', 'month', limit), 'search')];

    it('charges credits, not the covered quota, once the quota is exhausted, until the balance is spent', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits');
        const policies = covered(2);
        await limiter.addCredits(subject, [grant(3)]);
        const outcomes: Array<[boolean, number | undefined, number | undefined]> = [];
        for (let i = 0; i < 6; i++) {
          const decision = await limiter.consume(request(policies, 1, subject));
          outcomes.push([decision.allowed, decision.credits?.charged, decision.credits?.balance]);
        }
        expect(outcomes).toEqual([
          [true, 0, 3],
          [true, 0, 3],
          [true, 1, 2],
          [true, 1, 1],
          [true, 1, 0],
          [false, 0, 0],
        ]);
        expect(await limiter.creditBalance(subject, 'search')).toBe(0);
        // The quota stayed at its limit; the window was charged by every admission.
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 95, 'search.month': 0 });
        const denied = await limiter.consume(request(policies, 1, subject));
        if (denied.allowed) throw new Error('expected a denial');
        expect(denied.violated).toEqual(['search.month']);
      });
    });

    it('leaves the credits out of a refund: the receipt of a credit-paid request names only what it charged', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits-receipt');
        const policies = covered(1);
        await limiter.addCredits(subject, [grant(5)]);
        await limiter.consume(request(policies, 1, subject));
        const paid = await limiter.consume(request(policies, 1, subject));
        if (!paid.allowed) throw new Error('expected an admission');
        expect(paid.receipt?.charges.map((charge) => charge.counterId)).toEqual(['w:hour']);
        await limiter.refund(paid.receipt!);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 99, 'search.month': 0 });
        expect(await limiter.creditBalance(subject, 'search')).toBe(4);
      });
    });

    it('denies by a window that credits do not cover, charging neither the window nor the credits', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits-window');
        const policies = covered(1, 2);
        await limiter.addCredits(subject, [grant(5)]);
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(true);
        expect((await limiter.consume(request(policies, 1, subject))).credits?.charged).toBe(1);
        const denied = await limiter.consume(request(policies, 1, subject));
        if (denied.allowed) throw new Error('expected a denial');
        expect(denied.violated).toEqual(['hour', 'search.month']);
        expect(denied.credits).toEqual({ metric: 'search', balance: 4, charged: 0 });
        expect(await limiter.creditBalance(subject, 'search')).toBe(4);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 0, 'search.month': 0 });
      });
    });

    it('denies a cost larger than the balance, charging nothing', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits-cost');
        const policies = covered(1);
        await limiter.addCredits(subject, [grant(2)]);
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(true);
        const denied = await limiter.consume(request(policies, 3, subject));
        expect(denied.allowed).toBe(false);
        expect(await limiter.creditBalance(subject, 'search')).toBe(2);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 99, 'search.month': 0 });
        const paid = await limiter.consume(request(policies, 2, subject));
        expect([paid.allowed, paid.credits]).toEqual([true, { metric: 'search', balance: 0, charged: 2 }]);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 97, 'search.month': 0 });
      });
    });

    it('spends the soonest-expiring grant first and a never-expiring one last', async () => {
      await withLimiter(MID_MONTH, async (limiter, clock) => {
        const subject = fresh('credits-order');
        const policies = covered(1);
        const day = 86_400_000;
        const [never, inTwoDays, inOneDay] = [grant(5), grant(2, MID_MONTH + 2 * day), grant(1, MID_MONTH + day)];
        await limiter.addCredits(subject, [never, inTwoDays, inOneDay]);
        expect(await limiter.creditBalance(subject, 'search')).toBe(8);
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(true); // the quota
        // 2 units: the one-day grant's 1, then 1 of the two-day grant's.
        expect((await limiter.consume(request(policies, 2, subject))).credits).toEqual({ metric: 'search', balance: 6, charged: 2 });
        clock.set(MID_MONTH + day);
        expect(await limiter.creditBalance(subject, 'search')).toBe(6);
        clock.set(MID_MONTH + 2 * day);
        // The two-day grant's unspent unit expired; the never-expiring grant is whole.
        expect(await limiter.creditBalance(subject, 'search')).toBe(5);
      });
    });

    it('never spends an expired grant', async () => {
      await withLimiter(MID_MONTH, async (limiter, clock) => {
        const subject = fresh('credits-expired');
        const policies = covered(1);
        await limiter.addCredits(subject, [grant(5, MID_MONTH + 3_600_000)]);
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(true);
        clock.set(MID_MONTH + 3_600_000);
        const denied = await limiter.consume(request(policies, 1, subject));
        expect([denied.allowed, denied.credits]).toEqual([false, { metric: 'search', balance: 0, charged: 0 }]);
        expect(await limiter.creditBalance(subject, 'search')).toBe(0);
      });
    });

    it('counts a grant written twice once, and never lowers what was spent of it', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits-twice');
        const policies = covered(1);
        const once = grant(4);
        await limiter.addCredits(subject, [once]);
        await limiter.consume(request(policies, 1, subject));
        await limiter.consume(request(policies, 3, subject));
        await limiter.addCredits(subject, [once]);
        expect(await limiter.creditBalance(subject, 'search')).toBe(1);
        await limiter.addCredits(subject, [{ ...once, used: 2 }]);
        expect(await limiter.creditBalance(subject, 'search')).toBe(1);
      });
    });

    it('admits exactly the balance under concurrent requests against an exhausted quota', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits-concurrent');
        const policies = covered(1, 1_000);
        await limiter.addCredits(subject, [grant(7), grant(5, MID_MONTH + 86_400_000)]);
        const decisions = await Promise.all(Array.from({ length: 40 }, () => limiter.consume(request(policies, 1, subject))));
        expect(decisions.filter((d) => d.allowed)).toHaveLength(13);
        expect(await limiter.creditBalance(subject, 'search')).toBe(0);
      });
    });

    /** A completed response with a binary body and a repeated header. */
    const storedResponse = {
      status: 201,
      headers: [['content-type', 'application/octet-stream'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']] as const,
      body: Buffer.from([0, 1, 255, 13, 10, 0x7b]),
    };

    it('charges credits once for a request under an Idempotency-Key, not for its repeats', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('credits-idempotent');
        const policies = covered(1);
        await limiter.addCredits(subject, [grant(3)]);
        await limiter.consume(request(policies, 1, subject));
        const claim = { key: 'order-1', fingerprint: 'fp-1' };
        const first = await limiter.consumeIdempotent(request(policies, 2, subject), claim);
        if (first.kind !== 'admitted') throw new Error(`expected an admission, got ${first.kind}`);
        expect(first.admission.credits).toEqual({ metric: 'search', balance: 1, charged: 2 });
        expect(await limiter.consumeIdempotent(request(policies, 2, subject), claim)).toEqual({ kind: 'in-flight' });
        await limiter.completeIdempotent(first.ticket, storedResponse);
        expect(await limiter.consumeIdempotent(request(policies, 2, subject), claim)).toEqual({ kind: 'replay', response: storedResponse });
        expect(await limiter.creditBalance(subject, 'search')).toBe(1);
        const denied = await limiter.consumeIdempotent(request(policies, 2, subject), { key: 'order-2', fingerprint: 'fp-2' });
        expect(denied.kind).toBe('denied');
        expect(await limiter.creditBalance(subject, 'search')).toBe(1);
      });
    });

    it('marks an admitted Idempotency-Key in flight, replays it once completed, and charges neither repeat', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('idempotent');
        const policies = windows(['hour', 5]);
        const claim = { key: 'order-1', fingerprint: 'fp-1' };
        const first = await limiter.consumeIdempotent(request(policies, 1, subject), claim);
        if (first.kind !== 'admitted') throw new Error(`expected an admission, got ${first.kind}`);
        expect(remainingOf(first.admission)).toEqual({ hour: 4 });
        expect(first.admission.receipt).toBeDefined();
        expect(first.ticket).toMatchObject({ subject, key: 'order-1' });
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), claim)).toEqual({ kind: 'in-flight' });
        await limiter.completeIdempotent(first.ticket, storedResponse);
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), claim)).toEqual({ kind: 'replay', response: storedResponse });
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), claim)).toEqual({ kind: 'replay', response: storedResponse });
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 4 });
        const other = await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'order-2', fingerprint: 'fp-1' });
        expect(other.kind === 'admitted' && remainingOf(other.admission)).toEqual({ hour: 3 });
        // The key is scoped to the subject.
        const elsewhere = await limiter.consumeIdempotent(request(policies, 1, fresh('other-subject')), claim);
        expect(elsewhere.kind).toBe('admitted');
      });
    });

    it('charges meters with an admission under an Idempotency-Key, not with its repeats, and refunds them with the charge', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('idempotent-meter');
        const policies = windows(['hour', 5]);
        const meters = metersBesides(policies);
        const claim = { key: 'metered', fingerprint: 'fp' };
        const first = await limiter.consumeIdempotent({ subject, policies, meters, cost: 2 }, claim);
        if (first.kind !== 'admitted') throw new Error(`expected an admission, got ${first.kind}`);
        expect(first.admission.policies.map((state) => state.name)).toEqual(['hour']);
        expect(first.admission.receipt?.charges.map((charge) => charge.counterId)).toEqual(['w:hour', 'w:day', 'w:month']);
        expect(await limiter.consumeIdempotent({ subject, policies, meters, cost: 2 }, claim)).toEqual({ kind: 'in-flight' });
        await limiter.completeIdempotent(first.ticket, storedResponse);
        expect(await limiter.consumeIdempotent({ subject, policies, meters, cost: 2 }, claim)).toEqual({ kind: 'replay', response: storedResponse });
        expect(await limiter.consumeIdempotent({ subject, policies, meters, cost: 2 }, { ...claim, fingerprint: 'other' })).toEqual({ kind: 'reused' });
        const counted = windows(['hour', 100], ['day', 100], ['month', 100]);
        expect(statesRemaining(await limiter.peek({ subject, policies: counted }))).toEqual({ hour: 98, day: 98, month: 98 });
        await limiter.refund(first.admission.receipt!);
        expect(statesRemaining(await limiter.peek({ subject, policies: counted }))).toEqual({ hour: 100, day: 100, month: 100 });
      });
    });

    it('refuses a key held by a request with another fingerprint, in flight or completed, charging nothing', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('idempotent-reused');
        const policies = windows(['hour', 5]);
        const first = await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp-a' });
        if (first.kind !== 'admitted') throw new Error('expected an admission');
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp-b' })).toEqual({ kind: 'reused' });
        await limiter.completeIdempotent(first.ticket, storedResponse);
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp-b' })).toEqual({ kind: 'reused' });
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 4 });
      });
    });

    it('admits exactly one of concurrent requests with one key; the others find it in flight', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('idempotent-concurrent');
        const policies = windows(['hour', 50]);
        const decisions = await Promise.all(
          Array.from({ length: 20 }, () => limiter.consumeIdempotent(request(policies, 1, subject), { key: 'retry-me', fingerprint: 'fp' })),
        );
        expect(decisions.filter((d) => d.kind === 'admitted')).toHaveLength(1);
        expect(decisions.filter((d) => d.kind === 'in-flight')).toHaveLength(19);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 49 });
      });
    });

    it('releases a key so it can be used again, and ignores a stale ticket', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('idempotent-release');
        const policies = windows(['hour', 5]);
        const claim = { key: 'k', fingerprint: 'fp' };
        const first = await limiter.consumeIdempotent(request(policies, 1, subject), claim);
        if (first.kind !== 'admitted') throw new Error('expected an admission');
        await limiter.releaseIdempotent(first.ticket);
        // Released, the key is free for any request; this one is charged afresh.
        const second = await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp-2' });
        if (second.kind !== 'admitted') throw new Error('expected an admission');
        expect(remainingOf(second.admission)).toEqual({ hour: 3 });
        expect(second.ticket.attempt).not.toBe(first.ticket.attempt);
        // The first attempt's ticket no longer settles the key.
        await limiter.completeIdempotent(first.ticket, storedResponse);
        await limiter.releaseIdempotent(first.ticket);
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp-2' })).toEqual({ kind: 'in-flight' });
        // A completed record is no longer released by its ticket.
        await limiter.completeIdempotent(second.ticket, storedResponse);
        await limiter.releaseIdempotent(second.ticket);
        expect(await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp-2' })).toEqual({ kind: 'replay', response: storedResponse });
      });
    });

    it('leaves no record for a denial under a key', async () => {
      await withLimiter(MID_MONTH, async (limiter, clock) => {
        const subject = fresh('idempotent-denied');
        const policies = windows(['minute', 1]);
        await limiter.consume(request(policies, 1, subject));
        const denied = await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp' });
        expect(denied).toMatchObject({ kind: 'denied', denial: { allowed: false, violated: ['minute'] } });
        clock.advance(60_000);
        const retried = await limiter.consumeIdempotent(request(policies, 1, subject), { key: 'k', fingerprint: 'fp' });
        expect(retried.kind).toBe('admitted');
      });
    });

    it('keeps Idempotency-Key records for a plan with no policy', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('idempotent-unlimited');
        const first = await limiter.consumeIdempotent(request([], 1, subject), { key: 'k', fingerprint: 'fp' });
        if (first.kind !== 'admitted') throw new Error('expected an admission');
        expect(first.admission).toEqual({ allowed: true, policies: [] });
        expect(await limiter.consumeIdempotent(request([], 1, subject), { key: 'k', fingerprint: 'fp' })).toEqual({ kind: 'in-flight' });
        await limiter.completeIdempotent(first.ticket, { status: 204, headers: [], body: Buffer.alloc(0) });
        expect(await limiter.consumeIdempotent(request([], 1, subject), { key: 'k', fingerprint: 'fp' })).toEqual({
          kind: 'replay',
          response: { status: 204, headers: [], body: Buffer.alloc(0) },
        });
      });
    });

    it('refunds exactly the charge, to the periods charged', async () => {
      await withLimiter(Date.UTC(2026, 5, 15, 10, 59, 30), async (limiter, clock) => {
        const subject = fresh('refund');
        const policies = windows(['hour', 10], ['day', 100]);
        await limiter.consume(request(policies, 2, subject));
        const charged = await limiter.consume(request(policies, 3, subject));
        if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
        await limiter.refund(charged.receipt);
        const probe = await limiter.consume(request(policies, 1, subject));
        expect(remainingOf(probe)).toEqual({ hour: 7, day: 97 });
        if (!probe.allowed || probe.receipt === undefined) throw new Error('expected a charge');
        // The hour rolls over before the refund: only the day gets it back.
        clock.set(Date.UTC(2026, 5, 15, 11, 0, 5));
        await limiter.consume(request(policies, 4, subject));
        await limiter.refund(probe.receipt);
        const after = await limiter.consume(request(policies, 1, subject));
        expect(remainingOf(after)).toEqual({ hour: 5, day: 93 });
      });
    });

    it('never refunds below zero', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('refund-floor');
        const policies = windows(['hour', 10]);
        const charged = await limiter.consume(request(policies, 2, subject));
        if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
        await limiter.refund(charged.receipt);
        await limiter.refund(charged.receipt);
        const after = await limiter.consume(request(policies, 1, subject));
        expect(remainingOf(after)).toEqual({ hour: 9 });
      });
    });

    it('adjusts a charge up past the limit: the excess is counted and the next request denied', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('adjust-up');
        const policies = windows(['hour', 10], ['day', 100]);
        const charged = await limiter.consume(request(policies, 4, subject));
        if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
        // Settled at 13 units: 9 more than the 4 reserved, 3 past the hour's limit.
        await limiter.adjust(charged.receipt, 9);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 0, day: 87 });
        const next = await limiter.consume(request(policies, 1, subject));
        expect(next).toMatchObject({ allowed: false, violated: ['hour'] });
        // Giving back 4 of the 13 leaves 9: one unit of room again.
        await limiter.adjust(charged.receipt, -4);
        expect(remainingOf(await limiter.consume(request(policies, 1, subject)))).toEqual({ hour: 0, day: 90 });
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(false);
      });
    });

    it('adjusts a charge down, never below zero', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('adjust-down');
        const policies = windows(['hour', 10]);
        const charged = await limiter.consume(request(policies, 5, subject));
        if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
        await limiter.adjust(charged.receipt, -3);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 8 });
        await limiter.adjust(charged.receipt, -7);
        expect(statesRemaining(await limiter.peek({ subject, policies }))).toEqual({ hour: 10 });
        expect(remainingOf(await limiter.consume(request(policies, 10, subject)))).toEqual({ hour: 0 });
      });
    });

    it('leaves a counter alone once the period adjusted has passed, and adjusts the meters charged', async () => {
      await withLimiter(Date.UTC(2026, 5, 15, 10, 59, 30), async (limiter, clock) => {
        const subject = fresh('adjust-period');
        const policies = windows(['hour', 10]);
        const meters = metersBesides(policies);
        const meterPolicies = windows(['day', 1_000], ['month', 1_000]);
        const charged = await limiter.consume({ subject, policies, meters, cost: 2 });
        if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
        // The hour rolls over: only the day and month meters take the adjustment.
        clock.set(Date.UTC(2026, 5, 15, 11, 0, 5));
        await limiter.consume(request(policies, 1, subject));
        await limiter.adjust(charged.receipt, 5);
        expect(statesRemaining(await limiter.peek({ subject, policies: [...policies, ...meterPolicies] }))).toEqual({
          hour: 9,
          day: 993,
          month: 993,
        });
        await limiter.adjust(charged.receipt, -6);
        expect(statesRemaining(await limiter.peek({ subject, policies: [...policies, ...meterPolicies] }))).toEqual({
          hour: 9,
          day: 999,
          month: 999,
        });
      });
    });

    it('peeks at used, remaining and reset of every policy without charging', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('peek');
        const policies = [...windows(['hour', 10], ['day', 100]), quotaPolicy('search', 'month', 5)];
        const untouched = await limiter.peek({ subject, policies });
        expect(untouched).toEqual([
          { name: 'hour', kind: 'window', window: 'hour', limit: 10, remaining: 10, resetSeconds: 1800, periodSeconds: 3600, used: 0 },
          { name: 'day', kind: 'window', window: 'day', limit: 100, remaining: 100, resetSeconds: 13.5 * 3600, periodSeconds: 86_400, used: 0 },
          { name: 'search.month', kind: 'quota', window: 'month', limit: 5, remaining: 5, resetSeconds: 15 * 86_400 + 13.5 * 3600, periodSeconds: 30 * 86_400, used: 0 },
        ]);
        const charged = await limiter.consume(request(policies, 3, subject));
        // A read of the counters is the decision's state plus the count itself.
        const read = charged.policies.map((state) => ({ ...state, used: 3 }));
        expect(await limiter.peek({ subject, policies })).toEqual(read);
        expect(await limiter.peek({ subject, policies })).toEqual(read);
        const next = await limiter.consume(request(policies, 1, subject));
        expect(remainingOf(next)).toEqual({ hour: 6, day: 96, 'search.month': 1 });
      });
    });

    it('peeks at the whole count when an adjustment took it past the limit (remaining stops at 0)', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('peek-past-limit');
        const policies = windows(['hour', 10]);
        const admitted = await limiter.consume(request(policies, 4, subject));
        if (!admitted.allowed || admitted.receipt === undefined) throw new Error('expected an admission with a receipt');
        await limiter.adjust(admitted.receipt, 9);
        const [hour] = await limiter.peek({ subject, policies });
        expect([hour!.used, hour!.remaining]).toEqual([13, 0]);
      });
    });

    it('peeks at a counter of a past period as unused', async () => {
      await withLimiter(Date.UTC(2026, 5, 15, 10, 59, 30), async (limiter, clock) => {
        const subject = fresh('peek-rollover');
        const policies = windows(['hour', 10], ['day', 100]);
        await limiter.consume(request(policies, 4, subject));
        clock.set(Date.UTC(2026, 5, 15, 11, 0, 1));
        const states = await limiter.peek({ subject, policies });
        expect(states.map((s) => [s.name, s.remaining, s.resetSeconds])).toEqual([
          ['hour', 10, 3599],
          ['day', 96, 13 * 3600 - 1],
        ]);
      });
    });

    it('reset gives the subject its policies afresh and leaves other policies and subjects alone', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const [subject, other] = [fresh('reset'), fresh('reset-other')];
        const policies = windows(['hour', 2], ['day', 10]);
        await limiter.consume(request(policies, 2, subject));
        await limiter.consume(request(policies, 2, other));
        expect((await limiter.consume(request(policies, 1, subject))).allowed).toBe(false);
        await limiter.reset(subject, windows(['hour', 2]));
        const after = await limiter.consume(request(policies, 1, subject));
        expect(after.allowed).toBe(true);
        expect(remainingOf(after)).toEqual({ hour: 1, day: 7 });
        expect(statesRemaining(await limiter.peek({ subject: other, policies }))).toEqual({ hour: 0, day: 8 });
        await limiter.reset(subject, policies);
        expect((await limiter.peek({ subject, policies })).map((s) => s.remaining)).toEqual([2, 10]);
        await limiter.reset(fresh('never-seen'), policies);
      });
    });
  });
}

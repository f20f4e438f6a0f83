import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExportResult, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { DELIVERY_DEFAULTS, type ResolvedDelivery } from '../../../src/transport/resolveDelivery';
import { createFlusher, type Flusher, type FlusherDeps } from '../../../worker/Flusher';
import type { Outbox, OutboxBatch, OutboxStats } from '../../../worker/Outbox';
import { spanRecord } from '../../helpers/records';

const span = (i: number): SpanRecord => spanRecord(i);

/** An in-memory outbox with the real one's settle-in-order contract. */
const memoryOutbox = () => {
  let records: TelemetryRecord[] = [];
  const stats: OutboxStats = { count: 0, bytes: 0, dropped: 0, droppedTotal: 0, delivered: 0, deadLettered: 0, rejected: 0 };
  const dead: { reason: string; n: number }[] = [];
  const box: Pick<Outbox, 'takeBatch' | 'settle' | 'stats' | 'hold'> = {
    takeBatch: async (max) => ({ records: records.slice(0, max), sizes: [], pos: [], dropped: 0, droppedAt: -1 }),
    settle: async (batch: OutboxBatch, from, to, how) => {
      const gone = new Set(batch.records.slice(from, to));
      records = records.filter((r) => !gone.has(r));
      if ('dead' in how) {
        dead.push({ reason: how.dead, n: to - from });
        stats.deadLettered += to - from;
      } else {
        stats.delivered += how.delivered;
        stats.rejected += how.rejected ?? 0;
      }
    },
    stats: async () => ({ ...stats, count: records.length }),
    hold: async (hold) => void (stats.hold = hold),
  };
  return { box, dead, add: (n: number, from = records.length) => records.push(...Array.from({ length: n }, (_, i) => span(from + i))), left: () => records.length };
};

const settle = () => vi.advanceTimersByTimeAsync(0);

describe('Flusher', () => {
  let sent: { at: number; n: number }[];
  let answers: ExportResult[];
  let cfg: ResolvedDelivery;
  let outbox: ReturnType<typeof memoryOutbox>;

  const make = (over: Partial<FlusherDeps> = {}) =>
    createFlusher({
      outbox: outbox.box,
      transport: 'worker',
      config: () => cfg,
      random: () => 0.5,
      send: async (records) => {
        sent.push({ at: Date.now(), n: records.length });
        return answers.shift() ?? { ok: true };
      },
      ...over,
    });

  /** A flusher whose first request waits until `release()`; every request answers `answer`. */
  const gated = (answer: ExportResult) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const f = make({
      send: async (records) => {
        sent.push({ at: Date.now(), n: records.length });
        if (sent.length === 1) await gate;
        return answer;
      },
    });
    return { f, release };
  };

  /**
   * A flusher with `records` stored, stopped while its first request is under way; that request
   * then answers `answer`. Returns the flusher and what its flush resolved with.
   */
  const stoppedMidRequest = async (answer: ExportResult, records: number) => {
    const { f, release } = gated(answer);
    outbox.add(records);
    const running = f.flush('manual');
    await settle();
    f.stop();
    release();
    return { f, result: await running };
  };

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    sent = [];
    answers = [];
    cfg = { ...DELIVERY_DEFAULTS, backoffBaseMs: 1000, backoffJitter: 0, flushIntervalMs: 500, maxBatchRecords: 10 };
    outbox = memoryOutbox();
  });
  afterEach(() => vi.useRealTimers());

  it('sends everything in batches bounded by maxBatchRecords, one request at a time', async () => {
    const f = make();
    outbox.add(25);
    const result = await f.flush('manual');
    expect(result).toEqual({ ok: true, sent: 25 });
    expect(sent.map((s) => s.n)).toEqual([10, 10, 5]);
  });

  it('flushes a full batch at once and a partial one after flushIntervalMs', async () => {
    const f = make();
    outbox.add(3);
    f.notify(3);
    await settle();
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toHaveLength(1);
    outbox.add(10);
    f.notify(10);
    await settle();
    expect(sent).toHaveLength(2);
  });

  it('retries a 503 with growing delays and keeps the records until a 2xx', async () => {
    const f = make();
    answers = [1, 2, 3].map(() => ({ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }));
    outbox.add(5);
    await f.flush('start');
    for (let i = 0; i < 3; i++) await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(4);
    const gaps = sent.slice(1).map((s, i) => s.at - sent[i]!.at);
    expect(gaps).toEqual([1000, 2000, 4000]);
    expect(outbox.left()).toBe(0);
    expect((await f.status()).delivered).toBe(5);
  });

  it('clears the last error once a request succeeds again', async () => {
    const f = make();
    answers = [{ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }];
    outbox.add(2);
    await f.flush('start');
    expect((await f.status()).lastError).toBe('HTTP 503');
    await vi.advanceTimersByTimeAsync(10_000);
    const s = await f.status();
    expect(s.delivered).toBe(2);
    expect(s.lastError).toBeUndefined();
  });

  it('honours Retry-After even when asked to flush now', async () => {
    const f = make();
    answers = [{ ok: false, retryable: true, status: 429, retryAfterMs: 2000, reason: 'HTTP 429' }];
    outbox.add(2);
    await f.flush('start');
    await vi.advanceTimersByTimeAsync(500);
    const manual = await f.flush('manual');
    expect(manual.ok).toBe(false);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1499);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.at - sent[0]!.at).toBe(2000);
  });

  it('bypasses ordinary backoff when the network comes back', async () => {
    const f = make();
    answers = [{ ok: false, retryable: true, reason: 'network error: offline' }];
    outbox.add(2);
    await f.flush('start');
    expect((await f.status()).nextAttemptAt).toBe(1_000_000 + 1000);
    await f.flush('online');
    expect(sent).toHaveLength(2);
    expect(outbox.left()).toBe(0);
  });

  it('splits a batch on 413 down to one record, then dead-letters that one', async () => {
    const f = make({
      send: async (records) => {
        sent.push({ at: Date.now(), n: records.length });
        // s3 alone is too large; otherwise anything over two records is.
        const tooLarge = records.length > 2 || records.some((r) => r.rec === 'span' && r.name === 's3');
        return tooLarge ? { ok: false, retryable: false, status: 413, reason: 'HTTP 413' } : { ok: true };
      },
    });
    outbox.add(8);
    const result = await f.flush('manual');
    expect(result.ok).toBe(true);
    expect(outbox.left()).toBe(0);
    expect(outbox.dead).toEqual([{ reason: 'HTTP 413', n: 1 }]);
    const s = await f.status();
    expect(s.delivered).toBe(7);
    expect(s.deadLettered).toBe(1);
  });

  it('moves a batch refused with 400 to the dead letters and carries on', async () => {
    const f = make();
    answers = [{ ok: false, retryable: false, status: 400, reason: 'HTTP 400 Bad Request' }];
    outbox.add(15);
    await f.flush('manual');
    expect(outbox.dead).toEqual([{ reason: 'HTTP 400 Bad Request', n: 10 }]);
    expect(sent).toHaveLength(2);
    const s = await f.status();
    expect(s).toMatchObject({ delivered: 5, deadLettered: 10, circuit: 'closed' });
    // The batch after it went: the refusal's reason stays with its dead letter, not in the status.
    expect(s.lastError).toBeUndefined();
  });

  it('shows a refusal as the last error until the next success', async () => {
    const f = make();
    answers = [{ ok: false, retryable: false, status: 401, reason: 'HTTP 401: wrong token' }];
    outbox.add(3);
    await f.flush('manual');
    expect(await f.status()).toMatchObject({ delivered: 0, deadLettered: 3, lastError: 'HTTP 401: wrong token' });
    outbox.add(1);
    await f.flush('manual');
    const s = await f.status();
    expect(s).toMatchObject({ delivered: 1, deadLettered: 3 });
    expect(s.lastError).toBeUndefined();
  });

  it('counts partial success as rejected, without retrying', async () => {
    const f = make();
    answers = [{ ok: true, rejected: 2, reason: 'partial success: 2 rejected' }];
    outbox.add(4);
    await f.flush('manual');
    expect(sent).toHaveLength(1);
    expect(await f.status()).toMatchObject({ delivered: 4, rejected: 2, lastError: 'partial success: 2 rejected' });
  });

  it('opens the circuit after consecutive failures and probes once when it half-opens', async () => {
    cfg = { ...cfg, circuitFailures: 2, circuitOpenMs: 30_000 };
    const f = make();
    const fail: ExportResult = { ok: false, retryable: true, status: 503, reason: 'HTTP 503' };
    answers = [fail, fail, fail];
    outbox.add(1);
    await f.flush('start');
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(2);
    expect((await f.status()).circuit).toBe('open');
    // Open: the backoff (2 s) is not enough, the circuit holds attempts for 30 s.
    await vi.advanceTimersByTimeAsync(29_000);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(3);
    expect((await f.status()).circuit).toBe('open');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(sent).toHaveLength(4);
    expect((await f.status()).circuit).toBe('closed');
  });

  it('probes an open circuit early when the network comes back, and closes it on success', async () => {
    cfg = { ...cfg, circuitFailures: 1, circuitOpenMs: 30_000 };
    const f = make();
    answers = [{ ok: false, retryable: true, reason: 'network error: offline' }];
    outbox.add(2);
    await f.flush('start');
    expect((await f.status()).circuit).toBe('open');
    // Not forced: the open circuit holds the attempt.
    await f.flush('size');
    expect(sent).toHaveLength(1);
    await f.flush('online');
    expect(sent).toHaveLength(2);
    expect(outbox.left()).toBe(0);
    expect((await f.status()).circuit).toBe('closed');
  });

  it('pauses retries after backoffMaxElapsedMs, keeping the records for the next trigger', async () => {
    cfg = { ...cfg, backoffMaxElapsedMs: 5000, circuitFailures: 100 };
    const f = make({ send: async (r) => (sent.push({ at: Date.now(), n: r.length }), { ok: false, retryable: true, reason: 'network error' }) });
    outbox.add(3);
    await f.flush('start');
    await vi.advanceTimersByTimeAsync(60_000);
    const attempts = sent.length;
    expect(attempts).toBe(4);
    expect((await f.status()).lastError).toContain('paused');
    await f.idle();
    expect(outbox.left()).toBe(3);
    await f.flush('timer');
    expect(sent.length).toBe(attempts + 1);
  });

  it('is idle through a wait longer than 10 s (an open circuit), not through a short one', async () => {
    cfg = { ...cfg, circuitFailures: 1, circuitOpenMs: 30_000 };
    const f = make({ send: async (r) => (sent.push({ at: Date.now(), n: r.length }), { ok: false, retryable: true, reason: 'HTTP 503' }) });
    let idle = false;
    // A flush due in a second (the interval after a hand-over) keeps the worker's events open.
    outbox.add(3);
    f.notify(3);
    void f.idle().then(() => (idle = true));
    await settle();
    expect((await f.status()).nextAttemptAt).toBeDefined();
    expect(idle).toBe(false);
    // It fails, and the circuit opens for 30 s: a wait no event should be held open for, since
    // the browser activates a new worker of the scope only once the old one has none.
    await vi.advanceTimersByTimeAsync(cfg.flushIntervalMs);
    expect(sent).toHaveLength(1);
    expect((await f.status()).circuit).toBe('open');
    expect(idle).toBe(true);
  });

  it('joins a flush already running and looks once more when it ends', async () => {
    const { f, release } = gated({ ok: true });
    outbox.add(2);
    const first = f.flush('manual');
    await settle();
    outbox.add(3, 2);
    const second = f.flush('size');
    expect(second).toBe(first);
    release();
    // Both callers hear what the whole flush sent, not only its last pass.
    expect(await second).toEqual({ ok: true, sent: 5 });
    expect(sent.map((s) => s.n)).toEqual([2, 3]);
  });

  it('sends nothing more after stop(): no retry of the request in flight, no later flush', async () => {
    const { f, result } = await stoppedMidRequest({ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }, 25);
    expect(result).toMatchObject({ ok: false, retryable: true });
    await vi.advanceTimersByTimeAsync(600_000);
    expect(await f.flush('manual')).toMatchObject({ ok: false, retryable: true });
    f.notify(25);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sent).toHaveLength(1);
    expect(outbox.left()).toBe(25);
  });

  it('takes no further batch after stop() when the request in flight succeeds', async () => {
    await stoppedMidRequest({ ok: true }, 25);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sent.map((s) => s.n)).toEqual([10]);
    expect(outbox.left()).toBe(15);
  });

  it('waits for an endpoint, and leaves the outbox to another context that holds the lock', async () => {
    let target = false;
    const f = make({ hasTarget: () => target, exclusive: async () => undefined });
    outbox.add(2);
    expect((await f.flush('start')).ok).toBe(false);
    target = true;
    const busy = await f.flush('manual');
    expect(busy).toMatchObject({ ok: false, reason: 'another context is flushing' });
    expect(sent).toHaveLength(0);
    // No timer: a worker whose update holds the lock keeps no event open for it, or the browser
    // would never activate that update; its next hand-over looks again.
    expect((await f.status()).nextAttemptAt).toBeUndefined();
    let idle = false;
    void f.idle().then(() => (idle = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(idle).toBe(true);
  });

  it('keeps to a Retry-After that arrives after the retries paused', async () => {
    cfg = { ...cfg, backoffMaxElapsedMs: 5000, circuitFailures: 100 };
    const fail: ExportResult = { ok: false, retryable: true, status: 503, reason: 'HTTP 503' };
    // Attempts at 0, 1 s, 3 s and 7 s; the last is past backoffMaxElapsedMs and says: not for 60 s.
    answers = [fail, fail, fail, { ok: false, retryable: true, status: 429, retryAfterMs: 60_000, reason: 'HTTP 429' }];
    outbox.add(2);
    const f = make();
    await f.flush('start');
    await vi.advanceTimersByTimeAsync(7000);
    expect(sent).toHaveLength(4);
    expect((await f.flush('manual')).ok).toBe(false);
    f.notify(1);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(sent).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(2000);
    expect(sent).toHaveLength(5);
    expect(sent[4]!.at - sent[3]!.at).toBeGreaterThanOrEqual(60_000);
  });

  it('grows the batch size back after one oversized record was split off and dead-lettered', async () => {
    const f = make({
      send: async (records) => {
        sent.push({ at: Date.now(), n: records.length });
        const huge = records.some((r) => r.rec === 'span' && r.name === 's0');
        return huge ? { ok: false, retryable: false, status: 413, reason: 'HTTP 413' } : { ok: true };
      },
    });
    outbox.add(2);
    await f.flush('manual');
    expect(outbox.dead).toEqual([{ reason: 'HTTP 413', n: 1 }]);
    sent = [];
    outbox.add(30, 2);
    await f.flush('manual');
    expect(outbox.left()).toBe(0);
    // Back to full batches within a few requests, not 30 single-record ones.
    expect(sent.length).toBeLessThanOrEqual(6);
    expect(Math.max(...sent.map((x) => x.n))).toBe(10);
  });

  it('runs again at once when a forcing trigger joined a request that then failed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const f = make({
      send: async (records) => {
        sent.push({ at: Date.now(), n: records.length });
        if (sent.length === 1) {
          await gate;
          return { ok: false, retryable: true, reason: 'network error: offline' };
        }
        return { ok: true };
      },
    });
    outbox.add(2);
    const first = f.flush('start');
    await settle();
    // The network comes back while the request that went offline is still hanging.
    const online = f.flush('online');
    release();
    await online;
    await first;
    expect(sent).toHaveLength(2);
    expect(sent[1]!.at).toBe(sent[0]!.at);
    expect(outbox.left()).toBe(0);
  });

  it('backs off after a flush failed on storage, keeping the records', async () => {
    let broken = true;
    const settleOriginal = outbox.box.settle;
    outbox.box.settle = async (...args) => {
      if (broken) throw new DOMException('the quota is full', 'QuotaExceededError');
      return settleOriginal(...args);
    };
    const f = make();
    outbox.add(2);
    await expect(f.flush('manual')).rejects.toThrow('the quota is full');
    expect((await f.status()).lastError).toContain('the quota is full');
    // Not every flush interval: a refused batch that cannot be dead-lettered would be sent again
    // and again. The next try waits like a failed request's (1 s, then 2 s...).
    await vi.advanceTimersByTimeAsync(cfg.flushIntervalMs);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(cfg.backoffBaseMs - cfg.flushIntervalMs);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1999);
    expect(sent).toHaveLength(2);
    broken = false;
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(3);
    expect(outbox.left()).toBe(0);
  });

  it('forgets the old receiver\'s Retry-After and circuit on reset(), and sends at once', async () => {
    answers = [{ ok: false, retryable: true, status: 429, retryAfterMs: 600_000, reason: 'HTTP 429' }];
    const f = make();
    outbox.add(2);
    await f.flush('manual');
    expect(await f.flush('manual')).toMatchObject({ ok: false });
    expect(sent).toHaveLength(1);
    f.reset();
    await settle();
    expect(sent).toHaveLength(2);
    expect(outbox.left()).toBe(0);
    // After stop(), reset() changes nothing and sends nothing.
    outbox.add(1, 2);
    f.stop();
    f.reset();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(2);
  });

  describe('across restarts (a new flusher over the same outbox)', () => {
    /** A flusher's life that stores `records`, sends them once (answered from `answers`), and is stopped (the worker stopped). */
    const failedLife = async (records: number): Promise<void> => {
      const first = make();
      outbox.add(records);
      await first.flush('start');
      first.stop();
      await settle();
    };

    /** Stops `f` and checks that a new life sends a new record at once: nothing of `f`'s waits holds it. */
    const nextLifeSendsAtOnce = async (f: Flusher): Promise<void> => {
      f.stop();
      const before = sent.length;
      outbox.add(1, 1000);
      await make().flush('start');
      expect(sent).toHaveLength(before + 1);
    };

    /**
     * A life that heard 429 with Retry-After: 60 and stopped, and the next one, which a flushNow()
     * woke at once and which did not send: returned.
     */
    const afterRetryAfter = async (records: number): Promise<Flusher> => {
      answers = [{ ok: false, retryable: true, status: 429, retryAfterMs: 60_000, reason: 'HTTP 429' }];
      await failedLife(records);
      const next = make();
      expect(await next.flush('manual')).toMatchObject({ ok: false });
      return next;
    };

    it('keeps to a Retry-After that an earlier life heard, even when asked to flush now', async () => {
      await afterRetryAfter(3);
      await vi.advanceTimersByTimeAsync(59_000);
      expect(sent).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(sent).toHaveLength(2);
      expect(sent[1]!.at - sent[0]!.at).toBe(60_000);
      expect(outbox.left()).toBe(0);
    });

    it('waits out the backoff delay of the earlier life, then starts a new series; a forcing trigger skips the wait', async () => {
      answers = [1, 2].map(() => ({ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }));
      await failedLife(3);
      // Waking with a start-up flush: the first retry is still 1 s after the failure.
      const next = make();
      await next.flush('start');
      await vi.advanceTimersByTimeAsync(999);
      expect(sent).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(sent).toHaveLength(2);
      // Only the waits carry over: this failure starts a series of its own.
      expect((await next.status()).nextAttemptAt).toBe(sent[1]!.at + 1000);
      next.stop();
      await settle();
      const third = make();
      await third.flush('online');
      expect(sent).toHaveLength(3);
      expect(outbox.left()).toBe(0);
    });

    it('keeps a Retry-After also when the circuit is configured to stay open longer than 10 minutes', async () => {
      cfg = { ...cfg, circuitFailures: 1, circuitOpenMs: 900_000 };
      // A forcing trigger skips the (restored, shortened) circuit wait, never the Retry-After.
      const next = await afterRetryAfter(2);
      await vi.advanceTimersByTimeAsync(59_999);
      expect(sent).toHaveLength(1);
      await next.flush('manual');
      await vi.advanceTimersByTimeAsync(1);
      expect(await next.flush('manual')).toMatchObject({ ok: true });
      expect(sent).toHaveLength(2);
    });

    it('forgets the backoff once a forcing trigger succeeded early, in the next life too', async () => {
      answers = [1, 2, 3].map(() => ({ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }));
      const first = make();
      outbox.add(2);
      await first.flush('start');
      await vi.advanceTimersByTimeAsync(3000);
      expect(sent).toHaveLength(3);
      // The network is back before the next retry (4 s away): delivered at once.
      await first.flush('online');
      expect(sent).toHaveLength(4);
      await nextLifeSendsAtOnce(first);
    });

    it('runs the pass of a forcing flush that joined while the waits were being read', async () => {
      answers = [{ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }];
      await failedLife(2);
      const next = make();
      const start = next.flush('start');
      const manual = next.flush('manual');
      expect(await start).toMatchObject({ ok: true, sent: 2 });
      expect(await manual).toMatchObject({ ok: true, sent: 2 });
      expect(sent).toHaveLength(2);
    });

    it('forgets the waits on reset() for a new receiver, in the next life too', async () => {
      answers = [{ ok: false, retryable: true, status: 429, retryAfterMs: 600_000, reason: 'HTTP 429' }];
      await failedLife(2);
      const next = make();
      expect(await next.flush('start')).toMatchObject({ ok: false });
      expect(sent).toHaveLength(1);
      next.reset();
      await settle();
      expect(sent).toHaveLength(2);
      await nextLifeSendsAtOnce(next);
    });

    it('keeps no endless wait from a flusher stopped while its request was under way', async () => {
      await stoppedMidRequest({ ok: false, retryable: true, status: 503, reason: 'HTTP 503' }, 2);
      // Its failure came after stop(): nothing of that flusher's is kept.
      expect((await outbox.box.stats()).hold).toBeUndefined();
      await make().flush('start');
      expect(sent).toHaveLength(2);
      expect(outbox.left()).toBe(0);
    });

    it('waits at most 10 minutes for a kept wait (one kept while the clock was an hour ahead)', async () => {
      await outbox.box.hold([Date.now() + 3_600_000, Date.now() + 3_600_000]);
      outbox.add(2);
      await make().flush('start');
      await vi.advanceTimersByTimeAsync(599_999);
      expect(sent).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(sent).toHaveLength(1);
    });
  });

  it('counts only delivered records as sent, not dead-lettered ones', async () => {
    answers = [{ ok: false, retryable: false, status: 401, reason: 'HTTP 401' }];
    const f = make();
    outbox.add(2);
    expect(await f.flush('manual')).toEqual({ ok: true, sent: 0 });
    outbox.add(3, 2);
    expect(await f.flush('manual')).toEqual({ ok: true, sent: 3 });
  });

  it('shows what a successful request left out (scores skipped) as the last error', async () => {
    const f = make();
    answers = [{ ok: true, reason: '1 score record(s) skipped: HTTP 404' }];
    outbox.add(2);
    await f.flush('manual');
    expect((await f.status()).lastError).toBe('1 score record(s) skipped: HTTP 404');
  });

  it('reports status changes, throttled', async () => {
    const seen: number[] = [];
    const f = make({ onStatus: (s) => seen.push(s.delivered) });
    outbox.add(4);
    await f.flush('manual');
    await vi.advanceTimersByTimeAsync(200);
    expect(seen.at(-1)).toBe(4);
    expect(seen.length).toBeLessThanOrEqual(2);
  });
});

import { afterEach, beforeEach, describe, it, expect, vi } from 'vitest';
import type { Exporter, ExportResult, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { requestProcessor, type RequestProcessor } from '../../../src/server/requestProcessor';
import { forRequestFlush } from '../../../src/server/scope';
import { spanRecord } from '../../helpers/records';

const span = (name: string): SpanRecord => spanRecord(1, { name });

/** A flush as `withTracing` makes it for one request. */
const requestFlush = (p: RequestProcessor): Promise<void> => forRequestFlush(() => p.forceFlush!());

const scripted = (results: ExportResult[]) => {
  const calls: TelemetryRecord[][] = [];
  const exporter: Exporter = {
    export: async (records) => {
      calls.push([...records]);
      return results.shift() ?? { ok: true };
    },
  };
  return { calls, exporter };
};

// Only Date is faked: exports' own timeouts run on real timers.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});
/** Past any wait a retryable failure sets (at most 30 s). */
const later = (): void => {
  vi.setSystemTime(Date.now() + 31_000);
};

describe('requestProcessor', () => {
  it('holds records until forceFlush and sends them in one call', async () => {
    const { calls, exporter } = scripted([]);
    const p = requestProcessor(exporter);
    p.onEnd!(span('a'));
    p.onEnd!(span('b'));
    expect(calls).toHaveLength(0);
    expect(p.queued()).toBe(2);
    await requestFlush(p);
    expect(calls.map((c) => c.map((r) => (r as SpanRecord).name))).toEqual([['a', 'b']]);
    await requestFlush(p);
    expect(calls).toHaveLength(1);
  });

  it('splits by maxBatchSize', async () => {
    const { calls, exporter } = scripted([]);
    const p = requestProcessor(exporter, { maxBatchSize: 2 });
    for (const n of ['a', 'b', 'c']) p.onEnd!(span(n));
    await requestFlush(p);
    expect(calls.map((c) => c.length)).toEqual([2, 1]);
  });

  it('keeps a retryable failure for the next flush, and drops a permanent one', async () => {
    const { calls, exporter } = scripted([
      { ok: false, retryable: true, reason: '503' },
      { ok: true },
      { ok: false, retryable: false, reason: '400' },
    ]);
    const p = requestProcessor(exporter);
    p.onEnd!(span('a'));
    await requestFlush(p);
    expect(p.queued()).toBe(1);
    later();
    p.onEnd!(span('b'));
    await requestFlush(p);
    expect(calls[1]!.map((r) => (r as SpanRecord).name)).toEqual(['a', 'b']);
    p.onEnd!(span('c'));
    await requestFlush(p);
    expect(p.queued()).toBe(0);
    expect(p.dropped()).toBe(1);
  });

  it('drops the oldest beyond maxQueueSize and reports the count on the next batch', async () => {
    const { calls, exporter } = scripted([]);
    const p = requestProcessor(exporter, { maxQueueSize: 2 });
    for (const n of ['a', 'b', 'c']) p.onEnd!(span(n));
    await requestFlush(p);
    const sent = calls[0] as SpanRecord[];
    expect(sent.map((r) => r.name)).toEqual(['b', 'c']);
    expect(sent[0]!.attrs['edgetrace.dropped_records']).toBe(1);
    expect(p.dropped()).toBe(1);
  });

  it('keeps the drop count when the batch carrying it fails, even if that batch is dropped later', async () => {
    const { calls, exporter } = scripted([{ ok: false, retryable: true, reason: '503' }]);
    const p = requestProcessor(exporter, { maxQueueSize: 2 });
    for (const n of ['a', 'b', 'c']) p.onEnd!(span(n));
    await requestFlush(p);
    expect(p.queued()).toBe(2);
    // d pushes b, which carried the count on the failed try, out of the queue.
    p.onEnd!(span('d'));
    later();
    await requestFlush(p);
    const sent = calls[1] as SpanRecord[];
    expect(sent.map((r) => r.name)).toEqual(['c', 'd']);
    expect(sent[0]!.attrs['edgetrace.dropped_records']).toBe(2);
  });

  it('survives an exporter that throws synchronously or returns nothing', async () => {
    let n = 0;
    const exporter = {
      export: () => {
        if (n++ === 0) throw new Error('no url configured');
        return undefined;
      },
    } as unknown as Exporter;
    const p = requestProcessor(exporter);
    p.onEnd!(span('a'));
    await requestFlush(p);
    expect(p.queued()).toBe(1);
    later();
    await requestFlush(p);
    expect(n).toBe(2);
    expect(p.queued()).toBe(0);
    expect(p.dropped()).toBe(0);
  });

  it('gives up an export that hangs after exportTimeoutMs, keeping its records', async () => {
    const exporter: Exporter = { export: () => new Promise(() => undefined) };
    const p = requestProcessor(exporter, { exportTimeoutMs: 50 });
    p.onEnd!(span('a'));
    const started = performance.now();
    await requestFlush(p);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(p.queued()).toBe(1);
  });

  it('treats a throwing exporter as retryable and shutdown flushes', async () => {
    let n = 0;
    const exporter: Exporter = {
      export: async () => {
        if (n++ === 0) throw new Error('x');
        return { ok: true };
      },
    };
    const p = requestProcessor(exporter);
    p.onScore!({ v: 1, rec: 'score', id: 's', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', name: 'n', value: 1, timeMs: 1 });
    await requestFlush(p);
    expect(p.queued()).toBe(1);
    await p.shutdown!();
    expect(p.queued()).toBe(0);
  });

  it('waits after a retryable failure before sending again, doubling, and for the receiver\'s Retry-After', async () => {
    const down: ExportResult = { ok: false, retryable: true, reason: 'network error: ECONNREFUSED' };
    const { calls, exporter } = scripted([down, down, { ok: false, retryable: true, status: 429, retryAfterMs: 60_000, reason: 'HTTP 429' }]);
    const p = requestProcessor(exporter);
    const attemptsAfter = async (ms: number): Promise<number> => {
      vi.setSystemTime(Date.now() + ms);
      p.onEnd!(span('x'));
      await requestFlush(p);
      return calls.length;
    };
    // The first failure waits 0.5 to 1 s (half of it random), the second 1 to 2 s: requests
    // meanwhile send nothing, and each try carries everything held.
    expect(await attemptsAfter(0)).toBe(1);
    expect(await attemptsAfter(400)).toBe(1);
    expect(await attemptsAfter(700)).toBe(2);
    expect(await attemptsAfter(900)).toBe(2);
    expect(await attemptsAfter(1200)).toBe(3);
    expect(calls[2]).toHaveLength(5);
    // Retry-After: 60 s, well past the backoff.
    expect(await attemptsAfter(31_000)).toBe(3);
    expect(await attemptsAfter(30_000)).toBe(4);
    expect(calls[3]).toHaveLength(7);
    expect(p.queued()).toBe(0);
  });

  it('sends a batch refused as too large (413) again in halves, and drops a single record refused so', async () => {
    const tooLarge: ExportResult = { ok: false, retryable: false, status: 413, reason: 'HTTP 413' };
    const { calls, exporter } = scripted([tooLarge, tooLarge, { ok: true }, tooLarge, tooLarge]);
    const p = requestProcessor(exporter);
    for (const n of ['a', 'b', 'c', 'd', 'e']) p.onEnd!(span(n));
    await requestFlush(p);
    // ab is refused too and goes as a and b; b alone is refused and dropped; cde is refused and
    // goes as c and de.
    expect(calls.map((c) => c.map((r) => (r as SpanRecord).name).join(''))).toEqual(['abcde', 'ab', 'a', 'b', 'cde', 'c', 'de']);
    expect(p.dropped()).toBe(1);
    expect(p.queued()).toBe(0);
  });

  it('counts the failures of exports that overlap as one, and keeps waiting after an older export succeeds', async () => {
    const calls: number[] = [];
    const answers: ((r: ExportResult) => void)[] = [];
    const p = requestProcessor({ export: (records) => (calls.push(records.length), new Promise((r) => answers.push(r))) }, { maxBatchSize: 2 });
    // A request's export that will succeed late, then one flush of four batches that all fail.
    p.onEnd!(span('early'));
    const early = requestFlush(p);
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) p.onEnd!(span(n));
    const burst = requestFlush(p);
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([1, 2, 2, 2, 2]);
    for (const answer of answers.slice(1)) answer({ ok: false, retryable: true, reason: '503' });
    await burst;
    answers[0]!({ ok: true });
    await early;
    expect(p.queued()).toBe(8);
    // One failure: a wait of 0.5 to 1 s, which the early success did not lift.
    vi.setSystemTime(Date.now() + 450);
    await requestFlush(p);
    expect(calls).toHaveLength(5);
    vi.setSystemTime(Date.now() + 600);
    const retry = requestFlush(p);
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toHaveLength(9);
    for (const answer of answers.slice(5)) answer({ ok: true });
    await retry;
    expect(p.queued()).toBe(0);
  });

  it('starts later exports at the size a 413 left', async () => {
    const { calls, exporter } = scripted([{ ok: false, retryable: false, status: 413, reason: 'HTTP 413' }]);
    const p = requestProcessor(exporter, { maxBatchSize: 8 });
    for (let i = 0; i < 8; i++) p.onEnd!(span(`a${i}`));
    await requestFlush(p);
    expect(calls.map((c) => c.length)).toEqual([8, 4, 4]);
    // The next request's flush sends batches of the size accepted, not 8 first.
    for (let i = 0; i < 12; i++) p.onEnd!(span(`b${i}`));
    await requestFlush(p);
    expect(calls.slice(3).map((c) => c.length)).toEqual([4, 4, 4]);
  });

  it('puts back the records of an export that fails while shutdown waits, and sends them in its last try', async () => {
    let answer: (r: ExportResult) => void = () => undefined;
    const calls: string[][] = [];
    const p = requestProcessor({
      export: (records) => {
        calls.push(records.map((r) => (r as SpanRecord).name));
        return calls.length === 1 ? new Promise((r) => (answer = r)) : Promise.resolve({ ok: true });
      },
    });
    p.onEnd!(span('a'));
    const pending = requestFlush(p);
    const shut = p.shutdown!();
    await new Promise((r) => setTimeout(r, 10));
    answer({ ok: false, retryable: true, reason: '503' });
    await Promise.all([pending, shut]);
    expect(calls).toEqual([['a'], ['a']]);
    expect(p.queued()).toBe(0);
  });

  it('makes a last try at shutdown whatever the wait, and waits for exports still running', async () => {
    let answer: (r: ExportResult) => void = () => undefined;
    const results: Promise<ExportResult>[] = [Promise.resolve({ ok: false, retryable: true, reason: '503' }), new Promise((r) => (answer = r))];
    const calls: number[] = [];
    const p = requestProcessor({ export: (records) => (calls.push(records.length), results.shift() ?? Promise.resolve({ ok: true })) });
    p.onEnd!(span('a'));
    await requestFlush(p);
    p.onEnd!(span('b'));
    await requestFlush(p);
    expect(calls).toEqual([1]);
    // A request's flush starts an export that has not answered when shutdown() is called.
    later();
    const pending = requestFlush(p);
    let done = false;
    const shut = p.shutdown!().then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual([1, 2]);
    expect(done).toBe(false);
    answer({ ok: true });
    await Promise.all([pending, shut]);
    expect(done).toBe(true);
    expect(p.queued()).toBe(0);
  });

  it('sends at once what a failure held back when flushed outside any request (a shutdown hook, a job that ended)', async () => {
    const { calls, exporter } = scripted([{ ok: false, retryable: true, reason: '503' }]);
    const p = requestProcessor(exporter);
    p.onEnd!(span('a'));
    await requestFlush(p);
    // Inside the failure's wait, a request's flush sends nothing; the app's own flush does.
    p.onEnd!(span('b'));
    await requestFlush(p);
    expect(calls).toHaveLength(1);
    await p.forceFlush!();
    expect(calls.map((c) => c.map((r) => (r as SpanRecord).name))).toEqual([['a'], ['a', 'b']]);
    expect(p.queued()).toBe(0);
  });

  it('waits for the exports other flushes started when flushed outside any request; a request’s flush waits for its own only', async () => {
    let answer: (r: ExportResult) => void = () => undefined;
    const results: Promise<ExportResult>[] = [new Promise((r) => (answer = r))];
    const calls: string[][] = [];
    const p = requestProcessor({ export: (records) => (calls.push(records.map((r) => (r as SpanRecord).name)), results.shift() ?? Promise.resolve({ ok: true })) });
    p.onEnd!(span('a'));
    const first = requestFlush(p);
    let flushed = false;
    const outside = p.forceFlush!().then(() => (flushed = true));
    p.onEnd!(span('b'));
    await requestFlush(p);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual([['a'], ['b']]);
    expect(flushed).toBe(false);
    answer({ ok: true });
    await Promise.all([first, outside]);
    expect(flushed).toBe(true);
  });

  it('in an edge isolate, waits outside a request for its own exports only (a Durable Object alarm must not wait on another request)', async () => {
    vi.stubGlobal('EdgeRuntime', 'edge-runtime');
    try {
      let answer: (r: ExportResult) => void = () => undefined;
      const results: Promise<ExportResult>[] = [new Promise((r) => (answer = r))];
      const p = requestProcessor({ export: () => results.shift() ?? Promise.resolve({ ok: true }) });
      p.onEnd!(span('a'));
      const first = requestFlush(p);
      p.onEnd!(span('b'));
      await p.forceFlush!();
      expect(p.queued()).toBe(0);
      answer({ ok: true });
      await first;
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('says once on the console that the receiver refused part of a batch it took (OTLP partialSuccess)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const partly: ExportResult = { ok: true, rejected: 1, reason: 'partial success: 1 rejected (spans[0].links must be an array)' };
      const { exporter } = scripted([partly, partly]);
      const p = requestProcessor(exporter);
      for (const name of ['a', 'b']) {
        p.onEnd!(span(name));
        await requestFlush(p);
        later();
      }
      expect(p.dropped()).toBe(0);
      expect(warn.mock.calls.map((c) => c[0])).toEqual([
        '[edgetrace] the receiver refused 1 record(s) of a batch it took: partial success: 1 rejected (spans[0].links must be an array). Later ones are not logged.',
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it('says once on the console that the exporter refused a batch for good, with its reason, and once that one failed and is kept', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const refused: ExportResult = { ok: false, retryable: false, status: 401, reason: 'HTTP 401: missing ingest token' };
      const down: ExportResult = { ok: false, retryable: true, reason: 'network error: ECONNREFUSED' };
      const { exporter } = scripted([down, down, refused, { ...refused, reason: 'HTTP 403: wrong origin' }]);
      const p = requestProcessor(exporter);
      for (const name of ['a', 'b', 'c', 'd']) {
        p.onEnd!(span(name));
        await requestFlush(p);
        later();
      }
      expect(p.dropped()).toBe(4);
      expect(warn.mock.calls.map((c) => c[0])).toEqual([
        '[edgetrace] an export failed and is kept to be sent again: network error: ECONNREFUSED. Later failures are not logged.',
        '[edgetrace] the exporter refused a batch, which is dropped: HTTP 401: missing ingest token. Later refusals are not logged.',
      ]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('requestProcessor in a process, for what is recorded outside requests', () => {
  it('sends it a second later, tries a failing receiver a few times only, and nothing after shutdown', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    const fail: ExportResult = { ok: false, retryable: true, reason: 'HTTP 503' };
    const { calls, exporter } = scripted(Array.from({ length: 100 }, () => fail));
    const p = requestProcessor(exporter);
    p.onEnd!(span('job'));
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    // A receiver that stays down: tried again past each backoff, five failures in all, then left
    // for a request's flush or the exit (a tracer a hot reload dropped must not try for good).
    await vi.advanceTimersByTimeAsync(600_000);
    expect(calls).toHaveLength(5);
    expect(p.queued()).toBe(1);

    // A SERVER span ends after its handler, outside the request, and its request's flush follows.
    const { calls: served, exporter: ok } = scripted([]);
    const r = requestProcessor(ok);
    r.onEnd!(spanRecord(1, { name: 'GET', kind: 'server' }));
    await vi.advanceTimersByTimeAsync(5000);
    expect(served).toHaveLength(0);

    const { calls: after, exporter: down } = scripted(Array.from({ length: 100 }, () => fail));
    const q = requestProcessor(down);
    q.onEnd!(span('job'));
    await q.shutdown!();
    const tried = after.length;
    q.onEnd!(span('late'));
    await vi.advanceTimersByTimeAsync(600_000);
    expect(after).toHaveLength(tried);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryStatus, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { createPageBuffer, type Sink } from '../../../src/transport/pageBuffer';
import { scoreRecord, spanRecord } from '../../helpers/records';

const span = (i: number): SpanRecord => spanRecord(i);

const fakeSink = (answer: () => number | Promise<number> = () => 0) => {
  const handed: { records: TelemetryRecord[]; urgent: boolean }[] = [];
  const sink: Sink = {
    transport: 'worker',
    hand: async (records, urgent) => {
      handed.push({ records, urgent });
      const a = await answer();
      return a === 0 ? records.length : a;
    },
    flushNow: async () => ({ ok: true, sent: 0 }),
    status: async () => ({}) as DeliveryStatus,
    deadLetters: async () => [],
  };
  return { sink, handed };
};

const cfg = { maxRecords: 10, batchRecords: 4, maxDelayMs: 1000 };

/** A buffer handing over to `sink`. */
const bufferOn = (sink: Sink, config = cfg) => {
  const buffer = createPageBuffer(config);
  buffer.setSink(sink);
  return buffer;
};

/** Ends spans s0, s1… up to `count` into `buffer`. */
const endSpans = (buffer: ReturnType<typeof createPageBuffer>, count: number): void => {
  for (let i = 0; i < count; i++) buffer.processor.onEnd?.(span(i));
};

/** A small bound, handed over only when asked. */
const tight = { maxRecords: 3, batchRecords: 100, maxDelayMs: 60_000 };

/** A sink whose first hand-over waits for `release(stored)`; the later ones store at once. */
const heldFirstSink = () => {
  let answer: (stored: number) => void = () => undefined;
  let calls = 0;
  const s = fakeSink(() => (++calls === 1 ? new Promise<number>((r) => (answer = r)) : 0));
  return { ...s, release: (stored: number) => answer(stored) };
};

// Every test here runs on fake timers: the buffer hands over on idle callbacks and timeouts.
beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('createPageBuffer', () => {

  it('keeps the records as they are (no copy) and hands them over in one batch when idle', async () => {
    const { sink, handed } = fakeSink();
    const buffer = bufferOn(sink);
    const a = span(1);
    buffer.processor.onEnd?.(a);
    buffer.processor.onEnd?.(span(2));
    expect(handed).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(handed).toHaveLength(1);
    expect(handed[0]!.records[0]).toBe(a);
    expect(buffer.queued()).toBe(0);
  });

  it('hands over in the next task once batchRecords wait, not inside the end() that filled the batch', async () => {
    const { sink, handed } = fakeSink();
    const buffer = bufferOn(sink);
    endSpans(buffer, 5);
    expect(handed).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(handed).toHaveLength(1);
    expect(handed[0]!.records).toHaveLength(5);
  });

  it('hands a synchronous burst over at the bound instead of dropping it', () => {
    const { sink, handed } = fakeSink();
    const buffer = bufferOn(sink);
    endSpans(buffer, 25);
    expect(handed.map((h) => h.records.length)).toEqual([10, 10]);
    expect(buffer.queued()).toBe(5);
    expect(buffer.dropped()).toBe(0);
  });

  it('posts a large buffer as several messages of at most 1024 records, all at once; the tail on page hide as one', () => {
    const { sink, handed } = fakeSink();
    const buffer = bufferOn(sink, { maxRecords: 10_000, batchRecords: 5000, maxDelayMs: 1000 });
    endSpans(buffer, 2500);
    void buffer.handAll(false);
    expect(handed.map((h) => h.records.length)).toEqual([1024, 1024, 452]);
    expect(handed.flatMap((h) => h.records.map((r) => (r as SpanRecord).name))).toEqual(Array.from({ length: 2500 }, (_, i) => `s${i}`));
    endSpans(buffer, 2500);
    void buffer.handAll(true);
    expect(handed.slice(3).map((h) => [h.records.length, h.urgent])).toEqual([[2500, true]]);
  });

  it('puts refused parts back in their order and counts one failed hand-over', async () => {
    let call = 0;
    // The first and last parts are refused, the middle one stored.
    const { sink } = fakeSink(() => (++call === 2 ? 0 : -1));
    const buffer = bufferOn(sink, { maxRecords: 10_000, batchRecords: 5000, maxDelayMs: 60_000 });
    endSpans(buffer, 2500);
    await buffer.handAll(false);
    expect(buffer.failures()).toBe(1);
    const back = buffer.snapshot().map((r) => (r as SpanRecord).name);
    expect(back).toEqual([...Array.from({ length: 1024 }, (_, i) => `s${i}`), ...Array.from({ length: 452 }, (_, i) => `s${2048 + i}`)]);
    expect(buffer.dropped()).toBe(0);
  });

  it('counts records in hand-overs not answered yet as not taken, oldest first, until the answer', async () => {
    let answer!: (n: number) => void;
    const { sink } = fakeSink(() => new Promise<number>((r) => (answer = r)));
    const buffer = bufferOn(sink, tight);
    endSpans(buffer, 2);
    const handed = buffer.handAll(false);
    buffer.processor.onEnd?.(span(7));
    expect(buffer.snapshot().map((r) => (r as SpanRecord).name)).toEqual(['s0', 's1', 's7']);
    expect(buffer.queued()).toBe(1);
    answer(0);
    await handed;
    expect(buffer.snapshot().map((r) => (r as SpanRecord).name)).toEqual(['s7']);
  });

  it('hands over at maxRecords even when batchRecords is larger, dropping nothing', () => {
    const { sink, handed } = fakeSink();
    const buffer = bufferOn(sink, { maxRecords: 10, batchRecords: 20, maxDelayMs: 60_000 });
    endSpans(buffer, 15);
    expect(handed.map((h) => h.records.length)).toEqual([10]);
    expect(buffer.queued()).toBe(5);
    expect(buffer.dropped()).toBe(0);
  });

  it('posts the tail at once, marked urgent, when asked on page hide', () => {
    const { sink, handed } = fakeSink();
    const buffer = bufferOn(sink);
    buffer.processor.onEnd?.(span(1));
    void buffer.handAll(true);
    expect(handed).toEqual([{ records: [span(1)], urgent: true }]);
  });

  it('holds records until a sink exists, within its bound, dropping the oldest and counting', async () => {
    const buffer = createPageBuffer(cfg);
    endSpans(buffer, 13);
    expect(buffer.queued()).toBe(10);
    expect(buffer.dropped()).toBe(3);
    const { sink, handed } = fakeSink();
    buffer.setSink(sink);
    await vi.advanceTimersByTimeAsync(1000);
    const first = handed[0]!.records[0] as SpanRecord;
    expect(first.name).toBe('s3');
    expect(first.attrs['edgetrace.dropped_records']).toBe(3);
  });

  it('never loses a count of drops when the record carrying it is put back or dropped itself', async () => {
    const { sink, handed, release } = heldFirstSink();
    const buffer = createPageBuffer(tight);
    // No sink yet: x0 is dropped.
    buffer.processor.onEnd?.(spanRecord(0, { name: 'x0' }));
    buffer.processor.onScore?.(scoreRecord());
    buffer.processor.onEnd?.(span(2));
    buffer.processor.onEnd?.(span(3));
    buffer.setSink(sink);
    // s2 carries the count (1); its batch is refused and comes back behind nothing but s4.
    const first = buffer.handAll(false);
    buffer.processor.onEnd?.(span(4));
    release(-1);
    await first;
    // Putting back drops the oldest, the score: one more drop, added to the count s2 carries.
    expect(buffer.dropped()).toBe(2);
    await buffer.handAll(false);
    const carrier = handed.at(-1)!.records.find((r) => r.rec === 'span') as SpanRecord;
    expect(carrier.name).toBe('s2');
    expect(carrier.attrs['edgetrace.dropped_records']).toBe(2);
  });

  it('hands the count of a dropped carrier on to the next span', async () => {
    const { sink, handed, release } = heldFirstSink();
    const buffer = createPageBuffer(tight);
    endSpans(buffer, 5);
    buffer.setSink(sink);
    // s2 carries 2; while its batch is out, two more records wait, so putting it back drops s2 and s3.
    const first = buffer.handAll(false);
    buffer.processor.onEnd?.(span(5));
    buffer.processor.onEnd?.(span(6));
    release(-1);
    await first;
    expect(buffer.dropped()).toBe(4);
    await buffer.handAll(false);
    const carrier = handed.at(-1)!.records[0] as SpanRecord;
    expect(carrier.name).toBe('s4');
    expect(carrier.attrs['edgetrace.dropped_records']).toBe(4);
  });

  it('puts a refused batch back in front and tries again later', async () => {
    let refuse = true;
    const { sink, handed } = fakeSink(() => (refuse ? -1 : 0));
    const buffer = bufferOn(sink);
    buffer.processor.onEnd?.(span(1));
    await vi.advanceTimersByTimeAsync(1000);
    expect(buffer.queued()).toBe(1);
    expect(buffer.failures()).toBe(1);
    buffer.processor.onEnd?.(span(2));
    refuse = false;
    await vi.advanceTimersByTimeAsync(1000);
    const last = handed.at(-1)!.records.map((r) => (r as SpanRecord).name);
    expect(last).toEqual(['s1', 's2']);
    expect(buffer.queued()).toBe(0);
    expect(buffer.failures()).toBe(0);
  });

  it('counts hand-overs that failed together as one failure, and none of a sink since replaced', async () => {
    // A worker that stopped: every hand-over posted on its port times out, at about one time.
    let fail!: () => void;
    const stopped = new Promise<number>((_, reject) => (fail = () => reject(new Error('timed out'))));
    const dead = fakeSink(() => stopped);
    const buffer = bufferOn(dead.sink);
    for (let i = 0; i < 3; i++) {
      buffer.processor.onEnd?.(span(i));
      void buffer.handAll(false);
    }
    expect(dead.handed).toHaveLength(3);
    fail();
    await vi.advanceTimersByTimeAsync(0);
    expect(buffer.failures()).toBe(1);
    // A retry that fails after them is the next in a row.
    await vi.advanceTimersByTimeAsync(1000);
    expect(buffer.failures()).toBe(2);
    // The page outbox took over meanwhile; late answers from the worker say nothing of it.
    let late!: () => void;
    const slow = new Promise<number>((_, reject) => (late = () => reject(new Error('timed out'))));
    const replaced = fakeSink(() => slow);
    const next = bufferOn(replaced.sink);
    next.processor.onEnd?.(span(9));
    const pending = next.handAll(false);
    next.setSink(fakeSink().sink);
    late();
    await pending;
    expect(next.failures()).toBe(0);
  });

  it('treats a rejected hand-over (a lost worker) like a refusal', async () => {
    const { sink } = fakeSink(() => Promise.reject(new Error('timed out')));
    const buffer = bufferOn(sink);
    buffer.processor.onEnd?.(span(1));
    await vi.advanceTimersByTimeAsync(1000);
    expect(buffer.queued()).toBe(1);
  });

  it('forceFlush hands over and asks the sink to flush', async () => {
    const { sink, handed } = fakeSink();
    const flushNow = vi.spyOn(sink, 'flushNow');
    const buffer = bufferOn(sink);
    buffer.processor.onEnd?.(span(1));
    await buffer.processor.forceFlush?.();
    expect(handed).toHaveLength(1);
    expect(flushNow).toHaveBeenCalledOnce();
  });

  it('after an urgent hand-over (the page going away), forceFlush hands over without asking the sink to send', async () => {
    const { sink, handed } = fakeSink();
    const flushNow = vi.spyOn(sink, 'flushNow');
    const buffer = bufferOn(sink);
    buffer.processor.onEnd?.(span(1));
    await buffer.handAll(true);
    // The interaction the instrumentation ends on pagehide, then its flush.
    buffer.processor.onEnd?.(span(2));
    await buffer.processor.forceFlush?.();
    expect(handed.map((h) => [h.records.length, h.urgent])).toEqual([
      [1, true],
      [1, false],
    ]);
    // A flushNow() would have probed a failing receiver past its backoff, once per page view.
    expect(flushNow).not.toHaveBeenCalled();
    // The page lived on (a tab switch): once it runs idle work again, a flush asks the sink too.
    await vi.advanceTimersByTimeAsync(1000);
    await buffer.processor.forceFlush?.();
    expect(flushNow).toHaveBeenCalledOnce();
  });
});

describe('createPageBuffer waiting for its sink', () => {

  it('forceFlush waits for a sink that is still coming, then hands over', async () => {
    const { sink, handed } = fakeSink();
    const buffer = createPageBuffer(cfg);
    buffer.processor.onEnd?.(span(1));
    const flushed = buffer.processor.forceFlush?.();
    await vi.advanceTimersByTimeAsync(100);
    buffer.setSink(sink);
    await flushed;
    expect(handed).toHaveLength(1);
  });

  it('shutdown right after init (StrictMode, HMR) waits for a sink still coming, then hands the records over as the tail', async () => {
    const { sink, handed } = fakeSink();
    const buffer = createPageBuffer(cfg);
    buffer.processor.onEnd?.(span(1));
    let done = false;
    const shut = buffer.processor.shutdown!().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(300);
    expect(done).toBe(false);
    buffer.setSink(sink);
    await shut;
    expect(handed.map((h) => [h.records.length, h.urgent])).toEqual([[1, true]]);
  });

  it('shutdown with no sink and nothing recorded does not wait; with records it gives up after 5 s, keeping them', async () => {
    const empty = createPageBuffer(cfg);
    let done = false;
    void empty.processor.shutdown!().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);

    const buffer = createPageBuffer(cfg);
    buffer.processor.onEnd?.(span(1));
    done = false;
    void buffer.processor.shutdown!().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(4900);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toBe(true);
    // Still there, for the transport's keepalive tail.
    expect(buffer.queued()).toBe(1);
  });
});

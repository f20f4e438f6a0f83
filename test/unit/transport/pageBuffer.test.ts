import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryStatus, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { createPageBuffer, type Sink } from '../../../src/transport/pageBuffer';
import { spanRecord } from '../../helpers/records';

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

describe('createPageBuffer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps the records as they are (no copy) and hands them over in one batch when idle', async () => {
    const { sink, handed } = fakeSink();
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
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
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
    for (let i = 0; i < 5; i++) buffer.processor.onEnd?.(span(i));
    expect(handed).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(handed).toHaveLength(1);
    expect(handed[0]!.records).toHaveLength(5);
  });

  it('hands a synchronous burst over at the bound instead of dropping it', () => {
    const { sink, handed } = fakeSink();
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
    for (let i = 0; i < 25; i++) buffer.processor.onEnd?.(span(i));
    expect(handed.map((h) => h.records.length)).toEqual([10, 10]);
    expect(buffer.queued()).toBe(5);
    expect(buffer.dropped()).toBe(0);
  });

  it('posts a large buffer as several messages of at most 1024 records, all at once', () => {
    const { sink, handed } = fakeSink();
    const buffer = createPageBuffer({ maxRecords: 10_000, batchRecords: 5000, maxDelayMs: 1000 });
    buffer.setSink(sink);
    for (let i = 0; i < 2500; i++) buffer.processor.onEnd?.(span(i));
    void buffer.handAll(true);
    expect(handed.map((h) => [h.records.length, h.urgent])).toEqual([[1024, true], [1024, true], [452, true]]);
    expect(handed.flatMap((h) => h.records.map((r) => (r as SpanRecord).name))).toEqual(Array.from({ length: 2500 }, (_, i) => `s${i}`));
  });

  it('posts the tail at once, marked urgent, when asked on page hide', () => {
    const { sink, handed } = fakeSink();
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
    buffer.processor.onEnd?.(span(1));
    void buffer.handAll(true);
    expect(handed).toEqual([{ records: [span(1)], urgent: true }]);
  });

  it('holds records until a sink exists, within its bound, dropping the oldest and counting', async () => {
    const buffer = createPageBuffer(cfg);
    for (let i = 0; i < 13; i++) buffer.processor.onEnd?.(span(i));
    expect(buffer.queued()).toBe(10);
    expect(buffer.dropped()).toBe(3);
    const { sink, handed } = fakeSink();
    buffer.setSink(sink);
    await vi.advanceTimersByTimeAsync(1000);
    const first = handed[0]!.records[0] as SpanRecord;
    expect(first.name).toBe('s3');
    expect(first.attrs['edgetrace.dropped_records']).toBe(3);
  });

  it('puts a refused batch back in front and tries again later', async () => {
    let refuse = true;
    const { sink, handed } = fakeSink(() => (refuse ? -1 : 0));
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
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

  it('treats a rejected hand-over (a lost worker) like a refusal', async () => {
    const { sink } = fakeSink(() => Promise.reject(new Error('timed out')));
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
    buffer.processor.onEnd?.(span(1));
    await vi.advanceTimersByTimeAsync(1000);
    expect(buffer.queued()).toBe(1);
  });

  it('forceFlush hands over and asks the sink to flush', async () => {
    const { sink, handed } = fakeSink();
    const flushNow = vi.spyOn(sink, 'flushNow');
    const buffer = createPageBuffer(cfg);
    buffer.setSink(sink);
    buffer.processor.onEnd?.(span(1));
    await buffer.processor.forceFlush?.();
    expect(handed).toHaveLength(1);
    expect(flushNow).toHaveBeenCalledOnce();
  });
});

describe('createPageBuffer forceFlush', () => {
  it('waits for a sink that is still coming, then hands over', async () => {
    vi.useFakeTimers();
    try {
      const { sink, handed } = fakeSink();
      const buffer = createPageBuffer(cfg);
      buffer.processor.onEnd?.(span(1));
      const flushed = buffer.processor.forceFlush?.();
      await vi.advanceTimersByTimeAsync(100);
      buffer.setSink(sink);
      await flushed;
      expect(handed).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

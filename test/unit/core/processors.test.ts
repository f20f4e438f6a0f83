import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { batchProcessor, simpleProcessor } from '../../../src/core/processors';
import type { ExportResult, Exporter, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { DROPPED_RECORDS } from '../../../src/core/semconv';
import { spanRecord } from '../../helpers/records';

const record = (name: string): SpanRecord => spanRecord(1, { name });

/** An exporter that answers with the results it is given, in turn (ok once they run out). */
const scripted = (...results: ExportResult[]) => {
  const batches: TelemetryRecord[][] = [];
  const exporter: Exporter = {
    export: vi.fn(async (records: readonly TelemetryRecord[]) => {
      batches.push([...records]);
      return results.shift() ?? ({ ok: true } as ExportResult);
    }),
    shutdown: vi.fn(async () => undefined),
  };
  return { exporter, batches };
};

/** Makes the next export of a `scripted()` exporter record its batch and wait for `release()`. */
const holdNext = ({ exporter, batches }: ReturnType<typeof scripted>) => {
  let release!: () => void;
  (exporter.export as ReturnType<typeof vi.fn>).mockImplementationOnce(async (r: readonly TelemetryRecord[]) => {
    batches.push([...r]);
    await new Promise<void>((res) => (release = res));
    return { ok: true };
  });
  return () => release();
};

describe('batchProcessor', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('exports once delayMs has passed after the first record', async () => {
    const { exporter, batches } = scripted();
    const p = batchProcessor(exporter, { delayMs: 500 });
    p.onEnd?.(record('a'));
    p.onEnd?.(record('b'));
    await vi.advanceTimersByTimeAsync(499);
    expect(batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches.map((b) => b.map((r) => (r as SpanRecord).name))).toEqual([['a', 'b']]);
  });

  it('exports at once when a full batch is waiting, in batches of maxBatchSize', async () => {
    const { exporter, batches } = scripted();
    const p = batchProcessor(exporter, { maxBatchSize: 2, delayMs: 10_000 });
    for (const n of ['a', 'b', 'c', 'd', 'e']) p.onEnd?.(record(n));
    await vi.advanceTimersByTimeAsync(0);
    await p.forceFlush?.();
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
  });

  it('puts a batch back after a retryable failure and honours retryAfterMs', async () => {
    const { exporter, batches } = scripted({ ok: false, retryable: true, retryAfterMs: 5000, reason: 'HTTP 503' });
    const p = batchProcessor(exporter, { delayMs: 100 });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(100);
    expect(batches).toHaveLength(1);
    expect(p.queued()).toBe(1);
    await vi.advanceTimersByTimeAsync(4999);
    expect(batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toHaveLength(2);
    expect(p.queued()).toBe(0);
  });

  it('drops a batch the receiver refuses for good', async () => {
    const { exporter, batches } = scripted({ ok: false, retryable: false, status: 400, reason: 'HTTP 400' });
    const p = batchProcessor(exporter, { delayMs: 10 });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(batches).toHaveLength(1);
    expect(p.queued()).toBe(0);
  });

  it('sends a batch refused as too large (413) again in halves, at once, and stays below the size refused', async () => {
    const tooLarge = (): ExportResult => ({ ok: false, retryable: false, status: 413, reason: 'HTTP 413' });
    const refuseNext = () =>
      (exporter.export as ReturnType<typeof vi.fn>).mockImplementationOnce(async (r: readonly TelemetryRecord[]) => {
        batches.push([...r]);
        return tooLarge();
      });
    // 8 records refused, then 4 refused, then 2 at a time taken.
    const { exporter, batches } = scripted(tooLarge(), tooLarge());
    const results: [boolean, boolean | undefined, number][] = [];
    const p = batchProcessor(exporter, { maxBatchSize: 8, delayMs: 10_000 }, (r, records) => results.push([r.ok, r.ok ? undefined : r.retryable, records.length]));
    const send = async (prefix: string, n: number) => {
      for (let i = 0; i < n; i++) p.onEnd?.(record(`${prefix}${i}`));
      await p.forceFlush?.();
    };
    await send('r', 8);
    expect(batches.map((b) => b.length)).toEqual([8, 4, 2, 2, 2, 2]);
    expect(new Set(batches.slice(2).flat().map((r) => (r as SpanRecord).name)).size).toBe(8);
    // The splits were not losses: nothing counted as refused for good.
    expect(results.filter(([ok, retryable]) => !ok && !retryable)).toEqual([]);
    // Accepted batches do not grow back to a size the receiver refused.
    await send('s', 4);
    expect(batches.slice(6).map((b) => b.length)).toEqual([2, 2]);
    // A record refused alone is lost, and it was the cause: sizes grow back, doubling.
    refuseNext();
    await send('huge', 1);
    expect(p.queued()).toBe(0);
    expect(results.at(-1)).toEqual([false, false, 1]);
    await send('t', 8);
    expect(batches.slice(9).map((b) => b.length)).toEqual([2, 4, 2]);
  });

  it('waits between half and all of the doubling backoff, at random, without a Retry-After', async () => {
    const down: ExportResult = { ok: false, retryable: true, reason: 'HTTP 503' };
    const retryAt = async (random: number) => {
      vi.spyOn(Math, 'random').mockReturnValue(random);
      const { exporter, batches } = scripted(down, down);
      const p = batchProcessor(exporter, { delayMs: 100 });
      p.onEnd?.(record('a'));
      await vi.advanceTimersByTimeAsync(100);
      const waits: number[] = [];
      // Failures 1 and 2: backoffs of 200 and 400 ms before jitter.
      for (const n of [2, 3]) {
        let waited = 0;
        while (batches.length < n && waited < 1000) {
          await vi.advanceTimersByTimeAsync(10);
          waited += 10;
        }
        waits.push(waited);
      }
      vi.mocked(Math.random).mockRestore();
      return waits;
    };
    expect(await retryAt(0)).toEqual([100, 200]);
    expect(await retryAt(0.999)).toEqual([200, 400]);
    expect(await retryAt(0.5)).toEqual([150, 300]);
  });

  it("tells onResult each export's result with its batch, and keeps going when onResult throws", async () => {
    const { exporter, batches } = scripted({ ok: false, retryable: true, reason: 'HTTP 503' });
    const seen: [boolean, string[]][] = [];
    const p = batchProcessor(exporter, { delayMs: 10 }, (result, records) => {
      seen.push([result.ok, records.map((r) => (r as SpanRecord).name)]);
      throw new Error('a broken listener');
    });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(10);
    // The retryable batch went back to the queue despite the throw, and goes again.
    expect(p.queued()).toBe(1);
    await p.forceFlush?.();
    expect(batches).toHaveLength(2);
    expect(p.queued()).toBe(0);
    expect(seen).toEqual([
      [false, ['a']],
      [true, ['a']],
    ]);
  });

  it('drops the oldest records beyond maxQueueSize and reports the count on the next batch', async () => {
    const target = scripted();
    const { exporter, batches } = target;
    const p = batchProcessor(exporter, { maxQueueSize: 3, maxBatchSize: 3, delayMs: 1000 });
    // The first three fill a batch and export at once; hold the export so the queue backs up.
    const release = holdNext(target);
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) p.onEnd?.(record(n));
    expect(p.dropped()).toBe(2);
    // Said once, without `debug`: spans lost for good.
    expect(warned.mock.calls.map((c) => c.join(' '))).toEqual([expect.stringContaining('export queue full (3): dropping the oldest records')]);
    warned.mockRestore();
    release();
    await p.forceFlush?.();
    expect(batches[1]?.map((r) => (r as SpanRecord).name)).toEqual(['f', 'g', 'h']);
    expect((batches[1]?.[0] as SpanRecord).attrs[DROPPED_RECORDS]).toBe(2);
  });

  it('treats a rejecting exporter as retryable and keeps the records', async () => {
    const exporter: Exporter = { export: vi.fn().mockRejectedValueOnce(new Error('bug')).mockResolvedValue({ ok: true }) };
    const p = batchProcessor(exporter, { delayMs: 10 });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(10);
    expect(p.queued()).toBe(1);
    await p.forceFlush?.();
    expect(p.queued()).toBe(0);
  });

  it('shutdown flushes and shuts the exporter down', async () => {
    const { exporter, batches } = scripted();
    const p = batchProcessor(exporter);
    p.onScore?.({ v: 1, rec: 'score', id: 'x', traceId: 't', name: 'n', value: 1, timeMs: 0 });
    await p.shutdown?.();
    expect(batches).toHaveLength(1);
    expect(exporter.shutdown).toHaveBeenCalledOnce();
  });

  it('keeps to Retry-After when records keep coming, and in flush()', async () => {
    let answer!: (r: ExportResult) => void;
    const calls: number[] = [];
    const exporter: Exporter = {
      export: () => {
        calls.push(Date.now());
        return calls.length === 1 ? new Promise<ExportResult>((r) => (answer = r)) : Promise.resolve({ ok: true });
      },
    };
    const p = batchProcessor(exporter, { delayMs: 10 });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    // A record ends while the export is out, then the receiver says: not for a minute.
    p.onEnd?.(record('b'));
    answer({ ok: false, retryable: true, status: 429, retryAfterMs: 60_000, reason: 'HTTP 429' });
    await vi.advanceTimersByTimeAsync(1000);
    await p.forceFlush?.();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(calls).toHaveLength(2);
    expect(p.queued()).toBe(0);
  });

  it('keeps the drop count when the batch carrying it fails, even if that batch is dropped later', async () => {
    const target = scripted();
    const { exporter, batches } = target;
    const p = batchProcessor(exporter, { maxQueueSize: 2, maxBatchSize: 2, delayMs: 1000 });
    const release = holdNext(target);
    const mock = exporter.export as ReturnType<typeof vi.fn>;
    // a, b go out and hang; c, d, e queue behind them and c is dropped.
    for (const n of ['a', 'b', 'c', 'd', 'e']) p.onEnd?.(record(n));
    expect(p.dropped()).toBe(1);
    let carriedOnFailed: unknown;
    mock.mockImplementationOnce(async (r: readonly TelemetryRecord[]) => {
      batches.push([...r]);
      carriedOnFailed = (r[0] as SpanRecord).attrs[DROPPED_RECORDS];
      return { ok: false, retryable: true, reason: 'HTTP 503', status: 503 };
    });
    release();
    // d's arrival armed the delay timer while a, b were out.
    await vi.advanceTimersByTimeAsync(1000);
    // The failed batch [d, e] carried the count, and went back to the full queue.
    expect(carriedOnFailed).toBe(1);
    expect(p.queued()).toBe(2);
    // f pushes d, the record that had carried the count, out of the queue.
    p.onEnd?.(record('f'));
    await p.forceFlush?.();
    expect(batches[2]?.map((r) => (r as SpanRecord).name)).toEqual(['e', 'f']);
    expect((batches[2]?.[0] as SpanRecord).attrs[DROPPED_RECORDS]).toBe(2);
    expect(p.dropped()).toBe(2);
  });

  it('survives an exporter that throws synchronously or returns nothing', async () => {
    const exporter: Exporter = {
      export: vi
        .fn()
        .mockImplementationOnce(() => {
          throw new Error('no url configured');
        })
        .mockReturnValue(undefined),
    };
    const p = batchProcessor(exporter, { delayMs: 10 });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(10);
    // The throw is a retryable failure: the record waits for the next try.
    expect(p.queued()).toBe(1);
    await p.forceFlush?.();
    // Returning nothing is taken as delivered.
    expect(exporter.export).toHaveBeenCalledTimes(2);
    expect(p.queued()).toBe(0);
  });

  it('fails an export that never settles after exportTimeoutMs, so flush() returns', async () => {
    const exporter: Exporter = { export: vi.fn().mockReturnValueOnce(new Promise(() => undefined)).mockResolvedValue({ ok: true }) };
    const p = batchProcessor(exporter, { delayMs: 10, exportTimeoutMs: 5000 });
    p.onEnd?.(record('a'));
    await vi.advanceTimersByTimeAsync(10);
    let flushed = false;
    const flushing = p.forceFlush!().then(() => (flushed = true));
    await vi.advanceTimersByTimeAsync(4_000);
    expect(flushed).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    await flushing;
    expect(exporter.export).toHaveBeenCalledTimes(2);
    expect(p.queued()).toBe(0);
  });

  it('gives up a flush after three failed attempts instead of hanging', async () => {
    const fail: ExportResult = { ok: false, retryable: true, reason: 'down' };
    const { exporter, batches } = scripted(fail, fail, fail, fail);
    const p = batchProcessor(exporter);
    p.onEnd?.(record('a'));
    await p.forceFlush?.();
    expect(batches).toHaveLength(3);
    expect(p.queued()).toBe(1);
  });
});

describe('simpleProcessor', () => {
  it('exports each record at once and waits for them on flush', async () => {
    const { exporter, batches } = scripted();
    const p = simpleProcessor(exporter);
    p.onEnd?.(record('a'));
    p.onEnd?.(record('b'));
    await p.forceFlush?.();
    expect(batches.map((b) => b.length)).toEqual([1, 1]);
  });

  it('survives an exporter that throws synchronously', async () => {
    const exporter: Exporter = {
      export: () => {
        throw new Error('no url configured');
      },
    };
    const p = simpleProcessor(exporter);
    p.onEnd?.(record('a'));
    await expect(p.forceFlush?.()).resolves.toBeUndefined();
  });
});

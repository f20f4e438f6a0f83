import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import type { SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { createOutbox, type OutboxLimits } from '../../../worker/Outbox';
import { spanRecord } from '../../helpers/records';

let dbCount = 0;
const limits: OutboxLimits = { maxRecords: 1000, maxBytes: 10_000_000, maxAgeMs: 60_000, maxDeadLetters: 2 };
const fresh = (over: Partial<OutboxLimits> = {}) => createOutbox(() => ({ ...limits, ...over }), `test-${++dbCount}`);

const span = (i: number, attrs: SpanRecord['attrs'] = {}): SpanRecord => spanRecord(i, { attrs });
const spans = (from: number, n: number): TelemetryRecord[] => Array.from({ length: n }, (_, i) => span(from + i));
const names = (rs: readonly TelemetryRecord[]) => rs.map((r) => (r.rec === 'span' ? r.name : r.id));

describe('Outbox', () => {
  it('commits a batch and hands it back in order, bounded by count', async () => {
    const box = fresh();
    expect(await box.append(spans(0, 5), 0)).toBe(5);
    expect(await box.append(spans(5, 5), 0)).toBe(5);
    const batch = await box.takeBatch(7, 1e9, 0);
    expect(names(batch.records)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5', 's6']);
    expect((await box.stats()).count).toBe(10);
  });

  it('removes records only when settled, trimming a chunk that was partly sent', async () => {
    const box = fresh();
    await box.append(spans(0, 5), 0);
    await box.append(spans(5, 5), 0);
    const batch = await box.takeBatch(7, 1e9, 0);
    await box.settle(batch, 0, 7, { delivered: 7 });
    const rest = await box.takeBatch(100, 1e9, 0);
    expect(names(rest.records)).toEqual(['s7', 's8', 's9']);
    const s = await box.stats();
    expect(s).toMatchObject({ count: 3, delivered: 7 });
  });

  it('settles a batch in parts, front first (413 splitting)', async () => {
    const box = fresh();
    await box.append(spans(0, 4), 0);
    await box.append(spans(4, 4), 0);
    const batch = await box.takeBatch(8, 1e9, 0);
    await box.settle(batch, 0, 2, { delivered: 2 });
    await box.settle(batch, 2, 6, { delivered: 4 });
    expect(names((await box.takeBatch(100, 1e9, 0)).records)).toEqual(['s6', 's7']);
  });

  it('bounds a batch by estimated bytes, but always takes at least one record', async () => {
    const box = fresh();
    await box.append([span(0, { big: 'x'.repeat(5000) }), ...spans(1, 3)], 0);
    const one = await box.takeBatch(100, 100, 0);
    expect(names(one.records)).toEqual(['s0']);
    const size = one.sizes[0]!;
    expect(size).toBeGreaterThan(5000);
  });

  it('drops the oldest beyond maxRecords, counts them, and stamps the count on the next batch', async () => {
    const box = fresh({ maxRecords: 5 });
    expect(await box.append(spans(0, 4), 0)).toBe(4);
    expect(await box.append(spans(4, 4), 0)).toBe(4);
    const batch = await box.takeBatch(100, 1e9, 0);
    expect(names(batch.records)).toEqual(['s3', 's4', 's5', 's6', 's7']);
    expect((batch.records[0] as SpanRecord).attrs['edgetrace.dropped_records']).toBe(3);
    // The stored record is untouched: a re-send carries the count again, not twice.
    const again = await box.takeBatch(100, 1e9, 0);
    expect((again.records[0] as SpanRecord).attrs['edgetrace.dropped_records']).toBe(3);
    await box.settle(batch, 0, 5, { delivered: 5 });
    expect(await box.stats()).toMatchObject({ dropped: 0, droppedTotal: 3, count: 0 });
  });

  it('counts records a bound evicted while they were in flight as delivered once they arrive, not dropped', async () => {
    const box = fresh({ maxRecords: 5 });
    await box.append(spans(0, 5), 0);
    const batch = await box.takeBatch(100, 1e9, 0);
    // While the request is out, five newer records push the five being sent out of the outbox.
    await box.append(spans(5, 5), 0);
    expect(await box.stats()).toMatchObject({ droppedTotal: 5 });
    await box.settle(batch, 0, 5, { delivered: 5 });
    expect(await box.stats()).toMatchObject({ delivered: 5, dropped: 0, droppedTotal: 0, count: 5 });
    const next = await box.takeBatch(100, 1e9, 0);
    expect((next.records[0] as SpanRecord).attrs['edgetrace.dropped_records']).toBeUndefined();
  });

  it('keeps the drop count to report when the batch that carried it is dead-lettered', async () => {
    const box = fresh({ maxRecords: 5 });
    await box.append(spans(0, 8), 0);
    const batch = await box.takeBatch(2, 1e9, 0);
    expect((batch.records[0] as SpanRecord).attrs['edgetrace.dropped_records']).toBe(3);
    await box.settle(batch, 0, 2, { dead: 'HTTP 400', status: 400, atMs: 0 });
    const next = await box.takeBatch(100, 1e9, 0);
    expect((next.records[0] as SpanRecord).attrs['edgetrace.dropped_records']).toBe(3);
  });

  it('accepts only what fits when one batch is larger than the bound', async () => {
    const box = fresh({ maxRecords: 3 });
    expect(await box.append(spans(0, 5), 0)).toBe(3);
    expect(names((await box.takeBatch(100, 1e9, 0)).records)).toEqual(['s2', 's3', 's4']);
  });

  it('drops by bytes too', async () => {
    const probe = fresh();
    await probe.append(spans(0, 1), 0);
    const one = (await probe.stats()).bytes;
    const box = fresh({ maxBytes: one * 3 });
    await box.append(spans(0, 5), 0);
    expect(await box.stats()).toMatchObject({ count: 3, droppedTotal: 2 });
  });

  it('drops records older than maxAgeMs when taking a batch', async () => {
    const box = fresh({ maxAgeMs: 1000 });
    await box.append(spans(0, 2), 0);
    await box.append(spans(2, 2), 5000);
    const batch = await box.takeBatch(100, 1e9, 5500);
    expect(names(batch.records)).toEqual(['s2', 's3']);
    expect(await box.stats()).toMatchObject({ count: 2, droppedTotal: 2 });
  });

  it('moves refused records to a bounded dead-letter store', async () => {
    const box = fresh();
    for (let i = 0; i < 3; i++) {
      await box.append(spans(i * 2, 2), 0);
      const batch = await box.takeBatch(100, 1e9, 0);
      await box.settle(batch, 0, 2, { dead: `HTTP 400 #${i}`, status: 400, atMs: i });
    }
    const dead = await box.deadLetters();
    expect(dead.map((d) => d.reason)).toEqual(['HTTP 400 #1', 'HTTP 400 #2']);
    expect(names(dead[1]!.records)).toEqual(['s4', 's5']);
    expect(await box.stats()).toMatchObject({ count: 0, deadLettered: 6 });
  });

  it('counts a partial success as the accepted records delivered and the rest rejected', async () => {
    const box = fresh();
    await box.append(spans(0, 3), 0);
    const batch = await box.takeBatch(100, 1e9, 0);
    await box.settle(batch, 0, 3, { delivered: 3, rejected: 1 });
    expect(await box.stats()).toMatchObject({ delivered: 2, rejected: 1, count: 0 });
  });

  it('on QuotaExceededError evicts the oldest half and retries once, then drops and counts', async () => {
    const box = fresh();
    await box.append(spans(0, 4), 0);
    const proto = IDBObjectStore.prototype;
    const add = proto.add;
    let failures = 1;
    proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
      if (failures-- > 0) throw new DOMException('quota', 'QuotaExceededError');
      return add.apply(this, args);
    };
    try {
      expect(await box.append(spans(4, 2), 0)).toBe(2);
      expect(await box.stats()).toMatchObject({ count: 4, droppedTotal: 2 });
      failures = 2;
      expect(await box.append(spans(6, 2), 0)).toBe(0);
    } finally {
      proto.add = add;
    }
    // Two evictions of half the outbox (2 each), then the batch itself (2).
    expect(await box.stats()).toMatchObject({ droppedTotal: 6, count: 2 });
  });

  it('leaves no unhandled rejection behind when a write aborts its transaction', async () => {
    const box = fresh();
    await box.append(spans(0, 2), 0);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const proto = IDBObjectStore.prototype;
    const add = proto.add;
    // What a full disk does in a browser (or iOS, to a backgrounded page): the write's request
    // fails and the transaction aborts, after the request was made.
    proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
      const request = add.apply(this, args);
      this.transaction.abort();
      return request;
    };
    try {
      await expect(box.append(spans(2, 2), 0)).rejects.toMatchObject({ name: 'AbortError' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      proto.add = add;
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    // Nothing of the aborted write was kept, and the outbox goes on.
    expect(await box.append(spans(4, 1), 0)).toBe(1);
    expect(names((await box.takeBatch(100, 1e9, 0)).records)).toEqual(['s0', 's1', 's4']);
  });

  it('remembers the delivery target', async () => {
    const box = fresh();
    expect(await box.loadTarget()).toBeUndefined();
    await box.saveTarget({ endpoint: 'https://x.test/v1/traces', headers: { a: 'b' } });
    expect(await box.loadTarget()).toEqual({ endpoint: 'https://x.test/v1/traces', headers: { a: 'b' } });
  });

  it('keeps the flusher\'s waits with its counters, for another instance to read', async () => {
    const name = `hold-${++dbCount}`;
    const a = createOutbox(() => limits, name);
    await a.append(spans(0, 2), 0);
    await a.hold([5000, 4000]);
    await a.append(spans(2, 1), 0);
    a.close();
    const b = createOutbox(() => limits, name);
    expect(await b.stats()).toMatchObject({ count: 3, hold: [5000, 4000] });
  });

  it('steps aside when another context opens the database at a newer version', async () => {
    const name = `upgrade-${++dbCount}`;
    const box = createOutbox(() => limits, name);
    await box.append(spans(0, 1), 0);
    const upgraded = await new Promise<string>((resolve) => {
      const request = indexedDB.open(name, 2);
      request.onblocked = () => resolve('blocked');
      request.onsuccess = () => {
        request.result.close();
        resolve('opened');
      };
    });
    expect(upgraded).toBe('opened');
  });

  it('shares one database across instances (the worker and page tabs)', async () => {
    const name = `shared-${++dbCount}`;
    const a = createOutbox(() => limits, name);
    const b = createOutbox(() => limits, name);
    await a.append(spans(0, 2), 0);
    await b.append(spans(2, 2), 0);
    expect(names((await a.takeBatch(100, 1e9, 0)).records)).toEqual(['s0', 's1', 's2', 's3']);
    expect((await b.stats()).count).toBe(4);
  });
});

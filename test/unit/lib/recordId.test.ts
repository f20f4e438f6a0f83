import { describe, expect, it } from 'vitest';
import { takenIds } from '../../../src/lib/recordId';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import { spanRecord } from '../../helpers/records';

/** `n` spans of trace `k`: batches of different traces have no record in common. */
const batchOf = (n: number, k = 1): SpanRecord[] => Array.from({ length: n }, (_, i) => spanRecord(i + 1, { traceId: k.toString(16).padStart(32, '0') }));

describe('takenIds', () => {
  it('leaves out of a retried batch what the receiver took, and forgets it once the batch is done', () => {
    const taken = takenIds();
    const batch = batchOf(4);
    expect(taken.fresh(batch)).toBe(batch);
    taken.settle(batch, batch.slice(0, 3), true);
    expect(taken.fresh(batch)).toEqual([batch[3]]);
    taken.settle(batch, [batch[3]!], false);
    expect(taken.fresh(batch)).toBe(batch);
  });

  it('tells spans apart by trace and span id, and scores by id', () => {
    const taken = takenIds();
    const span = spanRecord(1);
    const sameSpanIdOtherTrace = { ...span, traceId: 'f'.repeat(32) };
    const score = { v: 1, rec: 'score', id: span.spanId, traceId: span.traceId, name: 'n', value: 1, timeMs: 1 } as ScoreRecord;
    taken.settle([span, sameSpanIdOtherTrace, score], [span], true);
    expect(taken.fresh([span, sameSpanIdOtherTrace, score])).toEqual([sameSpanIdOtherTrace, score]);
  });

  it("keeps the first batch of a long outage in mind while the newest come in, and lets the oldest go past its bound", () => {
    const taken = takenIds();
    // Another receiver is down: every batch of 512 comes back, each taken whole by this one.
    const batches = Array.from({ length: 120 }, (_, k) => batchOf(512, k + 1));
    for (const b of batches.slice(0, 21)) taken.settle(b, b, true);
    expect(taken.fresh(batches[0]!)).toEqual([]);
    for (const b of batches.slice(21)) taken.settle(b, b, true);
    // 61,440 ids taken, the last 50,000 kept: 22 batches and part of the 23rd are forgotten.
    expect(taken.fresh(batches[0]!)).toHaveLength(512);
    expect(taken.fresh(batches[21]!)).toHaveLength(512);
    expect(taken.fresh(batches[23]!)).toHaveLength(0);
    expect(taken.fresh(batches[119]!)).toHaveLength(0);
  });

  it('keeps what a batch still being retried took, while batches of others come and go', () => {
    const taken = takenIds();
    const mine = batchOf(512, 1_000);
    taken.settle(mine, mine.slice(0, 256), true);
    for (let k = 0; k < 120; k++) {
      const other = batchOf(512, k + 1);
      taken.settle(other, other, true);
      // Every tenth round my batch comes back and fails again, taking nothing new.
      if (k % 10 === 9) taken.settle(mine, [], true);
    }
    expect(taken.fresh(mine)).toEqual(mine.slice(256));
  });
});

import { describe, expect, it } from 'vitest';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import { packRecords, unpackRecords } from '../../../src/transport/packRecords';
import { testTracer } from '../../helpers/collect';

describe('packRecords', () => {
  it('round-trips the records a tracer makes, spans and scores', () => {
    const t = testTracer();
    const trace = t.tracer.createTrace({ name: 'root', userId: 'u1' });
    trace.span('child', (s) => {
      s.setAttribute('k', 1);
      s.recordEvent?.('evt', { a: 'b' });
    });
    trace.score('helpfulness', 1);
    trace.finish();
    const records = [...t.spans, ...t.scores];
    const back = unpackRecords(structuredClone(packRecords(records)));
    // Compared as plain data, which is what crosses postMessage either way.
    expect(back).toEqual(structuredClone(records));
  });

  it('keeps optional fields absent rather than undefined', () => {
    const span: SpanRecord = {
      v: 1, rec: 'span', traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: 1, name: 'n', kind: 'client',
      startMs: 1, endMs: 2, attrs: {}, events: [], links: [], status: { code: 'ok' }, resource: { attrs: {}, scope: { name: 's' } },
    };
    const [back] = unpackRecords(packRecords([span]));
    expect(Object.keys(back!).sort()).toEqual(Object.keys(span).sort());
    const score: ScoreRecord = { v: 1, rec: 'score', id: 'x', traceId: 'a'.repeat(32), name: 'n', value: 1, timeMs: 1 };
    expect(unpackRecords(packRecords([score]))).toEqual([score]);
  });
});

import { describe, expect, it } from 'vitest';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import { packRecords, unpackRecords } from '../../../src/transport/packRecords';
import { testTracer } from '../../helpers/collect';
import { spanRecord } from '../../helpers/records';

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

  it('carries the fields most spans leave unset, and a second resource, only where a span has them', () => {
    const base = spanRecord(1, { spanId: 'b'.repeat(16), name: 'plain', attrs: { k: 1 }, resource: { attrs: { 'service.name': 'one' }, scope: { name: 's' } } });
    const unusual: SpanRecord = {
      ...base, spanId: 'c'.repeat(16), name: 'unusual', remoteParent: true, traceState: 'k=v', dropped: { attrs: 2 },
      status: { code: 'error', message: 'boom' }, links: [{ traceId: 'd'.repeat(32), spanId: 'e'.repeat(16), attrs: {} }],
      resource: { attrs: { 'service.name': 'two' }, scope: { name: 's' } },
    };
    const packed = packRecords([base, unusual, base]);
    // Only the unusual span has an entry, and its entry holds only what differs.
    expect(packed.rare.length).toBe(2);
    expect(packed.rare[0]).toBe(1);
    expect(Object.keys(packed.rare[1] as object).sort()).toEqual(['dropped', 'links', 'remoteParent', 'resource', 'status', 'traceState']);
    expect(unpackRecords(structuredClone(packed))).toEqual([base, unusual, base]);
  });

  it('refuses a packed format it does not know, so the page keeps the records', () => {
    const packed = { ...packRecords([]), packed: 1 } as unknown as Parameters<typeof unpackRecords>[0];
    expect(() => unpackRecords(packed)).toThrow(/unknown packed format/);
  });
});

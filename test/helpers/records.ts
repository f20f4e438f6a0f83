import type { ScoreRecord, SpanRecord } from '../../src/protocol';

/**
 * A finished span record for tests: span `i` of one trace (its id is `i` in hex), named `s<i>`,
 * with `over` applied last.
 */
export const spanRecord = (i = 1, over: Partial<SpanRecord> = {}): SpanRecord => ({
  v: 1,
  rec: 'span',
  traceId: 'a'.repeat(32),
  spanId: i.toString(16).padStart(16, '0'),
  flags: 1,
  name: `s${i}`,
  kind: 'internal',
  startMs: 1,
  endMs: 2,
  attrs: {},
  events: [],
  links: [],
  status: { code: 'unset' },
  resource: { attrs: {}, scope: { name: 'test' } },
  ...over,
});

/** A score record for tests. */
export const scoreRecord = (over: Partial<ScoreRecord> = {}): ScoreRecord => ({
  v: 1,
  rec: 'score',
  id: 'score-1',
  traceId: 'a'.repeat(32),
  name: 'helpfulness',
  value: 1,
  timeMs: 1,
  ...over,
});

import { describe, it, expect } from 'vitest';
import { decodeOtlp } from '../../../src/server/collector/decodeOtlp';
import { decodeScores } from '../../../src/server/collector/decodeScores';
import { otlpBody, spanRecord } from './otlpFixtures';

const one = (span: Record<string, unknown>, resource: unknown = { attributes: [] }) => ({
  resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 's' }, spans: [span] }] }],
});

const good = {
  traceId: '4BF92F3577B34DA6A3CE929D0E0E4736',
  spanId: '00f067aa0ba902b7',
  name: 'op',
  kind: 2,
  startTimeUnixNano: '1732140000000500000',
  endTimeUnixNano: 1732140000012000000,
};

describe('decodeOtlp', () => {
  it('reads what the encoder writes back into the same records', () => {
    const records = [
      spanRecord({
        kind: 'server',
        parentId: '1111111111111111',
        remoteParent: true,
        traceState: 'a=1',
        flags: 3,
        attrs: { s: 'x', n: 7, d: 1.5, b: true, list: ['a', 'b'], nums: [1, 2] },
        events: [{ name: 'exception', timeMs: 1_732_140_000_005.25, attrs: { 'exception.message': 'm' } }],
        links: [{ traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), flags: 1, attrs: { k: 'v' } }],
        status: { code: 'error', message: 'bad' },
        dropped: { attrs: 2, events: 0, links: 1 },
      }),
      spanRecord({ status: { code: 'ok' } }),
    ];
    const result = decodeOtlp(JSON.parse(JSON.stringify(otlpBody(records))));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.rejected).toBe(0);
    expect(result.spans).toHaveLength(2);
    const [a] = result.spans;
    const want = records[0]!;
    expect(a).toMatchObject({
      traceId: want.traceId,
      spanId: want.spanId,
      parentId: want.parentId,
      remoteParent: true,
      traceState: 'a=1',
      flags: 3,
      kind: 'server',
      name: want.name,
      attrs: want.attrs,
      links: want.links,
      status: want.status,
      dropped: want.dropped,
      resource: { attrs: { 'service.name': 'web' }, scope: { name: 'edgetrace', version: '0.1.0' } },
    });
    expect(a!.startMs).toBeCloseTo(want.startMs, 3);
    expect(a!.events[0]!.timeMs).toBeCloseTo(1_732_140_000_005.25, 3);
  });

  it('accepts uppercase hex and numbers for 64-bit fields, and lower-cases ids', () => {
    const r = decodeOtlp(one(good));
    expect(r.ok && r.spans[0]).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', kind: 'server', startMs: 1732140000000.5, endMs: 1732140000012 });
  });

  it('reads every AnyValue kind; nested values become JSON text', () => {
    const attributes = [
      { key: 's', value: { stringValue: 'x' } },
      { key: 'b', value: { boolValue: false } },
      { key: 'i', value: { intValue: '42' } },
      { key: 'big', value: { intValue: '9007199254740993' } },
      { key: 'd', value: { doubleValue: 'NaN' } },
      { key: 'arr', value: { arrayValue: { values: [{ intValue: 1 }, { intValue: 2 }] } } },
      { key: 'mixed', value: { arrayValue: { values: [{ intValue: 1 }, { stringValue: 'a' }] } } },
      { key: 'kv', value: { kvlistValue: { values: [{ key: 'k', value: { stringValue: 'v' } }] } } },
      { key: 'bytes', value: { bytesValue: 'AAEC' } },
      { key: 'empty', value: {} },
    ];
    const r = decodeOtlp(one({ ...good, attributes }));
    if (!r.ok) throw new Error(r.message);
    const attrs = r.spans[0]!.attrs;
    expect(attrs).toMatchObject({ s: 'x', b: false, i: 42, big: '9007199254740993', arr: [1, 2], mixed: '[1,"a"]', kv: '{"k":"v"}', bytes: 'AAEC' });
    expect(Number.isNaN(attrs.d)).toBe(true);
    expect('empty' in attrs).toBe(false);
  });

  it('accepts what the proto3 JSON mapping allows: 32-bit counts as strings, URL-safe or unpadded base64', () => {
    const attributes = [
      { key: 'unpadded', value: { bytesValue: 'aGVsbG8' } },
      { key: 'urlsafe', value: { bytesValue: '_-8=' } },
    ];
    const r = decodeOtlp(one({ ...good, flags: '257', droppedAttributesCount: '3', attributes }));
    if (!r.ok) throw new Error(r.message);
    expect(r.rejected).toBe(0);
    // Stored (and forwarded) as standard, padded base64.
    expect(r.spans[0]!.attrs).toMatchObject({ unpadded: 'aGVsbG8=', urlsafe: '/+8=' });
    expect(r.spans[0]!.flags).toBe(1);
    for (const bad of [{ flags: '0x101' }, { flags: '99999999999' }, { attributes: [{ key: 'b', value: { bytesValue: 'a' } }] }]) {
      const refused = decodeOtlp(one({ ...good, ...bad }));
      expect(refused.ok && refused.rejected, JSON.stringify(bad)).toBe(1);
    }
  });

  it('takes int64 and double values within the mapping only: 64-bit range, decimal text, empty lists as lists', () => {
    const attributes = [
      { key: 'max', value: { intValue: '9223372036854775807' } },
      { key: 'min', value: { intValue: '-9223372036854775808' } },
      { key: 'exp', value: { doubleValue: '2.5e-3' } },
      { key: 'none', value: { arrayValue: { values: [] } } },
    ];
    const r = decodeOtlp(one({ ...good, attributes }));
    if (!r.ok) throw new Error(r.message);
    expect(r.rejected).toBe(0);
    expect(r.spans[0]!.attrs).toEqual({ max: '9223372036854775807', min: '-9223372036854775808', exp: 0.0025, none: [] });
    const refusals = [
      [{ intValue: '9223372036854775808' }, 'intValue must be a 64-bit integer'],
      [{ intValue: '-9223372036854775809' }, 'intValue must be a 64-bit integer'],
      [{ intValue: '99999999999999999999' }, 'intValue must be a 64-bit integer'],
      [{ intValue: 1e300 }, 'intValue must be a 64-bit integer'],
      [{ doubleValue: '0x1F' }, 'doubleValue must be a number'],
      [{ doubleValue: '0b11' }, 'doubleValue must be a number'],
      [{ doubleValue: ' 5' }, 'doubleValue must be a number'],
      [{ doubleValue: '1e999' }, 'doubleValue must be a number'],
    ] as const;
    for (const [value, message] of refusals) {
      const refused = decodeOtlp(one({ ...good, attributes: [{ key: 'k', value }] }));
      expect(refused.ok && refused.errors.join(' '), JSON.stringify(value)).toContain(`attributes[0].value.${message}`);
    }
  });

  it('refuses a time beyond 64 bits of nanoseconds, naming the field', () => {
    const r = decodeOtlp(one({ ...good, startTimeUnixNano: 1e30, endTimeUnixNano: 1e30 }));
    expect(r.ok && r.rejected).toBe(1);
    expect(r.ok && r.errors.join(' ')).toMatch(/startTimeUnixNano must fit in 64 bits/);
  });

  it('keeps an attribute named __proto__ as an attribute, also inside a kvlist', () => {
    const attributes = [
      { key: '__proto__', value: { stringValue: 'x' } },
      { key: 'kv', value: { kvlistValue: { values: [{ key: '__proto__', value: { stringValue: 'y' } }] } } },
    ];
    const r = decodeOtlp(one({ ...good, attributes }));
    if (!r.ok) throw new Error(r.message);
    const attrs = r.spans[0]!.attrs;
    expect(Object.getPrototypeOf(attrs)).toBe(Object.prototype);
    expect(Object.keys(attrs)).toEqual(['__proto__', 'kv']);
    expect(JSON.parse(JSON.stringify(attrs))).toEqual(JSON.parse('{"__proto__":"x","kv":"{\\"__proto__\\":\\"y\\"}"}'));
  });

  it('rejects bad spans one by one and keeps the rest', () => {
    const spans = [
      good,
      { ...good, traceId: '0'.repeat(32) },
      { ...good, spanId: 'xyz' },
      { ...good, name: 5 },
      { ...good, kind: 'SPAN_KIND_SERVER' },
      { ...good, startTimeUnixNano: '1.5e18' },
      { ...good, endTimeUnixNano: '-1' },
      { ...good, attributes: [{ key: 'a', value: { stringValue: 'x', intValue: '1' } }] },
      { ...good, attributes: [{ key: 'a', value: { stringValue: 5 } }] },
      { ...good, status: { code: 4 } },
      { ...good, parentSpanId: '0000000000000000' },
      'not a span',
    ];
    const r = decodeOtlp({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
    if (!r.ok) throw new Error(r.message);
    expect(r.spans).toHaveLength(1);
    expect(r.rejected).toBe(11);
    expect(r.errors).toHaveLength(10);
    expect(r.errors[0]).toBe('resourceSpans[0].scopeSpans[0].spans[1].traceId must be 32 hex characters, not all zero');
    expect(r.errors).toContain('resourceSpans[0].scopeSpans[0].spans[4].kind must be an integer from 0 to 5 (enum names are not OTLP/JSON)');
    expect(r.errors).toContain('resourceSpans[0].scopeSpans[0].spans[7].attributes[0].value must hold one value, has stringValue and intValue');
  });

  it('takes an empty or missing span or event name as the unknown name, as trace.proto does', () => {
    const { name: _name, ...unnamed } = good;
    const spans = [{ ...good, name: '' }, { ...unnamed, spanId: 'b'.repeat(16), events: [{ timeUnixNano: '1732140000005250000' }] }];
    const r = decodeOtlp({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
    if (!r.ok) throw new Error(r.message);
    expect(r.errors).toEqual([]);
    expect(r.spans.map((sp) => sp.name)).toEqual(['', '']);
    expect(r.spans[1]!.events).toEqual([{ name: '', timeMs: 1_732_140_000_005.25 }]);
  });

  it('rejects a malformed envelope as a whole, naming the path', () => {
    expect(decodeOtlp([])).toEqual({ ok: false, message: 'the body must be a JSON object (an OTLP ExportTraceServiceRequest)' });
    expect(decodeOtlp({ resourceSpans: {} })).toEqual({ ok: false, message: 'resourceSpans must be an array' });
    expect(decodeOtlp({ resource_spans: [] })).toMatchObject({ ok: false, message: expect.stringContaining('lowerCamelCase') });
    expect(decodeOtlp({ resourceSpans: [{ scopeSpans: 5 }] })).toEqual({ ok: false, message: 'resourceSpans[0].scopeSpans must be an array' });
    expect(decodeOtlp({ resourceSpans: [{ resource: { attributes: [{ key: '' }] } }] })).toEqual({
      ok: false,
      message: 'resourceSpans[0].resource.attributes[0].key must be a non-empty string',
    });
    expect(decodeOtlp({ resourceSpans: [{ scopeSpans: [{ scope: { name: 1 } }] }] })).toMatchObject({ ok: false });
  });

  it('accepts an empty request', () => {
    expect(decodeOtlp({})).toEqual({ ok: true, spans: [], rejected: 0, errors: [] });
    expect(decodeOtlp({ resourceSpans: [] })).toEqual({ ok: true, spans: [], rejected: 0, errors: [] });
  });

  it('leaves out what is past a bound and counts it, keeping the span', () => {
    const nest = (levels: number): Record<string, unknown> => {
      let v: Record<string, unknown> = { stringValue: 'x' };
      for (let i = 0; i < levels; i++) v = { arrayValue: { values: [v] } };
      return v;
    };
    const ints = (n: number) => ({ arrayValue: { values: Array.from({ length: n }, (_, i) => ({ intValue: i })) } });
    const attributes = [
      { key: 'deep', value: nest(20) },
      { key: 'fits', value: nest(7) },
      // A 1,536-float embedding (the common size) is kept; one past maxArrayValues goes whole.
      { key: 'embedding', value: ints(1536) },
      { key: 'huge', value: ints(8193) },
      { key: 'map', value: { kvlistValue: { values: Array.from({ length: 1025 }, (_, i) => ({ key: `k${i}`, value: { intValue: i } })) } } },
      { key: 'last', value: { boolValue: true } },
    ];
    const r = decodeOtlp(one({ ...good, attributes, droppedAttributesCount: 2 }));
    if (!r.ok) throw new Error(r.message);
    expect(r.rejected).toBe(0);
    const span = r.spans[0]!;
    expect(Object.keys(span.attrs)).toEqual(['fits', 'embedding', 'last']);
    expect(span.attrs.embedding).toHaveLength(1536);
    // The sender's own count plus the three left out here.
    expect(span.dropped).toEqual({ attrs: 5, events: 0, links: 0 });

    // A limit given as undefined (an option read from an unset variable) is the default.
    const unset = decodeOtlp(one({ ...good, attributes }), { maxDepth: undefined, maxAttributes: undefined, maxArrayValues: undefined });
    expect(unset.ok && Object.keys(unset.spans[0]!.attrs)).toEqual(['fits', 'embedding', 'last']);

    // Past the counts: the first ones stay, in order.
    const many = Array.from({ length: 3 }, (_, i) => ({ key: `k${i}`, value: { intValue: i } }));
    const events = Array.from({ length: 3 }, (_, i) => ({ name: `e${i}`, timeUnixNano: good.startTimeUnixNano, attributes: many }));
    const links = Array.from({ length: 3 }, (_, i) => ({ traceId: 'c'.repeat(32), spanId: `${i + 1}`.repeat(16), attributes: many }));
    const r2 = decodeOtlp(one({ ...good, attributes: many, events, links, droppedEventsCount: 1 }), { maxAttributes: 2, maxEvents: 2, maxLinks: 1 });
    if (!r2.ok) throw new Error(r2.message);
    const cut = r2.spans[0]!;
    expect(Object.keys(cut.attrs)).toEqual(['k0', 'k1']);
    expect(cut.events.map((e) => [e.name, e.droppedAttrs])).toEqual([
      ['e0', 1],
      ['e1', 1],
    ]);
    expect(cut.links.map((l) => [l.spanId, l.droppedAttrs])).toEqual([['1'.repeat(16), 1]]);
    expect(cut.dropped).toEqual({ attrs: 1, events: 2, links: 2 });
    // A malformed value is still an error, not a bound, and the span goes; past the count it is
    // not read at all.
    const malformed = decodeOtlp(one({ ...good, attributes: [...many, { key: 'x', value: { boolValue: 1 } }] }), { maxAttributes: 2 });
    expect(malformed.ok && malformed.rejected).toBe(0);
    const malformedFirst = decodeOtlp(one({ ...good, attributes: [{ key: 'x', value: { boolValue: 1 } }, ...many] }), { maxAttributes: 2 });
    expect(malformedFirst.ok && malformedFirst.rejected).toBe(1);
  });

  it('takes an end before the start as no duration, and keeps only the W3C byte of link flags', () => {
    const r = decodeOtlp(one({ ...good, endTimeUnixNano: '1732139999000000000', links: [{ traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), flags: 0x301 }] }));
    if (!r.ok) throw new Error(r.message);
    expect(r.spans[0]!.endMs).toBe(r.spans[0]!.startMs);
    expect(r.spans[0]!.links[0]!.flags).toBe(1);
  });

  it('never throws, whatever it is given', () => {
    const seeds: unknown[] = [null, 0, 'x', true, [], {}, { resourceSpans: null }, { resourceSpans: [null] }, { resourceSpans: [[]] }];
    const values: unknown[] = [null, undefined, 0, -1, 1e300, 'x', '', true, [], {}, [[]], { a: 1 }, '0'.repeat(32), 'f'.repeat(16)];
    const keys = ['traceId', 'spanId', 'parentSpanId', 'name', 'kind', 'startTimeUnixNano', 'endTimeUnixNano', 'attributes', 'events', 'links', 'status', 'flags'];
    let n = 0;
    for (const s of seeds) expect(() => decodeOtlp(s)).not.toThrow();
    // Each field of a good span replaced by each odd value, and pairs of them.
    for (const k of keys) {
      for (const v of values) {
        for (const k2 of keys) {
          const span = { ...good, [k]: v, [k2]: values[(n++ * 7) % values.length] };
          const r = decodeOtlp(one(span));
          expect(r.ok).toBe(true);
        }
      }
    }
    // Events, links and attributes filled with odd values.
    for (const v of values) {
      for (const k of ['events', 'links', 'attributes']) {
        const r = decodeOtlp(one({ ...good, [k]: [v, { name: v, key: v, value: v, traceId: v, spanId: v, timeUnixNano: v }] }));
        expect(r.ok).toBe(true);
      }
    }
  });
});

describe('decodeScores', () => {
  const score = { v: 1, rec: 'score', id: 's1', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', name: 'helpful', value: 1, timeMs: 1732140000000 };

  it('reads an array or {scores}, rejecting bad records one by one', () => {
    expect(decodeScores([score])).toMatchObject({ ok: true, rejected: 0, scores: [score] });
    const r = decodeScores({ scores: [score, { ...score, traceId: 'x' }, { ...score, value: {} }, { ...score, dataType: 'X' }, 5] });
    expect(r).toMatchObject({ ok: true, rejected: 4 });
    if (r.ok) expect(r.errors[0]).toBe('scores[1].traceId must be 32 lowercase hex characters');
    expect(decodeScores({})).toMatchObject({ ok: false });
  });

  it('keeps metadata and a config id, and names what is wrong with them', () => {
    const good = { ...score, metadata: { model: 'gpt-4o', k: 3 }, configId: 'cfg-1' };
    expect(decodeScores([good])).toMatchObject({ ok: true, rejected: 0, scores: [good] });
    const r = decodeScores([{ ...score, metadata: 'x' }, { ...score, metadata: [1] }, { ...score, metadata: { t: 'x'.repeat(20_000) } }, { ...score, configId: '' }, { ...score, configId: 5 }]);
    expect(r).toMatchObject({ ok: true, rejected: 5, scores: [] });
    if (r.ok) {
      expect(r.errors.slice(0, 3)).toEqual(Array.from({ length: 3 }, (_, i) => `scores[${i}].metadata must be an object of at most 16384 characters as JSON`));
      expect(r.errors[3]).toBe('scores[3].configId must be a string of 1 to 800 characters');
    }
  });
});

import { describe, it, expect } from 'vitest';
import type { ResourceRecord, SpanRecord } from '../../../src/protocol';
import {
  encodeOtlp,
  msToNanos,
  parseOtlpResponse,
  toAnyValue,
  toKeyValues,
  toOtlpJson,
} from '../../../src/export/otlp';

const RESOURCE: ResourceRecord = { attrs: { 'service.name': 'chat-web' }, scope: { name: 'edgetrace', version: '0.1.0' } };

let seq = 0;
const span = (over: Partial<SpanRecord> = {}): SpanRecord => {
  seq++;
  return {
    v: 1,
    rec: 'span',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: seq.toString(16).padStart(16, '0'),
    flags: 1,
    name: `span-${seq}`,
    kind: 'internal',
    startMs: 1732140000000,
    endMs: 1732140000010,
    attrs: {},
    events: [],
    links: [],
    status: { code: 'unset' },
    resource: RESOURCE,
    ...over,
  };
};

// Exact nanoseconds of a double, rounded half up, computed independently with BigInt.
const exactNanos = (ms: number): string => {
  const whole = Math.floor(ms);
  // At ~1.7e12 the double's fraction is a multiple of 2^-12 ms.
  const k = BigInt((ms - whole) * 4096);
  const ns = (k * 1_000_000n * 2n + 4096n) / 8192n;
  return (BigInt(whole) * 1_000_000n + ns).toString();
};

describe('msToNanos', () => {
  it('builds whole-millisecond times by appending six zeros', () => {
    expect(msToNanos(1732140000123)).toBe('1732140000123000000');
    expect(msToNanos(1)).toBe('1000000');
  });

  it('keeps exact sub-millisecond fractions', () => {
    expect(msToNanos(1732140000123.5)).toBe('1732140000123500000');
    expect(msToNanos(1732140000123.25)).toBe('1732140000123250000');
    expect(msToNanos(0.5)).toBe('500000');
    expect(msToNanos(0.000001)).toBe('1');
  });

  it('pads fractions with leading zeros', () => {
    expect(msToNanos(1000.000123)).toBe('1000000123');
    expect(msToNanos(1732140000123 + 1 / 4096)).toBe('1732140000123000244');
  });

  it('stays within a microsecond of the decimal the caller meant', () => {
    const ns = BigInt(msToNanos(1732140000123.4567));
    const meant = 1732140000123456700n;
    expect(ns - meant < 1000n && meant - ns < 1000n).toBe(true);
  });

  it('is exact to the nanosecond for every fraction a double holds at today\'s epoch', () => {
    for (let k = 0; k < 4096; k++) {
      const ms = 1732140000123 + k / 4096;
      expect(msToNanos(ms)).toBe(exactNanos(ms));
    }
  });

  it('carries into the next millisecond when the fraction rounds to a whole one', () => {
    expect(msToNanos(1000.9999999)).toBe('1001000000');
    expect(msToNanos(86400000.9999999)).toBe('86400001000000');
    expect(msToNanos(0.9999999996)).toBe('1000000');
  });

  it('gives "0" for zero, negative and non-finite input', () => {
    expect(msToNanos(0)).toBe('0');
    expect(msToNanos(-5)).toBe('0');
    expect(msToNanos(Number.NaN)).toBe('0');
    expect(msToNanos(Infinity)).toBe('0');
    expect(msToNanos(-Infinity)).toBe('0');
  });

  it('never uses exponent notation', () => {
    for (const ms of [1e-7, 1e-6, 1e15, 4102444800000.999]) expect(msToNanos(ms)).toMatch(/^\d+$/);
  });

  it('gives "0" for times whose nanoseconds do not fit in 64 bits (ns or µs passed as ms)', () => {
    expect(msToNanos(2 ** 44 - 1)).toBe(`${2 ** 44 - 1}000000`);
    expect(BigInt(msToNanos(2 ** 44 - 1)) < 2n ** 64n).toBe(true);
    for (const ms of [2 ** 44, 1.7e15, 1.7e18, 1e22]) expect(msToNanos(ms)).toBe('0');
  });
});

describe('toAnyValue', () => {
  it('maps strings and booleans to their fields', () => {
    expect(toAnyValue('hi')).toEqual({ stringValue: 'hi' });
    expect(toAnyValue('')).toEqual({ stringValue: '' });
    expect(toAnyValue(false)).toEqual({ boolValue: false });
  });

  it('maps safe integers to decimal-string intValue', () => {
    expect(toAnyValue(42)).toEqual({ intValue: '42' });
    expect(toAnyValue(-7)).toEqual({ intValue: '-7' });
    expect(toAnyValue(Number.MAX_SAFE_INTEGER)).toEqual({ intValue: '9007199254740991' });
    expect(toAnyValue(-0)).toEqual({ intValue: '0' });
  });

  it('maps other finite numbers to doubleValue', () => {
    expect(toAnyValue(1.5)).toEqual({ doubleValue: 1.5 });
    expect(toAnyValue(2 ** 60)).toEqual({ doubleValue: 2 ** 60 });
    expect(toAnyValue(1e-300)).toEqual({ doubleValue: 1e-300 });
  });

  it('maps NaN and infinities to their string spellings', () => {
    expect(toAnyValue(Number.NaN)).toEqual({ doubleValue: 'NaN' });
    expect(toAnyValue(Infinity)).toEqual({ doubleValue: 'Infinity' });
    expect(toAnyValue(-Infinity)).toEqual({ doubleValue: '-Infinity' });
  });

  it('maps arrays element by element', () => {
    expect(toAnyValue(['a', 'b'])).toEqual({ arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } });
    expect(toAnyValue([true, false])).toEqual({ arrayValue: { values: [{ boolValue: true }, { boolValue: false }] } });
    expect(toAnyValue([1, 2])).toEqual({ arrayValue: { values: [{ intValue: '1' }, { intValue: '2' }] } });
    expect(toAnyValue([])).toEqual({ arrayValue: { values: [] } });
  });

  it('keeps a number array homogeneous: all doubles once one element is not a safe integer', () => {
    expect(toAnyValue([1, 2.5, Number.NaN])).toEqual({
      arrayValue: { values: [{ doubleValue: 1 }, { doubleValue: 2.5 }, { doubleValue: 'NaN' }] },
    });
  });

  it('returns undefined for values outside the model', () => {
    expect(toAnyValue(null as never)).toBeUndefined();
    expect(toAnyValue({ a: 1 } as never)).toBeUndefined();
    expect(toAnyValue(undefined as never)).toBeUndefined();
  });
});

describe('toKeyValues', () => {
  it('keeps insertion order and skips values outside the model', () => {
    const attrs = { a: 1, b: null, c: 'x', d: undefined } as never;
    expect(toKeyValues(attrs)).toEqual([
      { key: 'a', value: { intValue: '1' } },
      { key: 'c', value: { stringValue: 'x' } },
    ]);
  });

  it('returns an empty list for missing attributes', () => {
    expect(toKeyValues(undefined)).toEqual([]);
  });
});

describe('toOtlpJson', () => {
  it('wraps spans in resourceSpans and scopeSpans with the resource attributes and scope', () => {
    const out = toOtlpJson([span()]);
    expect(out.resourceSpans).toHaveLength(1);
    const rs = out.resourceSpans[0]!;
    expect(rs.resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: 'chat-web' } }]);
    expect(rs.scopeSpans).toHaveLength(1);
    expect(rs.scopeSpans[0]!.scope).toEqual({ name: 'edgetrace', version: '0.1.0' });
  });

  it('returns an empty request for no spans', () => {
    expect(toOtlpJson([])).toEqual({ resourceSpans: [] });
  });

  it('groups spans that share a resource object into one ResourceSpans', () => {
    const out = toOtlpJson([span(), span(), span()]);
    expect(out.resourceSpans).toHaveLength(1);
    expect(out.resourceSpans[0]!.scopeSpans[0]!.spans).toHaveLength(3);
  });

  it('groups structured-cloned records by their resource attributes', () => {
    const cloned = [span(), span(), span()].map((s) => structuredClone(s));
    expect(cloned[0]!.resource).not.toBe(cloned[1]!.resource);
    const out = toOtlpJson(cloned);
    expect(out.resourceSpans).toHaveLength(1);
    expect(out.resourceSpans[0]!.scopeSpans).toHaveLength(1);
    expect(out.resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => s.name)).toEqual(cloned.map((s) => s.name));
  });

  it('puts different scopes of one resource under one ResourceSpans', () => {
    const other: ResourceRecord = { attrs: { 'service.name': 'chat-web' }, scope: { name: 'edgetrace/fetch' } };
    const out = toOtlpJson([span(), span({ resource: other }), span()]);
    expect(out.resourceSpans).toHaveLength(1);
    const scopes = out.resourceSpans[0]!.scopeSpans;
    expect(scopes.map((s) => s.scope)).toEqual([{ name: 'edgetrace', version: '0.1.0' }, { name: 'edgetrace/fetch' }]);
    expect(scopes.map((s) => s.spans.length)).toEqual([2, 1]);
  });

  it('keeps different resources apart, in first-seen order', () => {
    const server: ResourceRecord = { attrs: { 'service.name': 'api' }, scope: { name: 'edgetrace' } };
    const out = toOtlpJson([span({ resource: server }), span(), span({ resource: server })]);
    expect(out.resourceSpans.map((r) => r.resource.attributes[0]!.value.stringValue)).toEqual(['api', 'chat-web']);
    expect(out.resourceSpans[0]!.scopeSpans[0]!.spans).toHaveLength(2);
  });

  it('copies hex ids as they are and leaves parentSpanId out of root spans', () => {
    const root = span();
    const child = span({ parentId: root.spanId });
    const [r, c] = toOtlpJson([root, child]).resourceSpans[0]!.scopeSpans[0]!.spans;
    expect(r!.traceId).toBe(root.traceId);
    expect(r!.spanId).toBe(root.spanId);
    expect('parentSpanId' in r!).toBe(false);
    expect(c!.parentSpanId).toBe(root.spanId);
  });

  it('encodes kinds as OTLP integers', () => {
    const kinds = ['internal', 'server', 'client', 'producer', 'consumer'] as const;
    const out = toOtlpJson(kinds.map((kind) => span({ kind })));
    expect(out.resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => s.kind)).toEqual([1, 2, 3, 4, 5]);
  });

  it('encodes status as OTLP integers, with the message only for errors', () => {
    const spans = toOtlpJson([
      span({ status: { code: 'unset' } }),
      span({ status: { code: 'ok', message: 'ignored' } }),
      span({ status: { code: 'error', message: 'boom' } }),
      span({ status: { code: 'error' } }),
    ]).resourceSpans[0]!.scopeSpans[0]!.spans;
    expect(spans.map((s) => s.status)).toEqual([{}, { code: 1 }, { code: 2, message: 'boom' }, { code: 2 }]);
  });

  it('sets flag 0x100 always and 0x200 for a remote parent on top of the W3C byte', () => {
    const spans = toOtlpJson([
      span({ flags: 1 }),
      span({ flags: 0 }),
      span({ flags: 3, parentId: 'aaaaaaaaaaaaaaaa', remoteParent: true }),
      span({ flags: 0x1ff }),
    ]).resourceSpans[0]!.scopeSpans[0]!.spans;
    expect(spans.map((s) => s.flags)).toEqual([0x101, 0x100, 0x303, 0x1ff]);
  });

  it('writes times as nanosecond strings', () => {
    const s = toOtlpJson([span({ startMs: 1732140000123.5, endMs: 1732140000124 })]).resourceSpans[0]!.scopeSpans[0]!
      .spans[0]!;
    expect(s.startTimeUnixNano).toBe('1732140000123500000');
    expect(s.endTimeUnixNano).toBe('1732140000124000000');
  });

  it('encodes events and links with their attributes, trace state and flags', () => {
    const s = toOtlpJson([
      span({
        traceState: 'vendor=1',
        events: [
          { name: 'exception', timeMs: 1732140000005.25, attrs: { 'exception.message': 'x' }, droppedAttrs: 2 },
          { name: 'plain', timeMs: 1732140000006 },
        ],
        links: [
          { traceId: 'b'.repeat(32), spanId: 'c'.repeat(16), traceState: 'a=b', flags: 1, attrs: { n: 1 }, droppedAttrs: 3 },
          { traceId: 'd'.repeat(32), spanId: 'e'.repeat(16) },
        ],
      }),
    ]).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(s.traceState).toBe('vendor=1');
    expect(s.events).toEqual([
      {
        timeUnixNano: '1732140000005250000',
        name: 'exception',
        attributes: [{ key: 'exception.message', value: { stringValue: 'x' } }],
        droppedAttributesCount: 2,
      },
      { timeUnixNano: '1732140000006000000', name: 'plain' },
    ]);
    expect(s.links).toEqual([
      {
        traceId: 'b'.repeat(32),
        spanId: 'c'.repeat(16),
        traceState: 'a=b',
        flags: 1,
        attributes: [{ key: 'n', value: { intValue: '1' } }],
        droppedAttributesCount: 3,
      },
      { traceId: 'd'.repeat(32), spanId: 'e'.repeat(16) },
    ]);
  });

  it('leaves out empty events, links, trace state and zero dropped counts', () => {
    const s = toOtlpJson([span({ dropped: { attrs: 0, events: 0, links: 0 } })]).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(Object.keys(s).sort()).toEqual(
      ['attributes', 'endTimeUnixNano', 'flags', 'kind', 'name', 'spanId', 'startTimeUnixNano', 'status', 'traceId'].sort(),
    );
  });

  it('writes non-zero dropped counts', () => {
    const s = toOtlpJson([span({ dropped: { attrs: 3, events: 2, links: 1 } })]).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(s.droppedAttributesCount).toBe(3);
    expect(s.droppedEventsCount).toBe(2);
    expect(s.droppedLinksCount).toBe(1);
  });

  it('passes langfuse.* and gen_ai.* attributes through unchanged', () => {
    const s = toOtlpJson([
      span({ attrs: { 'langfuse.observation.type': 'generation', 'gen_ai.usage.input_tokens': 812, 'langfuse.trace.tags': ['a'] } }),
    ]).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(s.attributes).toEqual([
      { key: 'langfuse.observation.type', value: { stringValue: 'generation' } },
      { key: 'gen_ai.usage.input_tokens', value: { intValue: '812' } },
      { key: 'langfuse.trace.tags', value: { arrayValue: { values: [{ stringValue: 'a' }] } } },
    ]);
  });

  it('uses only lowerCamelCase keys', () => {
    const json = encodeOtlp([
      span({
        parentId: 'f'.repeat(16),
        attrs: { x: [1.5] },
        events: [{ name: 'e', timeMs: 1, attrs: { a: 1 }, droppedAttrs: 1 }],
        links: [{ traceId: 'b'.repeat(32), spanId: 'c'.repeat(16), flags: 1, traceState: 'x=y' }],
        dropped: { attrs: 1, events: 1, links: 1 },
        status: { code: 'error', message: 'm' },
      }),
    ]);
    const keys = [...json.matchAll(/"([^"]+)":/g)].map((m) => m[1]!).filter((k) => !['x', 'a'].includes(k));
    for (const k of keys) expect(k).toMatch(/^[a-z][a-zA-Z]*$/);
  });

  it('is fast enough for large batches', () => {
    const batch = Array.from({ length: 5000 }, (_, i) =>
      span({
        attrs: { 'http.request.method': 'GET', 'http.response.status_code': 200, 'url.full': `https://x/${i}`, ratio: 0.5 },
        events: [{ name: 'first-byte', timeMs: 1732140000001.5 }],
      }),
    );
    const t0 = performance.now();
    const body = encodeOtlp(batch);
    const elapsed = performance.now() - t0;
    expect(body.length).toBeGreaterThan(1000);
    expect(elapsed).toBeLessThan(1000);
  });
});

describe('encodeOtlp', () => {
  it('is the JSON text of toOtlpJson', () => {
    const spans = [span({ attrs: { n: Number.NaN, i: Infinity } })];
    const body = encodeOtlp(spans);
    expect(JSON.parse(body)).toEqual(JSON.parse(JSON.stringify(toOtlpJson(spans))));
    expect(body).toContain('"doubleValue":"NaN"');
    expect(body).toContain('"doubleValue":"Infinity"');
  });
});

describe('parseOtlpResponse', () => {
  it('reads full success from an empty object or an empty body', () => {
    expect(parseOtlpResponse('{}')).toEqual({ rejected: 0 });
    expect(parseOtlpResponse('')).toEqual({ rejected: 0 });
  });

  it('reads rejectedSpans given as a string or a number', () => {
    expect(parseOtlpResponse('{"partialSuccess":{"rejectedSpans":"5","errorMessage":"too old"}}')).toEqual({
      rejected: 5,
      message: 'too old',
    });
    expect(parseOtlpResponse('{"partialSuccess":{"rejectedSpans":3}}')).toEqual({ rejected: 3 });
  });

  it('keeps a warning message that comes with zero rejected spans', () => {
    expect(parseOtlpResponse('{"partialSuccess":{"errorMessage":"slow down"}}')).toEqual({
      rejected: 0,
      message: 'slow down',
    });
  });

  it('treats bodies that are not JSON or odd values as full success', () => {
    expect(parseOtlpResponse('<html>')).toEqual({ rejected: 0 });
    expect(parseOtlpResponse('null')).toEqual({ rejected: 0 });
    expect(parseOtlpResponse('{"partialSuccess":{"rejectedSpans":"many"}}')).toEqual({ rejected: 0 });
    expect(parseOtlpResponse('{"partialSuccess":{"rejectedSpans":-1}}')).toEqual({ rejected: 0 });
  });
});

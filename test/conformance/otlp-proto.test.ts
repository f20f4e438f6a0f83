import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { ResourceRecord, SpanKind, SpanRecord } from '../../src/protocol';
import { encodeOtlp, toOtlpJson } from '../../src/export/otlp';
import { decodeOtlp } from '../../src/server/collector/decodeOtlp';
import { encodeExportResponse, encodeRpcStatus, readOtlpProtobuf } from '../../src/server/collector/otlpProtobuf';

// Checks our OTLP/JSON against the official protos (opentelemetry-proto v1.11.0+,
// ../shared/reference/otlp): every key must be a proto field, the message must verify, and
// protobuf encode → decode must give every value back.

const OTLP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/reference/otlp');
const REQUEST = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest';

type Json = Record<string, unknown>;

// protobufjs bundles long.js; its typings only expose the constructor.
const LongLib = protobuf.util.Long as unknown as { fromString(s: string, unsigned?: boolean): { toString(): string } };

const loadProtos = (): protobuf.Root => {
  const root = new protobuf.Root();
  // The protos import each other by paths relative to the repository root (OTLP_DIR).
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(OTLP_DIR, target));
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  root.resolveAll();
  return root;
};

// --- JSON mapping helpers: OTLP/JSON differs from proto3 JSON only in hex ids ---

const ID_KEYS = new Set(['traceId', 'spanId', 'parentSpanId']);
const hexToBase64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
const base64ToHex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

/** Deep copy with every id field converted by `conv`. */
const mapIds = (v: unknown, conv: (s: string) => string): unknown => {
  if (Array.isArray(v)) return v.map((x) => mapIds(x, conv));
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = ID_KEYS.has(k) && typeof x === 'string' ? conv(x) : mapIds(x, conv);
    return out;
  }
  return v;
};

/**
 * Deep copy in the shape protobufjs' `verify` wants: 64-bit decimal strings as Long, NaN and the
 * infinities as numbers. Fails on a 64-bit string that is not an exact decimal integer.
 */
const toVerifiable = (type: protobuf.Type, v: Json): Json => {
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    const field = type.fields[k]!;
    const conv = (item: unknown): unknown => {
      if (field.resolvedType instanceof protobuf.Type) return toVerifiable(field.resolvedType, item as Json);
      if (['int64', 'uint64', 'fixed64', 'sfixed64', 'sint64'].includes(field.type)) {
        expect(typeof item, `${k} is a decimal string`).toBe('string');
        expect(item).toMatch(/^-?\d+$/);
        const unsigned = field.type === 'uint64' || field.type === 'fixed64';
        const long = LongLib.fromString(item as string, unsigned);
        expect(long.toString(), `${k} fits 64 bits`).toBe(item);
        return long;
      }
      if (field.type === 'double' && typeof item === 'string') return Number(item);
      return item;
    };
    out[k] = field.repeated ? (x as unknown[]).map(conv) : conv(x);
  }
  return out;
};

/** Fails on any key that is not a field of the proto message, and on AnyValues with two values. */
const assertKnownKeys = (type: protobuf.Type, v: Json, at: string): void => {
  if (type.name === 'AnyValue') expect(Object.keys(v).length, `${at} has one value`).toBeLessThanOrEqual(1);
  for (const [k, x] of Object.entries(v)) {
    const field = type.fields[k];
    expect(field, `${at}.${k} is a field of ${type.name}`).toBeDefined();
    if (!field || !(field.resolvedType instanceof protobuf.Type)) continue;
    const sub = field.resolvedType;
    if (field.repeated) (x as Json[]).forEach((item, i) => assertKnownKeys(sub, item, `${at}.${k}[${i}]`));
    else assertKnownKeys(sub, x as Json, `${at}.${k}`);
  }
};

/** Drops what proto3 cannot tell from absent: empty lists and zero flags. */
const normalise = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) {
      if (Array.isArray(x) && x.length === 0) continue;
      if (k === 'flags' && x === 0) continue;
      out[k] = normalise(x);
    }
    return out;
  }
  return v;
};

/** Runs our JSON through the protos: key check, verify, encode, decode, back to OTLP/JSON. */
const roundTrip = (Req: protobuf.Type, json: Json) => {
  assertKnownKeys(Req, json, 'request');
  const protoJson = mapIds(json, hexToBase64) as Json;
  expect(Req.verify(toVerifiable(Req, protoJson))).toBeNull();
  const msg = Req.fromObject(protoJson);
  expect(Req.verify(msg)).toBeNull();
  const decoded = Req.decode(Req.encode(msg).finish());
  const back = mapIds(
    Req.toObject(decoded, { longs: String, enums: Number, bytes: String, json: true }),
    base64ToHex,
  ) as Json;
  return { decoded: decoded as unknown as Json, back };
};

// --- fixtures: every feature the encoder has ---

// Exact nanoseconds of a double near today's epoch (fraction is a multiple of 2^-12 ms), half up.
const exactNanos = (ms: number): string => {
  const whole = Math.floor(ms);
  const k = BigInt((ms - whole) * 4096);
  return (BigInt(whole) * 1_000_000n + (k * 2_000_000n + 4096n) / 8192n).toString();
};

const WEB: ResourceRecord = {
  attrs: {
    'service.name': 'chat-web',
    'service.version': '1.2.3',
    'host.cores': 8,
    'sampling.ratio': 0.25,
    'deployment.tags': ['eu', 'canary'],
  },
  scope: { name: 'edgetrace', version: '0.1.0' },
};
const API: ResourceRecord = { attrs: { 'service.name': 'api' }, scope: { name: 'edgetrace/server' } };

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SUB_MS = 1732140000123.456789;
const ROUNDS_UP = 86400000.9999999; // 1970-01-02: fine enough that the fraction rounds to 1 ms

const base = (over: Partial<SpanRecord>): SpanRecord => ({
  v: 1,
  rec: 'span',
  traceId: TRACE,
  spanId: '00f067aa0ba902b7',
  flags: 1,
  name: 'span',
  kind: 'internal',
  startMs: 1732140000000,
  endMs: 1732140000001,
  attrs: {},
  events: [],
  links: [],
  status: { code: 'unset' },
  resource: WEB,
  ...over,
});

const ALL_ATTRS = {
  str: 'hello',
  empty: '',
  unicode: 'naïve ☃ 😀',
  yes: true,
  no: false,
  int: 42,
  neg: -7,
  zero: 0,
  maxSafe: Number.MAX_SAFE_INTEGER,
  minSafe: Number.MIN_SAFE_INTEGER,
  big: 2 ** 60,
  half: 1.5,
  tiny: -0.1,
  huge: 1e300,
  nan: Number.NaN,
  inf: Infinity,
  ninf: -Infinity,
  strs: ['a', 'b', ''],
  ints: [1, 2, -3],
  doubles: [0.5, 2, Number.NaN],
  bools: [true, false],
  none: [] as string[],
};

const KINDS: SpanKind[] = ['internal', 'server', 'client', 'producer', 'consumer'];

const RECORDS: SpanRecord[] = [
  base({
    spanId: '1000000000000001',
    parentId: 'a000000000000001',
    remoteParent: true,
    traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
    flags: 3,
    name: 'GET /chat',
    kind: 'server',
    startMs: SUB_MS,
    endMs: 1732140000623.75,
    attrs: ALL_ATTRS,
    events: [
      {
        name: 'exception',
        timeMs: 1732140000200.125,
        attrs: { 'exception.type': 'TypeError', 'exception.message': 'x is undefined' },
        droppedAttrs: 2,
      },
      { name: 'first-token', timeMs: ROUNDS_UP },
    ],
    links: [
      { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceState: 'vendor=x', flags: 1, attrs: { 'link.reason': 'retry', n: 2 } },
      { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', flags: 0 },
    ],
    status: { code: 'error', message: 'upstream failed' },
    dropped: { attrs: 3, events: 1, links: 4 },
  }),
  base({ spanId: '1000000000000002', parentId: '1000000000000001', status: { code: 'ok' }, startMs: 1732140000300.5, endMs: 1732140000301 }),
  ...KINDS.map((kind, i) => base({ spanId: `20000000000000${i}0`, parentId: '1000000000000001', kind, name: `kind-${kind}` })),
  base({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '3000000000000001', resource: API, flags: 0, name: 'db' }),
];

// The official protos, loaded once for every describe below.
let root: protobuf.Root;
let Req: protobuf.Type;
beforeAll(() => {
  root = loadProtos();
  Req = root.lookupType(REQUEST);
});

describe('OTLP/JSON against the official protos', () => {

  it('loads the official example with the same loader (sanity of the loader)', () => {
    const example = JSON.parse(readFileSync(path.join(OTLP_DIR, 'examples/trace.json'), 'utf8')) as Json;
    const { decoded, back } = roundTrip(Req, example);
    const span = (decoded as { resourceSpans: { scopeSpans: { spans: Json[] }[] }[] }).resourceSpans[0]!.scopeSpans[0]!
      .spans[0]!;
    expect(String(span.startTimeUnixNano)).toBe('1544712660000000000');
    expect(span.kind).toBe(2);
    // Our mapping turns the example's upper-case hex into lower case; otherwise nothing changes.
    const lowerIds = mapIds(example, (s) => s.toLowerCase());
    expect(normalise(back)).toEqual(normalise(lowerIds));
  });

  it('catches what it is meant to catch (checker self-test)', () => {
    const bad = (span: Json): Json => ({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
    expect(() => assertKnownKeys(Req, bad({ parentSpanID: 'ab' }), 'request')).toThrow();
    expect(() => assertKnownKeys(Req, bad({ start_time_unix_nano: '1' }), 'request')).toThrow();
    expect(() => assertKnownKeys(Req, bad({ attributes: [{ key: 'k', value: { stringValue: 'a', intValue: '1' } }] }), 'r')).toThrow();
    expect(Req.verify(toVerifiable(Req, bad({ kind: 9 })))).not.toBeNull();
    expect(() => toVerifiable(Req, bad({ startTimeUnixNano: 1.7e18 }))).toThrow();
    expect(() => toVerifiable(Req, bad({ startTimeUnixNano: '1.7e18' }))).toThrow();
  });

  it('emits only proto fields and passes verify', () => {
    const json = toOtlpJson(RECORDS) as unknown as Json;
    assertKnownKeys(Req, json, 'request');
    expect(Req.verify(toVerifiable(Req, mapIds(json, hexToBase64) as Json))).toBeNull();
  });

  it('round-trips every field through protobuf encode and decode', () => {
    const json = JSON.parse(encodeOtlp(RECORDS)) as Json;
    const { back } = roundTrip(Req, json);
    expect(normalise(back)).toEqual(normalise(json));
  });

  describe('decoded values', () => {
    type Decoded = { resourceSpans: { resource: Json; scopeSpans: { scope: Json; spans: Json[] }[] }[] };
    let decoded: Decoded;
    let spans: Json[];

    beforeAll(() => {
      decoded = roundTrip(Req, JSON.parse(encodeOtlp(RECORDS)) as Json).decoded as unknown as Decoded;
      spans = decoded.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    });

    const hex = (v: unknown) => Buffer.from(v as Uint8Array).toString('hex');
    const attr = (s: Json, key: string) =>
      (s.attributes as { key: string; value: Json }[]).find((kv) => kv.key === key)!.value;

    it('groups by resource, then by scope', () => {
      expect(decoded.resourceSpans).toHaveLength(2);
      expect(decoded.resourceSpans[0]!.scopeSpans[0]!.scope).toMatchObject({ name: 'edgetrace', version: '0.1.0' });
      expect(decoded.resourceSpans[0]!.scopeSpans[0]!.spans).toHaveLength(RECORDS.length - 1);
      expect(decoded.resourceSpans[1]!.scopeSpans[0]!.scope).toMatchObject({ name: 'edgetrace/server' });
    });

    it('keeps ids as 16- and 8-byte values', () => {
      const s = spans[0]!;
      expect(hex(s.traceId)).toBe(TRACE);
      expect(hex(s.spanId)).toBe('1000000000000001');
      expect(hex(s.parentSpanId)).toBe('a000000000000001');
      expect((s.traceId as Uint8Array).length).toBe(16);
      expect((s.spanId as Uint8Array).length).toBe(8);
      expect(spans.at(-1)!.parentSpanId?.toString() ?? '').toBe('');
    });

    it('keeps nanosecond times to the digit', () => {
      const s = spans[0]!;
      const start = String(s.startTimeUnixNano);
      expect(start).toBe(exactNanos(SUB_MS));
      const meant = 1732140000123456789n;
      const diff = BigInt(start) - meant;
      expect(diff < 1000n && diff > -1000n).toBe(true);
      expect(String(s.endTimeUnixNano)).toBe('1732140000623750000');
      const events = s.events as Json[];
      expect(String(events[0]!.timeUnixNano)).toBe('1732140000200125000');
      expect(String(events[1]!.timeUnixNano)).toBe('86400001000000');
      expect(String(spans[1]!.startTimeUnixNano)).toBe('1732140000300500000');
    });

    it('keeps every attribute type', () => {
      const s = spans[0]!;
      expect(attr(s, 'str').stringValue).toBe('hello');
      expect(attr(s, 'empty').stringValue).toBe('');
      expect(attr(s, 'unicode').stringValue).toBe('naïve ☃ 😀');
      expect(attr(s, 'yes').boolValue).toBe(true);
      expect(attr(s, 'no').boolValue).toBe(false);
      expect(String(attr(s, 'int').intValue)).toBe('42');
      expect(String(attr(s, 'neg').intValue)).toBe('-7');
      expect(String(attr(s, 'zero').intValue)).toBe('0');
      expect(String(attr(s, 'maxSafe').intValue)).toBe('9007199254740991');
      expect(String(attr(s, 'minSafe').intValue)).toBe('-9007199254740991');
      expect(attr(s, 'big').doubleValue).toBe(2 ** 60);
      expect(attr(s, 'half').doubleValue).toBe(1.5);
      expect(attr(s, 'tiny').doubleValue).toBe(-0.1);
      expect(attr(s, 'huge').doubleValue).toBe(1e300);
      expect(attr(s, 'nan').doubleValue).toBeNaN();
      expect(attr(s, 'inf').doubleValue).toBe(Infinity);
      expect(attr(s, 'ninf').doubleValue).toBe(-Infinity);
      const values = (key: string) => ((attr(s, key).arrayValue as Json).values ?? []) as Json[];
      expect(values('strs').map((v) => v.stringValue)).toEqual(['a', 'b', '']);
      expect(values('ints').map((v) => String(v.intValue))).toEqual(['1', '2', '-3']);
      expect(values('doubles').map((v) => v.doubleValue)).toEqual([0.5, 2, Number.NaN]);
      expect(values('bools').map((v) => v.boolValue)).toEqual([true, false]);
      expect(values('none')).toEqual([]);
    });

    it('keeps events, links, status, kinds, flags and dropped counts', () => {
      const s = spans[0]!;
      const events = s.events as Json[];
      expect(events.map((e) => e.name)).toEqual(['exception', 'first-token']);
      expect(events[0]!.droppedAttributesCount).toBe(2);
      expect(attr(events[0]!, 'exception.type').stringValue).toBe('TypeError');
      const links = s.links as Json[];
      expect(hex(links[0]!.traceId)).toBe('0af7651916cd43dd8448eb211c80319c');
      expect(hex(links[0]!.spanId)).toBe('b7ad6b7169203331');
      expect(links[0]!.traceState).toBe('vendor=x');
      expect(links[0]!.flags).toBe(1);
      expect(String(attr(links[0]!, 'n').intValue)).toBe('2');
      expect(s.traceState).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
      expect(s.status).toMatchObject({ code: 2, message: 'upstream failed' });
      expect(spans[1]!.status).toMatchObject({ code: 1 });
      expect(s.droppedAttributesCount).toBe(3);
      expect(s.droppedEventsCount).toBe(1);
      expect(s.droppedLinksCount).toBe(4);
      expect(s.kind).toBe(2);
      expect(spans.slice(2, 7).map((x) => x.kind)).toEqual([1, 2, 3, 4, 5]);
      // W3C flags 0x03 + is-remote known (0x100) + parent is remote (0x200).
      expect(s.flags).toBe(0x303);
      expect(spans[1]!.flags).toBe(0x101);
      expect(spans.at(-1)!.flags).toBe(0x100);
    });
  });
});

describe('binary protobuf requests, as the collector reads them', () => {

  /** The binary form protobufjs gives an OTLP/JSON request (ids as bytes, 64-bit strings as Long). */
  const binary = (json: Json): Uint8Array => Req.encode(Req.fromObject(mapIds(json, hexToBase64) as Json)).finish();
  const request = (spans: Json[], resource: Json = {}): Json => ({ resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
  const span = (over: Json = {}): Json => ({
    traceId: TRACE,
    spanId: '00f067aa0ba902b7',
    name: 'op',
    kind: 2,
    startTimeUnixNano: '1732140000123456789',
    endTimeUnixNano: '1732140000223456789',
    ...over,
  });
  const recordsOf = (bytes: Uint8Array) => {
    const out = decodeOtlp(readOtlpProtobuf(bytes));
    if (!out.ok) throw new Error(out.message);
    return out;
  };

  it('reads every field the encoder writes into the same spans as the JSON form', () => {
    const json = JSON.parse(encodeOtlp(RECORDS)) as Json;
    const fromJson = decodeOtlp(json);
    const fromBinary = decodeOtlp(readOtlpProtobuf(binary(json)));
    expect(fromJson.ok).toBe(true);
    expect(fromBinary).toEqual(fromJson);
    // NaN survives the comparison above only because toEqual treats NaN as equal to itself.
    expect(fromBinary.ok && fromBinary.spans[0]!.attrs.nan).toBeNaN();
  });

  it('reads the official example', () => {
    const example = JSON.parse(readFileSync(path.join(OTLP_DIR, 'examples/trace.json'), 'utf8')) as Json;
    expect(decodeOtlp(readOtlpProtobuf(binary(example)))).toEqual(decodeOtlp(example));
  });

  it('keeps 64-bit values whole: times to the nanosecond, integers past 2^53 and negative ones', () => {
    const attributes = [
      { key: 'big', value: { intValue: '9223372036854775807' } },
      { key: 'min', value: { intValue: '-9223372036854775808' } },
      { key: 'neg', value: { intValue: '-5' } },
      { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 2, 250, 255]).toString('base64') } },
      { key: 'kv', value: { kvlistValue: { values: [{ key: 'a', value: { arrayValue: { values: [{ boolValue: true }, { doubleValue: 0.25 }] } } }] } } },
    ];
    const out = recordsOf(binary(request([span({ attributes, flags: 0x301, status: { code: 2, message: 'boom' } })], { attributes: [{ key: 'service.name', value: { stringValue: 'py-api' } }] })));
    const r = out.spans[0]!;
    expect(r.attrs).toEqual({ big: '9223372036854775807', min: '-9223372036854775808', neg: -5, bytes: 'AAEC+v8=', kv: '{"a":[true,0.25]}' });
    expect(r.startMs).toBe(1732140000123.4568);
    expect(r.endMs - r.startMs).toBeCloseTo(100, 6);
    expect(r).toMatchObject({ kind: 'server', flags: 1, remoteParent: true, status: { code: 'error', message: 'boom' } });
    expect(r.resource).toEqual({ attrs: { 'service.name': 'py-api' }, scope: { name: 's' } });
    expect(r.parentId).toBeUndefined();
  });

  // Wire-format builders, for requests protobufjs would not write.
  const varint = (n: number): number[] => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, ...varint(n >>> 7)]);
  const tag = (num: number, wire: number): number[] => varint((num << 3) | wire);
  const field = (num: number, payload: ArrayLike<number>): number[] => [...tag(num, 2), ...varint(payload.length), ...Array.from(payload)];
  const text = (num: number, value: string): number[] => field(num, Buffer.from(value));
  const wrap = (spanBytes: number[]): Uint8Array => Uint8Array.from(field(1, field(2, field(2, spanBytes))));
  const spanBytes = (): number[] => {
    const Span = root.lookupType('opentelemetry.proto.trace.v1.Span');
    return [...Span.encode(Span.fromObject(mapIds(span(), hexToBase64) as Json)).finish()];
  };

  it('takes the building helpers to mean what they say (self-test)', () => {
    expect(recordsOf(wrap(spanBytes())).spans[0]!.spanId).toBe('00f067aa0ba902b7');
  });

  it('skips unknown fields of every wire type and treats the profiles-only string index as absent', () => {
    const unknown = [
      ...tag(99, 0), 0xff, 0x01, // varint
      ...tag(98, 1), 1, 2, 3, 4, 5, 6, 7, 8, // 64-bit
      ...field(97, [1, 2, 3]), // length-delimited
      ...tag(96, 5), 1, 2, 3, 4, // 32-bit
    ];
    const stringIndex = field(9, [...text(1, 'k'), ...field(2, [...tag(8, 0), 7])]);
    const out = recordsOf(wrap([...spanBytes(), ...unknown, ...stringIndex]));
    expect(out.spans).toHaveLength(1);
    expect(out.spans[0]!.attrs).toEqual({});
  });

  it('lets a later oneof member replace an earlier one, and merges a message field sent twice', () => {
    const kv = field(9, [...text(1, 'k'), ...field(2, [...text(1, 'text'), ...tag(3, 0), 42])]);
    const status = [...field(15, text(2, 'first')), ...field(15, [...tag(3, 0), 2])];
    const r = recordsOf(wrap([...spanBytes(), ...kv, ...status])).spans[0]!;
    expect(r.attrs).toEqual({ k: 42 });
    expect(r.status).toEqual({ code: 'error', message: 'first' });
  });

  it('refuses malformed wire data with the field path and the problem, never an engine error', () => {
    const good = spanBytes();
    // An AnyValue holding an array of one AnyValue, `levels` deep, around a bool.
    const deep = (levels: number): number[] => (levels === 0 ? [...tag(2, 0), 1] : field(5, field(1, deep(levels - 1))));
    const cases: [number[] | Uint8Array, RegExp][] = [
      [[...wrap(good)].slice(0, -1), /at resourceSpans\[0\] declares \d+ bytes where \d+ are left/],
      [wrap(good.slice(0, -1)), /spans\[0\]\.endTimeUnixNano declares 8 bytes where 7 are left/],
      [[...tag(1, 2), 0x7f], /at resourceSpans\[0\] declares 127 bytes where 0 are left/],
      [[...tag(1, 2)], /at resourceSpans\[0\] ends inside a varint/],
      [[...tag(1, 0), 1], /at resourceSpans has wire type 0; ExportTraceServiceRequest field 1 is wire type 2/],
      [[...tag(5, 3)], /at <field 5> uses wire type 3 \(groups\)/],
      [wrap([...tag(0, 0), 1]), /spans\[0\] has field number 0, which protobuf does not allow/],
      [wrap(field(5, [0xff, 0xfe])), /at resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.name is not valid UTF-8/],
      [[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], /varint longer than 10 bytes/],
      [wrap(field(9, field(2, deep(500)))), /nests messages deeper than 40 levels/],
    ];
    for (const [bytes, problem] of cases) {
      const run = () => readOtlpProtobuf(Uint8Array.from(bytes));
      expect(run, String(problem)).toThrow(problem);
      expect(run).toThrow(/^the protobuf body /);
    }
    // Nested within the wire reader's bound but past decodeOtlp's own (8), a deep value is not
    // the request's problem, nor the span's: that attribute is left out and counted.
    const out = recordsOf(wrap([...good, ...field(9, [...text(1, 'd'), ...field(2, deep(12))])]));
    expect(out.rejected).toBe(0);
    expect(out.spans[0]!.attrs.d).toBeUndefined();
    expect(out.spans[0]!.dropped?.attrs).toBe(1);
  });

  it('answers with messages the protos decode: ExportTraceServiceResponse and google.rpc.Status', () => {
    const Res = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
    expect(encodeExportResponse()).toHaveLength(0);
    expect(Res.toObject(Res.decode(encodeExportResponse()))).toEqual({});
    const partial = Res.toObject(Res.decode(encodeExportResponse({ rejectedSpans: 3, errorMessage: 'spans[1].traceId must be 32 hex characters ☃' })), { longs: String });
    expect(partial).toEqual({ partialSuccess: { rejectedSpans: '3', errorMessage: 'spans[1].traceId must be 32 hex characters ☃' } });
    // A warning with nothing rejected leaves rejected_spans at its default, 0.
    const warning = Res.toObject(Res.decode(encodeExportResponse({ rejectedSpans: 0, errorMessage: 'note' })), { longs: String, defaults: true });
    expect(warning.partialSuccess).toEqual({ rejectedSpans: '0', errorMessage: 'note' });
    // google/rpc/status.proto, fields 1-3; the OTLP protos refer to it without shipping it.
    const rpc = protobuf.parse('syntax = "proto3"; package google.rpc; message Status { int32 code = 1; string message = 2; repeated bytes details = 3; }').root;
    const Status = rpc.lookupType('google.rpc.Status');
    expect(Status.toObject(Status.decode(encodeRpcStatus(3, 'the protobuf body is bad')))).toEqual({ code: 3, message: 'the protobuf body is bad' });
    expect(Status.toObject(Status.decode(encodeRpcStatus(16, 'x'.repeat(300)))).message).toHaveLength(300);
  });
});

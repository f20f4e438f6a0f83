import type { AttributeValue, Attributes, ResourceRecord, SpanEventRecord, SpanKind, SpanLinkRecord, SpanRecord, SpanStatus } from '../../protocol';
import { SPAN_KINDS } from '../../config';
import { isPrimitiveList } from '../../lib/isPrimitiveList';
import { setOwn } from '../../lib/setOwn';

/**
 * Strict reading of an OTLP/HTTP JSON ExportTraceServiceRequest into plain span records, the
 * rules of ../shared/reference/otlp/SOURCE.md: hex ids (either case, stored lower case), integer
 * enums, 64-bit numbers as decimal strings or JSON numbers, AnyValue oneofs, lowerCamelCase keys,
 * unknown fields ignored.
 *
 * Two levels of failure: a malformed envelope (not an object, `resourceSpans` not a list, a bad
 * resource or scope) rejects the whole request; a malformed span rejects only that span, so the
 * rest are kept and the reply can carry OTLP `partialSuccess`.
 *
 * A span over a bound is not malformed: what is beyond it goes, and is counted, as an SDK's own
 * limits do. Attributes, events and links past their count are left out; an attribute whose value
 * is too large (an array past `maxArrayValues`, a map past `maxAttributes`, nesting past
 * `maxDepth`) is left out whole, since a cut one would read as the real value. Both add to the
 * span's (event's, link's) dropped counts.
 */

/** What a request came to: the accepted spans, or a reason for rejecting all of it. */
export type DecodeResult =
  | { ok: true; spans: SpanRecord[]; rejected: number; errors: string[] }
  | { ok: false; message: string };

/** Bounds that keep one request from costing too much. */
export interface DecodeLimits {
  /** Attributes per span, resource, event or link, and entries per map value. Default 1024. */
  maxAttributes?: number | undefined;
  /** Values per array attribute: an embedding of 3,072 floats fits. Default 8192. */
  maxArrayValues?: number | undefined;
  /** Events per span. Default 1024. */
  maxEvents?: number | undefined;
  /** Links per span. Default 1024. */
  maxLinks?: number | undefined;
  /** Nesting of array and kvlist values. Default 8. */
  maxDepth?: number | undefined;
}

// OTLP Span.SpanKind numbers (trace.proto); 0 (unspecified) is read as internal.
const KINDS: readonly SpanKind[] = ['internal', ...SPAN_KINDS];
const STATUS: readonly SpanStatus['code'][] = ['unset', 'ok', 'error'];
const TRACE_ID_RE = /^[0-9a-fA-F]{32}$/;
const SPAN_ID_RE = /^[0-9a-fA-F]{16}$/;
const ZERO_RE = /^0+$/;
const UINT_RE = /^\d{1,20}$/;
const INT_RE = /^-?\d{1,20}$/;
// The proto3 JSON mapping accepts standard or URL-safe base64, with or without padding.
const BASE64_RE = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;
// It also accepts 32-bit integers as decimal strings.
const UINT32_STRING_RE = /^\d{1,10}$/;
// Error texts keep at most this many per request; the count is exact.
const MAX_ERRORS = 10;

/**
 * Thrown inside the reader and caught at the span or the request level; never escapes decodeOtlp.
 * `at` is relative to where it was thrown and each enclosing level prepends its own part, so the
 * path text is only built for input that fails: building it for every attribute of every span
 * cost more than the checks themselves.
 */
class Invalid {
  constructor(
    public at: string,
    public expected: string,
  ) {}
}

const bad = (at: string, expected: string): never => {
  throw new Invalid(at, expected);
};

/** Thrown for an attribute value past a bound; the attribute is left out and counted. */
const OVER = Symbol('over a bound');

/** Re-throws `error` with `segment` in front of its path. */
const within = (error: unknown, segment: string): never => {
  if (error instanceof Invalid) error.at = segment + error.at;
  throw error;
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const listAt = (v: unknown, at: string): unknown[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad(at, 'must be an array');
  return v as unknown[];
};

const traceIdAt = (v: unknown, at: string): string => {
  if (typeof v !== 'string' || !TRACE_ID_RE.test(v) || ZERO_RE.test(v)) bad(at, 'must be 32 hex characters, not all zero');
  return (v as string).toLowerCase();
};

const spanIdAt = (v: unknown, at: string): string => {
  if (typeof v !== 'string' || !SPAN_ID_RE.test(v) || ZERO_RE.test(v)) bad(at, 'must be 16 hex characters, not all zero');
  return (v as string).toLowerCase();
};

/** Base64 as we store and forward it: the standard alphabet, padded. */
const standardBase64 = (b64: string): string => {
  const s = b64.replace(/-/g, '+').replace(/_/g, '/');
  return s.length % 4 ? s + '='.repeat(4 - (s.length % 4)) : s;
};

const uintAt = (v: unknown, at: string, max = 0xffffffff): number => {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'string' && UINT32_STRING_RE.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(at, `must be a whole number from 0 to ${max}`);
  return v as number;
};

const stringAt = (v: unknown, at: string): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') bad(at, 'must be a string');
  return v as string;
};

/** 2^64 nanoseconds, in milliseconds. */
const MAX_NANOS_MS = 2 ** 64 / 1e6;

/**
 * A fixed64 nanosecond time (decimal string or JSON number) as fractional epoch milliseconds.
 * The string is split so that no precision is lost before the division.
 */
const nanosAt = (v: unknown, at: string): number => {
  let ms: number;
  if (typeof v === 'string' && UINT_RE.test(v)) {
    const cut = v.length - 6;
    ms = cut > 0 ? Number(v.slice(0, cut)) + Number(v.slice(cut)) / 1e6 : Number(v) / 1e6;
  } else if (typeof v === 'number' && Number.isInteger(v) && v >= 0) {
    // JSON.parse already rounded numbers past 2^53 (to 256 ns at today's epoch); nothing more is lost.
    ms = v / 1e6;
  } else return bad(at, 'must be nanoseconds since the epoch as a decimal string');
  if (!(ms > 0)) bad(at, 'must be after the epoch');
  // fixed64: a larger number (a JSON 1e30) is no time, and would not page or prune like one.
  if (ms >= MAX_NANOS_MS) bad(at, 'must fit in 64 bits');
  return ms;
};

/** Whether the decimal digits `s` (INT_RE) are an int64: from -2^63 to 2^63 - 1. */
const inInt64 = (s: string): boolean => {
  // Up to 18 digits always fit; only longer ones need the exact comparison.
  if (s.length < (s[0] === '-' ? 20 : 19)) return true;
  const n = BigInt(s);
  return n >= -(2n ** 63n) && n < 2n ** 63n;
};

const intValueOf = (v: unknown): number | string => {
  // A JSON number past 2^53 was already rounded by JSON.parse; 2^63 itself may be 2^63 - 1 rounded.
  if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= 2 ** 63) return v;
  if (typeof v === 'string' && INT_RE.test(v) && inInt64(v)) {
    const n = Number(v);
    // Beyond 2^53 a double would change the number: keep its digits instead.
    return Number.isSafeInteger(n) ? n : v;
  }
  return bad('.intValue', 'must be a 64-bit integer (a decimal string)');
};

// A JSON number's grammar, which the proto3 JSON mapping also takes inside a string ("1.5", "2e-3").
const DECIMAL_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const doubleValueOf = (v: unknown): number => {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  // Not Number() alone: it also reads hex, binary and octal ("0x1F" is 31), which the mapping does not.
  if (typeof v === 'string' && DECIMAL_RE.test(v) && Number.isFinite(Number(v))) return Number(v);
  return bad('.doubleValue', 'must be a number');
};

const ONEOF = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] as const;

/** An AnyValue as plain JS: primitives, arrays and objects (for storage as JSON). `undefined` when empty. */
const plainValue = (v: unknown, depth: number, lim: Required<DecodeLimits>): unknown => {
  if (!isObject(v)) return bad('', 'must be an AnyValue object');
  // The common case first: one string value and nothing else.
  let found: (typeof ONEOF)[number] | undefined;
  for (const k of ONEOF) {
    if (v[k] === undefined || v[k] === null) continue;
    if (found) bad('', `must hold one value, has ${found} and ${k}`);
    found = k;
  }
  switch (found) {
    case undefined:
      return undefined;
    case 'stringValue':
      return stringAt(v.stringValue, '.stringValue');
    case 'boolValue':
      if (typeof v.boolValue !== 'boolean') bad('.boolValue', 'must be true or false');
      return v.boolValue;
    case 'intValue':
      return intValueOf(v.intValue);
    case 'doubleValue':
      return doubleValueOf(v.doubleValue);
    case 'bytesValue':
      if (typeof v.bytesValue !== 'string' || !BASE64_RE.test(v.bytesValue)) bad('.bytesValue', 'must be base64');
      return standardBase64(v.bytesValue as string);
  }
  if (depth >= lim.maxDepth) throw OVER;
  if (found === 'arrayValue') {
    const inner = v.arrayValue;
    if (!isObject(inner)) return bad('.arrayValue', 'must be an object with "values"');
    const values = listAt(inner.values, '.arrayValue.values');
    if (values.length > lim.maxArrayValues) throw OVER;
    const out: unknown[] = [];
    for (let i = 0; i < values.length; i++) {
      try {
        out.push(plainValue(values[i], depth + 1, lim) ?? null);
      } catch (error) {
        within(error, `.arrayValue.values[${i}]`);
      }
    }
    return out;
  }
  const inner = v.kvlistValue;
  if (!isObject(inner)) return bad('.kvlistValue', 'must be an object with "values"');
  const out: Record<string, unknown> = {};
  readKeyValues(inner.values, '.kvlistValue.values', depth + 1, lim, (key, value) => setOwn(out, key, value));
  return out;
};

/**
 * Reads a KeyValue list into `put`; returns how many entries were left out for a bound. At the
 * top (`depth` 0: attributes) those past `maxAttributes`, and those whose value is over a bound,
 * go; inside a value (a map) either makes the whole value over its bound.
 */
const readKeyValues = (
  list: unknown,
  at: string,
  depth: number,
  lim: Required<DecodeLimits>,
  put: (key: string, value: unknown) => void,
): number => {
  const kvs = listAt(list, at);
  const n = Math.min(kvs.length, lim.maxAttributes);
  let left = kvs.length - n;
  if (left && depth) throw OVER;
  for (let i = 0; i < n; i++) {
    try {
      const kv = kvs[i];
      if (!isObject(kv)) bad('', 'must be a KeyValue object');
      const key = (kv as Record<string, unknown>).key;
      if (typeof key !== 'string' || key === '') bad('.key', 'must be a non-empty string');
      const value = (kv as Record<string, unknown>).value;
      if (value === undefined || value === null) continue;
      let plain: unknown;
      try {
        plain = plainValue(value, depth, lim);
      } catch (error) {
        if (error === OVER && !depth) {
          left++;
          continue;
        }
        within(error, '.value');
      }
      if (plain !== undefined) put(key as string, plain);
    } catch (error) {
      within(error, `${at}[${i}]`);
    }
  }
  return left;
};

/** A plain value as a SpanRecord attribute: primitives and flat lists as they are, the rest as JSON text. */
const toAttribute = (v: unknown): AttributeValue => {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && isPrimitiveList(v)) return v;
  return JSON.stringify(v);
};

/** Attributes, and how many were left out for a bound. */
const attributesAt = (list: unknown, at: string, lim: Required<DecodeLimits>): [attrs: Attributes, left: number] => {
  const out: Attributes = {};
  return [out, readKeyValues(list, at, 0, lim, (key, value) => setOwn(out, key, toAttribute(value)))];
};

/** A list of events or links, the first `max` read by `read`; and how many were past `max`. */
const listOf = <T>(list: unknown, at: string, max: number, read: (v: unknown) => T): [items: T[], left: number] => {
  const raw = listAt(list, at);
  const items: T[] = [];
  for (let i = 0; i < raw.length && i < max; i++) {
    try {
      items.push(read(raw[i]));
    } catch (error) {
      within(error, `${at}[${i}]`);
    }
  }
  return [items, Math.max(0, raw.length - max)];
};

/**
 * A span's or an event's name. An empty name is allowed (trace.proto: "equivalent to an unknown
 * span name"), and proto3 JSON leaves empty strings out, so a missing one is the empty name.
 */
const nameAt = (name: unknown): string => {
  if (name === undefined || name === null) return '';
  if (typeof name !== 'string') bad('.name', 'must be a string');
  return name as string;
};

const eventAt = (e: unknown, lim: Required<DecodeLimits>): SpanEventRecord => {
  if (!isObject(e)) return bad('', 'must be an Event object');
  const record: SpanEventRecord = { name: nameAt(e.name), timeMs: nanosAt(e.timeUnixNano, '.timeUnixNano') };
  const [attrs, left] = attributesAt(e.attributes, '.attributes', lim);
  for (const _ in attrs) {
    record.attrs = attrs;
    break;
  }
  const dropped = uintAt(e.droppedAttributesCount, '.droppedAttributesCount') + left;
  if (dropped) record.droppedAttrs = dropped;
  return record;
};

const linkAt = (l: unknown, lim: Required<DecodeLimits>): SpanLinkRecord => {
  if (!isObject(l)) return bad('', 'must be a Link object');
  const link: SpanLinkRecord = { traceId: traceIdAt(l.traceId, '.traceId'), spanId: spanIdAt(l.spanId, '.spanId') };
  const ts = stringAt(l.traceState, '.traceState');
  if (ts) link.traceState = ts;
  // The W3C trace flags, as for spans; bits 8 and 9 (is the link remote) are not kept.
  if (l.flags !== undefined && l.flags !== null) link.flags = uintAt(l.flags, '.flags') & 0xff;
  const [attrs, left] = attributesAt(l.attributes, '.attributes', lim);
  for (const _ in attrs) {
    link.attrs = attrs;
    break;
  }
  const dropped = uintAt(l.droppedAttributesCount, '.droppedAttributesCount') + left;
  if (dropped) link.droppedAttrs = dropped;
  return link;
};

/** One span, with errors relative to the span. */
const spanAt = (raw: unknown, resource: ResourceRecord, lim: Required<DecodeLimits>): SpanRecord => {
  if (!isObject(raw)) return bad('', 'must be a Span object');
  const traceId = traceIdAt(raw.traceId, '.traceId');
  const spanId = spanIdAt(raw.spanId, '.spanId');
  const parent = raw.parentSpanId;
  const parentId = parent === undefined || parent === null || parent === '' ? undefined : spanIdAt(parent, '.parentSpanId');
  const name = nameAt(raw.name);
  const kindNum = raw.kind === undefined || raw.kind === null ? 0 : raw.kind;
  if (typeof kindNum !== 'number' || !Number.isInteger(kindNum) || kindNum < 0 || kindNum > 5) {
    bad('.kind', 'must be an integer from 0 to 5 (enum names are not OTLP/JSON)');
  }
  const startMs = nanosAt(raw.startTimeUnixNano, '.startTimeUnixNano');
  // An end before the start (an explicit end time from a skewed clock) is taken as no duration,
  // as OpenTelemetry's SDKs take it.
  const endMs = Math.max(startMs, nanosAt(raw.endTimeUnixNano, '.endTimeUnixNano'));
  const flags = uintAt(raw.flags, '.flags');
  const traceState = stringAt(raw.traceState, '.traceState');

  let status: SpanStatus = { code: 'unset' };
  if (raw.status !== undefined && raw.status !== null) {
    if (!isObject(raw.status)) bad('.status', 'must be a Status object');
    const st = raw.status as Record<string, unknown>;
    const code = st.code === undefined || st.code === null ? 0 : st.code;
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 2) bad('.status.code', 'must be 0, 1 or 2');
    const message = stringAt(st.message, '.status.message');
    status = message ? { code: STATUS[code as number]!, message } : { code: STATUS[code as number]! };
  }

  const [events, eventsLeft] = listOf(raw.events, '.events', lim.maxEvents, (e) => eventAt(e, lim));
  const [links, linksLeft] = listOf(raw.links, '.links', lim.maxLinks, (l) => linkAt(l, lim));
  const [attrs, attrsLeft] = attributesAt(raw.attributes, '.attributes', lim);

  const record: SpanRecord = {
    v: 1,
    rec: 'span',
    traceId,
    spanId,
    flags: flags & 0xff,
    name: name as string,
    kind: KINDS[kindNum as number]!,
    startMs,
    endMs,
    attrs,
    events,
    links,
    status,
    resource,
  };
  if (parentId) record.parentId = parentId;
  // Span flags bit 9 (0x200): the parent is remote, valid when bit 8 (0x100) says it is known.
  if ((flags & 0x300) === 0x300) record.remoteParent = true;
  if (traceState) record.traceState = traceState;
  const da = uintAt(raw.droppedAttributesCount, '.droppedAttributesCount') + attrsLeft;
  const de = uintAt(raw.droppedEventsCount, '.droppedEventsCount') + eventsLeft;
  const dl = uintAt(raw.droppedLinksCount, '.droppedLinksCount') + linksLeft;
  if (da || de || dl) record.dropped = { attrs: da, events: de, links: dl };
  return record;
};

const message = (e: Invalid): string => `${e.at} ${e.expected}`;


/**
 * Reads a parsed OTLP/JSON trace request. Never throws: a malformed envelope gives
 * `{ ok: false, message }` naming the path and the problem, and malformed spans are counted in
 * `rejected` with their reasons in `errors` (at most ten texts).
 */
export const decodeOtlp = (body: unknown, limits: DecodeLimits = {}): DecodeResult => {
  // Not a spread over the defaults: `{ maxDepth: undefined }` would lift the bound.
  const lim: Required<DecodeLimits> = {
    maxAttributes: limits.maxAttributes ?? 1024,
    maxArrayValues: limits.maxArrayValues ?? 8192,
    maxEvents: limits.maxEvents ?? 1024,
    maxLinks: limits.maxLinks ?? 1024,
    maxDepth: limits.maxDepth ?? 8,
  };
  try {
    if (!isObject(body)) return { ok: false, message: 'the body must be a JSON object (an OTLP ExportTraceServiceRequest)' };
    if (body.resourceSpans === undefined && body.resource_spans !== undefined) {
      return { ok: false, message: 'resource_spans: OTLP/JSON keys are lowerCamelCase; send "resourceSpans"' };
    }
    const spans: SpanRecord[] = [];
    const errors: string[] = [];
    let rejected = 0;
    const rss = listAt(body.resourceSpans, 'resourceSpans');
    for (let r = 0; r < rss.length; r++) {
      const rs = rss[r];
      const rPath = `resourceSpans[${r}]`;
      if (!isObject(rs)) return { ok: false, message: `${rPath} must be a ResourceSpans object` };
      let attrs: Attributes = {};
      if (rs.resource !== undefined && rs.resource !== null) {
        if (!isObject(rs.resource)) return { ok: false, message: `${rPath}.resource must be a Resource object` };
        try {
          // What a bound leaves out of a resource has no count to go in: our records carry none.
          [attrs] = attributesAt(rs.resource.attributes, '.resource.attributes', lim);
        } catch (error) {
          within(error, rPath);
        }
      }
      if (rs.scopeSpans === undefined && rs.scope_spans !== undefined) {
        return { ok: false, message: `${rPath}.scope_spans: OTLP/JSON keys are lowerCamelCase; send "scopeSpans"` };
      }
      const sss = listAt(rs.scopeSpans, `${rPath}.scopeSpans`);
      for (let s = 0; s < sss.length; s++) {
        const ss = sss[s];
        const sPath = `${rPath}.scopeSpans[${s}]`;
        if (!isObject(ss)) return { ok: false, message: `${sPath} must be a ScopeSpans object` };
        let scope: ResourceRecord['scope'] = { name: '' };
        if (ss.scope !== undefined && ss.scope !== null) {
          if (!isObject(ss.scope)) return { ok: false, message: `${sPath}.scope must be an InstrumentationScope object` };
          const name = stringAt(ss.scope.name, `${sPath}.scope.name`) ?? '';
          const version = stringAt(ss.scope.version, `${sPath}.scope.version`);
          scope = version ? { name, version } : { name };
        }
        const resource: ResourceRecord = { attrs, scope };
        const list = listAt(ss.spans, `${sPath}.spans`);
        for (let i = 0; i < list.length; i++) {
          try {
            spans.push(spanAt(list[i], resource, lim));
          } catch (error) {
            if (!(error instanceof Invalid)) throw error;
            rejected++;
            if (errors.length < MAX_ERRORS) errors.push(`${sPath}.spans[${i}]${message(error)}`);
          }
        }
      }
    }
    return { ok: true, spans, rejected, errors };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, message: message(error) };
    // A bug of ours or an engine limit (a stack overflow on absurd nesting): still a clean answer.
    return { ok: false, message: `the request could not be read: ${error instanceof Error ? error.message : String(error)}` };
  }
};

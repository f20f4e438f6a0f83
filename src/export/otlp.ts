import type { AttributeValue, Attributes, ResourceRecord, SpanRecord } from '../protocol';

/**
 * OTLP/JSON encoding of span records (ExportTraceServiceRequest), following the protobuf JSON
 * mapping as OTLP amends it: hex ids, integer enums, 64-bit integers as decimal strings.
 * See ../shared/reference/otlp/SOURCE.md for the rules this file implements. The service worker
 * bundles this file too, so it is written for size as well as speed.
 */

// OTLP Span.SpanKind numbers (trace.proto) are these positions plus one; 0 is unspecified. The
// same list as SPAN_KINDS in config.ts, written out here: importing it reorders the service
// worker's bundle, which then compresses past the worker's 6 kB budget.
const KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];

// Span.flags bits above the W3C byte (trace.proto SpanFlags): we always know whether the parent
// is remote, so 0x100 is always set; 0x200 says it is.
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

const NO_RESOURCE: ResourceRecord = { attrs: {}, scope: { name: '' } };

/**
 * Converts fractional epoch milliseconds to OTLP's nanosecond decimal string.
 * The whole milliseconds and the fraction are handled apart, so nothing is lost beyond the
 * precision the double itself carries (about 0.25 µs at today's epoch). Input that is not a
 * positive time before the year 2527 gives "0".
 */
export const msToNanos = (ms: number): string => {
  // 2^44 ms (see isTime) keeps the nanoseconds within 64 bits and out of exponent notation.
  if (!(ms > 0 && ms < 2 ** 44)) return '0';
  let whole = Math.floor(ms);
  // `ms - whole` is exact for doubles (Sterbenz), so rounding only happens here; it can round up
  // to a whole millisecond, never past one.
  let ns = Math.round((ms - whole) * 1e6);
  if (ns === 1e6) whole++, (ns = 0);
  return whole ? whole + String(ns).padStart(6, '0') : String(ns);
};

// A number as an AnyValue; NaN and the infinities are spelled as strings, as proto3 JSON wants.
const numberValue = (n: number, asInt: boolean): OtlpAnyValue =>
  asInt ? { intValue: String(n) } : { doubleValue: isFinite(n) ? n : (String(n) as 'NaN') };

const scalarValue = (x: unknown, asInt: boolean): OtlpAnyValue | undefined =>
  typeof x === 'string'
    ? { stringValue: x }
    : typeof x === 'boolean'
      ? { boolValue: x }
      : typeof x === 'number'
        ? numberValue(x, asInt)
        : undefined;

/**
 * Converts one attribute value to an OTLP AnyValue. Integers that are safe in a double become
 * `intValue` (a decimal string), other numbers `doubleValue`. A number array is all `intValue`
 * when every element is a safe integer, otherwise all `doubleValue`, so arrays stay homogeneous.
 * Returns undefined for values outside the model (null, objects), which are then left out.
 */
export const toAnyValue = (v: AttributeValue): OtlpAnyValue | undefined => {
  if (!Array.isArray(v)) return scalarValue(v, Number.isSafeInteger(v));
  const allInts = v.every(Number.isSafeInteger);
  const values: OtlpAnyValue[] = [];
  for (const x of v) {
    const value = scalarValue(x, allInts);
    if (value) values.push(value);
  }
  return { arrayValue: { values } };
};

/** Converts an attribute map to OTLP KeyValues, skipping values outside the model. */
export const toKeyValues = (attrs: Attributes | undefined): OtlpKeyValue[] => {
  const out: OtlpKeyValue[] = [];
  for (const key in attrs) {
    const value = toAnyValue(attrs[key]!);
    if (value) out.push({ key, value });
  }
  return out;
};

const toSpan = (r: SpanRecord): OtlpSpan => {
  const { status: st, dropped: d } = r;
  const s: OtlpSpan = {
    traceId: r.traceId,
    spanId: r.spanId,
    flags: (r.flags & 0xff) | FLAG_HAS_IS_REMOTE | (r.remoteParent ? FLAG_IS_REMOTE : 0),
    name: r.name,
    kind: KINDS.indexOf(r.kind) + 1,
    startTimeUnixNano: msToNanos(r.startMs),
    endTimeUnixNano: msToNanos(r.endMs),
    attributes: toKeyValues(r.attrs),
    // Only an error status carries a message (trace.proto Status).
    // An error without a message gets `message: undefined`, which JSON leaves out.
    status: st?.code === 'ok' ? { code: 1 } : st?.code === 'error' ? { code: 2, message: st.message } : {},
  };
  if (r.parentId) s.parentSpanId = r.parentId;
  if (r.traceState) s.traceState = r.traceState;
  if (r.events?.length)
    s.events = r.events.map((e) => {
      const oe: OtlpEvent = { timeUnixNano: msToNanos(e.timeMs), name: e.name };
      if (e.attrs) oe.attributes = toKeyValues(e.attrs);
      if (e.droppedAttrs) oe.droppedAttributesCount = e.droppedAttrs;
      return oe;
    });
  if (r.links?.length)
    s.links = r.links.map((l) => {
      const ol: OtlpLink = { traceId: l.traceId, spanId: l.spanId };
      if (l.traceState) ol.traceState = l.traceState;
      if (l.attrs) ol.attributes = toKeyValues(l.attrs);
      if (l.droppedAttrs) ol.droppedAttributesCount = l.droppedAttrs;
      // Only the W3C byte: whether a linked context is remote is not recorded.
      if (l.flags !== undefined) ol.flags = l.flags & 0xff;
      return ol;
    });
  if (d?.attrs) s.droppedAttributesCount = d.attrs;
  if (d?.events) s.droppedEventsCount = d.events;
  if (d?.links) s.droppedLinksCount = d.links;
  return s;
};

/**
 * Builds an OTLP ExportTraceServiceRequest from span records, grouped by resource, then by
 * instrumentation scope, in first-seen order. Records of one tracer share one `resource` object,
 * so grouping is by identity first; records that were structured-cloned (IndexedDB, postMessage)
 * each carry their own copy and are grouped by their resource attributes instead.
 */
export const toOtlpJson = (spans: readonly SpanRecord[]): OtlpTraceRequest => {
  const resourceSpans: OtlpResourceSpans[] = [];
  const byRef = new Map<ResourceRecord, OtlpSpan[]>();
  const byAttrs = new Map<string, OtlpResourceSpans>();
  const byScope = new Map<string, OtlpSpan[]>();
  for (const r of spans) {
    const res = r.resource ?? NO_RESOURCE;
    let list = byRef.get(res);
    if (!list) {
      const { attrs, scope = NO_RESOURCE.scope } = res;
      // Attribute insertion order survives structured cloning, so this key is stable per tracer.
      const key = JSON.stringify(attrs ?? {});
      let rs = byAttrs.get(key);
      if (!rs) {
        byAttrs.set(key, (rs = { resource: { attributes: toKeyValues(attrs) }, scopeSpans: [] }));
        resourceSpans.push(rs);
      }
      // JSON text has no raw line breaks, so the parts cannot run into each other.
      const scopeKey = `${key}\n${scope.name}\n${scope.version ?? ''}`;
      list = byScope.get(scopeKey);
      if (!list) {
        byScope.set(scopeKey, (list = []));
        rs.scopeSpans.push({ scope: scope.version ? { name: scope.name, version: scope.version } : { name: scope.name }, spans: list });
      }
      byRef.set(res, list);
    }
    list.push(toSpan(r));
  }
  return { resourceSpans };
};

/** Encodes span records as an OTLP/HTTP JSON request body. */
export const encodeOtlp = (spans: readonly SpanRecord[]): string => JSON.stringify(toOtlpJson(spans));

/**
 * Reads an ExportTraceServiceResponse body. `rejected` is `partialSuccess.rejectedSpans`
 * (a string or a number on the wire), 0 when absent; `message` is its `errorMessage` when not
 * empty. Bodies that are empty or not JSON count as full success.
 */
export const parseOtlpResponse = (body: string): { rejected: number; message?: string } => {
  let ps: { rejectedSpans?: unknown; errorMessage?: unknown } | undefined;
  try {
    ps = JSON.parse(body).partialSuccess;
  } catch {
    // Empty, not JSON, or `null`: nothing was rejected.
  }
  const n = Number(ps?.rejectedSpans);
  const out: { rejected: number; message?: string } = { rejected: n > 0 && n < Infinity ? n : 0 };
  const m = ps?.errorMessage;
  if (m && typeof m === 'string') out.message = m;
  return out;
};

// --- types below: the ExportTraceServiceRequest shape in OTLP/JSON ---

/** OTLP AnyValue: exactly one field is set. `doubleValue` is a string only for NaN and infinities. */
export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  /** int64 as a decimal string. */
  intValue?: string;
  doubleValue?: number | 'NaN' | 'Infinity' | '-Infinity';
  arrayValue?: { values: OtlpAnyValue[] };
}

/** OTLP KeyValue. */
export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

/** OTLP Span.Event. */
export interface OtlpEvent {
  /** Nanoseconds since the epoch, decimal string. */
  timeUnixNano: string;
  name: string;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
}

/** OTLP Span.Link. */
export interface OtlpLink {
  traceId: string;
  spanId: string;
  traceState?: string;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
  flags?: number;
}

/** OTLP Status; `{}` means unset. */
export interface OtlpStatus {
  /** 1 ok, 2 error. */
  code?: number;
  message?: string;
}

/** OTLP Span. Ids are hex; times are nanosecond decimal strings. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  traceState?: string;
  parentSpanId?: string;
  /** W3C flags byte plus 0x100 (remoteness known) and 0x200 (parent is remote). */
  flags: number;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  droppedAttributesCount?: number;
  events?: OtlpEvent[];
  droppedEventsCount?: number;
  links?: OtlpLink[];
  droppedLinksCount?: number;
  status: OtlpStatus;
}

/** OTLP InstrumentationScope. */
export interface OtlpScope {
  name: string;
  version?: string;
}

/** OTLP ScopeSpans. */
export interface OtlpScopeSpans {
  scope: OtlpScope;
  spans: OtlpSpan[];
}

/** OTLP ResourceSpans. */
export interface OtlpResourceSpans {
  resource: { attributes: OtlpKeyValue[] };
  scopeSpans: OtlpScopeSpans[];
}

/** OTLP ExportTraceServiceRequest, ready for JSON.stringify. */
export interface OtlpTraceRequest {
  resourceSpans: OtlpResourceSpans[];
}

import type { AttributeValue, Attributes, ResourceRecord, SpanKind, SpanRecord } from '../protocol';

/**
 * OTLP/JSON encoding of span records (ExportTraceServiceRequest), following the protobuf JSON
 * mapping as OTLP amends it: hex ids, integer enums, 64-bit integers as decimal strings.
 * See ../shared/reference/otlp/SOURCE.md for the rules this file implements.
 */

// OTLP Span.SpanKind numbers (trace.proto).
const KIND: Record<SpanKind, number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

// Span.flags bits above the W3C byte (trace.proto SpanFlags): we always know whether the parent
// is remote, so 0x100 is always set; 0x200 says it is.
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

const EMPTY_RESOURCE: ResourceRecord = { attrs: {}, scope: { name: '' } };

/**
 * Converts fractional epoch milliseconds to OTLP's nanosecond decimal string.
 * The whole milliseconds and the fraction are handled apart, so nothing is lost beyond the
 * precision the double itself carries (about 0.25 µs at today's epoch). Negative or non-finite
 * input gives "0".
 */
export const msToNanos = (ms: number): string => {
  if (!(ms > 0) || ms === Infinity) return '0';
  let whole = Math.floor(ms);
  // `ms - whole` is exact for doubles (Sterbenz), so rounding only happens here.
  let ns = Math.round((ms - whole) * 1e6);
  if (ns >= 1e6) {
    whole += 1;
    ns -= 1e6;
  }
  if (whole === 0) return String(ns);
  const frac = String(ns);
  return String(whole) + '000000'.slice(frac.length) + frac;
};

const numberValue = (n: number, asInt: boolean): OtlpAnyValue =>
  asInt
    ? { intValue: String(n) }
    : { doubleValue: Number.isFinite(n) ? n : n > 0 ? 'Infinity' : n < 0 ? '-Infinity' : 'NaN' };

/**
 * Converts one attribute value to an OTLP AnyValue. Integers that are safe in a double become
 * `intValue` (a decimal string), other numbers `doubleValue`. A number array is all `intValue`
 * when every element is a safe integer, otherwise all `doubleValue`, so arrays stay homogeneous.
 * Returns undefined for values outside the model (null, objects), which are then left out.
 */
export const toAnyValue = (v: AttributeValue): OtlpAnyValue | undefined => {
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'number':
      return numberValue(v, Number.isSafeInteger(v));
  }
  if (!Array.isArray(v)) return undefined;
  const arr = v as readonly unknown[];
  let allInts = true;
  for (let i = 0; i < arr.length; i++) {
    if (!Number.isSafeInteger(arr[i])) {
      allInts = false;
      break;
    }
  }
  const values: OtlpAnyValue[] = [];
  for (let i = 0; i < arr.length; i++) {
    const x = arr[i];
    if (typeof x === 'number') values.push(numberValue(x, allInts));
    else if (typeof x === 'string') values.push({ stringValue: x });
    else if (typeof x === 'boolean') values.push({ boolValue: x });
  }
  return { arrayValue: { values } };
};

/** Converts an attribute map to OTLP KeyValues, skipping values outside the model. */
export const toKeyValues = (attrs: Attributes | undefined): OtlpKeyValue[] => {
  const out: OtlpKeyValue[] = [];
  if (!attrs) return out;
  for (const key in attrs) {
    const raw = attrs[key];
    if (raw === undefined) continue;
    const value = toAnyValue(raw);
    if (value) out.push({ key, value });
  }
  return out;
};

const toSpan = (r: SpanRecord): OtlpSpan => {
  const s: OtlpSpan = {
    traceId: r.traceId,
    spanId: r.spanId,
    flags: (r.flags & 0xff) | FLAG_HAS_IS_REMOTE | (r.remoteParent ? FLAG_IS_REMOTE : 0),
    name: r.name,
    kind: KIND[r.kind] ?? 0,
    startTimeUnixNano: msToNanos(r.startMs),
    endTimeUnixNano: msToNanos(r.endMs),
    attributes: toKeyValues(r.attrs),
    status: {},
  };
  if (r.parentId) s.parentSpanId = r.parentId;
  if (r.traceState) s.traceState = r.traceState;
  const st = r.status;
  if (st && st.code === 'ok') s.status = { code: 1 };
  else if (st && st.code === 'error') s.status = st.message ? { code: 2, message: st.message } : { code: 2 };

  const events = r.events;
  if (events && events.length > 0) {
    const out: OtlpEvent[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const oe: OtlpEvent = { timeUnixNano: msToNanos(e.timeMs), name: e.name };
      if (e.attrs) oe.attributes = toKeyValues(e.attrs);
      if (e.droppedAttrs) oe.droppedAttributesCount = e.droppedAttrs;
      out.push(oe);
    }
    s.events = out;
  }
  const links = r.links;
  if (links && links.length > 0) {
    const out: OtlpLink[] = [];
    for (let i = 0; i < links.length; i++) {
      const l = links[i]!;
      const ol: OtlpLink = { traceId: l.traceId, spanId: l.spanId };
      if (l.traceState) ol.traceState = l.traceState;
      if (l.attrs) ol.attributes = toKeyValues(l.attrs);
      // Only the W3C byte: whether a linked context is remote is not recorded.
      if (l.flags !== undefined) ol.flags = l.flags & 0xff;
      out.push(ol);
    }
    s.links = out;
  }
  const d = r.dropped;
  if (d) {
    if (d.attrs) s.droppedAttributesCount = d.attrs;
    if (d.events) s.droppedEventsCount = d.events;
    if (d.links) s.droppedLinksCount = d.links;
  }
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
  const byKey = new Map<string, { rs: OtlpResourceSpans; scopes: Map<string, OtlpSpan[]> }>();

  const listFor = (res: ResourceRecord): OtlpSpan[] => {
    // Attribute insertion order survives structured cloning, so this key is stable per tracer.
    const key = JSON.stringify(res.attrs ?? {});
    let group = byKey.get(key);
    if (!group) {
      group = { rs: { resource: { attributes: toKeyValues(res.attrs) }, scopeSpans: [] }, scopes: new Map() };
      byKey.set(key, group);
      resourceSpans.push(group.rs);
    }
    const scope = res.scope ?? EMPTY_RESOURCE.scope;
    const scopeKey = scope.name + '\n' + (scope.version ?? '');
    let list = group.scopes.get(scopeKey);
    if (!list) {
      list = [];
      group.scopes.set(scopeKey, list);
      const os: OtlpScope = { name: scope.name };
      if (scope.version) os.version = scope.version;
      group.rs.scopeSpans.push({ scope: os, spans: list });
    }
    return list;
  };

  for (let i = 0; i < spans.length; i++) {
    const r = spans[i]!;
    const res = r.resource ?? EMPTY_RESOURCE;
    let list = byRef.get(res);
    if (!list) {
      list = listFor(res);
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
  let parsed: unknown;
  try {
    parsed = body ? JSON.parse(body) : undefined;
  } catch {
    return { rejected: 0 };
  }
  const ps = (parsed as { partialSuccess?: { rejectedSpans?: unknown; errorMessage?: unknown } } | null)
    ?.partialSuccess;
  if (!ps || typeof ps !== 'object') return { rejected: 0 };
  const n = Number(ps.rejectedSpans ?? 0);
  const out: { rejected: number; message?: string } = { rejected: Number.isFinite(n) && n > 0 ? n : 0 };
  if (typeof ps.errorMessage === 'string' && ps.errorMessage) out.message = ps.errorMessage;
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

/**
 * W3C Trace Context `traceparent`: `version-traceid-parentid-flags`, for example
 * `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
 * Spec: https://www.w3.org/TR/trace-context-2/#traceparent-header
 */
import { trimOws } from './carrier';

/** The identity of a span as it travels between services. */
export interface SpanContext {
  /** 32 lowercase hex characters, not all zero. */
  traceId: string;
  /** 16 lowercase hex characters, not all zero. */
  spanId: string;
  /** The trace-flags byte (0..255). Test bits with `FLAG_SAMPLED` / `FLAG_RANDOM`, never by equality. */
  flags: number;
  /** Normalised `tracestate` (`k=v,k2=v2`), absent when there is none. */
  traceState?: string;
  /** `true` when the context was extracted from an incoming request. */
  isRemote?: boolean;
}

/** trace-flags bit: the caller may have recorded trace data. */
export const FLAG_SAMPLED = 1;
/** trace-flags bit (Trace Context Level 2): the right-most 7 bytes of the trace-id are random. */
export const FLAG_RANDOM = 2;

// Every field lowercase hex (the spec's HEXDIGLC); after the flags comes either the end or, in
// a higher version, a `-` and fields we must not interpret.
const TRACEPARENT_RE = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/;
const TRACE_ID_RE = /^[0-9a-f]{32}$/;
const SPAN_ID_RE = /^[0-9a-f]{16}$/;
const NON_ZERO_RE = /[^0]/;
/** Version 00 is exactly 2+1+32+1+16+1+2 characters; higher versions are at least that long. */
const TRACEPARENT_LENGTH = 55;

/** Tells whether `s` is a usable trace-id: 32 lowercase hex characters, not all zero. */
export const isValidTraceId = (s: unknown): s is string =>
  typeof s === 'string' && TRACE_ID_RE.test(s) && NON_ZERO_RE.test(s);

/** Tells whether `s` is a usable span-id (parent-id): 16 lowercase hex characters, not all zero. */
export const isValidSpanId = (s: unknown): s is string =>
  typeof s === 'string' && SPAN_ID_RE.test(s) && NON_ZERO_RE.test(s);

/**
 * Parses a `traceparent` header value. Accepts a string, or an array holding exactly one string:
 * two fields mean two `traceparent` headers, which the spec (and the W3C suite's
 * `test_traceparent_duplicated`) treats as invalid. Leading and trailing spaces and tabs are
 * ignored. Version 00 must be exactly 55 characters; a higher version (not `ff`) is read by its
 * first four fields, and only the sampled and random flag bits are kept from it, because other
 * bits may mean something else there. Returns `undefined` for anything invalid; never throws.
 */
export const parseTraceparent = (value: unknown): SpanContext | undefined => {
  if (Array.isArray(value)) value = value.length === 1 ? value[0] : undefined;
  if (typeof value !== 'string') return undefined;
  const s = trimOws(value);
  if (s.length < TRACEPARENT_LENGTH || !TRACEPARENT_RE.test(s)) return undefined;
  const version = s.slice(0, 2);
  if (version === 'ff' || (version === '00' && s.length !== TRACEPARENT_LENGTH)) return undefined;
  const traceId = s.slice(3, 35);
  const spanId = s.slice(36, 52);
  if (!NON_ZERO_RE.test(traceId) || !NON_ZERO_RE.test(spanId)) return undefined;
  let flags = parseInt(s.slice(53, 55), 16);
  // We re-emit as version 00, whose other bits are reserved and must be zero.
  if (version !== '00') flags &= FLAG_SAMPLED | FLAG_RANDOM;
  return { traceId, spanId, flags, isRemote: true };
};

/**
 * Formats a version-00 `traceparent`: `00-<traceId>-<spanId>-<flags as 2 lowercase hex>`.
 * The flags byte is zero-padded (`2` gives `02`). Does not validate the ids: check them with
 * `isValidTraceId` / `isValidSpanId`, or use `inject()`, which does.
 */
export const formatTraceparent = (ctx: Pick<SpanContext, 'traceId' | 'spanId' | 'flags'>): string =>
  // `| 256` then dropping the leading `1` pads to two digits without a padStart call.
  `00-${ctx.traceId}-${ctx.spanId}-${(((typeof ctx.flags === 'number' ? ctx.flags : 0) & 255) | 256).toString(16).slice(1)}`;

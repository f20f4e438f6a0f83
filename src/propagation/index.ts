/**
 * W3C propagation: read trace context and baggage from incoming headers, write them to outgoing
 * ones. Nothing here throws, whatever the carrier or context holds.
 */
import type { Baggage } from './baggage';
import { formatBaggage, parseBaggage } from './baggage';
import type { HeaderCarrier, WritableCarrier } from './carrier';
import { readHeader, writeHeader } from './carrier';
import type { SpanContext } from './traceparent';
import { formatTraceparent, isValidSpanId, isValidTraceId, parseTraceparent } from './traceparent';
import { parseTracestate } from './tracestate';

export type { Baggage, BaggageEntry } from './baggage';
export {
  MAX_BAGGAGE_BYTES,
  MAX_BAGGAGE_MEMBERS,
  formatBaggage,
  parseBaggage,
  parseBaggageMetadata,
} from './baggage';
export type { HeaderCarrier, HeaderSetter, WritableCarrier } from './carrier';
export { readHeader, writeHeader } from './carrier';
export type { SpanContext } from './traceparent';
export {
  FLAG_RANDOM,
  FLAG_SAMPLED,
  formatTraceparent,
  isValidSpanId,
  isValidTraceId,
  parseTraceparent,
} from './traceparent';
export {
  MAX_TRACESTATE_LENGTH,
  MAX_TRACESTATE_MEMBERS,
  getTracestate,
  parseTracestate,
  setTracestate,
  unsetTracestate,
} from './tracestate';

/** The header names `inject` may write, lowercase. */
export const FIELDS = ['traceparent', 'tracestate', 'baggage'] as const;

/** What `extract` found. Absent fields mean "nothing valid came in". */
export interface ExtractResult {
  /** The remote parent (`isRemote: true`), with `traceState` when a valid one came along. */
  context?: SpanContext;
  /** Incoming baggage, independent of the trace context. */
  baggage?: Baggage;
}

/**
 * Reads `traceparent`, `tracestate` and `baggage` (header names in any case) from `carrier`.
 * `tracestate` is only read when `traceparent` is valid, as the spec requires; baggage is read
 * either way. An invalid `traceparent` yields no `context`, so the caller starts a new trace.
 */
export const extract = (carrier: HeaderCarrier): ExtractResult => {
  const result: ExtractResult = {};
  try {
    const context = parseTraceparent(readHeader(carrier, 'traceparent'));
    if (context) {
      const traceState = parseTracestate(readHeader(carrier, 'tracestate'));
      if (traceState) context.traceState = traceState;
      result.context = context;
    }
    const baggage = parseBaggage(readHeader(carrier, 'baggage'));
    if (baggage) result.baggage = baggage;
  } catch {
    // Only reachable through hostile values (a Proxy array that throws): keep what we have.
  }
  return result;
};

/**
 * Writes lowercase `traceparent` (version 00, flags byte kept as given) and, when non-empty,
 * `tracestate` for `ctx`, then `baggage` when it has members. With no context, or one whose ids
 * are invalid or all zero, no trace headers are written (baggage still is). A `traceState` that
 * does not parse is not sent: a malformed member must never be passed on. Pass the context of
 * the span making the call, so every outgoing request carries its own parent-id.
 */
export const inject = (
  ctx: SpanContext | undefined,
  carrier: WritableCarrier,
  baggage?: Baggage,
): void => {
  try {
    if (ctx && isValidTraceId(ctx.traceId) && isValidSpanId(ctx.spanId)) {
      writeHeader(carrier, 'traceparent', formatTraceparent(ctx));
      const traceState = parseTracestate(ctx.traceState);
      if (traceState) writeHeader(carrier, 'tracestate', traceState);
    }
    const header = formatBaggage(baggage);
    if (header) writeHeader(carrier, 'baggage', header);
  } catch {
    // Only reachable through hostile objects (throwing getters on ctx or baggage): send nothing more.
  }
};

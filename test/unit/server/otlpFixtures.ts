import { toOtlpJson } from '../../../src/export/otlp';
import type { SpanRecord } from '../../../src/protocol';

/** Builders for OTLP/JSON requests, shared by the collector tests. */

let counter = 0;
const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** A span record with fresh ids, ending 10 ms after it starts. */
export const spanRecord = (over: Partial<SpanRecord> = {}): SpanRecord => {
  counter++;
  return {
    v: 1,
    rec: 'span',
    traceId: hex(counter, 32).replace(/^0/, 'a'),
    spanId: hex(counter, 16).replace(/^0/, 'b'),
    flags: 1,
    name: 'op',
    kind: 'internal',
    startMs: 1_732_140_000_000 + counter,
    endMs: 1_732_140_000_010 + counter,
    attrs: {},
    events: [],
    links: [],
    status: { code: 'unset' },
    resource: { attrs: { 'service.name': 'web' }, scope: { name: 'edgetrace', version: '0.1.0' } },
    ...over,
  };
};

/** An OTLP/JSON request body object for `spans`. */
export const otlpBody = (spans: SpanRecord[]) => toOtlpJson(spans) as unknown as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Record<string, unknown>[] }> }> };

/**
 * The binary protobuf form of a request for `spans`, as an OpenTelemetry SDK would send it, written
 * out by hand with the fields of trace.proto the collector needs: trace_id (1), span_id (2), name
 * (5), kind (6, server), start and end (7, 8: fixed64 nanoseconds of whole milliseconds).
 */
export const otlpProtobuf = (spans: SpanRecord[]): Uint8Array<ArrayBuffer> => {
  const varint = (n: number): number[] => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, ...varint(n >>> 7)]);
  const len = (num: number, payload: number[]): number[] => [(num << 3) | 2, ...varint(payload.length), ...payload];
  const nanos = (ms: number): number[] => {
    const b = new DataView(new ArrayBuffer(8));
    b.setBigUint64(0, BigInt(Math.round(ms)) * 1_000_000n, true);
    return [...new Uint8Array(b.buffer)];
  };
  const hexBytes = (h: string): number[] => h.match(/../g)!.map((x) => parseInt(x, 16));
  const span = (r: SpanRecord): number[] => [
    ...len(1, hexBytes(r.traceId)),
    ...len(2, hexBytes(r.spanId)),
    ...len(5, [...new TextEncoder().encode(r.name)]),
    (6 << 3) | 0, 2,
    (7 << 3) | 1, ...nanos(r.startMs),
    (8 << 3) | 1, ...nanos(r.endMs),
  ];
  return Uint8Array.from(len(1, len(2, spans.flatMap((r) => len(2, span(r))))));
};

/** A trace: a browser root, a server span under it, and a generation under that. */
export const chatTrace = (traceId: string, startMs: number, opts: { error?: boolean; user?: string; model?: string; cost?: number } = {}): SpanRecord[] => {
  const web = { attrs: { 'service.name': 'web' }, scope: { name: 'edgetrace' } };
  const api = { attrs: { 'service.name': 'api' }, scope: { name: 'edgetrace' } };
  const root = spanRecord({
    traceId,
    spanId: `${traceId.slice(0, 15)}1`,
    name: 'chat-turn',
    startMs,
    endMs: startMs + 100,
    attrs: { 'langfuse.trace.name': 'chat-turn', ...(opts.user ? { 'user.id': opts.user, 'session.id': `s-${opts.user}` } : {}) },
    resource: web,
  });
  const server = spanRecord({
    traceId,
    spanId: `${traceId.slice(0, 15)}2`,
    parentId: root.spanId,
    remoteParent: true,
    name: 'POST /api/chat',
    kind: 'server',
    startMs: startMs + 10,
    endMs: startMs + 90,
    // A server continuing the page's trace leaves langfuse.trace.name to the page's root.
    attrs: {},
    status: opts.error ? { code: 'error', message: 'HTTP 500' } : { code: 'unset' },
    resource: api,
  });
  const gen = spanRecord({
    traceId,
    spanId: `${traceId.slice(0, 15)}3`,
    parentId: server.spanId,
    name: 'llm',
    startMs: startMs + 20,
    endMs: startMs + 80,
    attrs: {
      'langfuse.observation.type': 'generation',
      'langfuse.observation.model.name': opts.model ?? 'gpt-4o',
      'gen_ai.request.model': opts.model ?? 'gpt-4o',
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 20,
      'gen_ai.usage.cost': opts.cost ?? 0.01,
    },
    resource: api,
  });
  return [root, server, gen];
};

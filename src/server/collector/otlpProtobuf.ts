/**
 * OTLP/HTTP binary protobuf (`application/x-protobuf`), the encoding most OpenTelemetry SDKs send
 * by default (Go, Java, Python, .NET, `@opentelemetry/exporter-trace-otlp-proto`).
 *
 * A request is read into the very shape an OTLP/JSON request parses to (lowerCamelCase keys, hex
 * ids, 64-bit integers as decimal strings, enums as numbers), so `decodeOtlp` checks both
 * encodings with the same rules and the same messages. The fields come from the official protos
 * (../shared/reference/otlp: trace.proto, common.proto, resource.proto, trace_service.proto);
 * unknown fields are skipped, as proto3 requires.
 */

import { bytesToBase64 } from '../../lib/base64';

/** Wire types (protobuf encoding): 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit. */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** How a field's bytes become its JSON value. */
type Kind =
  | 'string'
  | 'hex' // bytes shown as lowercase hex: trace and span ids (OTLP/JSON's one deviation)
  | 'base64' // other bytes, as proto3 JSON shows them
  | 'uint32'
  | 'int64' // decimal string
  | 'fixed32'
  | 'fixed64' // decimal string
  | 'bool'
  | 'double'
  | Schema;

/** One message: its name (for error texts) and its fields by number: [JSON name, kind, repeated]. */
interface Schema {
  name: string;
  fields: Record<number, readonly [string, Kind, boolean?]>;
  /** Every field is one member of a oneof: a later member replaces an earlier one. */
  oneof?: boolean;
}

const WIRE: Record<string, number> = { string: LEN, hex: LEN, base64: LEN, uint32: VARINT, int64: VARINT, fixed32: I32, fixed64: I64, bool: VARINT, double: I64 };

// Filled in below: AnyValue, ArrayValue, KeyValueList and KeyValue refer to each other.
const AnyValue: Schema = { name: 'AnyValue', fields: {}, oneof: true };
const KeyValue: Schema = { name: 'KeyValue', fields: { 1: ['key', 'string'], 2: ['value', AnyValue] } };
const ArrayValue: Schema = { name: 'ArrayValue', fields: { 1: ['values', AnyValue, true] } };
const KeyValueList: Schema = { name: 'KeyValueList', fields: { 1: ['values', KeyValue, true] } };
// Field 8 (string_value_strindex) belongs to profiles; other signals treat it as absent, as
// common.proto asks, by skipping it like an unknown field.
AnyValue.fields = {
  1: ['stringValue', 'string'],
  2: ['boolValue', 'bool'],
  3: ['intValue', 'int64'],
  4: ['doubleValue', 'double'],
  5: ['arrayValue', ArrayValue],
  6: ['kvlistValue', KeyValueList],
  7: ['bytesValue', 'base64'],
};

const Resource: Schema = { name: 'Resource', fields: { 1: ['attributes', KeyValue, true], 2: ['droppedAttributesCount', 'uint32'] } };
const Scope: Schema = {
  name: 'InstrumentationScope',
  fields: { 1: ['name', 'string'], 2: ['version', 'string'], 3: ['attributes', KeyValue, true], 4: ['droppedAttributesCount', 'uint32'] },
};
const Event: Schema = {
  name: 'Span.Event',
  fields: { 1: ['timeUnixNano', 'fixed64'], 2: ['name', 'string'], 3: ['attributes', KeyValue, true], 4: ['droppedAttributesCount', 'uint32'] },
};
const Link: Schema = {
  name: 'Span.Link',
  fields: {
    1: ['traceId', 'hex'],
    2: ['spanId', 'hex'],
    3: ['traceState', 'string'],
    4: ['attributes', KeyValue, true],
    5: ['droppedAttributesCount', 'uint32'],
    6: ['flags', 'fixed32'],
  },
};
const Status: Schema = { name: 'Status', fields: { 2: ['message', 'string'], 3: ['code', 'uint32'] } };
const Span: Schema = {
  name: 'Span',
  fields: {
    1: ['traceId', 'hex'],
    2: ['spanId', 'hex'],
    3: ['traceState', 'string'],
    4: ['parentSpanId', 'hex'],
    5: ['name', 'string'],
    6: ['kind', 'uint32'],
    7: ['startTimeUnixNano', 'fixed64'],
    8: ['endTimeUnixNano', 'fixed64'],
    9: ['attributes', KeyValue, true],
    10: ['droppedAttributesCount', 'uint32'],
    11: ['events', Event, true],
    12: ['droppedEventsCount', 'uint32'],
    13: ['links', Link, true],
    14: ['droppedLinksCount', 'uint32'],
    15: ['status', Status],
    16: ['flags', 'fixed32'],
  },
};
const ScopeSpans: Schema = { name: 'ScopeSpans', fields: { 1: ['scope', Scope], 2: ['spans', Span, true], 3: ['schemaUrl', 'string'] } };
const ResourceSpans: Schema = { name: 'ResourceSpans', fields: { 1: ['resource', Resource], 2: ['scopeSpans', ScopeSpans, true], 3: ['schemaUrl', 'string'] } };
const Request: Schema = { name: 'ExportTraceServiceRequest', fields: { 1: ['resourceSpans', ResourceSpans, true] } };

/**
 * Messages nested deeper than this are refused before they cost stack: a request is 4 levels to a
 * span and 2 per level of array or kvlist value, and `decodeOtlp` allows 8 of those.
 */
const MAX_NESTING = 40;

/** Malformed wire data; `at` is the field path, built as the error travels out. */
export class ProtobufError extends Error {
  constructor(
    public at: string,
    public problem: string,
  ) {
    super(problem);
  }
}

/**
 * Strict UTF-8: a body or string field that is not UTF-8 is refused, not read with U+FFFD in it.
 * One decoder serves every request (the collector's JSON bodies too): decode() without `stream`
 * keeps no state between calls.
 */
export const UTF8 = new TextDecoder('utf-8', { fatal: true });
const HEX = Array.from({ length: 256 }, (_, i) => (i < 16 ? '0' : '') + i.toString(16));

const toHex = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
};

/** A cursor over the request's bytes. */
class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  /** A varint as [low 32 bits, high 32 bits], both unsigned. */
  varint(end: number): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new ProtobufError('', 'ends inside a varint');
      const b = this.buf[this.pos++]!;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) return [lo >>> 0, hi >>> 0];
    }
    throw new ProtobufError('', 'has a varint longer than 10 bytes');
  }

  /** A varint that must fit 32 bits unsigned (tags and lengths). */
  uint32(end: number): number {
    const [lo, hi] = this.varint(end);
    if (hi) throw new ProtobufError('', 'has a tag or length beyond 32 bits');
    return lo;
  }

  /** Where `n` bytes from here end, when they are there before `end`. */
  upTo(n: number, end: number): number {
    if (n > end - this.pos) throw new ProtobufError('', `declares ${n} bytes where ${end - this.pos} are left`);
    return this.pos + n;
  }

  take(n: number, end: number): Uint8Array {
    const out = this.buf.subarray(this.pos, this.upTo(n, end));
    this.pos += n;
    return out;
  }

  /** Moves past a field of an unknown number. */
  skip(wire: number, end: number): void {
    if (wire === VARINT) this.varint(end);
    else if (wire === I64) this.take(8, end);
    else if (wire === LEN) this.take(this.uint32(end), end);
    else if (wire === I32) this.take(4, end);
    else throw new ProtobufError('', `uses wire type ${wire} (groups), which proto3 messages never contain`);
  }
}

const u64String = (lo: number, hi: number): string => (hi ? ((BigInt(hi) << 32n) | BigInt(lo)).toString() : String(lo));

const scalar = (r: Reader, kind: Exclude<Kind, Schema>, end: number): unknown => {
  switch (kind) {
    case 'string':
      try {
        return UTF8.decode(r.take(r.uint32(end), end));
      } catch (error) {
        if (error instanceof ProtobufError) throw error;
        throw new ProtobufError('', 'is not valid UTF-8');
      }
    case 'hex':
      return toHex(r.take(r.uint32(end), end));
    case 'base64':
      // Standard and padded, as the JSON path stores bytes values.
      return bytesToBase64(r.take(r.uint32(end), end));
    case 'uint32':
      // An enum or count: a negative one (10 bytes on the wire) is out of range, which the
      // OTLP checks then say in their own words.
      return r.varint(end)[0];
    case 'bool': {
      const [lo, hi] = r.varint(end);
      return lo !== 0 || hi !== 0;
    }
    case 'int64': {
      const [lo, hi] = r.varint(end);
      return hi ? BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString() : String(lo);
    }
    case 'fixed32': {
      const b = r.take(4, end);
      return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    }
    case 'fixed64': {
      const b = r.take(8, end);
      const view = new DataView(b.buffer, b.byteOffset, 8);
      return u64String(view.getUint32(0, true), view.getUint32(4, true));
    }
    case 'double': {
      const b = r.take(8, end);
      return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
    }
  }
};

const message = (r: Reader, schema: Schema, end: number, depth: number, out: Record<string, unknown> = {}): Record<string, unknown> => {
  if (depth > MAX_NESTING) throw new ProtobufError('', `nests messages deeper than ${MAX_NESTING} levels`);
  while (r.pos < end) {
    const tag = r.uint32(end);
    const num = tag >>> 3;
    const wire = tag & 7;
    // Field numbers start at 1; a 0 is no field a sender can write, so the bytes are not protobuf.
    if (num === 0) throw new ProtobufError('', 'has field number 0, which protobuf does not allow');
    const field = schema.fields[num];
    if (!field) {
      try {
        r.skip(wire, end);
      } catch (error) {
        throw along(error, `.<field ${num}>`);
      }
      continue;
    }
    const [name, kind, repeated] = field;
    const nested = typeof kind === 'object';
    const expected = nested ? LEN : WIRE[kind]!;
    let at = `.${name}`;
    try {
      if (wire !== expected) throw new ProtobufError('', `has wire type ${wire}; ${schema.name} field ${num} is wire type ${expected}`);
      let value: unknown;
      if (nested) {
        if (repeated) at += `[${((out[name] as unknown[] | undefined) ?? []).length}]`;
        const stop = r.upTo(r.uint32(end), end);
        // A message field that comes again is merged into the first, as protobuf parsers do.
        const merge = !repeated && !schema.oneof ? (out[name] as Record<string, unknown> | undefined) : undefined;
        value = message(r, kind, stop, depth + 1, merge);
      } else value = scalar(r, kind, end);
      // A later member of a oneof replaces the earlier one.
      if (schema.oneof) for (const k of Object.keys(out)) delete out[k];
      if (repeated) ((out[name] as unknown[] | undefined) ??= []).push(value);
      else out[name] = value;
    } catch (error) {
      throw along(error, at);
    }
  }
  return out;
};

/** Puts `segment` in front of a wire error's path; other errors pass unchanged. */
const along = (error: unknown, segment: string): unknown => {
  if (error instanceof ProtobufError) error.at = segment + error.at;
  return error;
};

/**
 * Reads a binary `ExportTraceServiceRequest` into the object its OTLP/JSON form parses to. Throws
 * a {@link ProtobufError} whose `message` names the field path and the problem.
 */
export const readOtlpProtobuf = (bytes: Uint8Array): Record<string, unknown> => {
  try {
    return message(new Reader(bytes), Request, bytes.length, 0);
  } catch (error) {
    if (!(error instanceof ProtobufError)) throw error;
    error.message = `the protobuf body ${error.at ? `at ${error.at.slice(1)} ` : ''}${error.problem}`;
    throw error;
  }
};

// --- replies ---

const encoder = new TextEncoder();

/** Appends a varint. */
const putVarint = (out: number[], n: number): void => {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
};

/** Appends field `num` as length-delimited `bytes`. */
const putBytes = (out: number[], num: number, bytes: ArrayLike<number>): void => {
  putVarint(out, (num << 3) | LEN);
  putVarint(out, bytes.length);
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]!);
};

/**
 * The two replies share one shape: field 1 a count (left out when 0) and field 2 a text (left out
 * when empty). `ExportTracePartialSuccess` is rejected_spans and error_message; `google.rpc.Status`
 * is code and message.
 */
const countAndText = (count: number, text: string): number[] => {
  const out: number[] = [];
  if (count > 0) {
    out.push((1 << 3) | VARINT);
    putVarint(out, count);
  }
  if (text) putBytes(out, 2, encoder.encode(text));
  return out;
};

/**
 * An `ExportTraceServiceResponse`: empty on full success, or with `partial_success` holding the
 * rejected count (a non-negative safe integer) and the message.
 */
export const encodeExportResponse = (partial?: { rejectedSpans: number; errorMessage: string }): Uint8Array<ArrayBuffer> => {
  if (!partial) return new Uint8Array(0);
  const out: number[] = [];
  putBytes(out, 1, countAndText(partial.rejectedSpans, partial.errorMessage));
  return Uint8Array.from(out);
};

/** A `google.rpc.Status` (code 1, message 2): the body of every 4xx and 5xx protobuf reply. */
export const encodeRpcStatus = (code: number, text: string): Uint8Array<ArrayBuffer> => Uint8Array.from(countAndText(code, text));

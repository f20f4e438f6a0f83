/**
 * Plain, structured-cloneable records shared by the page, the service worker and the exporters.
 * Types only: nothing here runs. Every record crosses postMessage and sits in IndexedDB as is,
 * so no class instances, functions or Blobs, and no field starts with `_`.
 */

/** A value an attribute can hold: what OTLP's AnyValue can carry without a nested map. */
export type AttributeValue =
  | string
  | number
  | boolean
  | readonly string[]
  | readonly number[]
  | readonly boolean[];

export type Attributes = Record<string, AttributeValue>;

/** OpenTelemetry span kinds, as words. Encoders turn them into OTLP's integers. */
export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

/** Langfuse observation types (`langfuse.observation.type`). */
export type ObservationType =
  | 'span'
  | 'generation'
  | 'event'
  | 'agent'
  | 'tool'
  | 'chain'
  | 'retriever'
  | 'evaluator'
  | 'embedding'
  | 'guardrail';

export type StatusCode = 'unset' | 'ok' | 'error';

export interface SpanStatus {
  code: StatusCode;
  message?: string;
}

/** A timed event inside a span (OTLP Span.Event). */
export interface SpanEventRecord {
  name: string;
  /** Epoch milliseconds, fractional for sub-millisecond precision. */
  timeMs: number;
  attrs?: Attributes;
  droppedAttrs?: number;
}

/** A link to another span, possibly in another trace (OTLP Span.Link). */
export interface SpanLinkRecord {
  traceId: string;
  spanId: string;
  traceState?: string;
  flags?: number;
  attrs?: Attributes;
}

/** Who produced a span: the OTLP resource and instrumentation scope. */
export interface ResourceRecord {
  /** Resource attributes such as `service.name`; shared by every span of one tracer. */
  attrs: Attributes;
  scope: { name: string; version?: string };
}

/**
 * One finished span. `v` is the schema version: bump it together with an Outbox upgrade.
 * Times are epoch milliseconds (fractional); encoders build nanosecond strings from them.
 */
export interface SpanRecord {
  v: 1;
  rec: 'span';
  /** 32 lowercase hex. */
  traceId: string;
  /** 16 lowercase hex. */
  spanId: string;
  /** 16 lowercase hex; absent for a root span. */
  parentId?: string;
  /** True when the parent came from another process (an incoming `traceparent`). */
  remoteParent?: boolean;
  /** W3C tracestate, serialised. */
  traceState?: string;
  /** W3C trace flags byte (bit 0 sampled, bit 1 random). */
  flags: number;
  name: string;
  kind: SpanKind;
  startMs: number;
  endMs: number;
  attrs: Attributes;
  events: SpanEventRecord[];
  links: SpanLinkRecord[];
  status: SpanStatus;
  /** What limits cut from this span, for OTLP's dropped counters. */
  dropped?: { attrs?: number; events?: number; links?: number };
  resource: ResourceRecord;
}

/** A score on a trace or observation (Langfuse `score-create`), e.g. user feedback. */
export interface ScoreRecord {
  v: 1;
  rec: 'score';
  /** Unique id; a re-send upserts instead of duplicating. */
  id: string;
  traceId: string;
  observationId?: string;
  sessionId?: string;
  name: string;
  value: number | string;
  dataType?: 'NUMERIC' | 'BOOLEAN' | 'CATEGORICAL' | 'TEXT';
  comment?: string;
  environment?: string;
  timeMs: number;
}

/** Anything that leaves a tracer for delivery. */
export type TelemetryRecord = SpanRecord | ScoreRecord;

/** What one export attempt came to. Backoff decisions read this value; exporters never throw. */
export type ExportResult =
  | { ok: true; rejected?: number; reason?: string }
  | { ok: false; retryable: boolean; retryAfterMs?: number; status?: number; reason: string };

/** Sends records somewhere. Implementations resolve with a result and never reject. */
export interface Exporter {
  export(records: readonly TelemetryRecord[]): Promise<ExportResult>;
  shutdown?(): Promise<void>;
}

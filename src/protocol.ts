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
  droppedAttrs?: number;
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
  /** 16 lowercase hex; absent (or undefined) for a root span. */
  parentId?: string | undefined;
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
  /** Entries as span metadata keeps them: text, numbers, booleans, lists; objects as JSON text. */
  metadata?: Attributes;
  /** A Langfuse score config the score must match (name, data type, range or categories). */
  configId?: string;
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

// --- worker API below ---

/**
 * How the outbox batches, retries and bounds what it holds. Every field has a default (see
 * `resolveDelivery`); the page passes its `delivery` options to the worker, and
 * `installTraceWorker()` takes the same fields.
 */
export interface DeliveryOptions {
  /** Records per request. Default 512. */
  maxBatchRecords?: number | undefined;
  /** Estimated JSON bytes per request; a single larger record still goes alone. Default 256000. */
  maxBatchBytes?: number | undefined;
  /** How long records may wait for a batch to fill before it is sent. Default 1000 ms. */
  flushIntervalMs?: number | undefined;
  /** First retry delay; it doubles per consecutive failure. Default 1000 ms. */
  backoffBaseMs?: number | undefined;
  /** Longest retry delay. Default 60000 ms. */
  backoffCapMs?: number | undefined;
  /**
   * After failing this long without a success the retry timer stops; records stay in the outbox
   * and the next trigger (new records, online, sync, start-up, flushNow) starts over. Default 900000 ms.
   */
  backoffMaxElapsedMs?: number | undefined;
  /** Share of each delay that is random, from 0 (none) to 1 (full jitter, the default). */
  backoffJitter?: number | undefined;
  /** Consecutive failed requests that open the circuit breaker. Default 5. */
  circuitFailures?: number | undefined;
  /** How long an open circuit waits before one probe request. Default 30000 ms. */
  circuitOpenMs?: number | undefined;
  /** Records the outbox holds; beyond it the oldest are dropped and counted. Default 10000. */
  maxRecords?: number | undefined;
  /** Estimated bytes the outbox holds; beyond it the oldest are dropped and counted. Default 5000000. */
  maxBytes?: number | undefined;
  /** Records older than this are dropped (and counted) instead of sent. Default 86400000 ms (a day). */
  maxAgeMs?: number | undefined;
  /** Batches kept in the dead-letter store; beyond it the oldest go. Default 50. */
  maxDeadLetters?: number | undefined;
  /** Abort a request after this long. Default 10000 ms. */
  requestTimeoutMs?: number | undefined;
}

/** Where the outbox sends: what the page tells the worker, persisted so a restarted worker knows. */
export interface DeliveryTarget {
  /** Absolute OTLP/HTTP trace endpoint, e.g. `https://example.com/v1/traces`. */
  endpoint?: string | undefined;
  /** Extra request headers, such as a public ingest token. */
  headers?: Record<string, string> | undefined;
}

/** The page's configuration for the worker: target plus delivery options. */
export interface DeliveryConfig extends DeliveryTarget {
  delivery?: DeliveryOptions | undefined;
  /**
   * When the page called `init()` (epoch ms): the worker, and the tabs' page outboxes, take a
   * configuration only when it is no older than the one they use, and it is saved with the target.
   * A tab left open since before a deploy or token rotation keeps reconnecting; it cannot switch
   * them back to its own endpoint and headers (a revoked token would send the shared outbox to the
   * dead letters). Pages of an earlier release send none: theirs is taken only while no
   * configuration with a time is in use.
   */
  at?: number;
}

/** Circuit breaker state: `open` sends nothing until a probe is due, `half-open` sends one probe. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What the delivery path is doing; from `getStatus()` and `subscribe()`. Counts are since the outbox was created. */
export interface DeliveryStatus {
  /** Which path carries records: the service worker, the page outbox, memory only, or none yet. */
  transport: 'worker' | 'page' | 'memory' | 'none';
  /** Records waiting: in the outbox plus, from the page, those not yet handed over. */
  queued: number;
  /** Records in the request now under way. */
  inFlight: number;
  /** Records the receiver accepted (a 2xx), not counting spans it rejected in a partial success. */
  delivered: number;
  /** Records dropped by a bound (count, bytes, age, quota, page buffer). */
  dropped: number;
  /** Records moved to the dead-letter store (4xx other than 408/429, or 413 for a single record). */
  deadLettered: number;
  /** Spans the receiver accepted the request for but rejected (OTLP `partialSuccess.rejectedSpans`). */
  rejected: number;
  /**
   * The last failure's reason (or a partial success's: what the receiver said of the spans it
   * rejected), until the next success. A refused batch keeps its reason in the dead letters.
   */
  lastError?: string;
  /** Epoch ms of the next scheduled attempt, when one is scheduled. */
  nextAttemptAt?: number;
  circuit: CircuitState;
  /**
   * In a page, why records do not take the path asked for (the service worker, for the default
   * `transport: "auto"`): e.g. `no service worker (…the registration error…)`, or `no Web Locks:
   * not a secure context (https, localhost)`. Absent while they do.
   */
  fallback?: string;
}

/** What `flushNow()` came to. */
export type FlushResult = { ok: true; sent: number } | { ok: false; retryable: boolean; reason: string };

/** One batch the receiver refused for good, kept for inspection. */
export interface DeadLetterRecord {
  atMs: number;
  /** HTTP status, when there was a reply. */
  status?: number;
  reason: string;
  records: TelemetryRecord[];
}

/**
 * What the service worker exposes to pages over comlink. Methods resolve with results and never
 * reject on purpose (comlink re-creates thrown errors as plain `Error`s).
 */
export interface WorkerApi {
  /** Sets the endpoint, headers and delivery options (the worker's own install options win). */
  configure(config: DeliveryConfig): Promise<void>;
  /**
   * Commits records to the outbox in one transaction and resolves once they are stored, with how
   * many were accepted. `urgent` (the page is going away) starts a flush at once.
   */
  enqueue(records: TelemetryRecord[] | PackedRecords, urgent?: boolean): Promise<number>;
  /** Sends what the outbox holds now, bypassing ordinary backoff (not a server's Retry-After). */
  flushNow(): Promise<FlushResult>;
  getStatus(): Promise<DeliveryStatus>;
  /** The dead-letter store, oldest first. */
  deadLetters(): Promise<DeadLetterRecord[]>;
}

/**
 * Span records flattened for the page → worker hand-off (see `packRecords`): the nine fields every
 * span has, in a fixed order, one flat array for the whole batch; the fields most spans leave at
 * their defaults travel only for the spans that set them. The structured clone then copies a
 * fraction of the objects it would for the records as they are (measured in Chromium: 0.36 µs a
 * span against 0.9 for the records).
 */
export interface PackedRecords {
  packed: 2;
  /** The common fields of each span, one span after another. */
  spans: unknown[];
  /** Pairs of (span index, the span's other fields that differ from their defaults). */
  rare: unknown[];
  /** The resource of the first span; spans with another one carry it in `rare`. */
  resource: ResourceRecord | undefined;
  /** Records that are not spans, as they are. */
  others: TelemetryRecord[];
}

import type {
  AttributeValue,
  Attributes,
  ObservationType,
  ScoreRecord,
  SpanEventRecord,
  SpanKind,
  SpanLinkRecord,
  SpanRecord,
  SpanStatus,
  StatusCode,
} from '../protocol';
import type { ResolvedConfig } from '../config';
import type { ContextManager } from './context';
import type { SpanContext } from '../propagation/traceparent';
import { FLAG_SAMPLED, formatTraceparent } from '../propagation/traceparent';
import { newId, newSpanId } from '../lib/ids';
import { safeJson } from '../lib/safeJson';
import { reportInternal } from '../lib/reportInternal';
import { redactSecrets, redactUrl } from './redact';
import { computeCost, findPrice, type Cost, type Usage } from './cost';
import * as A from './semconv';

/**
 * What spans share with their tracer. Internal: spans call it, users never see it.
 */
export interface TracerCore {
  readonly cfg: ResolvedConfig;
  readonly ctx: ContextManager;
  readonly resource: SpanRecord['resource'];
  now(): number;
  started(span: Span): void;
  emit(span: Span): void;
  emitScore(score: ScoreRecord): void;
}

/** What the spans of one trace share within this process. */
export interface TraceShared {
  readonly core: TracerCore;
  /** Spans started and not yet ended, so that `finish()` can end them. */
  readonly open: Set<Span>;
  userId?: string;
  sessionId?: string;
  tags?: Set<string>;
  rootEnded?: boolean;
}

/** Options for starting a span. */
export interface SpanOptions {
  /** OpenTelemetry span kind. Default `internal`. */
  kind?: SpanKind;
  /** Langfuse observation type. Default `span`. */
  type?: ObservationType;
  /** Attributes to set at start. */
  attributes?: Record<string, unknown>;
  /** Input of the operation (`langfuse.observation.input`). */
  input?: unknown;
  /** Start time in epoch ms. Default now. */
  startMs?: number;
  /** Links to other spans. */
  links?: Array<{ context: SpanContext; attributes?: Attributes }>;
}

/** Options for a generation (an LLM call). */
export interface GenerationOptions extends Omit<SpanOptions, 'type'> {
  /** Model name, e.g. `gpt-4o`; also selects the price for cost. */
  model?: string;
  /** Model parameters such as temperature. */
  modelParameters?: Record<string, unknown>;
}

/** Score options: free-text comment and explicit data type. */
export interface ScoreOptions {
  comment?: string;
  dataType?: ScoreRecord['dataType'];
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';

// Attribute keys whose values are URLs: their query values are redacted by default.
const URL_KEYS = new Set(['url.full', 'http.url', 'url.query', 'http.target', 'server.url']);

const errorParts = (error: unknown): { type: string; message: string; stack?: string } => {
  if (error instanceof Error) return { type: error.name || 'Error', message: error.message, stack: error.stack };
  if (error !== null && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; stack?: unknown };
    if (typeof e.message === 'string') {
      return { type: typeof e.name === 'string' ? e.name : 'Error', message: e.message, stack: typeof e.stack === 'string' ? e.stack : undefined };
    }
  }
  return { type: typeof error, message: safeJson(error) };
};

/**
 * Runs `fn` with `span` current, ends the span when `fn` returns or its promise settles, and
 * records a throw or rejection as an error before passing it on unchanged.
 */
export const runInSpan = <S extends Span, R>(span: S, fn: (span: S) => R): R => {
  let result: R;
  try {
    result = span.t.core.ctx.with(span, () => fn(span));
  } catch (error) {
    span.recordError(error);
    span.end();
    throw error;
  }
  if (isThenable(result)) {
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        span.recordError(error);
        span.end();
        throw error;
      },
    ) as R;
  }
  span.end();
  return result;
};

/**
 * One timed operation. A span records only when its trace is sampled; otherwise every method is
 * a cheap no-op but ids still propagate. No method throws.
 *
 * A class rather than closures: thousands of spans share one prototype instead of each holding
 * two dozen function objects.
 */
export class Span {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentId: string | undefined;
  readonly flags: number;
  readonly traceState: string | undefined;
  readonly remoteParent: boolean;
  /** Whether this span produces a record (its trace is sampled). */
  readonly isRecording: boolean;
  name: string;
  readonly kind: SpanKind;
  readonly type: ObservationType;
  readonly startMs: number;
  endMs: number | undefined;
  /** @internal */ readonly t: TraceShared;
  /** @internal Marks the `traced()` wrapper that opened this span, to spot re-entry. */
  origin: unknown;
  /** @internal */ attrs: Attributes = {};
  /** @internal */ status: SpanStatus = { code: 'unset' };
  /** @internal */ events: SpanEventRecord[] | undefined;
  /** @internal */ links: SpanLinkRecord[] | undefined;
  /** @internal */ nAttrs = 0;
  /** @internal */ droppedAttrs = 0;
  /** @internal */ droppedEvents = 0;
  /** @internal */ droppedLinks = 0;
  /** @internal */ truncated = 0;
  /** @internal */ model: string | undefined;
  /** @internal */ usage: Usage | undefined;
  /** @internal */ hasCost = false;

  /** @internal Use `trace.span()`, `span.startSpan()` or `tracer.startSpan()`. */
  constructor(
    t: TraceShared,
    name: string,
    opts: SpanOptions | undefined,
    parent: { traceId: string; spanId?: string; flags: number; traceState?: string; remote?: boolean },
  ) {
    this.t = t;
    this.traceId = parent.traceId;
    this.spanId = newSpanId();
    this.parentId = parent.spanId;
    this.flags = parent.flags;
    this.traceState = parent.traceState;
    this.remoteParent = parent.remote === true;
    this.isRecording = (parent.flags & FLAG_SAMPLED) === FLAG_SAMPLED;
    this.name = typeof name === 'string' && name ? name : 'span';
    this.kind = opts?.kind ?? 'internal';
    this.type = opts?.type ?? 'span';
    this.startMs = typeof opts?.startMs === 'number' ? opts.startMs : t.core.now();
    this.endMs = undefined;
    this.origin = undefined;
    t.open.add(this);
    if (!this.isRecording) return;
    if (this.type !== 'span') this.put(A.OBSERVATION_TYPE, this.type);
    if (opts) {
      if (opts.attributes) this.setAttributes(opts.attributes);
      if (opts.input !== undefined) this.setInput(opts.input);
      if (opts.links) for (const l of opts.links) this.addLink(l.context, l.attributes);
    }
    t.core.started(this);
  }

  /** True once `end()` ran. */
  get isEnded(): boolean {
    return this.endMs !== undefined;
  }

  /** The W3C identity of this span, for propagation and links. */
  spanContext(): SpanContext {
    return { traceId: this.traceId, spanId: this.spanId, flags: this.flags, traceState: this.traceState };
  }

  /** The `traceparent` header value that makes this span the parent of a remote call. */
  traceparent(): string {
    return formatTraceparent(this);
  }

  // --- attributes ---

  /** @internal Sets one attribute after limits, truncation and redaction; no-op once ended. */
  put(key: string, value: unknown): void {
    if (this.isRecording && this.endMs === undefined) this.write(key, value);
  }

  /** @internal `put()` without the ended check, for the attributes `end()` adds. */
  write(key: string, value: unknown): void {
    const clean = this.clean(key, value);
    if (clean === undefined) return;
    const attrs = this.attrs;
    if (!(key in attrs)) {
      if (this.nAttrs >= this.t.core.cfg.maxAttributes) {
        this.droppedAttrs++;
        return;
      }
      this.nAttrs++;
    }
    attrs[key] = clean;
  }

  /** @internal Shortens and redacts a string per the tracer's limits. */
  cleanString(value: string, key?: string): string {
    const cfg = this.t.core.cfg;
    let s = value;
    if (s.length > cfg.maxStringLength) {
      s = s.slice(0, cfg.maxStringLength);
      this.truncated++;
    }
    if (cfg.secretPatterns.length) s = redactSecrets(s, cfg.secretPatterns);
    if (cfg.redactQuery && key !== undefined && URL_KEYS.has(key)) s = redactUrl(s, cfg.keepQueryKeys);
    return s;
  }

  private clean(key: string, value: unknown): AttributeValue | undefined {
    switch (typeof value) {
      case 'string':
        return this.cleanString(value, key);
      case 'number':
      case 'boolean':
        return value;
      case 'undefined':
        return undefined;
    }
    if (value === null) return undefined;
    if (Array.isArray(value) && value.length > 0) {
      const first = typeof value[0];
      if ((first === 'string' || first === 'number' || first === 'boolean') && value.every((v) => typeof v === first)) {
        return first === 'string' ? (value as string[]).map((v) => this.cleanString(v)) : (value.slice() as number[] | boolean[]);
      }
    }
    // Objects, BigInt, functions, Errors, DOM nodes: stored as JSON text, never thrown on.
    return this.cleanString(safeJson(value), key);
  }

  /** Sets an attribute. Non-primitive values are stored as JSON text. */
  setAttribute(key: string, value: unknown): this {
    try {
      if (typeof key === 'string' && key) this.put(key, value);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Sets several attributes. */
  setAttributes(attributes: Record<string, unknown>): this {
    try {
      if (attributes && typeof attributes === 'object') for (const key of Object.keys(attributes)) this.put(key, attributes[key]);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** @internal Prefix for metadata keys: trace metadata on a trace's root, observation metadata elsewhere. */
  metadataPrefix(): string {
    return A.OBSERVATION_METADATA;
  }

  /** Adds metadata entries (`langfuse.observation.metadata.<key>`), as an object or one key and value. */
  addMetadata(metadata: Record<string, unknown> | string, value?: unknown): this {
    try {
      const prefix = this.metadataPrefix();
      if (typeof metadata === 'string') this.put(`${prefix}.${metadata}`, value);
      else if (metadata && typeof metadata === 'object') for (const k of Object.keys(metadata)) this.put(`${prefix}.${k}`, metadata[k]);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** @internal Applies the `mask` hook and stores input or output as text. */
  io(key: string, value: unknown, field: 'input' | 'output'): void {
    if (!this.isRecording) return;
    let v = value;
    const mask = this.t.core.cfg.mask;
    if (mask) {
      try {
        v = mask(value, field);
      } catch (error) {
        // A failing mask must not leak the unmasked value.
        reportInternal(error);
        v = '[mask failed]';
      }
    }
    if (v !== undefined) this.put(key, safeJson(v));
  }

  /** Records the operation's input (a prompt, arguments). Passed through `mask`, stored as JSON text. */
  setInput(input: unknown): this {
    try {
      this.io(A.OBSERVATION_INPUT, input, 'input');
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Records the operation's output. Passed through `mask`, stored as JSON text. */
  setOutput(output: unknown): this {
    try {
      this.io(A.OBSERVATION_OUTPUT, output, 'output');
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Adds tags to the trace (`langfuse.trace.tags`). */
  addTag(...tags: string[]): this {
    for (const tag of tags) if (typeof tag === 'string' && tag) (this.t.tags ??= new Set()).add(tag);
    return this;
  }

  /** Renames the span. */
  updateName(name: string): this {
    if (typeof name === 'string' && name && this.endMs === undefined) this.name = name;
    return this;
  }

  /** Sets the status; `error` also sets the Langfuse level to ERROR with the message. */
  setStatus(code: StatusCode, message?: string): this {
    try {
      if (this.endMs !== undefined || (code !== 'ok' && code !== 'error' && code !== 'unset')) return this;
      this.status = code === 'error' && message !== undefined ? { code, message: this.cleanString(String(message)) } : { code };
      if (code === 'error') {
        this.put(A.OBSERVATION_LEVEL, 'ERROR');
        if (message !== undefined) this.put(A.OBSERVATION_STATUS_MESSAGE, String(message));
      }
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Records an exception event (type, message, stack) and sets the error status. Any thrown value works. */
  recordError(error: unknown): this {
    try {
      const { type, message, stack } = errorParts(error);
      const attrs: Record<string, unknown> = { [A.EXCEPTION_TYPE]: type, [A.EXCEPTION_MESSAGE]: message };
      if (stack) attrs[A.EXCEPTION_STACKTRACE] = stack;
      this.recordEvent(A.EXCEPTION_EVENT, attrs);
      this.setStatus('error', message);
    } catch (e) {
      reportInternal(e);
    }
    return this;
  }

  /** Adds a timed event to this span (an OpenTelemetry span event). */
  recordEvent(name: string, attributes?: Record<string, unknown>, timeMs?: number): this {
    try {
      if (!this.isRecording || this.endMs !== undefined) return this;
      const events = (this.events ??= []);
      if (events.length >= this.t.core.cfg.maxEvents) {
        this.droppedEvents++;
        return this;
      }
      const event: SpanEventRecord = { name: this.cleanString(String(name)), timeMs: typeof timeMs === 'number' ? timeMs : this.t.core.now() };
      if (attributes && typeof attributes === 'object') {
        const attrs: Attributes = {};
        let n = 0;
        let dropped = 0;
        for (const key of Object.keys(attributes)) {
          const v = this.clean(key, attributes[key]);
          if (v === undefined) continue;
          if (n++ >= this.t.core.cfg.maxAttributes) dropped++;
          else attrs[key] = v;
        }
        event.attrs = attrs;
        if (dropped) event.droppedAttrs = dropped;
      }
      events.push(event);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Links this span to another span, in this trace or another. */
  addLink(context: SpanContext, attributes?: Attributes): this {
    try {
      if (!this.isRecording || this.endMs !== undefined || !context || typeof context.traceId !== 'string') return this;
      const links = (this.links ??= []);
      if (links.length >= this.t.core.cfg.maxLinks) {
        this.droppedLinks++;
        return this;
      }
      const link: SpanLinkRecord = { traceId: context.traceId, spanId: context.spanId, flags: context.flags };
      if (context.traceState) link.traceState = context.traceState;
      if (attributes) link.attrs = attributes;
      links.push(link);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  // --- children ---

  /** Starts a child span that you end yourself with `end()`. */
  startSpan(name: string, opts?: SpanOptions): Span {
    return new Span(this.t, name, opts, this.asParent());
  }

  /** Starts a child generation that you end yourself with `end()`. */
  startGeneration(name: string, opts?: GenerationOptions): Generation {
    return new Generation(this.t, name, opts, this.asParent());
  }

  /**
   * Runs `fn` in a child span: timed, current while it runs, ended when it returns or settles.
   * A throw or rejection is recorded and passed on unchanged.
   */
  span<R>(name: string, fn: (span: Span) => R): R;
  span<R>(name: string, opts: SpanOptions, fn: (span: Span) => R): R;
  span<R>(name: string, a: SpanOptions | ((span: Span) => R), b?: (span: Span) => R): R {
    const [opts, fn] = typeof a === 'function' ? [undefined, a] : [a, b as (span: Span) => R];
    return runInSpan(this.startSpan(name, opts), fn);
  }

  /** Runs `fn` in a child generation (an LLM call), like `span()`. */
  generation<R>(name: string, opts: GenerationOptions, fn: (generation: Generation) => R): R {
    return runInSpan(this.startGeneration(name, opts), fn);
  }

  /** Records a point-in-time observation (Langfuse event) under this span, with optional metadata. */
  event(name: string, metadata?: Record<string, unknown>): this {
    try {
      const child = new Span(this.t, name, { type: 'event' }, this.asParent());
      if (metadata) child.addMetadata(metadata);
      child.end(child.startMs);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Scores this observation (user feedback, an evaluation). Booleans are sent as 1/0 BOOLEAN scores. */
  score(name: string, value: number | string | boolean, opts?: ScoreOptions): this {
    try {
      if (typeof name !== 'string' || !name) return this;
      const score: ScoreRecord = {
        v: 1,
        rec: 'score',
        id: newId(),
        traceId: this.traceId,
        name,
        value: typeof value === 'boolean' ? (value ? 1 : 0) : value,
        timeMs: this.t.core.now(),
      };
      if (!this.isTraceRoot()) score.observationId = this.spanId;
      const dataType = opts?.dataType ?? (typeof value === 'boolean' ? 'BOOLEAN' : undefined);
      if (dataType) score.dataType = dataType;
      if (opts?.comment) score.comment = String(opts.comment);
      if (this.t.sessionId) score.sessionId = this.t.sessionId;
      const env = this.t.core.cfg.environment;
      if (env) score.environment = env;
      this.t.core.emitScore(score);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** @internal */
  isTraceRoot(): boolean {
    return false;
  }

  /** @internal */
  asParent(): { traceId: string; spanId: string; flags: number; traceState?: string } {
    return this;
  }

  // --- generation fields (set by Generation, read at end) ---

  /** @internal Cost from the price table, unless set explicitly. */
  priceIt(): void {
    const prices = this.t.core.cfg.prices;
    if (this.hasCost || !this.usage || !this.model || !prices) return;
    const price = findPrice(prices, this.model);
    const cost = price && computeCost(this.usage, price);
    if (cost) this.writeCost(cost);
  }

  /** @internal */
  writeCost(cost: Cost): void {
    this.hasCost = true;
    this.write(A.COST_DETAILS, JSON.stringify(cost));
    if (cost.total !== undefined) this.write(A.GEN_AI_COST, cost.total);
  }

  // --- end ---

  /** Ends the span (now, or at `endMs`). Later calls do nothing. */
  end(endMs?: number): void {
    if (this.endMs !== undefined) return;
    try {
      const t = this.t;
      const end = typeof endMs === 'number' ? endMs : t.core.now();
      // A clock that went backwards must not give a negative duration.
      this.endMs = end < this.startMs ? this.startMs : end;
      t.open.delete(this);
      if (!this.isRecording) return;
      this.finalAttrs();
      t.core.emit(this);
    } catch (error) {
      reportInternal(error);
    }
  }

  /** @internal Attributes known only at the end: usage cost, trace user/session/tags, truncation count. */
  finalAttrs(): void {
    const t = this.t;
    if (this.usage) this.priceIt();
    if (t.userId) this.write(A.USER_ID, t.userId);
    if (t.sessionId) this.write(A.SESSION_ID, t.sessionId);
    if (t.tags?.size && (this.isTraceRoot() || t.rootEnded)) this.write(A.TRACE_TAGS, [...t.tags]);
    if (this.truncated) this.write(A.TRUNCATED, this.truncated);
  }

  /** @internal The plain record for delivery. */
  toRecord(): SpanRecord {
    const rec: SpanRecord = {
      v: 1,
      rec: 'span',
      traceId: this.traceId,
      spanId: this.spanId,
      flags: this.flags,
      name: this.name,
      kind: this.kind,
      startMs: this.startMs,
      endMs: this.endMs as number,
      attrs: this.attrs,
      events: this.events ?? [],
      links: this.links ?? [],
      status: this.status,
      resource: this.t.core.resource,
    };
    if (this.parentId !== undefined) rec.parentId = this.parentId;
    if (this.remoteParent) rec.remoteParent = true;
    if (this.traceState) rec.traceState = this.traceState;
    if (this.droppedAttrs || this.droppedEvents || this.droppedLinks) {
      rec.dropped = { attrs: this.droppedAttrs, events: this.droppedEvents, links: this.droppedLinks };
    }
    return rec;
  }
}

/** A span for an LLM call: model, parameters, usage, cost and first-token time. */
export class Generation extends Span {
  /** @internal */
  constructor(t: TraceShared, name: string, opts: GenerationOptions | undefined, parent: ConstructorParameters<typeof Span>[3]) {
    super(t, name, { ...opts, type: 'generation' }, parent);
    if (!this.isRecording || !opts) return;
    if (opts.model) this.setModel(opts.model);
    if (opts.modelParameters) this.put(A.MODEL_PARAMETERS, safeJson(opts.modelParameters));
  }

  /** Sets the model name (and `gen_ai.request.model`). */
  setModel(model: string): this {
    if (typeof model === 'string' && model) {
      this.model = model;
      this.put(A.MODEL_NAME, model);
      this.put(A.GEN_AI_REQUEST_MODEL, model);
    }
    return this;
  }

  /** Sets token usage, e.g. `{ input: 812, output: 96 }`. Cost follows from `prices` unless set. */
  setUsage(usage: Usage): this {
    try {
      if (!usage || typeof usage !== 'object') return this;
      const clean: Usage = {};
      for (const [k, v] of Object.entries(usage)) if (typeof v === 'number' && Number.isFinite(v) && v >= 0) clean[k] = Math.round(v);
      this.usage = clean;
      this.put(A.USAGE_DETAILS, JSON.stringify(clean));
      if (clean.input !== undefined) this.put(A.GEN_AI_INPUT_TOKENS, clean.input);
      if (clean.output !== undefined) this.put(A.GEN_AI_OUTPUT_TOKENS, clean.output);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Sets the cost in USD explicitly: a total, or by usage type. */
  setCost(cost: number | Cost): this {
    try {
      const c: Cost = typeof cost === 'number' ? { total: cost } : { ...cost };
      if (c.total === undefined) c.total = Object.values(c).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
      if (this.isRecording && this.endMs === undefined) this.writeCost(c);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Marks when the first token arrived (`completion_start_time`), now by default. */
  setCompletionStart(timeMs?: number): this {
    try {
      const t = typeof timeMs === 'number' ? timeMs : this.t.core.now();
      this.put(A.COMPLETION_START_TIME, new Date(t).toISOString());
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }
}

import type { Attributes, SpanKind } from '../protocol';
import { isValidSpanId, isValidTraceId, type SpanContext } from '../propagation/traceparent';
import { getTracestate, setTracestate, unsetTracestate } from '../propagation/tracestate';
import { SPAN_KINDS } from '../config';
import { epochOf } from '../lib/now';
import { reportInternal } from '../lib/reportInternal';
import { safeJson } from '../lib/safeJson';
import { SDK_NAME } from '../lib/sdk';
import { getTracer } from './global';
import { eachEntry, errorParts, isPromise, kNext, kT, priceOf, Span, tellAwaiting, writeCostAttrs } from './span';
import { Trace } from './trace';
import type { Usage } from './cost';
import * as A from './semconv';
import type { StartSpanOptions, Tracer } from './tracer';

// The shapes of the OpenTelemetry JavaScript API (`@opentelemetry/api` 1.x) that libraries call,
// written out here so that edgetrace depends on no OpenTelemetry package. They are structurally
// the API's own: an `OtelTracer` can be passed wherever the API's `Tracer` is asked for.

/** OpenTelemetry `TimeInput`: epoch or `performance.now()` milliseconds, `[seconds, nanoseconds]`, or a `Date`. */
export type OtelTimeInput = number | [number, number] | Date;

/** OpenTelemetry `TraceState`. */
export interface OtelTraceState {
  set(key: string, value: string): OtelTraceState;
  unset(key: string): OtelTraceState;
  get(key: string): string | undefined;
  serialize(): string;
}

/** OpenTelemetry `SpanContext`. */
export interface OtelSpanContext {
  traceId: string;
  spanId: string;
  isRemote?: boolean;
  traceFlags: number;
  traceState?: OtelTraceState;
}

/** OpenTelemetry `Context`: where libraries carry the span they parent others to. */
export interface OtelContext {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): OtelContext;
  deleteValue(key: symbol): OtelContext;
}

/** OpenTelemetry `Link`. */
export interface OtelLink {
  context: OtelSpanContext;
  attributes?: Record<string, unknown>;
  droppedAttributesCount?: number;
}

/** OpenTelemetry `SpanOptions`. */
export interface OtelSpanOptions {
  /** OpenTelemetry `SpanKind`: 0 internal, 1 server, 2 client, 3 producer, 4 consumer. */
  kind?: number | undefined;
  attributes?: Record<string, unknown> | undefined;
  links?: OtelLink[] | undefined;
  startTime?: OtelTimeInput | undefined;
  /** A new trace, whatever the context holds. */
  root?: boolean | undefined;
}

/** OpenTelemetry `SpanStatus`: code 0 unset, 1 ok, 2 error. */
export interface OtelSpanStatus {
  code: number;
  message?: string;
}

/** OpenTelemetry `Span`, backed by an edgetrace {@link Span}. */
export interface OtelSpan {
  spanContext(): OtelSpanContext;
  setAttribute(key: string, value: unknown): this;
  setAttributes(attributes: Record<string, unknown>): this;
  addEvent(name: string, attributesOrStartTime?: Record<string, unknown> | OtelTimeInput, startTime?: OtelTimeInput): this;
  addLink(link: OtelLink): this;
  addLinks(links: OtelLink[]): this;
  setStatus(status: OtelSpanStatus): this;
  updateName(name: string): this;
  end(endTime?: OtelTimeInput): void;
  isRecording(): boolean;
  recordException(exception: unknown, time?: OtelTimeInput): void;
}

/** OpenTelemetry `Tracer`. */
export interface OtelTracer {
  startSpan(name: string, options?: OtelSpanOptions, context?: OtelContext): OtelSpan;
  startActiveSpan<F extends (span: OtelSpan) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: OtelSpan) => unknown>(name: string, options: OtelSpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: OtelSpan) => unknown>(name: string, options: OtelSpanOptions, context: OtelContext, fn: F): ReturnType<F>;
}

/** OpenTelemetry `TracerProvider`. */
export interface OtelTracerProvider {
  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): OtelTracer;
}

/** The key under which the API's `trace.setSpan()` keeps a span in a context (`createContextKey` is `Symbol.for`). */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');

/** OpenTelemetry `ContextManager`: the part the bridge calls. */
interface OtelContextManager {
  active(): OtelContext;
  with<R>(context: OtelContext, fn: () => R): R;
}

/** Where the API (1.x) keeps what was registered globally: `context` is the context manager. */
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');

/**
 * The context manager registered with the API (`context.setGlobalContextManager()`), if any. Read
 * where the API itself keeps it, so that a span made active here is what `trace.getActiveSpan()`
 * and `context.active()` see, as with OpenTelemetry's own SDK.
 */
const contextManager = (): OtelContextManager | undefined => {
  try {
    const cm = (globalThis as { [OTEL_GLOBAL]?: { context?: OtelContextManager } })[OTEL_GLOBAL]?.context;
    return typeof cm?.active === 'function' && typeof cm.with === 'function' ? cm : undefined;
  } catch {
    return undefined;
  }
};

const isTimeInput = (v: unknown): v is OtelTimeInput =>
  typeof v === 'number' || v instanceof Date || (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number');

/**
 * Epoch milliseconds of an OpenTelemetry time, or undefined for "now". A number no larger than
 * the performance clock's reading (plus a minute) is a `performance.now()` reading; anything
 * larger is epoch milliseconds. (The OpenTelemetry SDK takes every number below the clock's origin
 * for a `performance.now()` reading, which puts an epoch time from before the page opened decades
 * ahead.)
 */
const toMs = (t: unknown): number | undefined => {
  if (t instanceof Date) return t.getTime();
  if (Array.isArray(t)) return isTimeInput(t) ? (t[0] as number) * 1000 + (t[1] as number) / 1e6 : undefined;
  if (typeof t !== 'number') return undefined;
  const perf = (globalThis as { performance?: { now?: () => number; timeOrigin?: number } }).performance;
  if (typeof perf?.now !== 'function' || t > perf.now() + 60_000) return t;
  // Where the origin is 0 (Cloudflare Workers), the performance clock reads epoch milliseconds.
  return epochOf(t) ?? (!(Number(perf.timeOrigin) > 0) ? t : undefined);
};

/** A normalised W3C tracestate as the API's `TraceState`; a change returns a new one. */
const traceStateOf = (state: string | undefined): OtelTraceState => ({
  get: (key) => getTracestate(state, key),
  set: (key, value) => traceStateOf(setTracestate(state, key, value)),
  unset: (key) => traceStateOf(unsetTracestate(state, key)),
  serialize: () => state ?? '',
});

/** An edgetrace span context from the API's, or undefined when it is not a valid W3C one. */
const fromOtelContext = (c: OtelSpanContext | undefined): SpanContext | undefined => {
  if (!c || typeof c !== 'object') return undefined;
  let traceState: string | undefined;
  try {
    traceState = c.traceState?.serialize() || undefined;
  } catch (error) {
    reportInternal(error);
  }
  const out = { traceId: c.traceId, spanId: c.spanId, flags: typeof c.traceFlags === 'number' ? c.traceFlags & 0xff : 0, traceState };
  return isValidTraceId(out.traceId) && isValidSpanId(out.spanId) ? out : undefined;
};

const toLinks = (links: unknown): StartSpanOptions['links'] => {
  if (!Array.isArray(links)) return undefined;
  const out: NonNullable<StartSpanOptions['links']> = [];
  for (const l of links as OtelLink[]) {
    const context = fromOtelContext(l?.context);
    if (context) out.push({ context, attributes: l.attributes as Attributes | undefined });
  }
  return out;
};

/**
 * The cost of a model call an instrumentation recorded through the API (the AI SDK's
 * `doStream`/`doGenerate` spans, OpenLLMetry's): from its `gen_ai.usage.*` token counts and its
 * model (the response's, else, when that has no price, the request's) at the tracer's `prices`, as a generation gets its
 * own, unless the span carries a cost already. Counts that include cached input are priced at the
 * input price, as the instrumentation does not tell them apart.
 */
const priceModelCall = (span: Span): void => {
  const prices = span[kT].core.cfg.prices;
  const a = span.attrs;
  if (!prices || !span.isRecording || a[A.GEN_AI_COST] !== undefined || a[A.COST_DETAILS] !== undefined) return;
  const usage: Usage = {};
  const input = a[A.GEN_AI_INPUT_TOKENS];
  const output = a[A.GEN_AI_OUTPUT_TOKENS];
  if (typeof input === 'number') usage.input = input;
  if (typeof output === 'number') usage.output = output;
  // No counts, no cost: the price look-ups below would find one only to compute nothing.
  if (usage.input === undefined && usage.output === undefined) return;
  // The dated model the provider answered with may be missing from a table keyed by the name
  // that was called (an alias such as `-latest`, a deployment name).
  const cost = priceOf(span, a[A.GEN_AI_RESPONSE_MODEL], usage) ?? priceOf(span, a[A.GEN_AI_REQUEST_MODEL], usage);
  if (cost) writeCostAttrs(span, cost);
};

/**
 * Attributes in which libraries record a model call's input or output: the AI SDK's,
 * OpenTelemetry's GenAI conventions' (also as attributes of their `gen_ai.content.*` events),
 * OpenLLMetry's and OpenInference's indexed messages, and Langfuse's own. `mask` applies to them
 * as to `setInput()` and `setOutput()`: a mask meant to keep prompts out would let every
 * library's through otherwise.
 */
const IO_KEYS = new Map<string, 'input' | 'output'>([
  ...['ai.prompt', 'ai.prompt.messages', 'ai.toolCall.args', 'gen_ai.prompt', 'gen_ai.input.messages', 'input.value', A.OBSERVATION_INPUT, A.TRACE_INPUT].map((k) => [k, 'input'] as const),
  ...['ai.response.text', 'ai.response.object', 'ai.response.toolCalls', 'ai.toolCall.result', 'gen_ai.completion', 'gen_ai.output.messages', 'output.value', A.OBSERVATION_OUTPUT, A.TRACE_OUTPUT].map((k) => [k, 'output'] as const),
]);
// `gen_ai.prompt.0.content`, `llm.input_messages.0.message.content` and their output sides.
const INDEXED_INPUT = /^(?:gen_ai\.prompt|llm\.input_messages)\./;
const INDEXED_OUTPUT = /^(?:gen_ai\.completion|llm\.output_messages)\./;

/** Whether the attribute `key` holds an input or an output. */
const ioField = (key: string): 'input' | 'output' | undefined =>
  IO_KEYS.get(key) ?? (INDEXED_INPUT.test(key) ? 'input' : INDEXED_OUTPUT.test(key) ? 'output' : undefined);

/** `value`, an input or output (`field`), through the tracer's `mask` when it has one, as text; never throws. */
const masked = (span: Span, field: 'input' | 'output', value: unknown): unknown => {
  if (!span[kT].core.cfg.mask) return value;
  const v = span.masked(value, field);
  return v === undefined || typeof v === 'string' ? v : safeJson(v);
};

/** `attrs` with `mask` applied to the inputs and outputs among them (the same object when there are none). */
const maskedAll = (span: Span, attrs: Record<string, unknown> | undefined): Record<string, unknown> | undefined => {
  if (!span[kT].core.cfg.mask || !attrs || typeof attrs !== 'object') return attrs;
  let out = attrs;
  for (const key of Object.keys(attrs)) {
    const field = ioField(key);
    if (!field) continue;
    if (out === attrs) out = { ...attrs };
    out[key] = masked(span, field, attrs[key]);
  }
  return out;
};

/** The API span that wraps an edgetrace span; `span` is the edgetrace span itself. */
class BridgeSpan implements OtelSpan {
  private context?: OtelSpanContext;

  constructor(readonly span: Span) {}

  spanContext(): OtelSpanContext {
    const s = this.span;
    return (this.context ??= {
      traceId: s.traceId,
      spanId: s.spanId,
      // The sampled bit alone: code written against the API compares with TraceFlags.SAMPLED (1),
      // which the W3C random bit (2) of a new trace would make fail.
      traceFlags: s.flags & 1,
      isRemote: false,
      traceState: s.traceState ? traceStateOf(s.traceState) : undefined,
    });
  }

  setAttribute(key: string, value: unknown): this {
    try {
      // An input or output is masked and has its own length limit, as through setInput().
      const field = typeof key === 'string' ? ioField(key) : undefined;
      if (field) this.span.put(key, masked(this.span, field, value), false, true);
      else this.span.setAttribute(key, value);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  setAttributes(attributes: Record<string, unknown>): this {
    try {
      if (attributes && typeof attributes === 'object') eachEntry(attributes, (key, value) => this.setAttribute(key, value));
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  addEvent(name: string, attributesOrStartTime?: Record<string, unknown> | OtelTimeInput, startTime?: OtelTimeInput): this {
    try {
      const [attrs, time] = isTimeInput(attributesOrStartTime) ? [undefined, attributesOrStartTime] : [attributesOrStartTime, startTime];
      this.span.recordEvent(name, maskedAll(this.span, attrs), toMs(time));
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  addLink(link: OtelLink): this {
    return this.addLinks([link]);
  }

  addLinks(links: OtelLink[]): this {
    try {
      for (const l of toLinks(links) ?? []) this.span.addLink(l.context, l.attributes);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** As the API specifies: Ok is final, and Unset is ignored. */
  setStatus(status: OtelSpanStatus): this {
    try {
      const code = status?.code;
      if (this.span.status.code === 'ok') return this;
      if (code === 2) this.span.setStatus('error', typeof status.message === 'string' ? status.message : undefined);
      else if (code === 1) this.span.setStatus('ok');
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  updateName(name: string): this {
    try {
      // A trace's root names the trace (Langfuse's trace name): an HTTP instrumentation that
      // renames its span once the route is known renames the trace with it, as update() does.
      if (this.span instanceof Trace) this.span.update({ name });
      else this.span.updateName(name);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  end(endTime?: OtelTimeInput): void {
    try {
      if (!this.span.isEnded) priceModelCall(this.span);
      this.span.end(toMs(endTime));
    } catch (error) {
      reportInternal(error);
    }
  }

  isRecording(): boolean {
    return this.span.isRecording && !this.span.isEnded;
  }

  /** An `exception` event, as OpenTelemetry records one; unlike edgetrace's `recordError()`, the status is left to `setStatus()`. */
  recordException(exception: unknown, time?: OtelTimeInput): void {
    try {
      this.span.exceptionEvent(typeof exception === 'string' ? { type: 'Error', message: exception } : errorParts(exception), toMs(time));
    } catch (error) {
      reportInternal(error);
    }
  }
}

/**
 * Whether `span` descends from `ancestor`: its parent ids, followed through the open spans of its
 * trace, reach it. (Times cannot tell: where the clock stands still between I/O, as in Cloudflare
 * Workers, a parent and its child start at the same millisecond.)
 */
const descends = (span: Span, ancestor: Span): boolean => {
  for (let id = span.parentId, depth = 0; id !== undefined && depth < 64; depth++) {
    if (id === ancestor.spanId) return true;
    let open = span[kT].head;
    while (open && open.spanId !== id) open = open[kNext];
    id = open?.parentId;
  }
  return false;
};

/**
 * The parent a context names: an edgetrace span (behind our API span), the context of another
 * tracer's span, `null` for a new trace, or undefined for the current span. An edgetrace span
 * current inside the held one (an app's `span()` within a library's active span) is the nearer
 * parent.
 */
const parentIn = (context: OtelContext | undefined, root: boolean | undefined, tracer: Tracer): Span | SpanContext | null | undefined => {
  if (root) return null;
  const held = typeof context?.getValue === 'function' ? context.getValue(SPAN_KEY) : undefined;
  if (held instanceof BridgeSpan) {
    const h = held.span;
    const current = tracer.currentSpan();
    return current && current !== h && current.traceId === h.traceId && descends(current, h) ? current : h;
  }
  // Another tracer's span, or one the API made from a remote context (`trace.wrapSpanContext`).
  const other = held as { spanContext?: () => OtelSpanContext } | undefined;
  return typeof other?.spanContext === 'function' ? fromOtelContext(other.spanContext()) : undefined;
};

/** An API tracer over `tracer`, or over the tracer in charge at each span (`getTracer()`). */
const makeTracer = (tracer: Tracer | undefined, scope: { name: string; version?: string } | undefined): OtelTracer => {
  const tracerOf = (): Tracer => tracer ?? getTracer();
  // One resource per tracer resource, so the encoders group this scope's spans together.
  const scoped = new WeakMap<object, Span['resource']>();

  /** `startSpan()` on `tracer`, in `context` (default the API's active one). */
  const start = (tracer: Tracer, name: string, options: OtelSpanOptions | undefined, context: OtelContext | undefined): BridgeSpan => {
    let span: Span;
    // Inputs and outputs among the attributes are set once the span is there, masked and with
    // their own limit, as setAttribute() sets them.
    let io: Record<string, unknown> | undefined;
    try {
      const o = options && typeof options === 'object' ? options : {};
      // Each value read once; one whose getter throws is left out, not the span's other options.
      let attributes: Record<string, unknown> | undefined;
      if (o.attributes && typeof o.attributes === 'object') {
        attributes = {};
        eachEntry(o.attributes, (key, value) => void ((ioField(key) ? (io ??= {}) : attributes!)[key] = value));
      }
      const kind: SpanKind | undefined = typeof o.kind === 'number' ? SPAN_KINDS[o.kind] : undefined;
      span = tracer.startSpan(name, {
        // No context given: the API's active one, as OpenTelemetry's SDK takes it.
        parent: parentIn(context ?? contextManager()?.active(), o.root, tracer),
        kind,
        attributes: attributes as Attributes | undefined,
        links: toLinks(o.links),
        startMs: toMs(o.startTime),
      });
    } catch (error) {
      // Options or a context no one could read: the span starts without them.
      reportInternal(error);
      span = tracer.startSpan(name);
      io = undefined;
    }
    if (scope) {
      const base = span.resource;
      let resource = scoped.get(base);
      if (!resource) scoped.set(base, (resource = { attrs: base.attrs, scope }));
      (span as { resource: Span['resource'] }).resource = resource;
    }
    const bridge = new BridgeSpan(span);
    if (io) bridge.setAttributes(io);
    return bridge;
  };

  return {
    startSpan: (name, options, context) => start(tracerOf(), name, options, context),
    startActiveSpan(name: string, ...rest: unknown[]): never {
      const fn = rest[rest.length - 1] as ((span: OtelSpan) => unknown) | undefined;
      // (name, fn), (name, options, fn) or (name, options, context, fn).
      const given = rest.length > 2 ? (rest[1] as OtelContext | undefined) : undefined;
      const tracer = tracerOf();
      // The API's context manager and context, looked up once for the span's parent and for
      // making it active.
      let cm: OtelContextManager | undefined;
      let context = given;
      try {
        cm = contextManager();
        context ??= cm?.active();
      } catch (error) {
        reportInternal(error);
      }
      const span = start(tracer, name, rest.length > 1 ? (rest[0] as OtelSpanOptions) : undefined, context);
      if (typeof fn !== 'function') {
        reportInternal(new TypeError('startActiveSpan() needs a function as its last argument'));
        span.end();
        return undefined as never;
      }
      // The callback's own throw or rejection is the caller's, and reaches it unchanged.
      const run = (): unknown => {
        const result = tracer.withSpan(span.span, () => fn(span));
        // An async callback: where the context is a page's (no AsyncLocalStorage), what the
        // callback starts after its awaits (a fetch) still goes under this span, as it does in
        // trace.span(): the context follows the promise, as runInSpan() tells it to.
        if (isPromise(result)) tellAwaiting(span.span);
        return result;
      };
      // With a context manager registered, the span is also active in the API's context.
      let active: OtelContext | undefined;
      try {
        if (cm && context) active = context.setValue(SPAN_KEY, span);
      } catch (error) {
        reportInternal(error);
      }
      return (active ? cm!.with(active, run) : run()) as never;
    },
  };
};

/**
 * An OpenTelemetry `TracerProvider` whose tracers record edgetrace spans, so libraries that
 * trace through the OpenTelemetry API (the Vercel AI SDK, OpenTelemetry instrumentations) send
 * their spans the way the app's own go: `trace.setGlobalTracerProvider(otelTracerProvider())`.
 * Each tracer's name and version become the spans' instrumentation scope. Spans nest under the
 * span their context holds (`trace.setSpan()`), else under edgetrace's current span. Without
 * `tracer`, each span goes to `getTracer()`'s: the request's inside `withTracing`, else the global one.
 */
export const otelTracerProvider = (tracer?: Tracer): OtelTracerProvider => {
  // One tracer per scope, as OpenTelemetry's SDK keeps them: the API's proxy asks again on every
  // `trace.getTracer()` (the AI SDK does, per call), and each tracer holds its scope's resources.
  const tracers = new Map<string, OtelTracer>();
  return {
    getTracer(name, version) {
      const scope = { name: typeof name === 'string' && name ? name : SDK_NAME, version: typeof version === 'string' && version ? version : undefined };
      const key = `${scope.name}\n${scope.version ?? ''}`;
      let t = tracers.get(key);
      if (!t) tracers.set(key, (t = makeTracer(tracer, scope)));
      return t;
    },
  };
};

/**
 * One OpenTelemetry `Tracer` over edgetrace, e.g. for the Vercel AI SDK's
 * `experimental_telemetry: { isEnabled: true, tracer: otelTracer() }`. See {@link otelTracerProvider}.
 */
export const otelTracer = (tracer?: Tracer): OtelTracer => makeTracer(tracer, undefined);

import type { Attributes, ScoreRecord, SpanRecord } from '../protocol';
import { resolveConfig, TRACER_KEYS, type FilterOptions, type ResolvedConfig, type SpanMatcher, type TracerOptions } from '../config';
import type { SpanContext } from '../propagation/traceparent';
import { isValidSpanId, isValidTraceId } from '../propagation/traceparent';
import { defaultContext, type ContextManager } from './context';
import { batchProcessor, type SpanProcessor } from './processors';
import { isPromise, kT, runInSpan, Span, type ScoreOptions, type SpanOptions, type TraceShared, type TracerCore } from './span';
import { Trace, type TraceOptions } from './trace';
import { sampleFlags } from './sampling';
import { newTraceId } from '../lib/ids';
import { now as defaultNow, ownClock } from '../lib/now';
import { SDK_NAME, SDK_VERSION } from '../lib/sdk';
import { reportInternal, setDebug, warn, warnOnce } from '../lib/reportInternal';
import { safeJson } from '../lib/safeJson';
import { within } from '../lib/within';
import { checkKeys } from '../lib/checkKeys';

/** Options for `tracer.startSpan()`. */
export interface StartSpanOptions extends SpanOptions {
  /**
   * Parent: a local span, a remote `SpanContext`, or `null` for a new trace.
   * Default: the current span, else a new trace.
   */
  parent?: Span | SpanContext | null | undefined;
}

/** What {@link Tracer.score} scores: a trace by its id, or one of its observations (spans). */
export interface ScoreTarget {
  /** The trace's id, 32 lower-case hex digits (`span.traceId`, or from a `traceparent`). */
  traceId: string;
  /** An observation's (span's) id, 16 lower-case hex digits; without it, the trace is scored. */
  observationId?: string | undefined;
  /** The session the score belongs to: kept by the collector's store (Langfuse takes the trace's). */
  sessionId?: string | undefined;
}

/** Creates traces and spans and sends what they record to its processors. */
export interface Tracer {
  /** The validated options. */
  readonly config: ResolvedConfig;
  /** Starts a trace: the root span of a unit of work. End it with `finish()`. */
  createTrace(opts?: TraceOptions | string): Trace;
  /** Runs `fn` in a new trace and finishes the trace when `fn` returns or settles. */
  withTrace<R>(opts: TraceOptions | string, fn: (trace: Trace) => R): R;
  /** Starts a span you end yourself: a child of `opts.parent`, else of the current span, else a new trace. */
  startSpan(name: string, opts?: StartSpanOptions): Span;
  /** Runs `fn` in a span under the current span (or a new trace), ended when `fn` returns or settles. */
  span<R>(name: string, fn: (span: Span) => R): R;
  span<R>(name: string, opts: StartSpanOptions, fn: (span: Span) => R): R;
  /** The current span, if any. */
  currentSpan(): Span | undefined;
  /** Runs `fn` with `span` current. */
  withSpan<R>(span: Span | undefined, fn: () => R): R;
  /**
   * Scores a trace, or one of its observations, by id: user feedback that arrives later or
   * elsewhere (a rating after a reload, a backend given `{ traceId }`). As `span.score()` does
   * otherwise; a score whose ids are not W3C trace and span ids is left out.
   */
  score(target: ScoreTarget, name: string, value: number | string | boolean, opts?: ScoreOptions): void;
  /** Adds a processor after those given at creation; call the returned function to remove it. */
  addProcessor(processor: SpanProcessor): () => void;
  /** Delivers everything held by the processors. Never rejects. */
  flush(): Promise<void>;
  /** Flushes, then stops: later spans are not recorded. Never rejects. */
  shutdown(): Promise<void>;
}

/** Whether `m` matches `r`; `failed` when `m` is a function of the app's that throws. */
const matches = (m: SpanMatcher, r: SpanRecord, failed: boolean): boolean => {
  if (typeof m === 'string') return m === r.name;
  if (m instanceof RegExp) {
    // A g or y flag makes test() start where the last match ended; every span starts afresh.
    m.lastIndex = 0;
    return m.test(r.name);
  }
  try {
    return !!m(r);
  } catch (error) {
    reportInternal(error);
    return failed;
  }
};

/** Whether a finished span passes the filter options. */
export const keepSpan = (f: FilterOptions, r: SpanRecord): boolean => {
  const type = (r.attrs['langfuse.observation.type'] as string | undefined) ?? 'span';
  // An event is a moment (it ends where it starts): a minimum duration is not for it.
  if (f.minDurationMs !== undefined && type !== 'event' && r.endMs - r.startMs < f.minDurationMs) return false;
  if (f.kinds && !f.kinds.includes(r.kind)) return false;
  if (f.types && !f.types.includes(type as never)) return false;
  // A matcher that throws keeps the span: a filter only chooses what to send, unlike beforeSend,
  // which may be where data is scrubbed.
  if (f.include && !f.include.some((m) => matches(m, r, true))) return false;
  if (f.exclude && f.exclude.some((m) => matches(m, r, false))) return false;
  return true;
};

const NO_OPTIONS: TraceOptions = Object.freeze({});

/**
 * A processor hook typed `void` may still be an `async` function: its rejection is reported like
 * a throw, rather than reaching the runtime as an unhandled rejection (which ends a Node process).
 */
const caught = (out: unknown): void => {
  if (isPromise(out)) out.then(undefined, reportInternal);
};

const isSpanContext = (p: unknown): p is SpanContext =>
  typeof p === 'object' && p !== null && isValidTraceId((p as SpanContext).traceId) && isValidSpanId((p as SpanContext).spanId);

/**
 * Creates a tracer. Throws a `TypeError` naming the option when `opts` is invalid; after that,
 * nothing it returns throws into the caller. (`call` and `detected` are for `init()` and
 * `createServerTracer()`: the name errors give, and the resource attributes they found.)
 */
export const createTracer = (opts: TracerOptions = {}, call = 'createTracer()', detected?: Attributes): Tracer => {
  // init() and the server's calls take more options than these, and check them themselves.
  if (call === 'createTracer()' && typeof opts === 'object' && opts !== null) checkKeys(call, opts, TRACER_KEYS);
  const cfg = resolveConfig(opts, call, detected);
  const ctx: ContextManager = opts.contextManager ?? defaultContext();
  const processors = opts.processors ? [...opts.processors] : [];
  if (opts.exporter) processors.push(batchProcessor(opts.exporter, cfg.batch));
  let starters = processors.filter((p) => p.onStart);
  let closed = false;
  let shutdown: Promise<void> | undefined;
  if (cfg.debug) setDebug(true);

  /** Whether `beforeSend` threw already (said once per tracer). */
  let hookFailed = false;
  const core: TracerCore = {
    cfg,
    ctx,
    resource: { attrs: cfg.resource, scope: { name: SDK_NAME, version: SDK_VERSION } },
    memo: [new Map(), new Map(), new Map(), new Map(), new Set()],
    now: opts.now ? ownClock(opts.now) : defaultNow,
    started(span) {
      if (closed) return;
      for (const p of starters) {
        try {
          caught(p.onStart?.(span));
        } catch (error) {
          reportInternal(error);
        }
      }
    },
    emit(span) {
      if (closed) return;
      let record: SpanRecord = span;
      if (cfg.filter && !keepSpan(cfg.filter, record)) return;
      if (cfg.beforeSend) {
        try {
          const out = cfg.beforeSend(record);
          if (out === null) return;
          if (out && typeof out === 'object') record = out;
        } catch (error) {
          // The hook is often where data is scrubbed, so a span it failed on is not sent as it
          // was: dropped, and said once whatever `debug` is, since every span may be failing.
          reportInternal(error);
          if (!hookFailed) {
            hookFailed = true;
            warn('beforeSend threw, so the span was dropped (as are the others it throws on):', error);
          }
          return;
        }
      }
      for (const p of processors) {
        try {
          caught(p.onEnd?.(record));
        } catch (error) {
          reportInternal(error);
        }
      }
    },
    emitScore(score: ScoreRecord) {
      if (closed) return;
      for (const p of processors) {
        try {
          caught(p.onScore?.(score));
        } catch (error) {
          reportInternal(error);
        }
      }
    },
  };

  /**
   * Runs one processor's flush or shutdown. What it throws is reported, and one that hangs (a
   * hand-written exporter with no timeout) stops being waited for after `batch.exportTimeoutMs`, so
   * `flush()` and `shutdown()` always return.
   */
  const settle = (method: string, run: () => Promise<void> | undefined): Promise<void> =>
    within(
      Promise.resolve().then(run).catch(reportInternal),
      cfg.batch.exportTimeoutMs,
      () => reportInternal(new Error(`a span processor's ${method}() took over ${cfg.batch.exportTimeoutMs} ms`)),
      // The caller awaits flush() or shutdown(): the deadline keeps a script alive to answer it.
      true,
    );

  // Every field from the start, so each trace's shared state has one shape and the spans that
  // read and write it stay on V8's fast path.
  const shared = (): TraceShared => ({ core, head: undefined, userId: undefined, sessionId: undefined, tags: undefined, cleanTags: undefined, shared: undefined, environment: undefined, baggage: cfg.baggage });

  /** What a call gets back when a bug of ours threw: an unrecorded trace keeps its code running. */
  const unrecorded = (): Trace => new Trace(shared(), undefined, NO_OPTIONS, { traceId: newTraceId(), flags: 0 });

  const createTrace = (arg?: TraceOptions | string): Trace => {
    try {
      const o: TraceOptions = typeof arg === 'object' && arg !== null ? arg : NO_OPTIONS;
      const name = typeof arg === 'string' ? arg : o.name;
      const remote = o.parent === undefined ? undefined : isSpanContext(o.parent) ? o.parent : undefined;
      if (!remote) {
        const traceId = newTraceId();
        return new Trace(shared(), name, o, { traceId, flags: sampleFlags(traceId, cfg.sampleRate) });
      }
      const flags = sampleFlags(remote.traceId, cfg.sampleRate, remote.flags);
      return new Trace(shared(), name, o, { traceId: remote.traceId, spanId: remote.spanId, flags, traceState: remote.traceState, remote: true });
    } catch (error) {
      // Only a bug of ours gets here.
      reportInternal(error);
      return unrecorded();
    }
  };

  const startSpan = (name: string, opts?: StartSpanOptions): Span => {
    try {
      const o: StartSpanOptions = opts && typeof opts === 'object' ? opts : {};
      const parent = o.parent === undefined ? ctx.active() : o.parent;
      if (parent instanceof Span) return parent.startSpan(name, o);
      if (isSpanContext(parent)) {
        return new Span(shared(), name, o, { ...parent, flags: sampleFlags(parent.traceId, cfg.sampleRate, parent.flags), remote: true });
      }
      return createTrace({ name, kind: o.kind, type: o.type, startMs: o.startMs, attributes: o.attributes, input: o.input, links: o.links });
    } catch (error) {
      // A context manager that throws, options no one could read.
      reportInternal(error);
      return unrecorded();
    }
  };

  return {
    config: cfg,
    createTrace,
    withTrace: (arg, fn) => runInSpan(createTrace(arg), fn),
    startSpan,
    score(target, name, value, opts) {
      try {
        const { traceId, observationId, sessionId } = target;
        if (!isValidTraceId(traceId) || (observationId !== undefined && !isValidSpanId(observationId))) {
          warnOnce('score-ids', `score "${name}": ${safeJson(target)} holds no W3C trace id (or span id as observationId): not sent.`, true);
          return;
        }
        // The trace's stand-in: a Span's methods on its ids alone, never constructed, so no
        // processor sees a span start. Sampled as the trace was where it started, by its id at
        // the same rate.
        const t = shared();
        if (typeof sessionId === 'string' && sessionId) t.sessionId = sessionId;
        const stand = Object.assign(Object.create(Span.prototype) as Span, { traceId, flags: sampleFlags(traceId, cfg.sampleRate), [kT]: t });
        stand.scoreFor(observationId, name, value, opts);
      } catch (error) {
        reportInternal(error);
      }
    },
    span<R>(name: string, a: StartSpanOptions | ((span: Span) => R), b?: (span: Span) => R): R {
      const [o, fn] = typeof a === 'function' ? [undefined, a] : [a, b as (span: Span) => R];
      return runInSpan(startSpan(name, o), fn);
    },
    currentSpan: () => {
      try {
        return ctx.active();
      } catch (error) {
        reportInternal(error);
        return undefined;
      }
    },
    withSpan(span, fn) {
      if (typeof fn === 'function') return ctx.with(span, fn);
      reportInternal(new TypeError('[edgetrace] withSpan(): the callback must be a function'));
      return undefined as never;
    },
    addProcessor(processor) {
      processors.push(processor);
      starters = processors.filter((p) => p.onStart);
      return () => {
        const i = processors.indexOf(processor);
        if (i >= 0) processors.splice(i, 1);
        starters = processors.filter((p) => p.onStart);
      };
    },
    async flush() {
      await Promise.all(processors.map((p) => settle('forceFlush', () => p.forceFlush?.())));
    },
    shutdown() {
      // Once: a second call, also one made while the first is running, waits for the same work.
      return (shutdown ??= Promise.all(processors.map((p) => settle('shutdown', () => p.shutdown?.()))).then(() => {
        closed = true;
      }));
    },
  };
};

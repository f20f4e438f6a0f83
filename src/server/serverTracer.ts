import type { Attributes, Exporter } from '../protocol';
import { TRACER_KEYS, type TracerOptions } from '../config';
import { createTracer, type Tracer } from '../core/tracer';
import { batchProcessor, type SpanProcessor } from '../core/processors';
import { refusalTeller, requestProcessor } from './requestProcessor';
import { forRequestFlush, guardedContext, inRequest, outsideRequest, quietly, serverContext } from './scope';
import { runtimeResource } from './runtimeResource';
import { checkKeys } from '../lib/checkKeys';

/** Options for {@link createServerTracer}: the tracer's options; `exporter` is flushed per request. */
export type ServerTracerOptions = TracerOptions;

/**
 * Creates a tracer for a server or edge handler: the current span lives in AsyncLocalStorage
 * (unless `contextManager` says otherwise), and `exporter` sits behind a {@link requestProcessor},
 * which holds records until `tracer.flush()`, so `withTracing` sends each request's spans in one
 * export inside that request's `waitUntil`. Other `processors` are kept, their hooks and flushes
 * run as edgetrace's own work (see `processorOutside`). The spans'
 * resource names the runtime (`process.runtime.name`, `process.runtime.version`), under
 * `OTEL_RESOURCE_ATTRIBUTES` when the exporter came from `fromEnv()`, under `resource`; such an
 * exporter's `sampleRate` (`OTEL_TRACES_SAMPLER`, `LANGFUSE_SAMPLE_RATE`) and `release`
 * (`LANGFUSE_RELEASE`) apply unless given here.
 * Throws a `TypeError` naming the option when `opts` is invalid.
 */
export const createServerTracer = (opts: ServerTracerOptions = {}): Tracer => {
  if (typeof opts === 'object' && opts !== null) checkKeys('createServerTracer()', opts, TRACER_KEYS);
  return serverTracer(opts, 'createServerTracer()');
};

/**
 * `exporter`, its exports run outside any request (see `outsideRequest`). A plain object that
 * calls the exporter's own methods: a class instance keeps its `this` and private fields, and a
 * frozen one need not be written to.
 */
const exportingOutside = (exporter: Exporter): Exporter => ({
  export: (records) => outsideRequest(() => exporter.export(records)),
  shutdown: () => Promise.resolve(exporter.shutdown?.()),
});

/**
 * A processor of the app's, made safe from tracing its own sends: its hooks run {@link quietly},
 * so a batch timer it arms when a span ends does not make the export's `fetch` a span of the job
 * or request then current (an exporter of the app's that sends with the global `fetch` would
 * otherwise record its sends, to be sent in turn, as long as that span lasts); the request stays
 * in view for a processor that reads it. Its flushes run as edgetrace's own work: a request's
 * flush as one (an app's `requestProcessor` tells it apart), any other outside every request.
 */
const processorOutside = (p: SpanProcessor): SpanProcessor => {
  const hook =
    <A extends unknown[]>(fn: ((...args: A) => void) | undefined) =>
    fn && ((...args: A): void => quietly(() => fn.apply(p, args)));
  const flush = (fn: (() => Promise<void>) | undefined) => fn && ((): Promise<void> => (inRequest() ? forRequestFlush : outsideRequest)(() => fn.call(p)));
  return { onStart: hook(p.onStart), onEnd: hook(p.onEnd), onScore: hook(p.onScore), forceFlush: flush(p.forceFlush), shutdown: flush(p.shutdown) };
};

/** Per server tracer, how many records its exporter's processor still holds (see {@link heldRecords}). */
const holders = new WeakMap<Tracer, () => number>();

/** The records a tracer made here still holds, not yet sent: what a drain that gave up leaves. */
export const heldRecords = (tracer: Tracer): number => holders.get(tracer)?.() ?? 0;

/**
 * {@link createServerTracer}, its errors naming `call`, the function the app called. With
 * `perRequest` false, for a long-lived process, `exporter` sits behind a batch processor instead.
 */
export const serverTracer = (opts: ServerTracerOptions, call: string, perRequest = true): Tracer => {
  const { exporter, ...rest } = opts;
  if (opts.processors !== undefined && !Array.isArray(opts.processors)) {
    throw new TypeError(`[edgetrace] ${call}: "processors" must be an array of span processors, got ${String(opts.processors)}.`);
  }
  const processors = (opts.processors ?? []).map(processorOutside);
  let outside: Exporter | undefined;
  let queued: (() => number) | undefined;
  if (exporter !== undefined) {
    if (typeof (exporter as Exporter | null)?.export !== 'function') {
      throw new TypeError(`[edgetrace] ${call}: "exporter" must be an object with an export(records) method, got ${String(exporter)}.`);
    }
    outside = exportingOutside(exporter);
    if (perRequest) {
      const held = requestProcessor(outside, { maxBatchSize: opts.batch?.maxBatchSize, maxQueueSize: opts.batch?.maxQueueSize, exportTimeoutMs: opts.batch?.exportTimeoutMs });
      processors.push(held);
      queued = held.queued;
    }
  }
  // `fromEnv(env)` carries OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES on the exporter it
  // returns; explicit options win over them, and they over what the runtime tells.
  const fromEnv = exporter as { serviceName?: unknown; resource?: unknown; sampleRate?: unknown; release?: unknown } | undefined;
  const envName = fromEnv?.serviceName;
  const serviceName = opts.serviceName ?? (typeof envName === 'string' ? envName : undefined);
  // OTEL_TRACES_SAMPLER or LANGFUSE_SAMPLE_RATE, read and checked by fromEnv().
  const envRate = fromEnv?.sampleRate;
  const sampleRate = opts.sampleRate ?? (typeof envRate === 'number' ? envRate : undefined);
  const envRelease = fromEnv?.release;
  const release = opts.release ?? (typeof envRelease === 'string' ? envRelease : undefined);
  const envResource = fromEnv?.resource;
  const detected = { ...runtimeResource(), ...(typeof envResource === 'object' && envResource !== null ? (envResource as Attributes) : undefined) };
  // A context manager of the app's that throws would otherwise throw into every request.
  const given = opts.contextManager;
  const contextManager = typeof given?.with === 'function' && typeof given.active === 'function' ? guardedContext(given) : (given ?? serverContext());
  const tracer = createTracer({ ...rest, contextManager, serviceName, sampleRate, release, processors }, call, detected);
  if (outside && !perRequest) {
    // Batched with the tracer's validated batch options. The request processor says a refusal
    // itself; the batch processor says it only with `debug`, so its outcome (a 413 that is
    // split and sent again is not one) is told here.
    const batch = batchProcessor(outside, tracer.config.batch, refusalTeller());
    tracer.addProcessor(batch);
    queued = batch.queued;
  }
  if (queued) holders.set(tracer, queued);
  // A processor the app adds later is made safe as the ones it gave; edgetrace's own are added
  // as they are (see addOwnProcessor).
  const add = tracer.addProcessor;
  ownAdd.set(tracer, add);
  tracer.addProcessor = (p) => add.call(tracer, typeof p === 'object' && p !== null ? processorOutside(p) : p);
  return tracer;
};

/** Per server tracer, its `addProcessor` as the core made it. */
const ownAdd = new WeakMap<Tracer, Tracer['addProcessor']>();

/**
 * Adds one of edgetrace's own processors to `tracer` as it is: its hooks run where the span
 * starts or ends, at no cost of {@link processorOutside}'s. Any tracer: one of the app's own
 * (from `createTracer()`) has only the core's `addProcessor`.
 */
export const addOwnProcessor = (tracer: Tracer, processor: SpanProcessor): (() => void) => (ownAdd.get(tracer) ?? tracer.addProcessor).call(tracer, processor);

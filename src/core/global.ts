import type { InitOptions } from '../config';
import { checkOptions, INIT_KEYS, resolveInit, TRACER_KEYS } from '../config';
import { createTracer, type Tracer } from './tracer';
import { batchProcessor } from './processors';
import { openTraces, type OpenTraces } from './openTraces';
import type { Span } from './span';
import { noteGlobal, processTracer, scopedTracer } from './scoped';
import { lazyExporter } from '../export/lazy';
import { browserResource } from '../lib/browserResource';
import { isBrowser } from '../lib/isPage';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { getStatus, setupTransport } from '../transport/index';
import { resolveTransport, TRANSPORT_KEYS } from '../transport/options';
import { pageContext, setupInstrumentation } from '../instrument/index';
import { INSTRUMENT_KEYS, resolveInstrument } from '../instrument/options';

let global: Tracer | undefined;
let stopInstrumentation: (() => void) | undefined;
let fallback: Tracer | undefined;
let exitHooked = false;
/** The traces the global tracer of a process began that may still be open (see `flushAtExit`). */
let exitOpen: OpenTraces | undefined;

/**
 * Outside a page: a script that simply ends (a CLI, a cron job, a queue consumer that drains)
 * still sends what the global tracer holds. Node, Deno and Bun emit `beforeExit` when nothing is
 * left to do; the flush's request keeps the process alive until it is answered (within the export
 * timeout), and the next `beforeExit`, with no listener left, lets it exit.
 */
const flushAtExit = (): void => {
  if (exitHooked) return;
  exitHooked = true;
  // flush() and getStatus() never reject; a runtime whose `process` has no `once` has no beforeExit either.
  const once = (fn: () => void): unknown => (globalThis as { process?: { once?(event: 'beforeExit', fn: () => void): unknown } }).process?.once?.('beforeExit', fn);
  const send = (): void =>
    void global
      ?.flush()
      .then(getStatus)
      .then((s) => s.queued && warnOnce('exit-left', `${s.queued} record(s) were not sent before the process ended: ${s.lastError}.`, true));
  once(() => {
    send();
    // The app's own beforeExit work (run after this) may still end its traces. When the process
    // is about to end again, a trace still open never will: ended as unfinished, it is sent.
    once(() => {
      const cut = exitOpen?.endOpen();
      if (cut) warnOnce('exit-open', `${cut} trace(s) were still open as the process ended: sent as unfinished.`, true);
      // With what that work recorded.
      send();
    });
    // One more turn of the loop, so that it empties (and beforeExit comes) again.
    if (exitOpen) setTimeout(() => undefined, 0);
  });
};

/**
 * Creates the app's tracer, sends what it records to `endpoint` (OTLP/HTTP JSON) or Langfuse,
 * and makes it the global one (`getTracer()`, `traced()`). Throws once, here, with a message
 * naming the option if `opts` is invalid.
 */
export const init = (opts: InitOptions = {}): Tracer => {
  // Everything that can throw runs before anything is patched or replaced.
  checkOptions('init()', opts, [...TRACER_KEYS, ...INIT_KEYS, ...TRANSPORT_KEYS, ...INSTRUMENT_KEYS]);
  const extra = resolveInit(opts);
  // Also where it goes unused (no endpoint, an exporter, a server): a mistake is one everywhere.
  const transport = resolveTransport(opts);
  const instrument = resolveInstrument(opts);
  const page = pageContext(opts, instrument);
  // A page or a worker says which browser it is; a server's init() adds nothing (see createServerTracer).
  const tracer = createTracer(page ? { ...opts, contextManager: page } : opts, 'init()', isBrowser() ? browserResource() : undefined);
  if (global) {
    warnOnce('init-twice', 'init() was called again; the new tracer replaces the old one, which is flushed and shut down.');
    stop().catch(reportInternal);
  }
  setupTransport(tracer, opts, extra, transport);
  const lf = extra.langfuse;
  if (lf) {
    const environment = tracer.config.environment;
    // An environment Langfuse does not keep only describes: the exporter says so and sends the
    // spans, which the tracer's resource still names it in. Passed on, it would refuse to load.
    const exporter = lazyExporter(() =>
      import('../export/langfuse').then((m) => m.createLangfuseExporter({ ...lf, environment: environment && m.isLangfuseEnvironment(environment) ? environment : undefined })),
    );
    tracer.addProcessor(batchProcessor(exporter, tracer.config.batch));
  }
  stopInstrumentation = setupInstrumentation(tracer, opts, page, instrument);
  noteGlobal((global = tracer));
  if (!page) {
    exitOpen = openTraces();
    tracer.addProcessor(exitOpen.processor);
    flushAtExit();
  }
  // Without a destination init() records into nothing, unseen. A script's reads no environment
  // variables; a page's `endpoint: import.meta.env.X` is undefined when X was missing from the
  // build (a page that leaves endpoint out, to send trace headers only, is not told).
  if (!opts.endpoint && !opts.exporter && !lf && !opts.processors?.length) {
    if (!isBrowser()) {
      warnOnce('init-nowhere', 'init(): nothing is sent: give endpoint, langfuse or exporter (edgetrace/server: fromEnv(process.env) reads OTEL_*; noneExporter sends nothing).', true);
    } else if ('endpoint' in opts) {
      warnOnce('init-nowhere', 'init(): "endpoint" is undefined (a variable missing from the build?), so nothing is sent.', true);
    }
  }
  return tracer;
};

/**
 * Undoes `init()`: restores every patched global, removes every listener, and flushes and shuts
 * down the global tracer. Resolves when what was recorded has been handed on. Without `init()`,
 * in a server a wrapper traces, it flushes that wrapper's tracer (as at a shutdown).
 */
export const stop = (): Promise<void> => {
  const tracer = global;
  stopInstrumentation?.();
  stopInstrumentation = undefined;
  exitOpen = undefined;
  noteGlobal((global = undefined));
  return Promise.resolve(tracer ? tracer.shutdown() : processTracer(false)?.flush());
};

/**
 * The tracer in charge where it is called: inside a request that `withTracing` handles, that
 * request's tracer (so `traced()`, `currentSpan()` and the like record into the request's trace);
 * elsewhere the global tracer set by `init()`, and without `init()` the tracer of the server
 * wrapper (`withTracing`, `withNodeTracing`) made last. Before any of them it is a tracer with no
 * processors: spans work and propagate ids, but nothing is recorded anywhere.
 */
export const getTracer = (): Tracer => scopedTracer() ?? global ?? processTracer() ?? (fallback ??= createTracer());

/** Makes `tracer` the global one (or clears it with `undefined`). */
export const setTracer = (tracer: Tracer | undefined): void => {
  // As init()'s: a server wrapper's requests say once that it takes the work outside them.
  noteGlobal((global = tracer));
};

/** The current span of the global tracer. */
export const currentSpan = (): Span | undefined => getTracer().currentSpan();

/** Runs `fn` with `span` current in the global tracer. */
export const withSpan = <R>(span: Span | undefined, fn: () => R): R => getTracer().withSpan(span, fn);

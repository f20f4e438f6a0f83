import type { TracerOptions } from '../config';
import { createTracer, type Tracer } from './tracer';
import type { Span } from './span';
import { reportInternal, warnOnce } from '../lib/reportInternal';

let global: Tracer | undefined;
let fallback: Tracer | undefined;

/**
 * Creates the app's tracer and makes it the global one (`getTracer()`, `traced()`).
 * Throws once, here, with a message naming the option if `opts` is invalid.
 */
export const init = (opts: TracerOptions = {}): Tracer => {
  const tracer = createTracer(opts, 'init()');
  if (global) {
    warnOnce('init-twice', 'init() was called again; the new tracer replaces the old one, which is flushed and shut down.');
    global.shutdown().catch(reportInternal);
  }
  global = tracer;
  return tracer;
};

/**
 * The global tracer set by `init()`. Before `init()` it is a tracer with no processors: spans work
 * and propagate ids, but nothing is recorded anywhere.
 */
export const getTracer = (): Tracer => global ?? (fallback ??= createTracer());

/** Makes `tracer` the global one (or clears it with `undefined`). */
export const setTracer = (tracer: Tracer | undefined): void => {
  global = tracer;
};

/** The current span of the global tracer. */
export const currentSpan = (): Span | undefined => getTracer().currentSpan();

/** Runs `fn` with `span` current in the global tracer. */
export const withSpan = <R>(span: Span | undefined, fn: () => R): R => getTracer().withSpan(span, fn);

import type { Tracer } from '../core/tracer';
import { getTracer } from '../core/global';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { parentSpan } from './interactionContext';
import type { Stop } from './index';

/** Options for {@link instrumentErrors}. */
export interface ErrorsOptions {
  /** The tracer to record with. Default: the global one. */
  tracer?: Tracer | undefined;
  /** Most errors recorded per minute; a render loop that throws 60 times a second must not flood. Default 30. */
  maxPerMinute?: number | undefined;
}

/** Set on the next recorded error span when errors were skipped by `maxPerMinute`. */
export const SKIPPED_ERRORS = 'edgetrace.skipped_errors';

// One limit for every way an error reaches the page's traces (events and captureError()), and
// the tracer instrumentErrors() was given, which captureError() records with too.
let maxPerMinute = 30;
let errorTracer: Tracer | undefined;
let windowStart = 0;
let inWindow = 0;
let skipped = 0;

/** Records `error` on the current span or interaction, else on a new span `name`, within the limit. */
const recordOne = (tracer: Tracer, error: unknown, name: string): void => {
  const t = Date.now();
  if (t - windowStart >= 60_000) {
    windowStart = t;
    inWindow = 0;
  }
  if (++inWindow > maxPerMinute) {
    skipped++;
    warnOnce('errors-skipped', `more than ${maxPerMinute} errors a minute; skipping the rest of each minute.`);
    return;
  }
  const target = parentSpan(tracer);
  const span = target ?? tracer.startSpan(name, { parent: null });
  if (skipped) {
    span.setAttribute(SKIPPED_ERRORS, skipped);
    skipped = 0;
  }
  span.recordError(error);
  if (!target) span.end();
};

/**
 * Records an error the app or its framework caught before it could reach `window.onerror`, as an
 * uncaught one is recorded: on the current span or interaction, else on a span `caught error`.
 * For the hooks frameworks give instead: Vue's `app.config.errorHandler`, React's error
 * boundaries (`componentDidCatch`) and `createRoot(el, { onCaughtError })`, Angular's `ErrorHandler`.
 * Never throws.
 */
export const captureError = (error: unknown): void => {
  try {
    recordOne(errorTracer ?? getTracer(), error, 'caught error');
  } catch (e) {
    reportInternal(e);
  }
};

/**
 * Records uncaught errors (`error` events) and unhandled promise rejections as exception events
 * (`exception.type`, `exception.message`, `exception.stacktrace`): on the current span or active
 * interaction when there is one, else on a new span named `uncaught error` or
 * `unhandled rejection`. Only listens: the page's own handlers, `window.onerror` and the
 * console see every error exactly as before. Call the returned function to stop.
 */
export const instrumentErrors = (opts: ErrorsOptions = {}): Stop => {
  if (typeof addEventListener !== 'function' || typeof ErrorEvent !== 'function') return () => undefined;
  maxPerMinute = opts.maxPerMinute ?? 30;
  const tracer = (errorTracer = opts.tracer);
  const record = (error: unknown, name: string): void => recordOne(tracer ?? getTracer(), error, name);

  const onError = (e: Event): void => {
    try {
      // Resource load failures (an <img> 404) arrive as plain Events; only script errors count.
      if (!(e instanceof ErrorEvent)) return;
      const error =
        e.error ??
        // A cross-origin script without CORS gives only "Script error." and no error object.
        { name: 'Error', message: e.message || 'Script error.', stack: e.filename ? `at ${e.filename}:${e.lineno}:${e.colno}` : undefined };
      record(error, 'uncaught error');
    } catch (error) {
      reportInternal(error);
    }
  };
  const onRejection = (e: Event): void => {
    try {
      record((e as PromiseRejectionEvent).reason, 'unhandled rejection');
    } catch (error) {
      reportInternal(error);
    }
  };
  addEventListener('error', onError);
  addEventListener('unhandledrejection', onRejection);
  return () => {
    removeEventListener('error', onError);
    removeEventListener('unhandledrejection', onRejection);
    if (errorTracer === tracer) errorTracer = undefined;
  };
};

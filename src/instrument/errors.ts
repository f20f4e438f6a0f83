import type { Tracer } from '../core/tracer';
import { getTracer } from '../core/global';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { wasRecorded } from '../core/span';
import { isAbortError } from '../lib/isAbortError';
import { safeJson } from '../lib/safeJson';
import { unref } from '../lib/unref';
import { parentSpan } from './interactionContext';
import type { Stop } from './index';

/** Options for {@link instrumentErrors}. */
export interface ErrorsOptions {
  /** The tracer to record with. Default: the global one. */
  tracer?: Tracer | undefined;
  /** Most errors recorded per minute; a render loop that throws 60 times a second must not flood. Default 30. */
  maxPerMinute?: number | undefined;
}

/** On a span `skipped errors`, at the end of a minute in which errors were skipped: how many. */
export const SKIPPED_ERRORS = 'edgetrace.skipped_errors';

// At most this many of one error (its type and message) a minute, within maxPerMinute: one that
// repeats (a render loop throwing every frame) leaves room for the others.
const PER_ERROR = 5;

// One limit for every way an error reaches the page's traces (events and captureError()), and
// the tracer instrumentErrors() was given, which captureError() records with too.
let maxPerMinute = 30;
let errorTracer: Tracer | undefined;
let windowStart = 0;
let inWindow = 0;
let skipped = 0;
const perError = new Map<string, number>();
let summary: ReturnType<typeof setTimeout> | undefined;

/** A span that says how many errors the limit skipped, once they are counted (the minute is over, or the page goes). */
const reportSkipped = (): void => {
  clearTimeout(summary);
  summary = undefined;
  if (!skipped) return;
  const span = (errorTracer ?? getTracer()).startSpan('skipped errors', { parent: null });
  span.setAttribute(SKIPPED_ERRORS, skipped);
  skipped = 0;
  span.end();
};

/** What tells errors apart for the limit: the type and message, or what else was thrown, short. */
const errorKey = (error: unknown): string => {
  try {
    const e = error as { name?: unknown; message?: unknown } | null | undefined;
    return (typeof e?.message === 'string' ? `${String(e.name ?? 'Error')}: ${e.message}` : safeJson(error)).slice(0, 200);
  } catch {
    return '';
  }
};

/**
 * Records `error` on the current span or interaction, else on a new span `name`, within the
 * limit. An error a span already recorded (rethrown until it reached the page) and a stop the
 * app chose (an `AbortError`, recorded as cancelled where it happened) are not recorded again.
 */
const recordOne = (tracer: Tracer, error: unknown, name: string): void => {
  if (wasRecorded(error) || isAbortError(error)) return;
  const t = Date.now();
  if (t < windowStart || t - windowStart >= 60_000) {
    windowStart = t;
    inWindow = 0;
    perError.clear();
  }
  const target = parentSpan(tracer);
  const key = errorKey(error);
  const n = (perError.get(key) ?? 0) + 1;
  // Bounded: past 500 different errors a minute, the new ones are held by the total alone.
  if (n <= PER_ERROR + 1 && (perError.size < 500 || n > 1)) perError.set(key, n);
  if (n > PER_ERROR || ++inWindow > maxPerMinute) {
    skipped++;
    // The interaction still shows that it failed, without the event.
    target?.setStatus('error', key);
    // Unref'd: captureError() in a Node process must not keep it alive.
    summary ??= unref(setTimeout(reportSkipped, windowStart + 60_000 - t));
    warnOnce('errors-skipped', `more than ${PER_ERROR} of one error or ${maxPerMinute} errors a minute; the rest are counted (${SKIPPED_ERRORS}).`);
    return;
  }
  const span = target ?? tracer.startSpan(name, { parent: null });
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
      // Resource load failures (an <img> 404) are not dispatched to window's bubbling listeners,
      // and other plain Events are not errors: only script errors count.
      if (!(e instanceof ErrorEvent)) return;
      let error: unknown = e.error;
      if (error == null) {
        // A cross-origin script without CORS gives only "Script error." and nothing else to go
        // on: not recorded (its script tag needs `crossorigin` and the CDN's CORS header).
        if (!e.filename && (!e.message || e.message === 'Script error.')) return;
        // No error object (a Web Worker's error reaching the page, `throw null`): its text,
        // "Uncaught TypeError: …", gives the type and the message.
        const [, type = 'Error', message = ''] = /^(?:Uncaught )?(?:((?:[A-Z]\w*)?(?:Error|Exception)): )?([^]*)$/.exec(e.message) ?? [];
        error = { name: type, message, stack: e.filename ? `at ${e.filename}:${e.lineno}:${e.colno}` : undefined };
      }
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
  addEventListener('pagehide', reportSkipped);
  return () => {
    removeEventListener('error', onError);
    removeEventListener('unhandledrejection', onRejection);
    removeEventListener('pagehide', reportSkipped);
    reportSkipped();
    if (errorTracer === tracer) errorTracer = undefined;
  };
};

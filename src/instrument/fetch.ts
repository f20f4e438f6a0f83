import { follows, markCancelled, readsStream, requestStarts, type Generation, type Span } from '../core/span';
import type { Tracer } from '../core/tracer';
import { getTracer } from '../core/global';
import { inject, readHeader } from '../propagation/index';
import { now } from '../lib/now';
import { guard } from '../lib/guard';
import { patch, patchAllOrSkip } from '../lib/patch';
import { reportInternal } from '../lib/reportInternal';
import { addBaggage, baggageFor, classify, compileRules, inFetch, inFlight, isBaggageHeader, isTraceHeader, notPropagated, setHttpFailure, setHttpStatus, startHttpSpan, type HttpOptions } from './http';
import { requestParent } from './interactionContext';
import { UNFINISHED } from '../core/semconv';
import { BODY_IDLE_MS, endWatch, watchBody, type BodyOutcome, type BodyWatcher } from './stream';
import { generationBody, generationOf } from './generationBody';
import type { Stop } from './index';
import { hasNoBody } from '../lib/hasNoBody';
import { UNTRACED_FETCH } from '../lib/untracedFetch';
import { noteAbortReason } from '../lib/isAbortError';

/** Options for {@link instrumentFetch}. */
export interface FetchOptions extends HttpOptions {
  /**
   * Keep each span open while the app reads the response body, recording time to first chunk,
   * chunks, bytes, SSE events and how the read ended. Default true. When false, spans end when
   * the headers arrive and the response is handed over untouched.
   */
  streams?: boolean | undefined;
}

/** Attribute names for what the body watch records (no OpenTelemetry convention covers these). */
export const BODY_ATTRS = {
  timeToHeadersMs: 'edgetrace.http.time_to_headers_ms',
  timeToFirstChunkMs: 'edgetrace.http.time_to_first_chunk_ms',
  chunks: 'edgetrace.http.body_chunks',
  bytes: 'edgetrace.http.body_bytes',
  outcome: 'edgetrace.http.body_outcome',
  sseEvents: 'edgetrace.sse.events',
} as const;

/** One traced call: what goes to the original fetch and what we record on. */
interface Call {
  span: Span;
  gen: Generation | undefined;
  input: unknown;
  init: unknown;
  startMs: number;
  method: string;
  /** The `traceparent` we set, if we did: a fetch wrapper under ours may replace it. */
  tp?: string | null | undefined;
  /** Tells the generation the request's answer came, or failed (see `requestStarts`). */
  answered?: ((failed?: boolean) => void) | undefined;
}

/**
 * Whether `error` is the reason the app aborted this call with (`controller.abort(reason)`): a
 * cancel like an AbortError, also when the reason is an Error or a text of the app's. A
 * TimeoutError (`AbortSignal.timeout()`) stays a failure.
 */
const abortedWith = (call: Call, error: unknown): boolean => {
  try {
    const { input, init } = call;
    const signal = (init as RequestInit | undefined)?.signal ?? (typeof Request === 'function' && input instanceof Request ? input.signal : undefined);
    if (!signal?.aborted || signal.reason !== error || (error as { name?: unknown } | null)?.name === 'TimeoutError') return false;
    noteAbortReason(error);
    return true;
  } catch {
    return false;
  }
};

const isPlainObject = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

const hasTraceHeaders = (h: Headers): boolean => h.has('traceparent') || h.has('tracestate');

/**
 * Plain-object headers with the trace headers added to a copy (fetch reads a record just as it
 * reads a Headers object, and building one costs a Headers); `false` when the app set trace
 * headers of its own; undefined for other shapes (Headers, pairs, iterables), which take the
 * Headers path.
 */
const withTraceFields = (span: Span, given: object): Record<string, string> | false | undefined => {
  if (!isPlainObject(given)) return undefined;
  let own: string | undefined;
  for (const name of Object.keys(given)) {
    if (isTraceHeader(name)) return false;
    if (isBaggageHeader(name)) own = name;
  }
  const out: Record<string, string> = { ...(given as Record<string, string>) };
  inject(span.spanContext(), (name, value) => void (out[name] = value));
  const ownValue = own && String(out[own]);
  const more = baggageFor(span, ownValue);
  if (more) out[own ?? 'baggage'] = ownValue ? `${ownValue},${more}` : more;
  return out;
};

/**
 * `init` with `headers` in place of its own, every other member as it was, also those not
 * enumerable: a fetch wrapper under ours may mark its calls so (SvelteKit's dev `fetch` does,
 * and warns of a load's `fetch` it does not find marked).
 */
const withHeaders = (init: unknown, headers: Record<string, string>): RequestInit => {
  const copy: Record<PropertyKey, unknown> = { ...(init as object), headers };
  // Read from the caller's object, as fetch would read them: a getter sees the object it was defined on.
  if (init) for (const key of Reflect.ownKeys(init)) if (!(key in copy)) copy[key] = (init as Record<PropertyKey, unknown>)[key];
  return copy as RequestInit;
};

/**
 * The arguments for the original fetch with `traceparent`/`tracestate` added, keeping every
 * header, the body and the caller's objects as they were, and the `traceparent` we set. Throws
 * when the arguments are invalid (the caller then passes the originals through, so fetch
 * rejects exactly as it would have).
 */
const withTraceHeaders = (span: Span, input: unknown, init: unknown, isRequest: boolean): [unknown, unknown, (string | null)?] => {
  // An init that is a class instance (even a Request) cannot be copied field by field safely.
  if (init !== undefined && (typeof init !== 'object' || init === null || !isPlainObject(init))) return [input, init];
  // `headers: null` is not "no headers": fetch refuses it, and must go on refusing it.
  if ((init as RequestInit | undefined)?.headers === null) return [input, init];
  // A Request with an init of the caller's (a body of its own, say): the headers still come from
  // the Request, so fetch gets a copy of them with ours, and the Request and its body stay as they
  // were. (An empty init would not change the request, but a headers member would.)
  const given =
    (init as RequestInit | undefined)?.headers ??
    (!isRequest ? {} : init !== undefined && Object.keys(init).length > 0 ? (input as Request).headers : undefined);
  if (given !== undefined) {
    // fetch reads init.headers in place of the Request's, so adding to a copy of them is exact.
    const fields = typeof given === 'object' && given !== null && withTraceFields(span, given);
    if (fields) return [input, withHeaders(init, fields), fields.traceparent];
    if (fields === false) {
      notPropagated(span, 'skipped', readHeader(given, 'traceparent'));
      return [input, init];
    }
    // Headers, pairs or any iterable, read once into our copy, which goes in their place: an
    // iterator read here could not be read again by fetch. The copy goes as a plain object, which
    // fetch reads as it reads a Headers (same-name values joined either way): a fetch polyfill
    // installed before us (whatwg-fetch) builds its own Headers class, which copies only from
    // itself, pairs and plain objects, and would drop every field of a browser Headers.
    const headers = new Headers(given);
    const isOwn = hasTraceHeaders(headers);
    if (isOwn) notPropagated(span, 'skipped', headers.get('traceparent'));
    else {
      inject(span.spanContext(), headers);
      addBaggage(span, headers);
    }
    const copy = Object.fromEntries(headers);
    return [input, withHeaders(init, copy), isOwn ? undefined : copy.traceparent];
  }
  const request = input as Request;
  if (hasTraceHeaders(request.headers)) {
    notPropagated(span, 'skipped', request.headers.get('traceparent'));
    return [input, init];
  }
  // A Request on its own: give the original fetch a copy, so the caller's Request object is not
  // changed. Copying takes over its body, as fetch(request) itself does, so it comes last:
  // nothing after it may fail and fall back to the consumed original.
  const copy = new Request(request);
  inject(span.spanContext(), copy.headers);
  addBaggage(span, copy.headers);
  return [copy, init, copy.headers.get('traceparent')];
};

/**
 * Marks the call `overridden` when what went down to the original fetch holds another
 * `traceparent` than the one we set: a wrapper installed before ours (OpenTelemetry's, writing
 * into a Headers or Request) put its own in its place, so the server never sees our span.
 */
const checkOverride = guard((call: Call): void => {
  const h = ((call.init as RequestInit | undefined)?.headers ?? (call.input as Request).headers) as Headers | Record<string, unknown> | undefined;
  const get = h?.get;
  const sent = typeof get === 'function' ? get.call(h, 'traceparent') : (h as Record<string, unknown> | undefined)?.traceparent;
  if (sent != null && sent !== call.tp) notPropagated(call.span, 'overridden', sent);
});

/** For each followed response of a generation's request: that generation and when the read ended. */
const heldBy = new WeakMap<Response, { gen: Generation; ended: Promise<number | undefined> }>();
/** The response whose body each request span follows. */
const followedBy = new WeakMap<Span, Response>();
/** The core's hooks into the bodies followed here (see `follows`). */
const held: NonNullable<typeof follows.held> = (span, value) => {
  const h = value instanceof Response ? heldBy.get(value) : undefined;
  return h?.gen === span ? h.ended : undefined;
};
const settle: NonNullable<typeof follows.settle> = (span) => {
  const res = followedBy.get(span);
  return !!res && endWatch(res);
};

/**
 * Records a CLIENT span for every `fetch()` the page makes (OpenTelemetry HTTP conventions,
 * query values redacted), adds `traceparent`/`tracestate` to same-origin and `propagateTo`
 * requests, and follows the response body as the app reads it. The page gets back the same
 * outcome: the same Response object, or the same rejection. Call the returned function to
 * restore the original `fetch`.
 */
export const instrumentFetch = (opts: FetchOptions = {}): Stop => {
  const g = globalThis as { fetch?: typeof fetch };
  if (typeof g.fetch !== 'function') return () => undefined;
  const rules = compileRules(opts);
  if (!rules) return () => undefined;
  follows.held = held;
  follows.settle = settle;
  const watchStreams = opts.streams !== false;
  const open = inFlight();

  const begin = (input: unknown, init: unknown): Call | undefined => {
    let isRequest = false;
    let raw: string | undefined;
    if (typeof input === 'string') raw = input;
    else if (typeof Request === 'function' && input instanceof Request) {
      isRequest = true;
      raw = input.url;
    } else if (input instanceof URL) raw = input.href;
    // Other objects are stringified by fetch itself; doing it here too could run their code twice.
    if (raw === undefined) return undefined;
    const target = classify(raw, rules);
    if (!target) return undefined;
    const given = init && (init as RequestInit).method;
    const method = typeof given === 'string' ? given : isRequest ? (input as Request).method : 'GET';
    const tracer: Tracer = opts.tracer ?? getTracer();
    const parent = requestParent(tracer);
    const span = startHttpSpan(tracer, method, target, parent);
    open.add(span);
    const gen = generationOf(parent);
    const call: Call = { span, gen, input, init, startMs: now(), method, answered: gen && requestStarts(gen) };
    if (target.propagate) {
      try {
        [call.input, call.init, call.tp] = withTraceHeaders(span, input, init, isRequest);
      } catch (error) {
        // Invalid headers or a used body: fetch will reject on the originals just as it would have.
        reportInternal(error);
      }
    }
    return call;
  };

  const respond = (call: Call, res: Response): void => {
    const { span } = call;
    let read: ((endMs?: number) => void) | undefined;
    try {
      setHttpStatus(span, res.status);
      const headersMs = now();
      span.setAttribute(BODY_ATTRS.timeToHeadersMs, headersMs - call.startMs);
      // No body (Chromium still hands out an empty one, which would wait to count as unread):
      // the request is done once the headers are in.
      if (!watchStreams || !span.isRecording || hasNoBody(res.status, call.method)) {
        span.end();
        return;
      }
      let chunks = 0;
      let bytes = 0;
      let lastMs = headersMs;
      const body = generationBody(res, call.gen);
      // When the read ends, for a generation whose callback may resolve with this response.
      let release: ((endMs: number | undefined) => void) | undefined;
      const ended = call.gen && new Promise<number | undefined>((resolve) => (release = resolve));
      // A model stream: the generation waits for its read, whatever its callback returns.
      read = call.gen && body.isStream ? readsStream(call.gen) : undefined;
      const watcher: BodyWatcher = {
        chunk(chunk) {
          lastMs = now();
          if (chunks++ === 0) {
            span.setAttribute(BODY_ATTRS.timeToFirstChunkMs, lastMs - call.startMs);
            span.recordEvent('first_chunk', undefined, lastMs);
          }
          bytes += (chunk as ArrayBufferView | undefined)?.byteLength ?? 0;
          // Timed by its arrival: the span may end at this very chunk (a model stream's last).
          body.push(chunk, lastMs);
          // The model stream's last event: a reader that stops there (without cancel) read it all.
          return body.done;
        },
        end(ended: BodyOutcome, detail) {
          // A cancel after the model stream's last event (an app that breaks out of its loop
          // there) cut nothing short.
          let outcome = ended === 'error' && abortedWith(call, detail.error) ? 'cancelled' : ended;
          if (outcome === 'cancelled' && body.done) outcome = 'complete';
          // Read through response.body: every chunk was counted. Read with text() and the
          // like: the method's result tells the bytes, when it can.
          if (detail.isStream) span.setAttributes({ [BODY_ATTRS.chunks]: chunks, [BODY_ATTRS.bytes]: bytes });
          else if (detail.bytes !== undefined) span.setAttribute(BODY_ATTRS.bytes, detail.bytes);
          span.setAttribute(BODY_ATTRS.outcome, outcome);
          const events = body.end(detail.value, outcome === 'complete');
          if (body.isSse) span.setAttribute(BODY_ATTRS.sseEvents, events);
          // An error's body thrown away (an SDK that retries a 429 or a 5xx does) stopped no
          // answer: the request keeps its HTTP status, and the generation its own outcome.
          if (outcome === 'cancelled' && res.ok) {
            markCancelled(span);
            // The app stopped the model's stream (reader.cancel(), a break out of for await) and
            // its generation goes on to end normally: it was stopped all the same.
            if (call.gen && !call.gen.isEnded) markCancelled(call.gen);
          }
          if (outcome === 'unfinished') {
            span.setAttribute(UNFINISHED, true);
            // Its trace ended while it was read: the generation it holds was cut short too.
            if (read && !call.gen!.isEnded) call.gen!.setAttribute(UNFINISHED, true);
          }
          if (outcome === 'error') setHttpFailure(span, detail.error);
          // Ended by time (no read for a while), or complete with its last event: at the last chunk.
          span.end(outcome === 'abandoned' || outcome === 'unread' || body.done ? lastMs : undefined);
          release?.(span.endMs || undefined);
          read?.(span.endMs || undefined);
        },
      };
      // SSE bodies are read through the counting stream even by text(): the first event is the
      // generation's first token, and only the stream sees when it arrives.
      // A generation's stream may be read later (its usage and first token are in the body), and
      // the generation is open meanwhile anyway.
      if (!watchBody(res, watcher, { now, isStreaming: body.isSse, unreadMs: call.gen && body.isStream ? BODY_IDLE_MS : undefined })) {
        span.end();
        read?.();
      } else {
        followedBy.set(span, res);
        if (ended) heldBy.set(res, { gen: call.gen!, ended });
      }
    } catch (error) {
      reportInternal(error);
      span.end();
      read?.();
    } finally {
      // After readsStream: a model stream's read takes over from the request.
      call.answered?.(!res.ok);
    }
  };

  const failed = (call: Call, error: unknown): void => {
    call.answered?.(true);
    try {
      setHttpFailure(call.span, error, undefined, abortedWith(call, error));
      call.span.end();
    } catch (e) {
      reportInternal(e);
    }
  };

  // A fetch that cannot be replaced (a read-only global on a locked-down page) goes untraced;
  // the rest of the instrumentation still runs, as with XHR.
  let wrapped: typeof fetch | undefined;
  const undo = patchAllOrSkip(() =>
    patch(
      g as { fetch: typeof fetch },
      'fetch',
      (original) => {
        wrapped = original;
        return function fetch(this: unknown, ...args: Parameters<typeof globalThis.fetch>): Promise<Response> {
          let call: Call | undefined;
          try {
            call = begin(args[0], args[1]);
          } catch (error) {
            reportInternal(error);
          }
          if (!call) return original.apply(this, args);
          const traced = call;
          let promise: Promise<Response>;
          inFetch.depth++;
          try {
            promise = original.call(this, traced.input as RequestInfo, traced.init as RequestInit | undefined);
          } catch (error) {
            // Only a replaced fetch throws synchronously; the caller must see that throw as is.
            failed(traced, error);
            throw error;
          } finally {
            inFetch.depth--;
          }
          if (traced.tp) checkOverride(traced);
          if (!promise || typeof promise.then !== 'function') {
            traced.span.end();
            return promise;
          }
          // One step after the original: the same Response object (watched in place, see
          // watchBody) or the same rejection reason. Not the original promise itself, because
          // our rejection handler on it would hide a failure the app never handles from
          // `unhandledrejection`, where the app's own error reporting looks for it.
          return promise.then(
            (res) => {
              respond(traced, res);
              return res;
            },
            (error: unknown) => {
              failed(traced, error);
              throw error;
            },
          );
        };
      },
    ),
  );
  const keep = g as { [UNTRACED_FETCH]?: typeof fetch };
  // The first wrapper's original: a second instrumentFetch() (in a worker, beside init()) wraps ours.
  if (wrapped) keep[UNTRACED_FETCH] ??= wrapped;
  return () => {
    undo();
    if (keep[UNTRACED_FETCH] === wrapped) delete keep[UNTRACED_FETCH];
    open.release();
  };
};

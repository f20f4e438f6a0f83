import { inject } from '../propagation/index';
import { addBaggage, setHttpFailure, setHttpStatus } from '../instrument/http';
import { reportInternal } from '../lib/reportInternal';
import { clientRequestAttributes, errorType, parseUrl, spanMethod } from './httpAttributes';
import { outgoingParent } from './scope';
import { markCancelled, readsStream, requestStarts } from '../core/span';
import { now } from '../lib/now';
import { fillsGeneration, generationBody, generationOf } from '../instrument/generationBody';
import { BODY_IDLE_MS, watchBody, type BodyEnd, type BodyOutcome } from '../instrument/stream';
import { UNTRACED_FETCH } from '../lib/untracedFetch';

// The fetch in place before our patch; calls through it are never traced.
let original: typeof fetch | undefined;
let wrapper: typeof fetch | undefined;
/** The fetch published as the untraced one (see `install`), taken back by the remover. */
let published: typeof fetch | undefined;
let active = false;

const isRequestLike = (input: unknown): input is Request =>
  typeof input === 'object' && input !== null && typeof (input as Request).url === 'string' && typeof (input as Request).method === 'string';

/**
 * Sends through `send` and, inside a request handled by `withTracing`, records a CLIENT span
 * around it with `traceparent`/`tracestate` and the trace's baggage injected (for URLs the handler's `propagateTo`
 * allows). The caller gets `send`'s promise itself: same response, same rejection. The span ends
 * when the response headers arrive, and `response` stays the very object `send` resolved with.
 * Inside a generation (a model call made from the backend), its body is watched as the page's
 * is, in place: the generation gets its first-token time and usage from it.
 */
const fetchVia = (send: typeof fetch, input: RequestInfo | URL, init?: RequestInit, patched = false): Promise<Response> => {
  const out = outgoingParent();
  const parent = out && !(patched && !out.traceFetch) ? out.span : undefined;
  // Outside a traced request and a background job's span, for exports (edgetrace's own work), and
  // through the global of a handler that turned it off (another handler patched it): untouched.
  // Work the app goes on with after the response, inside a span of its own still open (a model
  // call the client left), is traced.
  if (!out || !parent) return Reflect.apply(send, globalThis, [input, init]) as Promise<Response>;
  let args: [RequestInfo | URL, RequestInit | undefined] = [input, init];
  let span;
  let method = 'GET';
  try {
    // fetch(url, request), the Workers proxy idiom: the init is a Request whose method and body
    // live on its prototype, which a spread would drop. Fold the two into one Request first.
    if (isRequestLike(init)) {
      input = new Request(input instanceof URL ? input.href : input, init);
      init = undefined;
      args = [input, init];
    }
    const request = isRequestLike(input) ? input : undefined;
    const href = request ? request.url : String(input);
    method = init?.method ?? request?.method ?? 'GET';
    // Parsed once, for the name, the attributes and the propagation rule.
    const url = parseUrl(href);
    // `{method}`, as OpenTelemetry's HTTP conventions name a client span without a URL template,
    // and as the page names its fetches; the host is `server.address`.
    span = parent.startSpan(spanMethod(method), {
      kind: 'client',
      attributes: clientRequestAttributes(method, href, url),
    });
    if (out.propagate(href, url)) {
      const headers = new Headers(init?.headers ?? request?.headers);
      // A proxied request carries the caller's tracestate, which belongs to the caller's
      // traceparent: the one injected here takes only this span's own.
      headers.delete('tracestate');
      // A baggage header the call carries (the incoming one, proxied) keeps its members; the
      // trace's others go after them.
      inject(span.spanContext(), headers);
      addBaggage(span, headers);
      args = [input, { ...init, headers }];
    }
  } catch (error) {
    // A header set we cannot copy, a hostile input: send as the caller asked.
    reportInternal(error);
    span?.end();
    span = undefined;
    args = [input, init];
  }
  const response = Reflect.apply(send, globalThis, args) as Promise<Response>;
  const s = span;
  if (s) {
    const gen = generationOf(parent);
    // A stream object's generation waiting for its request (see requestStarts) waits for this answer.
    const answered = gen && requestStarts(gen);
    response
      .then(
        (res) => {
          let read: ((endMs?: number) => void) | undefined;
          try {
            setHttpStatus(s, res.status);
            s.end();
            if (gen && fillsGeneration(gen, res.status, method)) {
              const body = generationBody(res, gen);
              // A model stream: the generation waits for its read, whatever its callback returns.
              read = body.isStream ? readsStream(gen) : undefined;
              let lastMs = now();
              const chunk = (c: unknown): boolean => {
                lastMs = now();
                body.push(c, lastMs);
                return body.done;
              };
              const end = (outcome: BodyOutcome, detail: BodyEnd): void => {
                try {
                  body.end(detail.value, outcome === 'complete');
                  // The model's stream stopped before its last event (a client that left a stream the
                  // handler passed on, a `break` out of the loop): the generation was stopped, as on the page.
                  if (outcome === 'cancelled' && !body.done && res.ok && !gen.isEnded) markCancelled(gen);
                } finally {
                  // Read to its last event, or left unread or half read: the read ended at its last chunk.
                  read?.(outcome === 'abandoned' || outcome === 'unread' || body.done ? lastMs : now());
                }
              };
              // A model stream the app reads later (an SDK's stream object, returned at the headers)
              // may wait to be read as long as the page's does, and its generation waits for it.
              if (!watchBody(res, { chunk, end }, { now, isStreaming: body.isSse, unreadMs: body.isStream ? BODY_IDLE_MS : undefined })) read?.();
            }
          } catch (error) {
            read?.();
            throw error;
          } finally {
            answered?.(!res.ok);
          }
        },
        (error: unknown) => {
          answered?.(true);
          try {
            // An abort (the client left, a "stop generating") is the caller's choice, not a failure.
            setHttpFailure(s, error, errorType(error));
          } finally {
            s.end();
          }
        },
      )
      .catch(reportInternal);
  }
  return response;
};

/**
 * A `fetch` that traces the call when made inside a handler wrapped by `withTracing`: a CLIENT
 * span child of the current span, with `traceparent`/`tracestate` injected. Elsewhere it is
 * plain `fetch`. Use it where patching the global is unwanted (`withTracing(…, { traceFetch: false })`).
 */
export const tracedFetch: typeof fetch = (input, init) => fetchVia(original ?? globalThis.fetch, input, init);

/**
 * The `fetch` of a binding, traced as {@link tracedFetch} traces the global one: a Cloudflare
 * service binding (`env.AUTH`) or a Durable Object stub, whose calls `globalThis.fetch` never
 * sees. Inside `withTracing` each call is a CLIENT span, and the callee's `withTracing` continues
 * the trace from its `traceparent`: `const auth = tracedFetcher(env.AUTH); await auth('https://auth/check')`.
 */
export const tracedFetcher = (binding: { fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> }): typeof fetch => {
  if (typeof binding?.fetch !== 'function') throw new TypeError('[edgetrace] tracedFetcher(): give it an object with a fetch method (a service binding or a Durable Object stub)');
  // Called as the binding's method: workerd's bindings refuse a detached fetch.
  const send = ((input: Request | string | URL, init?: RequestInit) => binding.fetch(input, init)) as typeof fetch;
  return (input, init) => fetchVia(send, input, init);
};

/**
 * Whether the fetch `f` is `target` or calls through to it, as far as wrappers that name what they
 * wrap tell: Next's patched fetch (`_nextOriginalFetch`), shimmer's (`__original`).
 */
const reaches = (f: unknown, target: unknown): boolean => {
  for (let i = 0; i < 8 && typeof f === 'function'; i++) {
    if (f === target) return true;
    const named = f as { _nextOriginalFetch?: unknown; __original?: unknown };
    f = named._nextOriginalFetch ?? named.__original;
  }
  return false;
};

/** Counts the installs that removers tell apart: a wrap again after a reset keeps its number. */
let generation = 0;
/** The global `keepServerFetch` last tried to wrap and could not (a setter that ignores or refuses it). */
let refused: unknown;

/** Puts a new wrapper over the global fetch; the one before, if any, passes calls straight on from now. */
const install = (): boolean => {
  const g = globalThis.fetch;
  if (typeof g !== 'function') return false;
  const own: typeof fetch = (input, init) => (active && wrapper === own ? fetchVia(g, input, init, true) : Reflect.apply(g, globalThis, [input, init]));
  try {
    globalThis.fetch = own;
  } catch (error) {
    // A runtime with a read-only fetch: tracedFetch still works.
    reportInternal(error);
    return false;
  }
  original = g;
  wrapper = own;
  active = true;
  // Exporters made from now on (a tracer of the app's, a second env's setup) send with the fetch
  // wrapped here, as the page's delivery does with the page's wrapper: never a span of their own.
  const keep = globalThis as { [UNTRACED_FETCH]?: typeof fetch };
  if (!keep[UNTRACED_FETCH]) published = keep[UNTRACED_FETCH] = g;
  return true;
};

/**
 * Puts the wrapper back, once per request, where the global `fetch` was reset under it: Next's dev
 * server (15 and later) puts the runtime's fetch back at every rebuild and patches it anew, and a
 * route module that was not rebuilt never installed ours again, so its requests' calls went
 * untraced until a restart. Only over the fetch it wrapped, or over Next's own patch while Next
 * holds its global "patched" flag (it then patches no more, where Next 14, which checks a flag
 * on the global function, would patch over ours at each request, and the two would pile up);
 * another library's wrapper put over ours stays as it is. Never throws.
 */
export const keepServerFetch = (): void => {
  try {
    const g = globalThis.fetch;
    if (!active || g === wrapper || g === refused || typeof g !== 'function') return;
    const nextAnew = '_nextOriginalFetch' in g && (globalThis as Record<symbol, unknown>)[Symbol.for('next-patch')] === true;
    if ((g === original || nextAnew) && !reaches(g, wrapper) && (!install() || globalThis.fetch !== wrapper)) refused = g;
  } catch (error) {
    reportInternal(error);
  }
};

/**
 * Replaces `globalThis.fetch` with a wrapper that behaves as {@link tracedFetch}. Safe with
 * concurrent requests: the wrapper finds the request it belongs to through AsyncLocalStorage,
 * and outside a traced request it calls the original straight away. Calling it again while
 * installed changes nothing. Returns a function that removes the wrapper when it is still the
 * global one (and otherwise turns it into a plain pass-through); one of an install since removed does nothing.
 */
export const instrumentServerFetch = (): (() => void) => {
  if (!active) {
    if (!install()) return () => undefined;
    generation++;
  }
  const mine = generation;
  return () => {
    if (!active || generation !== mine) return;
    active = false;
    try {
      if (globalThis.fetch === wrapper && original) globalThis.fetch = original;
      const keep = globalThis as { [UNTRACED_FETCH]?: typeof fetch };
      if (published && keep[UNTRACED_FETCH] === published) delete keep[UNTRACED_FETCH];
      published = undefined;
    } catch (error) {
      reportInternal(error);
    }
    original = undefined;
    wrapper = undefined;
  };
};

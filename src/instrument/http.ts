import { baggageOf, markCancelled, recordFailure, type Span } from '../core/span';
import { baggageAfter } from '../propagation/baggage';
import type { Tracer } from '../core/tracer';
import { reportInternal } from '../lib/reportInternal';
import { PROPAGATION, UNFINISHED } from '../core/semconv';
import { parseTraceparent } from '../propagation/traceparent';
import { anyUrl, toUrlTest, type UrlPattern, type UrlTest } from '../lib/matchUrl';
import { withoutCredentials } from '../lib/withoutCredentials';
import { liveSet } from '../lib/liveSet';

/**
 * What fetch and XMLHttpRequest share: which URLs are traced and which get trace headers, and
 * the OpenTelemetry HTTP client attributes.
 * Semantic conventions: https://opentelemetry.io/docs/specs/semconv/http/http-spans/#http-client
 */

/** Options both HTTP instrumentations take. */
export interface HttpOptions {
  /** The tracer to record with. Default: the global one (`init()`), looked up at each request. */
  tracer?: Tracer | undefined;
  /** Other origins or URL prefixes that receive trace headers; same-origin URLs always do. */
  propagateTo?: UrlPattern[] | undefined;
  /** URLs not traced at all. */
  ignoreUrls?: UrlPattern[] | undefined;
}

/** The compiled URL rules of one instrumentation. */
export interface UrlRules {
  propagate: UrlTest[];
  ignore: UrlTest[];
}

type Loc = { href?: unknown; origin?: unknown } | undefined;

/** The page's URL, or undefined outside a page (a worker has `location` too, which is fine). */
export const pageHref = (): string | undefined => {
  const loc = (globalThis as { location?: Loc }).location;
  return loc && typeof loc.href === 'string' ? loc.href : undefined;
};

const pageOrigin = (): string | undefined => {
  const loc = (globalThis as { location?: Loc }).location;
  return loc && typeof loc.origin === 'string' ? loc.origin : undefined;
};

/**
 * What relative request URLs resolve against: the document's base URL (`<base href>` counts,
 * as it does for fetch), else the page's or worker's URL. `document.baseURI` is cached by the
 * browser; `location.href` is rebuilt on every read, a microsecond each.
 */
const requestBase = (): string | undefined => {
  const doc = (globalThis as { document?: { baseURI?: unknown } }).document;
  const base = doc?.baseURI;
  return typeof base === 'string' ? base : pageHref();
};

// Distinct URLs remembered per instrumentation before the memory starts over. Apps call the
// same few endpoints again and again; an app with ids in its URLs only pays the parse again.
const MAX_CACHED_URLS = 256;
// Longer URLs (data: URLs can be megabytes) are parsed every time rather than kept.
const MAX_CACHED_URL_CHARS = 2048;

/** The compiled URL rules of one instrumentation, and what it learned about URLs so far. */
export interface UrlRules {
  propagate: UrlTest[];
  ignore: UrlTest[];
  /** The page's origin, fixed for its lifetime (history changes only the path). */
  origin: string | undefined;
  /** The base the cached targets were resolved against. */
  base: string | undefined;
  /** Request URL as given → its target, or null for a URL that is not traced. */
  targets: Map<string, HttpTarget | null>;
}

/**
 * Whether a header the app sets is a trace header (in any spelling). Where it set one, we add
 * none, not even the other one: fetch and XHR follow the same rule.
 */
export const isTraceHeader = (name: string): boolean => {
  const l = name.toLowerCase();
  return l === 'traceparent' || l === 'tracestate';
};

/** Whether `name` is `baggage`, in any case: an app's own keeps its members, and gets the trace's others. */
export const isBaggageHeader = (name: string): boolean => name.toLowerCase() === 'baggage';

/**
 * Records that `span`'s context did not reach the server with its request (see `PROPAGATION`),
 * linked to the context that did, from the `traceparent` the request went with.
 */
export const notPropagated = (span: Span, how: 'skipped' | 'overridden', traceparent: unknown): void => {
  span.setAttribute(PROPAGATION, how);
  const other = parseTraceparent(traceparent);
  if (other) span.addLink(other);
};

/**
 * How many calls of the fetch we wrapped are running now. A fetch polyfill made of
 * XMLHttpRequest (whatwg-fetch) opens and sends its XHR within the call: that request is the
 * fetch's, traced already, so the XHR instrumentation leaves it alone.
 */
export const inFetch = { depth: 0 };

/**
 * The `baggage` of `span`'s trace for a request whose own `baggage` header is `own`, if it has
 * one: then only the members whose keys it lacks, to go after it (see `baggageAfter`), so the
 * members the app or another tracer (Sentry) set stay, and the trace's arrive too.
 */
export const baggageFor = (span: Span, own?: string | null): string | undefined => baggageAfter(baggageOf(span), own);

/** Adds the trace's baggage to fetch `headers`, after their own `baggage` (see {@link baggageFor}). */
export const addBaggage = (span: Span, headers: Headers): void => {
  const more = baggageFor(span, headers.get('baggage'));
  if (more) headers.append('baggage', more);
};

/**
 * Compiles `propagateTo` and `ignoreUrls` against the page's URL; undefined, with the error
 * reported, when they cannot be compiled (the instrumentation then stays off).
 */
export const compileRules = (opts: HttpOptions): UrlRules | undefined => {
  try {
    const base = pageHref();
    return {
      propagate: (opts.propagateTo ?? []).map((p) => toUrlTest(p, base)),
      ignore: (opts.ignoreUrls ?? []).map((p) => toUrlTest(p, base)),
      origin: pageOrigin(),
      base: undefined,
      targets: new Map(),
    };
  } catch (error) {
    reportInternal(error);
    return undefined;
  }
};

// The methods OpenTelemetry knows; anything else is reported as `_OTHER` with the original kept.
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);
const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** A traced request URL, resolved once and kept: what its span records and whether it gets trace headers. */
export interface HttpTarget {
  /** The absolute URL without credentials (`url.full`; the span redacts its query values). */
  full: string;
  host: string;
  port: number | undefined;
  /** Whether the request gets `traceparent`, `tracestate` and `baggage`. */
  propagate: boolean;
}

const resolveTarget = (raw: string, rules: UrlRules, base: string | undefined): HttpTarget | null => {
  const url = new URL(raw, base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const href = url.href;
  const origin = url.origin;
  if (rules.ignore.length && anyUrl(rules.ignore, href, origin)) return null;
  // Credentials never belong in `url.full`.
  return {
    full: withoutCredentials(url),
    host: url.hostname,
    port: url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol],
    propagate: origin === rules.origin || anyUrl(rules.propagate, href, origin),
  };
};

/**
 * Resolves `raw` against the page and applies the rules: `undefined` when the request is not
 * traced (ignored, or not an http(s) URL: data:, blob: and the like have no server to link to).
 * Throws, like `new URL`, for a URL that does not parse. Results are kept per URL and base.
 */
export const classify = (raw: string, rules: UrlRules): HttpTarget | undefined => {
  const base = requestBase();
  const targets = rules.targets;
  if (base !== rules.base) {
    targets.clear();
    rules.base = base;
  }
  let target = targets.get(raw);
  if (target === undefined) {
    target = resolveTarget(raw, rules, base);
    if (raw.length <= MAX_CACHED_URL_CHARS) {
      if (targets.size >= MAX_CACHED_URLS) targets.clear();
      targets.set(raw, target);
    }
  }
  return target ?? undefined;
};

/** Starts the CLIENT span for a request under `parent` (see `parentSpan`), or as a new trace. */
export const startHttpSpan = (tracer: Tracer, method: string, target: HttpTarget, parent: Span | undefined): Span => {
  const upper = method.toUpperCase();
  const known = KNOWN_METHODS.has(upper);
  const attributes: Record<string, unknown> = {
    'http.request.method': known ? upper : '_OTHER',
    'url.full': target.full,
    'server.address': target.host,
    'server.port': target.port,
  };
  if (!known) attributes['http.request.method_original'] = method;
  return tracer.startSpan(known ? upper : 'HTTP', { kind: 'client', attributes, parent: parent ?? null });
};

/** The request spans an instrumentation has open; see {@link inFlight}. */
export interface InFlight {
  add(span: Span): void;
  /** Ends those still open, marked `edgetrace.unfinished`. */
  endAll(): void;
}

/** Every instrumentation's open request spans, for {@link endInFlight}. */
const everyInFlight = new Set<InFlight>();

/**
 * The page is going away for good (pagehide, not into the back/forward cache): ends every open
 * request span as unfinished now, so it is handed over with the rest. The browser then cuts the
 * requests with a network error, which is the page's leaving, not the request's failure.
 */
export const endInFlight = (): void => {
  for (const f of everyInFlight) f.endAll();
};

/**
 * The request spans still open, for `stop()`: their `traceparent` went out, so the backend's
 * spans name them as parent, and once the tracer has shut down their own end would be dropped.
 * Ended there, unfinished, they still reach the trace. Ended spans are let go as the set grows.
 * `release()` (at `stop()`) ends them and forgets the set.
 */
export const inFlight = (): InFlight & { release(): void } => {
  const live = liveSet<Span>();
  const spans = live.items;
  const f: InFlight & { release(): void } = {
    release() {
      f.endAll();
      everyInFlight.delete(f);
    },
    add(span) {
      // An unsampled span records nothing to end.
      if (span.isRecording) live.add(span);
    },
    endAll() {
      for (const s of spans) {
        if (s.isEnded) continue;
        s.setAttribute(UNFINISHED, true);
        s.end();
      }
      spans.clear();
    },
  };
  everyInFlight.add(f);
  return f;
};

/** Records the status on an HTTP span: 4xx and 5xx are errors of a client span. */
export const setHttpStatus = (span: Span, status: number): void => {
  span.setAttribute('http.response.status_code', status);
  if (status >= 400) {
    span.setAttribute('error.type', String(status));
    span.setStatus('error', `HTTP ${status}`);
  }
};

/** Records a request that failed without a response (network error, abort, timeout). */
export const setHttpFailure = (span: Span, error: unknown, type?: string, cancel?: boolean): void => {
  const given = (error as { name?: unknown } | null)?.name;
  const name = type ?? (typeof given === 'string' && given ? given : 'Error');
  span.setAttribute('error.type', name);
  // A deliberate cancel is the caller's choice, not a failure of the request.
  if (cancel) markCancelled(span);
  else recordFailure(span, error);
};

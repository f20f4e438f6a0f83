import type { Span } from '../core/span';
import type { Tracer } from '../core/tracer';
import { anyUrl, toUrlTest, type UrlPattern, type UrlTest } from '../lib/matchUrl';

/**
 * What fetch and XMLHttpRequest share: which URLs are traced and which get trace headers, and
 * the OpenTelemetry HTTP client attributes.
 * Semantic conventions: https://opentelemetry.io/docs/specs/semconv/http/http-spans/#http-client
 */

/** Options both HTTP instrumentations take. */
export interface HttpOptions {
  /** The tracer to record with. Default: the global one (`init()`), looked up at each request. */
  tracer?: Tracer;
  /** Other origins or URL prefixes that receive trace headers; same-origin URLs always do. */
  propagateTo?: UrlPattern[];
  /** URLs not traced at all. */
  ignoreUrls?: UrlPattern[];
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

/** Compiles `propagateTo` and `ignoreUrls` against the page's URL. */
export const compileRules = (opts: HttpOptions): UrlRules => {
  const base = pageHref();
  return {
    propagate: (opts.propagateTo ?? []).map((p) => toUrlTest(p, base)),
    ignore: (opts.ignoreUrls ?? []).map((p) => toUrlTest(p, base)),
  };
};

// The methods OpenTelemetry knows; anything else is reported as `_OTHER` with the original kept.
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);
const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** A request about to be traced. */
export interface HttpRequestInfo {
  url: URL;
  /** Whether the request gets `traceparent`, `tracestate` and `baggage`. */
  propagate: boolean;
}

/**
 * Resolves `raw` against the page and applies the rules: `undefined` when the request is not
 * traced (ignored, or not an http(s) URL: data:, blob: and the like have no server to link to).
 */
export const classify = (raw: string, rules: UrlRules): HttpRequestInfo | undefined => {
  const base = pageHref();
  const url = new URL(raw, base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const href = url.href;
  const origin = url.origin;
  if (rules.ignore.length && anyUrl(rules.ignore, href, origin)) return undefined;
  const sameOrigin = origin === pageOrigin();
  return { url, propagate: sameOrigin || anyUrl(rules.propagate, href, origin) };
};

/** Starts the CLIENT span for a request under `parent` (see `parentSpan`), or as a new trace. */
export const startHttpSpan = (tracer: Tracer, method: string, url: URL, parent: Span | undefined): Span => {
  const upper = method.toUpperCase();
  const known = KNOWN_METHODS.has(upper);
  const name = known ? upper : 'HTTP';
  // `url.full` is redacted by the span itself (query values), and credentials never belong in it.
  const full = url.username || url.password ? url.href.replace(`${url.username}${url.password ? `:${url.password}` : ''}@`, '') : url.href;
  const attributes: Record<string, unknown> = {
    'http.request.method': known ? upper : '_OTHER',
    'url.full': full,
    'server.address': url.hostname,
    'server.port': url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol],
  };
  if (!known) attributes['http.request.method_original'] = method;
  return tracer.startSpan(name, { kind: 'client', attributes, parent: parent ?? null });
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
export const setHttpFailure = (span: Span, error: unknown, type?: string): void => {
  const given = (error as { name?: unknown } | null)?.name;
  const name = type ?? (typeof given === 'string' && given ? given : 'Error');
  span.setAttribute('error.type', name);
  // A deliberate cancel is the caller's choice, not a failure of the request.
  if (name === 'AbortError') span.setAttribute('edgetrace.cancelled', true);
  else span.recordError(error);
};

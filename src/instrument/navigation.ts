import type { Span } from '../core/span';
import type { Trace } from '../core/trace';
import type { Tracer } from '../core/tracer';
import { getTracer } from '../core/global';
import { HASH_ROUTE, redactUrl } from '../core/redact';
import { parseTraceparent, parseTracestate, type SpanContext } from '../propagation/index';
import { patch, patchAll } from '../lib/patch';
import { isBrowserPage } from '../lib/isPage';
import { reportInternal } from '../lib/reportInternal';
import { getPageContext, parentSpan } from './interactionContext';
import type { Stop } from './index';

/** Options for {@link instrumentNavigation}. */
export interface NavigationOptions {
  /** The tracer to record with. Default: the global one. */
  tracer?: Tracer | undefined;
  /** Record the page load from Navigation Timing. Default true. */
  pageLoad?: boolean | undefined;
  /** Record History API route changes (`pushState`, `replaceState` of the path, `popstate`). Default true. */
  history?: boolean | undefined;
}

/** Attribute names on page-load and navigation spans. */
export const NAVIGATION_ATTRS = {
  type: 'edgetrace.navigation.type',
  from: 'edgetrace.navigation.from',
} as const;

// Navigation Timing marks recorded as events on the page-load span, in the order they happen.
// https://www.w3.org/TR/navigation-timing-2/#processing-model
const MARKS = [
  'fetchStart',
  'domainLookupStart',
  'domainLookupEnd',
  'connectStart',
  'secureConnectionStart',
  'connectEnd',
  'requestStart',
  'responseStart',
  'responseEnd',
  'domInteractive',
  'domContentLoadedEventStart',
  'domContentLoadedEventEnd',
  'domComplete',
  'loadEventStart',
  'loadEventEnd',
] as const;

let pageTrace: Trace | undefined;

/** The trace of this page load, once navigation instrumentation started: web vitals go under it. */
export const getPageTrace = (): Trace | undefined => pageTrace;

/** Sets the page's trace (for `edgetrace/vitals` when navigation instrumentation is off). */
export const setPageTrace = (trace: Trace | undefined): void => {
  pageTrace = trace;
};

const navigationEntry = (): PerformanceNavigationTiming | undefined => {
  const perf = (globalThis as { performance?: Performance }).performance;
  if (!perf || typeof perf.getEntriesByType !== 'function') return undefined;
  return perf.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
};

/**
 * A Resource Timing `nextHopProtocol`, an ALPN id (`http/1.1`, `h2`, `h3`), as OpenTelemetry's
 * `network.protocol.name` and `network.protocol.version` (`http`, `1.1` / `2` / `3`). An id
 * that is not HTTP's, or empty (a cross-origin entry), gives nothing.
 */
export const protocolAttributes = (alpn: string | undefined): Record<string, string> => {
  const m = /^(?:http\/(\d(?:\.\d)?)|h(\d)c?(?:-\d+)?)$/.exec(alpn ?? '');
  return m ? { 'network.protocol.name': 'http', 'network.protocol.version': (m[1] ?? m[2])! } : {};
};

// The parts of `Document` and `PerformanceNavigationTiming` that serverContext() reads, by shape,
// so these declarations compile in projects without the DOM lib (Node, Workers).
/** A document to read `<meta>` tags from. */
export interface DocumentLike {
  querySelector(selectors: string): { getAttribute(name: string): string | null } | null;
}
/** A navigation entry's `Server-Timing` values, and where the document came from. */
export interface NavigationEntryLike {
  readonly serverTiming?: ReadonlyArray<{ readonly name: string; readonly description: string }>;
  /** `'cache'` for a document from the HTTP cache (Chromium 109+). */
  readonly deliveryType?: string;
}

/**
 * The server span that rendered this document: `<meta name="traceparent" content="00-…">` (with
 * an optional `<meta name="tracestate">`), else a `Server-Timing: traceparent;desc="00-…"`
 * response header, which Navigation Timing exposes to the page. When they name two traces, the
 * header wins: it came with the newest response, while a body revalidated with a 304 keeps the
 * meta tags of the response that first carried it. (Within one trace, the meta tag may name a
 * span nearer the page than the header's.) A document from the HTTP cache has none: the server
 * span that rendered it is long over, and may have been another visitor's.
 */
export const serverContext = (doc: DocumentLike, entry?: NavigationEntryLike): SpanContext | undefined => {
  if (entry?.deliveryType === 'cache') return undefined;
  const meta = (name: string): string | undefined => doc.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? undefined;
  const ctx = parseTraceparent(meta('traceparent'));
  const timing = parseTraceparent(entry?.serverTiming?.find((t) => t.name === 'traceparent')?.description);
  if (!ctx || (timing && timing.traceId !== ctx.traceId)) return timing;
  const state = parseTracestate(meta('tracestate'));
  if (state) ctx.traceState = state;
  return ctx;
};

/** Documents whose load was recorded: a second `init()` (after `stop()`) does not record it again. */
const recorded = new WeakSet<object>();

const startPageLoad = (opts: NavigationOptions): Stop => {
  if (recorded.has(document)) return () => undefined;
  recorded.add(document);
  const tracer = opts.tracer ?? getTracer();
  const perf = (globalThis as { performance?: Performance }).performance;
  const origin = perf && perf.timeOrigin > 0 ? perf.timeOrigin : undefined;
  const entry = navigationEntry();
  // init() after the load event: the load is over, so it adopts no work and ends at loadEventEnd.
  const over = document.readyState === 'complete' && (entry?.loadEventEnd ?? 0) > 0;
  const parent = serverContext(document, entry);
  const trace = tracer.createTrace({
    name: 'page load',
    parent,
    startMs: origin !== undefined ? origin + (entry?.startTime ?? 0) : undefined,
    attributes: { 'url.full': location.href, [NAVIGATION_ATTRS.type]: entry?.type },
  });
  pageTrace = trace;
  // Fetches the app makes while the page loads are part of the load: the page load is the
  // active interaction, held open until the load event has finished and its work has ended. It
  // is loose: a request still open at its deadline (interactionTimeoutMs), a long poll or an
  // event stream, or when the page goes away, neither holds it nor stretches it.
  const ctx = over ? undefined : getPageContext();
  ctx?.begin(trace, { loose: true });
  const release = ctx?.hold(trace);
  let done = false;

  const finish = (): void => {
    if (done) return;
    done = true;
    let endMs: number | undefined;
    try {
      const n = navigationEntry();
      if (n && origin !== undefined) {
        const at = (ms: number): number => origin + ms;
        for (const mark of MARKS) {
          const v = n[mark];
          // Zero means "did not happen" (no DNS lookup for a reused connection, no TLS on http).
          if (v > 0) trace.recordEvent(mark, undefined, at(v));
        }
        if (n.responseStatus) trace.setAttribute('http.response.status_code', n.responseStatus);
        const doc = trace.startSpan('document fetch', {
          kind: 'client',
          startMs: at(n.fetchStart),
          attributes: {
            'http.request.method': 'GET',
            'url.full': n.name,
            'http.response.status_code': n.responseStatus || undefined,
            'http.response.body.size': n.encodedBodySize || undefined,
            ...protocolAttributes(n.nextHopProtocol),
          },
        });
        doc.end(at(n.responseEnd || n.responseStart || n.fetchStart));
        if (n.loadEventEnd > 0) endMs = at(n.loadEventEnd);
      }
    } catch (error) {
      reportInternal(error);
    }
    if (release) release(endMs);
    else trace.end(endMs);
  };

  // loadEventEnd is only set once every load listener has returned, so wait one more task.
  const onLoad = (): void => void setTimeout(finish, 0);
  if (document.readyState === 'complete') setTimeout(finish, 0);
  else addEventListener('load', onLoad, { once: true });
  return () => {
    removeEventListener('load', onLoad);
    finish();
  };
};

/**
 * Whether `fragment` is a hash router's route other than its root: a router that starts at `/`
 * makes it `/#/` at once, which is the same page.
 */
const isRoute = (fragment: string): boolean => HASH_ROUTE.test(fragment) && !/^#!?\/$/.test(fragment);

/** The address a route change changes: without an anchor (`#top`), with a hash router's route (`#/users/1`). */
const pathOf = (href: string): string => {
  const hash = href.indexOf('#');
  return hash < 0 || isRoute(href.slice(hash)) ? href : href.slice(0, hash);
};

/** The route's path: the pathname, and a hash route's own path. */
const routePath = (href: string): string => {
  const { pathname, hash } = new URL(href);
  return isRoute(hash) ? pathname + hash.split('?')[0] : pathname;
};

const watchHistory = (opts: NavigationOptions): Stop => {
  let lastHref = location.href;

  const changed = (kind: 'push' | 'replace' | 'pop', to = location.href): void => {
    try {
      const from = lastHref;
      lastHref = to;
      // Only a new document address is a navigation: not an anchor or history-state update,
      // nor a replaceState that keeps the path (scroll positions, filters in the query). A hash
      // router's route (`#/users/1`, Vue's and React Router's hash history) counts as the path.
      if (pathOf(from) === pathOf(to)) return;
      if (kind === 'replace' && routePath(from) === routePath(to)) return;
      const tracer = opts.tracer ?? getTracer();
      const cfg = tracer.config;
      const ctx = getPageContext();
      // The synchronous stack first (a route change inside `tracer.span()`), then the interaction.
      const active = parentSpan(tracer);
      const attributes = {
        'url.full': to,
        [NAVIGATION_ATTRS.from]: cfg.redactQuery ? redactUrl(from, cfg.keepQueryKeys) : from,
        [NAVIGATION_ATTRS.type]: kind,
      };
      const span: Span = tracer.startSpan('navigation', { parent: active ?? null, attributes });
      // Inside a click the navigation is a moment of that interaction; on its own (back
      // button, a timer) it is an interaction itself, parent of the fetches of the new route.
      if (!active && ctx) ctx.begin(span);
      else span.end();
    } catch (error) {
      reportInternal(error);
    }
  };

  const wrap =
    (kind: 'push' | 'replace') =>
    (original: History['pushState']): History['pushState'] =>
      function (this: History, ...args: Parameters<History['pushState']>): void {
        // The original first: a SecurityError for a cross-origin URL reaches the app as is.
        original.apply(this, args);
        changed(kind);
      };
  const onPop = (): void => changed('pop');
  // Both or neither: a method that cannot be replaced leaves the other as it was.
  const unpatch = patchAll(
    () => patch(history, 'pushState', wrap('push')),
    () => patch(history, 'replaceState', wrap('replace')),
  );
  addEventListener('popstate', onPop);
  // Where the Navigation API is there, a back or forward step is seen at its `navigate` event,
  // before any `popstate` listener runs: a router's listener added before init() then finds the
  // navigation for its fetches. `popstate` afterwards sees the same address and adds nothing.
  const nav = (globalThis as { navigation?: EventTarget }).navigation;
  const onNavigate = (event: Event): void => {
    const e = event as Event & { navigationType?: string; destination?: { url?: unknown; sameDocument?: boolean } };
    if (e.navigationType === 'traverse' && e.destination?.sameDocument && typeof e.destination.url === 'string') changed('pop', e.destination.url);
  };
  nav?.addEventListener('navigate', onNavigate);
  // A page restored from the back/forward cache is a page view the person sees, with no load:
  // a `navigation` of type `back_forward_cache`, the interaction its first fetches go under.
  const onShow = (event: Event): void => {
    if (!(event as PageTransitionEvent).persisted) return;
    try {
      lastHref = location.href;
      const span = (opts.tracer ?? getTracer()).startSpan('navigation', {
        parent: null,
        attributes: { 'url.full': lastHref, [NAVIGATION_ATTRS.type]: 'back_forward_cache' },
      });
      const ctx = getPageContext();
      if (ctx) ctx.begin(span);
      else span.end();
    } catch (error) {
      reportInternal(error);
    }
  };
  addEventListener('pageshow', onShow);
  return () => {
    removeEventListener('popstate', onPop);
    removeEventListener('pageshow', onShow);
    nav?.removeEventListener('navigate', onNavigate);
    unpatch();
  };
};

/**
 * Records the page load as a trace (`page load`, from Navigation Timing, continuing the server's
 * trace from `<meta name="traceparent">` or `Server-Timing`), and each History API route change
 * as a `navigation` span. Call the returned function to restore `history` and remove listeners.
 */
export const instrumentNavigation = (opts: NavigationOptions = {}): Stop => {
  if (!isBrowserPage() || typeof location !== 'object') return () => undefined;
  const stops: Stop[] = [];
  // Each part on its own: a page load that cannot be recorded leaves route changes traced.
  const start = (part: () => Stop): void => {
    try {
      stops.push(part());
    } catch (error) {
      reportInternal(error);
    }
  };
  if (opts.pageLoad !== false) start(() => startPageLoad(opts));
  if (opts.history !== false && typeof history === 'object') start(() => watchHistory(opts));
  return () => {
    for (const stop of stops) stop();
  };
};

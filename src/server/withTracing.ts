import { fail, resolveConfig, TRACER_KEYS, type TracerOptions } from '../config';
import type { Exporter } from '../protocol';
import type { Tracer } from '../core/tracer';
import type { Trace } from '../core/trace';
import { openTraces, type OpenTraces } from '../core/openTraces';
import { isPromise, kT, recordThrown, type Span, type TraceShared } from '../core/span';
import { extract } from '../propagation/index';
import { formatTraceparent, type SpanContext } from '../propagation/traceparent';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { isResponseLike } from '../lib/isResponseLike';
import { describe } from '../lib/describe';
import { abortedBy } from './abortedBy';
import { RESPONSE_CANCELLED, UNFINISHED } from '../core/semconv';
import { within } from '../lib/within';
import { unref } from '../lib/unref';
import { guard } from '../lib/guard';
import { hasNoBody } from '../lib/hasNoBody';
import { anyUrl, isUrlPattern, toUrlTest } from '../lib/matchUrl';
import { observeBody, type BodyEnd } from './body';
import { isDecoded, markDecoded } from './decoded';
import { instrumentServerFetch, keepServerFetch } from './fetch';
import { instrumentNodeHttp } from './nodeHttp';
import { checkKeys, type AllKeys } from '../lib/checkKeys';
import { fromEnv, processEnv } from './fromEnv';
import { noneExporter } from '../export/none';
import { errorType, parseUrl, serverRequestAttributes, setServerStatus, spanMethod } from './httpAttributes';
import { currentScope, forRequestFlush, outsideRequest, requestSpan, runInRoot, setProcessScope, type RequestScope } from './scope';
import { addOwnProcessor, serverTracer } from './serverTracer';
import { flushAtExit } from './exitFlush';
import { isProcess } from './runtimeResource';
import { nameIsOwn, routeTemplate } from './route';
import { findWaitUntil, type WaitUntil } from './waitUntil';

/** Which trace-linking headers go on responses. */
export type ResponseHeader = 'traceresponse' | 'server-timing';

/**
 * The options of both request wrappers, {@link withTracing} and `withNodeTracing`: the tracer's,
 * and how requests are traced. Every field is optional; tracer options apply when no `tracer` is
 * given.
 */
export interface ServerTracingOptions extends TracerOptions {
  /**
   * The tracer to record with. Default: one made by `createServerTracer()` from these options,
   * with `exporter` (or, when there is neither exporter nor processors, `fromEnv(env)`) flushed
   * once per request.
   */
  tracer?: Tracer | undefined;
  /**
   * Traces the calls a handler makes to other services: `fetch()`, by wrapping `globalThis.fetch`
   * once (see `instrumentServerFetch`), and in Node `http.request`/`https.request` and their
   * `get`s, which axios, got and node-fetch use (see `instrumentNodeHttp`). Default true. With
   * false, use `tracedFetch` where wanted.
   */
  traceFetch?: boolean | undefined;
  /**
   * Which outgoing requests get `traceparent`/`tracestate` and the trace's baggage (what the
   * request brought, with what the handler added): true (all, the default), false (none), URL
   * prefixes and patterns, or a predicate on the URL.
   */
  propagateTo?: boolean | ReadonlyArray<string | RegExp> | ((url: string) => boolean) | undefined;
  /**
   * Adds headers that let the page link to this trace: `traceresponse` (Trace Context Level 2)
   * and `Server-Timing: traceparent;desc="00-…"`. `true` adds both. Default none. Cross-origin
   * pages also need them exposed (`Access-Control-Expose-Headers`, `Timing-Allow-Origin`).
   */
  responseHeaders?: boolean | readonly ResponseHeader[] | undefined;
  /**
   * Incoming requests not traced at all (health checks, static files): the handler runs as it
   * would unwrapped, with no span and its calls untraced. Paths (`'/healthz'` matches that path and
   * those under it, `'/healthz/live'`, not `'/healthzz'`) and RegExps tested against the path,
   * without the query; `withTracing` and `withNodeTracing` also take a function of the request.
   */
  ignoreRequests?: ReadonlyArray<string | RegExp> | ((request: any) => boolean) | undefined;
}

/** Options for {@link withTracing}. */
export interface WithTracingOptions extends ServerTracingOptions {
  /** Requests not traced at all: see {@link ServerTracingOptions.ignoreRequests}; a function gets the `Request`. */
  ignoreRequests?: ReadonlyArray<string | RegExp> | ((request: Request) => boolean) | undefined;
  /** The SERVER span's name. Default `"GET /route"` when `route` gives one, else `"GET"` (HTTP semantic conventions). */
  spanName?: ((request: Request) => string) | undefined;
  /** The matched route template, such as `/api/chat/:id`, for `http.route` and the span name. */
  route?: ((request: Request) => string | undefined) | undefined;
  /** Used when neither the handler's `ctx` nor the platform offers `waitUntil`. */
  waitUntil?: WaitUntil | undefined;
  /** Called when the SERVER span starts, to add attributes, the user or the session from the request. */
  onRequest?: ((trace: Trace, request: Request) => void) | undefined;
}

/** Options with the per-request hooks, of either wrapper, as far as checking them goes. */
type HookOptions = ServerTracingOptions & { spanName?: unknown; route?: unknown; onRequest?: unknown; waitUntil?: unknown };

/** What a handler answers: a response, or nothing (a Next.js middleware that lets the request go on). */
type Answer<H> = H extends (...args: any[]) => infer R ? Awaited<R> : Response;

/**
 * What `withTracing` returns: the handler's own parameters, also callable as
 * `(request, env?, ctx?)` as runtimes do, always returning a promise (also for a handler that
 * returns its response directly).
 */
export type TracedHandler<H> = (H extends (...args: infer P) => unknown ? (...args: P) => Promise<Answer<H>> : H) &
  ((request: Request, env?: any, ctx?: any) => Promise<Answer<H>>);

/** Per-tracer state, built once per options (and per `env` when options come from a function). */
export interface Setup<O = WithTracingOptions> {
  tracer: Tracer;
  opts: O;
  propagate: RequestScope['propagate'];
  headers: readonly ResponseHeader[];
  traceFetch: boolean;
  /** Whether a request (a `Request`, or Node's) is left untraced (`ignoreRequests`). */
  ignored: ((request: any) => boolean) | undefined;
}

// Distinct env objects that get their own tracer before withTracing stops making new ones.
const MAX_ENV_SETUPS = 8;

const CALL = 'withTracing()';

const WRAPPER_LIST = ['tracer', 'traceFetch', 'propagateTo', 'responseHeaders', 'ignoreRequests', 'spanName', 'route', 'onRequest', 'waitUntil'] as const satisfies readonly (keyof WithTracingOptions)[];
/** What the server wrappers take beside the tracer's options (`withNodeTracing` the same, with Node's request). */
const WRAPPER_KEYS: AllKeys<Omit<WithTracingOptions, (typeof TRACER_KEYS)[number]>, typeof WRAPPER_LIST> = WRAPPER_LIST;
const ALL_WRAPPER_KEYS: readonly string[] = [...TRACER_KEYS, ...WRAPPER_KEYS];
/** `withNodeTracing`'s: the same but `waitUntil` (a Node process outlives its responses). */
export const NODE_WRAPPER_KEYS: readonly string[] = ALL_WRAPPER_KEYS.filter((k) => k !== 'waitUntil');

const toPropagate = (p: WithTracingOptions['propagateTo'], call: string): RequestScope['propagate'] => {
  if (p === undefined || p === true) return () => true;
  if (typeof p !== 'boolean' && typeof p !== 'function' && !Array.isArray(p)) {
    fail(call, 'propagateTo', 'true, false, a function of the URL, or an array of URL strings and RegExps', p);
  }
  if (Array.isArray(p)) p.forEach((m, i) => isUrlPattern(m, false) || fail(call, `propagateTo[${i}]`, 'a URL with its scheme ("https://api.example.com") or a RegExp', m));
  if (p === false) return () => false;
  if (typeof p === 'function') {
    // A predicate that throws sends no headers.
    const test = guard(p);
    return (url) => test(url) === true;
  }
  // The page's matching rules: an origin matches only that origin (not a look-alike host that
  // starts with it), and a RegExp is tested from the start each time.
  const tests = [...p].map((m) => toUrlTest(m));
  return (url, parsed = parseUrl(url)) => {
    const origin = parsed?.origin;
    return origin !== undefined && anyUrl(tests, url, origin);
  };
};

const toHeaders = (h: WithTracingOptions['responseHeaders'], call: string): readonly ResponseHeader[] => {
  if (h !== undefined && typeof h !== 'boolean' && !(Array.isArray(h) && h.every((n) => n === 'traceresponse' || n === 'server-timing'))) {
    fail(call, 'responseHeaders', 'true, false, or an array of "traceresponse" and "server-timing"', h);
  }
  return h === true ? ['traceresponse', 'server-timing'] : Array.isArray(h) ? h : [];
};

/**
 * The path of a request target, without its query: Node's `req.url` (`/healthz?full=1`, or an
 * absolute URL from a proxy) or a `Request`'s URL.
 */
export const requestPath = (target: string): string => {
  let path = target;
  if (target.startsWith('/')) {
    const end = target.search(/[?#]/);
    if (end >= 0) path = target.slice(0, end);
  } else path = parseUrl(target)?.pathname ?? target;
  // As routers read it (`/%68ealthz` is `/healthz`; `%2F` stays, as it is no separator to
  // them); a malformed escape stays as it came.
  if (path.includes('%')) {
    try {
      path = decodeURI(path);
    } catch {
      // Left as sent.
    }
  }
  return path;
};

/** `ignoreRequests` as a test of a request (its `url`: a `Request`'s, or Node's target), or undefined for none. */
const toIgnored = (given: unknown, call: string): ((request: any) => boolean) | undefined => {
  if (given === undefined) return undefined;
  if (typeof given === 'function') {
    // One that throws leaves the request traced, as without the option.
    const test = guard(given as (request: unknown) => unknown);
    return (request) => test(request) === true;
  }
  if (!Array.isArray(given)) fail(call, 'ignoreRequests', 'an array of paths ("/healthz") and RegExps, or a function of the request', given);
  const paths: string[] = [];
  const patterns: RegExp[] = [];
  (given as unknown[]).forEach((p, i) => {
    if (p instanceof RegExp) patterns.push(p);
    else if (typeof p === 'string' && p.startsWith('/')) paths.push(p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p);
    else fail(call, `ignoreRequests[${i}]`, 'a path starting with "/" ("/healthz", "/assets/") or a RegExp', p);
  });
  if (paths.length + patterns.length === 0) return undefined;
  return (request: { url?: unknown }) => {
    const url = request?.url;
    if (typeof url !== 'string') return false;
    const path = requestPath(url);
    // `'/'` is the root page alone, not every path under it.
    for (const p of paths) if (path === p || (p !== '/' && path.startsWith(`${p}/`))) return true;
    for (const re of patterns) {
      // A `g` or `y` flag makes test() start at lastIndex, which would make matches alternate.
      re.lastIndex = 0;
      if (re.test(path)) return true;
    }
    return false;
  };
};

/** The options that are functions or flags: a wrong type would otherwise turn tracing off at the first request, silently. */
const checkHooks = (opts: HookOptions, call: string, keys: readonly string[]): void => {
  for (const name of ['spanName', 'route', 'onRequest', 'waitUntil'] as const) {
    const v = opts[name];
    if (v !== undefined && typeof v !== 'function') fail(call, name, name === 'route' ? 'a function of the request that returns the route template' : 'a function', v);
  }
  // init()'s ways of saying where spans go: a server wrapper would ignore them and send nothing.
  for (const name of ['endpoint', 'headers', 'langfuse']) {
    const v = (opts as Record<string, unknown>)[name];
    if (v !== undefined) {
      fail(call, name, 'left out: it is an option of init(); give an exporter instead (createOtlpExporter({ url, headers }), createLangfuseExporter(), or fromEnv() with OTEL_EXPORTER_OTLP_ENDPOINT)', v);
    }
  }
  if (opts.traceFetch !== undefined && typeof opts.traceFetch !== 'boolean') fail(call, 'traceFetch', 'true or false', opts.traceFetch);
  const t = opts.tracer as Partial<Tracer> | undefined;
  if (t !== undefined && (typeof t !== 'object' || t === null || typeof t.startSpan !== 'function' || typeof t.addProcessor !== 'function' || typeof t.flush !== 'function')) {
    fail(call, 'tracer', 'a tracer from createServerTracer() or createTracer()', t);
  }
  checkKeys(call, opts, keys);
};

/** The request options checked (a mistake throws naming it and `call`), as each request uses them. */
const checkRequestOptions = (opts: HookOptions, call: string, keys: readonly string[]): Pick<Setup, 'propagate' | 'headers' | 'ignored'> => {
  checkHooks(opts, call, keys);
  return { propagate: toPropagate(opts.propagateTo, call), headers: toHeaders(opts.responseHeaders, call), ignored: toIgnored(opts.ignoreRequests, call) };
};

/**
 * Per trace, what to do when one of its spans ends, or it gets a score, after the request's own
 * flush: work the handler left running in `ctx.waitUntil` (scoring, evaluation) would otherwise
 * wait for the next request's export, which may never come to this isolate.
 */
const lateEnds = new WeakMap<TraceShared, () => void>();
const watched = new WeakSet<Tracer>();

const watchLateEnds = (tracer: Tracer): void => {
  if (watched.has(tracer)) return;
  watched.add(tracer);
  const late = (record: object): void => lateEnds.get((record as { [kT]?: TraceShared })[kT]!)?.();
  addOwnProcessor(tracer, { onEnd: late, onScore: late });
};

/**
 * While `trace`'s handler runs, each `batch.maxBatchSize` of its spans that end are exported then,
 * through `waitUntil` when there is one: a long Cron run or queue batch would otherwise hold every
 * span until it settles, past the queue's bound, and lose the oldest.
 */
const flushAsItGrows = (tracer: Tracer, trace: Trace, waitUntil: WaitUntil | undefined): void => {
  // A tracer of the app's (a mock, another copy's) may lack the resolved batch options.
  const every = tracer.config?.batch?.maxBatchSize;
  if (!(typeof every === 'number' && every > 0)) return;
  let ended = 0;
  lateEnds.set(trace[kT], () => {
    if (++ended % every !== 0) return;
    const flushed = Promise.resolve().then(() => flush(tracer));
    waitUntil?.(flushed);
  });
};

/** From now on, spans of `trace` that end are flushed again, through `waitUntil` when there is one. */
const flushLateEnds = (tracer: Tracer, trace: Trace, waitUntil: WaitUntil | undefined): void => {
  let scheduled = false;
  lateEnds.set(trace[kT], () => {
    if (scheduled) return;
    scheduled = true;
    // A microtask later: spans ending together share one flush, queued by then in every processor.
    const flushed = Promise.resolve().then(() => {
      scheduled = false;
      return flush(tracer);
    });
    waitUntil?.(flushed);
  });
};

/**
 * The tracer and the per-request settings for `opts`, checked (a mistake throws a `TypeError`
 * naming the option and `call`). Without a tracer, exporter or processors, the exporter comes from
 * `fromEnv()` over the process environment and `env`. The tracer made here exports per request
 * (`requestProcessor`), or in batches with `perRequest` false.
 */
export const setupTracing = <O extends HookOptions>(opts: O, env: unknown, call = CALL, perRequest = true, keys = ALL_WRAPPER_KEYS, pending?: object): Setup<O> => {
  const { propagate, headers, ignored } = checkRequestOptions(opts, call, keys);
  let tracer = opts.tracer;
  if (!tracer) {
    const given = opts.exporter !== undefined || (opts.processors?.length ?? 0) > 0;
    // The second argument is Workers' env, but Deno's connection info, Bun's server or Next's
    // route params elsewhere: variables it lacks come from the process environment.
    const own = env && typeof env === 'object' ? (env as Record<string, unknown>) : {};
    let envExporter: Exporter | undefined;
    try {
      envExporter = given ? undefined : fromEnv({ ...processEnv(), ...own });
    } catch (error) {
      // Variables that do not say where to send (a missing key, a bad URL): the requests are still
      // traced, so trace headers still reach the services they call, whose own spans still join
      // up, but nothing is exported until the variables are fixed.
      say(call, 'spans are not sent (trace headers still are)', error);
      envExporter = noneExporter;
    }
    tracer = serverTracer({ ...opts, exporter: opts.exporter ?? envExporter }, call, perRequest);
  }
  if (perRequest) watchLateEnds(tracer);
  flushAtExit(tracer);
  // After the tracer (and its exporter, which captures the fetch it sends with) exists.
  const traceFetch = opts.traceFetch !== false;
  if (traceFetch) {
    instrumentServerFetch();
    instrumentNodeHttp();
  }
  const setup = { tracer, opts, propagate, headers, traceFetch, ignored };
  // The setup itself, which the wrapper holds: registered weakly, it lives as long as the wrapper.
  setProcessScope(setup, pending);
  return setup;
};

/** Logs a configuration mistake that only shows at a request (options from `env`), once per setup. */
const say = (call: string, what: string, error: unknown): void => {
  try {
    console.error(`[edgetrace] ${call}: ${what}:`, error instanceof Error ? error.message.replace(/^\[edgetrace\] /, '') : error);
  } catch {
    // No console: nothing else to tell.
  }
};

/**
 * Delivers what the tracer holds; never rejects. Outside the request: an exporter of the app's
 * that sends with the global `fetch` would otherwise record its own request, to be sent by the
 * next flush. A request's flush waits for its own exports only (on Workers, a request must not
 * wait on another one's I/O); `all` (a drain) waits for every export still running too.
 */
export const flush = (tracer: Tracer, all = false): Promise<void> => (all ? outsideRequest : forRequestFlush)(() => tracer.flush()).catch(reportInternal);

/**
 * Where there is no waitUntil, how long a response (or its body's last chunk) waits for the
 * request's export. A healthy collector answers well within it; one that hangs must not hold
 * every response for the whole export timeout (Bun drops a request idle for 10 s). The export
 * goes on after it, in runtimes that keep running.
 */
export const FLUSH_HOLD_MS = 2000;

/** The flush, as long as a response may wait for it. */
const held = (tracer: Tracer): Promise<void> => within(flush(tracer), FLUSH_HOLD_MS, () => undefined);

/**
 * How long spans of a request still open when its span ends may take to end on their own: a
 * generation whose callback settles just after the body's last chunk (a model stream that died,
 * its error written to the client, then thrown) would otherwise lose what it records then.
 */
export const OPEN_SPAN_GRACE_MS = 1000;

/**
 * How long spans still open may wait instead for the work the handler itself passed to
 * `ctx.waitUntil` (a model call finished after the response, an evaluation), each exported as it
 * ends. Under Workers' 30 s for waitUntil work.
 */
export const OWN_WORK_GRACE_MS = 25_000;

/** Per request, what the handler passed to its `ctx.waitUntil`. */
const ownWork = new WeakMap<Trace, Promise<unknown>[]>();

/**
 * The handler's arguments with `ctx` (the second after the request) seen through a proxy that
 * notes each promise the handler passes to its `waitUntil` as the trace's own work, and
 * otherwise is `ctx`.
 */
const watchOwnWork = (rest: unknown[], trace: Trace): unknown[] => {
  const ctx = rest[1];
  if (!ctx || typeof ctx !== 'object' || typeof (ctx as { waitUntil?: unknown }).waitUntil !== 'function') return rest;
  const work: Promise<unknown>[] = [];
  ownWork.set(trace, work);
  const seen = new Proxy(ctx, {
    get(target, key) {
      const v: unknown = Reflect.get(target, key);
      if (typeof v !== 'function') return v;
      // Methods of workerd's ExecutionContext must be called on it ("Illegal invocation").
      if (key !== 'waitUntil') return v.bind(target);
      return (promise: Promise<unknown>) => {
        work.push(promise);
        return Reflect.apply(v, target, [promise]);
      };
    },
  });
  return [rest[0], seen, ...rest.slice(2)];
};

/**
 * Keeps work a request started that outlives its response (a moderation call, an evaluation, a
 * job handed off without `await`) part of that request: its spans get as long as it runs (at
 * most {@link OWN_WORK_GRACE_MS}) before they are ended as unfinished, and the platform keeps it
 * running: the handler's `ctx.waitUntil` or the `waitUntil` option, and a Node listener's
 * `drain()`, which waits for it. Call it while the request is handled, before its response ends.
 * Outside a traced request it does nothing. Returns `promise`.
 */
export const requestWaitUntil = <T>(promise: Promise<T>): Promise<T> => {
  try {
    const scope = currentScope();
    if (scope && isPromise(promise)) {
      const work = ownWork.get(scope.root) ?? [];
      if (work.push(promise) === 1) ownWork.set(scope.root, work);
      scope.waitUntil?.(promise);
    }
  } catch (error) {
    reportInternal(error);
  }
  return promise;
};

/** Per tracer a Node listener uses, the traces begun that may still be open: what `drain()` ends, as unfinished. */
const tracked = new WeakMap<Tracer, OpenTraces>();

/** Notes the traces `tracer` begins, for {@link endOpenTraces}. */
export const trackOpenTraces = (tracer: Tracer): void => {
  if (tracked.has(tracer)) return;
  const open = openTraces();
  tracked.set(tracer, open);
  addOwnProcessor(tracer, open.processor);
};

/**
 * Ends the traces `tracer` still has open (a background job cut short by a shutdown), marked
 * `edgetrace.unfinished` with their open spans, so that the flush that follows sends them. A
 * SERVER span still open is a request still answering: it ends with its response.
 */
export const endOpenTraces = (tracer: Tracer): number => tracked.get(tracer)?.endOpen((root) => root.kind === 'server') ?? 0;

/**
 * Ends the request's span; spans of it that end later are flushed again, where flushes are per
 * request (a batching tracer sends them with its next batch). Those still open get
 * {@link OPEN_SPAN_GRACE_MS}, or as long as the handler's own `waitUntil` work runs (at most
 * {@link OWN_WORK_GRACE_MS}), then end as unfinished at the request's end time.
 */
export const endTrace = (tracer: Tracer, trace: Trace, waitUntil: WaitUntil | undefined): void => {
  const open = trace.endRoot();
  if (watched.has(tracer)) flushLateEnds(tracer, trace, waitUntil);
  if (!open) return;
  const work = ownWork.get(trace);
  // Unref'd: a Node process that is exiting need not wait for it.
  const grace = (
    work?.length
      ? within(Promise.allSettled(work), OWN_WORK_GRACE_MS, () => [])
      : new Promise<void>((resolve) => void unref(setTimeout(resolve, OPEN_SPAN_GRACE_MS)))
    // The client went away (a "stop generating" that closed the stream): the work it left open,
    // a generation whose stream was cut, was cancelled with it, as the page records it.
  ).then(() => trace.endOpen(trace.endMs, trace.attrs[RESPONSE_CANCELLED] === true));
  waitUntil?.(grace);
};

/** Ends the request's trace and exports it: through waitUntil, else held for at most FLUSH_HOLD_MS. */
export const endAndFlush = async (tracer: Tracer, trace: Trace, waitUntil: WaitUntil | undefined): Promise<void> => {
  endTrace(tracer, trace, waitUntil);
  if (waitUntil) waitUntil(flush(tracer));
  else await held(tracer);
};

/**
 * A fetch-style handler. Written as a method, whose parameters TypeScript compares both ways, so a
 * handler typed with a subtype of Request (Next.js's `NextRequest`) fits, and an unannotated one
 * still gets `Request`. What it answers is left open (a Next.js middleware answers nothing to let
 * the request go on): a `Response | undefined` here would make TypeScript type a
 * `.then((b) => new Response(b))` in the handler's body as possibly undefined. `TracedHandler`
 * carries the answer on, for `toNodeListener` and the runtime to check.
 */
type FetchHandler = { h(request: Request, ...rest: any[]): unknown }['h'];

/** What `withTracing` returns for a Worker's handlers object: the same object with `fetch`, `scheduled` and `queue` traced. */
export type TracedHandlers<W> = { [K in keyof W]: K extends 'fetch' ? TracedHandler<W[K]> : K extends 'scheduled' | 'queue' ? TracedEventHandler<W[K]> : W[K] };

/** A traced `scheduled` or `queue` handler: the handler's own parameters, also callable as `(event, env?, ctx?)`, always returning a promise. */
export type TracedEventHandler<F> = F extends (event: infer E, ...rest: infer P) => infer R
  ? ((event: E, ...rest: P) => Promise<Awaited<R>>) & ((event: E, env?: any, ctx?: any) => Promise<Awaited<R>>)
  : F;

/**
 * A module Worker's handlers, as its `export default` gives them (or Bun's and Deno's `export
 * default { fetch }`). `fetch` is traced as a request, `scheduled` (a Cron Trigger) and `queue` (a
 * batch of Queues messages) as a trace each; the other keys (`email`, `tail`, Bun's `port`) pass
 * through as they are.
 */
export interface WorkerHandlers {
  fetch?: FetchHandler | undefined;
  scheduled?: EventHandler<ScheduledEventLike> | undefined;
  queue?: EventHandler<QueueBatchLike> | undefined;
}

/** A `scheduled` or `queue` handler: the event, then the Worker's env and ctx. Written as a method so the app's own event types fit. */
type EventHandler<E> = { h(event: E, ...rest: any[]): unknown }['h'];

/**
 * What `withTracing` reads of a Cron Trigger's controller. The handlers' parameters are typed
 * `any` where the app leaves them unannotated, as its `env` and `ctx` are: annotate them, or use
 * `satisfies ExportedHandler<Env>` (`@cloudflare/workers-types`), for the platform's types.
 */
type ScheduledEventLike = any;

/** What `withTracing` reads of a Queues batch: `queue`, and each message's `body`. */
type QueueBatchLike = any;

const HANDLER_HINT = 'a function (request, env, ctx) => Response, or an object of handlers with fetch, scheduled or queue';

/** Where a Node app that takes `(req, res)` goes instead: withTracing would hand it a fetch Request. */
const NODE_APP_HINT = 'Express, Connect, Koa, Fastify and other (req, res) listeners are traced with withNodeTracing: createServer(withNodeTracing(app)), for Koa withNodeTracing(app.callback())';

/** Whether `h` is an Express or Connect app: a function with `use` and `handle`. */
const isConnectApp = (h: unknown): boolean =>
  typeof h === 'function' && typeof (h as { use?: unknown }).use === 'function' && typeof (h as { handle?: unknown }).handle === 'function';

/**
 * Whether a fetch handler got Node's own request, as from `createServer(withTracing(handler))`
 * without `toNodeListener`: it has a socket and events, and headers that are a plain object.
 */
const isNodeRequest = (r: unknown): boolean => {
  if (typeof r !== 'object' || r === null) return false;
  const { socket, on, headers } = r as { socket?: unknown; on?: unknown; headers?: unknown };
  return (socket !== undefined || typeof on === 'function') && typeof headers === 'object' && headers !== null && typeof (headers as { get?: unknown }).get !== 'function';
};

/**
 * Wraps a fetch-style handler, `(request, env?, ctx?) => Response`, so that each request is
 * traced:
 * - the incoming W3C `traceparent`/`tracestate` is continued (a malformed one starts a new trace);
 *   a request answered in-process inside another traced one that still runs, for its origin and
 *   without a traceparent, continues the span current there;
 * - a SERVER span (HTTP semantic conventions) is current while the handler runs, through
 *   AsyncLocalStorage, and `fetch()` calls inside it become CLIENT spans that carry the trace;
 * - status and thrown errors are recorded (a throw is passed on unchanged);
 * - the span ends when the response body has been sent, streams included;
 * - the request's spans are exported once, through `ctx.waitUntil` (Cloudflare, a FetchEvent),
 *   Vercel's request context or `options.waitUntil`; where there is none, the response waits
 *   for the export, for at most {@link FLUSH_HOLD_MS} (before returning when there is no body,
 *   else before the body's last chunk is released).
 *
 * Given a Worker's handlers object instead (`{ fetch, scheduled, queue }`), it returns a copy
 * with each of those traced through one tracer: a Cron Trigger as a SERVER span `scheduled
 * <cron>` (`faas.trigger` "timer"), a batch of Queues messages as a CONSUMER span `process
 * <queue>` that continues the trace a single message carries in its body's `traceparent`, or
 * links to each message's. Their `fetch()` calls are traced as a request's are, and their spans
 * exported through `ctx.waitUntil` when the handler settles. `spanName`, `route` and `onRequest`
 * apply to `fetch` only.
 *
 * `options` may be a function of `env`, for Workers, whose configuration arrives with each
 * request. Without a tracer, exporter or processors, the exporter comes from `fromEnv(env)`.
 * Invalid static options throw a `TypeError` here; a configuration that can only be read from
 * `env` is checked at the first request. If its variables are invalid, the error is logged once
 * and requests are traced without sending spans (trace headers still propagate); if the
 * options function itself fails, it is logged once and requests are served untraced.
 * An Express or Connect app throws (it takes Node's `(req, res)`: see `withNodeTracing`); a
 * handler called with Node's own request, not through `toNodeListener`, runs untraced, said once.
 */
export function withTracing<H extends FetchHandler>(handler: H, options?: WithTracingOptions | ((env: any) => WithTracingOptions)): TracedHandler<H>;
export function withTracing<W extends WorkerHandlers>(handlers: W, options?: WithTracingOptions | ((env: any) => WithTracingOptions)): TracedHandlers<W>;
export function withTracing(handler: unknown, options: WithTracingOptions | ((env: any) => WithTracingOptions) = {}): unknown {
  const isObject = typeof handler === 'object' && handler !== null;
  const own = isObject ? (handler as Record<string, unknown>) : {};
  if (isObject ? !['fetch', 'scheduled', 'queue'].some((k) => own[k] !== undefined) : typeof handler !== 'function') {
    const app = isObject && typeof own.use === 'function' ? `; ${NODE_APP_HINT}` : '';
    throw new TypeError(`[edgetrace] withTracing(): "handler" must be ${HANDLER_HINT}, got ${String(handler)}${app}.`);
  }
  // It would be called with a fetch Request and answer 500s ("res.setHeader is not a function").
  if (isConnectApp(handler)) throw new TypeError(`[edgetrace] withTracing(): "handler" is an Express or Connect app, which takes Node's (req, res), not a fetch Request; ${NODE_APP_HINT}.`);
  for (const k of ['fetch', 'scheduled', 'queue']) {
    if (own[k] !== undefined && typeof own[k] !== 'function') throw new TypeError(`[edgetrace] withTracing(): "handler.${k}" must be a function, got ${String(own[k])}.`);
  }
  if (typeof options !== 'function' && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`[edgetrace] withTracing(): "options" must be an object or a function of env, got ${String(options)}.`);
  }
  const resolve = setupsOf(options);
  if (!isObject) {
    // A class (a WorkerEntrypoint, a Durable Object) is a function too, but workerd constructs it.
    if (/^class\b/.test(Function.prototype.toString.call(handler))) {
      throw new TypeError('[edgetrace] withTracing(): "handler" is a class; wrap its methods instead, as class fields: fetch = withTracing(async (request) => …).');
    }
    return markTraced(tracedFetchHandler(handler as Handle<Request>, resolve));
  }
  const target = handler as object;
  // A handler already wrapped (kept inside a wrapped export) is used as it is, with its own options.
  const wrap = (k: string, make: (h: Handle<any>) => (this: unknown, ...args: any[]) => Promise<unknown>): Record<string, unknown> => {
    const h = own[k] as Handle<unknown> | undefined;
    if (!h) return {};
    if (tracedOnes.has(h)) return { [k]: h };
    const traced = make(h);
    return { [k]: markTraced(function (this: unknown, ...args: unknown[]) {
      // Called on the wrapper, as the runtime calls it: the app's handler runs on its own object.
      return traced.apply(this === wrapper ? target : this, args);
    }) };
  };
  const traced: Record<string | symbol, unknown> = {
    ...wrap('fetch', (h) => tracedFetchHandler(h, resolve)),
    ...wrap('scheduled', (h) => tracedEvent(h, resolve, startScheduled)),
    ...wrap('queue', (h) => tracedEvent(h, resolve, startQueue)),
  };
  // The app's object itself, but for the traced handlers: its getters and other methods run on it
  // (private fields included), what is written lands on it, and `instanceof` holds. The proxy's
  // own target is an empty object over it, so a frozen object's own `fetch` can be answered with
  // the traced one (a proxy may not change a frozen target's own property).
  const bound = new WeakMap<(...args: unknown[]) => unknown, unknown>();
  const wrapper: object = new Proxy(Object.create(target) as object, {
    set: (_, key, value) => Reflect.set(target, key, value),
    get(_, key) {
      if (Object.hasOwn(traced, key)) return traced[key];
      const v: unknown = Reflect.get(target, key, target);
      if (typeof v !== 'function' || key === 'constructor') return v;
      const f = v as (...args: unknown[]) => unknown;
      if (!bound.has(f)) bound.set(f, f.bind(target));
      return bound.get(f);
    },
  });
  return wrapper;
}

/** The handlers withTracing made, so one already traced is not traced again inside a wrapped export. */
const tracedOnes = new WeakSet<object>();
const markTraced = <F extends object>(f: F): F => (tracedOnes.add(f), f);

/** A handler as called: an event (a request, a controller, a batch) and the rest of the arguments. */
type Handle<E> = (this: unknown, event: E, ...rest: unknown[]) => unknown;

/** Finds the setup for an `env`: one for static options, else one per env object (a few at most). */
type Resolve = (env: unknown) => Setup | null;

const setupsOf = (options: WithTracingOptions | ((env: any) => WithTracingOptions)): Resolve => {
  const byEnv = new WeakMap<object, Setup | null>();
  let envSetups = 0;
  let lastSetup: Setup | null | undefined;
  let single: Setup | null | undefined;
  // For work outside requests before the first one; the process scope refers to it weakly.
  const pending = { make: () => void resolve(undefined) };
  let registered = false;
  // Static options are checked now, so mistakes surface at start-up: in full when they say where
  // spans go, else all but the variables the first request's env brings.
  if (typeof options === 'object') {
    if (options.tracer || options.exporter || options.processors?.length) single = setupTracing(options, undefined);
    else {
      checkRequestOptions(options, CALL, ALL_WRAPPER_KEYS);
      resolveConfig(options, CALL);
      // In a process the environment is the process's: a background job that asks getTracer()
      // before the first request gets this wrapper's tracer, made then. (A test that hands its
      // requests an env of variables still has them read, where no job asked first.)
      registered = isProcess();
      if (registered) setProcessScope(pending);
    }
  }

  const configFailed = (error: unknown): null => {
    say(CALL, 'tracing is off for this handler', error);
    return null;
  };
  const resolve: Resolve = (env) => {
    const keyed = typeof options === 'function' && env !== null && (typeof env === 'object' || typeof env === 'function');
    if (!keyed) {
      if (single === undefined) {
        try {
          single = setupTracing(typeof options === 'function' ? options(env) : options, env, CALL, true, ALL_WRAPPER_KEYS, registered ? pending : undefined);
        } catch (error) {
          single = configFailed(error);
        }
      }
      return single;
    }
    let s = byEnv.get(env as object);
    if (s === undefined) {
      // Workers hand every request of an isolate the same env. A runtime whose second argument
      // is new per request (Deno's `info`, Bun's server) must not get a tracer per request: past
      // a few distinct objects the last setup is reused.
      if (envSetups >= MAX_ENV_SETUPS && lastSetup !== undefined) return lastSetup;
      try {
        s = setupTracing((options as (env: unknown) => WithTracingOptions)(env), env);
      } catch (error) {
        s = configFailed(error);
      }
      byEnv.set(env as object, s);
      envSetups++;
      lastSetup = s;
    }
    return s;
  };
  // The wrapper holds the resolver, and through it the pending scope: one dropped (a hot reload)
  // takes it along.
  return Object.assign(resolve, { pending });
};

/**
 * Runs `handle` with `trace` current and as the scope's root, so `fetch()` inside it is traced,
 * its ctx's `waitUntil` work noted as the trace's own.
 */
const runTraced = <E>(that: unknown, s: Setup, trace: Trace, handle: Handle<E>, event: E, rest: unknown[], waitUntil: WaitUntil | undefined): Promise<unknown> => {
  const { tracer } = s;
  const args = watchOwnWork(rest, trace);
  if (watched.has(tracer)) flushAsItGrows(tracer, trace, waitUntil);
  if (s.traceFetch) keepServerFetch();
  const url = (event as { url?: unknown } | null)?.url;
  const scope: RequestScope = { tracer, root: trace, propagate: s.propagate, traceFetch: s.traceFetch, waitUntil, url: typeof url === 'string' ? url : undefined, request: event as object };
  return Promise.resolve(runInRoot(scope, () => handle.apply(that, [event, ...args])));
};

/**
 * The handler's env: its second argument, else a Durable Object's (or a WorkerEntrypoint's)
 * `this.env`, as workerd calls those with the event and `undefined` for env and ctx.
 */
const envOf = (that: unknown, rest: unknown[]): unknown => rest[0] ?? (that as { env?: unknown } | undefined)?.env;

/** The way to finish work after the handler, from its ctx, the platform or the options; one that throws is reported, never the handler's problem. */
const waitUntilOf = (s: Setup, env: unknown, rest: unknown[], that: unknown): WaitUntil | undefined => {
  const found = findWaitUntil(env, rest[1], s.opts.waitUntil, that);
  return found && guard(found);
};

/**
 * Starts the trace of a call of a handler (on `that`, with the arguments after the event): its
 * setup, its trace and how to finish work after it; nothing when tracing is off or starting failed.
 */
const begin = <E>(that: unknown, resolve: Resolve, start: (s: Setup, event: E) => Trace, event: E, rest: unknown[], request = false): [Setup, Trace, WaitUntil | undefined] | undefined => {
  try {
    const env = envOf(that, rest);
    const s = resolve(env);
    if (s && !(request && s.ignored?.(event))) return [s, start(s, event), waitUntilOf(s, env, rest, that)];
  } catch (error) {
    reportInternal(error);
  }
  return undefined;
};

const tracedFetchHandler = (handle: Handle<Request>, resolve: Resolve) =>
  async function (this: unknown, request: Request, ...rest: unknown[]): Promise<unknown> {
    if (isNodeRequest(request)) {
      // Always said: every request goes untraced, and the handler itself is likely to fail on it.
      warnOnce(
        'withTracing-node-request',
        `withTracing(): the handler was called with Node's request (http.IncomingMessage), not a fetch Request, so requests are not traced. Serve a fetch-style handler, (request) => Response, with createServer(toNodeListener(withTracing(handler))); ${NODE_APP_HINT}.`,
        true,
      );
      return handle.apply(this, [request, ...rest]);
    }
    const started = begin(this, resolve, startRoot, request, rest, true);
    // A handler that answers nothing is passed on as it is (`respond` leaves what is not a response).
    if (!started) return handle.apply(this, [request, ...rest]);
    const [s, trace, waitUntil] = started;
    let response: Response;
    try {
      response = (await runTraced(this, s, trace, handle, request, rest, waitUntil)) as Response;
    } catch (error) {
      // The client went away, and the handler's work that followed request.signal stopped with
      // it (a proxied model call, a "stop generating" that closed the tab): cancelled, as a
      // response stream the client leaves is, not a failure of the server's.
      if (abortedBy(request.signal, error)) trace.setAttribute(RESPONSE_CANCELLED, true);
      else recordFailure(trace, error);
      answered.set(request, { trace, at: Date.now() });
      await endAndFlush(s.tracer, trace, waitUntil);
      throw error;
    }
    return respond(s, trace, request, response, waitUntil);
  };

const recordFailure = (trace: Trace, error: unknown): void => {
  recordThrown(trace, error);
  trace.setAttribute('error.type', errorType(error));
};

/**
 * A `scheduled` or `queue` handler traced: the trace `start` makes is current while it runs and
 * ends when it settles (a throw is recorded and passed on), its spans exported through
 * `ctx.waitUntil`, else awaited for at most {@link FLUSH_HOLD_MS}.
 */
const tracedEvent = <E>(handle: Handle<E>, resolve: Resolve, start: (s: Setup, event: E) => Trace) =>
  async function (this: unknown, event: E, ...rest: unknown[]): Promise<unknown> {
    const started = begin(this, resolve, start, event, rest);
    if (!started) return handle.apply(this, [event, ...rest]);
    const [s, trace, waitUntil] = started;
    try {
      const result = await runTraced(this, s, trace, handle, event, rest, waitUntil);
      await endAndFlush(s.tracer, trace, waitUntil);
      return result;
    } catch (error) {
      recordFailure(trace, error);
      await endAndFlush(s.tracer, trace, waitUntil);
      throw error;
    }
  };

/** A Cron Trigger's trace (FaaS semantic conventions, timer trigger). */
const startScheduled = (s: Setup, controller: ScheduledEventLike): Trace => {
  const cron = typeof controller?.cron === 'string' && controller.cron ? controller.cron : undefined;
  const time = controller?.scheduledTime;
  return s.tracer.createTrace({
    name: cron ? `scheduled ${cron}` : 'scheduled',
    kind: 'server',
    attributes: {
      'faas.trigger': 'timer',
      'faas.cron': cron,
      'faas.time': typeof time === 'number' && Number.isFinite(time) ? new Date(time).toISOString() : undefined,
    },
  });
};

/** The trace a queued message names by an object body with `traceparent` (and `tracestate`). */
const senderOf = (message: unknown): SpanContext | undefined => {
  const body: unknown = (message as { body?: unknown } | null | undefined)?.body;
  if (!body || typeof body !== 'object' || !Object.hasOwn(body, 'traceparent')) return undefined;
  const { traceparent, tracestate } = body as { traceparent?: unknown; tracestate?: unknown };
  return typeof traceparent === 'string' ? extract({ traceparent, tracestate: typeof tracestate === 'string' ? tracestate : undefined }).context : undefined;
};

/** What {@link withMessage} needs of a batch being traced: its queue, and whether it is one message. */
interface BatchScope {
  queue: string | undefined;
  single: boolean;
}
const batches = new WeakMap<Trace, BatchScope>();

/**
 * A Queues batch's trace (messaging semantic conventions, a process span): a batch of one message
 * that names its sender continues that trace; a larger batch links to each sender.
 */
const startQueue = (s: Setup, batch: QueueBatchLike): Trace => {
  const queue = typeof batch?.queue === 'string' ? batch.queue : undefined;
  const messages: unknown[] = Array.isArray(batch?.messages) ? batch.messages : [];
  const sent: SpanContext[] = [];
  for (const m of messages) {
    const context = senderOf(m);
    // Messages sent together (`sendBatch` in one request) name one span: one link for them.
    if (context && !sent.some((c) => c.spanId === context.spanId && c.traceId === context.traceId)) sent.push(context);
  }
  const single = messages.length === 1 ? sent[0] : undefined;
  const trace = s.tracer.createTrace({
    name: queue ? `process ${queue}` : 'process',
    kind: 'consumer',
    parent: single,
    links: single ? undefined : sent.map((context) => ({ context })),
    attributes: {
      'faas.trigger': 'pubsub',
      'messaging.system': 'cloudflare_queues',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': queue,
      'messaging.batch.message_count': messages.length,
    },
  });
  batches.set(trace, { queue, single: messages.length === 1 });
  return trace;
};

/** A queued message as a Queues consumer gets it: what {@link withMessage} reads. */
export interface QueueMessageLike {
  readonly id?: string | undefined;
  readonly body?: unknown;
}

/**
 * Handles one message of a batch that `withTracing` traces as a trace of its own, continuing the
 * trace that sent it (an object body with `traceparent`): a CONSUMER span `process <queue>` with
 * `messaging.message.id`, linked to the batch's span, current while `fn` runs, so its spans and
 * `fetch` calls hang under it and `requestSpan()` is it. A throw or rejection is recorded and
 * passed on. Ends when `fn` returns or its promise settles, and is exported with the batch (or
 * then, when it settles after the handler). Outside a traced batch, and in a batch of one message,
 * whose trace is that message's already, `fn` runs as it is.
 */
export const withMessage = <R>(message: QueueMessageLike, fn: () => R): R => {
  const scope = currentScope();
  const batch = scope && batches.get(scope.root);
  const trace = batch && !batch.single ? messageTrace(scope!, batch, message) : undefined;
  if (!trace) return fn();
  const { tracer, root, waitUntil } = scope!;
  const end = (): void => {
    endTrace(tracer, trace, waitUntil);
    // Settled after the handler (work it left to waitUntil): the batch's export has gone.
    if (!root.isEnded) return;
    const flushed = flush(tracer);
    waitUntil?.(flushed);
  };
  const failed = (error: unknown): never => {
    recordFailure(trace, error);
    end();
    throw error;
  };
  let result: R;
  try {
    result = runInRoot({ ...scope!, root: trace, quiet: undefined }, fn);
  } catch (error) {
    return failed(error);
  }
  if (!isPromise(result)) {
    end();
    return result;
  }
  return result.then((value) => (end(), value), failed) as R;
};

/** The trace of one message of `batch`, in the scope of the batch's; none if making it failed. */
const messageTrace = (scope: RequestScope, batch: BatchScope, message: QueueMessageLike): Trace | undefined => {
  try {
    const id = (message as { id?: unknown } | null | undefined)?.id;
    const trace = scope.tracer.createTrace({
      name: batch.queue ? `process ${batch.queue}` : 'process',
      kind: 'consumer',
      parent: senderOf(message),
      links: [{ context: scope.root.spanContext() }],
      attributes: {
        'messaging.system': 'cloudflare_queues',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': batch.queue,
        'messaging.message.id': typeof id === 'string' ? id : undefined,
      },
    });
    if (watched.has(scope.tracer)) flushAsItGrows(scope.tracer, trace, scope.waitUntil);
    return trace;
  } catch (error) {
    reportInternal(error);
    return undefined;
  }
};

/**
 * The span a request answered in-process inside another one continues: SvelteKit's `event.fetch`
 * of the app's own routes runs `handle` again, never through `fetch`, so it carries no
 * traceparent. Only while that other request runs, for a URL of its origin that its
 * `propagateTo` would have sent trace headers to: a job or poller a request started, calling a
 * handler later or elsewhere, starts a trace of its own. The same for a Node listener called
 * in-process (Nitro's `$fetch` of its own routes during rendering), and for a fetch-style wrapper
 * inside a Node listener's (a framework's middleware); such a Node request with no `Host`
 * (`hostless`) cannot have come over the network, and continues whatever its URL.
 */
export const inProcessParent = (url: string, target = parseUrl(url), hostless = false): SpanContext | undefined => {
  const outer = currentScope();
  // Edgetrace's own work inside a request (an app processor's export) is not the request's.
  if (!outer?.url || outer.root.isEnded || outer.quiet) return undefined;
  // A Node request with no Host header never came over HTTP/1.1 (Nitro's in-process fetch).
  if (!hostless && (!target || target.origin !== parseUrl(outer.url)?.origin || !outer.propagate(url, target))) return undefined;
  return requestSpan()?.spanContext();
};

/**
 * Per Request object a wrapper failed (a throw, or a 4xx or 5xx answer), its trace: a framework
 * that handles the same object again at once then renders its error page for that request, once.
 * Only then: a Request object an app sends through a wrapper again (a warm-up, a retry after a
 * 503) is a request each time.
 */
const answered = new WeakMap<object, { trace: Trace; at: number }>();
/** How soon after the failure the same Request object handled again is that request's error page. */
const RE_ANSWER_MS = 1000;

/**
 * Where `request` is the request being handled, wrapped again inside (a framework's middleware,
 * also under `withNodeTracing`, where `sent`, its traceparent, is the one that request brought),
 * the span to continue instead, so that it is that request's child rather than its sibling
 * under the caller, or a trace apart.
 */
const rewrapped = (sent: SpanContext | undefined, request: Request): SpanContext | undefined => {
  const scope = currentScope();
  if (scope?.quiet) return undefined;
  const root = scope?.root;
  // A Request object that failed before, its trace ended: the framework handles it again (Astro
  // renders its error page after the page threw, or for its 404), as a child of that request's span.
  if (!root || root.isEnded) {
    const failed = answered.get(request);
    answered.delete(request);
    return failed && Date.now() - failed.at < RE_ANSWER_MS ? failed.trace.spanContext() : undefined;
  }
  // The very Request object the outer wrapper handles (Hono's `c.req.raw` in a middleware), with
  // or without a traceparent: no request comes over the network twice.
  const same = scope!.request === request || (sent !== undefined && root.traceId === sent.traceId && root.parentId === sent.spanId);
  return same ? requestSpan()?.spanContext() : undefined;
};

const startRoot = (s: Setup, request: Request): Trace => {
  // The incoming baggage goes on with the handler's own calls, as its trace context does.
  const { context: sent, baggage } = extract(request.headers);
  const context = rewrapped(sent, request) ?? sent ?? inProcessParent(request.url);
  const route = routeTemplate(s.opts.route?.(request));
  const method = spanMethod(request.method);
  const name = s.opts.spanName?.(request) ?? (route ? `${method} ${route}` : method);
  const trace = s.tracer.createTrace({ name, kind: 'server', parent: context, baggage, attributes: serverRequestAttributes(request, route) });
  if (!s.opts.spanName) nameIsOwn(trace, method);
  if (s.opts.onRequest) {
    try {
      s.opts.onRequest(trace, request);
    } catch (error) {
      reportInternal(error);
    }
  }
  return trace;
};

/** The trace-linking headers for `trace`, as configured. */
export const linkHeaders = (s: Setup, trace: Trace): [string, string][] => {
  if (s.headers.length === 0) return [];
  const value = formatTraceparent(trace);
  return s.headers.map((h) => (h === 'traceresponse' ? ['traceresponse', value] : ['server-timing', `traceparent;desc="${value}"`]));
};

/**
 * A copy of `response` with another body and the trace-linking headers; `undefined` if the
 * runtime refuses. The response itself is the init, so what a runtime keeps beyond status and
 * headers carries over (workerd's `encodeBody: 'manual'` for a body already compressed).
 * A proxied upstream's own `traceresponse` or Server-Timing `traceparent` gives way to ours.
 */
const rebuild = (response: Response, body: BodyInit | null, extra: [string, string][]): Response | undefined => {
  try {
    const out = new Response(body, response);
    for (const [name, value] of extra) {
      if (name === 'traceresponse') out.headers.set(name, value);
      else {
        const others = (out.headers.get(name) ?? '')
          .split(',')
          .filter((metric) => metric.trim() && !/^\s*traceparent\s*(;|$)/i.test(metric))
          .join(',');
        out.headers.set(name, others ? `${others}, ${value}` : value);
      }
    }
    if (isDecoded(response)) markDecoded(out);
    return out;
  } catch (error) {
    reportInternal(error);
    return undefined;
  }
};

/** Says once that a handler answered `value`, which is no Response; never throws (a getter of the app's may). */
const sayNotResponse = guard((value: unknown): void => {
  const hint = isResponseLike((value as { response?: unknown }).response) ? " (a framework's middleware result? return its `.response`)" : '';
  warnOnce('withTracing-not-response', `withTracing(): the handler returned ${describe(value)}, not a Response${hint}: the request's span ends at once, with no status, and no trace-linking headers go out.`, true);
});

const respond = async (s: Setup, trace: Trace, request: Request, response: Response, waitUntil: WaitUntil | undefined): Promise<Response> => {
  const { tracer } = s;
  const endNow = (): Promise<void> => endAndFlush(tracer, trace, waitUntil);
  if (!isResponseLike(response)) {
    // Nothing is a middleware letting the request go on (Next.js); anything else is a mistake.
    if (response != null) sayNotResponse(response);
    await endNow();
    return response;
  }
  const status = response.status;
  setServerStatus(trace, status);
  if (status >= 400) answered.set(request, { trace, at: Date.now() });
  const extra = linkHeaders(s, trace);
  // 101 and WebSocket upgrades (workerd's `webSocket` property) must go back as they are, and the
  // Response constructor only takes 200-599.
  const untouchable = status < 200 || status > 599 || (response as { webSocket?: unknown }).webSocket != null;
  if (untouchable || !response.body || hasNoBody(status, request.method)) {
    const out = extra.length && !untouchable ? (rebuild(response, response.body, extra) ?? response) : response;
    await endNow();
    return out;
  }

  let ended: () => void = () => undefined;
  const bodyDone = new Promise<void>((resolve) => (ended = resolve));
  const onEnd = (end: BodyEnd): Promise<void> | void => {
    trace.setAttribute('http.response.body.size', end.bytes);
    if (end.error !== undefined) recordFailure(trace, end.error);
    if (end.cancelled) trace.setAttribute(RESPONSE_CANCELLED, true);
    if (end.unread) trace.setAttribute('edgetrace.response.unread', true);
    endTrace(tracer, trace, waitUntil);
    ended();
    // Without waitUntil, the body's last chunk waits for the export (see observeBody).
    return waitUntil ? undefined : held(tracer);
  };
  let body: ReadableStream<Uint8Array>;
  try {
    body = observeBody(response.body, onEnd, undefined, request.signal);
  } catch (error) {
    // A body already locked or read (a Response reused by the handler): pass it on as it is.
    reportInternal(error);
    await endNow();
    return response;
  }
  const out = rebuild(response, body, extra) ?? rebuild(response, body, []);
  if (!out) {
    // Not expected for a 2xx-5xx with a body; the observed stream still ends the span if read.
    await endNow();
    return new Response(body, { status });
  }
  if (waitUntil) waitUntil(bodyDone.then(() => flush(tracer)));
  return out;
};

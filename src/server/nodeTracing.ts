import type { AsyncResource as NodeAsyncResource } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { builtin } from './builtin';
import type { Trace } from '../core/trace';
import type { Tracer } from '../core/tracer';
import { isPromise } from '../core/span';
import { extract } from '../propagation/index';
import { joinHeader } from '../propagation/carrier';
import { reportInternal, warn, warnOnce } from '../lib/reportInternal';
import { isResponseLike } from '../lib/isResponseLike';
import { guard } from '../lib/guard';
import { within } from '../lib/within';
import { hasNoBody } from '../lib/hasNoBody';
import { RESPONSE_CANCELLED } from '../core/semconv';
import { nameIsOwn, routeTrace } from './route';
import { errorType, serverRequestAttributes, setServerStatus, spanMethod } from './httpAttributes';
import { keepingProcess, pendingWork, requestUrl, type NodeListener, type NodeRequestLike } from './node';
import { runInRoot } from './scope';
import { heldRecords } from './serverTracer';
import { keepServerFetch } from './fetch';
import type { WaitUntil } from './waitUntil';
import { endAndFlush, endOpenTraces, endTrace, trackOpenTraces, flush, inProcessParent, OWN_WORK_GRACE_MS, linkHeaders, NODE_WRAPPER_KEYS, setupTracing, type ServerTracingOptions, type Setup } from './withTracing';

/** Options for {@link withNodeTracing}: those of `withTracing`, with hooks that take Node's request. */
export interface NodeTracingOptions<Req = NodeRequestLike> extends ServerTracingOptions {
  /** The SERVER span's name, when the request arrives. Default `"GET /route"` once the route is known, else `"GET"`. */
  spanName?: ((req: Req) => string) | undefined;
  /**
   * The matched route template, such as `/users/:id`, for `http.route` and the span name; asked
   * when the response has been sent or the client went away, after the app's router has run.
   * Default: Express's route (`req.baseUrl` + `req.route.path`) as soon as its router matches,
   * else what the app tells `setRoute()`.
   */
  route?: ((req: Req) => string | undefined) | undefined;
  /** Called when the SERVER span starts, to add attributes, the user or the session from the request. */
  onRequest?: ((trace: Trace, req: Req) => void) | undefined;
  /** Requests not traced at all: see `ServerTracingOptions.ignoreRequests`; a function gets Node's request. */
  ignoreRequests?: ReadonlyArray<string | RegExp> | ((req: Req) => boolean) | undefined;
}

/** The request type a listener declares, or Node's by its shape. */
type ReqOf<L> = L extends (req: infer R, ...rest: any[]) => unknown ? (unknown extends R ? NodeRequestLike : R) : NodeRequestLike;

type NodeSetup = Setup<NodeTracingOptions<any>>;

const CALL = 'withNodeTracing()';

/** How long `drain()` goes on trying a receiver that failed its first flush. */
const DRAIN_RETRY_MS = 5000;

/** Requests being traced, with their trace: a listener wrapped twice records them once. */
const requests = new WeakMap<object, Trace>();

/** The options' hooks, each guarded once: one that throws is reported and counts as not given. */
interface Hooks {
  spanName: ((req: unknown) => string | undefined) | undefined;
  route: ((req: unknown) => string | undefined) | undefined;
  onRequest: ((trace: Trace, req: unknown) => void) | undefined;
}

const kRoute = Symbol('route');

/**
 * `req.baseUrl` as a template: the segments that are values of the mounts' parameters (Express
 * sets `req.route` while `req.params` still holds those of the router mounted right above it,
 * and of those further up where routers merge them) named as such, so `/tenants/t1` becomes
 * `/tenants/:tenant`, not a name per tenant. Parameters come in path order: each is looked for
 * from the right, left of the one after it. Those of a RegExp mount (numbered) are not named.
 */
const mountTemplate = (base: string, params: unknown): string => {
  if (typeof params !== 'object' || params === null) return base;
  const entries = Object.entries(params).filter(([key, value]) => typeof value === 'string' && value && !/^\d+$/.test(key));
  if (entries.length === 0) return base;
  const segments = base.split('/');
  let at = segments.length;
  for (let i = entries.length - 1; i >= 0; i--) {
    const [key, value] = entries[i] as [string, string];
    const encoded = encodeURIComponent(value);
    for (let j = at - 1; j > 0; j--) {
      if (segments[j] === value || segments[j] === encoded) {
        segments[j] = `:${key}`;
        at = j;
        break;
      }
    }
  }
  return segments.join('/');
};

/**
 * A route's path as Express keeps it, as text: a template as is, a RegExp route as written
 * (`/^\/files\/.+$/i`, flags and all), and a route of several paths as them all, joined by
 * commas (which of them matched is not kept). Undefined for anything else.
 */
const routeText = (path: unknown): string | undefined => {
  if (typeof path === 'string') return path;
  if (path instanceof RegExp) return String(path);
  if (!Array.isArray(path) || path.length === 0) return undefined;
  const parts = path.map(routeText);
  return parts.every((p) => p !== undefined) ? parts.join(',') : undefined;
};

/**
 * `req.route` as Express's router sets it, before the route's handlers run: the route, with the
 * routers' mount path (`req.baseUrl`) as it is then, names the request from there on. (When the
 * response ends, an error or a 404 has taken the request back out of the mounted routers, and
 * `req.baseUrl` no longer says where the route was.) One accessor pair for every request, so
 * they all keep one shape.
 */
const routeProperty: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: { [kRoute]?: unknown }) {
    return this[kRoute];
  },
  set(this: { [kRoute]?: unknown; baseUrl?: unknown; params?: unknown }, value: { path?: unknown } | undefined) {
    const before = this[kRoute];
    this[kRoute] = value;
    try {
      // Express sets it twice: in the router, while `req.params` are the mount's, then again
      // in the route with the route's own.
      if (value === before) return;
      const path = routeText(value?.path);
      const trace = requests.get(this);
      if (path === undefined || !trace) return;
      const base = typeof this.baseUrl === 'string' && this.baseUrl ? mountTemplate(this.baseUrl, this.params) : '';
      routeTrace(trace, base ? (path === '/' ? base : base + path) : path);
    } catch (error) {
      reportInternal(error);
    }
  },
};

/**
 * Node calls `req` and `res` listeners from the socket's callbacks, outside the request's async
 * context: a body parser's `end` listener, and the route handler it calls, would see no current
 * span. Every event of the two is emitted inside the context the listener was called in instead.
 */
let Resource: typeof NodeAsyncResource | null | undefined;

const keepContext = (req: IncomingMessage, res: ServerResponse): void => {
  try {
    // Taken from the runtime, not imported: the entry also loads where `node:async_hooks` has
    // AsyncLocalStorage only (Vercel Edge). In Node 20, AsyncLocalStorage.snapshot() would cost
    // a request several times more.
    Resource ??= builtin<{ AsyncResource?: typeof NodeAsyncResource }>('node:async_hooks')?.AsyncResource ?? null;
    if (typeof Resource !== 'function') return;
    const scope = new Resource('edgetrace.request');
    for (const emitter of [req, res] as { emit: (...args: unknown[]) => boolean }[]) {
      const emit = emitter.emit;
      emitter.emit = function (this: unknown, ...args: unknown[]) {
        return scope.runInAsyncScope(emit, this, ...args);
      };
    }
  } catch (error) {
    reportInternal(error);
  }
};

/** Records how the response went, once it has been sent or the client went away. */
const settle = (hooks: Hooks, trace: Trace, req: IncomingMessage, res: ServerResponse, sent: boolean): void => {
  // A response that finished was sent, also one that never says so (Nitro's in-process response).
  if (res.headersSent || sent) {
    const status = res.statusCode;
    setServerStatus(trace, status);
    const length = Number(res.getHeader('content-length'));
    if (Number.isSafeInteger(length) && length >= 0 && !hasNoBody(status, req.method ?? 'GET')) trace.setAttribute('http.response.body.size', length);
  }
  if (!sent) trace.setAttribute(RESPONSE_CANCELLED, true);
  routeTrace(trace, hooks.route?.(req));
};

/** Starts the request's SERVER span, and ends it with the response; gives it with the request's URL. */
const start = (s: NodeSetup, hooks: Hooks, req: IncomingMessage, res: ServerResponse, waitUntil: WaitUntil, batching: boolean): [Trace, string] | undefined => {
  // Not Node's request and response (a test double, another server's objects): not traced.
  if (typeof req?.headers !== 'object' || req.headers === null || typeof res?.once !== 'function' || typeof res.setHeader !== 'function' || requests.has(req)) {
    return undefined;
  }
  const { tracer } = s;
  const method = typeof req.method === 'string' ? req.method : 'GET';
  const raw = req.headers;
  // Node's header names are lowercase: a direct lookup, for the attributes and the trace context.
  const headers = { get: (name: string) => joinHeader(raw[name]) ?? null };
  const url = requestUrl(req);
  const attributes = serverRequestAttributes({ method, url: url.href, headers }, undefined, url);
  const peer = req.socket?.remoteAddress;
  if (peer) {
    attributes['network.peer.address'] = peer;
    // Without a proxy's header naming the client, the peer is the client.
    attributes['client.address'] ??= peer;
  }
  if (req.httpVersion) attributes['network.protocol.version'] = req.httpVersion;
  const named = hooks.spanName?.(req);
  const own = typeof named !== 'string' || !named;
  const { context, baggage } = extract(headers);
  const methodName = spanMethod(method);
  const parent = context ?? inProcessParent(url.href, url, !raw.host);
  const trace = tracer.createTrace({ name: own ? methodName : named, kind: 'server', parent, baggage, attributes });
  if (own) nameIsOwn(trace, methodName);
  requests.set(req, trace);
  if (!Object.prototype.hasOwnProperty.call(req, 'route')) Object.defineProperty(req, 'route', routeProperty);
  hooks.onRequest?.(trace, req);
  const extra = linkHeaders(s, trace);
  if (extra.length && !res.headersSent) {
    for (const [name, value] of extra) res.setHeader(name, value);
    // An error handler may clear every header before it answers (Koa's does): they are set
    // again, if missing, as the headers go out.
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      try {
        for (const [name, value] of extra) if (!this.hasHeader(name)) this.setHeader(name, value);
      } catch (error) {
        reportInternal(error);
      }
      return Reflect.apply(writeHead, this, args) as ServerResponse;
    } as ServerResponse['writeHead'];
  }
  let done = false;
  const end = (sent: boolean): void => {
    if (done) return;
    done = true;
    try {
      settle(hooks, trace, req, res, sent);
    } catch (error) {
      reportInternal(error);
    }
    // The wrapper's own tracer sends in batches; one the app gave may hold records until it is
    // flushed (createServerTracer's), so it is flushed per request, as withTracing does.
    if (batching) endTrace(tracer, trace, waitUntil);
    else void endAndFlush(tracer, trace, waitUntil);
  };
  res.once('finish', () => end(true));
  // Before 'finish': the client went away first, or the app destroyed the response.
  res.once('close', () => end(res.writableFinished));
  return [trace, url.href];
};

/**
 * Passes on what the listener returned, warning once when it is a Response or a promise of one:
 * a fetch-style handler (Hono's `app.fetch`) given here, whose every request would hang in silence.
 */
const noticeResponse = (returned: unknown): unknown => {
  const check = guard((v: unknown): void => {
    if (!isResponseLike(v)) return;
    warnOnce(
      'withNodeTracing-response',
      `${CALL}: the listener returned a fetch Response, which Node's server never sends, so the request hangs. Serve a fetch-style handler, (request) => Response such as Hono's app.fetch, with createServer(toNodeListener(withTracing(handler))); withNodeTracing takes (req, res) listeners.`,
      true,
    );
  });
  // Only the value is looked at: the rejection handler here is this branch's own, so the caller's
  // promise (returned as it is) still rejects for whoever handles it, or goes unhandled as before.
  if (isPromise(returned)) returned.then(check, () => undefined);
  else check(returned);
  return returned;
};

/**
 * Traces a Node `http` request listener, `(req, res) => void`: an Express or Connect app, Koa's
 * `app.callback()`, the handler Fastify's `serverFactory` is given.
 * Each request gets a SERVER span (HTTP semantic conventions) that continues the incoming
 * `traceparent`, is current while the app handles it (also in its `req`/`res` event listeners,
 * so after a body parser), makes the `fetch()` calls inside it CLIENT spans that carry the trace,
 * and ends when the response has been sent, with its status, or when the client went away.
 * `req` and `res` are the app's own objects, not copies.
 *
 * Spans are sent in batches (with a `tracer` or `processors` of the app's, flushed as each request
 * ends); `drain()` ends what requests left open and sends what is held, before exit. Options are
 * those of `withTracing`, with `spanName`, `route` and `onRequest` taking Node's request; mistakes
 * in them throw a `TypeError` here, naming the option.
 * Without an exporter, tracer or processors, the exporter comes from `fromEnv(process.env)`.
 * A listener that returns a fetch Response (a fetch-style handler given here by mistake) is said
 * once on the console: Node never sends it.
 */
export const withNodeTracing = <L extends (req: any, res: any) => unknown>(
  listener: L,
  options: NodeTracingOptions<ReqOf<L>> = {},
): NodeListener => {
  if (typeof listener !== 'function') {
    throw new TypeError(`[edgetrace] ${CALL}: "listener" must be a request listener, (req, res) => void, got ${String(listener)}.`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`[edgetrace] ${CALL}: "options" must be an object, got ${String(options)}.`);
  }
  // Only a tracer made here batches: a tracer or processors of the app's may hold records until
  // they are flushed (createServerTracer's, requestProcessor), so they are flushed per request.
  const batching = options.tracer === undefined && !options.processors?.length;
  const s: NodeSetup = setupTracing(options, undefined, CALL, !batching, NODE_WRAPPER_KEYS);
  trackOpenTraces(s.tracer);
  const { spanName, route, onRequest } = options as NodeTracingOptions<unknown>;
  const hooks: Hooks = { spanName: spanName && guard(spanName), route: route && guard(route), onRequest: onRequest && guard(onRequest) };
  const work = pendingWork(reportInternal);
  // Work given to requestWaitUntil(): drain() waits for it, as long as a request's spans may wait.
  const keep = (promise: Promise<unknown>): void => work.waitUntil(within(promise, OWN_WORK_GRACE_MS, () => undefined));
  const traced = function (this: unknown, req: IncomingMessage, res: ServerResponse): unknown {
    let started: [Trace, string] | undefined;
    try {
      if (!s.ignored?.(req)) started = start(s, hooks, req, res, work.waitUntil, batching);
    } catch (error) {
      reportInternal(error);
    }
    if (!started) return noticeResponse(listener.call(this, req, res));
    const [trace, url] = started;
    if (s.traceFetch) keepServerFetch();
    // With its URL, so that a fetch-style wrapper inside (a framework's middleware) continues it.
    return runInRoot({ tracer: s.tracer, root: trace, propagate: s.propagate, traceFetch: s.traceFetch, url, waitUntil: keep }, () => {
      keepContext(req, res);
      try {
        return noticeResponse(listener.call(this, req, res));
      } catch (error) {
        // Passed on unchanged; the span ends when the response does (or the client goes).
        trace.recordError(error);
        trace.setAttribute('error.type', errorType(error));
        throw error;
      }
    });
  };
  const drain = (): Promise<void> =>
    keepingProcess(async () => {
      // `server.close()` calls back before the requests `closeAllConnections()` cut have seen
      // their 'close', which comes with the sockets' close callbacks, after this loop turn's
      // immediates: a timer runs in the next turn, once those requests have ended their spans.
      await new Promise((resolve) => setTimeout(resolve, 0));
      // Spans a request left open end (within a second), and the work given to
      // requestWaitUntil() settles; then traces still open (a background job cut short) end as
      // unfinished, and what is held is sent.
      await work.drain();
      const cut = endOpenTraces(s.tracer);
      if (cut) warn(`withNodeTracing(): drain() ended ${cut} trace(s) still open (work the shutdown cut short), marked edgetrace.unfinished.`);
      await flush(s.tracer, true);
      // A receiver that failed (a 503 while it restarts too): twice more, a second and two apart,
      // within DRAIN_RETRY_MS in all, so that a shutdown's grace period is not spent here.
      const until = Date.now() + DRAIN_RETRY_MS;
      for (let wait = 1000; wait <= 2000 && heldRecords(s.tracer) > 0 && Date.now() + wait < until; wait += 1000) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        const late = await within(
          flush(s.tracer, true).then(() => false),
          until - Date.now(),
          () => true,
        );
        if (late) warn(`withNodeTracing(): drain() stopped waiting for an export still under way, ${DRAIN_RETRY_MS / 1000} s after its first try; what it carries may go with the process.`);
      }
      const left = heldRecords(s.tracer);
      if (left) warn(`withNodeTracing(): drain() could not send ${left} record(s): the receiver did not take them (see the failure logged before), and they go with the process.`);
      await work.drain();
    });
  return Object.assign(traced, { drain }) as unknown as NodeListener;
};

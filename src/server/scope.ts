import { AsyncLocalStorage } from 'node:async_hooks';
import { alsContext, type ContextManager } from '../core/context';
import type { Tracer } from '../core/tracer';
import type { Span } from '../core/span';
import type { Trace } from '../core/trace';
import type { WaitUntil } from './waitUntil';
import { globalTracer, setProcessTracer, setScopedTracer } from '../core/scoped';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { guard } from '../lib/guard';
import { processShared, sharedIfMade } from '../lib/processShared';

/**
 * A context manager backed by `AsyncLocalStorage` from `node:async_hooks`, so the current span
 * follows `await`, timers and promise callbacks. Works in Node, Deno, Bun, Workers with
 * `nodejs_compat` (or `nodejs_als`) and Vercel Edge. Pass it as `contextManager` to `init()` or
 * `createTracer()`.
 */
export const serverContext = (): ContextManager => alsContext(AsyncLocalStorage);

/**
 * Runs `fn` once through `around`, which is to call it inside some context. If `around` fails
 * before calling it (a context manager of the app's that throws), `fn` runs without; if it fails
 * after, what `fn` returned stands. A throw of `fn`'s own goes on to the caller as it is.
 */
export const aroundSafely = <R>(around: (fn: () => R) => R, fn: () => R): R => {
  // 0: not called yet, 1: running, 2: returned `result`.
  let state = 0;
  let result: R | undefined;
  try {
    return around(() => {
      state = 1;
      result = fn();
      state = 2;
      return result;
    });
  } catch (error) {
    if (state === 1) throw error;
    reportInternal(error);
    return state === 2 ? (result as R) : fn();
  }
};

/**
 * An app's context manager that cannot throw into a request: what `active()` throws counts as no
 * span, and `with()` runs its callback through {@link aroundSafely}.
 */
export const guardedContext = (cm: ContextManager): ContextManager => ({
  active: guard(() => cm.active()),
  with: (span, fn) => aroundSafely((f) => cm.with(span, f), fn),
  awaiting: cm.awaiting && ((span) => void guard(() => cm.awaiting!(span))()),
});

/** What `withTracing` knows about the request being handled, for code that runs inside it. */
export interface RequestScope {
  tracer: Tracer;
  /** The SERVER span of the request. */
  root: Trace;
  /** Whether an outgoing request to `url` (`parsed`, when the caller has parsed it) gets `traceparent`/`tracestate`. */
  propagate: (url: string, parsed?: URL) => boolean;
  /**
   * False when the handler was wrapped with `traceFetch: false`: the global `fetch`, patched for
   * another handler of the process, passes this request's calls through; `tracedFetch` still
   * traces them.
   */
  traceFetch?: boolean;
  /** How work that outlives the handler is kept going (the platform's `ctx.waitUntil`), if there is a way. */
  waitUntil?: WaitUntil | undefined;
  /** The URL of the request: a request answered in-process inside it is told by its origin. */
  url?: string | undefined;
  /** The request object itself, of a fetch-style handler: the same one wrapped again inside (a framework's middleware) is this request. */
  request?: object | undefined;
  /** Set on the copy {@link quietly} runs with: edgetrace's own work inside the request, whose calls are not traced. */
  quiet?: boolean;
}

/** What a server wrapper lends the app's work outside its requests: its tracer, and its rules for outgoing calls. */
type ProcessScope = Pick<RequestScope, 'tracer' | 'propagate' | 'traceFetch'>;

/**
 * A wrapper in a process whose tracer waits for its first request (its exporter comes from the
 * environment): `make()` sets it up, when work outside requests asks `getTracer()` first.
 */
interface PendingScope {
  make(): void;
  /** The service of the wrapper it took the place of, said of when its own tracer is made. */
  before?: string | undefined;
}

/**
 * The requests being handled, and the stores that mark edgetrace's own work: `flush`, while a
 * request's spans are flushed, outside the request (the exporter's own `fetch` is no span of it)
 * yet on its behalf, so the flush waits only for its own exports; `own`, for exports and drains,
 * where calls are never traced. Shared by every copy of edgetrace in the process (see
 * `processShared`), as `getTracer()`'s lookup is.
 */
interface Requests {
  als: AsyncLocalStorage<RequestScope>;
  flush: RequestScope;
  own: RequestScope;
  /** The wrapper made last, for work outside requests (see {@link setProcessScope}). */
  processWide?: WeakRef<ProcessScope | PendingScope> | undefined;
}
const KEY = 'requests.1';

/** The shared requests, if any copy has made them. */
const found = (): Requests | undefined => sharedIfMade<Requests>(KEY);

/** The shared requests, made at the first request (or request flush) of any copy: importing the entry has no side effect. */
const requestStore = (): Requests =>
  processShared<Requests>(KEY, () => {
    // From here on, `getTracer()` inside a request is the request's tracer, and outside requests
    // the wrapper's made last.
    setScopedTracer(() => currentScope()?.tracer);
    setProcessTracer((make) => processScope(make !== false)?.tracer);
    return { als: new AsyncLocalStorage(), flush: Object.freeze({}) as RequestScope, own: Object.freeze({}) as RequestScope };
  });

let saidGlobal = false;

/**
 * Says once that `init()` runs beside a server wrapper: `getTracer()` outside requests is then
 * init()'s tracer, so background work records there, apart from the requests, and its calls are
 * not traced.
 */
const sayGlobal = (): void => {
  if (saidGlobal || !globalTracer()) return;
  saidGlobal = true;
  warnOnce('server-init', 'init() or setTracer() was called in a process that a server wrapper (withTracing, withNodeTracing) traces: outside requests, getTracer() is that global tracer, so background work records apart from the requests and its calls are not traced. Leave both out of a server: the wrapper\'s tracer records the work outside requests too.', true);
};

/** Runs `fn` with `scope` as the request being handled, through every `await` inside it. */
export const runInScope = <R>(scope: RequestScope, fn: () => R): R => {
  sayGlobal();
  return requestStore().als.run(scope, fn);
};

/**
 * Runs `fn` in `scope` with its root current. A tracer of the app's may have a context manager
 * that throws: `fn` runs anyway, inside the scope, so requestSpan() and traced fetch still work.
 */
export const runInRoot = <R>(scope: RequestScope, fn: () => R): R => runInScope(scope, () => aroundSafely((f) => scope.tracer.withSpan(scope.root, f), fn));

/** The request being handled here, if any. */
export const currentScope = (): RequestScope | undefined => {
  const r = found();
  const scope = r?.als.getStore();
  return scope === r?.flush || scope === r?.own ? undefined : scope;
};

/** Runs `fn` outside any request, as the flush of one (see {@link inRequest}). */
export const forRequestFlush = <R>(fn: () => R): R => {
  const r = requestStore();
  return r.als.run(r.flush, fn);
};

/**
 * Whether this runs for some request: inside it, or in its flush. A flush outside any request (a
 * shutdown hook, the end of a background job, a drain) is a call to send everything.
 */
export const inRequest = (): boolean => {
  const r = found();
  const scope = r?.als.getStore();
  return scope !== undefined && scope !== r?.own;
};

/**
 * Registers the wrapper made last for work outside requests (a setup for the `pending` scope its
 * wrapper registered in its place, if that is still the one): `getTracer()` there is its tracer
 * (where `init()` set none), and a call made inside one of that tracer's spans (a background
 * job's) is traced under the wrapper's `propagateTo`. Held weakly: a wrapper dropped (a hot
 * reload) takes its setup with it.
 */
export const setProcessScope = (scope: ProcessScope | PendingScope, pending?: object): void => {
  const r = requestStore();
  const was = r.processWide?.deref();
  // The setup of a wrapper that registered itself pending, made after another wrapper took the
  // work outside requests (at its first request): that later one keeps it.
  if (pending && was && was !== pending) return;
  // Two services in one process (an API and an admin server): the work outside requests moves to
  // the one made last, under its name. A hot reload makes the same service again, and is quiet.
  // A wrapper whose name is not known before its tracer is made (it comes from the environment)
  // keeps the name of the one it took the place of, and is told of when its tracer is made.
  const before = was && ('make' in was ? was.before : was.tracer.config.serviceName);
  if ('make' in scope) scope.before = before;
  else {
    const now = scope.tracer.config.serviceName;
    if (before !== undefined && before !== now) {
      warnOnce('process-scope', `a second server wrapper ("${now}") was made after "${before}": getTracer() outside requests (background jobs, a shutdown hook's flush) now records with "${now}"'s tracer. drain() each listener before exit.`, true);
    }
  }
  r.processWide = new WeakRef(scope);
  sayGlobal();
};

/**
 * The wrapper's scope for work outside requests; one still pending is set up when `make` says so
 * (`getTracer()` asks), and otherwise passed over: no span can be open in a tracer not yet made.
 */
const processScope = (make: boolean): ProcessScope | undefined => {
  const r = found();
  const p = r?.processWide?.deref();
  if (!p || !('make' in p)) return p;
  if (!make) return undefined;
  // Its setup registers itself in its place, told of if it is another service than the one before.
  p.make();
  const made = (r!.processWide as Requests['processWide'])?.deref();
  return made && !('make' in made) ? made : undefined;
};

/** Where an outgoing call made here hangs, whether it gets trace headers, and whether the patched globals trace it. */
export interface OutgoingParent {
  span: Span;
  propagate: RequestScope['propagate'];
  traceFetch: boolean;
}

/**
 * The span an outgoing call made here is a child of: the span open and current in the tracer in
 * charge (a request's, or outside requests the wrapper's), also one of a trace of its own that
 * the app started there (a job a request kicked off, a timer a request set going on after it);
 * else, inside a request, its SERVER span while it runs. The rules are those of the request's
 * wrapper, or outside requests of the wrapper `getTracer()` gives. None in edgetrace's own work,
 * in a request's flush, or with no span open.
 */
export const outgoingParent = (): OutgoingParent | undefined => {
  const r = found();
  const scope = r?.als.getStore();
  if (scope === r?.flush || scope === r?.own || scope?.quiet) return undefined;
  const from: ProcessScope | undefined = scope ?? processScope(false);
  if (!from) return undefined;
  const current = from.tracer.currentSpan();
  const span = current && !current.isEnded ? current : scope?.root;
  return span && !span.isEnded ? { span, propagate: from.propagate, traceFetch: from.traceFetch !== false } : undefined;
};

/**
 * Runs `fn` as edgetrace's own work (an app's processor hook): the calls it makes, and those of
 * the timers it arms (a batch processor's export), are never traced, while the request, if any,
 * stays in view for code that reads it.
 */
export const quietly = <R>(fn: () => R): R => {
  const r = requestStore();
  const scope = r.als.getStore();
  // A request's flush is quiet already, and stays a request's flush.
  if (scope === r.flush) return fn();
  return r.als.run(scope && scope !== r.own ? quietCopy(scope) : r.own, fn);
};

/** One quiet copy per request scope: made once, as each hook call of an app's processor asks for it. */
const quietCopies = new WeakMap<RequestScope, RequestScope>();
const quietCopy = (scope: RequestScope): RequestScope => {
  if (scope.quiet) return scope;
  let copy = quietCopies.get(scope);
  if (!copy) quietCopies.set(scope, (copy = { ...scope, quiet: true }));
  return copy;
};

/**
 * Runs `fn` outside any request: an export started from a batch timer set inside a request (the
 * timer keeps that request's async context) must not be traced as the request's work, or each
 * export's own `fetch` would be a span for the next export.
 */
export const outsideRequest = <R>(fn: () => R): R => {
  const r = requestStore();
  return r.als.run(r.own, fn);
};

/**
 * The span to hang work on inside a traced handler: the current span of the request's tracer,
 * else the request's SERVER span. `undefined` outside `withTracing`.
 */
export const requestSpan = (): Span | undefined => {
  const scope = currentScope();
  if (!scope) return undefined;
  const current = scope.tracer.currentSpan();
  // A span current in another trace (or an ended one) belongs to some other work.
  return current && current.traceId === scope.root.traceId && !current.isEnded ? current : scope.root;
};

/**
 * The request's SERVER span itself, a `Trace`: its `update({ name, input, output, … })` sets the
 * trace's own fields, also where the request continues a page's trace. `undefined` outside
 * `withTracing`.
 */
export const requestTrace = (): Trace | undefined => currentScope()?.root;

import type { Trace } from '../core/trace';
import { reportInternal } from '../lib/reportInternal';
import { currentScope } from './scope';
import { processShared } from '../lib/processShared';

/**
 * Per request, the name its wrapper gave it (`GET`) and its method, while that name stands;
 * shared by every copy in the process, as the requests are, so any copy's `setRoute()` names it.
 */
const ownNames = (): WeakMap<Trace, { name: string; method: string }> => processShared('ownNames.1', () => new WeakMap());

/** Notes that `trace` has the name its wrapper gave it, which a route may replace; `method` as span names spell it. */
export const nameIsOwn = (trace: Trace, method: string): void => void ownNames().set(trace, { name: trace.name, method });

/**
 * A route template as `http.route` spells it, from the path: routers that keep their routes
 * relative (React Router's `items/:id`, a splat `*`) get the leading `/`. Not a non-empty string:
 * no route.
 */
export const routeTemplate = (route: unknown): string | undefined =>
  typeof route !== 'string' || !route ? undefined : route.startsWith('/') ? route : `/${route}`;

/**
 * Sets the request's `http.route` and, unless the app named the request itself, names it
 * `GET /route`: the trace too, so the spans that end from now on carry that name. A route that is
 * not a non-empty string is no route.
 */
export const routeTrace = (trace: Trace, given: unknown): void => {
  const route = routeTemplate(given);
  if (!route) return;
  trace.setAttribute('http.route', route);
  const own = ownNames().get(trace);
  if (!own || trace.name !== own.name) return;
  const name = `${own.method} ${route}`;
  // Only a trace that starts here has its name: one continued from a caller keeps the caller's.
  if (trace.isTraceRoot()) trace.update({ name });
  else trace.updateName(name);
  own.name = trace.name;
};

/**
 * Tells the request being handled its route template (`/books/:id`), once the app's router
 * knows it: for `http.route`, and the span name `GET /books/:id` unless `spanName` or the app
 * named it. For routers `withTracing` and `withNodeTracing` cannot see into (Hono, Koa,
 * Fastify); Express's route is found without it. Does nothing outside a traced request, or
 * without a route (Fastify's `routeOptions.url` on a 404).
 */
export const setRoute = (route: string | undefined): void => {
  try {
    const root = currentScope()?.root;
    if (root) routeTrace(root, route);
  } catch (error) {
    reportInternal(error);
  }
};

/** Keeps the runtime alive until `promise` settles, after the response has been returned. */
export type WaitUntil = (promise: Promise<unknown>) => void;

// Vercel's functions runtime keeps the current request's context (with `waitUntil`) behind this
// global symbol; `@vercel/functions`' own `waitUntil()` reads the same one.
const VERCEL_REQUEST_CONTEXT = Symbol.for('@vercel/request-context');

const methodOf = (holder: unknown): WaitUntil | undefined => {
  if (!holder || typeof holder !== 'object') return undefined;
  const fn = (holder as { waitUntil?: unknown }).waitUntil;
  // Called as a method: workerd's ExecutionContext throws "Illegal invocation" when detached.
  return typeof fn === 'function' ? (promise) => void fn.call(holder, promise) : undefined;
};

const fromVercel = (): WaitUntil | undefined => {
  try {
    const store = (globalThis as Record<symbol, { get?: () => unknown } | undefined>)[VERCEL_REQUEST_CONTEXT];
    return typeof store?.get === 'function' ? methodOf(store.get()) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Finds a way to finish work after the response: the handler's `ctx.waitUntil` (Cloudflare
 * Workers, a FetchEvent), Vercel's request context, a second argument that has `waitUntil`
 * (Next.js middleware's `NextFetchEvent`), else `fallback`, else the `ctx` of the object the
 * handler was called on (`owner`): a Durable Object's or a `WorkerEntrypoint`'s `this.ctx`, since
 * workerd calls their `fetch(request)` with neither env nor ctx. `undefined` when there is none,
 * so the caller must await instead.
 */
export const findWaitUntil = (env: unknown, ctx: unknown, fallback?: WaitUntil, owner?: unknown): WaitUntil | undefined =>
  methodOf(ctx) ?? fromVercel() ?? methodOf(env) ?? fallback ?? methodOf((owner as { ctx?: unknown } | undefined)?.ctx);

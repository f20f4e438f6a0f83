/** Keeps the runtime alive until `promise` settles, after the response has been returned. */
export type WaitUntil = (promise: Promise<unknown>) => void;

// Vercel's functions runtime keeps the current request's context (with `waitUntil`) behind this
// global symbol; `@vercel/functions`' own `waitUntil()` reads the same one. Next.js's edge runtime
// under `next start` keeps one of its own (what its `after()` uses there).
const REQUEST_CONTEXTS = [Symbol.for('@vercel/request-context'), Symbol.for('@next/request-context')];

const methodOf = (holder: unknown): WaitUntil | undefined => {
  if (!holder || typeof holder !== 'object') return undefined;
  const fn = (holder as { waitUntil?: unknown }).waitUntil;
  // Called as a method: workerd's ExecutionContext throws "Illegal invocation" when detached.
  return typeof fn === 'function' ? (promise) => void fn.call(holder, promise) : undefined;
};

const fromPlatform = (): WaitUntil | undefined => {
  for (const key of REQUEST_CONTEXTS) {
    try {
      const store = (globalThis as Record<symbol, { get?: () => unknown } | undefined>)[key];
      const found = typeof store?.get === 'function' ? methodOf(store.get()) : undefined;
      if (found) return found;
    } catch {
      // A getter that throws: try the next.
    }
  }
  return undefined;
};

/**
 * Finds a way to finish work after the response: the handler's `ctx.waitUntil` (Cloudflare
 * Workers, a FetchEvent), Vercel's or Next.js's request context, a second argument that has `waitUntil`
 * (Next.js middleware's `NextFetchEvent`), else `fallback`, else the `ctx` of the object the
 * handler was called on (`owner`): a Durable Object's or a `WorkerEntrypoint`'s `this.ctx`, since
 * workerd calls their `fetch(request)` with neither env nor ctx. `undefined` when there is none,
 * so the caller must await instead.
 */
export const findWaitUntil = (env: unknown, ctx: unknown, fallback?: WaitUntil, owner?: unknown): WaitUntil | undefined =>
  methodOf(ctx) ?? fromPlatform() ?? methodOf(env) ?? fallback ?? methodOf((owner as { ctx?: unknown } | undefined)?.ctx);

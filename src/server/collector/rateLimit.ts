/** Options for the collector's per-client rate limit. */
export interface RateLimitOptions {
  /** Requests a client may make per second, on average. Default 20. */
  perSecond?: number | undefined;
  /** Requests a client may make at once after being idle (the bucket size). Default 60. */
  burst?: number | undefined;
  /** Clients remembered; the least recently seen are forgotten beyond it. Default 10000. */
  maxClients?: number | undefined;
}

/** Whether a request may go ahead, and if not, after how many seconds it may. */
export type RateDecision = { ok: true } | { ok: false; retryAfterSec: number };

/** A token bucket per client key. */
export interface RateLimiter {
  take(key: string, cost?: number): RateDecision;
}

/**
 * Creates a token-bucket limiter: each client's bucket holds up to `burst` tokens and refills at
 * `perSecond`; a request takes one. Memory is bounded by `maxClients` (least recently seen
 * clients are dropped, which only ever gives them a full bucket back).
 */
export const createRateLimiter = (opts: RateLimitOptions = {}, now: () => number = Date.now): RateLimiter => {
  const rate = opts.perSecond ?? 20;
  const burst = opts.burst ?? 60;
  const maxClients = opts.maxClients ?? 10_000;
  const buckets = new Map<string, { tokens: number; atMs: number }>();
  return {
    take(key, cost = 1) {
      const t = now();
      let b = buckets.get(key);
      if (b) {
        buckets.delete(key);
        b.tokens = Math.min(burst, b.tokens + (Math.max(0, t - b.atMs) / 1000) * rate);
        b.atMs = t;
      } else {
        b = { tokens: burst, atMs: t };
        if (buckets.size >= maxClients) {
          const oldest = buckets.keys().next();
          if (!oldest.done) buckets.delete(oldest.value);
        }
      }
      // Re-inserted on every use, so Map order is least recently seen first.
      buckets.set(key, b);
      if (b.tokens >= cost) {
        b.tokens -= cost;
        return { ok: true };
      }
      return { ok: false, retryAfterSec: Math.max(1, Math.ceil((cost - b.tokens) / rate)) };
    },
  };
};

/**
 * Inputs of {@link nextDelayMs}, named as the delivery options are, so the flusher can pass its
 * options as they are. Time and randomness come in, so the function is pure.
 */
export interface DelayInput {
  /** Consecutive failed attempts, counting the one just seen: 1 after the first failure (a whole number ≥ 1). */
  attempt: number;
  /** Delay ceiling for the first retry; it doubles per attempt. */
  backoffBaseMs: number;
  /** The exponential part never exceeds this. */
  backoffCapMs: number;
  /**
   * Share of the delay that is random: 1 is "full jitter" (uniform in [0, delay]), 0 none,
   * 0.3 uniform in [0.7·delay, delay].
   */
  backoffJitter: number;
  /** Uniform in [0, 1), like Math.random. */
  random: () => number;
  /** The receiver's `Retry-After`, in ms from now, when it sent one. */
  retryAfterMs?: number;
}

/**
 * Longest `Retry-After` we obey. A misconfigured proxy answering "retry in a week" (or a date far
 * ahead) must not park the outbox that long; the records' own age bound still applies.
 */
export const MAX_RETRY_AFTER_MS = 600_000;

/**
 * Milliseconds to wait before the next attempt: exponential backoff with jitter
 * (`min(cap, base·2^(attempt-1))`, of which the `jitter` share is random), and never earlier than
 * a `Retry-After` (clamped to {@link MAX_RETRY_AFTER_MS}).
 *
 * Full jitter spreads the retries of many clients that failed together (AWS Architecture Blog,
 * "Exponential Backoff And Jitter", 2015).
 */
export const nextDelayMs = ({ attempt, backoffBaseMs, backoffCapMs, backoffJitter, random, retryAfterMs }: DelayInput): number => {
  // 2^30 already dwarfs any sane cap; bounding the exponent keeps the product finite. The inputs
  // are the flusher's own (attempts count from 1) and validated options (jitter in [0, 1]).
  const exp = Math.min(backoffCapMs, backoffBaseMs * 2 ** Math.min(attempt - 1, 30));
  const backoff = Math.round(exp * (1 - backoffJitter * random()));
  // `>= 0` also turns NaN away.
  return retryAfterMs! >= 0 ? Math.max(backoff, Math.min(retryAfterMs!, MAX_RETRY_AFTER_MS)) : backoff;
};

type IdleScheduler = (fn: () => void, opts: { timeout: number }) => number;

/**
 * Calls `fn` once, in an idle period of the main thread, and at the latest after `timeoutMs`.
 * Where `requestIdleCallback` is missing (Safari), a short timer stands in.
 */
export const whenIdle = (fn: () => void, timeoutMs: number): void => {
  const ric = (globalThis as { requestIdleCallback?: IdleScheduler }).requestIdleCallback;
  if (typeof ric === 'function') ric(fn, { timeout: timeoutMs });
  // 50 ms: long enough to batch a burst of spans, short enough to be gone before a tab closes.
  else setTimeout(fn, Math.min(timeoutMs, 50));
};

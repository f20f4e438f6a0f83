import { unref } from './unref';

/**
 * Settles as `promise` does, or as `late()` does once `ms` have passed, whichever comes first
 * (`late` may return a rejected promise to fail). The timer is cleared as soon as `promise`
 * settles. It holds a Node, Deno or Bun process open only when `hold` is set, for a caller that
 * awaits the answer: a script awaiting `shutdown()` over an exporter that never answers (and holds
 * no socket) then gets it after `ms` instead of exiting with the await unsettled. Background work
 * keeps no process alive.
 */
export const within = <T>(promise: Promise<T>, ms: number, late: () => T | Promise<T>, hold = false): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms);
    if (!hold) unref(timer);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

/** Settles as `promise` does, or rejects once `ms` have passed with "[edgetrace] `what` timed out after `ms` ms". */
export const rejectAfter = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  within(promise, ms, () => Promise.reject(new Error(`[edgetrace] ${what} timed out after ${ms} ms`)));

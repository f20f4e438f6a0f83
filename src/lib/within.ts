/**
 * Settles as `promise` does, or as `late()` does once `ms` have passed, whichever comes first
 * (`late` may return a rejected promise to fail). The timer is cleared as soon as `promise`
 * settles. Until then it holds a Node, Deno or Bun process open on purpose: a script that awaits
 * `shutdown()` over an exporter that never answers (and holds no socket) gets its answer after
 * `ms` instead of exiting with the await unsettled.
 */
export const within = <T>(promise: Promise<T>, ms: number, late: () => T | Promise<T>): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

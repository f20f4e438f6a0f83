import { unref } from './unref';

/**
 * Settles as `promise` does, or as `late()` does once `ms` have passed, whichever comes first
 * (`late` may return a rejected promise to fail). The timer never keeps a Node, Deno or Bun
 * process alive.
 */
export const within = <T>(promise: Promise<T>, ms: number, late: () => T | Promise<T>): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = unref(setTimeout(() => resolve(late()), ms));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

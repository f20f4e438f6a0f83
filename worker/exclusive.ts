import { FLUSH_LOCK } from '../src/transport/resolveDelivery';

/**
 * Runs `fn` while holding the origin-wide flush lock (Web Locks), or resolves `undefined` at once
 * without running it when another context (a tab, or the service worker) holds it. Where Web
 * Locks are missing, `fn` simply runs.
 */
export const exclusive = <T>(fn: () => Promise<T>): Promise<T | undefined> => {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  if (!locks || typeof locks.request !== 'function') return fn();
  return locks.request(FLUSH_LOCK, { ifAvailable: true }, (lock) => (lock ? fn() : undefined)) as Promise<T | undefined>;
};

/**
 * Runs `fn` once when a Node-like process has nothing left to do (`beforeExit`): work `fn`
 * starts (a flush's request) keeps the process alive until it is done. Nothing where there is no
 * such event (pages, workers, Workers).
 */
export const atBeforeExit = (fn: () => void): void =>
  void (globalThis as { process?: { once?(event: 'beforeExit', fn: () => void): unknown } }).process?.once?.('beforeExit', fn);

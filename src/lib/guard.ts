import { reportInternal } from './reportInternal';

/**
 * Wraps a callback the host can trigger (listener, timer, patched API hook) so that nothing it
 * throws reaches the host: the error is counted by `reportInternal` and `undefined` returned.
 */
export const guard =
  <A extends unknown[], R>(fn: (...args: A) => R) =>
  (...args: A): R | undefined => {
    try {
      return fn(...args);
    } catch (error) {
      reportInternal(error);
      return undefined;
    }
  };

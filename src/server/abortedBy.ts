import { isAbortError } from '../lib/isAbortError';

/**
 * Whether `error` is `signal`'s abort: the signal aborted, and the error is its reason or an
 * abort (what work that follows a request's signal rejects with when its client leaves, in each
 * runtime's words).
 */
export const abortedBy = (signal: AbortSignal | undefined, error: unknown): boolean => {
  try {
    return signal?.aborted === true && (signal.reason === error || isAbortError(error));
  } catch {
    return false;
  }
};

/**
 * Whether `error` is an `AbortError`: the app's own AbortController (a "stop generating" click),
 * its choice rather than a failure. An error whose `name` cannot be read is no abort.
 */
export const isAbortError = (error: unknown): boolean => {
  try {
    return (error as { name?: unknown } | null)?.name === 'AbortError';
  } catch {
    return false;
  }
};

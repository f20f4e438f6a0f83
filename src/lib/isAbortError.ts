// Reasons an app passed to \`controller.abort(reason)\` that ended a request the SDK watched: the
// same value then rejects the app's own code, whose span says cancelled too. (Only objects can be
// held weakly; a text reason marks the request's span alone.)
const reasons = new WeakSet<object>();

/** Remembers `reason` as an abort: an app's "stop generating" that carried a reason of its own. */
export const noteAbortReason = (reason: unknown): void => {
  if (typeof reason === 'object' && reason !== null) reasons.add(reason);
};

/**
 * Whether `error` is an \`AbortError\`, or a reason an app aborted a watched request with: the app's
 * own AbortController (a "stop generating" click), its choice rather than a failure. An error
 * whose \`name\` cannot be read is no abort.
 */
export const isAbortError = (error: unknown): boolean => {
  try {
    return (error as { name?: unknown } | null)?.name === 'AbortError' || reasons.has(error as object);
  } catch {
    return false;
  }
};

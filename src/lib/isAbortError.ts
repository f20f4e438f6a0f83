// Reasons an app passed to \`controller.abort(reason)\` that ended a request the SDK watched: the
// same value then rejects the app's own code, whose span says cancelled too. Objects are held
// weakly; a text reason ("stopped by user") is kept among the last few, which is as long as a
// stop's rejection takes to reach the app's span.
const reasons = new WeakSet<object>();
const texts: unknown[] = [];
const MAX_TEXTS = 8;

/** Remembers `reason` as an abort: an app's "stop generating" that carried a reason of its own. */
export const noteAbortReason = (reason: unknown): void => {
  if (typeof reason === 'object' && reason !== null) reasons.add(reason);
  else if (reason !== undefined && !texts.includes(reason)) {
    if (texts.push(reason) > MAX_TEXTS) texts.shift();
  }
};

/**
 * Whether `error` is an \`AbortError\`, or a reason an app aborted a watched request with: the app's
 * own AbortController (a "stop generating" click), its choice rather than a failure. An error
 * whose \`name\` cannot be read is no abort.
 */
export const isAbortError = (error: unknown): boolean => {
  try {
    if (typeof error !== 'object' || error === null) return error !== undefined && texts.includes(error);
    return (error as { name?: unknown }).name === 'AbortError' || reasons.has(error);
  } catch {
    return false;
  }
};

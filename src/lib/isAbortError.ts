// Reasons an app passed to \`controller.abort(reason)\` that ended a request the SDK watched: the
// same value then rejects the app's own code, whose span says cancelled too. Objects are held
// weakly. A text reason ("stopped by user") is kept a few seconds, as long as a stop's rejection
// takes to reach the app's span: the same text thrown later, elsewhere, is an error again.
const reasons = new WeakSet<object>();
const texts = new Map<string, number>();
const TEXT_MS = 5000;

/** Remembers `reason` as an abort: an app's "stop generating" that carried a reason of its own. */
export const noteAbortReason = (reason: unknown): void => {
  if (typeof reason === 'object' && reason !== null) reasons.add(reason);
  else if (typeof reason === 'string' && reason) {
    texts.delete(reason);
    texts.set(reason, Date.now());
    // The oldest first: a few at most.
    if (texts.size > 8) texts.delete(texts.keys().next().value!);
  }
};

/**
 * Whether `error` is an \`AbortError\`, or a reason an app aborted a watched request with: the app's
 * own AbortController (a "stop generating" click), its choice rather than a failure. An error
 * whose \`name\` cannot be read is no abort.
 */
export const isAbortError = (error: unknown): boolean => {
  try {
    if (typeof error === 'string') return Date.now() - (texts.get(error) ?? -Infinity) < TEXT_MS;
    return (error as { name?: unknown } | null)?.name === 'AbortError' || reasons.has(error as object);
  } catch {
    return false;
  }
};

/**
 * A failure the collector expects while it runs, as told to `onError`: a forward target or the
 * store refusing, a prune that could not finish. Its message says what failed and what happens
 * next, its `cause` why; a stack would add nothing. Anything else told to `onError` is a bug.
 */
export class CollectorError extends Error {
  override name = 'CollectorError';
}

/**
 * `error`'s message followed by those of its causes, on one line: what a log needs of a
 * CollectorError. A cause whose words an earlier message repeats already is left out.
 */
export const oneLine = (error: unknown): string => {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; e = (e as { cause?: unknown } | null)?.cause, depth++) {
    const message = e instanceof Error ? e.message : String(e);
    if (!parts.some((p) => p.includes(message))) parts.push(message);
    if (!(e instanceof Error)) break;
  }
  return parts.join(': ');
};

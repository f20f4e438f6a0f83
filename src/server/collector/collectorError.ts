/**
 * A failure the collector expects while it runs, as told to `onError`: a forward target or the
 * store refusing, a prune that could not finish. Its message says what failed and what happens
 * next, its `cause` why; a stack would add nothing. Anything else told to `onError` is a bug.
 */
export class CollectorError extends Error {
  override name = 'CollectorError';
}

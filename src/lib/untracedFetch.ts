/**
 * The global key under which the fetch instrumentation (of whichever copy of edgetrace patched
 * the page) keeps the fetch it wrapped. Delivery sends with that one: an exporter or outbox that
 * loads after the patch, or runs in another copy, would otherwise trace its own requests, and
 * send those spans in turn, without end.
 */
export const UNTRACED_FETCH = Symbol.for('edgetrace.untracedFetch');

/** The fetch to deliver with, bound to the global object: the one our instrumentation wrapped, else the global one. */
export const untracedFetch = (): typeof fetch | undefined => {
  const g = globalThis as typeof globalThis & { [UNTRACED_FETCH]?: typeof fetch };
  const f = g[UNTRACED_FETCH] ?? g.fetch;
  return typeof f === 'function' ? f.bind(g) : undefined;
};

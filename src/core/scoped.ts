import type { Tracer } from './tracer';

// How `getTracer()` finds the tracer of the work running now, where something other than the page
// decides it: `edgetrace/server` registers a lookup of the request that `withTracing` is handling.
// A module of its own, so the server entry can register without importing the page's `init()`.
let find: (() => Tracer | undefined) | undefined;

/** Registers the lookup of the tracer in charge of the current work (one per process). */
export const setScopedTracer = (lookup: () => Tracer | undefined): void => {
  find = lookup;
};

/** The tracer in charge of the current work, if a lookup is registered and finds one. */
export const scopedTracer = (): Tracer | undefined => find?.();

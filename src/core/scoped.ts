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

let processWide: WeakRef<Tracer> | undefined;

/**
 * Registers the tracer of the server wrapper made last, for `getTracer()` outside its requests
 * where `init()` set none: a background job or a shutdown hook in a traced server records and
 * flushes there, not into a tracer that sends nothing. Held weakly: a wrapper dropped (a hot
 * reload) takes its tracer with it.
 */
export const setProcessTracer = (tracer: Tracer): void => {
  processWide = new WeakRef(tracer);
};

/** The tracer {@link setProcessTracer} registered, while it lives. */
export const processTracer = (): Tracer | undefined => processWide?.deref();

import type { Tracer } from './tracer';
import { processShared } from '../lib/processShared';

// How `getTracer()` finds the tracer of the work running now, where something other than the page
// decides it: `edgetrace/server` registers a lookup of the request that `withTracing` is handling.
// A module of its own, so the server entry can register without importing the page's `init()`.

/** Kept where every copy of edgetrace in the process finds it (see `processShared`). */
interface Shared {
  find?: (() => Tracer | undefined) | undefined;
  /** The lookup of the tracer outside requests, which the server entry registers. */
  outside?: ((make?: boolean) => Tracer | undefined) | undefined;
  /** The tracer `init()` made, until `stop()`: a server wrapper says that it takes `getTracer()` outside requests. */
  global?: Tracer | undefined;
}
const shared = (): Shared => processShared<Shared>('scoped.1', () => ({}));

/** Registers the lookup of the tracer in charge of the current work (one per process). */
export const setScopedTracer = (lookup: () => Tracer | undefined): void => {
  shared().find = lookup;
};

/** The tracer in charge of the current work, if a lookup is registered and finds one. */
export const scopedTracer = (): Tracer | undefined => shared().find?.();

/**
 * Registers the lookup of the tracer for `getTracer()` outside requests where `init()` set none:
 * the server wrapper made last, so that a background job or a shutdown hook in a traced server
 * records and flushes there, not into a tracer that sends nothing.
 */
export const setProcessTracer = (lookup: (make?: boolean) => Tracer | undefined): void => {
  shared().outside = lookup;
};

/**
 * The tracer {@link setProcessTracer}'s lookup finds, if any; with `make` false, only one that
 * exists already (a flush at shutdown has nothing to send from a tracer not yet made).
 */
export const processTracer = (make = true): Tracer | undefined => shared().outside?.(make);

/** Notes the tracer `init()` made (or, with none, that `stop()` took it away). */
export const noteGlobal = (tracer?: Tracer): void => {
  shared().global = tracer;
};

/** The tracer `init()` made, in any copy of edgetrace in the process. */
export const globalTracer = (): Tracer | undefined => shared().global;

import type { Tracer } from './tracer';
import { processShared } from '../lib/processShared';

// How `getTracer()` finds the tracer of the work running now, where something other than the page
// decides it: `edgetrace/server` registers a lookup of the request that `withTracing` is handling.
// A module of its own, so the server entry can register without importing the page's `init()`.

/** Kept where every copy of edgetrace in the process finds it (see `processShared`). */
interface Shared {
  find?: (() => Tracer | undefined) | undefined;
  processWide?: WeakRef<Tracer> | undefined;
  /** The tracer `init()` made, until `stop()`: a server wrapper says that it takes `getTracer()` outside requests. */
  global?: Tracer | undefined;
}
let mine: Shared | undefined;
const shared = (): Shared => (mine ??= processShared<Shared>('scoped.1', () => ({})));

/** Registers the lookup of the tracer in charge of the current work (one per process). */
export const setScopedTracer = (lookup: () => Tracer | undefined): void => {
  shared().find = lookup;
};

/** The tracer in charge of the current work, if a lookup is registered and finds one. */
export const scopedTracer = (): Tracer | undefined => shared().find?.();

/**
 * Registers the tracer of the server wrapper made last, for `getTracer()` outside its requests
 * where `init()` set none: a background job or a shutdown hook in a traced server records and
 * flushes there, not into a tracer that sends nothing. Held weakly: a wrapper dropped (a hot
 * reload) takes its tracer with it.
 */
export const setProcessTracer = (tracer: Tracer): void => {
  shared().processWide = new WeakRef(tracer);
};

/** The tracer {@link setProcessTracer} registered, while it lives. */
export const processTracer = (): Tracer | undefined => shared().processWide?.deref();

/** Notes the tracer `init()` made (or, with none, that `stop()` took it away). */
export const noteGlobal = (tracer?: Tracer): void => {
  shared().global = tracer;
};

/** The tracer `init()` made, in any copy of edgetrace in the process. */
export const globalTracer = (): Tracer | undefined => shared().global;

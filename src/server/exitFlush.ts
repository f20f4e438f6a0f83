import type { Tracer } from '../core/tracer';
import { reportInternal } from '../lib/reportInternal';

/** The server wrappers' tracers, flushed when the process has nothing left to do. */
const tracers = new Set<WeakRef<Tracer>>();

/**
 * A server closed without `drain()` still sends what its tracer holds: the last batch, or what
 * was recorded outside any request (a background job, a shutdown hook), which no request's flush
 * sends. One `beforeExit` listener for every wrapper (tests and hot reloads make many), which
 * keeps none of them alive. The flush's request keeps the process until it is answered; runtimes
 * without `beforeExit` (Workers, edge) end requests, not processes, and lose nothing here.
 */
export const flushAtExit = (tracer: Tracer): void => {
  if (tracers.size === 0) {
    (globalThis as { process?: { once?(event: 'beforeExit', fn: () => void): unknown } }).process?.once?.('beforeExit', () => {
      const refs = [...tracers];
      tracers.clear();
      for (const ref of refs) void ref.deref()?.flush().catch(reportInternal);
    });
  }
  for (const ref of tracers) if (!ref.deref()) tracers.delete(ref);
  tracers.add(new WeakRef(tracer));
};

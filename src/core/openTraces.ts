import type { SpanRecord } from '../protocol';
import type { SpanProcessor } from './processors';
import { Trace } from './trace';
import type { Span } from './span';
import { UNFINISHED } from './semconv';

/** Every so many traces begun, the ended ones are swept out (a trace a filter or `beforeSend` drops never reaches onEnd). */
const SWEEP_EVERY = 1024;
/** Open traces kept at most: an app that never ends its traces must not grow the process without bound. */
const MAX_OPEN_TRACES = 10_000;

/** The traces a tracer began that may still be open, through a processor added to it. */
export interface OpenTraces {
  readonly processor: SpanProcessor;
  /**
   * Ends those still open (a job cut short by a shutdown, a script that ended without finishing
   * its trace), marked `edgetrace.unfinished` with their open spans, so that a flush sends them;
   * `keep` spares some (a SERVER span still answering ends with its response). Returns how many.
   */
  endOpen(keep?: (root: Span) => boolean): number;
}

/** Tracks the traces begun by the tracer `processor` is added to, also one that continues a caller's. */
export const openTraces = (): OpenTraces => {
  const open = new Set<Span>();
  let begun = 0;
  return {
    processor: {
      onStart: (span) => {
        if (!(span instanceof Trace)) return;
        if (++begun % SWEEP_EVERY === 0) for (const t of open) if (t.isEnded) open.delete(t);
        if (open.size < MAX_OPEN_TRACES) open.add(span);
      },
      onEnd: (record: SpanRecord) => void open.delete(record as Span),
    },
    endOpen(keep) {
      let cut = 0;
      for (const root of [...open]) {
        open.delete(root);
        if (root.isEnded || keep?.(root)) continue;
        root.setAttribute(UNFINISHED, true);
        root.end();
        cut++;
      }
      return cut;
    },
  };
};

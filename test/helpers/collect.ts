import type { ScoreRecord, SpanRecord } from '../../src/protocol';
import type { SpanProcessor } from '../../src/core/processors';
import { createTracer, type Tracer } from '../../src/core/tracer';
import { stackContext } from '../../src/core/context';
import type { TracerOptions } from '../../src/config';

/** A processor that keeps every record, for assertions. */
export const collector = () => {
  const spans: SpanRecord[] = [];
  const scores: ScoreRecord[] = [];
  const processor: SpanProcessor = {
    onEnd: (r) => spans.push(r),
    onScore: (s) => scores.push(s),
  };
  const byName = (name: string): SpanRecord => {
    const found = spans.find((s) => s.name === name);
    if (!found) throw new Error(`no span named ${name}; have ${spans.map((s) => s.name).join(', ')}`);
    return found;
  };
  return { spans, scores, processor, byName };
};

/** A tracer with a manual clock and a collector; `tick(ms)` moves the clock. */
export const testTracer = (opts: TracerOptions = {}) => {
  const c = collector();
  let t = 1_700_000_000_000;
  const tracer: Tracer = createTracer({
    contextManager: stackContext(),
    now: () => t,
    ...opts,
    processors: [c.processor, ...(opts.processors ?? [])],
  });
  return { ...c, tracer, tick: (ms: number) => void (t += ms), time: () => t };
};

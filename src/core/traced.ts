import type { ObservationType } from '../protocol';
import { getTracer } from './global';
import { runInSpan, type Span } from './span';

// Which traced() wrapper opened a span, to spot a function re-entering itself. Kept beside the
// span rather than on it, so spans stay small.
const origins = new WeakMap<Span, object>();
import { reportInternal } from '../lib/reportInternal';

/** Options for `traced()`. */
export interface TracedOptions {
  /** Observation type: agent, tool, chain, retriever… Default `span`. */
  type?: ObservationType;
  /** Span name. Default: the function's name, or `Class.method` for methods. */
  name?: string;
  /** Record the arguments as input. Default true. */
  captureInput?: boolean;
  /** Record the return value as output. Default true. */
  captureOutput?: boolean;
}

type AnyFn = (this: any, ...args: any[]) => any;

const wrap = <F extends AnyFn>(fn: F, opts: TracedOptions, methodName?: string): F => {
  // One marker per wrapped function: a span it opened is recognised when the function re-enters.
  const marker = {};
  const type = opts.type ?? 'span';
  function tracedFn(this: unknown, ...args: unknown[]): unknown {
    let span: Span;
    try {
      const tracer = getTracer();
      const current = tracer.currentSpan();
      // Recursion: the function calling itself stays in the span it already has.
      if (current && origins.get(current) === marker && !current.isEnded) return fn.apply(this, args);
      const cls = (this as { constructor?: { name?: string } } | undefined)?.constructor?.name;
      const name = opts.name ?? (methodName ? (cls && cls !== 'Object' ? `${cls}.${methodName}` : methodName) : fn.name || 'anonymous');
      span = tracer.startSpan(name, { type });
      origins.set(span, marker);
      if (opts.captureInput !== false && args.length) span.setInput(args.length === 1 ? args[0] : args);
    } catch (error) {
      reportInternal(error);
      return fn.apply(this, args);
    }
    return runInSpan(span, (s) => {
      const out = fn.apply(this, args);
      if (opts.captureOutput === false) return out;
      if (out && typeof (out as PromiseLike<unknown>).then === 'function') {
        return (out as Promise<unknown>).then((v) => {
          s.setOutput(v);
          return v;
        });
      }
      if (out !== undefined) s.setOutput(out);
      return out;
    });
  }
  Object.defineProperty(tracedFn, 'name', { value: fn.name, configurable: true });
  return tracedFn as F;
};

/**
 * Traces a function: every call runs in a span of the given observation type under the current
 * span (or in a new trace), with arguments as input and the result as output. A function that
 * calls itself stays in one span instead of nesting a copy per level.
 *
 * Two forms: `traced('tool', fn)` returns a wrapped function; `@traced('agent')` decorates a class
 * method (standard TypeScript 5 decorators).
 */
export function traced<F extends AnyFn>(kind: ObservationType | TracedOptions, fn: F): F;
export function traced(kind: ObservationType | TracedOptions): <F extends AnyFn>(method: F, context: ClassMethodDecoratorContext) => F;
export function traced<F extends AnyFn>(kind: ObservationType | TracedOptions, fn?: F): unknown {
  const opts: TracedOptions = typeof kind === 'string' ? { type: kind } : (kind ?? {});
  if (typeof fn === 'function') return wrap(fn, opts);
  return <M extends AnyFn>(method: M, context: ClassMethodDecoratorContext): M => wrap(method, opts, String(context.name));
}

import type { ObservationType } from '../protocol';
import { getTracer } from './global';
import { isPromise, kT, recordFailure, runInSpan, type Span } from './span';
import { reportInternal } from '../lib/reportInternal';
import { YIELDED_ITEMS } from './semconv';

// Which traced() wrapper opened a span, and for which receiver, to spot a component re-entering
// itself. Kept beside the span rather than on it, so spans stay small.
interface Origin {
  /** The wrapped function's marker, or for a method its name: an override that calls `super` is the same component. */
  key: object | string;
  /** `this` of the call: another instance of the same class is another component (a sub-agent). */
  self: unknown;
}
const origins = new WeakMap<Span, Origin>();

/** Options for `traced()`. */
export interface TracedOptions {
  /** Observation type: agent, tool, chain, retriever… Default `span`. */
  type?: ObservationType | undefined;
  /** Span name. Default: the function's name, or `Class.method` for methods. */
  name?: string | undefined;
  /** Record the arguments as input. Default true. */
  captureInput?: boolean | undefined;
  /** Record the return value as output. Default true. */
  captureOutput?: boolean | undefined;
}

type AnyFn = (this: any, ...args: any[]) => any;

type Step = IteratorResult<unknown, unknown>;
type AnyIterator = Iterator<unknown, unknown, unknown> | AsyncIterator<unknown, unknown, unknown>;

/**
 * The iterator of a traced generator function, watched: the span stays open while the caller
 * iterates, the generator's body runs with the span current, and the span ends when the generator
 * finishes, throws, or the caller stops early (`break` calls `return()`). The output is the
 * yielded text when every item is a string (an LLM token stream), cut at `maxIoLength`, else
 * the generator's return value.
 */
const watchIterator = (span: Span, it: AnyIterator, isAsync: boolean, capture: boolean): AnyIterator => {
  const limit = span[kT].core.cfg.maxIoLength;
  let text: string | undefined = '';
  let items = 0;
  // On a throw or an abort too: what was streamed before a "stop generating" is what the user saw.
  const finish = (value: unknown): void => {
    if (capture && (items || value !== undefined)) span.setOutput(items && text !== undefined ? text : value);
    span.setAttribute(YIELDED_ITEMS, items);
    span.end();
  };
  const step = (r: Step): Step => {
    if (span.isEnded) return r;
    if (r.done) finish(r.value);
    else {
      items++;
      // Past the limit the text is cut anyway; collecting stops there, so memory stays bounded.
      if (text !== undefined && text.length <= limit) text = typeof r.value === 'string' ? text + r.value : undefined;
    }
    return r;
  };
  const fail = (error: unknown): never => {
    if (!span.isEnded) {
      // An abort (the caller's "stop generating") is cancelled, as in a traced async function.
      recordFailure(span, error);
      finish(undefined);
    }
    throw error;
  };
  // `it` is a generator object: next(), return() and throw() are always there.
  const call = (method: 'next' | 'return' | 'throw', arg: unknown): Step | Promise<Step> => {
    let r: Step | Promise<Step>;
    try {
      r = span[kT].core.ctx.with(span, () => (it as Generator<unknown, unknown, unknown>)[method](arg as never));
    } catch (error) {
      return fail(error);
    }
    return isAsync ? Promise.resolve(r).then(step, fail) : step(r as Step);
  };
  const watched = {
    next: (v?: unknown) => call('next', v),
    return: (v?: unknown) => call('return', v),
    throw: (e?: unknown) => call('throw', e),
    [isAsync ? Symbol.asyncIterator : Symbol.iterator]() {
      return watched;
    },
  };
  return watched as unknown as AnyIterator;
};

const wrap = <F extends AnyFn>(fn: F, opts: TracedOptions, methodName?: string, isStatic?: boolean): F => {
  // What a span this wrapper opened is recognised by when the component re-enters: a method by
  // its name (a decorated override calling a decorated `super` method is one component), a
  // function by a marker of its own.
  const key: object | string = methodName ?? {};
  const type = opts.type ?? 'span';
  const kind = Object.prototype.toString.call(fn);
  const isAsyncGenerator = kind === '[object AsyncGeneratorFunction]';
  const isGenerator = isAsyncGenerator || kind === '[object GeneratorFunction]';
  function tracedFn(this: unknown, ...args: unknown[]): unknown {
    let span: Span;
    try {
      // The tracer in charge (on a server, the request's: an AsyncLocalStorage read), looked up once.
      const tracer = getTracer();
      const current = tracer.currentSpan();
      // Recursion: the function calling itself, on the same receiver, stays in the span it
      // already has. The same method on another instance (a sub-agent) gets a span of its own.
      const origin = current && !current.isEnded ? origins.get(current) : undefined;
      if (origin && origin.key === key && origin.self === this) return fn.apply(this, args);
      // A static method's `this` is the class itself.
      const cls = isStatic ? (this as { name?: string } | undefined)?.name : (this as { constructor?: { name?: string } } | undefined)?.constructor?.name;
      const name = opts.name ?? (methodName ? (cls && cls !== 'Object' ? `${cls}.${methodName}` : methodName) : fn.name || 'anonymous');
      span = tracer.startSpan(name, { type });
      origins.set(span, { key, self: this });
      if (opts.captureInput !== false && args.length) span.setInput(args.length === 1 ? args[0] : args);
    } catch (error) {
      reportInternal(error);
      return fn.apply(this, args);
    }
    if (isGenerator) {
      // Calling a generator function runs none of its body; the span lives as long as the iteration.
      let it: AnyIterator;
      try {
        it = span[kT].core.ctx.with(span, () => fn.apply(this, args) as AnyIterator);
      } catch (error) {
        recordFailure(span, error);
        span.end();
        throw error;
      }
      return watchIterator(span, it, isAsyncGenerator, opts.captureOutput !== false);
    }
    return runInSpan(span, (s) => {
      const out = fn.apply(this, args);
      if (opts.captureOutput === false) return out;
      if (isPromise(out)) {
        return out.then((v) => {
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
 * What `traced(kind)` returns: a decorator for class methods, standard (TypeScript 5, the first
 * signature) or legacy (`experimentalDecorators`, as NestJS, Angular and TypeORM projects keep
 * on: the second), that also wraps a plain function given to it.
 */
export interface TracedDecorator {
  <F extends AnyFn>(method: F, context?: ClassMethodDecoratorContext): F;
  <F extends AnyFn>(target: object, key: string | symbol, descriptor: TypedPropertyDescriptor<F>): TypedPropertyDescriptor<F>;
}

/**
 * Traces a function: every call runs in a span of the given observation type under the current
 * span (or in a new trace), with arguments as input and the result as output. A function that
 * calls itself stays in one span instead of nesting a copy per level, and so does a decorated
 * method that calls itself or its decorated `super` method on the same object; the same method
 * called on another object (a sub-agent of the same class) gets a span of its own, and so does
 * each object of a recursion that walks from one to another (a tree's nodes).
 *
 * When the span ends: for a promise, when it settles; for a generator function (`function*`,
 * `async function*`), when the caller's iteration finishes, throws or stops early, with the
 * yielded text as output; otherwise when the function returns. A thenable that is not a promise
 * (a lazy query builder) is returned untouched: calling its `then()` would run it.
 *
 * Two forms: `traced('tool', fn)` returns a wrapped function; `@traced('agent')` decorates a class
 * method, with standard TypeScript 5 decorators or legacy ones (`experimentalDecorators`).
 */
export function traced<F extends AnyFn>(kind: ObservationType | TracedOptions, fn: F): F;
export function traced(kind: ObservationType | TracedOptions): TracedDecorator;
export function traced<F extends AnyFn>(kind: ObservationType | TracedOptions, fn?: F): unknown {
  const opts: TracedOptions = typeof kind === 'string' ? { type: kind } : (kind ?? {});
  if (typeof fn === 'function') return wrap(fn, opts);
  return (method: AnyFn | object, context?: ClassMethodDecoratorContext | string | symbol, descriptor?: PropertyDescriptor): unknown => {
    // Legacy: the prototype (the class, for a static method), the method's name and its descriptor.
    if (typeof context === 'string' || typeof context === 'symbol') {
      if (descriptor && typeof descriptor.value === 'function') descriptor.value = wrap(descriptor.value, opts, String(context), typeof method === 'function');
      return descriptor;
    }
    // Standard: the method and its context. Called on a plain function (`traced('tool')(fn)`),
    // it wraps it as `traced('tool', fn)` does.
    return context ? wrap(method as AnyFn, opts, String(context.name), context.static) : wrap(method as AnyFn, opts);
  };
}

import type { Span } from './span';

/**
 * Tracks which span is current. Two implementations: AsyncLocalStorage where the runtime has
 * it (Node, Deno, Bun, Workers with nodejs_als, Vercel Edge), and a synchronous stack elsewhere.
 */
export interface ContextManager {
  /** The current span, if any. */
  active(): Span | undefined;
  /** Runs `fn` with `span` current and returns what it returns. */
  with<R>(span: Span | undefined, fn: () => R): R;
  /**
   * Optional: told when a callback that `span()`, `generation()` or `withTrace()` ran with `span`
   * current returned a promise, which ends the span when it settles. A context that cannot follow
   * `await` (the page's) keeps such spans as the parent of requests made after one.
   */
  awaiting?(span: Span): void;
}

/** The constructor shape of `AsyncLocalStorage` from `node:async_hooks`. */
export interface AsyncLocalStorageLike {
  new <T>(): { getStore(): T | undefined; run<R>(store: T, fn: () => R): R };
}

/**
 * Current span kept in AsyncLocalStorage: it follows `await`, timers and promise callbacks.
 * Pass the class, e.g. `alsContext(AsyncLocalStorage)` with `import { AsyncLocalStorage } from 'node:async_hooks'`.
 */
export const alsContext = (Als: AsyncLocalStorageLike): ContextManager => {
  const store = new Als<Span | undefined>();
  return {
    active: () => store.getStore(),
    with: (span, fn) => store.run(span, fn),
  };
};

/**
 * Current span kept on a synchronous stack: exact inside synchronous code and up to the first
 * `await` of an async callback; after that, pass the span explicitly (`span.span(...)`).
 * Browsers have no async context, and zone.js breaks native async/await, so this is the page's.
 */
export const stackContext = (): ContextManager => {
  const stack: (Span | undefined)[] = [];
  return {
    active: () => stack[stack.length - 1],
    with: (span, fn) => {
      stack.push(span);
      try {
        return fn();
      } finally {
        stack.pop();
      }
    },
  };
};

/**
 * AsyncLocalStorage where the runtime has it: as a global (Next.js sets `globalThis.AsyncLocalStorage`
 * in its edge runtime) or as `node:async_hooks` through `process.getBuiltinModule` (Node 20.16+,
 * Deno, Bun, Workers with `nodejs_compat`), which needs no import a page bundler would follow.
 * Else (pages) a stack.
 */
export const defaultContext = (): ContextManager => {
  const g = globalThis as {
    AsyncLocalStorage?: AsyncLocalStorageLike;
    process?: { getBuiltinModule?(id: string): { AsyncLocalStorage?: AsyncLocalStorageLike } | undefined };
  };
  try {
    const Als = g.AsyncLocalStorage ?? g.process?.getBuiltinModule?.('node:async_hooks')?.AsyncLocalStorage;
    if (typeof Als === 'function') return alsContext(Als);
  } catch {
    // A runtime that refuses the module, or a class that will not construct: the stack.
  }
  return stackContext();
};

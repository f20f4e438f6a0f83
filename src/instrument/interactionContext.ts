import type { ContextManager } from '../core/context';
import { stackContext } from '../core/context';
import type { SpanProcessor } from '../core/processors';
import { kNext, kT, type Span } from '../core/span';
import { Trace } from '../core/trace';
import type { Tracer } from '../core/tracer';
import { now as defaultNow } from '../lib/now';
import { reportInternal } from '../lib/reportInternal';
import { DEFAULT_INTERACTION_IDLE_MS, DEFAULT_INTERACTION_TIMEOUT_MS } from './options';

/**
 * # How interactions become parents without zone.js
 *
 * A browser has no async context: once a click handler reaches its first `await`, nothing in the
 * platform remembers that the code running later belongs to that click (zone.js tries by
 * patching every async API, and cannot see native `async`/`await` at all). edgetrace keeps two
 * layers instead:
 *
 * 1. **The synchronous stack.** `withSpan()`, `span.span()` and `tracer.span()` make a span current
 *    while their callback runs synchronously. This is exact, and it always wins.
 * 2. **The awaited callback, for requests.** A `span()`, `generation()` or `withTrace()` whose
 *    async callback has not settled yet is the parent of the `fetch()` and `XMLHttpRequest` calls
 *    made after its `await`s: a chat handler's
 *    `generation('answer', async () => { await token(); return fetch(…) })` gets its request, and
 *    so its usage and first token. When several such callbacks are pending, the parent is the
 *    innermost span they all run inside (two generations awaited side by side give their shared
 *    parent, which cannot tell them apart); when they share none, or the active interaction
 *    began after them, this layer gives way to the next. Spans the app starts itself are left to
 *    the stack and the interaction: a guess must not end up inside a span that ends before it.
 * 3. **The active interaction.** When a click, submit or key press starts an interaction span,
 *    that span becomes the fallback parent: any span started while the stack is empty (after
 *    an `await`, in a timer, in a promise callback) becomes its child, and so does every
 *    `fetch()` and `XMLHttpRequest`. The interaction waits for every span of its trace that is
 *    still open (a fetch whose body is being read, a span the handler opened), and after the
 *    last one ends it waits `interactionIdleMs` (default 500 ms) for the next step of the
 *    handler (the code after an `await fetch()` runs in the same moment the fetch ends, and a
 *    short `setTimeout` fits in the gap). Then it ends, at the time its last piece of work
 *    ended, not when the wait ran out. It adopts new work while work of the handler's own is
 *    open (started in the handler's task, or within 50 ms of it or of the end of a piece of its
 *    work), or while something of it started or ended within `interactionIdleMs`.
 *
 * **Where it stops.** Attribution is by time, not by cause:
 * - Work the handler starts after a pause longer than `interactionIdleMs` with nothing open
 *   (a 2-second timer, waiting for a WebSocket message) starts its own trace.
 * - After `interactionTimeoutMs` (default 30 s) the interaction adopts nothing new; work it
 *   already started keeps its place, and the interaction ends when that work does.
 * - Unrelated work that starts while an interaction is active (a polling timer, another
 *   component's fetch) is adopted too. A newer interaction replaces the active one at once, so
 *   the window is short in practice; pass a span explicitly (`span.span(...)`,
 *   `withSpan(span, fn)`) where it matters. Work adopted only by time (a long poll that began
 *   just after the click's answer) is waited for, but does not keep the interaction adopting:
 *   the next poll and a heartbeat meanwhile start their own traces.
 * - Async work that creates no span (IndexedDB, `postMessage`, a microtask-only chain) is not
 *   seen, so it does not extend the interaction; only its spans do.
 */
export interface InteractionContext extends ContextManager {
  /** The interaction that adopts work started outside any synchronous span, if one is active. */
  current(): Span | undefined;
  /**
   * The innermost span whose async callback is still pending (layer 2 above), unless the active
   * interaction began after it: the parent of a request made with an empty stack.
   */
  awaited(): Span | undefined;
  /**
   * Makes `span` the active interaction and ends it once its work settles. A `loose` one (the
   * page load) is not held past its deadline by work still open, a stream or a long poll, nor
   * stretched by it when the page goes away: it ends where its last finished work did, and the
   * open work goes on as its children. A `minor` one (a click on no control: text, a blank
   * spot, or into a text field) is not recorded at all if it turns out to be nothing: no work,
   * no event, nothing the app set on it, and quicker than a long task. `minor: 'key'` is the
   * same for a key press that may be nothing (Enter in a text area, a new line) or a command
   * (the same Enter, sending a chat message): as a command, it takes work from a callback still
   * pending as any other interaction does, where a minor click gives way after its own task.
   */
  begin(span: Span, how?: { loose?: boolean; minor?: boolean | 'key' }): void;
  /**
   * Keeps the pending interaction `span` open for work that is not a span (the page load
   * waiting for its `load` event). Call the returned function, with the work's end time if it
   * is not now, to let go.
   */
  hold(span: Span): (endMs?: number) => void;
  /** Feed it every started span (add it to the tracer) so open work keeps its interaction alive. */
  readonly processor: SpanProcessor;
  /** Ends every pending interaction now, at the end of its last work: for `pagehide`. */
  endAll(): void;
  /** Stops adopting work; pending interactions still end when their work does. */
  close(): void;
}

/** Options for {@link interactionContext}. */
export interface InteractionContextOptions {
  /** Quiet time after the last piece of work before an interaction ends. Default 500 ms. */
  idleMs?: number;
  /** How long an interaction adopts new work. Default 30000 ms. */
  timeoutMs?: number;
  /** The synchronous layer. Default: a stack (`stackContext()`). */
  inner?: ContextManager;
  /** Clock in epoch ms; must match the tracer's. */
  now?: () => number;
}

/** Attribute set on an interaction that stopped adopting work because of `interactionTimeoutMs`. */
export const INTERACTION_TIMED_OUT = 'edgetrace.interaction.timed_out';

// Interactions waiting for their work to end; past this the oldest is ended at once. A page
// rarely has more than a handful, but a script clicking in a loop must not grow this forever.
const MAX_PENDING = 32;
// Even work that never ends (an endless stream read forever) releases its interaction after this.
const MAX_OPEN_MS = 10 * 60_000;
// An interaction this long is worth its span even with nothing in it: a handler that blocked the
// page this long is a long task, and shows in INP.
const LONG_TASK_MS = 50;
// Callbacks awaited at once that the context keeps; past this, the newest started give way.
const MAX_AWAITED = 32;
// Work that starts this soon after a step of the handler is its next step: the code after an
// `await fetch()` runs as the fetch ends, a render's effect within a frame or two. A long poll
// or a timer that happens to start a little later is not.
const STEP_MS = 50;

/**
 * The span that work started after an `await` belongs to, of the spans whose async callbacks are
 * still pending (see layer 2 above): the innermost span every one of them runs inside. Ancestry
 * goes through every open span of their traces, so a span between two awaited ones (a
 * `withSpan()` step) does not break it; undefined when they share no span.
 */
const innermost = (awaited: Span[]): Span | undefined => {
  if (awaited.length < 2) return awaited[0];
  const byId = new Map<string, Span>();
  for (const t of new Set(awaited.map((a) => a[kT]))) for (let s: Span | undefined = t.head; s; s = s[kNext]) byId.set(s.spanId, s);
  const chains = awaited.map((leaf) => {
    const chain: Span[] = [];
    for (let s: Span | undefined = leaf; s; s = s.parentId === undefined ? undefined : byId.get(s.parentId)) chain.push(s);
    return chain.reverse();
  });
  let shared: Span[] | undefined;
  for (const chain of chains) {
    // A span other pending callbacks run inside is not where work after an await goes.
    if (chains.some((c) => c !== chain && c.includes(chain[chain.length - 1]!))) continue;
    if (!shared) shared = chain;
    else {
      let n = 0;
      while (n < shared.length && shared[n] === chain[n]) n++;
      shared = shared.slice(0, n);
    }
  }
  return shared?.[shared.length - 1];
};

/**
 * What the app may have done to an interaction through `currentInteraction()` or
 * `currentSpan()`: renamed it, set attributes, status, user, session or tags, recorded an event
 * or an error, scored it. A minor interaction that changed in none of these is nothing.
 */
const look = (s: Span): string => {
  const t = s[kT];
  return [s.name, Object.keys(s.attrs).length, s.events.length, s.status.code, t.userId, t.sessionId, t.tags?.size, t.scored].join('\u0000');
};

/** Work an interaction waits for: a span of its trace, or a hold. */
interface Work {
  readonly isEnded: boolean;
  readonly endMs: number | undefined;
}

interface Pending {
  span: Span;
  /**
   * Work of the interaction's trace that was open when last checked, each with whether it is a
   * step of the handler's own (see `track`), which keeps the interaction adopting while open.
   */
  open: Map<Work, boolean>;
  /** When the last piece of work was seen (started or ended). */
  lastMs: number;
  /** When the handler last ran a step that can be seen: its own task, or the end of a piece of its work. */
  stepMs: number;
  deadlineMs: number;
  detached: boolean;
  first: boolean;
  loose: boolean;
  minor: boolean | 'key';
  /** Whether any work (a span, a hold) was adopted. */
  adopted: boolean;
  /** For a minor one: what the app could have changed on the span, as it began (see `look`). */
  look: string;
  /** Holds not yet let go. */
  holds: number;
  /** When the last piece of work ended (or the interaction began). */
  endedMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const made = new WeakSet<object>();

/** Whether `ctx` was made by {@link interactionContext}. */
export const isInteractionContext = (ctx: unknown): ctx is InteractionContext => typeof ctx === 'object' && ctx !== null && made.has(ctx);

/**
 * Creates the page's context manager: the synchronous stack, falling back to the active
 * interaction (see the explanation on {@link InteractionContext}). `init()` sets one up in a
 * browser by itself; pass one as `contextManager` to `init()` to choose its timeouts, or to
 * `createTracer()` to get the same for your own tracer (add its `processor` to that tracer too).
 */
export const interactionContext = (opts: InteractionContextOptions = {}): InteractionContext => {
  const inner = opts.inner ?? stackContext();
  const idleMs = opts.idleMs ?? DEFAULT_INTERACTION_IDLE_MS;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_INTERACTION_TIMEOUT_MS;
  const now = opts.now ?? defaultNow;
  const pending: Pending[] = [];
  let active: Pending | undefined;
  let closed = false;
  /** Loose interactions that ended with work of theirs still open: ended on pagehide. */
  const outliving: Trace[] = [];

  const settle = (p: Pending, endMs: number): void => {
    clearTimeout(p.timer);
    const i = pending.indexOf(p);
    if (i >= 0) pending.splice(i, 1);
    if (active === p) active = undefined;
    // A Trace's end() also ends children still open (marked unfinished): only reached on
    // pagehide, on the pending bound, or after MAX_OPEN_MS. A loose one leaves them open.
    if (p.loose && p.span instanceof Trace) {
      if (p.span.endRoot(endMs)) outliving.push(p.span);
    } else if (p.minor && !p.adopted && look(p.span) === p.look && endMs - p.span.startMs < LONG_TASK_MS) {
      p.span.discard();
    } else p.span.end(endMs);
  };

  /** Takes the work of `p` that has ended out of its open set, noting when; says whether any is still open. */
  const sweep = (p: Pending): boolean => {
    for (const [s] of p.open) {
      if (!s.isEnded) continue;
      p.open.delete(s);
      const endMs = s.endMs as number;
      if (endMs > p.lastMs) p.lastMs = endMs;
      if (endMs > p.endedMs) p.endedMs = endMs;
      if (endMs > p.stepMs) p.stepMs = endMs;
    }
    return p.open.size > 0;
  };

  const schedule = (p: Pending, ms: number): void => {
    clearTimeout(p.timer);
    p.timer = setTimeout(() => check(p), Math.max(0, Math.ceil(ms)));
  };

  const check = (p: Pending): void => {
    try {
      const t = now();
      // The first check runs in the first task after the event: the handler's synchronous work
      // (and its microtasks) belong to the interaction's duration.
      if (p.first) {
        p.first = false;
        if (t > p.lastMs) p.lastMs = t;
        p.stepMs = t;
      }
      sweep(p);
      if (!p.detached && t >= p.deadlineMs) {
        p.detached = true;
        if (active === p) active = undefined;
        // A loose one whose own holds were let go is not waiting on anything: what is still open
        // (an event stream, a long poll) simply goes on without it.
        if (!p.loose || p.holds > 0) p.span.setAttribute(INTERACTION_TIMED_OUT, true);
      }
      if (p.open.size === 0) {
        const quiet = t - p.lastMs;
        if (p.detached || quiet >= idleMs) settle(p, p.lastMs);
        else schedule(p, idleMs - quiet);
        return;
      }
      if (p.loose && p.holds === 0 && p.detached) {
        settle(p, p.endedMs);
        return;
      }
      if (t - p.span.startMs >= MAX_OPEN_MS) {
        settle(p, t);
        return;
      }
      let waitMs = idleMs;
      if (active === p && ![...p.open.values()].includes(true)) {
        // Nothing of the handler's own is open, only work taken in by time (a long poll that
        // began just after the click's answer, the page's event stream after its load): that is
        // waited for, but once nothing started or ended for idleMs, new work (the next poll, a
        // heartbeat) is no longer the interaction's, so it cannot keep itself adopting.
        const quiet = t - p.lastMs;
        if (quiet >= idleMs) active = undefined;
        else waitMs = idleMs - quiet;
      }
      schedule(p, p.detached ? idleMs : Math.min(waitMs, p.deadlineMs - t));
    } catch (error) {
      reportInternal(error);
    }
  };

  const current = (): Span | undefined => (active && !active.span.isEnded ? active.span : undefined);

  /** Spans whose async callback is pending; each leaves when it ends. */
  const awaited: Span[] = [];
  /** What innermost() gave for `awaited` as it is (undefined: ask again). */
  let chosen: { span: Span | undefined } | undefined;
  const prune = (): void => {
    for (let i = awaited.length - 1; i >= 0; i--) {
      if (!awaited[i]!.isEnded) continue;
      awaited.splice(i, 1);
      chosen = undefined;
    }
  };
  const awaitedParent = (): Span | undefined => {
    if (!awaited.length) return undefined;
    prune();
    if (chosen?.span?.isEnded) chosen = undefined;
    const span = (chosen ??= { span: innermost(awaited) }).span;
    // A click after the callback started is the newer context (a second click while an answer
    // still streams): its work is its own. A click on no control (the answer's text, selected
    // while it streams) takes only the work of its own handler's task: what the callback does
    // after that is still the callback's. So does a click into a text field; Enter there may send.
    const p = active;
    const newer = p && !p.span.isEnded && p.span.startMs > (span?.startMs ?? Infinity) && !(p.minor === true && !p.first);
    return span && !newer ? span : undefined;
  };

  const track = (span: Span): void => {
    for (let i = pending.length - 1; i >= 0; i--) {
      const p = pending[i]!;
      if (p.span.traceId !== span.traceId) continue;
      if (span !== p.span) {
        const t = now();
        sweep(p);
        // A step of the handler's own: started in its task, or as a piece of its work ended.
        // Not the page load's: its holds keep it, and what it fetches meanwhile does not.
        p.open.set(span, !p.loose && (p.first || t - p.stepMs <= STEP_MS));
        p.adopted = true;
        if (t > p.lastMs) p.lastMs = t;
      }
      return;
    }
  };

  const ctx: InteractionContext = {
    active: () => inner.active() ?? current(),
    with: (span, fn) => inner.with(span, fn),
    awaiting(span) {
      // A microtask later: the caller's own code right after the call (a second call beside it,
      // as in Promise.all) is not inside this callback; what runs after its awaits is.
      queueMicrotask(() => {
        try {
          if (closed || span.isEnded) return;
          prune();
          if (awaited.length >= MAX_AWAITED) {
            // Full: keep the outer callbacks, which started first (and, returning last, come
            // last): this one takes the place of the newest held, unless it is newer still.
            let at = 0;
            for (let i = 1; i < awaited.length; i++) if (awaited[i]!.startMs >= awaited[at]!.startMs) at = i;
            if (span.startMs > awaited[at]!.startMs) return;
            awaited.splice(at, 1);
          }
          awaited.push(span);
          chosen = undefined;
        } catch (error) {
          reportInternal(error);
        }
      });
    },
    current,
    awaited: awaitedParent,
    begin(span, how) {
      try {
        if (closed) return;
        if (pending.length >= MAX_PENDING) settle(pending[0]!, pending[0]!.lastMs);
        const t = now();
        const p: Pending = { span, open: new Map(), lastMs: t, stepMs: t, deadlineMs: t + timeoutMs, detached: false, first: true, timer: undefined, loose: how?.loose === true, minor: how?.minor ?? false, adopted: false, look: how?.minor ? look(span) : '', holds: 0, endedMs: t };
        pending.push(p);
        active = p;
        schedule(p, 0);
      } catch (error) {
        reportInternal(error);
      }
    },
    hold(span) {
      const token = { isEnded: false, endMs: undefined as number | undefined };
      const p = pending.find((q) => q.span === span);
      if (p) {
        p.open.set(token, true);
        p.holds++;
        p.adopted = true;
      }
      return (endMs) => {
        if (token.isEnded) return;
        token.isEnded = true;
        if (p) p.holds--;
        token.endMs = typeof endMs === 'number' ? endMs : now();
        // Without a pending interaction (never begun, or already ended) there is nothing to wait for.
        if (!p) return;
        if (!pending.includes(p)) return;
        schedule(p, 0);
      };
    },
    processor: {
      onStart(span) {
        if (pending.length) track(span);
      },
    },
    endAll() {
      for (const p of [...pending]) {
        const busy = sweep(p);
        // Work that ended before the page went away does not stretch the interaction to now,
        // nor does work still open stretch a loose one whose own holds were let go. A minor
        // click is kept: it may be what took the page away (a card whose handler navigates).
        p.minor = false;
        settle(p, !busy ? p.lastMs : p.loose && p.holds === 0 ? p.endedMs : now());
      }
      const t = now();
      for (const trace of outliving.splice(0)) trace.endOpen(t);
    },
    close() {
      closed = true;
      active = undefined;
      awaited.length = 0;
      chosen = undefined;
      for (const p of pending) p.detached = true;
    },
  };
  made.add(ctx);
  return ctx;
};

let page: InteractionContext | undefined;

/** The interaction context the page's instrumentations share, if one is set up. */
export const getPageContext = (): InteractionContext | undefined => page;

/** Sets (or clears) the interaction context the page's instrumentations share. */
export const setPageContext = (ctx: InteractionContext | undefined): void => {
  page = ctx;
};

/**
 * The parent for a span an instrumentation starts: the tracer's current span, else the page's
 * active interaction. Works whether or not the tracer itself uses the interaction context.
 */
export const parentSpan = (tracer: Tracer): Span | undefined => tracer.currentSpan() ?? page?.current();

/**
 * The parent for a `fetch()` or `XMLHttpRequest` span: the tracer's current span from the
 * stack, else a callback still pending (a generation that awaited before its request), else the
 * active interaction.
 */
export const requestParent = (tracer: Tracer): Span | undefined => {
  const exact = tracer.currentSpan();
  const interaction = page?.current();
  if (exact && exact !== interaction) return exact;
  // Here `exact` is the interaction, or nothing.
  return page?.awaited() ?? interaction;
};

/**
 * The interaction (click, submit, key press) whose work is running now, if any: its trace, to
 * name it, tag it or attach input and output, e.g. `currentInteraction()?.update({ input })`.
 * `undefined` outside an interaction or before `init()`.
 */
export const currentInteraction = (): Trace | undefined => {
  const span = page?.current();
  return span instanceof Trace ? span : undefined;
};

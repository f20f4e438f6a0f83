import type { Generation, Span } from '../core/span';
import { getTracer } from '../core/global';
import { inject, writeHeader } from '../propagation/index';
import { guard } from '../lib/guard';
import { patch, patchAllOrSkip } from '../lib/patch';
import { reportInternal } from '../lib/reportInternal';
import { baggageFor, classify, compileRules, inFetch, inFlight, isBaggageHeader, isTraceHeader, notPropagated, setHttpFailure, setHttpStatus, startHttpSpan, type HttpOptions } from './http';
import { requestParent } from './interactionContext';
import { BODY_ATTRS } from './fetch';
import { usageFromBody } from './stream';
import { generationOf } from './generationBody';
import * as A from '../core/semconv';
import type { Stop } from './index';

/** Options for {@link instrumentXhr}. */
export type XhrOptions = HttpOptions;

/** What we know about one XMLHttpRequest between `open()` and `loadend`. */
interface XhrState {
  method: string;
  url: string;
  isAsync: boolean;
  /** The app (or another tracer) set a trace header itself: ours are never doubled or mixed with it. */
  ownTraceHeaders: boolean;
  /** The `traceparent` it set, if any. */
  traceparent?: string;
  /** We set our trace headers. */
  propagated?: boolean;
  /** The `baggage` the app (or another tracer) set: the trace's members go after its own. */
  baggage?: string;
  span?: Span;
  /** The generation the request runs in, until its usage is read from the response. */
  gen?: Generation;
  /** The generation's usage when the request was sent. */
  usageAtSend?: unknown;
  failure?: string;
  /**
   * The status as of the last `readystatechange` from HEADERS_RECEIVED on: kept in case the app
   * resets the XHR (abort() once the response is in) before the request's last event.
   */
  status?: number;
  /** Removes the listeners of this request. */
  off?: () => void;
}

/** `value` after `prev`, as XHR joins the values of a header set twice. */
const joined = (prev: string | undefined, value: unknown): string => (prev === undefined ? String(value) : `${prev}, ${value}`);

/**
 * Records a CLIENT span for every `XMLHttpRequest`, like {@link instrumentFetch}: same
 * attributes, same header rules, ended at `loadend`. The app's calls reach the original
 * methods with the same arguments and see the same return values and exceptions. Call the
 * returned function to restore `open`, `send` and `setRequestHeader`.
 */
export const instrumentXhr = (opts: XhrOptions = {}): Stop => {
  const Xhr = (globalThis as { XMLHttpRequest?: typeof XMLHttpRequest }).XMLHttpRequest;
  if (typeof Xhr !== 'function' || !Xhr.prototype) return () => undefined;
  const rules = compileRules(opts);
  if (!rules) return () => undefined;
  const proto = Xhr.prototype;
  // While we add our own headers: our wrapper of setRequestHeader then does not take them for the app's.
  let injecting = false;
  const states = new WeakMap<XMLHttpRequest, XhrState>();
  const open = inFlight();

  const finish = (state: XhrState, status: number, loaded?: number): void => {
    state.off?.();
    state.off = undefined;
    state.gen = undefined;
    const span = state.span;
    if (!span || span.isEnded) return;
    if (status > 0) setHttpStatus(span, status);
    else setHttpFailure(span, { name: state.failure ?? 'NetworkError', message: `XMLHttpRequest ${state.failure ?? 'failed'}` }, state.failure ?? 'NetworkError');
    if (typeof loaded === 'number') span.setAttribute(BODY_ATTRS.bytes, loaded);
    span.end();
  };

  /**
   * Fills the generation the request ran in with the usage in its response (type json, or
   * text), at DONE: before load and loadend, so usage the app sets from its handlers of those
   * wins. The app's own handler of DONE runs before this one; usage it set there is kept.
   */
  const readUsage = guard((xhr: XMLHttpRequest, state: XhrState): void => {
    const gen = state.gen;
    state.gen = undefined;
    if (!gen || gen.attrs[A.USAGE_DETAILS] !== state.usageAtSend) return;
    const type = xhr.responseType;
    const usage = usageFromBody(type === 'json' ? xhr.response : type === '' || type === 'text' ? xhr.responseText : undefined);
    if (usage) gen.setUsage(usage);
  });

  // The listeners belong to one request and go when it ends, so an XHR the app reuses (polling)
  // collects none, and a late `loadend` of an earlier request never ends a newer one.
  const listen = (xhr: XMLHttpRequest, state: XhrState): void => {
    const handlers: [string, (e: Event) => void][] = [
      ['abort', guard(() => void (state.failure = 'AbortError'))],
      ['timeout', guard(() => void (state.failure = 'TimeoutError'))],
      [
        'readystatechange',
        guard(() => {
          const ready = xhr.readyState;
          if (ready >= 2) state.status = xhr.status;
          // DONE, or already reset to UNSENT by abort() from the app's own handler of DONE (which
          // runs first): then neither load nor loadend follows, and this is the request's end.
          if (ready === 4 || (ready === 0 && state.status !== undefined)) setTimeout(guard(() => finish(state, state.status!)), 0);
          if (ready === 4) readUsage(xhr, state);
        }),
      ],
      // A request's own loadend finds it done; one dispatched after the app already opened and
      // sent the next request (from its onload) finds that one under way, and is not its end.
      // Done and then reset to UNSENT: the app called abort() after the response (a wrapper's
      // `finally`, between load and loadend), which does not undo the response it had.
      [
        'loadend',
        guard((e: Event) => {
          const loaded = (e as ProgressEvent).loaded;
          if (xhr.readyState === 4) finish(state, xhr.status, loaded);
          else if (xhr.readyState === 0 && state.status !== undefined) finish(state, state.status, loaded);
        }),
      ],
    ];
    for (const [type, fn] of handlers) xhr.addEventListener(type, fn);
    state.off = () => {
      for (const [type, fn] of handlers) xhr.removeEventListener(type, fn);
    };
  };

  /**
   * What `open()` does to a request this XHR still has under way: one that already finished
   * (the app calls `open()` from its own `onload`, before `loadend`) keeps its status; one in
   * flight is cancelled without any event, so it ends here, as cancelled.
   */
  const replaced = (xhr: XMLHttpRequest): (() => void) | undefined => {
    const prev = states.get(xhr);
    if (!prev?.span || prev.span.isEnded) return undefined;
    const done = xhr.readyState === 4;
    const status = xhr.status;
    return () => {
      if (!done) prev.failure = 'AbortError';
      finish(prev, done ? status : 0);
    };
  };

  const begin = (xhr: XMLHttpRequest): XhrState | undefined => {
    const state = states.get(xhr);
    // Sent by a fetch polyfill from within a traced fetch (see inFetch): the fetch's span has it.
    if (!state || state.span || inFetch.depth) return undefined;
    const target = classify(state.url, rules);
    if (!target) return undefined;
    const tracer = opts.tracer ?? getTracer();
    const parent = requestParent(tracer);
    const span = startHttpSpan(tracer, state.method, target, parent);
    open.add(span);
    state.span = span;
    state.gen = generationOf(parent);
    state.usageAtSend = state.gen?.attrs[A.USAGE_DETAILS];
    // The rule fetch follows: trace headers the app (or another tracer) set itself, either one,
    // get none of ours, and the span says so.
    if (target.propagate && state.ownTraceHeaders) notPropagated(span, 'skipped', state.traceparent);
    else if (target.propagate) {
      // Through the XHR's own method rather than the prototype's: a library that wraps it on the
      // instance (Sentry does, in open()) then sees our traceparent and adds none of its own,
      // which would make the header two values that servers refuse.
      const set = (name: string, value: string): void => xhr.setRequestHeader(name, value);
      injecting = true;
      state.propagated = true;
      inject(span.spanContext(), set);
      // XHR joins a header set twice, so a baggage of the app's gets ours after it.
      const more = baggageFor(span, state.baggage);
      if (more) writeHeader(set, 'baggage', more);
      injecting = false;
    }
    listen(xhr, state);
    return state;
  };

  const wrapOpen = (original: XMLHttpRequest['open']): XMLHttpRequest['open'] =>
    function open(this: XMLHttpRequest, ...args: unknown[]): void {
      let endPrevious: (() => void) | undefined;
      try {
        endPrevious = replaced(this);
      } catch (error) {
        reportInternal(error);
      }
      // The original first: if it throws (bad method or URL), the app sees that, the request
      // under way goes on, and we record nothing.
      const result = (original as (...a: unknown[]) => void).apply(this, args);
      try {
        endPrevious?.();
        const [method, url, isAsync] = args;
        const raw = typeof url === 'string' ? url : url instanceof URL ? url.href : undefined;
        // open(method, url, async): a given `async` is converted to a boolean, so 0 is synchronous.
        if (raw !== undefined) states.set(this, { method: String(method), url: raw, isAsync: args.length < 3 || Boolean(isAsync), ownTraceHeaders: false });
        else states.delete(this);
      } catch (error) {
        reportInternal(error);
      }
      return result;
    } as XMLHttpRequest['open'];

  const wrapSetHeader = (original: XMLHttpRequest['setRequestHeader']): XMLHttpRequest['setRequestHeader'] =>
    function setRequestHeader(this: XMLHttpRequest, name: string, value: string): void {
      original.call(this, name, value);
      try {
        const state = injecting ? undefined : states.get(this);
        if (!state) return;
        const key = String(name);
        if (isTraceHeader(key)) state.ownTraceHeaders = true;
        if (key.toLowerCase() === 'traceparent') {
          // Set after ours, within our send(), by a wrapper of send() installed before ours
          // (OpenTelemetry's XHR instrumentation): the server gets two values and takes neither.
          if (state.propagated) notPropagated(state.span!, 'overridden', value);
          state.traceparent = joined(state.traceparent, value);
        } else if (isBaggageHeader(key)) state.baggage = joined(state.baggage, value);
      } catch (error) {
        reportInternal(error);
      }
    };

  const wrapSend = (original: XMLHttpRequest['send']): XMLHttpRequest['send'] =>
    function send(this: XMLHttpRequest, ...args: unknown[]): void {
      let state: XhrState | undefined;
      try {
        state = begin(this);
      } catch (error) {
        reportInternal(error);
      }
      let result: void;
      try {
        result = (original as (...a: unknown[]) => void).apply(this, args);
      } catch (error) {
        if (state?.span) {
          try {
            state.off?.();
            setHttpFailure(state.span, error);
            state.span.end();
          } catch (e) {
            reportInternal(e);
          }
        }
        throw error;
      }
      // A synchronous request has finished by now; loadend may not have reached us.
      if (state && !state.isAsync) {
        try {
          finish(state, this.status);
        } catch (error) {
          reportInternal(error);
        }
      }
      return result;
    };

  // All three or none: a method that cannot be replaced leaves the others as they were, and
  // XHR goes untraced while the rest of the instrumentation runs.
  const undo = patchAllOrSkip(
    () => patch(proto, 'open', wrapOpen),
    () => patch(proto, 'setRequestHeader', wrapSetHeader),
    () => patch(proto, 'send', wrapSend),
  );
  return () => {
    undo();
    open.release();
  };
};

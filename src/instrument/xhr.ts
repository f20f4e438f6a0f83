import type { Span } from '../core/span';
import { getTracer } from '../core/global';
import { inject } from '../propagation/index';
import { patch } from '../lib/patch';
import { reportInternal } from '../lib/reportInternal';
import { classify, compileRules, setHttpFailure, setHttpStatus, startHttpSpan, type HttpOptions } from './http';
import { parentSpan } from './interactionContext';
import { BODY_ATTRS } from './fetch';
import type { Stop } from './index';

/** Options for {@link instrumentXhr}. */
export type XhrOptions = HttpOptions;

/** What we know about one XMLHttpRequest between `open()` and `loadend`. */
interface XhrState {
  method: string;
  url: string;
  isAsync: boolean;
  /** Header names the app set, lowercase: a `traceparent` of its own is never doubled. */
  headers: Set<string>;
  span?: Span;
  failure?: string;
}

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
  const setHeader = proto.setRequestHeader;
  const states = new WeakMap<XMLHttpRequest, XhrState>();

  const finish = (xhr: XMLHttpRequest, state: XhrState, loaded?: number): void => {
    const span = state.span;
    if (!span || span.isEnded) return;
    if (xhr.status > 0) setHttpStatus(span, xhr.status);
    else setHttpFailure(span, { name: state.failure ?? 'NetworkError', message: `XMLHttpRequest ${state.failure ?? 'failed'}` }, state.failure ?? 'NetworkError');
    if (typeof loaded === 'number') span.setAttribute(BODY_ATTRS.bytes, loaded);
    span.end();
  };

  const listen = (xhr: XMLHttpRequest, state: XhrState): void => {
    const on = (type: string, fn: (e: Event) => void): void =>
      xhr.addEventListener(type, (e) => {
        try {
          fn(e);
        } catch (error) {
          reportInternal(error);
        }
      });
    on('abort', () => (state.failure = 'AbortError'));
    on('timeout', () => (state.failure = 'TimeoutError'));
    on('loadend', (e) => finish(xhr, state, (e as ProgressEvent).loaded));
  };

  const begin = (xhr: XMLHttpRequest): XhrState | undefined => {
    const state = states.get(xhr);
    if (!state || state.span) return undefined;
    const target = classify(state.url, rules);
    if (!target) return undefined;
    const tracer = opts.tracer ?? getTracer();
    const span = startHttpSpan(tracer, state.method, target, parentSpan(tracer));
    state.span = span;
    if (target.propagate && !state.headers.has('traceparent')) {
      inject(span.spanContext(), (name, value) => setHeader.call(xhr, name, value));
    }
    listen(xhr, state);
    return state;
  };

  const stops = [
    patch(proto, 'open', (original, isOn) =>
      function open(this: XMLHttpRequest, ...args: unknown[]): void {
        // The original first: if it throws (bad method or URL), the app sees that and we record nothing.
        const result = (original as (...a: unknown[]) => void).apply(this, args);
        if (isOn()) {
          try {
            const [method, url, isAsync] = args;
            const raw = typeof url === 'string' ? url : url instanceof URL ? url.href : undefined;
            if (raw !== undefined) states.set(this, { method: String(method), url: raw, isAsync: isAsync !== false, headers: new Set() });
            else states.delete(this);
          } catch (error) {
            reportInternal(error);
          }
        }
        return result;
      } as typeof original,
    ),
    patch(proto, 'setRequestHeader', (original, isOn) =>
      function setRequestHeader(this: XMLHttpRequest, name: string, value: string): void {
        original.call(this, name, value);
        if (isOn()) {
          try {
            states.get(this)?.headers.add(String(name).toLowerCase());
          } catch (error) {
            reportInternal(error);
          }
        }
      },
    ),
    patch(proto, 'send', (original, isOn) =>
      function send(this: XMLHttpRequest, ...args: unknown[]): void {
        let state: XhrState | undefined;
        if (isOn()) {
          try {
            state = begin(this);
          } catch (error) {
            reportInternal(error);
          }
        }
        let result: void;
        try {
          result = (original as (...a: unknown[]) => void).apply(this, args);
        } catch (error) {
          if (state?.span) {
            try {
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
            finish(this, state);
          } catch (error) {
            reportInternal(error);
          }
        }
        return result;
      },
    ),
  ];
  return () => {
    for (const stop of stops) stop();
  };
};

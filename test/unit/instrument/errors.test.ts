import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureError, instrumentErrors, SKIPPED_ERRORS } from '../../../src/instrument/errors';
import { testTracer } from '../../helpers/collect';
import * as A from '../../../src/core/semconv';

// The page's globals the module listens on, on Node: window's event target and ErrorEvent. The
// same paths run in real Chromium in test/e2e/instrument-errors.spec.ts.
class FakeErrorEvent extends Event {
  readonly error: unknown;
  readonly message: string;
  readonly filename: string;
  readonly lineno = 3;
  readonly colno = 7;
  constructor(init: { error?: unknown; message?: string; filename?: string }) {
    super('error');
    this.error = init.error ?? null;
    this.message = init.message ?? '';
    this.filename = init.filename ?? '';
  }
}

const g = globalThis as Record<string, unknown>;
let page: EventTarget;
let stop: (() => void) | undefined;

beforeEach(() => {
  page = new EventTarget();
  g.addEventListener = page.addEventListener.bind(page);
  g.removeEventListener = page.removeEventListener.bind(page);
  g.ErrorEvent = FakeErrorEvent;
});

afterEach(() => {
  stop?.();
  stop = undefined;
  vi.useRealTimers();
  delete g.addEventListener;
  delete g.removeEventListener;
  delete g.ErrorEvent;
});

const uncaught = (init: ConstructorParameters<typeof FakeErrorEvent>[0]): void => void page.dispatchEvent(new FakeErrorEvent(init));
const unhandled = (reason: unknown): void => {
  const e = new Event('unhandledrejection');
  Object.assign(e, { reason });
  page.dispatchEvent(e);
};

describe('instrumentErrors', () => {
  it('does not record again an error a span recorded before it reached the page', () => {
    const { tracer, spans } = testTracer();
    stop = instrumentErrors({ tracer });
    const error = new Error('answer failed');
    const trace = tracer.createTrace('chat');
    // span() records and rethrows; the app lets it reach window (here after the trace ended).
    expect(() => trace.span('answer', () => { throw error; })).toThrow(error);
    trace.finish();
    uncaught({ error, message: 'Uncaught Error: answer failed' });
    unhandled(error);
    captureError(error);
    expect(spans.map((s) => s.name)).toEqual(['answer', 'chat']);
    // One not recorded before still is.
    unhandled(new Error('other'));
    expect(spans.map((s) => s.name)).toEqual(['answer', 'chat', 'unhandled rejection']);
  });

  it("records no error for a stop the app chose (an AbortError reaching unhandledrejection)", () => {
    const { tracer, spans } = testTracer();
    stop = instrumentErrors({ tracer });
    const controller = new AbortController();
    controller.abort();
    unhandled(controller.signal.reason);
    unhandled(new DOMException('The user aborted a request.', 'AbortError'));
    expect(spans).toEqual([]);
    // A timeout is not a stop.
    unhandled(new DOMException('signal timed out', 'TimeoutError'));
    expect(spans[0]?.events[0]?.attrs?.[A.EXCEPTION_TYPE]).toBe('TimeoutError');
  });

  it('skips the bare "Script error." of a cross-origin script, and reads the type from the text when there is no error object', () => {
    const { tracer, spans } = testTracer();
    stop = instrumentErrors({ tracer });
    uncaught({ message: 'Script error.' });
    uncaught({});
    expect(spans).toEqual([]);
    // A Web Worker's error reaching the page: only its text and file.
    uncaught({ message: 'Uncaught TypeError: x is not a function', filename: 'https://app.example/worker.js' });
    uncaught({ message: 'Uncaught null', filename: 'https://app.example/app.js' });
    uncaught({ message: 'Uncaught Error: boom', filename: 'https://app.example/worker.js' });
    expect(spans.map((s) => s.events[0]!.attrs)).toEqual([
      { [A.EXCEPTION_TYPE]: 'TypeError', [A.EXCEPTION_MESSAGE]: 'x is not a function', [A.EXCEPTION_STACKTRACE]: 'at https://app.example/worker.js:3:7' },
      { [A.EXCEPTION_TYPE]: 'Error', [A.EXCEPTION_MESSAGE]: 'null', [A.EXCEPTION_STACKTRACE]: 'at https://app.example/app.js:3:7' },
      { [A.EXCEPTION_TYPE]: 'Error', [A.EXCEPTION_MESSAGE]: 'boom', [A.EXCEPTION_STACKTRACE]: 'at https://app.example/worker.js:3:7' },
    ]);
  });

  it('tells apart thrown values that are not Errors by what they hold, and records an error a span could not', () => {
    vi.useFakeTimers({ now: 6_000_000_000_000 });
    const { tracer, spans } = testTracer();
    stop = instrumentErrors({ tracer });
    for (let i = 0; i < 8; i++) unhandled({ code: 'E_ONE' });
    for (let i = 0; i < 3; i++) unhandled({ code: 'E_TWO' });
    for (let i = 0; i < 8; i++) uncaught({ message: 'Uncaught TypeError: from a worker', filename: 'https://app.example/w.js' });
    for (let i = 0; i < 2; i++) uncaught({ message: 'Uncaught RangeError: from another', filename: 'https://app.example/w.js' });
    const messages = spans.map((s) => s.events[0]!.attrs![A.EXCEPTION_MESSAGE]);
    // Five of the first and all three of the second: told apart by their values, which are not sent.
    expect(messages.filter((m) => m === 'Object with keys: code')).toHaveLength(8);
    expect(messages.filter((m) => m === 'from a worker')).toHaveLength(5);
    expect(messages.filter((m) => m === 'from another')).toHaveLength(2);
    // Recorded on a span already ended: nothing was kept there, so the page's handler records it.
    const late = tracer.startSpan('done');
    late.end();
    const error = new Error('after the end');
    late.recordError(error);
    unhandled(error);
    expect(spans.at(-1)).toMatchObject({ name: 'unhandled rejection', events: [{ attrs: { [A.EXCEPTION_MESSAGE]: 'after the end' } }] });
  });

  it('records at most five of one error a minute, leaves room for others, marks the span that failed, and counts the rest', () => {
    vi.useFakeTimers({ now: 4_000_000_000_000 });
    const { tracer, spans } = testTracer();
    stop = instrumentErrors({ tracer });
    for (let i = 0; i < 100; i++) uncaught({ error: new TypeError('cannot read x of undefined') });
    const pay = tracer.createTrace('click button#pay');
    tracer.withSpan(pay, () => uncaught({ error: new Error('payment failed') }));
    pay.finish();
    expect(spans.filter((s) => s.name === 'uncaught error')).toHaveLength(5);
    expect(spans.find((s) => s.name === 'click button#pay')?.events[0]?.attrs?.[A.EXCEPTION_MESSAGE]).toBe('payment failed');

    // Past the minute's limit of 30: not recorded, but the interaction it failed still says so.
    for (let i = 0; i < 30; i++) uncaught({ error: new Error(`row ${i} failed`) });
    const save = tracer.createTrace('click button#save');
    tracer.withSpan(save, () => uncaught({ error: new Error('save failed') }));
    save.finish();
    expect(spans.filter((s) => s.events.length)).toHaveLength(30);
    expect(spans.find((s) => s.name === 'click button#save')).toMatchObject({ status: { code: 'error', message: 'Error: save failed' }, events: [] });

    // When the minute is over, one span says how many were skipped: 95 + 6 + 1.
    expect(spans.find((s) => s.name === 'skipped errors')).toBeUndefined();
    vi.advanceTimersByTime(60_000);
    expect(spans.find((s) => s.name === 'skipped errors')?.attrs[SKIPPED_ERRORS]).toBe(102);
    uncaught({ error: new TypeError('cannot read x of undefined') });
    expect(spans.at(-1)?.name).toBe('uncaught error');
  });

  it('says how many were skipped when the page goes before the minute is over', () => {
    vi.useFakeTimers({ now: 5_000_000_000_000 });
    const { tracer, spans } = testTracer();
    stop = instrumentErrors({ tracer });
    for (let i = 0; i < 8; i++) unhandled('flaky');
    page.dispatchEvent(new Event('pagehide'));
    expect(spans.find((s) => s.name === 'skipped errors')?.attrs[SKIPPED_ERRORS]).toBe(3);
  });
});

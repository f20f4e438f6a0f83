import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { instrumentXhr } from '../../../src/instrument/xhr';
import type { Stop } from '../../../src/instrument/index';
import { testTracer } from '../../helpers/collect';

/**
 * Just enough of XMLHttpRequest for the request lifecycle the instrumentation sees, following the
 * XHR standard where it matters here: `open()` on a request under way cancels it without firing
 * any event and resets `status`; a finished request fires `load`, then `loadend`.
 */
class StubXhr extends EventTarget {
  static live = 0;
  status = 0;
  readyState = 0;
  onload: (() => void) | null = null;
  private active = false;
  override addEventListener(type: string, fn: EventListenerOrEventListenerObject | null): void {
    StubXhr.live++;
    super.addEventListener(type, fn);
  }
  override removeEventListener(type: string, fn: EventListenerOrEventListenerObject | null): void {
    StubXhr.live--;
    super.removeEventListener(type, fn);
  }
  private sync = false;
  open(_method: string, _url: string, async?: boolean): void {
    this.active = false;
    this.sync = arguments.length >= 3 && !async;
    this.status = 0;
    this.readyState = 1;
  }
  /** Header names set on this XHR, by the app or by us. */
  sentHeaders: string[] = [];
  /** The header fields as they go out: a header set twice has its values joined, as XHR joins them. */
  fields: Record<string, string> = {};
  setRequestHeader(name: string, value: string): void {
    const key = name.toLowerCase();
    this.sentHeaders.push(key);
    this.fields[key] = key in this.fields ? `${this.fields[key]}, ${value}` : value;
  }
  send(): void {
    // A synchronous request has its response when send() returns.
    if (this.sync) {
      this.status = 201;
      this.readyState = 4;
    } else this.active = true;
  }
  responseType: XMLHttpRequestResponseType = '';
  responseText = '';
  response: unknown = '';
  onreadystatechange: (() => void) | null = null;
  /** The response arrives; with `body`, DONE is announced first, as the standard orders it. */
  respond(status: number, body?: string): void {
    if (!this.active) return;
    this.active = false;
    this.status = status;
    this.readyState = 4;
    if (body !== undefined) {
      this.responseText = this.responseType === 'json' ? '' : body;
      this.response = this.responseType === 'json' ? JSON.parse(body) : body;
      this.onreadystatechange?.();
      this.dispatchEvent(new Event('readystatechange'));
    }
    this.onload?.();
    this.dispatchEvent(new Event('load'));
    this.dispatchEvent(Object.assign(new Event('loadend'), { loaded: 2 }));
  }
}

const g = globalThis as { XMLHttpRequest?: unknown; location?: unknown };

describe('instrumentXhr', () => {
  let stop: Stop | undefined;
  beforeEach(() => {
    vi.stubGlobal('location', { href: 'https://app.test/page', origin: 'https://app.test' });
    vi.stubGlobal('XMLHttpRequest', class extends StubXhr {});
    StubXhr.live = 0;
  });
  afterEach(() => {
    stop?.();
    stop = undefined;
    vi.unstubAllGlobals();
  });

  const make = () => new (g.XMLHttpRequest as typeof StubXhr)();
  /** A same-origin GET, with the header the app sets first if any, sent and answered 200. */
  const sendSameOrigin = (header?: [string, string]): StubXhr => {
    const xhr = make();
    xhr.open('GET', '/same-origin');
    if (header) xhr.setRequestHeader(...header);
    xhr.send();
    xhr.respond(200);
    return xhr;
  };

  it('keeps the status of a request whose onload opens the next one (polling), and traces the next', () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const xhr = make();
    let polls = 0;
    xhr.onload = () => {
      if (polls++ === 0) {
        xhr.open('GET', '/poll?n=2');
        xhr.send();
      }
    };
    xhr.open('GET', '/poll?n=1');
    xhr.send();
    xhr.respond(200);
    expect(t.spans).toHaveLength(1);
    expect(t.spans[0]!.attrs['http.response.status_code']).toBe(200);
    expect(t.spans[0]!.attrs['error.type']).toBeUndefined();
    xhr.respond(204);
    expect(t.spans.map((s) => s.attrs['http.response.status_code'])).toEqual([200, 204]);
  });

  it('ends a request still under way when it is stopped, as unfinished, with the trace headers it sent', () => {
    const t = testTracer();
    const undo = instrumentXhr({ tracer: t.tracer });
    const xhr = make();
    xhr.open('GET', '/slow');
    xhr.send();
    expect(xhr.sentHeaders).toContain('traceparent');
    undo();
    expect(t.spans).toHaveLength(1);
    expect(t.spans[0]!.attrs['edgetrace.unfinished']).toBe(true);
    // The answer after it adds nothing.
    xhr.respond(200);
    expect(t.spans).toHaveLength(1);
  });

  it('ends a request that open() cancels there, as cancelled, not at the next response', () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const xhr = make();
    xhr.open('GET', '/slow');
    xhr.send();
    t.tick(10);
    xhr.open('GET', '/fast');
    expect(t.spans).toHaveLength(1);
    const cancelled = t.spans[0]!;
    expect(cancelled.endMs - cancelled.startMs).toBe(10);
    expect(cancelled.attrs['error.type']).toBe('AbortError');
    expect(cancelled.attrs['edgetrace.cancelled']).toBe(true);
    xhr.send();
    t.tick(1000);
    xhr.respond(500);
    expect(t.spans[1]!.attrs['http.response.status_code']).toBe(500);
  });

  it('adds no trace headers next to a traceparent or tracestate the app set, as fetch does', () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const sent = (own?: string) => {
      const xhr = make();
      xhr.open('GET', '/same-origin');
      if (own) xhr.setRequestHeader(own, 'x');
      xhr.send();
      return xhr.sentHeaders;
    };
    expect(sent()).toContain('traceparent');
    expect(sent('TraceState')).toEqual(['tracestate']);
    expect(sent('traceparent')).toEqual(['traceparent']);
  });

  it("adds its headers through the XHR's own setRequestHeader, so a wrapper there (Sentry's) sees them and adds no second traceparent", () => {
    // Sentry, loaded first: its open() wraps setRequestHeader on the instance to note each header,
    // and its send() adds a traceparent of its own unless one was noted.
    const Xhr = g.XMLHttpRequest as typeof StubXhr;
    const { open, send } = Xhr.prototype;
    const noted = new WeakMap<StubXhr, Record<string, string>>();
    Xhr.prototype.open = function (this: StubXhr, method: string, url: string) {
      const headers: Record<string, string> = {};
      noted.set(this, headers);
      const own = this.setRequestHeader;
      this.setRequestHeader = function (this: StubXhr, name: string, value: string) {
        headers[name.toLowerCase()] = value;
        own.call(this, name, value);
      };
      open.call(this, method, url);
    };
    Xhr.prototype.send = function (this: StubXhr) {
      if (!noted.get(this)?.traceparent) this.setRequestHeader('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      send.call(this);
    };
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const xhr = sendSameOrigin();
    expect(xhr.sentHeaders.filter((name) => name === 'traceparent')).toHaveLength(1);
    const span = t.spans[0]!;
    expect(noted.get(xhr)!.traceparent).toBe(`00-${span.traceId}-${span.spanId}-0${span.flags}`);
    expect(span.attrs['edgetrace.propagation']).toBeUndefined();
  });

  it('says on the span when the request went with a trace header the app or another tracer set, linked to its context', () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    sendSameOrigin(['Traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
    sendSameOrigin(['tracestate', 'app=1']);
    sendSameOrigin();
    expect(t.spans.map((s) => s.attrs['edgetrace.propagation'])).toEqual(['skipped', 'skipped', undefined]);
    expect(t.spans.map((s) => s.links)).toMatchObject([[{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', flags: 1 }], [], []]);
  });

  it('says so when a wrapper of send() installed before it adds a second traceparent (OpenTelemetry does)', () => {
    const Xhr = g.XMLHttpRequest as typeof StubXhr;
    const { send } = Xhr.prototype;
    const theirs = '00-11111111111111111111111111111111-2222222222222222-01';
    Xhr.prototype.send = function (this: StubXhr) {
      this.setRequestHeader('traceparent', theirs);
      send.call(this);
    };
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const xhr = sendSameOrigin();
    const span = t.spans[0]!;
    expect(xhr.fields.traceparent).toBe(`00-${span.traceId}-${span.spanId}-0${span.flags}, ${theirs}`);
    expect(span.attrs['edgetrace.propagation']).toBe('overridden');
    expect(span.links).toMatchObject([{ traceId: '11111111111111111111111111111111', spanId: '2222222222222222' }]);
  });

  it("adds the trace's baggage after a baggage the app or another tracer set, whose keys win", () => {
    const t = testTracer({ baggage: { tenant: 'acme', plan: 'pro' } });
    stop = instrumentXhr({ tracer: t.tracer });
    const sent = (own?: string) => {
      const xhr = make();
      xhr.open('GET', '/same-origin');
      if (own) xhr.setRequestHeader('Baggage', own);
      xhr.send();
      return xhr.fields.baggage;
    };
    expect(sent()).toBe('tenant=acme,plan=pro');
    expect(sent('sentry-sampled=true,plan=free')).toBe('sentry-sampled=true,plan=free, tenant=acme');
    expect(sent('tenant=mine,plan=free')).toBe('tenant=mine,plan=free');
  });

  it('leaves no listeners behind on an XHR the app reuses', () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const xhr = make();
    for (let i = 0; i < 50; i++) {
      xhr.open('GET', '/again');
      xhr.send();
      xhr.respond(200);
    }
    expect(t.spans).toHaveLength(50);
    expect(StubXhr.live).toBe(0);
  });

  it('treats open(method, url, 0) as synchronous, as the browser does', () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const xhr = make();
    xhr.open('POST', '/sync', 0 as unknown as boolean);
    xhr.send();
    expect(t.spans.map((s) => s.attrs['http.response.status_code'])).toEqual([201]);
  });

  it('patches all three methods or none: a send() that cannot be replaced leaves open() as it was', () => {
    const Xhr = g.XMLHttpRequest as typeof StubXhr;
    const open = Xhr.prototype.open;
    const setHeader = Xhr.prototype.setRequestHeader;
    Object.defineProperty(Xhr.prototype, 'send', { value: StubXhr.prototype.send, writable: false, configurable: true });
    stop = instrumentXhr({ tracer: testTracer().tracer });
    expect(Xhr.prototype.open).toBe(open);
    expect(Xhr.prototype.setRequestHeader).toBe(setHeader);
    expect(Object.prototype.hasOwnProperty.call(Xhr.prototype, 'open')).toBe(false);
  });

  it('fills the generation it runs in with the usage in the response; usage the app sets, before or after, is kept', async () => {
    const t = testTracer();
    stop = instrumentXhr({ tracer: t.tracer });
    const body = '{"choices":[],"usage":{"prompt_tokens":31,"completion_tokens":7}}';
    const trace = t.tracer.createTrace('chat');
    const run = (name: string, setup: (x: StubXhr, gen: { setUsage(u: object): void }) => void) =>
      trace.generation(name, { model: 'gpt-4o' }, (gen) => {
        const x = make();
        x.open('POST', '/v1/chat/completions');
        setup(x, gen);
        x.send();
        x.respond(200, body);
      });
    run('text', () => undefined);
    run('json', (x) => void (x.responseType = 'json'));
    run('set-at-done', (x, gen) => {
      // The app's own handler of DONE was set before send(), so it runs before the SDK's listener.
      x.onreadystatechange = () => void (x.readyState === 4 && gen.setUsage({ input: 1, output: 1 }));
    });
    run('set-in-onload', (x, gen) => void (x.onload = () => gen.setUsage({ input: 2, output: 2 })));
    trace.finish();
    await new Promise((r) => setTimeout(r, 5));
    const usage = (name: string) => JSON.parse(t.byName(name).attrs['langfuse.observation.usage_details'] as string);
    expect(usage('text')).toEqual({ input: 31, output: 7 });
    expect(usage('json')).toEqual({ input: 31, output: 7 });
    expect(usage('set-at-done')).toEqual({ input: 1, output: 1 });
    expect(usage('set-in-onload')).toEqual({ input: 2, output: 2 });
  });
});

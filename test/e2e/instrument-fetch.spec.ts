import { test, expect } from '@playwright/test';
import { flush, pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// fetch and XMLHttpRequest in real Chromium: which origins get trace headers, what the spans
// say, and that the page's calls come back as they would without the SDK.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());
test.beforeEach(() => s.reset());

const headerOf = (server: string, path: string, name = 'traceparent'): unknown =>
  s.seen.find((r) => r.server === server && r.path === path)?.headers[name];

test('same-origin and allowlisted requests get traceparent and baggage, a third-party origin never does', async ({ page }) => {
  const url = s.page('/fetch.html', testPage({ init: `{ propagateTo: ['${s.allowed}'], baggage: { tenant: 'acme corp' } }` }));
  await page.goto(url);
  await ready(page);
  const results = await page.evaluate(
    async ([allowed, third]) => {
      const get = async (u: string, init?: RequestInit) => (await fetch(u, init)).json();
      const xhr = (u: string) =>
        new Promise<string>((resolve, reject) => {
          const x = new XMLHttpRequest();
          x.open('GET', u);
          x.setRequestHeader('x-app', '1');
          x.onload = () => resolve(x.responseText);
          x.onerror = () => reject(new Error('xhr failed'));
          x.send();
        });
      return [
        await get('/api/same?q=secret'),
        await get(`${allowed}/api/allowed`),
        await get(`${third}/api/third`),
        await get(`${third}/api/third-with-headers`, { headers: { 'x-app': 'kept' } }),
        JSON.parse(await xhr('/api/xhr-same')),
        JSON.parse(await xhr(`${third}/api/xhr-third`)),
        JSON.parse(await xhr(`${allowed}/api/xhr-allowed`)),
        await get('/api/own-baggage', { headers: { Baggage: 'app=1' } }),
      ];
    },
    [s.allowed, s.third],
  );
  expect(results.map((r: { server: string }) => r.server)).toEqual(['app', 'allowed', 'third', 'third', 'app', 'third', 'allowed', 'app']);

  const tp = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/;
  expect(headerOf('app', '/api/same?q=secret')).toMatch(tp);
  expect(headerOf('allowed', '/api/allowed')).toMatch(tp);
  expect(headerOf('third', '/api/third')).toBeUndefined();
  expect(headerOf('third', '/api/third-with-headers')).toBeUndefined();
  expect(headerOf('third', '/api/third-with-headers', 'x-app')).toBe('kept');
  expect(headerOf('app', '/api/xhr-same')).toMatch(tp);
  expect(headerOf('app', '/api/xhr-same', 'x-app')).toBe('1');
  expect(headerOf('third', '/api/xhr-third')).toBeUndefined();
  expect(headerOf('allowed', '/api/xhr-allowed')).toMatch(tp);
  // The tracer's baggage goes where traceparent goes; a request with its own keeps its members,
  // and gets the tracer's after them.
  for (const [server, path] of [['app', '/api/same?q=secret'], ['allowed', '/api/allowed'], ['app', '/api/xhr-same'], ['allowed', '/api/xhr-allowed']]) {
    expect(headerOf(server!, path!, 'baggage'), path).toBe('tenant=acme%20corp');
  }
  expect(headerOf('app', '/api/own-baggage', 'baggage')).toBe('app=1,tenant=acme%20corp');
  expect(headerOf('app', '/api/own-baggage')).toMatch(tp);
  for (const r of s.seen.filter((r) => r.server === 'third')) {
    expect(r.headers.tracestate).toBeUndefined();
    expect(r.headers.baggage).toBeUndefined();
  }

  await flush(page);
  await expect.poll(() => s.spans().filter((x) => x.kind === 3 && String(x.attrs['url.full']).includes('/api/')).length).toBe(8);
  const spans = s.spans().filter((x) => x.kind === 3 && String(x.attrs['url.full']).includes('/api/'));
  // The header names the span that made the call, so the server's span becomes its child.
  const same = spans.find((x) => String(x.attrs['url.full']).includes('/api/same'))!;
  expect(headerOf('app', '/api/same?q=secret')).toBe(`00-${same.traceId}-${same.spanId}-0${(headerOf('app', '/api/same?q=secret') as string).slice(-1)}`);
  expect(same.name).toBe('GET');
  expect(same.attrs).toMatchObject({
    'http.request.method': 'GET',
    'url.full': `${s.app}/api/same?q=[REDACTED]`,
    'server.address': '127.0.0.1',
    'http.response.status_code': 200,
    'edgetrace.http.body_outcome': 'complete',
  });
  const xhrSpan = spans.find((x) => String(x.attrs['url.full']).includes('/api/xhr-same'))!;
  expect(xhrSpan.attrs['http.response.status_code']).toBe(200);
  // Our own export requests to /v1/traces are never traced.
  expect(spans.some((x) => String(x.attrs['url.full']).includes('/v1/traces'))).toBe(false);
  expect(await pageErrors(page)).toEqual([]);
});

test('a generation around a call that did not stream gets its usage, by fetch or XMLHttpRequest', async ({ page }) => {
  await page.goto(s.page('/usage.html', testPage({ init: '{}' })));
  await ready(page);
  const answers = await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const xhr = (type: XMLHttpRequestResponseType) =>
      new Promise<unknown>((resolve, reject) => {
        const x = new XMLHttpRequest();
        x.open('POST', '/api/completion');
        x.responseType = type;
        x.onload = () => resolve(type === 'json' ? x.response : JSON.parse(x.responseText));
        x.onerror = () => reject(new Error('xhr failed'));
        x.send('{}');
      });
    const trace = w.tracer.createTrace('usage');
    const out = [
      await trace.generation('by-fetch', { model: 'gpt-4o' }, async () => (await fetch('/api/completion', { method: 'POST', body: '{}' })).json()),
      await trace.generation('by-xhr-json', { model: 'gpt-4o' }, () => xhr('json')),
      await trace.generation('by-xhr-text', { model: 'gpt-4o' }, () => xhr('')),
    ];
    trace.finish();
    return out;
  });
  expect(answers).toHaveLength(3);
  for (const a of answers) expect(a).toMatchObject({ object: 'chat.completion', usage: { total_tokens: 38 } });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'usage')).toBeDefined();
  for (const name of ['by-fetch', 'by-xhr-json', 'by-xhr-text']) {
    const gen = s.spans().find((x) => x.name === name)!;
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string), name).toEqual({ input: 31, output: 7, total: 38 });
    expect(gen.attrs['gen_ai.usage.input_tokens'], name).toBe(31);
  }
  expect(await pageErrors(page)).toEqual([]);
});

test('Request objects, Headers, tuples and plain objects keep their headers and bodies', async ({ page }) => {
  await page.goto(s.page('/forms.html', testPage({ init: '{}' })));
  await ready(page);
  const out = await page.evaluate(async () => {
    const h = new Headers({ 'x-app': 'headers' });
    const r1 = await fetch('/api/h1', { method: 'POST', headers: h, body: 'b1' });
    const r2 = await fetch('/api/h2', { method: 'POST', headers: [['x-app', 'tuples']], body: 'b2' });
    const r3 = await fetch('/api/h3', { method: 'PUT', headers: { 'x-app': 'object' }, body: 'b3' });
    const req = new Request('/api/h4', { method: 'POST', headers: { 'x-app': 'request' }, body: 'b4' });
    const r4 = await fetch(req);
    return {
      statuses: [r1.status, r2.status, r3.status, r4.status],
      callerHeadersUntouched: !h.has('traceparent') && !req.headers.has('traceparent'),
      requestUsed: req.bodyUsed,
      instance: r4 instanceof Response,
      url: r4.url,
    };
  });
  expect(out).toEqual({ statuses: [200, 200, 200, 200], callerHeadersUntouched: true, requestUsed: true, instance: true, url: `${s.app}/api/h4` });
  for (const [path, value] of [['/api/h1', 'headers'], ['/api/h2', 'tuples'], ['/api/h3', 'object'], ['/api/h4', 'request']]) {
    expect(headerOf('app', path!, 'x-app')).toBe(value);
    expect(headerOf('app', path!)).toBeDefined();
  }
  expect(s.seen.find((r) => r.path === '/api/h3')?.method).toBe('PUT');
});

test('failures come back exactly as without the SDK', async ({ page }) => {
  await page.goto(s.page('/fail.html', testPage({ setup: 'window.rawFetch = window.fetch;' })));
  await ready(page);
  const run = () =>
    page.evaluate(async (third) => {
      const f = window.fetch;
      const describe = async (p: () => Promise<Response>) => {
        try {
          const r = await p();
          return `ok ${r.status} ${await r.text()}`;
        } catch (e) {
          return `rejected ${(e as Error).name}: ${(e as Error).message}`;
        }
      };
      const ctrl = new AbortController();
      ctrl.abort();
      return [
        await describe(() => f('/api/error')),
        await describe(() => f('http://127.0.0.1:9/refused')),
        await describe(() => f('/api/x', { signal: ctrl.signal })),
        await describe(() => f('/api/x', { headers: { 'bad header': 'x' } })),
        await describe(() => f(`${third}/api/no-cors`, { mode: 'no-cors' })),
        await describe(() => f('/api/x', { method: 'GET', body: 'not allowed' })),
      ];
    }, s.third);
  const without = await run();
  await page.evaluate(() => {
    const w = window as unknown as { tracer: unknown; et: { init(o: object): unknown; createOtlpExporter(o: object): unknown } };
    w.tracer = w.et.init({ exporter: w.et.createOtlpExporter({ url: '/v1/traces' }), batch: { delayMs: 20 } });
  });
  const withSdk = await run();
  expect(withSdk).toEqual(without);
  expect(withSdk[0]).toBe('ok 500 broken');
  expect(withSdk[1]).toMatch(/^rejected TypeError/);
  expect(withSdk[2]).toMatch(/^rejected AbortError/);
  await flush(page);
  await expect.poll(() => s.spans().filter((x) => x.attrs['error.type'] !== undefined).length).toBeGreaterThanOrEqual(3);
  const err = s.spans().find((x) => x.attrs['http.response.status_code'] === 500)!;
  expect(err.attrs['error.type']).toBe('500');
  expect(err.status).toBe(2);
  expect(await pageErrors(page)).toEqual([]);
});

test('a failure the page never handles still reaches unhandledrejection, as without the SDK', async ({ page }) => {
  await page.goto(s.page('/unhandled.html', testPage({})));
  await ready(page);
  const run = async () => {
    await page.evaluate(async () => {
      (window as unknown as { __errors: string[] }).__errors.length = 0;
      void fetch('http://127.0.0.1:9/refused');
      void fetch('/api/error').then((r) => r.json());
      void fetch('/api/error').then((r) => r.text()).then((t) => JSON.parse(t));
      const res = await fetch('/api/error');
      void res.arrayBuffer().then(() => Promise.reject(new Error('after the body')));
      await new Promise((r) => setTimeout(r, 300));
    });
    return (await pageErrors(page)).map((e) => e.replace(/\s+/g, ' ')).sort();
  };
  const without = await run();
  expect(without).toContain('unhandled rejection: TypeError: Failed to fetch');
  expect(without).toContain('unhandled rejection: Error: after the body');
  await page.evaluate(() => {
    const w = window as unknown as { tracer: unknown; et: { init(o: object): unknown; createOtlpExporter(o: object): unknown } };
    w.tracer = w.et.init({ exporter: w.et.createOtlpExporter({ url: '/v1/traces' }), batch: { delayMs: 20 } });
  });
  expect(await run()).toEqual(without);
});

test('an XHR the app aborts once its response is in still ends, with its status', async ({ page }) => {
  await page.goto(s.page('/xhr-abort.html', testPage({ init: '{}' })));
  await ready(page);
  const events = await page.evaluate(async () => {
    const seen: string[] = [];
    // A wrapper honouring an AbortSignal: `finally` aborts between load and loadend.
    const request = (url: string, signal: AbortSignal) =>
      new Promise<string>((resolve, reject) => {
        const x = new XMLHttpRequest();
        signal.addEventListener('abort', () => x.abort());
        x.open('GET', url);
        x.onload = () => resolve(x.responseText);
        x.onerror = () => reject(new Error('xhr failed'));
        x.onloadend = () => seen.push(`loadend ${x.readyState}`);
        x.send();
      });
    const c = new AbortController();
    try {
      await request('/api/xhr-finally-abort', c.signal);
    } finally {
      c.abort();
    }
    // abort() from the app's own handler at DONE: Chromium then fires neither load nor loadend.
    await new Promise<void>((resolve) => {
      const x = new XMLHttpRequest();
      x.open('GET', '/api/xhr-abort-at-done');
      x.onreadystatechange = () => {
        if (x.readyState !== 4) return;
        x.abort();
        resolve();
      };
      x.onloadend = () => seen.push('loadend after abort at DONE');
      x.send();
    });
    await new Promise((r) => setTimeout(r, 100));
    return seen;
  });
  // What makes this case: the request's own loadend comes with the XHR reset to UNSENT.
  expect(events).toEqual(['loadend 0']);
  await flush(page);
  const spanOf = (path: string) => s.spans().find((x) => x.kind === 3 && String(x.attrs['url.full']).endsWith(path));
  await expect.poll(() => [spanOf('/api/xhr-finally-abort'), spanOf('/api/xhr-abort-at-done')].filter(Boolean).length).toBe(2);
  for (const path of ['/api/xhr-finally-abort', '/api/xhr-abort-at-done']) {
    expect(spanOf(path)!.attrs['http.response.status_code']).toBe(200);
    expect(spanOf(path)!.status).not.toBe(2);
  }
  expect(await pageErrors(page)).toEqual([]);
});

test('a response without a body (204, HEAD) ends its span with the headers, not as unread a second later', async ({ page }) => {
  await page.goto(s.page('/no-body.html', testPage({ init: '{}' })));
  await ready(page);
  const bodies = await page.evaluate(async () => {
    const a = await fetch('/api/no-content', { method: 'POST', body: 'x' });
    const b = await fetch('/api/head-only', { method: 'HEAD' });
    // Chromium hands out an empty body object for both, which is why they looked unread.
    return [a.status, a.body === null, b.status, b.body === null];
  });
  expect(bodies).toEqual([204, false, 200, false]);
  await flush(page);
  const spanOf = (path: string) => s.spans().find((x) => x.kind === 3 && String(x.attrs['url.full']).endsWith(path));
  await expect.poll(() => [spanOf('/api/no-content'), spanOf('/api/head-only')].filter(Boolean).length).toBe(2);
  for (const path of ['/api/no-content', '/api/head-only']) {
    const span = spanOf(path)!;
    expect(span.attrs['edgetrace.http.body_outcome']).toBeUndefined();
    // The unread path would have held it for UNREAD_MS (1 s).
    expect(span.endMs - span.startMs).toBeLessThan(500);
  }
});

test('a response nobody read when the page goes away ends at its headers, not at the last moment', async ({ page }) => {
  await page.goto(s.page('/unread-at-hide.html', testPage({ init: '{}' })));
  await ready(page);
  await page.evaluate(async () => {
    await fetch('/api/prep');
    await new Promise((r) => setTimeout(r, 400));
    // A reload or tab close within a second of it, before the unread check.
    dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
  });
  await flush(page);
  const spanOf = () => s.spans().find((x) => x.kind === 3 && String(x.attrs['url.full']).endsWith('/api/prep'));
  await expect.poll(spanOf).toBeDefined();
  const span = spanOf()!;
  expect(span.attrs['edgetrace.http.body_outcome']).toBe('unread');
  expect(span.attrs['edgetrace.unfinished']).toBeUndefined();
  expect(span.endMs - span.startMs).toBeLessThan(300);
});

test('a fetch the page made read-only goes untraced, and the rest of the instrumentation still runs', async ({ page }) => {
  const head = `<script>Object.defineProperty(window, 'fetch', { value: window.fetch, writable: false, configurable: true });</script>`;
  await page.goto(s.page('/locked-fetch.html', testPage({ head, init: '{}' })));
  await ready(page);
  const patched = await page.evaluate(async () => {
    await fetch('/api/locked-fetch');
    await new Promise<void>((resolve) => {
      const x = new XMLHttpRequest();
      x.open('GET', '/api/locked-xhr');
      x.onloadend = () => resolve();
      x.send();
    });
    return XMLHttpRequest.prototype.send.toString().includes('[native code]');
  });
  expect(patched).toBe(false);
  await flush(page);
  const spanOf = (path: string) => s.spans().find((x) => x.kind === 3 && String(x.attrs['url.full']).endsWith(path));
  await expect.poll(() => spanOf('/api/locked-xhr')).toBeDefined();
  expect(spanOf('/api/locked-fetch')).toBeUndefined();
  expect(headerOf('app', '/api/locked-fetch')).toBeUndefined();
  expect(headerOf('app', '/api/locked-xhr')).toMatch(/^00-/);
  expect(await pageErrors(page)).toEqual([]);
});

test('beside Sentry-style and OpenTelemetry-style wrappers, the server gets one traceparent and both sides baggage', async ({ page }) => {
  const other = '00-11111111111111111111111111111111-2222222222222222-01';
  // Before init(): XHR instrumentation as Sentry's (open() wraps setRequestHeader on the instance
  // to note headers; send() adds its own unless noted), and a fetch wrapper as OpenTelemetry's
  // (it sets its traceparent over the fields of a Request).
  const head = `<script>
    (function () {
      var proto = XMLHttpRequest.prototype, open = proto.open, send = proto.send;
      proto.open = function () {
        var noted = (this.__noted = {}), own = this.setRequestHeader;
        this.setRequestHeader = function (name, value) { noted[String(name).toLowerCase()] = value; return own.call(this, name, value); };
        return open.apply(this, arguments);
      };
      proto.send = function () {
        var noted = this.__noted || {};
        if (!noted.traceparent) this.setRequestHeader('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
        if (!/sentry-/.test(noted.baggage || '')) this.setRequestHeader('baggage', 'sentry-trace_id=0af7651916cd43dd8448eb211c80319c');
        return send.apply(this, arguments);
      };
      var native = window.fetch;
      window.fetch = function (input, init) {
        if (input instanceof Request) input.headers.set('traceparent', '${other}');
        return native.call(this, input, init);
      };
    })();
  </script>`;
  // After init(): fetch instrumentation as Sentry's default mode, which adds its baggage first.
  const setup = `
    const inner = window.fetch;
    window.fetch = function (input, init) {
      if (input instanceof Request) return inner.call(this, input, init);
      return inner.call(this, input, { ...init, headers: { ...init?.headers, baggage: 'sentry-sampled=true' } });
    };`;
  await page.goto(s.page('/coexist.html', testPage({ head, init: `{ baggage: { tenant: 'acme' } }`, setup })));
  await ready(page);
  await page.evaluate(async () => {
    await new Promise<void>((resolve) => {
      const x = new XMLHttpRequest();
      x.open('GET', '/api/sentry-xhr');
      x.onloadend = () => resolve();
      x.send();
    });
    await (await fetch('/api/sentry-fetch')).text();
    await (await fetch(new Request('/api/otel-request'))).text();
  });
  expect(headerOf('app', '/api/sentry-xhr', 'baggage')).toBe('tenant=acme, sentry-trace_id=0af7651916cd43dd8448eb211c80319c');
  expect(headerOf('app', '/api/sentry-fetch', 'baggage')).toBe('sentry-sampled=true,tenant=acme');
  expect(headerOf('app', '/api/otel-request')).toBe(other);
  await flush(page);
  const spanOf = (path: string) => s.spans().find((x) => x.kind === 3 && String(x.attrs['url.full']).endsWith(path));
  await expect.poll(() => ['/api/sentry-xhr', '/api/sentry-fetch', '/api/otel-request'].filter((p) => spanOf(p)).length).toBe(3);
  for (const path of ['/api/sentry-xhr', '/api/sentry-fetch']) {
    const span = spanOf(path)!;
    expect(headerOf('app', path)).toMatch(new RegExp(`^00-${span.traceId}-${span.spanId}-0[13]$`));
    expect(span.attrs['edgetrace.propagation'], path).toBeUndefined();
  }
  expect(spanOf('/api/otel-request')!.attrs['edgetrace.propagation']).toBe('overridden');
  expect(await pageErrors(page)).toEqual([]);
});

test('a fetch polyfill made of XMLHttpRequest, installed before init(), keeps the headers and is traced once', async ({ page }) => {
  // As whatwg-fetch forced onto window.fetch: a Headers class of its own that copies only from
  // itself, pairs and plain objects; the request goes by XHR; the response is its own object.
  const head = `<script>
    (function () {
      function PolyHeaders(init) {
        var map = (this.map = {});
        var add = function (name, value) { name = String(name).toLowerCase(); map[name] = map[name] ? map[name] + ', ' + value : String(value); };
        if (init instanceof PolyHeaders) Object.keys(init.map).forEach(function (n) { add(n, init.map[n]); });
        else if (Array.isArray(init)) init.forEach(function (pair) { add(pair[0], pair[1]); });
        else if (init) Object.getOwnPropertyNames(init).forEach(function (n) { add(n, init[n]); });
      }
      PolyHeaders.prototype.get = function (name) { var v = this.map[String(name).toLowerCase()]; return v === undefined ? null : v; };
      PolyHeaders.prototype[Symbol.iterator] = function () { var map = this.map; return Object.keys(map).map(function (n) { return [n, map[n]]; })[Symbol.iterator](); };
      window.PolyHeaders = PolyHeaders;
      window.fetch = function (url, init) {
        return new Promise(function (resolve, reject) {
          var headers = new PolyHeaders(init && init.headers), x = new XMLHttpRequest();
          x.open((init && init.method) || 'GET', url, true);
          Object.keys(headers.map).forEach(function (n) { x.setRequestHeader(n, headers.map[n]); });
          x.onload = function () {
            resolve({ status: x.status, ok: x.status < 300, headers: new PolyHeaders({ 'content-type': x.getResponseHeader('content-type') || '' }), text: function () { return Promise.resolve(x.responseText); } });
          };
          x.onerror = function () { reject(new TypeError('Network request failed')); };
          x.send((init && init.body) || null);
        });
      };
    })();
  </script>`;
  await page.goto(s.page('/polyfill.html', testPage({ head, init: '{}' })));
  await ready(page);
  const errors = await page.evaluate(async () => {
    const w = window as unknown as { PolyHeaders: new (init: object) => HeadersInit; et: { internalErrorCount(): number } };
    const before = w.et.internalErrorCount();
    await (await fetch('/api/poly-pairs', { headers: [['x-app', 'pairs']] })).text();
    await (await fetch('/api/poly-class', { headers: new w.PolyHeaders({ 'x-app': 'class' }) })).text();
    return w.et.internalErrorCount() - before;
  });
  expect(errors).toBe(0);
  for (const [path, value] of [['/api/poly-pairs', 'pairs'], ['/api/poly-class', 'class']]) {
    expect(headerOf('app', path!, 'x-app')).toBe(value);
    expect(headerOf('app', path!)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/);
  }
  await flush(page);
  const polySpans = () => s.spans().filter((x) => x.kind === 3 && String(x.attrs['url.full']).includes('/api/poly-'));
  await expect.poll(() => polySpans().length).toBeGreaterThanOrEqual(2);
  // Give a second, XHR span of the same requests time to arrive.
  await page.waitForTimeout(300);
  await flush(page);
  expect(polySpans()).toHaveLength(2);
  for (const span of polySpans()) {
    const path = new URL(String(span.attrs['url.full'])).pathname;
    expect(headerOf('app', path)).toBe(`00-${span.traceId}-${span.spanId}-0${(headerOf('app', path) as string).slice(-1)}`);
  }
  expect(await pageErrors(page)).toEqual([]);
});

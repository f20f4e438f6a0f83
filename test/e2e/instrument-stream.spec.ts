import { readFile } from 'node:fs/promises';
import { test, expect } from '@playwright/test';
import { flush, pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// Streamed responses in real Chromium: the fetch span follows the body as the app reads it,
// SSE events are counted and feed the enclosing generation, and nothing is buffered.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());
test.beforeEach(() => s.reset());

const httpSpan = (path: string) => s.spans().find((x) => x.kind === 3 && x.name !== 'document fetch' && String(x.attrs['url.full']).includes(path));

test('an SSE stream read to the end sets first-token time and usage on the generation', async ({ page }) => {
  await page.goto(s.page('/sse.html', testPage({ init: '{}' })));
  await ready(page);
  const out = await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('chat-turn');
    const result = await trace.generation('llm', { model: 'gpt-4o-mini' }, async () => {
      const res = await fetch('/sse?n=8');
      const facts = {
        instance: res instanceof Response,
        url: res.url,
        type: res.headers.get('content-type'),
        ok: res.ok,
      };
      // Read the way chat UIs do: a reader and a decoder, chunk by chunk.
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      return { ...facts, events: text.split('\n\n').filter(Boolean).length };
    });
    trace.finish();
    return result;
  });
  expect(out).toEqual({ instance: true, url: `${s.app}/sse?n=8`, type: 'text/event-stream', ok: true, events: 11 });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'chat-turn')).toBeDefined();
  const gen = s.spans().find((x) => x.name === 'llm')!;
  const http = httpSpan('/sse')!;
  expect(http.parentId).toBe(gen.spanId);
  expect(http.attrs).toMatchObject({ 'edgetrace.sse.events': 11, 'edgetrace.http.body_outcome': 'complete', 'http.response.status_code': 200 });
  expect(http.attrs['edgetrace.http.body_chunks']).toBeGreaterThanOrEqual(1);
  expect(http.attrs['edgetrace.http.time_to_first_chunk_ms']).toBeGreaterThanOrEqual(http.attrs['edgetrace.http.time_to_headers_ms'] as number);
  expect(http.events.map((e) => e.name)).toContain('first_chunk');
  // The span covers the body: it ends after the last event, ~11 events 5 ms apart.
  expect(http.endMs - http.startMs).toBeGreaterThan(40);
  const first = Date.parse(gen.attrs['langfuse.observation.completion_start_time'] as string);
  expect(first).toBeGreaterThanOrEqual(Math.floor(gen.startMs));
  expect(first).toBeLessThanOrEqual(Math.ceil(http.endMs));
  expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 21, output: 8, total: 29 });
  expect(gen.attrs['gen_ai.usage.input_tokens']).toBe(21);
  expect(s.seen.find((r) => r.path === '/sse?n=8')?.headers.traceparent).toBe(
    `00-${http.traceId}-${http.spanId}-${(s.seen.find((r) => r.path === '/sse?n=8')!.headers.traceparent as string).slice(-2)}`,
  );
  expect(await pageErrors(page)).toEqual([]);
});

test('an SSE stream cancelled halfway ends its span as cancelled and stops the server', async ({ page }) => {
  await page.goto(s.page('/sse-cancel.html', testPage({ init: '{}' })));
  await ready(page);
  const got = await page.evaluate(async () => {
    const res = await fetch('/sse-slow?n=50');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (text.split('\n\n').length <= 3) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel('user pressed stop');
    return text.split('\n\n').filter(Boolean).length;
  });
  expect(got).toBeGreaterThanOrEqual(3);
  await expect.poll(() => s.sseCancelled).toBe(1);
  await flush(page);
  await expect.poll(() => httpSpan('/sse-slow')).toBeDefined();
  const http = httpSpan('/sse-slow')!;
  expect(http.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'cancelled', 'edgetrace.cancelled': true });
  expect(http.attrs['edgetrace.sse.events']).toBeGreaterThanOrEqual(3);
  expect(http.attrs['edgetrace.sse.events']).toBeLessThan(20);
  expect(await pageErrors(page)).toEqual([]);
});

test('an endless stream read for a while keeps memory flat', async ({ page, browser }) => {
  test.setTimeout(60_000);
  await page.goto(s.page('/endless.html', testPage({ init: '{}' })));
  await ready(page);
  const cdp = await page.context().newCDPSession(page);
  const heap = async (): Promise<number> => {
    await cdp.send('HeapProfiler.collectGarbage');
    const u = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
    // ArrayBuffer contents (the body's chunks) live outside the JS heap: count them too.
    return u.usedSize + (u.backingStorageSize ?? 0);
  };
  // Chromium may buffer a body in the renderer's native memory (a clone()'s tee does), which the
  // JS heap does not show: the renderer processes' resident memory does.
  const browserCdp = await browser.newBrowserCDPSession();
  const rendererRss = async (): Promise<number | undefined> => {
    const info = (await browserCdp.send('SystemInfo.getProcessInfo')) as { processInfo: { type: string; id: number }[] };
    let sum = 0;
    for (const p of info.processInfo.filter((p) => p.type === 'renderer')) {
      const status = await readFile(`/proc/${p.id}/status`, 'utf8').catch(() => undefined);
      const kb = status && /VmRSS:\s+(\d+)/.exec(status)?.[1];
      if (!kb) return undefined;
      sum += Number(kb) * 1024;
    }
    return sum;
  };
  await page.evaluate(async () => {
    const w = window as unknown as { readTo(n: number): Promise<number>; endless: ReadableStreamDefaultReader<Uint8Array> };
    const res = await fetch('/endless');
    w.endless = res.body!.getReader();
    let total = 0;
    w.readTo = async (n: number) => {
      while (total < n) {
        const { done, value } = await w.endless.read();
        if (done) break;
        total += value.byteLength;
      }
      return total;
    };
  });
  const MB = 1024 * 1024;
  const readTo = (n: number) => page.evaluate((bytes) => (window as unknown as { readTo(n: number): Promise<number> }).readTo(bytes), n);
  await readTo(32 * MB);
  const before = await heap();
  const rssBefore = await rendererRss();
  const total = await readTo(32 * MB + 320 * MB);
  const after = await heap();
  const rssAfter = await rendererRss();
  expect(total).toBeGreaterThanOrEqual(352 * MB);
  // 320 MB went through; a body kept by a clone() or a buffer would show as hundreds of MB.
  expect(after - before).toBeLessThan(16 * MB);
  if (rssBefore !== undefined && rssAfter !== undefined) expect(rssAfter - rssBefore).toBeLessThan(96 * MB);
  expect((await cdp.send('Runtime.getHeapUsage')) as object).toHaveProperty('backingStorageSize');

  await page.evaluate(() => (window as unknown as { endless: ReadableStreamDefaultReader }).endless.cancel());
  await expect.poll(() => s.endlessClosed).toBe(1);
  await flush(page);
  await expect.poll(() => httpSpan('/endless')).toBeDefined();
  const http = httpSpan('/endless')!;
  expect(http.attrs['edgetrace.http.body_outcome']).toBe('cancelled');
  expect(http.attrs['edgetrace.http.body_bytes']).toBeGreaterThanOrEqual(352 * MB);
  expect(await pageErrors(page)).toEqual([]);
});

// Installed before init(): records the Response objects the browser's fetch resolves with.
const NATIVES = `<script>
  window.natives = [];
  const nativeFetch = window.fetch;
  window.fetch = function (...args) { return nativeFetch.apply(this, args).then((r) => (window.natives.push(r), r)); };
</script>`;

test("the page gets fetch's own Response, and clone(), json(), text(), headers and url work", async ({ page }) => {
  await page.goto(s.page('/response.html', testPage({ init: '{}', head: NATIVES })));
  await ready(page);
  const out = await page.evaluate(async () => {
    const natives = (window as unknown as { natives: Response[] }).natives;
    const res = await fetch('/api/resp?x=1');
    const same = res === natives.at(-1);
    const identity = { same, constructor: res.constructor === Response, ownKeys: Reflect.ownKeys(res).length, keys: Object.keys(res).length };
    const copy = res.clone();
    const headersFrozen = (() => {
      try {
        res.headers.set('x', 'y');
        return false;
      } catch {
        return true;
      }
    })();
    const [a, b] = await Promise.all([res.json(), copy.text()]);
    const again = await fetch('/api/resp2');
    const blob = await again.blob();
    return {
      identity,
      a,
      b: JSON.parse(b),
      copyUrl: copy.url,
      copyInstance: copy instanceof Response,
      bodyUsed: res.bodyUsed,
      headersFrozen,
      redirected: res.redirected,
      type: res.type,
      blobType: blob.type,
    };
  });
  expect(out).toEqual({
    identity: { same: true, constructor: true, ownKeys: 0, keys: 0 },
    a: { server: 'app', path: '/api/resp' },
    b: { server: 'app', path: '/api/resp' },
    copyUrl: `${s.app}/api/resp?x=1`,
    copyInstance: true,
    bodyUsed: true,
    headersFrozen: true,
    redirected: false,
    type: 'basic',
    blobType: 'application/json',
  });
});

test('json(), text(), arrayBuffer() and blob() end the span when they settle, with status and bytes', async ({ page }) => {
  await page.goto(s.page('/methods.html', testPage({ init: '{}' })));
  await ready(page);
  const sizes = await page.evaluate(async () => {
    const json = JSON.stringify(await (await fetch('/api/m-json')).json()).length;
    const text = (await (await fetch('/api/m-text')).text()).length;
    const buffer = (await (await fetch('/api/m-buffer')).arrayBuffer()).byteLength;
    const blob = (await (await fetch('/api/m-blob')).blob()).size;
    const error = (await (await fetch('/api/error')).text()).length;
    return { json, text, buffer, blob, error };
  });
  await flush(page);
  await expect.poll(() => ['/api/m-json', '/api/m-text', '/api/m-buffer', '/api/m-blob', '/api/error'].every((p) => httpSpan(p))).toBe(true);
  const body = (path: string) => JSON.stringify({ server: 'app', path }).length;
  for (const [path, read] of [['/api/m-json', sizes.json], ['/api/m-text', sizes.text], ['/api/m-buffer', sizes.buffer], ['/api/m-blob', sizes.blob]] as const) {
    expect(read).toBe(body(path));
    expect(httpSpan(path)!.attrs, path).toMatchObject({ 'http.response.status_code': 200, 'edgetrace.http.body_outcome': 'complete' });
    // json() does not tell its bytes, and this server sends no Content-Length.
    expect(httpSpan(path)!.attrs['edgetrace.http.body_bytes'], path).toBe(path === '/api/m-json' ? undefined : body(path));
    expect(httpSpan(path)!.endMs).toBeGreaterThanOrEqual(httpSpan(path)!.startMs + (httpSpan(path)!.attrs['edgetrace.http.time_to_headers_ms'] as number));
  }
  const failed = httpSpan('/api/error')!;
  expect(failed.attrs).toMatchObject({ 'http.response.status_code': 500, 'error.type': '500', 'edgetrace.http.body_bytes': sizes.error });
  expect(failed.status).toBe(2);
  expect(await pageErrors(page)).toEqual([]);
});

test('an SSE stream read with text() still marks the first token when it arrives, not at the end', async ({ page }) => {
  await page.goto(s.page('/sse-text.html', testPage({ init: '{}' })));
  await ready(page);
  const text = await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('chat-turn');
    const out = await trace.generation('llm', { model: 'gpt-4o-mini' }, async () => (await fetch('/sse-slow?n=8&read=text')).text());
    trace.finish();
    return out as string;
  });
  expect(text).toContain('[DONE]');
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'chat-turn')).toBeDefined();
  const gen = s.spans().find((x) => x.name === 'llm')!;
  // Query values are redacted in url.full; the key tells this request from the other slow streams.
  const http = httpSpan('&read=')!;
  expect(http.attrs).toMatchObject({ 'edgetrace.sse.events': 11, 'edgetrace.http.body_outcome': 'complete', 'edgetrace.http.body_bytes': text.length });
  const first = Date.parse(gen.attrs['langfuse.observation.completion_start_time'] as string);
  // 11 events 30 ms apart, so about 300 ms from the first to the end: the first token is marked
  // when it arrives, well before the body ends. (At 5 ms apart, a loaded machine's timers could
  // send several events in one chunk, and the margin shrank to a few milliseconds.)
  expect(http.endMs - first).toBeGreaterThan(100);
  expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 21, output: 8, total: 29 });
  expect(await pageErrors(page)).toEqual([]);
});

test('a generation that awaits before its fetch still gets the request, its usage and first token', async ({ page }) => {
  await page.goto(s.page('/sse-after-await.html', testPage({ init: '{}' })));
  await ready(page);
  await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('chat-turn');
    await trace.generation('llm', { model: 'gpt-4o-mini' }, async () => {
      // A token or a setting read first: the page has no async context past this point.
      await new Promise((resolve) => setTimeout(resolve, 20));
      return (await fetch('/sse?n=8&after=await')).text();
    });
    trace.finish();
  });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'chat-turn')).toBeDefined();
  const gen = s.spans().find((x) => x.name === 'llm')!;
  const http = httpSpan('&after=')!;
  expect(http.parentId).toBe(gen.spanId);
  expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 21, output: 8, total: 29 });
  expect(gen.attrs['langfuse.observation.completion_start_time']).toEqual(expect.any(String));
  expect(await pageErrors(page)).toEqual([]);
});

test('a generation whose app starts reading 1.5 s after the headers still gets its usage', async ({ page }) => {
  await page.goto(s.page('/sse-late-read.html', testPage({ init: '{}' })));
  await ready(page);
  await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('late-turn');
    await trace.generation('late-llm', { model: 'gpt-4o-mini' }, async () => {
      const res = await fetch('/sse?n=8&late_read=1');
      // Past the second an unread body outside a generation is given up after.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      return res.text();
    });
    trace.finish();
  });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'late-turn')).toBeDefined();
  expect(httpSpan('&late_read=')!.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'complete' });
  const gen = s.spans().find((x) => x.name === 'late-llm')!;
  expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 21, output: 8, total: 29 });
});

test('a stop that aborts with a reason of its own is a cancel too, on the request and on its generation', async ({ page }) => {
  await page.goto(s.page('/abort-reason.html', testPage({ init: '{}' })));
  await ready(page);
  const seen = await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('stopped-turn');
    const out: string[] = [];
    for (const [name, reason] of [
      ['mid-body', new Error('stopped by user')],
      ['before-headers', 'user pressed stop'],
    ] as const) {
      const ctrl = new AbortController();
      try {
        await trace.generation(name, { model: 'gpt-4o-mini' }, async () => {
          if (name === 'before-headers') setTimeout(() => ctrl.abort(reason), 0);
          const res = await fetch(`/sse-slow?n=20&${name === 'mid-body' ? 'mid' : 'pre'}=1`, { signal: ctrl.signal });
          setTimeout(() => ctrl.abort(reason), 60);
          return res.text();
        });
        out.push('read');
      } catch (e) {
        out.push(e === reason ? 'the reason itself' : String(e));
      }
    }
    // A timeout is no one's choice: it stays a failure.
    try {
      await (await fetch('/sse-slow?n=20&late=1', { signal: AbortSignal.timeout(60) })).text();
    } catch (e) {
      out.push((e as Error).name);
    }
    trace.finish();
    return out;
  });
  expect(seen).toEqual(['the reason itself', 'the reason itself', 'TimeoutError']);
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'stopped-turn')).toBeDefined();
  await expect.poll(() => httpSpan('&late=')?.attrs['error.type']).toBe('TimeoutError');
  expect(httpSpan('&late=')!.attrs['edgetrace.cancelled']).toBeUndefined();
  expect(httpSpan('&late=')!.status).toBe(2);
  for (const key of ['&mid=', '&pre=']) {
    const http = httpSpan(key)!;
    expect(http.attrs).toMatchObject({ 'edgetrace.cancelled': true });
    expect(http.status).not.toBe(2);
    expect(http.events.filter((e) => e.name === 'exception')).toEqual([]);
  }
  // The reason, an Error or a text, also reaches the generation the app's code rejected.
  for (const name of ['mid-body', 'before-headers']) {
    const gen = s.spans().find((x) => x.name === name)!;
    expect(gen.attrs).toMatchObject({ 'edgetrace.cancelled': true, 'langfuse.observation.status_message': 'cancelled' });
    expect(gen.status).not.toBe(2);
  }
  expect(await pageErrors(page)).toEqual([]);
});

/**
 * Page code for `readUntil(url, stopAt)`: the loop chat UIs write, which breaks out once the
 * marker is in (and so cancels the stream).
 */
const READ_UNTIL = `window.readUntil = async (url, stopAt) => {
  const res = await fetch(url);
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes(stopAt)) break;
  }
};`;
type ReadUntil = { readUntil(url: string, stopAt: string): Promise<void> };

test('an app that stops reading at [DONE] completed the stream; one that stops before it cancelled it', async ({ page }) => {
  await page.goto(s.page('/sse-break.html', testPage({ init: '{}', setup: READ_UNTIL })));
  await ready(page);
  await page.evaluate(async () => {
    const read = (window as unknown as ReadUntil).readUntil;
    await read('/sse-slow?n=6&at_done=1', 'data: [DONE]');
    await read('/sse-slow?n=20&early=1', 'data: {"choices":[{"delta":{"content":"t2 ');
    // The reader loop hand-written chat UIs use: return at [DONE], neither cancel nor read the close.
    const res = await fetch('/sse-slow?n=6&no_cancel=1');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (text.includes('data: [DONE]')) break;
    }
  });
  await flush(page);
  await expect.poll(() => httpSpan('&early=')).toBeDefined();
  expect(httpSpan('&at_done=')!.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'complete' });
  expect(httpSpan('&at_done=')!.attrs['edgetrace.cancelled']).toBeUndefined();
  expect(httpSpan('&early=')!.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'cancelled', 'edgetrace.cancelled': true });
  // Complete once the reader has stopped (a second without a read), not abandoned ten seconds
  // later, and ended at its last event.
  await expect.poll(async () => (await flush(page), httpSpan('&no_cancel=')), { timeout: 5000 }).toBeDefined();
  const noCancel = httpSpan('&no_cancel=')!;
  expect(noCancel.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'complete', 'edgetrace.sse.events': 9 });
  expect(noCancel.endMs - noCancel.startMs).toBeLessThan(1000);
});

test("a generation whose stream the app stops reading early is cancelled, though its callback ends normally", async ({ page }) => {
  await page.goto(s.page('/sse-gen-break.html', testPage({ init: '{}', setup: READ_UNTIL })));
  await ready(page);
  await page.evaluate(async () => {
    const read = (window as unknown as ReadUntil).readUntil;
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('turn');
    // A stop button that breaks out of the loop (no AbortError reaches the callback).
    await trace.generation('stopped', { model: 'm' }, () => read('/sse-slow?n=20&early=1&g=1', 'data: {"choices":[{"delta":{"content":"t2 '));
    await trace.generation('whole', { model: 'm' }, () => read('/sse-slow?n=6&at_done=1&g=1', 'data: [DONE]'));
    trace.finish();
  });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'turn')).toBeDefined();
  const gen = (name: string) => s.spans().find((x) => x.name === name)!;
  expect(gen('stopped').attrs['edgetrace.cancelled']).toBe(true);
  expect(gen('stopped').status).not.toBe(2);
  expect(gen('whole').attrs['edgetrace.cancelled']).toBeUndefined();
});

test('an abort while the body is read rejects as without the SDK, and the span says cancelled', async ({ page }) => {
  await page.goto(s.page('/abort-body.html', testPage({ setup: 'window.rawFetch = window.fetch;' })));
  await ready(page);
  const run = () =>
    page.evaluate(async () => {
      const describe = async (read: (r: Response) => Promise<unknown>) => {
        const ctrl = new AbortController();
        const res = await fetch('/sse-slow?n=20', { signal: ctrl.signal });
        setTimeout(() => ctrl.abort(), 60);
        try {
          await read(res);
          return 'read';
        } catch (e) {
          return `rejected ${(e as Error).name}: ${(e as Error).message}`;
        }
      };
      return [
        await describe((r) => r.text()),
        await describe(async (r) => {
          const reader = r.body!.getReader();
          for (;;) if ((await reader.read()).done) return;
        }),
      ];
    });
  const without = await run();
  await page.evaluate(() => {
    const w = window as unknown as { tracer: unknown; et: { init(o: object): unknown; createOtlpExporter(o: object): unknown } };
    w.tracer = w.et.init({ exporter: w.et.createOtlpExporter({ url: '/v1/traces' }), batch: { delayMs: 20 } });
  });
  s.reset();
  const withSdk = await run();
  expect(withSdk).toEqual(without);
  expect(withSdk[0]).toMatch(/^rejected AbortError/);
  await flush(page);
  await expect.poll(() => s.spans().filter((x) => String(x.attrs['url.full']).includes('/sse-slow')).length).toBe(2);
  for (const span of s.spans().filter((x) => String(x.attrs['url.full']).includes('/sse-slow'))) {
    // An abort is the app's choice, recorded as a cancelled reader is: not as a failure.
    expect(span.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'cancelled', 'edgetrace.cancelled': true });
    expect(span.attrs['error.type']).toBeUndefined();
    expect(span.status).not.toBe(2);
  }
  expect(await pageErrors(page)).toEqual([]);
});

test('a stream still read when the page leaves ends as unfinished, with what was read, not as a network error', async ({ page }) => {
  await page.goto(s.page('/sse-leave.html', testPage({ init: '{}' })));
  await ready(page);
  const got = await page.evaluate(async () => {
    const res = await fetch('/sse-slow?n=50');
    const reader = res.body!.getReader();
    let chunks = 0;
    while (chunks < 3) if (!(await reader.read()).done) chunks++;
    // Leaving for good (not into the back/forward cache): the browser cuts the body after
    // this, with a TypeError.
    dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
    await reader.cancel(new TypeError('network error'));
    return chunks;
  });
  expect(got).toBe(3);
  await flush(page);
  await expect.poll(() => httpSpan('/sse-slow')).toBeDefined();
  const http = httpSpan('/sse-slow')!;
  expect(http.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'unfinished', 'edgetrace.unfinished': true });
  expect(http.attrs['edgetrace.http.body_chunks']).toBeGreaterThanOrEqual(3);
  expect(http.status).not.toBe(2);
  expect(await pageErrors(page)).toEqual([]);
});

test('a stream read to its last event is complete when the page leaves right after, though the app never read its close', async ({ page }) => {
  await page.goto(s.page('/sse-done-leave.html', testPage({ init: '{}' })));
  await ready(page);
  await page.evaluate(async () => {
    const res = await fetch('/sse-slow?n=4&no_cancel=1&dl=1');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // As chat UIs do: return at [DONE], then the user reloads within the second that follows.
    while (!text.includes('data: [DONE]')) text += decoder.decode((await reader.read()).value, { stream: true });
    dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
  });
  await flush(page);
  await expect.poll(() => httpSpan('&dl=')).toBeDefined();
  const http = httpSpan('&dl=')!;
  expect(http.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'complete', 'edgetrace.sse.events': 7 });
  expect(http.attrs['edgetrace.unfinished']).toBeUndefined();
  expect(await pageErrors(page)).toEqual([]);
});

test('a generation around the fetch alone ends when its stream has been read, with first token and usage', async ({ page }) => {
  await page.goto(s.page('/gen-fetch-only.html', testPage({ init: '{}' })));
  await ready(page);
  await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('chat-turn');
    // As a chat library's fetch option is hooked: the callback returns the response at its headers.
    const res: Response = await trace.generation('answer', { model: 'gpt-4o-mini' }, () => fetch('/sse?n=8'));
    const reader = res.body!.getReader();
    while (!(await reader.read()).done);
    trace.finish();
  });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'chat-turn')).toBeDefined();
  const gen = s.spans().find((x) => x.name === 'answer')!;
  const http = httpSpan('/sse')!;
  expect(gen.attrs['langfuse.observation.completion_start_time']).toBeDefined();
  expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 21, output: 8, total: 29 });
  expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  expect(gen.endMs).toBeGreaterThanOrEqual(http.endMs - 1);
  expect(http.attrs['edgetrace.http.body_outcome']).toBe('complete');
});

test("a generation whose callback returns an SDK's stream object ends when the app has read that stream, with first token and usage", async ({ page }) => {
  await page.goto(s.page('/gen-sdk-stream.html', testPage({ init: '{}' })));
  await ready(page);
  const returnedMs = await page.evaluate(async () => {
    const w = window as unknown as { tracer: { createTrace(n: string): any } };
    const trace = w.tracer.createTrace('chat-turn');
    // As openai's create({ stream: true }): resolved at the headers, the body read when iterated.
    const stream: AsyncIterable<Uint8Array> = await trace.generation('answer', { model: 'gpt-4o-mini' }, async () => {
      const res = await fetch('/sse?n=8&sdk=1');
      return {
        async *[Symbol.asyncIterator]() {
          const reader = res.body!.getReader();
          for (let r = await reader.read(); !r.done; r = await reader.read()) yield r.value;
        },
      };
    });
    const at = performance.timeOrigin + performance.now();
    await new Promise((r) => setTimeout(r, 50));
    for await (const chunk of stream) void chunk;
    trace.finish();
    return at;
  });
  await flush(page);
  await expect.poll(() => s.spans().find((x) => x.name === 'chat-turn')).toBeDefined();
  const gen = s.spans().find((x) => x.name === 'answer')!;
  const http = httpSpan('&sdk=')!;
  expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 21, output: 8, total: 29 });
  expect(Date.parse(gen.attrs['langfuse.observation.completion_start_time'] as string)).toBeGreaterThan(returnedMs - 5);
  expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  expect(gen.endMs).toBeGreaterThanOrEqual(http.endMs - 1);
  expect(gen.endMs).toBeGreaterThan(returnedMs + 40);
  expect(http.attrs['edgetrace.http.body_outcome']).toBe('complete');
  expect(await pageErrors(page)).toEqual([]);
});

test('a trace that ends right after its code stopped reading at the last event keeps the stream complete, with its counts', async ({ page }) => {
  await page.goto(s.page('/withtrace-done.html', testPage({ init: '{}' })));
  await ready(page);
  await page.evaluate(async () => {
    const w = window as unknown as { tracer: { withTrace(n: string, fn: () => Promise<void>): Promise<void> } };
    await w.tracer.withTrace('turn', async () => {
      const res = await fetch('/sse-slow?n=6&no_cancel=1&wt=1');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      // Returns at [DONE]: neither cancel nor a read of the close.
      while (!text.includes('data: [DONE]')) text += decoder.decode((await reader.read()).value, { stream: true });
    });
  });
  await flush(page);
  await expect.poll(() => httpSpan('&wt=')).toBeDefined();
  const http = httpSpan('&wt=')!;
  expect(http.attrs).toMatchObject({ 'edgetrace.http.body_outcome': 'complete', 'edgetrace.sse.events': 9 });
  expect(http.attrs['edgetrace.unfinished']).toBeUndefined();
});

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

test('the wrapped response keeps clone(), json(), text(), headers and url working', async ({ page }) => {
  await page.goto(s.page('/response.html', testPage({ init: '{}' })));
  await ready(page);
  const out = await page.evaluate(async () => {
    const res = await fetch('/api/resp?x=1');
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

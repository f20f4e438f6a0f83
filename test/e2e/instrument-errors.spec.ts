import { test, expect } from '@playwright/test';
import { flush, pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// Uncaught errors and unhandled rejections become exception events, and the page's own
// handlers still see each of them exactly once.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());
test.beforeEach(() => s.reset());

test('an error thrown in a click handler is recorded on the interaction; a later rejection on a span of its own', async ({ page }) => {
  const setup = `
    document.getElementById('boom').addEventListener('click', () => { throw new RangeError('handler broke'); });`;
  // An OAuth-style callback URL: the inline handler's stack frames name it, code and all.
  await page.goto(s.page('/errors.html', testPage({ init: '{}', setup, body: '<button id="boom">Boom</button>' })) + '?code=SECRET123&state=s1');
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#boom');
  await page.waitForTimeout(700);
  await page.evaluate(() => {
    void Promise.reject(new TypeError('nobody caught me'));
  });
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'unhandled rejection'))).toBeDefined();
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'click button#boom'))).toBeDefined();
  const spans = s.spans();
  const click = spans.find((x) => x.name === 'click button#boom')!;
  const clickError = click.events.find((e) => e.name === 'exception')!;
  expect(clickError.attrs).toMatchObject({ 'exception.type': 'RangeError', 'exception.message': 'handler broke' });
  expect(String(clickError.attrs['exception.stacktrace'])).toContain('handler broke');
  expect(String(clickError.attrs['exception.stacktrace'])).toMatch(/errors\.html\?code=\[REDACTED\]&state=\[REDACTED\]:\d+:\d+/);
  expect(JSON.stringify(spans)).not.toContain('SECRET123');
  expect(click.status).toBe(2);
  const rejection = spans.find((x) => x.name === 'unhandled rejection')!;
  expect(rejection.parentId).toBeUndefined();
  expect(rejection.events[0]!.attrs).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'nobody caught me' });
  // The page's own handlers saw both, once each, as they would without the SDK.
  expect(await pageErrors(page)).toEqual(['Uncaught RangeError: handler broke', 'unhandled rejection: TypeError: nobody caught me']);
});

test("an error a framework caught (Vue's errorHandler) is recorded through captureError(), on the interaction or a span of its own", async ({ page }) => {
  // As Vue calls a handler: the error never reaches window.onerror, only the app's error hook.
  const setup = `
    const hook = (error) => window.et.captureError(error);
    document.getElementById('save').addEventListener('click', () => {
      try { throw new TypeError('save failed'); } catch (e) { hook(e); }
    });`;
  await page.goto(s.page('/caught.html', testPage({ init: '{}', setup, body: '<button id="save">Save</button>' })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#save');
  await page.waitForTimeout(700);
  await page.evaluate(() => (window as unknown as { et: { captureError(e: unknown): void } }).et.captureError(new RangeError('in a timer')));
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'caught error'))).toBeDefined();
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'click button#save'))).toBeDefined();
  const click = s.spans().find((x) => x.name === 'click button#save')!;
  expect(click.events.find((e) => e.name === 'exception')!.attrs).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'save failed' });
  expect(click.status).toBe(2);
  const alone = s.spans().find((x) => x.name === 'caught error')!;
  expect(alone.events[0]!.attrs).toMatchObject({ 'exception.type': 'RangeError', 'exception.message': 'in a timer' });
  expect(await pageErrors(page)).toEqual([]);
});

test("an error a span recorded is not recorded again on a later click, a stop is not an error, and a third party's bare 'Script error.' is skipped", async ({ page }) => {
  // The CDN script throws; loaded without CORS, the page sees only "Script error.".
  await page.route(`${s.third}/cdn/widget.js`, (route) => route.fulfill({ contentType: 'text/javascript', body: "throw new Error('widget broke')" }));
  const setup = `
    document.getElementById('send').addEventListener('click', () => {
      // The answer fails after the user clicked Like; the app lets the rejection reach the page.
      void window.et.currentSpan().span('answer', async () => {
        await new Promise((r) => setTimeout(r, 400));
        throw new Error('answer failed');
      });
    });
    document.getElementById('like').addEventListener('click', () => { void fetch('/api/slow?ms=600'); });
    document.getElementById('stop').addEventListener('click', async () => {
      const controller = new AbortController();
      const pending = fetch('/api/slow?ms=300', { signal: controller.signal });
      controller.abort();
      await pending;
    });
    window.addCdnScript = () => {
      const script = document.createElement('script');
      script.src = '${s.third}/cdn/widget.js';
      document.head.append(script);
    };
    window.startWorker = () => new Worker(URL.createObjectURL(new Blob(["throw new TypeError('worker broke')"], { type: 'text/javascript' })));`;
  const body = '<button id="send">Send</button><button id="like">Like</button><button id="stop">Stop</button>';
  await page.goto(s.page('/rethrown.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#send');
  await page.waitForTimeout(100);
  await page.click('#like');
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'answer'))).toBeDefined();
  await page.waitForTimeout(1200);
  await page.click('#stop');
  await page.waitForTimeout(700);
  await page.evaluate(() => (window as unknown as { addCdnScript(): void }).addCdnScript());
  await page.evaluate(() => (window as unknown as { startWorker(): void }).startWorker());
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'uncaught error'))).toBeDefined();
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'click button#stop'))).toBeDefined();
  await page.waitForTimeout(500);
  await flush(page);
  const spans = s.spans();
  const errorsOn = (name: string) => spans.filter((x) => x.name === name).flatMap((x) => x.events.filter((e) => e.name === 'exception').map((e) => e.attrs['exception.message']));
  // Recorded once, where it happened; the Like click that was current when it reached the page is untouched.
  expect(spans.flatMap((x) => x.events.filter((e) => e.attrs['exception.message'] === 'answer failed').map(() => x.name))).toEqual(['answer']);
  expect(spans.find((x) => x.name === 'click button#like')!.status).not.toBe(2);
  // The stop: its request is cancelled, and nothing is an error.
  const stop = spans.find((x) => x.name === 'click button#stop')!;
  expect(errorsOn('click button#stop')).toEqual([]);
  expect(stop.status).not.toBe(2);
  expect(spans.find((x) => x.parentId === stop.spanId && x.attrs['url.full'] !== undefined)!.attrs['edgetrace.cancelled']).toBe(true);
  // The worker's error, typed from its text; the CDN's "Script error." left out.
  expect(spans.filter((x) => x.name === 'uncaught error').map((x) => [x.events[0]!.attrs['exception.type'], x.events[0]!.attrs['exception.message']])).toEqual([['TypeError', 'worker broke']]);
  // The page's own handlers saw all of them, as without the SDK.
  const seen = await pageErrors(page);
  expect(seen).toEqual(expect.arrayContaining(['unhandled rejection: Error: answer failed', 'Script error.', 'Uncaught TypeError: worker broke']));
});

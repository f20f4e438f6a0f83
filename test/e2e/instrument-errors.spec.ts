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

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

import { test, expect } from '@playwright/test';
import { makeSpans, sdkPage, spansNamed, startReceiver, type Receiver, waitForTransport } from '../helpers/receiver';

// 429 with Retry-After: 2 holds every attempt back for two seconds, even one the app asks for.

// Generous: a loaded two-core machine can slow the browser and the worker several times over.
test.setTimeout(90_000);

let rx: Receiver;
test.beforeAll(async () => {
  rx = await startReceiver();
});
test.afterAll(async () => {
  await rx.close();
});

test('429 with Retry-After: 2 makes no attempt before 2 s', async ({ page }) => {
  // Backoff alone would retry after at most 100 ms: only Retry-After can explain the wait.
  await page.goto(sdkPage(rx, '/retry-after.html', { delivery: { flushIntervalMs: 100, backoffBaseMs: 100 } }));
  await waitForTransport(page, 'worker');
  rx.reset();
  rx.failNext(1, 429, { 'retry-after': '2' });
  await makeSpans(page, 10, 'ra-');
  await expect.poll(() => rx.requests.length, { timeout: 20_000 }).toBeGreaterThan(0);
  await expect.poll(() => rx.requests[0]!.endMs, { timeout: 20_000 }).toBeGreaterThan(0);
  // The app asks for a flush in the middle of the wait; Retry-After still holds.
  await page.evaluate(() => (window as unknown as { et: { flushNow(): Promise<unknown> } }).et.flushNow());
  await expect.poll(() => spansNamed(rx, 'ra-').length, { timeout: 30_000, intervals: [250] }).toBe(10);
  expect(rx.requests[0]!.status).toBe(429);
  expect(rx.requests[1]!.startMs - rx.requests[0]!.endMs).toBeGreaterThanOrEqual(2000);
});

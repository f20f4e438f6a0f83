import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// 429 with Retry-After: 2 holds every attempt back for two seconds, even one the app asks for.

const rx = receiverPerFile();

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
  expect(rx.requests[1]!.startMs - rx.requests[0]!.answeredMs!).toBeGreaterThanOrEqual(2000);
});

test('a worker stopped while it waits out Retry-After still waits after it restarts', async ({ context, page }) => {
  await page.goto(sdkPage(rx, '/retry-after-restart.html', { delivery: { flushIntervalMs: 100, backoffBaseMs: 100 } }));
  await waitForTransport(page, 'worker');
  rx.reset();
  rx.failNext(1, 429, { 'retry-after': '5' });
  await makeSpans(page, 10, 'rar-');
  await expect.poll(() => rx.requests[0]?.endMs ?? 0, { timeout: 20_000 }).toBeGreaterThan(0);
  // The wait is kept in the outbox's IndexedDB, which the page can read too (same origin).
  const heldUntil = () =>
    page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const open = indexedDB.open('edgetrace');
          open.onsuccess = () => {
            const get = open.result.transaction('meta').objectStore('meta').get('stats');
            get.onsuccess = () => {
              open.result.close();
              resolve((get.result as { hold?: number[] } | undefined)?.hold?.[0] ?? 0);
            };
          };
        }),
    );
  await expect.poll(heldUntil, { timeout: 10_000 }).toBeGreaterThan(rx.requests[0]!.endMs);

  const cdp = await context.newCDPSession(page);
  const states: { status: string; atMs: number }[] = [];
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => states.push(...versions.map((v) => ({ status: v.runningStatus, atMs: Date.now() }))));
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  // Stopped for real: what it held in memory is gone.
  await expect.poll(() => states.at(-1)?.status, { timeout: 10_000 }).toBe('stopped');
  // The app's call wakes the worker; neither its start-up flush nor flushNow() goes before 5 s.
  await page.evaluate(() => (window as unknown as { et: { flushNow(): Promise<unknown> } }).et.flushNow());
  await expect.poll(() => spansNamed(rx, 'rar-').length, { timeout: 30_000, intervals: [250] }).toBe(10);
  expect(rx.requests[0]!.status).toBe(429);
  expect(rx.requests[1]!.startMs - rx.requests[0]!.answeredMs!).toBeGreaterThanOrEqual(5000);
  // It ran again well inside the 5 s: the wait came from what the outbox kept, not from a slow restart.
  const stoppedAt = states.map((s) => s.status).lastIndexOf('stopped');
  const restarted = states.slice(stoppedAt).find((s) => s.status === 'running');
  expect(restarted?.atMs).toBeLessThan(rx.requests[0]!.endMs + 5000);
});

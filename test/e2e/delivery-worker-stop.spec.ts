import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// The service worker is stopped (CDP ServiceWorker.stopAllWorkers) while its request hangs on a
// stalled receiver: the records were never acknowledged, so they are still in IndexedDB, and the
// restarted worker delivers them.

const rx = receiverPerFile();

test('a worker stopped mid-flush delivers everything after it restarts', async ({ context, page }) => {
  await page.goto(sdkPage(rx, '/stop.html', { delivery: { flushIntervalMs: 100, requestTimeoutMs: 60_000 } }));
  await waitForTransport(page, 'worker');
  rx.stall();
  await makeSpans(page, 30, 'stopped-');
  // The flush is under way: the receiver holds a request carrying our spans.
  await expect
    .poll(() => rx.requests.filter((r) => r.status === 0 && r.spans.some((s) => s.name.startsWith('stopped-'))).length, { timeout: 20_000 })
    .toBeGreaterThan(0);
  const cdp = await context.newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  // The held requests are never answered (their sender is gone); new ones are answered again.
  rx.unstall();
  expect(spansNamed(rx, 'stopped-')).toHaveLength(0);

  // Any page call wakes the worker; its start-up flush sends what the outbox still holds.
  await page.evaluate(() => (window as unknown as { et: { flushNow(): Promise<unknown> } }).et.flushNow());
  await expect.poll(() => spansNamed(rx, 'stopped-').length, { timeout: 30_000, intervals: [250] }).toBe(30);
  await expect.poll(async () => (await statusOf(page)).queued, { timeout: 10_000 }).toBe(0);
});

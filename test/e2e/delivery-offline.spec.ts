import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// Spans ended while the browser is offline wait in the outbox and arrive once it is back online.

const rx = receiverPerFile();

test('spans created offline arrive after going online, none before', async ({ context, page }) => {
  await page.goto(sdkPage(rx, '/offline.html', { delivery: { flushIntervalMs: 100, backoffBaseMs: 200, backoffCapMs: 2000 } }));
  await waitForTransport(page, 'worker');
  await context.setOffline(true);
  await makeSpans(page, 40, 'offline-');
  // Offline, the flusher tries and fails: the records stay queued and the receiver sees nothing.
  await expect.poll(async () => (await statusOf(page)).lastError ?? '', { timeout: 15_000 }).toContain('network error');
  expect((await statusOf(page)).queued).toBeGreaterThanOrEqual(40);
  expect(spansNamed(rx, 'offline-')).toHaveLength(0);
  expect(rx.requests.filter((r) => r.spans.some((s) => s.name.startsWith('offline-')))).toHaveLength(0);

  await context.setOffline(false);
  await expect.poll(() => spansNamed(rx, 'offline-').length, { timeout: 30_000, intervals: [250] }).toBe(40);
  await expect.poll(async () => (await statusOf(page)).queued, { timeout: 10_000 }).toBe(0);
});

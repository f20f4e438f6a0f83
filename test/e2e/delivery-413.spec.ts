import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// A receiver that refuses bodies above 20 kB with 413: batches are split until they fit.

const rx = receiverPerFile();

test('413 above N bytes: batches split, all arrive', async ({ page }) => {
  const LIMIT = 20_000;
  await page.goto(sdkPage(rx, '/split.html', { delivery: { flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  rx.reset();
  rx.maxBytes(LIMIT);
  await makeSpans(page, 300, 'split-');
  await expect.poll(() => spansNamed(rx, 'split-').length, { timeout: 30_000, intervals: [250] }).toBe(300);
  expect(rx.requests.some((r) => r.status === 413)).toBe(true);
  for (const r of rx.requests.filter((q) => q.status === 200)) expect(r.bytes).toBeLessThanOrEqual(LIMIT);
  const status = await statusOf(page);
  expect(status.deadLettered).toBe(0);
  expect(status.queued).toBe(0);
});

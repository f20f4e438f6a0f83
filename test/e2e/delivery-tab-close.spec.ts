import { test, expect } from '@playwright/test';
import { receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// A tab closed right after ending 50 spans: the tail is posted on page hide and all 50 arrive.

const rx = receiverPerFile();

test('a tab closed right after ending 50 spans delivers all 50', async ({ context }) => {
  // A long idle wait, so only the page-hide hand-over can carry the spans before the tab is gone.
  const url = sdkPage(rx, '/close.html', { pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } });
  const keeper = await context.newPage();
  await keeper.goto(url);
  await waitForTransport(keeper, 'worker');
  const page = await context.newPage();
  await page.goto(url);
  await waitForTransport(page, 'worker');
  await page.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(50, 'closing-'));
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'closing-').length, { timeout: 30_000, intervals: [250] }).toBe(50);
});

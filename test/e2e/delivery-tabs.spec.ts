import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// 1,000 spans created across three tabs all reach the receiver through the one service worker.

const rx = receiverPerFile();

test('1,000 spans created across 3 tabs all arrive, none lost', async ({ context }) => {
  const url = sdkPage(rx, '/tabs.html', { delivery: { flushIntervalMs: 200 } });
  const pages = await Promise.all([0, 1, 2].map(() => context.newPage()));
  for (const page of pages) {
    await page.goto(url);
    await waitForTransport(page, 'worker');
  }
  // 334 + 333 + 333 spans in four bursts per tab, so hand-overs and flushes interleave.
  const rounds = [
    [84, 84, 84, 82],
    [84, 84, 84, 81],
    [84, 84, 84, 81],
  ];
  for (let round = 0; round < 4; round++) {
    await Promise.all(pages.map((page, i) => makeSpans(page, rounds[i]![round]!, `tab${i}-r${round}-`)));
  }
  await expect.poll(() => spansNamed(rx, 'tab').length, { timeout: 60_000, intervals: [250] }).toBe(1000);
  expect(spansNamed(rx, 'tab0-').length).toBe(334);
  expect(spansNamed(rx, 'tab1-').length).toBe(333);
  expect(spansNamed(rx, 'tab2-').length).toBe(333);
  for (const page of pages) expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

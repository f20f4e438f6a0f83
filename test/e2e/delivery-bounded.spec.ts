import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// An outbox bounded to 50 records drops the oldest, counts them in the status, and reports the
// count on the next delivered batch as `edgetrace.dropped_records`.

const rx = receiverPerFile();

test('a bounded outbox drops the oldest and reports the count', async ({ page }) => {
  await page.goto(sdkPage(rx, '/bounded.html', { delivery: { maxRecords: 50, flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  await expect.poll(async () => (await statusOf(page)).queued, { timeout: 10_000 }).toBe(0);
  const before = (await statusOf(page)).dropped;
  rx.reset();
  // Hold delivery while 120 records arrive in one hand-over.
  rx.stall();
  await makeSpans(page, 120, 'bounded-');
  await expect.poll(async () => (await statusOf(page)).dropped - before, { timeout: 20_000 }).toBeGreaterThanOrEqual(70);
  rx.unstall();
  await page.evaluate(() => (window as unknown as { et: { flushNow(): Promise<unknown> } }).et.flushNow());
  await expect.poll(() => spansNamed(rx, 'bounded-').length, { timeout: 20_000, intervals: [250] }).toBeGreaterThanOrEqual(50);

  const got = spansNamed(rx, 'bounded-');
  const dropped = (await statusOf(page)).dropped - before;
  // The newest 50 are kept; everything older went.
  for (let i = 70; i < 120; i++) expect(got.some((s) => s.name === `bounded-${i}`)).toBe(true);
  expect(got.length + dropped).toBeGreaterThanOrEqual(120);
  const stamped = [...rx.spans().values()].flatMap((s) => s.attributes ?? []).filter((a) => a.key === 'edgetrace.dropped_records');
  expect(stamped.length).toBeGreaterThan(0);
  expect(Number(stamped[0]!.value.intValue)).toBeGreaterThanOrEqual(70);
});

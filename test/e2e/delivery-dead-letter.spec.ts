import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// A 400 for one batch moves it to the dead-letter store; later batches still flow.

const rx = receiverPerFile();

test('400 for one batch: dead-lettered, later batches still flow, status says so', async ({ page }) => {
  await page.goto(sdkPage(rx, '/dead.html', { delivery: { flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  await expect.poll(async () => (await statusOf(page)).queued, { timeout: 10_000 }).toBe(0);
  rx.reset();
  rx.rule((r) => (r.spans.some((s) => s.name.startsWith('bad-')) ? { status: 400, body: JSON.stringify({ message: 'bad batch' }) } : undefined));
  await makeSpans(page, 10, 'bad-');
  await expect.poll(async () => (await statusOf(page)).deadLettered, { timeout: 20_000 }).toBeGreaterThanOrEqual(10);

  await makeSpans(page, 20, 'good-');
  await expect.poll(() => spansNamed(rx, 'good-').length, { timeout: 20_000, intervals: [250] }).toBe(20);
  expect(spansNamed(rx, 'bad-')).toHaveLength(0);
  // One attempt for the bad batch: a 400 is never retried.
  expect(rx.requests.filter((r) => r.status === 400)).toHaveLength(1);

  const status = await statusOf(page);
  expect(status.lastError).toContain('400');
  expect(status.queued).toBe(0);
  const dead = await page.evaluate(() => (window as unknown as { et: { getDeadLetters(): Promise<{ status?: number; records: { name: string }[] }[]> } }).et.getDeadLetters());
  expect(dead).toHaveLength(1);
  expect(dead[0]!.status).toBe(400);
  expect(dead[0]!.records.filter((r) => r.name.startsWith('bad-'))).toHaveLength(10);
});

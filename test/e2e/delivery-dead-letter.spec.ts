import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// A 400 for one batch moves it to the dead-letter store; later batches still flow.

const rx = receiverPerFile();

test('400 for one batch: dead-lettered, later batches still flow, status and console say so', async ({ page }) => {
  const warnings: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'warning' && m.text().includes('[edgetrace]')) warnings.push(m.text());
  });
  await page.goto(sdkPage(rx, '/dead.html', { delivery: { flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  await expect.poll(async () => (await statusOf(page)).queued, { timeout: 10_000 }).toBe(0);
  rx.reset();
  rx.rule((r) => (r.spans.some((s) => s.name.startsWith('bad-')) ? { status: 400, body: JSON.stringify({ message: 'bad batch' }) } : undefined));
  await makeSpans(page, 10, 'bad-');
  await expect.poll(async () => (await statusOf(page)).deadLettered, { timeout: 20_000 }).toBeGreaterThanOrEqual(10);
  expect((await statusOf(page)).lastError).toContain('400');
  // Said once, without debug: the page had not asked getStatus(), and a wrong token or path
  // would otherwise lose everything unseen.
  await expect.poll(() => warnings, { timeout: 5_000 }).toEqual([
    expect.stringMatching(/^\[edgetrace\] http:\/\/127\.0\.0\.1:\d+\/v1\/traces refused 10 records for good \(HTTP 400: \{"message":"bad batch"\}\): see getDeadLetters\(\)/),
  ]);

  await makeSpans(page, 20, 'good-');
  await expect.poll(() => spansNamed(rx, 'good-').length, { timeout: 20_000, intervals: [250] }).toBe(20);
  expect(spansNamed(rx, 'bad-')).toHaveLength(0);
  // One attempt for the bad batch: a 400 is never retried.
  expect(rx.requests.filter((r) => r.status === 400)).toHaveLength(1);

  // The batches since went through: the refusal's reason stays with its dead letter.
  const status = await statusOf(page);
  expect(status.lastError).toBeUndefined();
  expect(status.queued).toBe(0);
  const dead = await page.evaluate(() => (window as unknown as { et: { getDeadLetters(): Promise<{ status?: number; records: { name: string }[] }[]> } }).et.getDeadLetters());
  expect(dead).toHaveLength(1);
  expect(dead[0]!.status).toBe(400);
  expect(dead[0]!.records.filter((r) => r.name.startsWith('bad-'))).toHaveLength(10);
});

for (const transport of ['worker', 'page'] as const) test(`a site's catch-all page answering 200 is not delivery (${transport}): the records wait, the console says so once`, async ({ page }) => {
  const warnings: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'warning' && m.text().includes('[edgetrace]')) warnings.push(m.text());
  });
  await page.goto(sdkPage(rx, `/catch-all-${transport}.html`, { transport, delivery: { flushIntervalMs: 100, backoffBaseMs: 50, backoffCapMs: 200, circuitFailures: 2, circuitOpenMs: 500 } }));
  await waitForTransport(page, transport);
  await expect.poll(async () => (await statusOf(page)).queued, { timeout: 10_000 }).toBe(0);
  rx.reset();
  let html = true;
  rx.rule(() => (html ? { status: 200, headers: { 'content-type': 'text/html' }, body: '<!doctype html><html><div id="app"></div></html>' } : undefined));
  await makeSpans(page, 5, 'spa-');
  await expect.poll(() => warnings, { timeout: 20_000 }).toEqual([expect.stringMatching(/keeps failing \(HTTP 200: <!doctype html>.*records are kept and retried/)]);
  const status = await statusOf(page);
  expect(status).toMatchObject({ delivered: 0, deadLettered: 0, queued: 5 });
  // The endpoint put right: what waited goes.
  html = false;
  await expect.poll(() => spansNamed(rx, 'spa-').length, { timeout: 20_000 }).toBe(5);
  expect(warnings).toHaveLength(1);
});

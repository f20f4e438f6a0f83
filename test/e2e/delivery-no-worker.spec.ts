import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, startReceiver, statusOf, waitForTransport } from '../helpers/receiver';

// Without a service worker (here: blocked by the browser context), the same outbox and flusher run
// in the page; a Web Lock lets one tab send at a time, so the receiver never sees two requests
// from the origin overlap.

const rx = receiverPerFile();

test.use({ serviceWorkers: 'block' });

test('no service worker: the page outbox delivers, and two tabs never flush at once', async ({ context }) => {
  const url = sdkPage(rx, '/no-worker.html', { workerTimeoutMs: 3000, delivery: { flushIntervalMs: 50, maxBatchRecords: 25 } });
  const tabs = [await context.newPage(), await context.newPage()];
  for (const tab of tabs) {
    await tab.goto(url);
    await waitForTransport(tab, 'page');
  }
  rx.reset();
  // Slow answers widen the window in which a second tab could overlap.
  rx.delay(60);
  for (let round = 0; round < 4; round++) await Promise.all(tabs.map((tab, i) => makeSpans(tab, 50, `nw${i}-${round}-`)));
  await expect.poll(() => spansNamed(rx, 'nw').length, { timeout: 60_000, intervals: [250] }).toBe(400);

  const done = rx.requests.filter((r) => r.endMs > 0).sort((a, b) => a.startMs - b.startMs);
  expect(done.length).toBeGreaterThan(4);
  for (let i = 1; i < done.length; i++) expect(done[i]!.startMs).toBeGreaterThanOrEqual(done[i - 1]!.endMs);
  for (const tab of tabs) {
    const status = await statusOf(tab);
    expect(status.transport).toBe('page');
    // And the status says why.
    expect(status.fallback).toMatch(/^no service worker/);
  }
});

test('transport: "page" uses the page outbox even where a worker could run', async ({ page }) => {
  await page.goto(sdkPage(rx, '/page-mode.html', { transport: 'page', delivery: { flushIntervalMs: 50 } }));
  await waitForTransport(page, 'page');
  await makeSpans(page, 30, 'pm-');
  await expect.poll(() => spansNamed(rx, 'pm-').length, { timeout: 20_000, intervals: [250] }).toBe(30);
  // The path asked for: no fallback to explain.
  expect((await statusOf(page)).fallback).toBeUndefined();
});

test("the page outbox never traces its own requests, also to a newer page's endpoint", async ({ context }) => {
  // A newer deploy's page sends to another endpoint; the outbox of every tab takes it.
  const other = await startReceiver();
  try {
    const fetchOnly = { instrument: { xhr: false, interactions: false, navigation: false, errors: false }, delivery: { flushIntervalMs: 50 } };
    const older = await context.newPage();
    await older.goto(sdkPage(rx, '/outbox-older.html', { transport: 'page', ...fetchOnly }));
    await waitForTransport(older, 'page');
    const newer = await context.newPage();
    await newer.goto(sdkPage(rx, '/outbox-newer.html', { transport: 'page', ...fetchOnly, endpoint: other.endpoint }));
    await waitForTransport(newer, 'page');
    await newer.close();
    await makeSpans(older, 5, 'own-requests-');
    await expect.poll(() => spansNamed(other, 'own-requests-').length, { timeout: 30_000, intervals: [250] }).toBe(5);
    // A few flush intervals more: a traced export would be sent, and traced, again and again.
    await older.waitForTimeout(3_000);
    const all = [...other.spans().values(), ...rx.spans().values()];
    expect(all.filter((s) => s.name.startsWith('POST'))).toEqual([]);
    expect(other.requests.filter((r) => r.headers.traceparent !== undefined)).toEqual([]);
  } finally {
    await other.close();
  }
});

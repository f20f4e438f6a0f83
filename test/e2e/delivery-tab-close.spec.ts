import { test, expect } from '@playwright/test';
import { receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// A tab closed right after ending spans: the tail goes on page hide and every span arrives, both
// when the service worker is up and when it never answered.

const rx = receiverPerFile();

/** The lazily loaded chunks that carry the OTLP encoder into the page. */
const ENCODER_CHUNK = /\/dist\/(keepalive|http)-[^/]+\.js$/;

test('a tab closed right after ending 50 spans delivers all 50', async ({ context }) => {
  // A long idle wait, so only the page-hide hand-over can carry the spans before the tab is gone.
  const url = sdkPage(rx, '/close.html', { pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } });
  const keeper = await context.newPage();
  await keeper.goto(url);
  await waitForTransport(keeper, 'worker');
  const page = await context.newPage();
  const chunks: string[] = [];
  page.on('request', (r) => chunks.push(r.url()));
  await page.goto(url);
  await waitForTransport(page, 'worker');
  await page.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(50, 'closing-'));
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'closing-').length, { timeout: 30_000, intervals: [250] }).toBe(50);
  // The worker encodes and sends: a page it answers never downloads the encoder.
  expect(chunks.filter((u) => ENCODER_CHUNK.test(u))).toEqual([]);
});

test('a tab closed before its service worker ever answered sends its tail with keepalive', async ({ page }) => {
  // A worker that never finishes installing: the page has no sink, and waits a minute for one.
  rx.file('/stuck-sw.js', 'text/javascript', 'addEventListener("install", (e) => e.waitUntil(new Promise(() => {})));');
  const url = sdkPage(rx, '/stuck.html', { workerUrl: '/stuck-sw.js', workerTimeoutMs: 60_000, pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } });
  const tailLoaded = page.waitForRequest((r) => ENCODER_CHUNK.test(r.url()), { timeout: 20_000 });
  await page.goto(url);
  await waitForTransport(page, 'none');
  // With no worker controlling it, the page loads the tail sender on its own.
  await tailLoaded;
  await page.waitForLoadState('networkidle');
  await page.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(20, 'early-'));
  // A rating given just before closing: it goes in a keepalive request of its own.
  await page.evaluate(() => {
    const t = (window as unknown as { tracer: { createTrace(name: string): { score(name: string, value: number): void; finish(): void } } }).tracer.createTrace('rated');
    t.score('last-word', 1);
    t.finish();
  });
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'early-').length, { timeout: 30_000, intervals: [250] }).toBe(20);
  await expect.poll(() => rx.scores.filter((s) => s.name === 'last-word').length, { timeout: 10_000 }).toBe(1);
  // Closing a tab hides it, then removes it: one tail request, not one per event.
  await new Promise((r) => setTimeout(r, 500));
  expect(rx.requests.filter((r) => r.spans.some((s) => s.name.startsWith('early-')))).toHaveLength(1);
});

test('a page hidden while the tail sender is still loading sends its tail once it arrives', async ({ page }) => {
  rx.file('/stuck-sw.js', 'text/javascript', 'addEventListener("install", (e) => e.waitUntil(new Promise(() => {})));');
  const url = sdkPage(rx, '/slow-tail.html', { workerUrl: '/stuck-sw.js', workerTimeoutMs: 60_000, pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } });
  // The encoder chunks arrive only after the page has been hidden.
  let releaseChunks: () => void = () => undefined;
  const chunksHeld = new Promise<void>((resolve) => (releaseChunks = resolve));
  await page.route(ENCODER_CHUNK, async (route) => {
    await chunksHeld;
    await route.continue();
  });
  await page.goto(url);
  await waitForTransport(page, 'none');
  await page.evaluate(() => {
    (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(10, 'hidden-');
    dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
  });
  expect(spansNamed(rx, 'hidden-')).toHaveLength(0);
  releaseChunks();
  await expect.poll(() => spansNamed(rx, 'hidden-').length, { timeout: 30_000, intervals: [250] }).toBe(10);
});

test("the clicks that take the page away are in the tail of a page whose worker is the site's and does not answer", async ({ page }) => {
  // The site's own worker, without installTraceWorker(), controls the page: the page gets no
  // answer from it for workerTimeoutMs and sends its tail itself at pagehide.
  rx.file('/site-sw.js', 'text/javascript', 'addEventListener("install", () => skipWaiting()); addEventListener("activate", (e) => e.waitUntil(clients.claim()));');
  rx.page('/elsewhere.html', '<p>elsewhere</p>');
  const body = `<body><button id="load" onclick="fetch('/elsewhere.html')">load</button><a id="away" href="/elsewhere.html">leave</a></body>`;
  const url = sdkPage(rx, '/leave.html', { workerUrl: false, workerTimeoutMs: 60_000, instrument: { xhr: false, navigation: false, errors: false, session: false } }, body);
  await page.goto(url);
  await page.evaluate(async () => {
    await navigator.serviceWorker.register('/site-sw.js');
    await navigator.serviceWorker.ready;
  });
  await page.reload();
  await waitForTransport(page, 'none');
  expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
  // The tail sender loads a moment after start-up on a controlled page.
  await page.waitForRequest((r) => ENCODER_CHUNK.test(r.url()), { timeout: 20_000 });
  await Promise.all([page.waitForResponse('**/elsewhere.html'), page.click('#load')]);
  // Both interactions are still open (their idle wait) when the page hides: they must end
  // before the tail goes.
  await page.click('#away');
  await page.waitForURL('**/elsewhere.html');
  await expect.poll(() => spansNamed(rx, 'click ').map((s) => s.name).sort(), { timeout: 15_000, intervals: [250] }).toEqual(['click a#away', 'click button#load']);
  expect(spansNamed(rx, 'GET').map((s) => s.name)).toEqual(['GET']);
  // Each span once: the tail at pagehide, and the one at the visibilitychange after it with what
  // the interactions' end added, carry no span twice (a receiver such as Langfuse keeps both).
  await new Promise((r) => setTimeout(r, 500));
  const sent = rx.requests.flatMap((r) => r.spans.map((s) => s.spanId));
  expect(sent.length).toBeGreaterThanOrEqual(3);
  expect(new Set(sent).size).toBe(sent.length);
});

test('a tab closed with a click still open before its worker answered sends each span once, the click too', async ({ page }) => {
  rx.file('/stuck-sw.js', 'text/javascript', 'addEventListener("install", (e) => e.waitUntil(new Promise(() => {})));');
  rx.page('/data.json', '{}');
  const body = `<body><button id="fetch-data" onclick="fetch('/data.json')">load</button></body>`;
  const url = sdkPage(rx, '/open-click.html', { workerUrl: '/stuck-sw.js', workerTimeoutMs: 60_000, pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 }, instrument: { xhr: false, errors: false, session: false } }, body);
  const tailLoaded = page.waitForRequest((r) => ENCODER_CHUNK.test(r.url()), { timeout: 20_000 });
  await page.goto(url);
  await waitForTransport(page, 'none');
  await tailLoaded;
  // The click's interaction waits for idle after its fetch: still open when the tab closes.
  await Promise.all([page.waitForResponse('**/data.json'), page.click('#fetch-data')]);
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'click button#fetch-data').length, { timeout: 15_000, intervals: [250] }).toBe(1);
  await new Promise((r) => setTimeout(r, 500));
  const sent = rx.requests.flatMap((r) => r.spans.map((s) => s.spanId));
  expect(sent.length).toBeGreaterThanOrEqual(3);
  expect(new Set(sent).size).toBe(sent.length);
});

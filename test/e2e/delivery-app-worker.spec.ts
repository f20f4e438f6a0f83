import { test, expect } from '@playwright/test';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { makeSpans, sdkPage, spansNamed, startReceiver, statusOf, type Receiver, waitForTransport } from '../helpers/receiver';

// An app with its own service worker imports `installTraceWorker()` from `edgetrace/worker` (here
// bundled from dist/worker.js as an app's bundler would); the page tells init() not to register
// ours. Records flow the same way, and the app's own fetch handling keeps working.

const WORKER = fileURLToPath(new URL('../../dist/worker.js', import.meta.url));

// Generous: a loaded two-core machine can slow the browser and the worker several times over.
test.setTimeout(90_000);

let rx: Receiver;
test.beforeAll(async () => {
  rx = await startReceiver();
  const source = `
    import { installTraceWorker } from ${JSON.stringify(WORKER)};
    installTraceWorker({ endpoint: ${JSON.stringify(rx.endpoint)} });
    self.addEventListener('install', () => self.skipWaiting());
    self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
    self.addEventListener('fetch', (event) => {
      if (new URL(event.request.url).pathname === '/app-hello') event.respondWith(new Response('hello from the app worker'));
    });`;
  const out = await build({ stdin: { contents: source, resolveDir: process.cwd(), loader: 'js' }, bundle: true, format: 'iife', write: false, minify: true });
  rx.file('/app-sw.js', 'text/javascript', out.outputFiles[0]!.text);
});
test.afterAll(async () => {
  await rx.close();
});

test("an app's own service worker calling installTraceWorker() delivers the same way", async ({ page }) => {
  const register = `<script>navigator.serviceWorker.register('/app-sw.js');</script>`;
  await page.goto(sdkPage(rx, '/app.html', { workerUrl: false, transport: 'worker' }, register));
  await waitForTransport(page, 'worker');
  await makeSpans(page, 100, 'app-');
  await expect.poll(() => spansNamed(rx, 'app-').length, { timeout: 30_000, intervals: [250] }).toBe(100);
  // Our worker script was never registered: the app's is the only one.
  const scripts = await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).map((r) => r.active?.scriptURL ?? ''));
  expect(scripts).toEqual([`${rx.origin}/app-sw.js`]);
  await page.reload();
  await waitForTransport(page, 'worker');
  expect(await page.evaluate(() => fetch('/app-hello').then((r) => r.text()))).toBe('hello from the app worker');
});

test("while the app's old worker (without installTraceWorker) still runs, a tab keeps its spans and closing it sends them", async ({ context }) => {
  // Release 1 of the app's worker: no edgetrace in it. It takes control of the scope.
  rx.file('/old-app-sw.js', 'text/javascript', 'self.addEventListener("install", () => self.skipWaiting()); self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));');
  const keeper = await context.newPage();
  await keeper.goto(rx.page('/old-app.html', '<p>release 1 of the app</p>'));
  await keeper.evaluate(async () => {
    await navigator.serviceWorker.register('/old-app-sw.js');
    await navigator.serviceWorker.ready;
  });
  await keeper.reload();
  expect(await keeper.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
  // Release 2 calls installTraceWorker() but, as an app's worker usually does, waits for the
  // open tabs of release 1 to close before it takes over.
  const worker = await build({
    stdin: { contents: `import { installTraceWorker } from ${JSON.stringify(WORKER)}; installTraceWorker({ endpoint: ${JSON.stringify(rx.endpoint)} });`, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    format: 'iife',
    write: false,
  });
  rx.file('/old-app-sw.js', 'text/javascript', worker.outputFiles[0]!.text);
  await keeper.evaluate(async () => {
    const reg = (await navigator.serviceWorker.getRegistration())!;
    await reg.update();
    for (let i = 0; i < 100 && !reg.waiting; i++) await new Promise((r) => setTimeout(r, 100));
  });
  expect(await keeper.evaluate(async () => !!(await navigator.serviceWorker.getRegistration())?.waiting)).toBe(true);

  // A page of release 2, on release 1's worker: it does not hand its spans to a worker that never
  // answers, and a close before it gives up on that worker sends them itself.
  const url = sdkPage(rx, '/old-worker.html', { workerUrl: false, pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } });
  const page = await context.newPage();
  await page.goto(url);
  await makeSpans(page, 30, 'on-old-worker-');
  // Past the moment the tail sender loads for a page a worker controls.
  await page.waitForTimeout(3_000);
  expect((await statusOf(page)).transport).toBe('none');
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'on-old-worker-').length, { timeout: 30_000, intervals: [250] }).toBe(30);

  // A page that stays open gives up on that worker after workerTimeoutMs and sends from the page.
  const staying = await context.newPage();
  await staying.goto(sdkPage(rx, '/old-worker-stays.html', { workerUrl: false, workerTimeoutMs: 3_000 }));
  await waitForTransport(staying, 'page');
  await makeSpans(staying, 20, 'after-fallback-');
  await expect.poll(() => spansNamed(rx, 'after-fallback-').length, { timeout: 30_000, intervals: [250] }).toBe(20);
});

test("init() with the default workerUrl leaves the site's own worker in place and uses it", async ({ page }) => {
  // The site's worker, registered and in control before the SDK loads (a returning visit).
  const register = `<script>navigator.serviceWorker.register('/app-sw.js');</script>`;
  await page.goto(rx.page('/first.html', `${register}<p>before edgetrace</p>`));
  await page.evaluate(async () => void (await navigator.serviceWorker.ready));
  const info: string[] = [];
  page.on('console', (m) => void (m.type() === 'info' && info.push(m.text())));
  // No workerUrl: the SDK would register /edgetrace-sw.js at the same scope, replacing the app's.
  await page.goto(sdkPage(rx, '/default-url.html', {}, register));
  await waitForTransport(page, 'worker');
  await makeSpans(page, 20, 'through-app-worker-');
  await expect.poll(() => spansNamed(rx, 'through-app-worker-').length, { timeout: 30_000, intervals: [250] }).toBe(20);
  const scripts = await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).map((r) => [r.active, r.waiting, r.installing].map((w) => w?.scriptURL ?? '')));
  expect(scripts).toEqual([[`${rx.origin}/app-sw.js`, '', '']]);
  expect(info.filter((t) => t.includes("already has the site's own service worker"))).toHaveLength(1);
  expect(await page.evaluate(() => fetch('/app-hello').then((r) => r.text()))).toBe('hello from the app worker');
  // The next page of the site, in the same tab, does not say it again.
  await page.goto(sdkPage(rx, '/default-url-2.html', {}, register));
  await waitForTransport(page, 'worker');
  expect(info.filter((t) => t.includes("already has the site's own service worker"))).toHaveLength(1);
});

test("a site's worker without installTraceWorker() is not replaced either: the page sends its spans", async ({ page }) => {
  rx.file('/plain-app-sw.js', 'text/javascript', 'self.addEventListener("install", () => self.skipWaiting()); self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));');
  await page.goto(rx.page('/plain-first.html', '<p>before edgetrace</p>'));
  await page.evaluate(async () => {
    await navigator.serviceWorker.register('/plain-app-sw.js');
    await navigator.serviceWorker.ready;
  });
  await page.goto(sdkPage(rx, '/plain-default-url.html', { workerTimeoutMs: 3_000 }));
  await waitForTransport(page, 'page');
  await makeSpans(page, 20, 'beside-plain-worker-');
  await expect.poll(() => spansNamed(rx, 'beside-plain-worker-').length, { timeout: 30_000, intervals: [250] }).toBe(20);
  const scripts = await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).map((r) => [r.active, r.waiting, r.installing].map((w) => w?.scriptURL ?? '')));
  expect(scripts).toEqual([[`${rx.origin}/plain-app-sw.js`, '', '']]);
});

test("a site's worker registered after init() on a first visit: the page gives up on it at once and loses nothing", async ({ page }) => {
  rx.file('/late-app-sw.js', 'text/javascript', 'self.addEventListener("install", () => self.skipWaiting()); self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));');
  // A long batching delay: what the page holds at the takeover is still in it when the tab closes.
  await page.goto(sdkPage(rx, '/late-site-worker.html', { pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } }));
  await waitForTransport(page, 'worker');
  await makeSpans(page, 5, 'before-takeover-');
  await page.evaluate(() => (window as unknown as { tracer: { flush(): Promise<void> } }).tracer.flush());
  await expect.poll(() => spansNamed(rx, 'before-takeover-').length, { timeout: 30_000, intervals: [250] }).toBe(5);

  // The site's own worker, registered after init(), replaces ours at the same scope.
  await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.register('/late-app-sw.js');
    for (let i = 0; i < 100 && !reg.active?.scriptURL.endsWith('/late-app-sw.js'); i++) await new Promise((r) => setTimeout(r, 100));
  });
  // Spans ended now wait in the page; closing the tab sends them from the page, since the
  // worker now active never answered.
  await makeSpans(page, 12, 'at-takeover-');
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'at-takeover-').length, { timeout: 30_000, intervals: [250] }).toBe(12);
});

test("a page whose worker was replaced by one that does not answer moves to the page outbox within seconds", async ({ page }) => {
  rx.file('/later-app-sw.js', 'text/javascript', 'self.addEventListener("install", () => self.skipWaiting()); self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));');
  await page.goto(sdkPage(rx, '/later-site-worker.html'));
  await waitForTransport(page, 'worker');
  await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.register('/later-app-sw.js');
    for (let i = 0; i < 100 && !reg.active?.scriptURL.endsWith('/later-app-sw.js'); i++) await new Promise((r) => setTimeout(r, 100));
  });
  // Asked as soon as it is active (4 s), not at the next hand-over: an idle page moves on too.
  await waitForTransport(page, 'page', 15_000);
  await makeSpans(page, 20, 'after-replaced-');
  await expect.poll(() => spansNamed(rx, 'after-replaced-').length, { timeout: 30_000, intervals: [250] }).toBe(20);
  expect((await statusOf(page)).fallback).toMatch(/stopped answering/);
});

test("a site that adds its own worker while ours is active from an earlier visit gets the scope", async ({ page }) => {
  // The site's worker installs slowly, so it is still installing when the SDK looks.
  rx.file('/slow-app-sw.js', 'text/javascript', 'self.addEventListener("install", (e) => { self.skipWaiting(); e.waitUntil(new Promise((r) => setTimeout(r, 3000))); });');
  await page.goto(sdkPage(rx, '/earlier-visit.html'));
  await waitForTransport(page, 'worker');
  const register = `<script>navigator.serviceWorker.register('/slow-app-sw.js');</script>`;
  await page.goto(sdkPage(rx, '/site-adds-worker.html', { workerTimeoutMs: 8_000 }, register));
  await page.waitForFunction(() => (window as unknown as { sdkLoaded?: boolean }).sdkLoaded === true);
  await expect
    .poll(() => page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.active?.scriptURL ?? ''), { timeout: 20_000, intervals: [250] })
    .toBe(`${rx.origin}/slow-app-sw.js`);
  // Ours did not register itself over the site's: nothing is installing or waiting after it.
  await page.waitForTimeout(1_000);
  const scripts = await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).map((r) => [r.active, r.waiting, r.installing].map((w) => w?.scriptURL ?? '')));
  expect(scripts).toEqual([[`${rx.origin}/slow-app-sw.js`, '', '']]);
});

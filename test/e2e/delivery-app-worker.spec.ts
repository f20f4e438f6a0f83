import { test, expect } from '@playwright/test';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { makeSpans, sdkPage, spansNamed, startReceiver, type Receiver, waitForTransport } from '../helpers/receiver';

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

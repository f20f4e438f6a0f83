import { test, expect } from '@playwright/test';
import { receiverPerFile, spansNamed } from '../helpers/receiver';

// stop() moments after init(), before the delivery path is up: React's StrictMode runs an effect's
// cleanup at once, and HMR stops the old module's SDK. What was recorded must still be delivered,
// whether init() follows (the cleanup awaited) or not.

const rx = receiverPerFile();

const earlyPage = (path: string, options: Record<string, unknown>, again: boolean): string =>
  rx.page(
    path,
    `<!doctype html><html><head><meta charset="utf-8"><title>edgetrace e2e</title>${rx.importMap()}
<script>window.__errors = []; addEventListener('error', (e) => __errors.push(String(e.message))); addEventListener('unhandledrejection', (e) => __errors.push('unhandled: ' + String(e.reason)));</script>
<script type="module">
  import * as et from '/dist/index.js';
  const options = ${JSON.stringify({ endpoint: rx.endpoint, serviceName: 'e2e', instrument: false, ...options })};
  et.init(options).createTrace('${path.slice(1, -5)}-before-stop').finish();
  await et.stop();
  if (${again}) et.init(options).createTrace('${path.slice(1, -5)}-after-init').finish();
  window.stopped = true;
</script></head><body><p>edgetrace e2e</p></body></html>`,
  );

for (const transport of ['worker', 'page'] as const) {
  test(`on the ${transport} transport, spans recorded before an awaited stop() right after init() are delivered`, async ({ page }) => {
    // A first visit: no worker controls the page yet, so the path takes longest to come up.
    await page.goto(earlyPage(`/again-${transport}.html`, { transport }, true));
    await page.waitForFunction(() => (window as unknown as { stopped?: boolean }).stopped === true, undefined, { timeout: 20_000 });
    await expect.poll(() => spansNamed(rx, `again-${transport}-`).map((s) => s.name).sort(), { timeout: 20_000 }).toEqual([
      `again-${transport}-after-init`,
      `again-${transport}-before-stop`,
    ]);

    await page.goto(earlyPage(`/only-${transport}.html`, { transport }, false));
    await page.waitForFunction(() => (window as unknown as { stopped?: boolean }).stopped === true, undefined, { timeout: 20_000 });
    await expect.poll(() => spansNamed(rx, `only-${transport}-`).map((s) => s.name), { timeout: 20_000 }).toEqual([`only-${transport}-before-stop`]);
    expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
  });
}

test('with no delivery path within moments of stop(), the page sends what it recorded itself', async ({ page }) => {
  // A worker whose install never finishes, and transport "worker", which waits for it: no sink.
  rx.file('/never-sw.js', 'text/javascript', 'self.addEventListener("install", (e) => e.waitUntil(new Promise(() => {})));');
  const started = Date.now();
  await page.goto(earlyPage('/stuck.html', { transport: 'worker', workerUrl: '/never-sw.js' }, false));
  await page.waitForFunction(() => (window as unknown as { stopped?: boolean }).stopped === true, undefined, { timeout: 20_000 });
  // stop() waited its 5 s for a path, then sent the keepalive tail.
  expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
  await expect.poll(() => spansNamed(rx, 'stuck-').map((s) => s.name), { timeout: 10_000 }).toEqual(['stuck-before-stop']);
});

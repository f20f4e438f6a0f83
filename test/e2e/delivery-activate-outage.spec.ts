import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeSpans, receiverPerFile, sdkPage, waitForTransport } from '../helpers/receiver';

// A first install (or an update) of the worker while the receiver is down. Chromium holds every
// navigation in the worker's scope until its activate event settles, so activation must not wait
// for deliveries that keep failing: the site would stop navigating for minutes.

const rx = receiverPerFile();

test('the worker activates, and the site navigates, while every delivery fails', async ({ page, context }) => {
  rx.rule(() => ({ status: 503 }));
  rx.page('/plain.html', '<!doctype html><p id="plain">plain</p>');
  await page.goto(sdkPage(rx, '/activate.html', { instrument: false, delivery: { flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  await makeSpans(page, 5, 'outage-');
  await expect.poll(() => rx.requests.filter((r) => r.status === 503).length, { timeout: 15_000 }).toBeGreaterThan(0);
  const state = () => page.evaluate(async () => (await navigator.serviceWorker.getRegistration('/'))?.active?.state);
  await expect.poll(state, { timeout: 10_000 }).toBe('activated');
  const other = await context.newPage();
  await other.goto(rx.origin + '/plain.html', { timeout: 8_000 });
  await expect(other.locator('#plain')).toHaveText('plain');
});

test("a new release of the worker takes over while every delivery fails, and sends what the old one held", async ({ page }) => {
  rx.reset();
  rx.rule(() => ({ status: 503 }));
  await page.goto(sdkPage(rx, '/release.html', { delivery: { flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  await makeSpans(page, 5, 'release-one-');
  await expect.poll(() => rx.requests.filter((r) => r.status === 503).length, { timeout: 15_000 }).toBeGreaterThan(1);
  await makeSpans(page, 5, 'release-two-');
  await page.waitForTimeout(1_500);
  // Release 2 of the worker: the same script with other bytes. It skips waiting, but the browser
  // activates it only once the old worker has no event under way, and the old one's page
  // messages were held open through every backoff wait.
  const script = readFileSync(fileURLToPath(new URL('../../dist/edgetrace-sw.js', import.meta.url)), 'utf8');
  rx.file('/edgetrace-sw.js', 'text/javascript', `${script}\n// release 2\n`);
  const tookMs = await page.evaluate(async () => {
    const t0 = performance.now();
    const changed = new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    await (await navigator.serviceWorker.getRegistration('/'))!.update();
    await changed;
    return performance.now() - t0;
  });
  expect(tookMs).toBeLessThan(25_000);
  // The new release sends what the old one held, once the receiver is back.
  rx.reset();
  await makeSpans(page, 1, 'release-three-');
  await expect.poll(() => [...rx.spans().values()].filter((s) => s.name.startsWith('release-')).length, { timeout: 60_000, intervals: [500] }).toBe(11);
});

import { test, expect } from '@playwright/test';
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

import { test, expect } from '@playwright/test';
import { receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// The back/forward cache: a page that traces must stay restorable, and go on tracing and
// delivering once restored. Chromium evicts a cached page that runs script, so nothing of ours
// may run while the page is frozen: no finalizer of a dropped comlink proxy, no listener for a
// port the stopped worker closes. Playwright turns the cache off; this file turns it back on.
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreDefaultArgs: ['--disable-back-forward-cache'],
  },
});

const rx = receiverPerFile();

type Win = {
  __shows: boolean[];
  __errors: string[];
  et: { subscribe(cb: (s: unknown) => void): () => void };
  makeSpans(n: number, prefix: string): void;
};

const SHOW = `<script>window.__shows = []; addEventListener('pageshow', (e) => __shows.push(e.persisted));</script>`;

for (const transport of ['worker', 'page'] as const) {
  test(`a page on the ${transport} transport is restored from the back/forward cache and goes on delivering`, async ({ page }) => {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Page.enable');
    const notUsed: unknown[] = [];
    cdp.on('Page.backForwardCacheNotUsed', (e) => notUsed.push(e.notRestoredExplanations));
    const url = sdkPage(rx, `/bf-${transport}.html`, { transport, pageBuffer: { maxDelayMs: 200 } }, SHOW);
    rx.page(`/away-${transport}.html`, '<!doctype html><title>away</title>away');
    await page.goto(url);
    await waitForTransport(page, transport);
    // Status calls, a subscription and hand-overs: the connections and proxies a real page makes.
    await page.evaluate(() => (window as unknown as Win).et.subscribe(() => undefined));
    for (let i = 0; i < 3; i++) {
      await page.evaluate((i) => (window as unknown as Win).makeSpans(5, `warm${i}-`), i);
      await expect.poll(() => spansNamed(rx, `warm${i}-`).length, { timeout: 20_000 }).toBe(5);
    }
    // Ended just before leaving: the page hands them over on its way into the cache.
    await page.evaluate((t) => (window as unknown as Win).makeSpans(5, `leaving-${t}-`), transport);
    await page.goto(rx.origin + `/away-${transport}.html`);
    // The worker sends them while the page is frozen. The page outbox sends those already
    // stored once the page is back (or another page of the origin starts its outbox).
    if (transport === 'worker') await expect.poll(() => spansNamed(rx, `leaving-${transport}-`).length, { timeout: 20_000 }).toBe(5);
    // Garbage from the page's earlier connections is collected, and the worker stops, while the
    // page sits in the cache.
    await cdp.send('HeapProfiler.collectGarbage').catch(() => undefined);
    if (transport === 'worker') {
      await cdp.send('ServiceWorker.enable');
      await cdp.send('ServiceWorker.stopAllWorkers');
    }
    await page.waitForTimeout(1000);
    await page.goBack({ waitUntil: 'commit' });
    await page.waitForFunction(() => (window as unknown as Win).__shows?.length >= 1);
    await page.waitForTimeout(300);
    expect({ shows: await page.evaluate(() => (window as unknown as Win).__shows), notUsed }).toEqual({ shows: [false, true], notUsed: [] });
    await expect.poll(() => spansNamed(rx, `leaving-${transport}-`).length, { timeout: 20_000 }).toBe(5);
    await page.evaluate((t) => (window as unknown as Win).makeSpans(5, `restored-${t}-`), transport);
    await expect.poll(() => spansNamed(rx, `restored-${transport}-`).length, { timeout: 30_000 }).toBe(5);
    expect(await page.evaluate(() => (window as unknown as Win).__errors)).toEqual([]);
  });
}

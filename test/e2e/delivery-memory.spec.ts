import { test, expect } from '@playwright/test';
import { receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// The last resort in a page: batches sent from memory, when the app asks for it or when IndexedDB
// is not usable (some private windows and embedded browsers). Nothing outlives the page there, so
// what it holds when the tab closes must leave with the page-hide event, as in the other paths.

const rx = receiverPerFile();

/**
 * A browser without a usable IndexedDB and without service workers (Firefox's private windows,
 * some embedded browsers): every `indexedDB.open()` throws, before the SDK loads.
 */
const NO_IDB = `<script>
  IDBFactory.prototype.open = function () { throw new DOMException('IndexedDB is not available', 'InvalidStateError'); };
  Object.defineProperty(Navigator.prototype, 'serviceWorker', { get: () => undefined });
</script>`;

// Records would wait a minute for their batch: only the page-hide path can carry them in time.
const SLOW = { batch: { delayMs: 60_000 }, pageBuffer: { maxDelayMs: 60_000, batchRecords: 1000 } };

type Sdk = { makeSpans(n: number, p: string): void };

test('transport "memory": batches go on their timer while the page lives', async ({ page }) => {
  await page.goto(sdkPage(rx, '/memory-live.html', { transport: 'memory', batch: { delayMs: 100 } }));
  await waitForTransport(page, 'memory');
  await page.evaluate(() => (window as unknown as Sdk).makeSpans(5, 'mem-live-'));
  await expect.poll(() => spansNamed(rx, 'mem-live-').length, { timeout: 20_000, intervals: [250] }).toBe(5);
  expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

test('transport "memory": a tab closed right after ending spans delivers them', async ({ context }) => {
  const page = await context.newPage();
  await page.goto(sdkPage(rx, '/memory-close.html', { transport: 'memory', ...SLOW }));
  await waitForTransport(page, 'memory');
  await page.evaluate(() => (window as unknown as Sdk).makeSpans(30, 'mem-close-'));
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => spansNamed(rx, 'mem-close-').length, { timeout: 20_000, intervals: [250] }).toBe(30);
});

test('without IndexedDB the page moves to memory, and a tab closed then loses nothing', async ({ context }) => {
  const page = await context.newPage();
  // Hand-overs come quickly, so the failing page outbox is given up soon; batches would wait a minute.
  await page.goto(sdkPage(rx, '/memory-no-idb.html', { batch: { delayMs: 60_000 }, pageBuffer: { maxDelayMs: 50 } }, NO_IDB));
  await waitForTransport(page, 'page');
  let made = 0;
  await expect
    .poll(
      async () => {
        await page.evaluate((i) => (window as unknown as Sdk).makeSpans(1, `no-idb-${i}-`), made++);
        return (await statusOf(page)).transport;
      },
      { timeout: 20_000, intervals: [200] },
    )
    .toBe('memory');
  expect((await statusOf(page)).fallback).toBe('IndexedDB is not usable in this page');
  await page.evaluate(() => (window as unknown as Sdk).makeSpans(20, 'no-idb-close-'));
  expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
  await page.close({ runBeforeUnload: true });
  // Every span: those made while the page outbox failed, and those of the last moment.
  await expect.poll(() => spansNamed(rx, 'no-idb-').length, { timeout: 20_000, intervals: [250] }).toBe(made + 20);
});

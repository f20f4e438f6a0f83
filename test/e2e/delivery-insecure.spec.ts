import { test, expect } from '@playwright/test';
import { CHROMIUM_ARGS } from '../../playwright.config';
import { receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// A page served over plain http from a name other than localhost (an intranet app) is not a
// secure context: it has neither service workers nor Web Locks. Tabs could not take turns sending
// a shared page outbox there, so each tab sends its own spans from memory, and every span arrives
// once, however many tabs are open.

const HOST = 'intranet.test';
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    // The name resolves to loopback, and Chromium treats it as any other http:// origin.
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
  },
});

const rx = receiverPerFile();

type Sdk = { makeSpans(n: number, p: string): void; et: { flushNow(): Promise<unknown> } };

test('tabs on an http:// intranet origin each send their own spans once, also after being offline', async ({ context }) => {
  const url = sdkPage(rx, '/insecure.html', { endpoint: '/v1/traces', batch: { delayMs: 200 } }).replace('127.0.0.1', HOST);
  const tabs = [];
  for (let i = 0; i < 3; i++) {
    const page = await context.newPage();
    await page.goto(url);
    tabs.push(page);
  }
  for (const page of tabs) {
    expect(await page.evaluate(() => ({ secure: isSecureContext, locks: 'locks' in navigator }))).toEqual({ secure: false, locks: false });
    await waitForTransport(page, 'memory');
    expect((await statusOf(page)).fallback).toBe('no Web Locks: not a secure context (https, localhost)');
  }

  await context.setOffline(true);
  for (const [i, page] of tabs.entries()) await page.evaluate((p) => (window as unknown as Sdk).makeSpans(20, p), `tab${i}-`);
  await context.setOffline(false);
  for (const page of tabs) await page.evaluate(() => (window as unknown as Sdk).et.flushNow());

  await expect.poll(() => spansNamed(rx, 'tab').length, { timeout: 30_000, intervals: [250] }).toBe(60);
  // Copies, not just unique spans: no tab sent another tab's spans, and none sent one twice.
  await new Promise((r) => setTimeout(r, 1_500));
  const copies = rx.requests.flatMap((r) => (r.status === 200 ? r.spans : [])).filter((s) => s.name.startsWith('tab'));
  expect(copies).toHaveLength(60);
  for (const page of tabs) expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

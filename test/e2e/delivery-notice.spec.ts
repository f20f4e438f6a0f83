import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// The page's own delivery notice (a refusal, a receiver that keeps failing) listens to what the
// worker broadcasts: it must cost the page nothing per hand-over, say nothing of an offline
// spell, and never keep init() from working.

const rx = receiverPerFile();

const edgetraceWarnings = (page: import('@playwright/test').Page): string[] => {
  const warnings: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'warning' && m.text().includes('[edgetrace]')) warnings.push(m.text());
  });
  return warnings;
};

test('a page that asks nothing of the delivery status asks the worker for none while it hands spans over', async ({ page }) => {
  await page.addInitScript(() => {
    const w = window as unknown as { __statusCalls: number };
    w.__statusCalls = 0;
    const post = MessagePort.prototype.postMessage;
    MessagePort.prototype.postMessage = function (this: MessagePort, message: unknown, ...rest: unknown[]) {
      if (JSON.stringify(message ?? null).includes('getStatus')) w.__statusCalls++;
      return (post as (...a: unknown[]) => void).call(this, message, ...rest);
    } as typeof post;
  });
  await page.goto(sdkPage(rx, '/quiet.html', { delivery: { flushIntervalMs: 100 } }));
  await waitForTransport(page, 'worker');
  const calls = () => page.evaluate(() => (window as unknown as { __statusCalls: number }).__statusCalls);
  const before = await calls();
  for (let i = 0; i < 10; i++) {
    await makeSpans(page, 5, `q${i}-`);
    await page.waitForTimeout(150);
  }
  await expect.poll(() => spansNamed(rx, 'q').length, { timeout: 20_000 }).toBe(50);
  expect(await calls()).toBe(before);
});

test('an offline spell is not a receiver that keeps failing: nothing is said', async ({ context, page }) => {
  const warnings = edgetraceWarnings(page);
  await page.goto(sdkPage(rx, '/offline.html', { delivery: { flushIntervalMs: 100, backoffBaseMs: 50, backoffCapMs: 300, circuitFailures: 2, circuitOpenMs: 2000 } }));
  await waitForTransport(page, 'worker');
  await context.setOffline(true);
  for (let i = 0; i < 6; i++) {
    await makeSpans(page, 2, `off${i}-`);
    await page.waitForTimeout(200);
  }
  await expect.poll(async () => (await statusOf(page)).lastError ?? '', { timeout: 10_000 }).toContain('network error');
  await context.setOffline(false);
  await makeSpans(page, 2, 'back-');
  await expect.poll(() => spansNamed(rx, 'off').length, { timeout: 20_000 }).toBe(12);
  expect(warnings).toEqual([]);
});

test('a BroadcastChannel that throws (Firefox with storage blocked) stops neither init() nor delivery', async ({ page }) => {
  await page.addInitScript(() => {
    (window as unknown as { BroadcastChannel: unknown }).BroadcastChannel = class {
      constructor() {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      }
    };
  });
  await page.goto(sdkPage(rx, '/no-channel.html'));
  await waitForTransport(page, 'worker');
  await makeSpans(page, 3, 'nochan-');
  await expect.poll(() => spansNamed(rx, 'nochan-').length, { timeout: 20_000 }).toBe(3);
  expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

import { test, expect, type Page } from '@playwright/test';
import { receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// A page whose Content-Security-Policy leaves its trace endpoint out of connect-src: every send
// from the page fails as a network error. The SDK says so once, naming the directive and the
// origin, and keeps the page working.

const rx = receiverPerFile();

const csp = (policy: string): string => `<meta http-equiv="Content-Security-Policy" content="${policy}">`;

/** The page's console warnings from edgetrace, collected from now on. */
const warnings = (tab: Page): string[] => {
  const seen: string[] = [];
  tab.on('console', (m) => {
    if (m.type() === 'warning' && m.text().startsWith('[edgetrace]')) seen.push(m.text());
  });
  return seen;
};

test('says once that connect-src blocks the endpoint, and nothing reaches the page’s error handlers', async ({ page: tab }) => {
  const seen = warnings(tab);
  // Another origin for the same receiver: 'self' leaves it out.
  const endpoint = rx.endpoint.replace('127.0.0.1', 'localhost');
  await tab.goto(sdkPage(rx, '/csp-blocked.html', { endpoint, transport: 'page' }, csp("connect-src 'self'")));
  await waitForTransport(tab, 'page');
  await tab.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(3, 'csp-'));
  await expect.poll(() => seen.filter((w) => w.includes('connect-src')), { timeout: 20_000, intervals: [250] }).toEqual([
    `[edgetrace] The page's Content-Security-Policy (connect-src) blocks the endpoint ${new URL(endpoint).origin}: nothing reaches it from this page. Add ${new URL(endpoint).origin} to connect-src.`,
  ]);
  expect(spansNamed(rx, 'csp-')).toHaveLength(0);
  expect(await tab.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

test('says nothing of the policy when connect-src allows the endpoint', async ({ page: tab }) => {
  const seen = warnings(tab);
  await tab.goto(sdkPage(rx, '/csp-allowed.html', { transport: 'page' }, csp("connect-src 'self'")));
  await waitForTransport(tab, 'page');
  await tab.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(3, 'csp-ok-'));
  await expect.poll(() => spansNamed(rx, 'csp-ok-').length, { timeout: 20_000, intervals: [250] }).toBe(3);
  expect(seen.filter((w) => w.includes('Content-Security-Policy'))).toEqual([]);
});

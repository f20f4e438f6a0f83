import { test, expect } from '@playwright/test';
import { receiverPerFile, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// A page that enforces Trusted Types may register a service worker only with a TrustedScriptURL
// from one of its own policies; a plain string is refused, and edgetrace would fall back to the
// page outbox. `workerUrl` takes the TrustedScriptURL.

const rx = receiverPerFile();

const CSP = `<meta http-equiv="Content-Security-Policy" content="require-trusted-types-for 'script'; trusted-types app">`;

const page = (path: string, workerUrl: string): string =>
  rx.page(
    path,
    `<!doctype html><html><head><meta charset="utf-8">${CSP}${rx.importMap()}
<script>window.__errors = []; addEventListener('error', (e) => __errors.push(String(e.message))); addEventListener('unhandledrejection', (e) => __errors.push('unhandled: ' + String(e.reason)));</script>
<script type="module">
  import * as et from '/dist/index.js';
  window.et = et;
  const policy = trustedTypes.createPolicy('app', { createScriptURL: (url) => url });
  window.tracer = et.init({ endpoint: ${JSON.stringify(rx.endpoint)}, serviceName: 'e2e', instrument: false, workerUrl: ${workerUrl} });
  window.makeSpans = (n, prefix) => { for (let i = 0; i < n; i++) window.tracer.createTrace(prefix + i).finish(); };
  window.sdkLoaded = true;
</script></head><body></body></html>`,
  );

test('under Trusted Types a TrustedScriptURL registers the worker, which delivers', async ({ page: tab }) => {
  await tab.goto(page('/tt-trusted.html', `policy.createScriptURL('/edgetrace-sw.js')`));
  await waitForTransport(tab, 'worker');
  await tab.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(5, 'tt-'));
  await expect.poll(() => spansNamed(rx, 'tt-').length, { timeout: 20_000, intervals: [250] }).toBe(5);
  expect((await statusOf(tab)).fallback).toBeUndefined();
  expect(await tab.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

test('under Trusted Types a plain string is refused by the browser, and the page outbox delivers instead', async ({ page: tab }) => {
  const said: string[] = [];
  tab.on('console', (m) => void (m.text().startsWith('[edgetrace]') && said.push(m.text())));
  await tab.goto(page('/tt-string.html', `'/edgetrace-sw.js'`));
  await waitForTransport(tab, 'page');
  await tab.evaluate(() => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(5, 'tt-string-'));
  await expect.poll(() => spansNamed(rx, 'tt-string-').length, { timeout: 20_000, intervals: [250] }).toBe(5);
  const status = await statusOf(tab);
  expect(status.transport).toBe('page');
  // The status carries the browser's refusal.
  expect(status.fallback).toMatch(/^no service worker \(.*TrustedScriptURL/);
  // The console says how to register it under the policy.
  expect(said.find((t) => t.includes('could not be registered'))).toMatch(/Under Trusted Types, pass init\(\{ workerUrl: policy\.createScriptURL\('\/edgetrace-sw\.js'\) \}\)/);
  expect(await tab.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

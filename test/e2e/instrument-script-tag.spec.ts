import { test, expect } from '@playwright/test';
import { startServers, type Servers } from './instrument-fixtures';

// A page with nothing but the script tag: clicks and fetches are traced, trace headers go to
// the same origin and the data-propagate-to origin only, and spans reach data-endpoint through
// whatever delivery init() picks.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());

test('a page with only the script tag traces its clicks and fetches', async ({ page }) => {
  const html = `<!doctype html><html><head><meta charset="utf-8">
<script src="/dist/edgetrace.iife.js" data-endpoint="/v1/traces" data-service-name="tag-only" data-propagate-to="${s.allowed}"></script>
</head><body>
<button id="go" onclick="fetch('/api/tag').then(function (r) { return r.text(); }).then(function () { return fetch('${s.allowed}/api/tag-allowed'); }).then(function () { return fetch('${s.third}/api/tag-third'); }).then(function () { document.getElementById('out').textContent = 'done'; })">Go</button>
<p id="out"></p></body></html>`;
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(s.page('/tag.html', html));
  expect(await page.evaluate(() => typeof (window as unknown as { edgetrace?: { setUser?: unknown } }).edgetrace?.setUser)).toBe('function');
  await page.waitForTimeout(700);
  await page.click('#go');
  await expect(page.locator('#out')).toHaveText('done');
  const tp = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/;
  expect(s.seen.find((r) => r.path === '/api/tag')?.headers.traceparent).toMatch(tp);
  expect(s.seen.find((r) => r.path === '/api/tag-allowed')?.headers.traceparent).toMatch(tp);
  expect(s.seen.find((r) => r.path === '/api/tag-third')?.headers.traceparent).toBeUndefined();
  // Hide the page so that whatever delivery path is in use hands its records over now.
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
    dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
  });
  await expect.poll(() => s.spans().find((x) => x.name === 'click button#go'), { timeout: 20_000 }).toBeDefined();
  await expect.poll(() => s.spans().filter((x) => String(x.attrs['url.full']).includes('/api/tag')).length, { timeout: 20_000 }).toBe(3);
  const spans = s.spans();
  const click = spans.find((x) => x.name === 'click button#go')!;
  for (const x of spans.filter((x) => String(x.attrs['url.full']).includes('/api/tag'))) expect(x.parentId).toBe(click.spanId);
  expect(spans.some((x) => String(x.attrs['url.full']).includes('/v1/traces'))).toBe(false);
  expect(s.seen.some((r) => r.path.startsWith('/v1/traces'))).toBe(false);
  expect(errors).toEqual([]);
});

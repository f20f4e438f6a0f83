import { test, expect } from '@playwright/test';
import { receiverPerFile, spansNamed } from '../helpers/receiver';

// Two copies of edgetrace on one page: the script tag, and a bundle with its own copy (or two
// micro-frontends). The first to init() instruments the page; the other records only the spans
// its code makes. Without that, every request, click and page load would be traced twice.

const rx = receiverPerFile();

test('with the script tag and a bundled copy on one page, each request and the page load are traced once', async ({ page }) => {
  rx.file('/two-copies-api', 'application/json', '{"ok":true}');
  const url = rx.page(
    '/two-copies.html',
    `<!doctype html><html><head><meta charset="utf-8"><title>two copies</title>${rx.importMap()}
<script>window.__errors = []; addEventListener('error', (e) => __errors.push(String(e.message))); addEventListener('unhandledrejection', (e) => __errors.push('unhandled: ' + String(e.reason)));</script>
<script src="/dist/edgetrace.iife.js" data-endpoint="${rx.endpoint}" data-service-name="tag"></script>
<script type="module">
  import * as bundle from '/dist/index.js';
  bundle.init({ endpoint: '${rx.endpoint}', serviceName: 'bundle' });
  window.bundle = bundle;
</script></head><body><p>two copies</p></body></html>`,
  );
  await page.goto(url);
  await page.waitForFunction(() => 'bundle' in window);
  type Copy = { getTracer(): { createTrace(name: string): { finish(): void } }; flushNow(): Promise<unknown> };
  await page.evaluate(async () => {
    const w = window as unknown as { edgetrace: Copy; bundle: Copy };
    await (await fetch('/two-copies-api')).text();
    w.edgetrace.getTracer().createTrace('own-tag').finish();
    w.bundle.getTracer().createTrace('own-bundle').finish();
    await w.edgetrace.flushNow();
    await w.bundle.flushNow();
  });
  // Each copy's own spans arrive, so whatever else either copy recorded has arrived with them.
  await expect.poll(() => spansNamed(rx, 'own-').map((s) => s.name).sort(), { timeout: 20_000 }).toEqual(['own-bundle', 'own-tag']);
  await expect.poll(() => spansNamed(rx, 'page load').length, { timeout: 20_000 }).toBe(1);
  const calls = [...rx.spans().values()].filter((s) => s.attributes?.some((a) => a.key === 'url.full' && a.value.stringValue?.endsWith('/two-copies-api')));
  expect(calls).toHaveLength(1);
  expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

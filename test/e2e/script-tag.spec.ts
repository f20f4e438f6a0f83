import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { test, expect, type Page } from '@playwright/test';
import type { OtlpAnyValue, OtlpSpan, OtlpTraceRequest } from '../../src/export/otlp';

// The `<script>` build end to end: real Chromium loads dist/edgetrace.iife.js from a loopback
// server, which also plays the OTLP/HTTP receiver. Assertions are on what the receiver got.
// Needs `npm run build` first (`npm test` does that).

const IIFE = fileURLToPath(new URL('../../dist/edgetrace.iife.js', import.meta.url));
interface Received {
  contentType: string | undefined;
  token: string | undefined;
  body: OtlpTraceRequest;
}

let server: Server;
let origin: string;
const pages = new Map<string, string>();
const received: Received[] = [];

const readBody = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

test.beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const reply = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    // CORS for any origin: the sandboxed frame's origin is opaque ("null"), so its POSTs are cross-origin.
    res.setHeader('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS' && path === '/v1/traces') {
      res.writeHead(204, { 'access-control-allow-methods': 'POST', 'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'content-type') });
      res.end();
      return;
    }
    if (req.method === 'POST' && path === '/v1/traces') {
      readBody(req)
        .then((text) => {
          received.push({ contentType: req.headers['content-type'], token: req.headers['x-edgetrace-token'] as string | undefined, body: JSON.parse(text) as OtlpTraceRequest });
          reply(200, 'application/json', '{}');
        })
        .catch((error: unknown) => reply(400, 'text/plain', String(error)));
      return;
    }
    if (path === '/edgetrace.iife.js') {
      readFile(IIFE)
        .then((js) => reply(200, 'text/javascript', js))
        .catch(() => reply(500, 'text/plain', 'dist/edgetrace.iife.js is missing: run `npm run build` first'));
      return;
    }
    if (path === '/favicon.ico') return reply(204, 'image/x-icon', '');
    const html = pages.get(path);
    // A page served without a charset (and with no <meta charset>), as some still are.
    if (html !== undefined) return reply(200, path.endsWith('.nocharset.html') ? 'text/html' : 'text/html; charset=utf-8', html);
    reply(404, 'text/plain', 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test.beforeEach(() => {
  received.length = 0;
});

/** Registers a page whose head records everything that reaches window.onerror or unhandledrejection. */
const servePage = (path: string, body: string): string => {
  pages.set(
    path,
    `<!doctype html><html><head><meta charset="utf-8"><title>edgetrace e2e</title>
<script>
  window.__errors = [];
  window.onerror = function (message) { window.__errors.push(String(message)); };
  window.addEventListener('unhandledrejection', function (e) { window.__errors.push('unhandled rejection: ' + String(e.reason)); });
</script></head><body>${body}</body></html>`,
  );
  return origin + path;
};

/** Collects uncaught page errors, console warnings and information while a test runs. */
const watch = (page: Page): { pageErrors: string[]; warnings: string[]; infos: string[] } => {
  const seen = { pageErrors: [] as string[], warnings: [] as string[], infos: [] as string[] };
  page.on('pageerror', (error) => seen.pageErrors.push(error.message));
  page.on('console', (msg) => {
    if (msg.type() === 'warning' || msg.type() === 'error') seen.warnings.push(msg.text());
    if (msg.type() === 'info') seen.infos.push(msg.text());
  });
  return seen;
};

/** A page with the script tag (`attrs`), then `script`, then a flush the test can await with {@link flushed}. */
const tagPage = (path: string, attrs: string, script: string): string =>
  servePage(
    path,
    `<script src="/edgetrace.iife.js" ${attrs}></script>
<script>
  ${script}
  window.__flushed = edgetrace.getTracer().flush().then(function () { return 'flushed'; });
</script>`,
  );
const flushed = (page: Page): Promise<string> => page.evaluate(() => (window as unknown as { __flushed: Promise<string> }).__flushed);

const spansOf = (requests: Received[]): OtlpSpan[] =>
  requests.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));

test('a script tag with data-endpoint sends the page\'s spans as OTLP JSON', async ({ page }) => {
  const seen = watch(page);
  const url = tagPage(
    '/traced.html',
    `data-endpoint="${origin}/v1/traces" data-service-name="e2e-page"`,
    `edgetrace.getTracer().withTrace('page-trace', function (t) {
    return t.span('child', function (s) { s.setAttribute('k', 1); });
  });`,
  );
  await page.goto(url);
  expect(await flushed(page)).toBe('flushed');
  // The page's own trace; the page-load spans the instrumentation adds arrive beside it.
  const own = (): OtlpSpan[] => spansOf(received).filter((s) => s.name === 'page-trace' || s.name === 'child');
  await expect.poll(() => own().length).toBe(2);

  const spans = own();
  const root = spans.find((s) => s.name === 'page-trace');
  const child = spans.find((s) => s.name === 'child');
  expect(root, 'root span received').toBeDefined();
  expect(child, 'child span received').toBeDefined();
  expect(root!.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(root!.spanId).toMatch(/^[0-9a-f]{16}$/);
  expect(child!.traceId).toBe(root!.traceId);
  expect(child!.parentSpanId).toBe(root!.spanId);
  expect(root!.parentSpanId ?? '').toBe('');
  expect(child!.attributes).toContainEqual({ key: 'k', value: { intValue: '1' } });

  // The browser names itself on the resource, as the page reads it.
  const nav = await page.evaluate(() => ({
    ua: navigator.userAgent,
    language: navigator.language,
    brands: (navigator as unknown as { userAgentData: { brands: { brand: string; version: string }[] } }).userAgentData.brands.map((b) => `${b.brand} ${b.version}`),
  }));
  expect(nav.brands.some((b) => b.startsWith('Chromium '))).toBe(true);
  for (const r of received) {
    expect(r.contentType).toContain('application/json');
    for (const rs of r.body.resourceSpans) {
      expect(rs.resource?.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'e2e-page' } });
      // A page is OpenTelemetry's `webjs`.
      expect(rs.resource?.attributes).toContainEqual({ key: 'telemetry.sdk.language', value: { stringValue: 'webjs' } });
      expect(rs.resource?.attributes).toContainEqual({ key: 'user_agent.original', value: { stringValue: nav.ua } });
      expect(rs.resource?.attributes).toContainEqual({ key: 'browser.language', value: { stringValue: nav.language } });
      expect(rs.resource?.attributes).toContainEqual({ key: 'browser.mobile', value: { boolValue: false } });
      const brands = rs.resource?.attributes.find((a) => a.key === 'browser.brands')?.value as { arrayValue?: { values: { stringValue: string }[] } } | undefined;
      expect(brands?.arrayValue?.values.map((v) => v.stringValue)).toEqual(nav.brands);
    }
  }
  expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
  expect(seen.pageErrors).toEqual([]);
});

test('data-ingest-token travels with every request to data-endpoint', async ({ page }) => {
  const seen = watch(page);
  const url = tagPage('/token.html', `data-endpoint="${origin}/v1/traces" data-service-name="token-page" data-ingest-token="pub_tag_token_1"`, `edgetrace.getTracer().withTrace('with-token', function () {});`);
  await page.goto(url);
  expect(await flushed(page)).toBe('flushed');
  await expect.poll(() => spansOf(received).filter((s) => s.name === 'with-token').length).toBe(1);
  // This page's requests: the page of the test before may still hand over its page load as it closes.
  const mine = received.filter((r) => r.body.resourceSpans.some((rs) => rs.resource?.attributes.some((a) => a.key === 'service.name' && (a.value as { stringValue?: string }).stringValue === 'token-page')));
  expect(mine.length).toBeGreaterThan(0);
  expect(mine.map((r) => r.token)).toEqual(mine.map(() => 'pub_tag_token_1'));
  expect(seen.pageErrors).toEqual([]);
  // This server has no service worker to give (Chromium says so); the tag itself has no complaint,
  // and the SDK tells, once, as information, what it does instead.
  expect(seen.warnings.filter((w) => w.startsWith('[edgetrace]'))).toEqual([]);
  expect(seen.infos.filter((w) => w.startsWith('[edgetrace]'))).toEqual([
    expect.stringMatching(/^\[edgetrace\] the service worker \/edgetrace-sw\.js could not be registered \(.*404.*\), so spans are sent from the page\./),
  ]);
});

test('data-worker-url names the service worker to register, and "false" registers none', async ({ page }) => {
  const seen = watch(page);
  await page.goto(tagPage('/worker-url.html', `data-endpoint="${origin}/v1/traces" data-worker-url="/static/trace-sw.js"`, `edgetrace.getTracer().withTrace('custom-worker', function () {});`));
  expect(await flushed(page)).toBe('flushed');
  await expect.poll(() => seen.infos.filter((w) => w.startsWith('[edgetrace]'))).toEqual([
    expect.stringMatching(/^\[edgetrace\] the service worker \/static\/trace-sw\.js could not be registered/),
  ]);
  const none = watch(page);
  await page.goto(tagPage('/worker-url-false.html', `data-endpoint="${origin}/v1/traces" data-worker-url="false" data-sample-rate="1"`, `edgetrace.getTracer().withTrace('no-worker', function () {});`));
  expect(await flushed(page)).toBe('flushed');
  // Waits for the site's own worker, which this page does not have: nothing registered, nothing said.
  expect(await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length)).toBe(0);
  expect(none.infos.filter((w) => w.startsWith('[edgetrace]'))).toEqual([]);
  expect([...seen.pageErrors, ...seen.warnings.filter((w) => w.startsWith('[edgetrace]'))]).toEqual([]);
});

test('loaded as a module script, the tag defines window.edgetrace and says its data-* options cannot be read', async ({ page }) => {
  const seen = watch(page);
  const url = servePage(
    '/module-tag.html',
    `<script type="module" src="/edgetrace.iife.js" data-endpoint="${origin}/v1/traces"></script>
<script type="module">
  window.__api = typeof window.edgetrace?.init;
  window.__patched = !String(window.fetch).includes('[native code]');
</script>`,
  );
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __api?: string }).__api !== undefined);
  expect(await page.evaluate(() => (window as unknown as { __api: string }).__api)).toBe('function');
  // Tracing stays off: the options were not read.
  expect(await page.evaluate(() => (window as unknown as { __patched: boolean }).__patched)).toBe(false);
  const warnings = seen.warnings.filter((w) => w.startsWith('[edgetrace]'));
  expect(warnings).toEqual([expect.stringContaining('they cannot be read from a <script type="module">')]);
  expect(seen.pageErrors).toEqual([]);
});

test('a module script tag with options but no data-endpoint says so too', async ({ page }) => {
  const seen = watch(page);
  const url = servePage(
    '/module-tag-no-endpoint.html',
    `<script type="module" src="/edgetrace.iife.js" data-service-name="shop" data-ingest-token="pub-1"></script>
<script type="module">window.__api = typeof window.edgetrace?.init;</script>`,
  );
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __api?: string }).__api !== undefined);
  expect(seen.warnings.filter((w) => w.startsWith('[edgetrace]'))).toEqual([expect.stringContaining('they cannot be read from a <script type="module">')]);
  expect(seen.pageErrors).toEqual([]);
});

test('an invalid data-sample-rate warns and leaves the page running', async ({ page }) => {
  const seen = watch(page);
  const url = servePage(
    '/bad-rate.html',
    `<script src="/edgetrace.iife.js" data-endpoint="${origin}/v1/traces" data-sample-rate="50%"></script>
<p id="status">waiting</p>
<script>
  document.getElementById('status').textContent = 'page script ran';
  // The API still answers; with no init() nothing is recorded or sent.
  edgetrace.getTracer().withTrace('unsent', function (t) { t.setAttribute('k', 1); });
  window.__flushed = edgetrace.getTracer().flush().then(function () { return 'flushed'; });
</script>`,
  );
  await page.goto(url);
  await expect(page.locator('#status')).toHaveText('page script ran');
  expect(await page.evaluate(() => (window as unknown as { __flushed: Promise<string> }).__flushed)).toBe('flushed');

  const warning = seen.warnings.find((w) => w.startsWith('[edgetrace]'));
  expect(warning, 'one [edgetrace] console warning').toBeDefined();
  // Named as the page wrote it, not as init() calls it.
  expect(warning).toContain('data-sample-rate must be');
  expect(warning).toContain('"50%"');
  expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
  expect(seen.pageErrors).toEqual([]);
  expect(received).toEqual([]);
});

for (const [label, attrs, named] of [
  ['a data-propagate-to pattern that does not compile', `data-endpoint="/v1/traces" data-propagate-to="https://a.test /^(/"`, 'data-propagate-to: /^(/'],
  ['options without data-endpoint', `data-service-name="shop" data-sample-rate="1"`, 'data-endpoint is missing (the tag sets data-service-name, data-sample-rate)'],
] as const) {
  test(`${label}: one warning naming it, tracing off, the page running`, async ({ page }) => {
    const seen = watch(page);
    const url = servePage(
      `/bad-${label.length}.html`,
      `<script src="/edgetrace.iife.js" ${attrs}></script>
<p id="status">waiting</p>
<script>
  document.getElementById('status').textContent = 'page script ran';
  fetch('/v1/traces-probe').catch(function () {});
</script>`,
    );
    await page.goto(url);
    await expect(page.locator('#status')).toHaveText('page script ran');
    const warnings = seen.warnings.filter((w) => w.startsWith('[edgetrace]'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(named);
    expect(seen.pageErrors).toEqual([]);
    // Not initialised: fetch is the browser's own.
    expect(await page.evaluate(() => String(window.fetch).includes('[native code]'))).toBe(true);
  });
}

test('a misspelt data-* option is named with the one it is likely meant as; tracing goes on; other data-* are left alone', async ({ page }) => {
  const seen = watch(page);
  const url = servePage(
    '/typo.html',
    `<script src="/edgetrace.iife.js" data-endpoint="/v1/traces" data-propagte-to="https://api.test" data-propagate="https://api.test" data-token="pub_1" data-cfasync="false" data-domain="shop.test"></script>`,
  );
  await page.goto(url);
  const warnings = seen.warnings.filter((w) => w.startsWith('[edgetrace]'));
  // Also a part of an option's name, as other tags spell theirs.
  expect(warnings).toEqual([
    '[edgetrace] data-propagte-to is not an option of the tag and is ignored (did you mean data-propagate-to?)',
    '[edgetrace] data-propagate is not an option of the tag and is ignored (did you mean data-propagate-to?)',
    '[edgetrace] data-token is not an option of the tag and is ignored (did you mean data-ingest-token?)',
  ]);
  // Initialised all the same: fetch is traced.
  expect(await page.evaluate(() => String(window.fetch).includes('[native code]'))).toBe(false);
  expect(seen.pageErrors).toEqual([]);
});

test('a script tag without data-endpoint only defines window.edgetrace', async ({ page }) => {
  const seen = watch(page);
  const url = servePage('/no-endpoint.html', `<script src="/edgetrace.iife.js"></script>`);
  await page.goto(url);
  const api = await page.evaluate(() => {
    const et = (window as unknown as { edgetrace?: Record<string, unknown> }).edgetrace;
    return et ? ['init', 'getTracer', 'createTracer', 'inject', 'extract'].filter((k) => typeof et[k] === 'function') : [];
  });
  expect(api).toEqual(['init', 'getTracer', 'createTracer', 'inject', 'extract']);
  expect(seen.warnings.filter((w) => w.includes('[edgetrace]'))).toEqual([]);
  expect(seen.pageErrors).toEqual([]);
});

test('init() in a sandboxed iframe, where reading navigator.serviceWorker throws, traces without the worker', async ({ page }) => {
  const seen = watch(page);
  servePage(
    '/sandboxed-inner.html',
    `<script src="/edgetrace.iife.js"></script>
<script>
  var outcome;
  try {
    edgetrace.init({ endpoint: '${origin}/v1/traces', serviceName: 'sandboxed' });
    var value = edgetrace.getTracer().withTrace('in-sandbox', function () { return 42; });
    outcome = 'init ok, traced ' + value;
  } catch (e) {
    outcome = e.name + ': ' + e.message;
  }
  edgetrace.getStatus().then(function (s) { parent.postMessage({ outcome: outcome, transport: s.transport, fallback: s.fallback }, '*'); });
</script>`,
  );
  const url = servePage(
    '/sandbox-host.html',
    `<script>
  window.__inner = new Promise(function (resolve) { addEventListener('message', function (e) { resolve(e.data); }); });
</script>
<iframe sandbox="allow-scripts" src="/sandboxed-inner.html"></iframe>`,
  );
  await page.goto(url);
  // The precondition: in this sandbox the property itself throws.
  const frame = page.frames().find((f) => f.url().endsWith('/sandboxed-inner.html'))!;
  expect(await frame.evaluate(() => { try { void navigator.serviceWorker; return 'readable'; } catch (e) { return (e as Error).name; } })).toBe('SecurityError');
  const inner = await page.evaluate(() => (window as unknown as { __inner: Promise<{ outcome: string; transport: string; fallback?: string }> }).__inner);
  expect(inner.outcome).toBe('init ok, traced 42');
  // An opaque origin: no worker, and an indexedDB whose open() throws, so memory from the start
  // rather than after the page outbox failed three times.
  expect(inner.transport).toBe('memory');
  expect(inner.fallback).toBe('no IndexedDB (a sandboxed frame, or storage blocked)');
  // And the trace made in the sandbox is delivered.
  await expect.poll(() => spansOf(received).map((s) => s.name), { timeout: 15_000 }).toContain('in-sandbox');
  expect(seen.pageErrors).toEqual([]);
});

test('reads right on a page with no charset: its text is ASCII, whatever the browser decodes it as', async ({ page }) => {
  // Without a charset anywhere, Chromium reads the page and the script as windows-1252.
  pages.set(
    '/legacy.nocharset.html',
    `<!doctype html><html><head><title>legacy</title><script src="/edgetrace.iife.js"></script></head><body>
<script>
  try {
    edgetrace.init({ endpoint: '${origin}/v1/traces', delivery: { maxBatchRecords: 0 } });
  } catch (error) {
    window.__message = error.message;
  }
</script></body></html>`,
  );
  await page.goto(`${origin}/legacy.nocharset.html`);
  expect(await page.evaluate(() => document.characterSet)).toBe('windows-1252');
  const message = await page.evaluate(() => (window as unknown as { __message?: string }).__message);
  expect(message).toContain('"delivery.maxBatchRecords" must be a whole number \u2265 1');
  expect(/^[\x00-\x7f]*$/.test(await readFile(IIFE, 'utf8'))).toBe(true);
});

import { test, expect, type Page } from '@playwright/test';
import { IMPORT_MAP, pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// edgetrace/vitals: the Web Vitals arrive on the page's trace once the page is hidden, without
// an explicit flush, and INP sits under the interaction that caused it.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());
test.beforeEach(() => s.reset());

/** Page script: vitals recorded, and every report kept in `window.reports` as onVitals gives it. */
const REPORTING = `
    window.vitals.instrumentVitals();
    window.reports = [];
    window.vitals.onVitals((v) => window.reports.push(v));`;

/** Page script that keeps the main thread busy for `ms`. */
const block = (ms: number): string => `const end = performance.now() + ${ms};
      while (performance.now() < end) {}`;

/** What a tab switch does: the document becomes hidden and says so. */
const hide = (page: Page): Promise<void> =>
  page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    Object.defineProperty(document, 'hidden', { value: true, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });

/** Clicks the page's slow button, hides the page, and waits for the four vitals a hidden page reports. */
const slowClickThenHide = async (page: Page, timeout: number): Promise<void> => {
  await ready(page);
  await page.waitForTimeout(300);
  await page.click('#slow');
  await expect(page.locator('#out')).toHaveText('clicked');
  // web-vitals takes in Event Timing entries when the page is idle (at most 1 s later); an
  // interaction not taken in before the page is hidden is not part of the INP it reports then.
  await page.waitForTimeout(1200);
  await hide(page);
  await expect.poll(() => s.spans().filter((x) => x.attrs['web_vital.name']).map((x) => x.name).sort(), { timeout }).toEqual(
    expect.arrayContaining(['FCP', 'INP', 'LCP', 'TTFB']),
  );
};

test('vitals arrive after the page is hidden, on the page trace, with INP under its interaction', async ({ page }) => {
  const setup = `${REPORTING}
    document.getElementById('slow').addEventListener('click', () => {
      ${block(120)}
      document.getElementById('out').textContent = 'clicked';
    });`;
  // A long batch delay: only the flush that follows the hidden page can deliver in time.
  await page.goto(
    s.page(
      '/vitals.html',
      testPage({
        vitals: true,
        init: '{ batch: { delayMs: 60000 } }',
        setup,
        body: '<h1>Largest text on the page</h1><p>Some content to paint.</p><button id="slow">Slow</button><p id="out"></p>',
      }),
    ),
  );
  await slowClickThenHide(page, 10_000);
  const spans = s.spans();
  const load = spans.find((x) => x.name === 'page load');
  const click = spans.find((x) => x.name === 'click button#slow');
  const vital = (n: string) => spans.find((x) => x.attrs['web_vital.name'] === n)!;
  for (const n of ['FCP', 'LCP', 'TTFB']) {
    expect(vital(n).parentId).toBe(load?.spanId ?? vital('FCP').parentId);
    expect(vital(n).attrs['web_vital.rating']).toMatch(/good|needs-improvement|poor/);
    expect(vital(n).endMs - vital(n).startMs).toBeCloseTo(vital(n).attrs['web_vital.value'] as number, 0);
  }
  const inp = vital('INP');
  expect(inp.attrs['web_vital.value']).toBeGreaterThanOrEqual(100);
  expect(click, 'the interaction span was delivered too').toBeDefined();
  expect(inp.parentId).toBe(click!.spanId);
  expect(inp.traceId).toBe(click!.traceId);
  const reports = (await page.evaluate(() => (window as unknown as { reports: { name: string; interactionSpanId?: string }[] }).reports)) ?? [];
  expect(reports.find((r) => r.name === 'INP')?.interactionSpanId).toBe(click!.spanId);
  expect(await pageErrors(page)).toEqual([]);
});

test('INP caused by a key press in a text field is not put under a click made just before it', async ({ page }) => {
  const setup = `${REPORTING}
    document.getElementById('q').addEventListener('keydown', () => {
      ${block(300)}
    });`;
  await page.goto(
    s.page('/vitals-typing.html', testPage({ vitals: true, init: '{ batch: { delayMs: 60000 } }', setup, body: '<h1>Search</h1><button id="fast">Fast</button><input id="q">' })),
  );
  await ready(page);
  await page.waitForTimeout(300);
  await page.click('#fast');
  await page.waitForTimeout(200);
  // Typing is no interaction of ours (only Enter in a field is), but it is the slowest one INP sees.
  await page.locator('#q').press('a');
  await page.waitForTimeout(1200);
  await hide(page);
  await expect.poll(() => s.spans().find((x) => x.attrs['web_vital.name'] === 'INP'), { timeout: 10_000 }).toBeDefined();
  const spans = s.spans();
  const inp = spans.find((x) => x.attrs['web_vital.name'] === 'INP')!;
  const click = spans.find((x) => x.name === 'click button#fast');
  expect(inp.attrs['web_vital.value']).toBeGreaterThanOrEqual(250);
  expect(click, 'the click was recorded').toBeDefined();
  expect(inp.parentId).not.toBe(click!.spanId);
  expect(inp.parentId).toBe(spans.find((x) => x.name === 'page load')!.spanId);
  const reports = await page.evaluate(() => (window as unknown as { reports: { name: string; interactionSpanId?: string }[] }).reports);
  expect(reports.find((r) => r.name === 'INP')!.interactionSpanId).toBeUndefined();
  expect(await pageErrors(page)).toEqual([]);
});

test('edgetrace/vitals imported beside the script tag records on the tag\'s page load and clicks', async ({ page }) => {
  // The tag bundles its own copy of edgetrace; the import is the ESM build, a second copy.
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>tag and vitals</title>
<script src="/dist/edgetrace.iife.js" data-endpoint="/v1/traces" data-service-name="tag"></script>
<script type="importmap">${IMPORT_MAP}</script>
<script type="module">
  import { instrumentVitals } from '/dist/vitals.js';
  instrumentVitals();
  document.getElementById('slow').addEventListener('click', () => {
    ${block(120)}
    document.getElementById('out').textContent = 'clicked';
  });
  window.__ready = true;
</script></head><body><h1>Largest text on the page</h1><button id="slow">Slow</button><p id="out"></p></body></html>`;
  await page.goto(s.page('/tag-vitals.html', html));
  await slowClickThenHide(page, 15_000);
  const spans = s.spans();
  const load = spans.find((x) => x.name === 'page load')!;
  const vital = (n: string) => spans.find((x) => x.attrs['web_vital.name'] === n)!;
  for (const n of ['FCP', 'LCP', 'TTFB']) expect([vital(n).traceId, vital(n).parentId]).toEqual([load.traceId, load.spanId]);
  await expect.poll(() => s.spans().find((x) => x.name === 'click button#slow'), { timeout: 10_000 }).toBeDefined();
  expect(vital('INP').parentId).toBe(s.spans().find((x) => x.name === 'click button#slow')!.spanId);
  expect(await page.evaluate(() => (window as unknown as { edgetrace: { internalErrorCount(): number } }).edgetrace.internalErrorCount())).toBe(0);
});

import { test, expect, type Page } from '@playwright/test';
import { flush, pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// Page load from Navigation Timing, continued from the server's trace, and SPA route changes.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());
test.beforeEach(() => s.reset());

/** Opens `url` and waits for its page-load span to be delivered. */
const pageLoadOf = async (page: Page, url: string): Promise<ReturnType<Servers['spans']>[number]> => {
  await page.goto(url);
  await ready(page);
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'page load')), { timeout: 10_000 }).toBeDefined();
  return s.spans().find((x) => x.name === 'page load')!;
};

const SERVER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SERVER_SPAN = '00f067aa0ba902b7';

test('the page load continues the server trace from <meta name="traceparent"> and adopts start-up fetches', async ({ page }) => {
  const url = s.page(
    '/load.html',
    testPage({
      head: `<meta name="traceparent" content="00-${SERVER_TRACE}-${SERVER_SPAN}-01">`,
      init: '{}',
      setup: "fetch('/api/boot').then((r) => r.json());",
      body: '<h1>Hello</h1>',
    }),
  );
  const load = await pageLoadOf(page, url);
  const spans = s.spans();
  expect(load.traceId).toBe(SERVER_TRACE);
  expect(load.parentId).toBe(SERVER_SPAN);
  expect(load.attrs['url.full']).toBe(url);
  expect(load.attrs['edgetrace.navigation.type']).toBe('navigate');
  expect(load.attrs['http.response.status_code']).toBe(200);
  const marks = load.events.map((e) => e.name);
  for (const m of ['fetchStart', 'responseStart', 'responseEnd', 'domInteractive', 'domContentLoadedEventEnd', 'loadEventEnd']) expect(marks).toContain(m);
  const doc = spans.find((x) => x.name === 'document fetch')!;
  expect(doc.parentId).toBe(load.spanId);
  expect(doc.kind).toBe(3);
  // The loopback server speaks HTTP/1.1: nextHopProtocol "http/1.1".
  expect(doc.attrs).toMatchObject({ 'network.protocol.name': 'http', 'network.protocol.version': '1.1' });
  const boot = spans.find((x) => String(x.attrs['url.full']).endsWith('/api/boot'))!;
  expect(boot.parentId).toBe(load.spanId);
  expect(s.seen.find((r) => r.path === '/api/boot')!.headers.traceparent).toContain(SERVER_TRACE);
  expect(load.endMs).toBeGreaterThanOrEqual(boot.endMs - 1);
  expect(load.attrs['session.id']).toMatch(/^[\w-]{21}$/);
  expect(await pageErrors(page)).toEqual([]);
});

test('a long poll started during the load neither holds the page load open nor stretches it', async ({ page }) => {
  const url = s.page(
    '/long-poll.html',
    testPage({
      // A chat UI's notifications: a request the server answers only when there is news.
      init: '{ interactionTimeoutMs: 2000 }',
      setup: "fetch('/api/slow?ms=8000'); fetch('/api/slow?ms=600').then((r) => r.text());",
    }),
  );
  const load = await pageLoadOf(page, url);
  const spans = s.spans();
  // Sent once the deadline passed, before the poll is answered. (Query values are redacted, so
  // the two requests are told apart by when they end.)
  const calls = (): typeof spans => s.spans().filter((x) => String(x.attrs['url.full']).includes('/api/slow'));
  expect(calls()).toHaveLength(1);
  const data = calls()[0]!;
  expect(data.parentId).toBe(load.spanId);
  // It ends where its last finished work did: the data request, not the poll.
  expect(load.endMs).toBeGreaterThanOrEqual(data.endMs - 1);
  expect(data.endMs - data.startMs).toBeLessThan(5000);
  // The poll goes on as the page load's child, and is sent when it is answered.
  await expect.poll(async () => (await flush(page), calls().length), { timeout: 30_000, intervals: [1000] }).toBe(2);
  const poll = calls().find((x) => x.spanId !== data.spanId)!;
  expect(poll.parentId).toBe(load.spanId);
  expect(poll.traceId).toBe(load.traceId);
  expect(poll.endMs - poll.startMs).toBeGreaterThan(7_000);
  // Not stretched by it: the load ended long before the poll was answered.
  expect(load.endMs).toBeLessThan(poll.startMs + 5_000);
  expect(await pageErrors(page)).toEqual([]);
});

test('without a meta tag, a Server-Timing traceparent links the page load', async ({ page }) => {
  const tp = `00-${SERVER_TRACE}-${SERVER_SPAN}-01`;
  const load = await pageLoadOf(page, `${s.page('/timing.html', testPage({ init: '{}' }))}?server-timing=${tp}`);
  expect(load.traceId).toBe(SERVER_TRACE);
  expect(load.parentId).toBe(SERVER_SPAN);
});

test("a page from the HTTP cache is not linked to the server span that once rendered it, and Server-Timing wins over a meta tag of another trace", async ({ page }) => {
  const head = `<meta name="traceparent" content="00-${SERVER_TRACE}-${SERVER_SPAN}-01">`;
  const cached = `${s.page('/cached.html', testPage({ head, init: '{}', body: '<a id="other" href="/other.html">other</a>' }))}?cache=1`;
  s.page('/other.html', testPage({ body: `<a id="back" href="${cached}">back</a>` }));
  const first = await pageLoadOf(page, cached);
  expect(first.parentId).toBe(SERVER_SPAN);
  // Away and back by a link: the browser takes the page from its cache, meta tag and all.
  await page.click('#other');
  await page.waitForURL('**/other.html');
  s.reset();
  await page.click('#back');
  await ready(page);
  const entry = await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming & { deliveryType?: string }).deliveryType);
  expect(entry).toBe('cache');
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'page load')), { timeout: 10_000 }).toBeDefined();
  const again = s.spans().find((x) => x.name === 'page load')!;
  expect(again.parentId).toBeUndefined();
  expect(again.traceId).not.toBe(SERVER_TRACE);

  // A meta tag and a header that name two traces, as after a 304 (the body, meta tag and all, is
  // the old response's; the header comes with the new one): the header wins.
  s.reset();
  const fresh = '11111111111111111111111111111111';
  const load = await pageLoadOf(page, `${s.page('/revalidated.html', testPage({ head, init: '{}' }))}?server-timing=00-${fresh}-2222222222222222-01`);
  expect([load.traceId, load.parentId]).toEqual([fresh, '2222222222222222']);
});

test('History API route changes and popstate become navigation spans', async ({ page }) => {
  const setup = `
    document.getElementById('nav').addEventListener('click', () => {
      history.pushState({}, '', '/app/settings?tab=2');
      fetch('/api/settings');
    });`;
  await page.goto(s.page('/app/home', testPage({ init: '{}', setup, body: '<button id="nav">Settings</button>' })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#nav');
  // Let the click's interaction end, so that the back navigation is an interaction of its own.
  await page.waitForTimeout(1800);
  await page.evaluate(() => history.replaceState({}, '', '/app/settings?tab=3'));
  await page.evaluate(() => history.replaceState({ s: 1 }, '', '#hash-only'));
  await page.evaluate(() => new Promise<void>((r) => {
    addEventListener('popstate', () => r(), { once: true });
    history.back();
  }));
  await page.waitForTimeout(100);
  await page.evaluate(() => fetch('/api/after-back'));
  await expect.poll(async () => (await flush(page), s.spans().filter((x) => x.name === 'navigation').length), { timeout: 10_000 }).toBe(2);
  const spans = s.spans();
  const navs = spans.filter((x) => x.name === 'navigation');
  const push = navs.find((x) => x.attrs['edgetrace.navigation.type'] === 'push')!;
  const pop = navs.find((x) => x.attrs['edgetrace.navigation.type'] === 'pop')!;
  const click = spans.find((x) => x.name === 'click button#nav')!;
  expect(push.parentId).toBe(click.spanId);
  expect(push.attrs['url.full']).toBe(`${s.app}/app/settings?tab=[REDACTED]`);
  expect(push.attrs['edgetrace.navigation.from']).toBe(`${s.app}/app/home`);
  expect(pop.parentId).toBeUndefined();
  await expect.poll(async () => (await flush(page), s.spans().some((x) => String(x.attrs['url.full']).endsWith('/api/after-back')))).toBe(true);
  const after = s.spans().find((x) => String(x.attrs['url.full']).endsWith('/api/after-back'))!;
  expect(after.parentId).toBe(pop.spanId);
  expect(await page.evaluate(() => location.pathname)).toBe('/app/home');
  expect(await pageErrors(page)).toEqual([]);
});

test("a hash router's route changes are navigations; an anchor is not", async ({ page }) => {
  await page.goto(s.page('/hash-app', testPage({ init: '{}' })));
  await ready(page);
  // A router that starts at the root makes it #/ at once: the same page, no navigation.
  await page.evaluate(() => history.replaceState({}, '', '#/'));
  // Vue's and React Router's hash history: pushState / replaceState with '#/route', then back.
  await page.evaluate(() => history.pushState({}, '', '#/users/1?tab=2'));
  await page.evaluate(() => history.pushState({}, '', '#/users/1?tab=3'));
  await page.evaluate(() => history.replaceState({}, '', '#/settings'));
  await page.evaluate(() => history.pushState({}, '', '#/settings#section'));
  await page.evaluate(() => new Promise<void>((r) => {
    addEventListener('popstate', () => r(), { once: true });
    history.back();
  }));
  // An older router sets location.hash. Leaving the routes for an anchor leaves the route; from
  // one anchor to another is no navigation.
  await page.evaluate(() => void (location.hash = '#!/inbox'));
  await page.evaluate(() => void (location.hash = '#top'));
  await page.evaluate(() => void (location.hash = '#bottom'));
  await expect.poll(async () => (await flush(page), s.spans().filter((x) => x.name === 'navigation').length), { timeout: 10_000 }).toBeGreaterThanOrEqual(7);
  await page.waitForTimeout(300);
  await flush(page);
  const navs = s.spans().filter((x) => x.name === 'navigation').sort((a, b) => a.startMs - b.startMs);
  expect(navs.map((n) => [n.attrs['edgetrace.navigation.type'], n.attrs['url.full']])).toEqual([
    ['push', `${s.app}/hash-app#/users/1?tab=[REDACTED]`],
    ['push', `${s.app}/hash-app#/users/1?tab=[REDACTED]`],
    ['replace', `${s.app}/hash-app#/settings`],
    ['push', `${s.app}/hash-app#/settings#section`],
    ['pop', `${s.app}/hash-app#/settings`],
    ['pop', `${s.app}/hash-app#!/inbox`],
    ['pop', `${s.app}/hash-app`],
  ]);
  expect(await pageErrors(page)).toEqual([]);
});

test('a router that listened for popstate before init() still gets its fetches under the back navigation', async ({ page }) => {
  // The app's router registers its listener first, as a bundle's router module does: a window's
  // popstate listeners run in the order they were added.
  const head = `<script>addEventListener('popstate', () => { fetch('/api/route-data-early'); });</script>`;
  await page.goto(s.page('/app/first', testPage({ init: '{}', head })));
  await ready(page);
  await page.evaluate(() => history.pushState({}, '', '/app/second'));
  // Past the push's own moment, so that the back navigation is an interaction of its own.
  await page.waitForTimeout(800);
  await page.evaluate(() => history.back());
  await expect.poll(async () => (await flush(page), s.spans().some((x) => String(x.attrs['url.full']).endsWith('/api/route-data-early'))), { timeout: 10_000 }).toBe(true);
  const pops = () => s.spans().filter((x) => x.name === 'navigation' && x.attrs['edgetrace.navigation.type'] === 'pop');
  await expect.poll(async () => (await flush(page), pops().length)).toBe(1);
  const data = s.spans().find((x) => String(x.attrs['url.full']).endsWith('/api/route-data-early'))!;
  expect(data.parentId).toBe(pops()[0]!.spanId);
  expect(pops()[0]!.attrs['url.full']).toBe(`${s.app}/app/first`);
  expect(await pageErrors(page)).toEqual([]);
});

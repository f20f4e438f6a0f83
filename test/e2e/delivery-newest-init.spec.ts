import { test, expect, type BrowserContext, type Page } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, statusOf, waitForTransport } from '../helpers/receiver';

// Two tabs of one origin share one service worker, and so one endpoint and one set of headers.
// A tab left open since before a token rotation reconnects to the worker for every hand-over and
// status call; it must not switch the worker back to its revoked token, which would send the
// shared outbox to the dead letters.

const rx = receiverPerFile();
const delivery = { flushIntervalMs: 200 };

/** Opens a tab whose init() sends with `token`, once its worker connection is up. */
const openTab = async (context: BrowserContext, path: string, token: string): Promise<Page> => {
  const page = await context.newPage();
  await page.goto(sdkPage(rx, path, { headers: { 'x-ingest-token': token }, delivery }));
  await waitForTransport(page, 'worker');
  return page;
};

test("an older tab's reconnections keep the newest init()'s headers", async ({ context }) => {
  // The old token is revoked: the receiver refuses it for good.
  rx.rule((r) => (r.headers['x-ingest-token'] === 'old' ? { status: 401, body: '{"message":"token revoked"}' } : undefined));
  const oldTab = await openTab(context, '/old.html', 'old');
  const newTab = await openTab(context, '/new.html', 'new');
  const sentBefore = rx.requests.length;

  // The old tab keeps working: hand-overs and status calls, each on a connection of its own.
  for (let round = 0; round < 3; round++) {
    await makeSpans(oldTab, 20, `old-r${round}-`);
    await makeSpans(newTab, 20, `new-r${round}-`);
    await statusOf(oldTab);
    await expect.poll(() => spansNamed(rx, `new-r${round}-`).length, { timeout: 30_000, intervals: [100] }).toBe(20);
  }
  await expect.poll(() => spansNamed(rx, 'old-').length, { timeout: 30_000, intervals: [100] }).toBe(60);
  const tokens = rx.requests.slice(sentBefore).map((r) => r.headers['x-ingest-token']);
  expect(tokens.length).toBeGreaterThan(0);
  expect(new Set(tokens)).toEqual(new Set(['new']));
  expect(await statusOf(newTab)).toMatchObject({ deadLettered: 0 });
  for (const page of [oldTab, newTab]) expect(await page.evaluate(() => (window as unknown as { __errors: string[] }).__errors)).toEqual([]);
});

test('a page that calls init() again with a new token switches the worker to it', async ({ context }) => {
  const first = await openTab(context, '/first.html', 'a');
  const second = await openTab(context, '/second.html', 'b');
  // The first page renews its token the documented way.
  await first.evaluate(async ([endpoint, delivery]) => {
    const w = window as unknown as { et: { stop(): Promise<void>; init(o: object): unknown }; tracer: unknown };
    await w.et.stop();
    w.tracer = w.et.init({ endpoint, serviceName: 'e2e', instrument: false, headers: { 'x-ingest-token': 'c' }, delivery });
  }, [rx.endpoint, delivery] as const);
  await waitForTransport(first, 'worker');
  const sentBefore = rx.requests.length;
  await makeSpans(second, 10, 'renewed-');
  await expect.poll(() => spansNamed(rx, 'renewed-').length, { timeout: 30_000, intervals: [100] }).toBe(10);
  const tokens = rx.requests.slice(sentBefore).map((r) => r.headers['x-ingest-token']);
  expect(new Set(tokens)).toEqual(new Set(['c']));
});

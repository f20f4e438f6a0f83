import { test, expect, type Page } from '@playwright/test';
import { pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// The "never throw" contract, one test per instrumentation: our internals are made to fail (a
// tracer that throws on every use, storage that throws), and the page's calls must behave
// exactly as without the SDK, with nothing reaching window.onerror or unhandledrejection.
// Also: every Stop puts the patched globals back.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());

// A tracer whose every property access throws: any use of it inside the SDK fails.
const BROKEN = `window.broken = new Proxy({}, { get() { throw new Error('internal failure'); } });`;

const open = async (page: Page, body = ''): Promise<void> => {
  await page.goto(s.page(`/nt-${Math.random().toString(36).slice(2)}.html`, testPage({ setup: BROKEN, body, vitals: true })));
  await ready(page);
};

const internalErrors = (page: Page): Promise<number> => page.evaluate(() => (window as any).et.internalErrorCount());

test('fetch: same values, same rejections', async ({ page }) => {
  await open(page);
  const run = () =>
    page.evaluate(async () => {
      const d = async (p: () => Promise<Response>) => {
        try {
          const r = await p();
          return `ok ${r.status} ${await r.text()}`;
        } catch (e) {
          return `rejected ${(e as Error).name}: ${(e as Error).message}`;
        }
      };
      return [
        await d(() => fetch('/api/a?x=1')),
        await d(() => fetch(new Request('/api/b', { method: 'POST', body: 'x' }))),
        await d(() => fetch('/api/error')),
        await d(() => fetch('http://127.0.0.1:9/')),
        await d(() => fetch('/api/c', { headers: { 'bad name': '1' } })),
      ];
    });
  const without = await run();
  const patched = await page.evaluate(() => {
    const w = window as any;
    w.fetchBefore = window.fetch;
    w.stop = w.et.instrumentFetch({ tracer: w.broken });
    return window.fetch !== w.fetchBefore;
  });
  expect(patched).toBe(true);
  expect(await run()).toEqual(without);
  expect(await internalErrors(page)).toBeGreaterThan(0);
  expect(await page.evaluate(() => ((window as any).stop(), window.fetch === (window as any).fetchBefore))).toBe(true);
  expect(await pageErrors(page)).toEqual([]);
});

test('XMLHttpRequest: same responses and same exceptions', async ({ page }) => {
  await open(page);
  const run = () =>
    page.evaluate(async () => {
      const x = (method: string, url: string) =>
        new Promise<string>((resolve) => {
          const r = new XMLHttpRequest();
          try {
            r.open(method, url);
            r.setRequestHeader('x-app', '1');
            r.onloadend = () => resolve(`${r.status} ${r.responseText}`);
            r.send();
          } catch (e) {
            resolve(`threw ${(e as Error).name}`);
          }
        });
      const sendTwice = (() => {
        const r = new XMLHttpRequest();
        r.open('GET', '/api/x');
        r.send();
        try {
          r.send();
          return 'no throw';
        } catch (e) {
          return `threw ${(e as Error).name}`;
        }
      })();
      return [await x('GET', '/api/xa'), await x('GET', '/api/error'), await x('BAD METHOD', '/api/x'), await x('GET', 'http://127.0.0.1:9/'), sendTwice];
    });
  const without = await run();
  const before = await page.evaluate(() => [XMLHttpRequest.prototype.open, XMLHttpRequest.prototype.send, XMLHttpRequest.prototype.setRequestHeader].map(String).join());
  await page.evaluate(() => ((window as any).stop = (window as any).et.instrumentXhr({ tracer: (window as any).broken })));
  expect(await run()).toEqual(without);
  expect(await internalErrors(page)).toBeGreaterThan(0);
  await page.evaluate(() => (window as any).stop());
  const after = await page.evaluate(() => [XMLHttpRequest.prototype.open, XMLHttpRequest.prototype.send, XMLHttpRequest.prototype.setRequestHeader].map(String).join());
  expect(after).toBe(before);
  expect(await pageErrors(page)).toEqual([]);
});

test('interactions: handlers run with the same event, undisturbed', async ({ page }) => {
  await open(page, '<button id="b">b</button><form id="f"><input name="q"></form>');
  await page.evaluate(() => {
    (window as any).log = [];
    document.getElementById('b')!.addEventListener('click', (e) => (window as any).log.push(`click ${e.defaultPrevented} ${e.eventPhase}`));
    document.getElementById('f')!.addEventListener('submit', (e) => {
      e.preventDefault();
      (window as any).log.push('submit');
    });
    (window as any).stop = (window as any).et.instrumentInteractions({ tracer: (window as any).broken });
  });
  await page.click('#b');
  await page.press('input[name=q]', 'Enter');
  expect(await page.evaluate(() => (window as any).log)).toEqual(['click false 2', 'submit']);
  expect(await internalErrors(page)).toBeGreaterThan(0);
  await page.evaluate(() => (window as any).stop());
  expect(await pageErrors(page)).toEqual([]);
});

test('navigation: pushState, replaceState and popstate work and are restored', async ({ page }) => {
  await open(page);
  const out = await page.evaluate(async () => {
    const w = window as any;
    const proto = [history.pushState, history.replaceState];
    w.stop = w.et.instrumentNavigation({ tracer: w.broken });
    const patched = history.pushState !== proto[0];
    const r1 = history.pushState({ a: 1 }, '', '/somewhere');
    const r2 = history.replaceState({ b: 2 }, '', '/else');
    let threw = '';
    try {
      history.pushState({}, '', 'http://other.test/');
    } catch (e) {
      threw = (e as Error).name;
    }
    await new Promise<void>((r) => {
      addEventListener('popstate', () => r(), { once: true });
      history.back();
    });
    w.stop();
    return { patched, r1, r2, threw, path: location.pathname, state: history.state, restored: history.pushState === proto[0] && history.replaceState === proto[1] && !Object.prototype.hasOwnProperty.call(history, 'pushState') };
  });
  expect(out).toMatchObject({ patched: true, r1: undefined, r2: undefined, threw: 'SecurityError', restored: true });
  expect(out.path).not.toBe('/else');
  expect(await pageErrors(page)).toEqual([]);
});

test('errors: the page still sees each error once; the SDK adds none', async ({ page }) => {
  await open(page);
  await page.evaluate(() => ((window as any).stop = (window as any).et.instrumentErrors({ tracer: (window as any).broken })));
  await page.evaluate(() => {
    setTimeout(() => {
      throw new Error('app error');
    });
    void Promise.reject(new Error('app rejection'));
  });
  await expect.poll(() => pageErrors(page)).toHaveLength(2);
  expect((await pageErrors(page)).sort()).toEqual(['Uncaught Error: app error', 'unhandled rejection: Error: app rejection']);
  expect(await internalErrors(page)).toBeGreaterThan(0);
});

test('session: storage that throws leaves init() and the page working', async ({ page }) => {
  await open(page, '<button id="b">b</button>');
  await page.evaluate(() => {
    Storage.prototype.getItem = () => {
      throw new DOMException('blocked', 'SecurityError');
    };
    Storage.prototype.setItem = () => {
      throw new DOMException('full', 'QuotaExceededError');
    };
  });
  const result = await page.evaluate(async () => {
    const w = window as any;
    w.tracer = w.et.init({ exporter: w.et.createOtlpExporter({ url: '/v1/traces' }), batch: { delayMs: 20 } });
    w.et.setUser('u-1');
    const r = await fetch('/api/session');
    return [r.status, typeof w.et.getSessionId()];
  });
  expect(result).toEqual([200, 'string']);
  await page.click('#b');
  expect(await pageErrors(page)).toEqual([]);
});

test('vitals: a failing tracer and callback never reach the page', async ({ page }) => {
  await open(page, '<h1>content</h1>');
  await page.evaluate(() => {
    const w = window as any;
    w.vitals.instrumentVitals({ tracer: w.broken });
    w.vitals.onVitals(() => {
      throw new Error('callback broke');
    });
  });
  await page.waitForTimeout(200);
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await expect.poll(() => internalErrors(page)).toBeGreaterThan(0);
  expect(await pageErrors(page)).toEqual([]);
});

test('init() again with instrument: false restores every patched global and listener', async ({ page }) => {
  await open(page, '<button id="b">b</button>');
  const out = await page.evaluate(async () => {
    const w = window as any;
    // Every listener added to window or document from here on, until it is removed again.
    const live: [EventTarget, string, unknown][] = [];
    for (const target of [window, document] as EventTarget[]) {
      const add = target.addEventListener;
      const remove = target.removeEventListener;
      target.addEventListener = function (this: EventTarget, type: string, fn: any, o?: any) {
        live.push([this, type, fn]);
        return add.call(this, type, fn, o);
      };
      target.removeEventListener = function (this: EventTarget, type: string, fn: any, o?: any) {
        const i = live.findIndex(([t, ty, f]) => t === this && ty === type && f === fn);
        if (i >= 0) live.splice(i, 1);
        return remove.call(this, type, fn, o);
      };
    }
    const globals = () => [window.fetch, XMLHttpRequest.prototype.open, XMLHttpRequest.prototype.send, XMLHttpRequest.prototype.setRequestHeader, history.pushState, history.replaceState];
    const before = globals();
    const hadOwnPush = Object.prototype.hasOwnProperty.call(history, 'pushState');
    w.tracer = w.et.init({ exporter: w.et.createOtlpExporter({ url: '/v1/traces' }) });
    const patched = globals().map((g, i) => g !== before[i]);
    const fromFirst = [...live];
    w.tracer = w.et.init({ exporter: w.et.createOtlpExporter({ url: '/v1/traces' }), instrument: false });
    const restored = globals().every((g, i) => g === before[i]) && Object.prototype.hasOwnProperty.call(history, 'pushState') === hadOwnPush;
    const left = fromFirst.filter((l) => live.includes(l)).map(([t, type]) => `${t === window ? 'window' : 'document'} ${type}`);
    return { patched, restored, listened: fromFirst.length > 0, left };
  });
  expect(out).toEqual({ patched: [true, true, true, true, true, true], restored: true, listened: true, left: [] });
  expect(await pageErrors(page)).toEqual([]);
});

test('init() with options that are no object throws before it patches anything', async ({ page }) => {
  await open(page);
  const out = await page.evaluate(() => {
    const w = window as any;
    const before = [window.fetch, XMLHttpRequest.prototype.open, history.pushState];
    let message = '';
    try {
      w.et.init('x');
    } catch (error) {
      message = String(error);
    }
    return { message, untouched: [window.fetch, XMLHttpRequest.prototype.open, history.pushState].every((g, i) => g === before[i]) };
  });
  expect(out).toEqual({ message: 'TypeError: [edgetrace] init(): "options" must be an object, got "x".', untouched: true });
});

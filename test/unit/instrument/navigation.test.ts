import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { instrumentNavigation, protocolAttributes } from '../../../src/instrument/navigation';
import { interactionContext, setPageContext } from '../../../src/instrument/interactionContext';
import { createTracer } from '../../../src/core/tracer';
import { collector } from '../../helpers/collect';

const ORIGIN = 1_700_000_000_000;

/** A page after its load: Navigation Timing says the load event ended 800 ms in. */
const loadedPage = () => {
  const events = new EventTarget();
  vi.stubGlobal('addEventListener', events.addEventListener.bind(events));
  vi.stubGlobal('removeEventListener', events.removeEventListener.bind(events));
  vi.stubGlobal('document', { readyState: 'complete', querySelector: () => null });
  const location = { href: 'https://app.test/a', origin: 'https://app.test' };
  vi.stubGlobal('location', location);
  const entry = { name: location.href, type: 'navigate', startTime: 0, fetchStart: 5, responseStart: 90, responseEnd: 100, loadEventEnd: 800, responseStatus: 200 };
  let now = ORIGIN + 10_000;
  vi.stubGlobal('performance', { timeOrigin: ORIGIN, now: () => now - ORIGIN, getEntriesByType: () => [entry] });
  const history = {
    pushState(_state: unknown, _title: string, url: string) {
      location.href = new URL(url, location.href).href;
    },
    replaceState() {},
  };
  vi.stubGlobal('history', history);
  return { history, events, tick: (ms: number) => void (now += ms), clock: () => now };
};

/** A tracer on the page's interaction context (the one init() sets up), on `page`'s clock. */
const pageTracer = (page: ReturnType<typeof loadedPage>, c: ReturnType<typeof collector>) => {
  const ctx = interactionContext({ idleMs: 500, timeoutMs: 30_000, now: page.clock });
  const tracer = createTracer({ contextManager: ctx, now: page.clock, processors: [ctx.processor, c.processor] });
  setPageContext(ctx);
  return { ctx, tracer };
};

describe('protocolAttributes', () => {
  it("turns nextHopProtocol's ALPN ids into OpenTelemetry's protocol name and version", () => {
    const version = (alpn: string | undefined) => protocolAttributes(alpn)['network.protocol.version'];
    expect(protocolAttributes('http/1.1')).toEqual({ 'network.protocol.name': 'http', 'network.protocol.version': '1.1' });
    expect(version('http/1.0')).toBe('1.0');
    expect(version('h2')).toBe('2');
    expect(version('h2c')).toBe('2');
    expect(version('h3')).toBe('3');
    expect(version('h3-29')).toBe('3');
    for (const other of ['', undefined, 'hq', 'spdy/3.1', 'http/1.1x']) expect(protocolAttributes(other)).toEqual({});
  });
});

describe('instrumentNavigation', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    setPageContext(undefined);
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('ends the page load at loadEventEnd when it starts after the load, adopting nothing', async () => {
    const page = loadedPage();
    const c = collector();
    const { tracer } = pageTracer(page, c);
    const stop = instrumentNavigation({ tracer, history: false });
    // Work started now belongs to no interaction: the load is long over.
    expect(tracer.currentSpan()).toBeUndefined();
    page.tick(2000);
    await vi.advanceTimersByTimeAsync(2000);
    const load = c.byName('page load');
    expect(load.startMs).toBe(ORIGIN);
    expect(load.endMs).toBe(ORIGIN + 800);
    stop();
  });

  it('records the page load of a document once, however often it is instrumented', async () => {
    const page = loadedPage();
    const c = collector();
    const tracer = createTracer({ now: page.clock, processors: [c.processor] });
    instrumentNavigation({ tracer, history: false })();
    instrumentNavigation({ tracer, history: false })();
    await vi.advanceTimersByTimeAsync(10);
    expect(c.spans.filter((s) => s.name === 'page load')).toHaveLength(1);
  });

  it('parents a route change to the span the code runs in before the interaction', () => {
    const page = loadedPage();
    const c = collector();
    const { ctx, tracer } = pageTracer(page, c);
    const stop = instrumentNavigation({ tracer, pageLoad: false });
    const click = tracer.createTrace('click');
    ctx.begin(click);
    let routeId = '';
    tracer.span('route', (route) => {
      routeId = route.spanId;
      page.history.pushState(null, '', '/b');
    });
    expect(c.byName('navigation').parentId).toBe(routeId);
    stop();
  });

  it('records a page restored from the back/forward cache as a navigation, an interaction its fetches go under', () => {
    const page = loadedPage();
    const c = collector();
    const { ctx, tracer } = pageTracer(page, c);
    const stop = instrumentNavigation({ tracer, pageLoad: false });
    const show = (persisted: boolean): void => {
      const e = new Event('pageshow');
      Object.defineProperty(e, 'persisted', { value: persisted });
      page.events.dispatchEvent(e);
    };
    // The first show of a document is its load, recorded as such.
    show(false);
    expect(c.spans).toHaveLength(0);
    show(true);
    const fetch = tracer.startSpan('GET');
    fetch.end();
    ctx.endAll();
    const nav = c.byName('navigation');
    expect(nav.attrs).toMatchObject({ 'edgetrace.navigation.type': 'back_forward_cache', 'url.full': 'https://app.test/a' });
    expect(c.byName('GET').parentId).toBe(nav.spanId);
    stop();
  });

  it('patches pushState and replaceState together or not at all', () => {
    const page = loadedPage();
    const push = page.history.pushState;
    Object.defineProperty(page.history, 'replaceState', { value() {}, writable: false, configurable: true });
    const c = collector();
    const stop = instrumentNavigation({ tracer: createTracer({ processors: [c.processor] }), pageLoad: false });
    expect(page.history.pushState).toBe(push);
    page.history.pushState(null, '', '/c');
    expect(c.spans).toHaveLength(0);
    stop();
  });
});

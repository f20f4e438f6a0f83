import { afterEach, describe, expect, it, vi } from 'vitest';
import { init, setTracer, stop } from '../../../src/core/global';
import { createMemoryExporter } from '../../../src/export/memory';
import { interactionContext } from '../../../src/instrument/interactionContext';
import { instrumentInteractions } from '../../../src/instrument/interaction';
import { instrumentNavigation } from '../../../src/instrument/navigation';
import { instrumentVitals } from '../../../src/vitals';
import { internalErrorCount } from '../../../src/lib/reportInternal';
import { collector } from '../../helpers/collect';
import { setUser } from '../../../src/instrument/session';

describe('setupInstrumentation through init()', () => {
  afterEach(() => setTracer(undefined));

  it('patches nothing outside a browser page', () => {
    const fetchBefore = globalThis.fetch;
    init({ exporter: createMemoryExporter(), propagateTo: ['https://api.test'] });
    expect(globalThis.fetch).toBe(fetchBefore);
  });

  it('patches nothing where `document` is null, even with window events (a server-side shim)', () => {
    try {
      const target = new EventTarget();
      vi.stubGlobal('addEventListener', target.addEventListener.bind(target));
      vi.stubGlobal('document', null);
      const fetchBefore = globalThis.fetch;
      init({ exporter: createMemoryExporter() });
      expect(globalThis.fetch).toBe(fetchBefore);
      // Called on their own, the page instrumentations listen to nothing there either.
      const listen = vi.fn();
      vi.stubGlobal('addEventListener', listen);
      vi.stubGlobal('location', { href: 'https://app.test/', origin: 'https://app.test' });
      const errors = internalErrorCount();
      for (const stop of [instrumentInteractions(), instrumentNavigation(), instrumentVitals()]) stop();
      expect(listen).not.toHaveBeenCalled();
      expect(internalErrorCount()).toBe(errors);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('rejects invalid instrumentation options at init(), naming the option', () => {
    expect(() => init({ exporter: createMemoryExporter(), propagateTo: 'https://api.test' as never })).toThrow(
      /^\[edgetrace\] init\(\): "propagateTo" must be an array of URL strings and RegExps/,
    );
    expect(() => init({ exporter: createMemoryExporter(), instrument: { fetch: 1 as never } })).toThrow('"instrument.fetch" must be a boolean');
  });
});

describe('setupInstrumentation in a page', () => {
  let page = new EventTarget();
  // A button is a control: closest() finds it for the controls' selector, and nothing named.
  const button: Record<string, unknown> = { tagName: 'BUTTON', id: 'send', className: '', closest: (sel: string) => (sel.startsWith('button') ? button : null), getAttribute: () => null };
  const click = (): void => {
    const e = new Event('click');
    Object.defineProperty(e, 'composedPath', { value: () => [button] });
    page.dispatchEvent(e);
  };
  const onlyInteractions = { fetch: false, xhr: false, navigation: false, errors: false, session: false };

  const stubPage = (): void => {
    page = new EventTarget();
    vi.stubGlobal('addEventListener', page.addEventListener.bind(page));
    vi.stubGlobal('removeEventListener', page.removeEventListener.bind(page));
    vi.stubGlobal('document', { readyState: 'complete', querySelector: () => null });
    vi.stubGlobal('location', { href: 'https://app.test/a', origin: 'https://app.test' });
  };
  afterEach(async () => {
    await stop();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('never traces its own uploads: the endpoint and the scores route beside it', async () => {
    stubPage();
    vi.stubGlobal('fetch', async () => new Response('{}'));
    const exporter = createMemoryExporter();
    init({ endpoint: 'https://collector.test/v1/traces', exporter, instrument: { ...onlyInteractions, fetch: true, interactions: false } });
    await (await fetch('https://collector.test/v1/scores', { method: 'POST', body: '[]' })).text();
    await (await fetch('https://collector.test/v1/traces', { method: 'POST', body: '{}' })).text();
    await (await fetch('https://app.test/api')).text();
    await stop();
    expect(exporter.spans().map((s) => s.attrs['url.full'])).toEqual(['https://app.test/api']);
  });

  it('leaves the page to another copy of edgetrace that instruments it, and records only its own spans', async () => {
    stubPage();
    const original = async () => new Response('{}');
    vi.stubGlobal('fetch', original);
    const owner = Symbol.for('edgetrace.instrumentation');
    const g = globalThis as { [owner]?: object };
    g[owner] = {};
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const exporter = createMemoryExporter();
      const tracer = init({ exporter, instrument: { ...onlyInteractions, fetch: true } });
      // Said without debug, and once: the app's spans lose the requests made inside them.
      init({ exporter, instrument: { ...onlyInteractions, fetch: true } });
      expect(warn.mock.calls.filter((c) => String(c[0]).includes('another copy of edgetrace instruments this page'))).toHaveLength(1);
      // Neither fetch nor the click listener: the other copy traces those.
      expect(globalThis.fetch).toBe(original);
      click();
      tracer.createTrace('own work').finish();
      await stop();
      expect(exporter.spans().map((s) => s.name)).toEqual(['own work']);
    } finally {
      delete g[owner];
      warn.mockRestore();
    }
    // With the other copy gone, the next init() instruments, and marks the page as its own until stop().
    init({ exporter: createMemoryExporter(), instrument: { ...onlyInteractions, fetch: true } });
    expect(globalThis.fetch).not.toBe(original);
    expect(g[owner]).toBeDefined();
    await stop();
    expect(globalThis.fetch).toBe(original);
    expect(g[owner]).toBeUndefined();
  });

  it('gives a user set after init() to the traces still open without one, not to those with their own', async () => {
    stubPage();
    const exporter = createMemoryExporter();
    const tracer = init({ exporter, instrument: onlyInteractions });
    // As the page load is open when an app calls setUser() right after init().
    const load = tracer.createTrace('page load');
    const own = tracer.createTrace({ name: 'own user', userId: 'svc' });
    const done = tracer.createTrace('ended before');
    done.finish();
    setUser('ada');
    load.finish();
    own.finish();
    await stop();
    const user = (name: string) => exporter.spans().find((s) => s.name === name)!.attrs['user.id'];
    expect([user('page load'), user('own user'), user('ended before')]).toEqual(['ada', 'svc', undefined]);
    setUser(undefined);
  });

  it('stop() right after a click hands the pending interaction over', async () => {
    stubPage();
    const exporter = createMemoryExporter();
    init({ exporter, instrument: onlyInteractions });
    click();
    await stop();
    expect(exporter.spans().map((s) => s.name)).toEqual(['click button#send']);
  });

  it('leaves a context the caller passed in open, so the next init() with it still ends interactions', async () => {
    stubPage();
    vi.useFakeTimers();
    const c = collector();
    // One clock for tracer and context, the faked one (the SDK's own may have been read for real already).
    const now = (): number => Date.now();
    const opts = { now, contextManager: interactionContext({ idleMs: 100, timeoutMs: 1000, now }), processors: [c.processor], instrument: onlyInteractions };
    init(opts);
    click();
    await vi.advanceTimersByTimeAsync(2000);
    // Again, as a reloaded module of the app would.
    init(opts);
    click();
    await vi.advanceTimersByTimeAsync(2000);
    expect(c.spans.map((s) => s.name)).toEqual(['click button#send', 'click button#send']);
  });
});

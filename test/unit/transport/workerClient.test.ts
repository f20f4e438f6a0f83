import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectWorker } from '../../../src/transport/workerClient';
import { answerCalls } from '../../../worker/answerCalls';
import { spanRecord } from '../../helpers/records';

/** A service worker that answers the page's comlink calls with the real answerCalls(). */
const fakeWorker = (enqueueMs = 0, state = 'activated') => {
  const stored: number[] = [];
  const api = {
    configure: async () => undefined,
    enqueue: async (p: { spans: unknown[] }) => {
      await new Promise((r) => setTimeout(r, enqueueMs));
      stored.push(p.spans.length / 9);
      return p.spans.length / 9;
    },
    flushNow: async () => ({ ok: true, sent: 0 }),
    getStatus: async () => ({}),
    deadLetters: async () => [],
  };
  const events = new EventTarget();
  const worker = Object.assign(events, {
    state,
    contacted: 0,
    postMessage: (_m: unknown, ports: MessagePort[]) => {
      worker.contacted++;
      answerCalls(api, ports[0]!);
    },
    /** Moves the worker to `next` and tells listeners, as the browser does. */
    become(next: string) {
      worker.state = next;
      events.dispatchEvent(new Event('statechange'));
    },
  });
  return { stored, worker };
};

const config = { endpoint: 'https://collector.test/v1/traces' };

/** A registration with `fields`, which takes listeners as the browser's does. */
const registration = <T extends object>(fields: T): EventTarget & T => Object.assign(new EventTarget(), fields);

describe('connectWorker', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  it('lets a hand-over still waiting on a connection that was replaced get its answer', async () => {
    const { stored, worker } = fakeWorker(100);
    const reg = registration({ active: worker });
    vi.stubGlobal('navigator', { serviceWorker: { register: async () => reg, ready: Promise.resolve(reg), controller: null } });
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js', config });
    await client.ready;
    const t0 = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(t0);
    await client.sink.hand([spanRecord(1)], false);
    clock.mockReturnValue(t0 + 4_900);
    const a = client.sink.hand([spanRecord(2)], false);
    await new Promise((r) => setTimeout(r, 20));
    // Past the reuse window: the next hand-over opens a new connection while `a` waits on the old.
    clock.mockReturnValue(t0 + 5_100);
    expect(await client.sink.hand([spanRecord(3)], false)).toBe(1);
    expect(await a).toBe(1);
    expect(stored).toEqual([1, 1, 1]);
  });

  it('talks to the worker it registered once that one is active, not to the page scope\'s worker', async () => {
    const mine = fakeWorker(0, 'installing');
    const theirs = fakeWorker();
    const reg = registration({ installing: mine.worker, waiting: null, active: null as typeof mine.worker | null });
    vi.stubGlobal('navigator', {
      serviceWorker: { register: async () => reg, ready: Promise.resolve(registration({ active: theirs.worker })), controller: theirs.worker },
    });
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js', workerScope: '/tracing/', config });
    let up = false;
    void client.ready.then(() => (up = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(up).toBe(false);
    reg.active = mine.worker;
    mine.worker.become('activating');
    await client.ready;
    expect(await client.sink.hand([spanRecord(1)], false)).toBe(1);
    expect(mine.stored).toEqual([1]);
    expect(theirs.worker.contacted).toBe(0);
  });

  // An app's own worker of an earlier release, without installTraceWorker(): it takes messages and answers none.
  const silentWorker = () => {
    const worker = { state: 'activated', contacted: 0, postMessage: () => void worker.contacted++ };
    return worker;
  };

  it("gives up on an active worker that never answers (the app's old one) within the time it has", async () => {
    const old = silentWorker();
    const reg = registration({ active: old });
    vi.stubGlobal('navigator', { serviceWorker: { ready: Promise.resolve(reg), controller: old } });
    const started = Date.now();
    const client = connectWorker({ workerUrl: false, readyTimeoutMs: 300, config });
    await expect(client.ready).rejects.toThrow('the active service worker does not answer (is installTraceWorker() in it?)');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(old.contacted).toBeGreaterThan(0);
  });

  it('without a deadline, tries a silent worker again at doubling intervals, up to a minute', async () => {
    vi.useFakeTimers();
    const old = silentWorker();
    vi.stubGlobal('navigator', { serviceWorker: { ready: Promise.resolve(registration({ active: old })), controller: old } });
    const client = connectWorker({ workerUrl: false, config });
    void client.ready.catch(() => undefined);
    // Tries at 0, 2, 6, 14 and 30 s.
    const contactsAt = async (ms: number): Promise<number> => {
      await vi.advanceTimersByTimeAsync(ms);
      return old.contacted;
    };
    expect(await contactsAt(1_000)).toBe(1);
    expect(await contactsAt(1_500)).toBe(2);
    expect(await contactsAt(3_000)).toBe(2);
    expect(await contactsAt(1_000)).toBe(3);
    expect(await contactsAt(9_000)).toBe(4);
    expect(await contactsAt(16_000)).toBe(5);
  });

  it('talks to the new worker once it takes over from a silent one, within the time it has', { timeout: 10_000 }, async () => {
    const old = silentWorker();
    const next = fakeWorker();
    const reg = registration<{ active: unknown }>({ active: old });
    vi.stubGlobal('navigator', { serviceWorker: { ready: Promise.resolve(reg), controller: old } });
    const client = connectWorker({ workerUrl: false, readyTimeoutMs: 8_000, config });
    let up = false;
    void client.ready.then(() => (up = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(up).toBe(false);
    // The old tabs closed: the app's new worker, which calls installTraceWorker(), is active.
    reg.active = next.worker;
    await client.ready;
    expect(await client.sink.hand([spanRecord(1)], false)).toBe(1);
    expect(next.stored).toEqual([1]);
  });

  it('asks a worker that replaced the one that answered before handing it records, and gives up on a silent one', { timeout: 10_000 }, async () => {
    const first = fakeWorker();
    const reg = registration<{ active: unknown }>({ active: first.worker });
    vi.stubGlobal('navigator', { serviceWorker: { register: async () => reg, ready: Promise.resolve(reg), controller: null } });
    const doubts: number[] = [];
    let losses = 0;
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js', config, onDoubt: () => doubts.push(Date.now()), onLost: () => losses++ });
    await client.ready;
    expect(await client.sink.hand([spanRecord(1)], false)).toBe(1);
    expect([client.sink.unsure?.(), client.sink.lost?.()]).toEqual([false, false]);

    // An update of ours: it answers, and takes the records.
    const update = fakeWorker();
    reg.active = update.worker;
    expect(client.sink.unsure?.()).toBe(true);
    expect(await client.sink.hand([spanRecord(2)], false)).toBe(1);
    expect(update.stored).toEqual([1]);
    expect([client.sink.unsure?.(), client.sink.lost?.(), doubts.length]).toEqual([false, false, 1]);

    // The site's own worker: it takes messages and answers none.
    const site = silentWorker();
    reg.active = site;
    const started = Date.now();
    const [a, b] = await Promise.allSettled([client.sink.hand([spanRecord(3)], false), client.sink.hand([spanRecord(4)], false)]);
    expect(a.status === 'rejected' && String(a.reason)).toMatch(/replaced by one that does not answer/);
    expect(b.status).toBe('rejected');
    expect(Date.now() - started).toBeLessThan(6_000);
    // One probe for both hand-overs, and no record posted to it.
    expect(site.contacted).toBe(1);
    expect(doubts).toHaveLength(2);
    // Nothing to trust: on hide the page sends its newest itself.
    expect([client.sink.unsure?.(), client.sink.lost?.(), losses]).toEqual([true, true, 1]);
  });

  it('tells a new worker of ours this page\'s configuration once it is active, without waiting for records', async () => {
    const first = fakeWorker();
    const reg = registration<{ active: unknown; installing: unknown }>({ active: first.worker, installing: null });
    vi.stubGlobal('navigator', { serviceWorker: { register: async () => reg, ready: Promise.resolve(reg), controller: null } });
    const next = fakeWorker(0, 'installing');
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js', config });
    await client.ready;
    // The update: it installs, then activates (its script read the saved configuration as it started).
    reg.installing = next.worker;
    reg.dispatchEvent(new Event('updatefound'));
    reg.installing = null;
    reg.active = next.worker;
    next.worker.become('activated');
    await new Promise((r) => setTimeout(r, 50));
    // Connected (a connection's first message is the configuration) and asked.
    expect(next.worker.contacted).toBeGreaterThan(0);
    expect(client.sink.unsure?.()).toBe(false);
    // A stopped client (stop(), or init() again) hears no more updates.
    const later = fakeWorker(0, 'installing');
    await client.sink.stop?.();
    reg.installing = later.worker;
    reg.dispatchEvent(new Event('updatefound'));
    reg.active = later.worker;
    later.worker.become('activated');
    await new Promise((r) => setTimeout(r, 50));
    expect(later.worker.contacted).toBe(0);
  });

  it("watches a new worker this page's own register() found before the old one answered", async () => {
    const first = fakeWorker();
    const next = fakeWorker(0, 'installed');
    // The deploy's page registered the new worker's URL: it waits while the old one still answers.
    const reg = registration<{ active: unknown; waiting: unknown }>({ active: first.worker, waiting: next.worker });
    vi.stubGlobal('navigator', { serviceWorker: { register: async () => reg, ready: Promise.resolve(reg), controller: null } });
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js?v=2', config });
    await client.ready;
    // Told the page's configuration while it waits: it runs, and sends, from the moment it is installed.
    expect(next.worker.contacted).toBe(1);
    reg.waiting = null;
    reg.active = next.worker;
    next.worker.become('activated');
    await new Promise((r) => setTimeout(r, 50));
    // And asked once active.
    expect(next.worker.contacted).toBeGreaterThan(1);
  });

  it('reads the status on the shared connection: a panel polling it sends the worker no message event per read', async () => {
    const { worker } = fakeWorker();
    const reg = registration({ active: worker });
    vi.stubGlobal('navigator', { serviceWorker: { register: async () => reg, ready: Promise.resolve(reg), controller: null } });
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js', config });
    await client.ready;
    const before = worker.contacted;
    for (let i = 0; i < 10; i++) await client.sink.status();
    await client.sink.deadLetters();
    expect(worker.contacted).toBe(before);
  });

  it('gives up when the worker it registered fails to install', async () => {
    const mine = fakeWorker(0, 'installing');
    const reg = registration({ installing: mine.worker, waiting: null, active: null });
    vi.stubGlobal('navigator', { serviceWorker: { register: async () => reg, ready: new Promise(() => undefined), controller: null } });
    const client = connectWorker({ workerUrl: '/edgetrace-sw.js', config });
    await new Promise((r) => setTimeout(r, 10));
    mine.worker.become('redundant');
    await expect(client.ready).rejects.toThrow(/failed to install/);
  });
});

describe("connectWorker and the site's own worker", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  /** A container whose registration at `scope` runs `script`; records what was asked. */
  const site = (scope: string, script: string) => {
    const asked: { getRegistration: string[]; register: string[] } = { getRegistration: [], register: [] };
    const { worker } = fakeWorker();
    const theirs = registration({ scope, active: Object.assign(worker, { scriptURL: script }) });
    const ours = registration({ scope, active: fakeWorker().worker });
    vi.stubGlobal('location', { href: 'https://app.test/shop/cart' });
    vi.stubGlobal('navigator', {
      serviceWorker: {
        getRegistration: async (at: string) => (asked.getRegistration.push(at), at === scope ? theirs : undefined),
        register: async (url: string) => (asked.register.push(url), ours),
        ready: Promise.resolve(theirs),
        controller: null,
      },
    });
    vi.spyOn(console, 'info').mockImplementation(() => undefined);
    return asked;
  };

  it('leaves a worker of another script at the default scope in place, and uses it', async () => {
    const asked = site('https://app.test/', 'https://app.test/sw.js');
    await connectWorker({ workerUrl: '/edgetrace-sw.js', siteWorker: true, readyTimeoutMs: 5000, config }).ready;
    expect(asked).toEqual({ getRegistration: ['https://app.test/'], register: [] });
    expect(String(vi.mocked(console.info).mock.calls[0])).toContain("already has the site's own service worker (https://app.test/sw.js)");
    // A second init() (React StrictMode runs effects twice) says it no second time.
    await connectWorker({ workerUrl: '/edgetrace-sw.js', siteWorker: true, readyTimeoutMs: 5000, config }).ready;
    expect(asked.getRegistration).toHaveLength(2);
    expect(console.info).toHaveBeenCalledTimes(1);
  });

  it("leaves the scope to the site's worker installing over an active one of ours (a site that added its worker since)", async () => {
    const asked = site('https://app.test/', 'https://app.test/sw.js');
    const theirs = await navigator.serviceWorker.getRegistration('https://app.test/');
    asked.getRegistration.length = 0;
    Object.assign(theirs!, { installing: theirs!.active, active: Object.assign(fakeWorker().worker, { scriptURL: 'https://app.test/edgetrace-sw.js' }) });
    await connectWorker({ workerUrl: '/edgetrace-sw.js', siteWorker: true, readyTimeoutMs: 5000, config }).ready;
    expect(asked).toEqual({ getRegistration: ['https://app.test/'], register: [] });
  });

  it('updates its own worker under another name, and registers a URL the app chose as it says', async () => {
    const hashed = site('https://app.test/', 'https://app.test/assets/edgetrace-sw-4f2a9c.js');
    await connectWorker({ workerUrl: '/edgetrace-sw.js', siteWorker: true, config }).ready;
    expect(hashed.register).toEqual(['/edgetrace-sw.js']);
    const chosen = site('https://app.test/', 'https://app.test/sw.js');
    await connectWorker({ workerUrl: '/edgetrace-sw.js', config }).ready;
    expect(chosen).toEqual({ getRegistration: [], register: ['/edgetrace-sw.js'] });
  });

  it('reads a workerScope as the page does, relative to the page', async () => {
    const asked = site('https://app.test/shop/', 'https://app.test/shop/sw.js');
    await connectWorker({ workerUrl: '/edgetrace-sw.js', workerScope: './', siteWorker: true, readyTimeoutMs: 5000, config }).ready;
    expect(asked).toEqual({ getRegistration: ['https://app.test/shop/'], register: [] });
  });
});

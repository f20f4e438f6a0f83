import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryStatus, ScoreRecord } from '../../../src/protocol';
import { resolveTransport } from '../../../src/transport/options';

// The page transport without a service worker: the page outbox over (fake) IndexedDB, in a page
// stub whose window listeners the test can count, sending to a stubbed fetch.
const listeners: [string, unknown][] = [];
const sent: string[] = [];

const stubPage = (): void => {
  listeners.length = 0;
  sent.length = 0;
  vi.stubGlobal('document', { addEventListener: () => undefined, removeEventListener: () => undefined, visibilityState: 'visible' });
  vi.stubGlobal('location', { href: 'https://app.test/', protocol: 'https:' });
  // A secure context's Web Locks, which the page outbox needs; one context here, so always granted.
  vi.stubGlobal('navigator', { locks: { request: (_name: string, _opts: unknown, fn: (lock: object) => unknown) => Promise.resolve(fn({})) } });
  vi.stubGlobal('addEventListener', (type: string, fn: unknown) => listeners.push([type, fn]));
  vi.stubGlobal('removeEventListener', (type: string, fn: unknown) => {
    const i = listeners.findIndex(([t, f]) => t === type && f === fn);
    if (i >= 0) listeners.splice(i, 1);
  });
  vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body)) as { resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[] };
    for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) sent.push(s.name);
    return new Response('{}', { status: 200 });
  });
};

const opts = { endpoint: 'https://collector.test/v1/traces', transport: 'page' as const };
// The outbox's IndexedDB work and sends take as long as the machine makes them: poll, never sleep.
const eventually = (check: () => unknown) => vi.waitFor(check, { timeout: 15_000, interval: 50 });
const SLOW = 30_000;

describe('setupTransport with the page outbox', () => {
  beforeEach(() => {
    vi.resetModules();
    stubPage();
  });
  afterEach(() => vi.unstubAllGlobals());

  it('hands what an earlier setup held, before its path came up, to the next one, and runs one outbox', async () => {
    const { setupTransport, flushNow } = await import('../../../src/transport/index');
    const { createTracer } = await import('../../../src/core/tracer');
    const first = createTracer({});
    setupTransport(first, opts, { endpoint: opts.endpoint }, resolveTransport(opts));
    for (const name of ['a1', 'a2', 'a3']) first.startSpan(name).end();
    // What a second init() does: shut the old tracer down, then set up the new one at once.
    const shut = first.shutdown();
    const second = createTracer({});
    setupTransport(second, opts, { endpoint: opts.endpoint }, resolveTransport(opts));
    second.startSpan('b1').end();
    await shut;
    await eventually(async () => {
      await flushNow();
      expect([...sent].sort()).toEqual(['a1', 'a2', 'a3', 'b1']);
    });
    // The transport's own listener and one outbox's, not an orphaned second outbox's.
    expect(listeners.filter(([t]) => t === 'online')).toHaveLength(2);
  }, SLOW);

  it('answers getStatus() and flushNow() while IndexedDB is blocked by another tab\'s old connection', async () => {
    // Another tab holds the database open and ignores versionchange; a deletion waits for it, and
    // every open after it waits behind the deletion.
    const holder = await new Promise<IDBDatabase>((resolve) => {
      const req = indexedDB.open('edgetrace');
      req.onsuccess = () => resolve(req.result);
    });
    indexedDB.deleteDatabase('edgetrace');
    try {
      const { setupTransport, getStatus, flushNow } = await import('../../../src/transport/index');
      const { createTracer } = await import('../../../src/core/tracer');
      const tracer = createTracer({});
      setupTransport(tracer, opts, { endpoint: opts.endpoint }, resolveTransport(opts));
      tracer.startSpan('a1').end();
      await eventually(async () => expect((await getStatus()).transport).toBe('page'));
      expect((await getStatus()).lastError).toMatch(/^status unavailable: .*the status timed out after 5000 ms/);
      expect(await flushNow()).toMatchObject({ ok: false, retryable: true, reason: expect.stringContaining('the flush timed out after 30000 ms') });
    } finally {
      holder.close();
    }
  }, 90_000);

  it('stops the page outbox and reports no transport once the tracer is shut down', async () => {
    const { setupTransport, getStatus } = await import('../../../src/transport/index');
    const { createTracer } = await import('../../../src/core/tracer');
    const tracer = createTracer({});
    setupTransport(tracer, opts, { endpoint: opts.endpoint }, resolveTransport(opts));
    tracer.startSpan('a1').end();
    await eventually(async () => expect((await getStatus()).transport).toBe('page'));
    // The path asked for: nothing to explain.
    expect((await getStatus()).fallback).toBeUndefined();
    await tracer.shutdown();
    await eventually(() => expect(listeners.filter(([t]) => t === 'online')).toHaveLength(0));
    expect((await getStatus()).transport).toBe('none');
  }, SLOW);

  /** A page without Web Locks, which sends from memory, with one span `name` ended. */
  const pageInMemory = async (name: string) => {
    vi.stubGlobal('navigator', {});
    const transport = await import('../../../src/transport/index');
    const { createTracer } = await import('../../../src/core/tracer');
    const tracer = createTracer({});
    transport.setupTransport(tracer, { endpoint: opts.endpoint }, { endpoint: opts.endpoint }, resolveTransport({}));
    tracer.startSpan(name).end();
    await eventually(async () => expect((await transport.getStatus()).transport).toBe('memory'));
    return { ...transport, tracer };
  };

  it('says why a page without Web Locks sends from memory, and still delivers', async () => {
    const { getStatus, flushNow, tracer } = await pageInMemory('m1');
    expect((await getStatus()).fallback).toBe('no Web Locks: not a secure context (https, localhost)');
    await eventually(async () => {
      await flushNow();
      expect(sent).toEqual(['m1']);
    });
    await tracer.shutdown();
  }, SLOW);

  it('counts a refused batch as dead-lettered, not as delivered', async () => {
    vi.stubGlobal('fetch', async () => new Response('bad token', { status: 401 }));
    const { getStatus, flushNow, tracer } = await pageInMemory('p1');
    await eventually(async () => {
      await flushNow();
      expect(await getStatus()).toMatchObject({ delivered: 0, deadLettered: 1, lastError: expect.stringContaining('401') });
    });
    await tracer.shutdown();
  }, SLOW);

  it('gives the fallback reason with every status a subscriber gets, also those other tabs and the worker broadcast', async () => {
    vi.stubGlobal('navigator', {});
    const { setupTransport, subscribe } = await import('../../../src/transport/index');
    const { STATUS_CHANNEL } = await import('../../../src/transport/resolveDelivery');
    const { createTracer } = await import('../../../src/core/tracer');
    const tracer = createTracer({});
    setupTransport(tracer, { endpoint: opts.endpoint }, { endpoint: opts.endpoint }, resolveTransport({}));
    const seen: DeliveryStatus[] = [];
    const stop = subscribe((s) => seen.push(s));
    const news = new BroadcastChannel(STATUS_CHANNEL);
    try {
      news.postMessage({ transport: 'page', queued: 0, inFlight: 0, delivered: 7, dropped: 0, deadLettered: 0, rejected: 0, circuit: 'closed' });
      await eventually(() => expect(seen.find((s) => s.delivered === 7)).toBeDefined());
      for (const s of seen) expect(s.fallback).toBe('no Web Locks: not a secure context (https, localhost)');
    } finally {
      news.close();
      stop();
      await tracer.shutdown();
    }
  }, SLOW);
});

describe('keepalive', () => {
  afterEach(() => vi.unstubAllGlobals());

  /** Records every fetch; `answered: false` never answers, as for a page that is closing. */
  const stubSends = (answered = true) => {
    const calls: { url: string; init: RequestInit }[] = [];
    vi.stubGlobal('fetch', (url: string, init: RequestInit) => (calls.push({ url: String(url), init }), answered ? Promise.resolve(new Response('{}')) : new Promise(() => undefined)));
    return calls;
  };
  const ENDPOINT = { endpoint: 'https://collector.test/v1/traces' };

  it('counts the body in UTF-8 bytes: a long text in CJK goes without keepalive', async () => {
    const calls = stubSends();
    const { keepaliveFetch, KEEPALIVE_MAX_BYTES } = await import('../../../src/transport/keepalive');
    const ascii = 'a'.repeat(KEEPALIVE_MAX_BYTES - 100);
    const cjk = '漢'.repeat(KEEPALIVE_MAX_BYTES / 2); // half as many characters, 1.5 times the bytes
    await keepaliveFetch('/x', { method: 'POST', body: ascii });
    await keepaliveFetch('/x', { method: 'POST', body: cjk });
    expect(calls.map((c) => c.init.keepalive === true)).toEqual([true, false]);
  });

  it('sends a tail whose encoded body fits the budget in bytes', async () => {
    const calls = stubSends();
    const { sendTail, KEEPALIVE_MAX_BYTES } = await import('../../../src/transport/keepalive');
    const { spanRecord } = await import('../../helpers/records');
    const records = Array.from({ length: 40 }, (_, i) => spanRecord(i, { name: `${'名'.repeat(600)}${i}` }));
    sendTail(records, ENDPOINT);
    await eventually(() => expect(calls).toHaveLength(1));
    expect(new TextEncoder().encode(String(calls[0]!.init.body)).byteLength).toBeLessThan(KEEPALIVE_MAX_BYTES);
  });

  it('sends the scores in a request of their own, at once beside the spans', async () => {
    const calls = stubSends(false);
    const { sendTail } = await import('../../../src/transport/keepalive');
    const { spanRecord, scoreRecord } = await import('../../helpers/records');
    const score = (id: string) => scoreRecord({ id });
    sendTail([spanRecord(1), score('sc-1'), spanRecord(2), score('sc-2')], ENDPOINT);
    await eventually(() => expect(calls).toHaveLength(2));
    expect(calls.map((c) => [c.url, c.init.keepalive])).toEqual([
      ['https://collector.test/v1/traces', true],
      ['https://collector.test/v1/scores', true],
    ]);
    expect((JSON.parse(String(calls[1]!.init.body)) as ScoreRecord[]).map((s) => s.id)).toEqual(['sc-1', 'sc-2']);
  });

  it('does not send a score too large for its share of the budget, keeping the 64 KiB for the other requests', async () => {
    const calls = stubSends(false);
    const { sendTail } = await import('../../../src/transport/keepalive');
    const { spanRecord, scoreRecord } = await import('../../helpers/records');
    sendTail([spanRecord(1), scoreRecord({ id: 'long', comment: 'x'.repeat(25_000) })], ENDPOINT);
    await eventually(() => expect(calls).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls.map((c) => c.url)).toEqual(['https://collector.test/v1/traces']);
  });
});

describe('flushNow from memory', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('says a flush that sent nothing failed, and counts what a flush sent', async () => {
    vi.resetModules();
    let up = false;
    vi.stubGlobal('fetch', async () => new Response('{}', { status: up ? 200 : 503 }));
    const { setupTransport, flushNow } = await import('../../../src/transport/index');
    const { createTracer } = await import('../../../src/core/tracer');
    const tracer = createTracer({ batch: { delayMs: 60_000 } });
    const endpoint = 'https://collector.test/v1/traces';
    setupTransport(tracer, { endpoint, transport: 'memory' }, { endpoint }, resolveTransport({ transport: 'memory' }));
    for (const name of ['m1', 'm2', 'm3']) tracer.startSpan(name).end();

    expect(await flushNow()).toEqual({ ok: false, retryable: true, reason: expect.stringContaining('3 records are still waiting') });
    up = true;
    expect(await flushNow()).toEqual({ ok: true, sent: 3 });
    expect(await flushNow()).toEqual({ ok: true, sent: 0 });
    await tracer.shutdown();
  });

  it('does not count a batch the receiver refused as sent: it is counted as dead-lettered and its reason shown', async () => {
    vi.resetModules();
    let reply = 403;
    vi.stubGlobal('fetch', async () => new Response('{"code":7,"message":"origin not allowed"}', { status: reply }));
    const { setupTransport, flushNow, getStatus, subscribe } = await import('../../../src/transport/index');
    const { createTracer } = await import('../../../src/core/tracer');
    const tracer = createTracer({ batch: { delayMs: 60_000 } });
    const endpoint = 'https://collector.test/v1/traces';
    setupTransport(tracer, { endpoint, transport: 'memory' }, { endpoint }, resolveTransport({ transport: 'memory' }));
    const heard: DeliveryStatus[] = [];
    const stop = subscribe((status) => heard.push(status));
    for (const name of ['m1', 'm2', 'm3']) tracer.startSpan(name).end();

    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    // As from the worker: nothing is left waiting, and nothing was sent.
    expect(await flushNow()).toEqual({ ok: true, sent: 0 });
    await vi.waitFor(() => expect(heard.at(-1)).toMatchObject({ deadLettered: 3 }));
    // Said once without `debug`: a wrong token or endpoint would otherwise lose everything unseen.
    expect(warned.mock.calls.map((c) => String(c.join(' ')))).toEqual([expect.stringContaining('the exporter refused a batch, which is dropped: HTTP 403')]);
    warned.mockRestore();
    stop();
    expect(await getStatus()).toMatchObject({ transport: 'memory', delivered: 0, deadLettered: 3, queued: 0, lastError: expect.stringContaining('origin not allowed') });

    // The next success clears the reason, a refusal's too: a page put right must not look broken.
    reply = 200;
    tracer.startSpan('m4').end();
    expect(await flushNow()).toEqual({ ok: true, sent: 1 });
    const fixed = await getStatus();
    expect(fixed).toMatchObject({ delivered: 1, deadLettered: 3 });
    expect(fixed.lastError).toBeUndefined();
    reply = 503;
    tracer.startSpan('m5').end();
    expect(await flushNow()).toMatchObject({ ok: false, retryable: true });
    expect((await getStatus()).lastError).toContain('503');
    reply = 200;
    expect(await flushNow()).toEqual({ ok: true, sent: 1 });
    const status = await getStatus();
    expect(status).toMatchObject({ delivered: 2, deadLettered: 3 });
    expect(status.lastError).toBeUndefined();
    await tracer.shutdown();
  });
});


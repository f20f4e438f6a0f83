import 'fake-indexeddb/auto';
import { describe, expect, it, vi } from 'vitest';
import { startDelivery } from '../../../worker/startDelivery';
import { spanRecord } from '../../helpers/records';

let dbCount = 0;

/** A fetch that records where it was sent, with which token, after what wait, and answers `reply`. */
const receiver = (reply: (url: string, token: string | undefined) => Response | Promise<Response>) => {
  const seen: { url: string; token: string | undefined; aborted: () => boolean }[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    const token = (init.headers as Record<string, string>)['x-edgetrace-token'];
    seen.push({ url, token, aborted: () => init.signal?.aborted === true });
    const res = await reply(url, token);
    // As fetch does: a request aborted before its answer fails.
    if (init.signal?.aborted) throw new DOMException('The operation was aborted.', 'AbortError');
    return res;
  }) as unknown as typeof globalThis.fetch;
  return { seen, fetch };
};

describe('startDelivery', () => {
  it("keeps sending with the page's headers after a restart, also under the worker's own endpoint", async () => {
    const dbName = `delivery-${++dbCount}`;
    let online = false;
    const rx = receiver((_url, token) => {
      if (!online) throw new TypeError('Failed to fetch');
      return new Response('{}', { status: token === 'T' ? 200 : 401 });
    });
    const own = { endpoint: 'http://collector.test/v1/traces' };
    const first = startDelivery({ transport: 'worker', own, fetch: rx.fetch, dbName });
    await first.api.configure({ endpoint: own.endpoint, headers: { 'x-edgetrace-token': 'T' } });
    await first.api.enqueue([spanRecord(1), spanRecord(2)]);
    expect(await first.api.flushNow()).toMatchObject({ ok: false });
    first.stop();
    // The browser wakes the worker (Background Sync, online) with no page open.
    online = true;
    const second = startDelivery({ transport: 'worker', own, fetch: rx.fetch, dbName });
    await second.ready;
    expect(await second.flusher.flush('sync')).toEqual({ ok: true, sent: 2 });
    expect(rx.seen.at(-1)).toMatchObject({ url: own.endpoint, token: 'T' });
    expect(await second.api.getStatus()).toMatchObject({ queued: 0, delivered: 2, deadLettered: 0 });
    second.stop();
  });

  it("sends to a newly configured endpoint at once, whatever the old one's Retry-After said", async () => {
    const rx = receiver((url) =>
      url.includes('old') ? new Response('slow down', { status: 429, headers: { 'retry-after': '600' } }) : new Response('{}'),
    );
    const d = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName: `delivery-${++dbCount}` });
    await d.api.configure({ endpoint: 'http://old.test/v1/traces' });
    await d.api.enqueue([spanRecord(1)]);
    expect(await d.api.flushNow()).toMatchObject({ ok: false, reason: expect.stringContaining('429') });
    await d.api.configure({ endpoint: 'http://new.test/v1/traces' });
    expect(await d.api.flushNow()).toMatchObject({ ok: true });
    expect(rx.seen.map((s) => new URL(s.url).host)).toContain('new.test');
    expect(await d.api.getStatus()).toMatchObject({ queued: 0, delivered: 1 });
    d.stop();
  });

  it("keeps the newest init()'s target when an older page reconnects, also after a restart", async () => {
    const dbName = `delivery-${++dbCount}`;
    const rx = receiver((_url, token) => new Response('{}', { status: token === 'new' ? 200 : 401 }));
    const endpoint = 'http://collector.test/v1/traces';
    const t0 = Date.now();
    const oldPage = { endpoint, headers: { 'x-edgetrace-token': 'old' }, at: t0 - 60_000 };
    const newPage = { endpoint, headers: { 'x-edgetrace-token': 'new' }, at: t0 - 1000 };
    const first = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName });
    await first.api.configure(oldPage);
    await first.api.configure(newPage);
    // The older page's next connection sends its configuration again.
    await first.api.configure(oldPage);
    await first.api.enqueue([spanRecord(1)]);
    expect(await first.api.flushNow()).toEqual({ ok: true, sent: 1 });
    first.stop();
    // Restarted, the worker remembers which page was newest.
    const second = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName });
    await second.api.configure(oldPage);
    await second.api.enqueue([spanRecord(2)]);
    expect(await second.api.flushNow()).toEqual({ ok: true, sent: 1 });
    expect(rx.seen.map((s) => s.token)).toEqual(['new', 'new']);
    expect(await second.api.getStatus()).toMatchObject({ delivered: 2, deadLettered: 0 });
    second.stop();
  });

  it('is not held off by a saved time ahead of its clock (the clock was set back since)', async () => {
    const dbName = `delivery-${++dbCount}`;
    const rx = receiver((_url, token) => new Response('{}', { status: token === 'now' ? 200 : 401 }));
    const endpoint = 'http://collector.test/v1/traces';
    const first = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName });
    await first.api.configure({ endpoint, headers: { 'x-edgetrace-token': 'ahead' }, at: Date.now() + 86_400_000 });
    first.stop();
    const second = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName });
    await second.api.configure({ endpoint, headers: { 'x-edgetrace-token': 'now' }, at: Date.now() });
    await second.api.enqueue([spanRecord(1)]);
    expect(await second.api.flushNow()).toEqual({ ok: true, sent: 1 });
    expect(rx.seen.map((s) => s.token)).toEqual(['now']);
    second.stop();
  });

  it('takes the configuration of a page of an earlier release (no time) only while it has none with one', async () => {
    const rx = receiver(() => new Response('{}'));
    const d = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName: `delivery-${++dbCount}` });
    await d.api.configure({ endpoint: 'http://earlier-release.test/v1/traces' });
    await d.api.enqueue([spanRecord(1)]);
    expect(await d.api.flushNow()).toEqual({ ok: true, sent: 1 });
    await d.api.configure({ endpoint: 'http://this-release.test/v1/traces', at: Date.now() });
    // A tab of the earlier release, still open, reconnects.
    await d.api.configure({ endpoint: 'http://earlier-release.test/v1/traces' });
    await d.api.enqueue([spanRecord(2)]);
    expect(await d.api.flushNow()).toEqual({ ok: true, sent: 1 });
    expect(rx.seen.map((s) => new URL(s.url).host)).toEqual(['earlier-release.test', 'this-release.test']);
    d.stop();
  });

  it('keeps the default for a delivery option a page sent as undefined, also from a saved target', async () => {
    const dbName = `delivery-${++dbCount}`;
    // A receiver that takes a moment to answer, as every real one does.
    const rx = receiver(() => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response('{}')), 20)));
    const endpoint = 'http://collector.test/v1/traces';
    const first = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName });
    await first.api.configure({ endpoint, delivery: { requestTimeoutMs: undefined, maxBatchRecords: undefined } });
    await first.api.enqueue([spanRecord(1), spanRecord(2)]);
    expect(await first.api.flushNow()).toEqual({ ok: true, sent: 2 });
    first.stop();
    // Restarted with the saved target and no page: undefined would abort every request at once.
    const second = startDelivery({ transport: 'worker', fetch: rx.fetch, dbName });
    await second.ready;
    await second.api.enqueue([spanRecord(3)]);
    expect(await second.flusher.flush('sync')).toEqual({ ok: true, sent: 1 });
    expect(rx.seen.every((s) => !s.aborted())).toBe(true);
    second.stop();
  });

  it("applies a page's requestTimeoutMs under the worker's own endpoint", async () => {
    let answer: (() => void) | undefined;
    const rx = receiver(() => new Promise<Response>((resolve) => (answer = () => resolve(new Response('{}')))));
    const own = { endpoint: 'http://collector.test/v1/traces' };
    const d = startDelivery({ transport: 'worker', own, fetch: rx.fetch, dbName: `delivery-${++dbCount}` });
    await d.api.configure({ delivery: { requestTimeoutMs: 50 } });
    await d.api.enqueue([spanRecord(1)]);
    void d.api.flushNow();
    // However slow the machine: the request starts, then its 50 ms timeout aborts it.
    await vi.waitFor(() => expect(rx.seen[0]?.aborted()).toBe(true), { timeout: 10_000, interval: 20 });
    answer?.();
    d.stop();
  });
});

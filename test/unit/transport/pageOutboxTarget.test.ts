import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startDelivery } from '../../../worker/startDelivery';
import { startPageOutbox } from '../../../src/transport/pageOutbox';
import { spanRecord } from '../../helpers/records';

// The page outbox shares the origin's database with the service worker and the other tabs, so
// it may start with a target one of them saved: the page's own configuration must replace it.

describe('page outbox target', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("sends with its own page's headers, not with a target saved by an older tab", async () => {
    const endpoint = 'https://collector.test/v1/traces';
    const tokens: (string | undefined)[] = [];
    const fetch = async (_url: string, init: RequestInit) => {
      tokens.push((init.headers as Record<string, string>)['x-ingest-token']);
      return new Response('{}');
    };
    vi.stubGlobal('fetch', fetch);
    vi.stubGlobal('addEventListener', () => undefined);
    vi.stubGlobal('removeEventListener', () => undefined);
    // An older tab's delivery path (the default database, as the page outbox uses) saved its target.
    const older = startDelivery({ transport: 'page', fetch: fetch as typeof globalThis.fetch });
    await older.api.configure({ endpoint, headers: { 'x-ingest-token': 'old' }, at: Date.now() - 60_000 });
    older.stop();

    const sink = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'new' }, at: Date.now() });
    expect(await sink.hand([spanRecord(1)], false)).toBe(1);
    expect(await sink.flushNow()).toEqual({ ok: true, sent: 1 });
    expect(tokens).toEqual(['new']);
    sink.stop?.();
  });

  it("makes an older tab's page outbox send with the newest page's configuration", async () => {
    const endpoint = 'https://collector.test/v1/traces';
    const sent: { token: string | undefined; keepalive: boolean }[] = [];
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      sent.push({ token: new Headers(init.headers).get('x-ingest-token') ?? undefined, keepalive: init.keepalive === true });
      return new Response('{}');
    });
    vi.stubGlobal('addEventListener', () => undefined);
    vi.stubGlobal('removeEventListener', () => undefined);
    // Two tabs: one open since before the token was rotated, then one opened after.
    const older = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'revoked' }, at: Date.now() - 60_000 });
    const newer = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'new' }, at: Date.now() });
    // The newer tab's announcement reaches the older one as a message (another task).
    await new Promise((r) => setTimeout(r, 50));
    expect(await older.hand([spanRecord(1)], false)).toBe(1);
    expect(await older.flushNow()).toMatchObject({ ok: true });
    // Its page-hide tail too.
    await older.hand([spanRecord(2)], true);
    await vi.waitFor(() => expect(sent.filter((s) => s.keepalive).length).toBeGreaterThan(0));
    expect(sent.length).toBeGreaterThan(1);
    expect(new Set(sent.map((s) => s.token))).toEqual(new Set(['new']));
    older.stop?.();
    newer.stop?.();
  });

  it("does not leave an older tab's target for the service worker's next start", async () => {
    const endpoint = 'https://collector.test/v1/traces';
    const tokens: (string | null)[] = [];
    const fetch = async (_url: string, init: RequestInit) => {
      tokens.push(new Headers(init.headers).get('x-ingest-token'));
      return new Response('{}');
    };
    vi.stubGlobal('fetch', fetch);
    vi.stubGlobal('addEventListener', () => undefined);
    vi.stubGlobal('removeEventListener', () => undefined);
    // The worker took the newer page's configuration and saved it.
    const worker = startDelivery({ transport: 'worker', fetch: fetch as typeof globalThis.fetch });
    await worker.api.configure({ endpoint, headers: { 'x-ingest-token': 'new' }, at: Date.now() });
    worker.stop();
    // An older tab, whose worker stopped answering, falls back to its page outbox in the same database.
    const older = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'revoked' }, at: Date.now() - 60_000 });
    await new Promise((r) => setTimeout(r, 50));
    older.stop?.();
    const restarted = startDelivery({ transport: 'worker', fetch: fetch as typeof globalThis.fetch });
    await restarted.api.enqueue([spanRecord(1)]);
    expect(await restarted.api.flushNow()).toMatchObject({ ok: true });
    expect(new Set(tokens)).toEqual(new Set(['new']));
    restarted.stop();
  });

  it('tells an older page outbox that starts late of the newer configuration, and ignores what is not one', async () => {
    const endpoint = 'https://collector.test/v1/traces';
    const tokens: (string | null)[] = [];
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      tokens.push(new Headers(init.headers).get('x-ingest-token'));
      return new Response('{}');
    });
    vi.stubGlobal('addEventListener', () => undefined);
    vi.stubGlobal('removeEventListener', () => undefined);
    const newer = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'new' }, at: Date.now() });
    // A tab opened earlier falls back to its page outbox only now (its worker stopped answering).
    const older = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'revoked' }, at: Date.now() - 60_000 });
    // Whatever else reaches the channel changes nothing.
    const stranger = new BroadcastChannel('edgetrace-target');
    for (const junk of [null, 'x', { endpoint: 5, at: Date.now() }, { endpoint, at: 'later' }, { endpoint, headers: 'x', at: Date.now() + 1 }]) stranger.postMessage(junk);
    await new Promise((r) => setTimeout(r, 50));
    for (const [tab, n] of [[older, 1], [newer, 2]] as const) {
      expect(await tab.hand([spanRecord(n)], false)).toBe(1);
      expect(await tab.flushNow()).toMatchObject({ ok: true });
    }
    // The older tab's page-hide tail, which it sends itself, goes with the newer configuration too.
    const before = tokens.length;
    await older.hand([spanRecord(3)], true);
    await vi.waitFor(() => expect(tokens.length).toBeGreaterThan(before));
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    expect(new Set(tokens)).toEqual(new Set(['new']));
    stranger.close();
    older.stop?.();
    newer.stop?.();
  });
});

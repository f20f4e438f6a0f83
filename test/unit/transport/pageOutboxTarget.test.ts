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
    await older.api.configure({ endpoint, headers: { 'x-ingest-token': 'old' }, fresh: true });
    older.stop();

    const sink = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'new' } });
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
    const older = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'revoked' } });
    const newer = startPageOutbox({ endpoint, headers: { 'x-ingest-token': 'new' } });
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
});

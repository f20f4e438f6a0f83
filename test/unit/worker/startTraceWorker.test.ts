import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTraceWorker } from '../../../worker/startTraceWorker';
import { SYNC_TAG } from '../../../src/transport/resolveDelivery';
import { spanRecord } from '../../helpers/records';

// The service worker's event wiring, on a stand-in for its global scope: Background Sync is
// Chromium's way to wake a worker once the network is back, which the e2e specs cannot trigger.

/** A service worker's global scope, as far as startTraceWorker() touches it. */
const workerScope = () => {
  const listeners = new Map<string, (event: never) => void>();
  const registered: string[] = [];
  vi.stubGlobal('addEventListener', (type: string, fn: (event: never) => void) => listeners.set(type, fn));
  vi.stubGlobal('removeEventListener', (type: string) => listeners.delete(type));
  vi.stubGlobal('location', { href: 'https://app.example.com/edgetrace-sw.js' });
  vi.stubGlobal('registration', { sync: { register: async (tag: string) => void registered.push(tag) } });
  /** Dispatches `type` as the browser does, and returns what the listener passed to waitUntil. */
  const fire = (type: string, fields: object = {}): Promise<unknown>[] => {
    const held: Promise<unknown>[] = [];
    listeners.get(type)!({ ...fields, waitUntil: (p: Promise<unknown>) => void held.push(p) } as never);
    return held;
  };
  return { listeners, registered, fire };
};

describe('startTraceWorker', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('asks for a Background Sync after a failure while offline, and a sync event delivers or fails so the browser retries', async () => {
    let online = false;
    vi.stubGlobal('navigator', { get onLine() { return online; } });
    const sent: number[] = [];
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      if (!online) throw new TypeError('Failed to fetch');
      sent.push((JSON.parse(init.body as string) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] }).resourceSpans[0]!.scopeSpans[0]!.spans.length);
      return new Response('{}');
    });
    const scope = workerScope();
    // Its own endpoint, as installTraceWorker({ endpoint }) gives it: no page needs to configure it.
    const stop = startTraceWorker({ endpoint: 'https://collector.example.com/v1/traces', delivery: { flushIntervalMs: 60_000 } });
    try {
      expect([...scope.listeners.keys()].sort()).toEqual(['activate', 'install', 'message', 'online', 'sync']);
      // A page hands records over through the message port the worker answers on.
      const { port1, port2 } = new MessageChannel();
      scope.fire('message', { data: { edgetrace: 'connect' }, ports: [port2] });
      const answer = new Promise((resolve) => (port1.onmessage = (e) => resolve(e.data)));
      port1.postMessage({ id: '1', type: 'APPLY', path: ['enqueue'], argumentList: [{ type: 'RAW', value: [spanRecord(1), spanRecord(2)] }] });
      expect(await answer).toMatchObject({ value: 2 });
      // The worker tries at once on a manual flush; the network is down.
      port1.postMessage({ id: '2', type: 'APPLY', path: ['flushNow'], argumentList: [] });
      await vi.waitFor(() => expect(scope.registered.length).toBeGreaterThan(0));
      expect(new Set(scope.registered)).toEqual(new Set([SYNC_TAG]));

      // A sync for another tag is not ours.
      expect(scope.fire('sync', { tag: 'someone-else' })).toEqual([]);
      // Still offline: the sync's promise rejects, so the browser schedules another one.
      const [down] = scope.fire('sync', { tag: SYNC_TAG });
      await expect(down).rejects.toThrow(/Failed to fetch/);
      online = true;
      const [up] = scope.fire('sync', { tag: SYNC_TAG });
      await expect(up).resolves.toBeUndefined();
      expect(sent).toEqual([2]);
      port1.close();
    } finally {
      stop();
    }
  });

  it('online with the receiver unreachable, asks for no sync: the backoff alone paces the retries', async () => {
    // A sync asked for while online fires at once; its probe skips the backoff, fails, and would
    // ask again: requests in a tight loop for as long as the receiver is down.
    vi.stubGlobal('navigator', { onLine: true });
    let attempts = 0;
    vi.stubGlobal('fetch', async () => {
      attempts++;
      throw new TypeError('Failed to fetch');
    });
    const scope = workerScope();
    const stop = startTraceWorker({ endpoint: 'https://collector.example.com/v1/traces', delivery: { flushIntervalMs: 60_000, backoffBaseMs: 60_000 } });
    try {
      const { port1, port2 } = new MessageChannel();
      scope.fire('message', { data: { edgetrace: 'connect' }, ports: [port2] });
      const answer = (id: string) => new Promise((resolve) => port1.addEventListener('message', (e) => e.data.id === id && resolve(e.data)));
      port1.start();
      const queued = answer('1');
      port1.postMessage({ id: '1', type: 'APPLY', path: ['enqueue'], argumentList: [{ type: 'RAW', value: [spanRecord(1)] }] });
      await queued;
      const flushed = answer('2');
      port1.postMessage({ id: '2', type: 'APPLY', path: ['flushNow'], argumentList: [] });
      await flushed;
      const tried = attempts;
      expect(tried).toBeGreaterThan(0);
      expect(scope.registered).toEqual([]);
      // A sync the browser fires anyway (registered earlier) tries once and asks for no other.
      const [held] = scope.fire('sync', { tag: SYNC_TAG });
      await expect(held).rejects.toThrow(/Failed to fetch/);
      expect(attempts).toBe(tried + 1);
      expect(scope.registered).toEqual([]);
      port1.close();
    } finally {
      stop();
    }
  });
});

import type { DeliveryConfig, TelemetryRecord } from '../protocol';
import type { Sink } from './pageBuffer';
import { reportInternal } from '../lib/reportInternal';
import { rejectAfter } from '../lib/within';
// The fallback runs the worker's own outbox and flusher in the page. This file is reached only
// through a dynamic import(), so pages with a service worker never download it; that is why it
// may import worker/ code at run time, which src/ otherwise does not.
import { startDelivery } from '../../worker/startDelivery';
import { keepaliveFetch, sendTail } from './keepalive';

/** Where page outboxes tell each other of a newer page's configuration. */
const TARGET_CHANNEL = 'edgetrace-target';
// How long getStatus() waits for the outbox's counters.
const STATUS_MS = 5_000;

/**
 * Starts the page outbox: IndexedDB and the flusher in the page, for when no service worker can
 * be used. Every tab of the origin runs one; a Web Lock lets one of them send at a time, and all
 * share the same database (also with the service worker, if one appears later). Requests use
 * `keepalive` when small enough, so one under way survives the tab closing.
 */
export const startPageOutbox = (config: DeliveryConfig): Sink => {
  const delivery = startDelivery({ transport: 'page', fetch: keepaliveFetch, onError: reportInternal });
  const { api, flusher } = delivery;
  /** The configuration this tab sends with: its own, until a newer page's arrives. */
  let current = config;
  api.configure(config).catch(reportInternal);
  // The tabs take turns sending the shared outbox, each with its configuration: one open since an
  // older deploy or token rotation would send the others' records with a revoked token. A page
  // outbox says which configuration it has when it starts (or comes back from the back/forward
  // cache); one that has a newer configuration answers with it. Each takes the newest it hears
  // of: the newest init() wins, as with the service worker.
  let channel: BroadcastChannel | undefined;
  const hear = (event: MessageEvent<DeliveryConfig>): void => {
    // Structured clones of what a page of this origin posted: plain data, checked for shape.
    const c = event.data;
    if (!c || typeof c.endpoint !== 'string' || typeof c.at !== 'number' || typeof (c.headers ?? {}) !== 'object') return;
    if (c.at < current.at!) channel?.postMessage(current);
    else api.configure((current = c)).catch(reportInternal);
  };
  /** (Re)joins the channel, saying which configuration this tab has. */
  const join = (): void => {
    if (typeof BroadcastChannel !== 'function') return;
    channel = new BroadcastChannel(TARGET_CHANNEL);
    channel.onmessage = hear;
    channel.postMessage(current);
  };
  // A message reaching a page in the back/forward cache would have Chromium evict it: the channel
  // closes on the way in and is joined again on the way back.
  const park = (event: PageTransitionEvent): void => {
    if (!event.persisted) return;
    channel?.close();
    channel = undefined;
  };
  const unpark = (event: PageTransitionEvent): void => {
    if (event.persisted && !channel) join();
  };
  join();
  const onOnline = (): void => flusher.start('online');
  addEventListener('online', onOnline);
  addEventListener('pagehide', park);
  addEventListener('pageshow', unpark);
  /**
   * Hand-overs not yet stored, nor carried by a tail. A page frozen in the back/forward cache
   * stops its IndexedDB transactions where they are, and loses them if it is evicted, so they go
   * in the tail too.
   */
  const storing = new Set<readonly TelemetryRecord[]>();
  /** Sends what is being stored, and `also`, in a tail; a tail carries each hand-over once. */
  const tail = (also: readonly TelemetryRecord[] = []): void => {
    const all = [...storing, also].flat();
    storing.clear();
    if (all.length) sendTail(all, current);
  };
  return {
    transport: 'page',
    hand: (records, urgent) => {
      // Storing may not finish before the page is gone; the tail also goes straight out.
      if (urgent) tail(records);
      else storing.add(records);
      const stored = api.enqueue(records, urgent);
      const done = (): void => void storing.delete(records);
      stored.then(done, done);
      return stored;
    },
    // The page is going away, perhaps with nothing left to hand over: what an earlier hand-over
    // is still storing goes in a tail, since the write may never commit. (What is stored is safe;
    // a flush started here would keep the page out of the back/forward cache.)
    leaving: () => tail(),
    flushNow: () => api.flushNow(),
    // Bounded: IndexedDB can be blocked for as long as another tab holds an old connection open
    // (a pending upgrade or deletion waits for it); the worker client bounds its calls the same way.
    status: () => rejectAfter(api.getStatus(), STATUS_MS, 'the status'),
    deadLetters: () => api.deadLetters(),
    stop: () => {
      removeEventListener('online', onOnline);
      removeEventListener('pagehide', park);
      removeEventListener('pageshow', unpark);
      channel?.close();
      channel = undefined;
      delivery.stop();
    },
  };
};

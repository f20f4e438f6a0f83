import type { DeliveryConfig, TelemetryRecord } from '../protocol';
import type { Sink } from './pageBuffer';
import { reportInternal } from '../lib/reportInternal';
// The fallback runs the worker's own outbox and flusher in the page. This file is reached only
// through a dynamic import(), so pages with a service worker never download it; that is why it
// may import worker/ code at run time, which src/ otherwise does not.
import { startDelivery } from '../../worker/startDelivery';
import { keepaliveFetch, sendTail } from './keepalive';

/** Where page outboxes tell each other of a newer page's configuration. */
const TARGET_CHANNEL = 'edgetrace-target';

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
  const use = (c: DeliveryConfig): void => {
    current = c;
    api.configure({ ...c, fresh: true }).catch(reportInternal);
  };
  use(config);
  // The tabs take turns sending the shared outbox, each with its configuration: one open since an
  // older deploy or token rotation would send the others' records with a revoked token. A new
  // page outbox tells the open ones its configuration, and they take it: the newest init() wins,
  // as with the service worker.
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(TARGET_CHANNEL) : undefined;
  if (channel) {
    channel.onmessage = (event: MessageEvent<DeliveryConfig>) => use(event.data);
    channel.postMessage(config);
  }
  const onOnline = (): void => flusher.start('online');
  addEventListener('online', onOnline);
  /**
   * Hand-overs not yet stored. A page frozen in the back/forward cache stops its IndexedDB
   * transactions where they are, and loses them if it is evicted, so they go in the tail too.
   */
  const storing = new Set<readonly TelemetryRecord[]>();
  return {
    transport: 'page',
    hand: (records, urgent) => {
      // Storing may not finish before the page is gone; the tail also goes straight out.
      if (urgent) sendTail([...storing, records].flat(), current);
      storing.add(records);
      const stored = api.enqueue(records, urgent);
      const done = (): void => void storing.delete(records);
      stored.then(done, done);
      return stored;
    },
    flushNow: () => api.flushNow(),
    status: () => api.getStatus(),
    deadLetters: () => api.deadLetters(),
    stop: () => {
      removeEventListener('online', onOnline);
      channel?.close();
      delivery.stop();
    },
  };
};

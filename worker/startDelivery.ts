import type { DeliveryConfig, DeliveryOptions, DeliveryStatus, ExportResult, PackedRecords, TelemetryRecord, WorkerApi } from '../src/protocol';
import { createSender } from './createSender';
import { unpackRecords } from '../src/transport/packRecords';
import { DELIVERY_DEFAULTS, STATUS_CHANNEL, SYNC_TAG, type ResolvedDelivery } from '../src/transport/resolveDelivery';
import { createOutbox } from './Outbox';
import { createFlusher, type Flusher } from './Flusher';
import { exclusive } from './exclusive';

/** Options of {@link startDelivery}. */
export interface DeliverySetup {
  transport: DeliveryStatus['transport'];
  /** Settings that win over what pages send (the worker's install options). */
  own?: DeliveryConfig;
  /** The fetch to send with (the page fallback adds `keepalive`). */
  fetch?: typeof fetch;
  /** Receives errors of our own bookkeeping. */
  onError?: (error: unknown) => void;
  /** IndexedDB name; tests use their own. */
  dbName?: string;
}

/** An outbox, its flusher and where they send: the whole delivery path of one context. */
export interface Delivery {
  readonly api: WorkerApi;
  readonly flusher: Flusher;
  /** Resolves once the saved target is loaded and the start-up flush has begun. */
  readonly ready: Promise<void>;
  stop(): void;
}

/**
 * Starts the delivery path: loads the saved target, flushes what an earlier life left behind,
 * and returns the API that pages call. Posts each status change on the `edgetrace-status`
 * BroadcastChannel, so every tab of the origin can show it.
 */
export const startDelivery = (setup: DeliverySetup): Delivery => {
  const { own = {}, onError } = setup;
  const report = (error: unknown): void => onError?.(error);
  // Pages validate their options in init(); the worker's own were checked by installTraceWorker().
  // Only the options a page gave: one (also of an earlier release, from a saved target) may send
  // some as undefined, which must keep the default. installTraceWorker() filters the worker's own.
  // givenDelivery(page), written out: the call costs bytes the 6 kB budget lacks.
  const layered = (page?: DeliveryOptions): ResolvedDelivery => ({ ...DELIVERY_DEFAULTS, ...JSON.parse(JSON.stringify(page ?? 0)), ...own.delivery });
  let delivery = layered();
  let send: ((records: readonly TelemetryRecord[]) => Promise<ExportResult>) | undefined;
  /** Endpoint and headers of `send`, to tell whether a configuration changes them. */
  let target: string | undefined;
  /** When the page whose configuration is in use called init(); see `DeliveryConfig.at`. */
  let latest: number | undefined;

  const outbox = createOutbox(() => delivery, setup.dbName);
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(STATUS_CHANNEL) : undefined;
  // Only a service worker has a registration; a page's globalThis has none.
  const scope = globalThis as { registration?: { sync?: { register(tag: string): Promise<void> } }; navigator?: { onLine?: boolean } };

  const flusher = createFlusher({
    outbox,
    transport: setup.transport,
    config: () => delivery,
    hasTarget: () => !!send,
    exclusive,
    send: async (records) => {
      const result = await send!(records);
      // While the device is offline, ask the browser to wake the worker when it is back
      // (Chromium's Background Sync); elsewhere the `online` event, start-up and pages cover it.
      // Not while online with the receiver down: the sync would fire at once, probe past the
      // backoff, fail and ask again, a loop of requests.
      if (!result.ok && !scope.navigator?.onLine) scope.registration?.sync?.register(SYNC_TAG).catch(report);
      return result;
    },
    onStatus: (status) => channel?.postMessage(status),
    onError: report,
  });

  /** Applies a page's configuration under the worker's own; returns whether the target changed. */
  const apply = (cfg: DeliveryConfig): boolean => {
    latest = cfg.at;
    // The worker's own options win over a page's, field by field.
    delivery = layered(cfg.delivery);
    const url = own.endpoint ?? cfg.endpoint;
    const headers = { ...cfg.headers, ...own.headers };
    const key = JSON.stringify([url, headers, delivery.requestTimeoutMs]);
    if (key === target) return false;
    target = key;
    send = url ? createSender({ url, headers, timeoutMs: delivery.requestTimeoutMs, fetch: setup.fetch }) : undefined;
    return true;
  };

  if (own.endpoint) apply({});
  const ready = outbox
    .loadTarget()
    .then((saved) => {
      // Also under the worker's own endpoint: the page's headers (its ingest token) still apply.
      if (saved) apply(saved);
    })
    .catch(report)
    // The start-up flush first reads the waits of the last life (Flusher's restore). configure()
    // waits for `ready`, so its saveTarget() transaction comes after that read in IndexedDB's
    // order, and a reset() for a new receiver after the waits are in.
    .then(() => flusher.start('start'));

  /** Worker methods never reject (comlink would re-create the error): errors are reported and `fallback` returned. */
  const safe =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>, fallback: R) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (error) {
        report(error);
        return fallback;
      }
    };

  const api: WorkerApi = {
    configure: safe(async (cfg: DeliveryConfig) => {
      await ready;
      // The newest init() wins: an older page's reconnection changes nothing, nor does one of a
      // page of an earlier release (no time) once a page has given one. A time ahead of this
      // clock (the clock was set back since) holds off no one.
      if (latest! > (cfg.at ?? 0) && latest! <= Date.now()) return;
      if (apply(cfg)) {
        await outbox.saveTarget(cfg);
        // What the old receiver said (Retry-After, failures, the circuit) is not the new one's.
        flusher.reset();
      }
    }, undefined),
    // -1: not stored; the page keeps the records and hands them over again later.
    enqueue: safe(async (records: TelemetryRecord[] | PackedRecords, urgent?: boolean) => {
      const stored = await outbox.append(Array.isArray(records) ? records : unpackRecords(records), Date.now());
      flusher.notify(stored, urgent);
      return stored;
    }, -1),
    flushNow: () => flusher.flush('manual'),
    getStatus: flusher.status,
    deadLetters: safe(outbox.deadLetters, []),
  };

  return {
    api,
    flusher,
    ready,
    stop() {
      flusher.stop();
      channel?.close();
      outbox.close();
    },
  };
};

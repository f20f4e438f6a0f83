import type { DeliveryConfig, DeliveryStatus, ExportResult, TelemetryRecord, WorkerApi } from '../src/protocol';
import { createSender } from './createSender';
import { unpackRecords } from '../src/transport/packRecords';
import { DELIVERY_DEFAULTS, STATUS_CHANNEL, type ResolvedDelivery } from '../src/transport/resolveDelivery';
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
  /** Called with every send's result, e.g. to register Background Sync after a network error. */
  onResult?: (result: ExportResult) => void;
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
  const report = (error: unknown): void => setup.onError?.(error);
  const own = setup.own ?? {};
  // Pages validate their options in init(); the worker's own were checked by installTraceWorker().
  const layered = (page?: DeliveryConfig['delivery']): ResolvedDelivery => ({ ...DELIVERY_DEFAULTS, ...page, ...own.delivery });
  let delivery = layered();
  let send: ((records: readonly TelemetryRecord[]) => Promise<ExportResult>) | undefined;
  let endpoint: string | undefined;
  let headersKey = '';

  const outbox = createOutbox(() => delivery, setup.dbName);
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(STATUS_CHANNEL) : undefined;

  const flusher = createFlusher({
    outbox,
    transport: setup.transport,
    config: () => delivery,
    hasTarget: () => send !== undefined,
    exclusive,
    send: async (records) => {
      const result: ExportResult = send ? await send(records) : { ok: false, retryable: true, reason: 'no endpoint configured' };
      setup.onResult?.(result);
      return result;
    },
    onStatus: (status) => {
      try {
        channel?.postMessage(status);
      } catch (error) {
        report(error);
      }
    },
    onError: report,
  });

  /** Applies a page's configuration under the worker's own; returns whether the target changed. */
  const apply = (cfg: DeliveryConfig): boolean => {
    // The worker's own options win over a page's, field by field.
    delivery = layered(cfg.delivery);
    const nextEndpoint = own.endpoint ?? cfg.endpoint;
    const headers = { ...cfg.headers, ...own.headers };
    const key = JSON.stringify(headers);
    if (nextEndpoint === endpoint && key === headersKey) return false;
    endpoint = nextEndpoint;
    headersKey = key;
    send = endpoint ? createSender({ url: endpoint, headers, timeoutMs: delivery.requestTimeoutMs, fetch: setup.fetch }) : undefined;
    return true;
  };

  if (own.endpoint) apply({});
  const ready = (own.endpoint ? Promise.resolve(undefined) : outbox.loadTarget())
    .then((saved) => {
      if (saved && !send) apply(saved);
    })
    .catch(report)
    .then(() => flusher.start('start'));

  const api: WorkerApi = {
    async configure(cfg) {
      try {
        await ready;
        if (apply(cfg ?? {})) {
          await outbox.saveTarget({ endpoint: cfg.endpoint, headers: cfg.headers, delivery: cfg.delivery });
          flusher.start('start');
        }
      } catch (error) {
        report(error);
      }
    },
    async enqueue(records, urgent) {
      try {
        const stored = await outbox.append(Array.isArray(records) ? records : unpackRecords(records), Date.now());
        flusher.notify(stored, urgent === true);
        return stored;
      } catch (error) {
        // Not stored: the page keeps the records and hands them over again later.
        report(error);
        return -1;
      }
    },
    flushNow: () => flusher.flush('manual'),
    getStatus: () => flusher.status(),
    async deadLetters() {
      try {
        return await outbox.deadLetters();
      } catch (error) {
        report(error);
        return [];
      }
    },
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

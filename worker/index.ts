import { expose } from 'comlink';
import type { DeliveryConfig, ExportResult } from '../src/protocol';
import { CONNECT_MESSAGE, SYNC_TAG } from '../src/transport/resolveDelivery';
import { startDelivery } from './startDelivery';

export type {
  DeadLetterRecord,
  DeliveryConfig,
  DeliveryOptions,
  DeliveryStatus,
  DeliveryTarget,
  FlushResult,
  WorkerApi,
  SpanRecord,
  ScoreRecord,
  TelemetryRecord,
  Exporter,
  ExportResult,
} from '../src/protocol';

/** Options for {@link installTraceWorker}: where to send and how, all optional. */
export interface TraceWorkerOptions extends DeliveryConfig {
  /**
   * Activate a new version at once and take control of open pages (`skipWaiting()` and
   * `clients.claim()`). Default false: an app's own worker decides that itself.
   */
  takeControl?: boolean;
  /** Logs the worker's internal errors to the console. Default false. */
  debug?: boolean;
}

// The few service-worker types we touch; the DOM lib this project compiles with has none of them.
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface ExtendableMessageEvent extends ExtendableEvent {
  data: unknown;
  ports: readonly MessagePort[];
}
interface SyncEvent extends ExtendableEvent {
  tag: string;
}
interface WorkerScope {
  addEventListener(type: string, listener: (event: never) => void): void;
  removeEventListener(type: string, listener: (event: never) => void): void;
  skipWaiting?(): Promise<void>;
  clients?: { claim(): Promise<void> };
  registration?: { sync?: { register(tag: string): Promise<void> } };
}

/**
 * How long an event keeps the worker alive after its own work, so a call arriving on a freshly
 * exposed port finds the worker still running; the flusher's own work then extends it further.
 */
const GRACE_MS = 1000;

/**
 * Makes the current service worker the origin's trace outbox: it accepts records from pages
 * (over comlink, on a MessagePort a page sends in a `{ edgetrace: 'connect' }` message), keeps
 * them in IndexedDB and delivers them as OTLP/HTTP JSON with retries, also after a restart.
 * Call it once, at the top level of the worker script. Endpoint and options given here win over
 * what pages send. Returns a function that removes its listeners.
 *
 * ```ts
 * // sw.ts, an app's own service worker
 * import { installTraceWorker } from 'edgetrace/worker';
 * installTraceWorker({ endpoint: '/v1/traces' });
 * ```
 */
export const installTraceWorker = (options: TraceWorkerOptions = {}): (() => void) => {
  // Configuration errors throw here, once, when the worker script starts.
  const bad = (option: string, got: unknown): never => {
    throw new TypeError(`[edgetrace] installTraceWorker(): "${option}" is invalid, got ${String(got)}.`);
  };
  const { endpoint, headers, delivery: given = {} } = options;
  if (endpoint !== undefined && (typeof endpoint !== 'string' || !endpoint)) bad('endpoint', endpoint);
  if (headers !== undefined && (typeof headers !== 'object' || !headers)) bad('headers', headers);
  for (const [key, v] of Object.entries(given)) if (!(typeof v === 'number' && v >= 0)) bad(`delivery.${key}`, v);
  const scope = globalThis as unknown as WorkerScope;
  const report = (error: unknown): void => {
    if (options.debug) console.warn('[edgetrace] worker internal error:', error);
  };
  const own: DeliveryConfig = { headers, delivery: given };
  if (endpoint) own.endpoint = new URL(endpoint, (globalThis as { location?: { href: string } }).location?.href).href;

  // While records wait for the network, ask the browser to wake us when it is back (Chromium's
  // Background Sync); elsewhere the `online` event, start-up and pages cover it.
  const onResult = (result: ExportResult): void => {
    if (result.ok || !result.retryable || result.status !== undefined) return;
    scope.registration?.sync?.register(SYNC_TAG).catch(report);
  };
  const delivery = startDelivery({ transport: 'worker', own, onResult, onError: report });

  /** Keeps the worker alive until `work` is done and the flusher is idle (browsers cap this). */
  const keepAlive = (event: ExtendableEvent, work: Promise<unknown> = delivery.ready): void => {
    const settle = async (): Promise<void> => {
      await work.catch(report);
      await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
      await delivery.flusher.idle();
    };
    event.waitUntil(settle());
  };

  const onMessage = (event: ExtendableMessageEvent): void => {
    const data = event.data as { edgetrace?: unknown } | null;
    const port = event.ports?.[0];
    if (!data || data.edgetrace !== CONNECT_MESSAGE || !port) return;
    expose(delivery.api, port);
    keepAlive(event);
  };
  const onSync = (event: SyncEvent): void => {
    if (event.tag !== SYNC_TAG) return;
    // A rejected promise tells the browser to try the sync again later.
    const work = delivery.ready
      .then(() => delivery.flusher.flush('sync'))
      .then((result) => {
        if (!result.ok) throw new Error(result.reason);
      });
    event.waitUntil(work);
  };
  const onOnline = (): void => delivery.flusher.start('online');
  const onInstall = (event: ExtendableEvent): void => {
    if (options.takeControl && scope.skipWaiting) event.waitUntil(scope.skipWaiting());
  };
  const onActivate = (event: ExtendableEvent): void => {
    if (options.takeControl && scope.clients) event.waitUntil(scope.clients.claim());
    keepAlive(event);
  };

  const listeners: [string, (event: never) => void][] = [
    ['message', onMessage],
    ['sync', onSync],
    ['online', onOnline],
    ['install', onInstall],
    ['activate', onActivate],
  ];
  for (const [type, listener] of listeners) scope.addEventListener(type, listener);
  return () => {
    for (const [type, listener] of listeners) scope.removeEventListener(type, listener);
    delivery.stop();
  };
};

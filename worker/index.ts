import { startTraceWorker, type TraceWorkerOptions } from './startTraceWorker';

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

export type { TraceWorkerOptions } from './startTraceWorker';

/**
 * Makes the current service worker the origin's trace outbox: it accepts records from pages
 * (the page's comlink calls, on a MessagePort it sends in a `{ edgetrace: 'connect' }` message), keeps
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
  const { endpoint, headers, delivery = {} } = options;
  // Configuration errors throw here, once, when the worker script starts.
  const check = (ok: unknown, option: string, got: unknown): void => {
    if (!ok) throw new TypeError(`[edgetrace] installTraceWorker(): "${option}" is invalid, got ${String(got)}.`);
  };
  check(endpoint === undefined || (typeof endpoint === 'string' && endpoint), 'endpoint', endpoint);
  check(headers === undefined || (typeof headers === 'object' && headers), 'headers', headers);
  for (const [key, v] of Object.entries(delivery)) check(typeof v === 'number' && v >= 0, `delivery.${key}`, v);
  return startTraceWorker(options);
};

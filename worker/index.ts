import { startTraceWorker, type TraceWorkerOptions } from './startTraceWorker';
import { resolveDelivery, type Fail } from '../src/transport/resolveDelivery';

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
  const { endpoint, headers, delivery } = options;
  // Configuration errors throw here, once, when the worker script starts, in the format init() uses.
  const call = 'installTraceWorker()';
  const fail: Fail = (_call, option, expected, got) => {
    throw new TypeError(`[edgetrace] ${call}: "${option}" must be ${expected}, got ${typeof got === 'string' ? JSON.stringify(got) : String(got)}.`);
  };
  if (endpoint !== undefined && (typeof endpoint !== 'string' || !endpoint)) fail(call, 'endpoint', 'a non-empty URL string', endpoint);
  if (headers !== undefined && (typeof headers !== 'object' || !headers)) fail(call, 'headers', 'an object of header names to values', headers);
  // The same rules as the page's `delivery` option: these win over what pages send, so a value
  // the page would refuse (no records per batch, say) must not get through here.
  resolveDelivery(delivery, call, fail);
  return startTraceWorker(options);
};
